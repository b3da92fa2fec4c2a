"""The decision-search peak floors and the stage-by-stage traffic bound (issue 19, RandWire gaps).

Both against the exhaustive oracle on small random DAGs: the floors equal the exact per-segment minimum
peaks (sound and tight), and the summed stage bounds never exceed the optimum.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import optimum_by_segments
from test_bounds_large import exact_floors

from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.methods.stage_floor import fits_under, segment_floor, stage_traffic
from cosma.schedule.segments import segments

SEEDS = st.integers(min_value=0, max_value=10_000)
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def staged_graph(seed: int, nodes: int = 4, stages: int = 2, skips: bool = False) -> Graph:
    """RandWire in small: stages of randomly wired nodes (each reads one or two earlier outputs of its stage,
    not necessarily the last, sizes 1 or 2), each stage's unread outputs gathered by a single-operator cut
    point that the next stage reads. With ``skips`` some nodes also read a node of the stage before, which
    then stays live through the cut point (the cut's background, a held exit of its stage)."""
    rng = random.Random(seed)
    tensors = [Tensor("x", 1, "input")]
    ops: list[Operator] = []
    head = "x"
    read: set[str] = set()
    before: list[str] = []
    for s in range(stages):
        outs = [head]
        for k in range(nodes):
            inputs = rng.sample(outs, min(len(outs), rng.randint(1, 2)))
            if skips and before and rng.random() < 0.4:
                inputs.append(rng.choice(before))
            name = f"s{s}n{k}"
            tensors.append(Tensor(name, rng.choice([1, 2, 2]), "activation"))
            ops.append(Operator(f"op_{name}", "Op", tuple(inputs), (name,)))
            outs.append(name)
            read.update(inputs)
        unread = [t for t in outs if t not in read]
        head = f"cut{s}"
        tensors.append(Tensor(head, 1, "activation"))
        ops.append(Operator(f"op_{head}", "Op", tuple(unread), (head,)))
        read.update(unread)
        before = outs[1:]
    final = [Tensor(t.name, t.bytes, "output") if t.name not in read and t.kind == "activation" else t for t in tensors]
    return Graph.build(f"staged{seed}", final, ops)


@PROPERTY
@given(seed=SEEDS)
def test_decision_floors_are_the_exact_segment_minima(seed: int) -> None:
    graph = staged_graph(seed, nodes=6, stages=1)
    _, exact = exact_floors(graph)
    for seg, floor in zip(segments(graph), exact):
        found = segment_floor(seg, 0, [10**6], rounds=100)
        assert seg.background + found == floor.floor, (seed, seg.ops)
        assert fits_under(seg, found).fits is True
        assert fits_under(seg, found - 1).fits is False or found == seg.lower_bound


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_stage_traffic_stays_below_the_oracle(seed: int) -> None:
    graph = staged_graph(seed, nodes=3)
    top, _ = exact_floors(graph)
    for capacity in range(graph.min_scratchpad, top + 1):
        found, details = stage_traffic(graph, Accelerator(capacity), min_ops=1)
        assert found <= optimum_by_segments(graph, capacity), (seed, capacity, details)


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_stage_traffic_with_held_tensors_stays_below_the_oracle(seed: int) -> None:
    """Tensors read across a cut point are held through it and past the stage's end in the whole graph: the
    whole-segment floors count them, and the charges (each on its stage's own tensors) still add up soundly."""
    graph = staged_graph(seed, nodes=3, skips=True)
    top, _ = exact_floors(graph)
    for capacity in range(graph.min_scratchpad, top + 1):
        found, details = stage_traffic(graph, Accelerator(capacity), min_ops=1)
        assert found <= optimum_by_segments(graph, capacity), (seed, capacity, details)


def test_whole_segment_floors_beat_the_restrictions() -> None:
    """Not vacuous: held exits lift some stages' whole-graph floors, and with them the summed bound, past what
    the restrictions (exits freed) prove; every such bound stays at or below the exhaustive optimum."""
    better = 0
    for seed in range(30):
        graph = staged_graph(seed, nodes=5, stages=1)
        top, _ = exact_floors(graph)
        for capacity in range(graph.min_scratchpad, top + 1):
            found, details = stage_traffic(graph, Accelerator(capacity), min_ops=1)
            restricted = sum(part["restricted"] for part in details["stages"])
            if found > restricted:
                assert found <= optimum_by_segments(graph, capacity), (seed, capacity, details)
                better += 1
    assert better >= 5, better


def test_decision_floors_see_past_the_operator_floors() -> None:
    """Not vacuous: on some random stages the proven minimum peak is above every operator's own floor."""
    higher = 0
    for seed in range(40):
        for seg in segments(staged_graph(seed, nodes=6, stages=1)):
            higher += segment_floor(seg, 0, [10**6], rounds=100) > seg.lower_bound
    assert higher >= 5, higher


def test_a_state_budget_too_small_proves_nothing() -> None:
    graph = staged_graph(3, nodes=6, stages=1)
    seg = max(segments(graph), key=lambda s: len(s.ops))
    assert fits_under(seg, seg.lower_bound, max_states=0).fits in (None, True)
    assert segment_floor(seg, 0, [0]) == seg.lower_bound


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS, states=st.sampled_from([1, 3, 10, 40, 200, 10**6]), probe=st.sampled_from([1, 5, 50, 10**6]))
def test_budgeted_floors_never_pass_the_exact_minimum(seed: int, states: int, probe: int) -> None:
    """Whatever cuts the beam, probe, tight or climbing walks short, the floor stays sound, for any question."""
    graph = staged_graph(seed, nodes=6, stages=1)
    _, exact = exact_floors(graph)
    for seg, floor in zip(segments(graph), exact):
        minimum = floor.floor - seg.background
        for start in range(seg.lower_bound - 1, minimum + 2):
            budget = [states]
            found = segment_floor(seg, start, budget, probe_states=probe)
            assert seg.lower_bound <= found <= minimum, (seed, start, states, probe)


def test_an_undecided_probe_gives_the_segment_up_cheaply() -> None:
    """The probe walk's cap bounds what a segment that cannot be decided costs: nothing past it is tried."""
    graph = staged_graph(8, nodes=6, stages=1)
    seg = max(segments(graph), key=lambda s: len(s.ops))
    budget = [10**6]
    assert segment_floor(seg, seg.lower_bound, budget, probe_states=1) == seg.lower_bound
    assert 10**6 - budget[0] <= 2
    budget = [10**6]  # with room to decide, the same segment has a floor above its operator floors
    assert segment_floor(seg, seg.lower_bound, budget) > seg.lower_bound
    assert 10**6 - budget[0] > 2
