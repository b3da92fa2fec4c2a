"""Operator orders: segments, the exact min-peak search against exhaustive enumeration, and the heuristics.

The oracle is ``networkx.all_topological_sorts`` over random DAGs of up to 8 operators: the
exact search must find the least :meth:`Graph.peak` of any order and say it is proven, and
every lower bound it reports must be at most that least peak.
"""

from __future__ import annotations

import time
from pathlib import Path

import networkx as nx
import pytest
from graphs import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosma.graph import Graph, Operator, Tensor
from cosma.schedule import cut_points, default_schedule, graph_lower_bound, min_peak_order, segments
from cosma.schedule.local import improve
from cosma.schedule.search import beam_search, exact_search
from cosma.schedule.segments import build_segment, window

MODELS = Path(__file__).resolve().parent.parent / "models"


@st.composite
def dags(draw: st.DrawFn, max_ops: int = 8) -> Graph:
    """A random DAG: inputs and shared weights, 1..max_ops operators reading earlier tensors, 1..2 outputs each."""
    size = st.integers(0, 40)
    tensors = [Tensor(f"in{i}", draw(size), "input") for i in range(draw(st.integers(1, 2)))]
    tensors += [Tensor(f"w{i}", draw(size), "weight") for i in range(draw(st.integers(0, 2)))]
    available = [t.name for t in tensors]
    ops = []
    for i in range(draw(st.integers(1, max_ops))):
        recent = available[-4:]  # mostly local edges, as in real networks, with some long ones
        pool = st.sampled_from(recent) if draw(st.booleans()) else st.sampled_from(available)
        inputs = draw(st.lists(pool, min_size=0, max_size=3, unique=True))
        outputs = []
        for j in range(draw(st.integers(1, 2))):
            kind = draw(st.sampled_from(["activation", "activation", "activation", "output"]))
            tensors.append(Tensor(f"t{i}_{j}", draw(size), kind))
            outputs.append(tensors[-1].name)
        ops.append(Operator(f"op{i}", "Op", tuple(inputs), tuple(outputs)))
        available += outputs
    return Graph.build("random", tensors, ops)


def brute_min_peak(graph: Graph) -> int:
    return min(graph.peak(order) for order in nx.all_topological_sorts(graph.dag))


def two_branches(branches: int, big: int = 10) -> Graph:
    """x -split-> a_i (1 B) -up-> p_i (big) -down-> c_i (1 B) for each branch, then one join."""
    tensors = [Tensor("x", 1, "input"), Tensor("y", 1, "output")]
    ops = [Operator("split", "Split", ("x",), tuple(f"a{i}" for i in range(branches)))]
    for i in range(branches):
        tensors += [
            Tensor(f"a{i}", 1, "activation"),
            Tensor(f"p{i}", big, "activation"),
            Tensor(f"c{i}", 1, "activation"),
        ]
    ops += [Operator(f"up{i}", "Conv", (f"a{i}",), (f"p{i}",)) for i in range(branches)]
    ops += [Operator(f"down{i}", "Conv", (f"p{i}",), (f"c{i}",)) for i in range(branches)]
    ops.append(Operator("join", "Concat", tuple(f"c{i}" for i in range(branches)), ("y",)))
    return Graph.build(f"branches{branches}", tensors, ops)


# ------------------------------------------------------------------------- fixtures
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_min_peak_of_fixtures(name: str) -> None:
    fx = FIXTURES[name]()
    result = min_peak_order(fx.graph)
    assert result.peak == fx.min_peak
    assert result.proven and result.bound == fx.min_peak and result.method == "exact"
    assert fx.graph.is_topological(result.order)
    assert fx.graph.peak(result.order) == result.peak


def test_branches_run_one_at_a_time() -> None:
    g = two_branches(4)
    assert g.peak() == 4 * 10 + 1  # the default order opens every big tensor before closing one
    result = min_peak_order(g)
    # one big tensor at a time: the other branches hold 1 B each (a_i before, c_i after)
    assert result.peak == 10 + 1 + 3 and result.proven
    assert result.details["default_peak"] == g.peak()


def test_default_schedule() -> None:
    g = two_branches(3)
    result = default_schedule(g)
    assert result.order == g.default_order and result.peak == g.peak() and result.method == "default"
    assert result.bound <= result.peak and not result.proven


def test_empty_graph_and_ops_without_tensors() -> None:
    empty = Graph.build("empty", [], [])
    assert min_peak_order(empty).peak == 0
    assert min_peak_order(empty).order == ()
    ops = [Operator("a", "Nop", (), ()), Operator("b", "Relu", ("x",), ())]
    g = Graph.build("bare", [Tensor("x", 3, "input")], ops)
    result = min_peak_order(g)
    assert result.peak == 3 and result.proven and set(result.order) == {"a", "b"}


# ------------------------------------------------------------------------- segments
def test_cut_points_of_a_diamond() -> None:
    g = FIXTURES["diamond"]().graph  # a -> b, c -> d
    assert cut_points(g) == [True, False, False, True]
    assert [s.ops for s in segments(g)] == [("a",), ("b", "c"), ("d",)]


@given(dags(), st.randoms(use_true_random=False))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_peak_separates_over_segments(graph: Graph, rng) -> None:
    """For any order, the graph's peak is the largest segment peak plus its background."""
    orders = list(nx.all_topological_sorts(graph.dag))
    order = orders[rng.randrange(len(orders))]
    position = {o: i for i, o in enumerate(order)}
    total = 0
    for seg in segments(graph):
        local = sorted(range(len(seg.ops)), key=lambda i: position[seg.ops[i]])
        total = max(total, seg.background + seg.peak(local))
    assert total == graph.peak(order)


@given(dags(max_ops=6))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_operator_floor_is_live_in_every_order(graph: Graph) -> None:
    """op_floor(o) <= live bytes at o's step, for every order and every operator."""
    whole = build_segment(graph, graph.default_order, 0, lambda t: False, lambda t: False)
    floor = dict(zip(whole.ops, whole.op_floor))
    for order in nx.all_topological_sorts(graph.dag):
        live = graph.live_bytes(order)
        assert all(floor[o] <= live[i] for i, o in enumerate(order))


# ------------------------------------------------------------------- exact vs oracle
@given(dags())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_exact_min_peak_equals_exhaustive_enumeration(graph: Graph) -> None:
    best = brute_min_peak(graph)
    result = min_peak_order(graph)
    assert result.peak == best
    assert result.proven and result.bound == best and result.method == "exact"
    assert graph.is_topological(result.order) and graph.peak(result.order) == best


@given(dags())
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_exact_search_alone_finds_the_minimum(graph: Graph) -> None:
    """The best-first search on the whole graph, with a useless incumbent, finds the optimum itself."""
    whole = build_segment(graph, graph.default_order, 0, lambda t: False, lambda t: False)
    upper = sum(t.bytes for t in graph.tensors) + 1
    identity = tuple(range(len(whole.ops)))
    result = exact_search(whole, upper, identity, max_states=10**6, deadline=time.perf_counter() + 60)
    best = brute_min_peak(graph)
    assert result.proven and result.peak == best == result.bound
    assert graph.peak([whole.ops[i] for i in result.order]) == best


@given(dags(), st.integers(1, 4), st.integers(1, 3))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_bounds_stay_valid_when_searches_stop_early(graph: Graph, max_states: int, beam_width: int) -> None:
    """Cut short, the result is still a valid order no worse than default, and its bound a true lower bound."""
    best = brute_min_peak(graph)
    result = min_peak_order(graph, max_states=max_states, beam_width=beam_width, window_states=max_states)
    assert graph.is_topological(result.order) and graph.peak(result.order) == result.peak
    assert result.bound <= best <= result.peak <= graph.peak()
    assert result.proven == (result.peak == result.bound)
    assert graph_lower_bound(graph) <= best


# ---------------------------------------------------------------------- heuristics
@given(dags(), st.integers(1, 4))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_beam_gives_a_valid_order(graph: Graph, width: int) -> None:
    whole = build_segment(graph, graph.default_order, 0, lambda t: False, lambda t: False)
    result = beam_search(whole, width, time.perf_counter() + 60)
    order = [whole.ops[i] for i in result.order]
    assert graph.is_topological(order) and graph.peak(order) == result.peak


@given(dags(), st.integers(2, 8), st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_window_keeps_outside_steps(graph: Graph, width: int, rng) -> None:
    """Reordering a window of a topological order leaves every step outside it unchanged."""
    order = list(graph.default_order)
    start = rng.randrange(len(order))
    end = min(len(order), start + width)
    seg = window(graph, order, start, end)
    local = beam_search(seg, 2, time.perf_counter() + 60).order
    new = order[:start] + [seg.ops[i] for i in local] + order[end:]
    assert graph.is_topological(new)
    before, after = graph.live_bytes(order), graph.live_bytes(new)
    assert before[:start] == after[:start] and before[end:] == after[end:]
    assert max(after[start:end]) == seg.background + seg.peak(local)


def test_window_improvement_reaches_the_optimum_of_a_wide_graph() -> None:
    g = two_branches(12)  # 26 operators: 13! interleavings of the branches
    result = improve(g, g.default_order, floor=0, width=8, max_states=5_000, deadline=time.perf_counter() + 60)
    assert g.is_topological(result.order) and g.peak(result.order) == result.peak
    assert result.peak == 10 + 1 + 11 and result.improvements >= 1


def test_time_limit_is_honoured() -> None:
    g = two_branches(40)
    result = min_peak_order(g, time_limit=0.0)
    assert g.is_topological(result.order) and result.peak <= g.peak()
    assert result.details["time_limit_hit"]


def test_same_inputs_give_the_same_order() -> None:
    g = two_branches(9)
    assert min_peak_order(g).order == min_peak_order(g).order


#: Work of generating one state of ``two_branches(16)`` plus a search's set-up, over-estimated: each state
#: looks at fewer than 40 ready operators and evaluates fewer than 40 steps of at most 17 tensors each.
ONE_STATE_WORK = 2_000


@pytest.mark.parametrize("total_work", [0, 400, 4_000, 40_000])
def test_searches_stop_on_their_work_budget_not_the_clock(total_work: int) -> None:
    g = two_branches(14)  # too wide to finish exactly on these budgets
    runs = [min_peak_order(g, time_limit=limit, total_work=total_work) for limit in (30.0, 300.0)]
    assert runs[0].order == runs[1].order and runs[0].peak == runs[1].peak
    for r in runs:
        assert not r.details["time_limit_hit"]
        # the budget is checked per generated state: a search overruns it by at most one state's work
        assert r.details["work"] < total_work + ONE_STATE_WORK
        assert g.is_topological(r.order) and r.bound <= r.peak <= g.peak()


@pytest.mark.parametrize("max_states", [0, 1, 7, 50, 333])
def test_beam_and_exact_search_generate_at_most_their_budget(max_states: int) -> None:
    seg = max(segments(two_branches(12)), key=lambda s: len(s.ops))  # 24 ops: too wide to finish on these budgets
    far = time.perf_counter() + 3600
    beam = beam_search(seg, 8, far, max_states)
    assert beam.states <= max_states
    assert sorted(beam.order) == list(range(len(seg.ops))) and beam.peak == seg.peak(beam.order)
    exact = exact_search(seg, seg.peak(beam.order), beam.order, max_states=max_states, deadline=far)
    assert exact.states <= max_states and exact.bound <= exact.peak
    again = beam_search(seg, 8, far, max_states)
    assert again.order == beam.order  # the state count, not the clock, decides where it stops


@pytest.mark.parametrize("max_work", [0, 100, 1_000, 10_000])
def test_beam_and_exact_search_stop_on_their_work_budget(max_work: int) -> None:
    seg = max(segments(two_branches(12)), key=lambda s: len(s.ops))
    far = time.perf_counter() + 3600
    beam = beam_search(seg, 8, far, max_work=max_work)
    assert beam.work < max_work + ONE_STATE_WORK
    assert sorted(beam.order) == list(range(len(seg.ops))) and beam.peak == seg.peak(beam.order)
    exact = exact_search(seg, seg.peak(beam.order), beam.order, max_states=10**6, max_work=max_work, deadline=far)
    assert exact.work < max_work + ONE_STATE_WORK and exact.bound <= exact.peak
    assert beam_search(seg, 8, far, max_work=max_work) == beam  # the work count decides where it stops


def test_a_state_of_a_wider_segment_costs_more_work() -> None:
    """Work scales with the ready operators a state touches, so a budget maps to similar time on any graph."""
    far = time.perf_counter() + 3600
    per_state = []
    for branches in (3, 30):
        seg = max(segments(two_branches(branches)), key=lambda s: len(s.ops))
        beam = beam_search(seg, 8, far, max_states=200)
        per_state.append(beam.work / beam.states)
    assert per_state[1] > 3 * per_state[0]


def test_window_improvement_stops_on_its_work_budget() -> None:
    g = two_branches(12)
    far = time.perf_counter() + 3600
    runs = [
        improve(g, g.default_order, floor=0, width=8, max_states=5_000, deadline=far, total_work=w)
        for w in (0, 300, 3_000)
    ]
    assert runs[0].order == g.default_order and runs[0].work == 0
    for w, r in zip((300, 3_000), runs[1:]):
        assert r.work < w + ONE_STATE_WORK + len(g.ops)
        assert g.is_topological(r.order) and g.peak(r.order) == r.peak <= g.peak()


def test_total_work_budget_is_never_exceeded_by_more_than_a_state_on_a_wide_graph() -> None:
    g = two_branches(16)
    for budget in (1, 1_000, 25_000):
        r = min_peak_order(g, time_limit=3600.0, total_work=budget)
        assert r.details["work"] < budget + ONE_STATE_WORK and not r.details["time_limit_hit"]
        assert g.is_topological(r.order) and g.peak(r.order) == r.peak


def test_default_work_budget_follows_the_time_limit() -> None:
    from cosma.schedule.minpeak import WORK_PER_SECOND

    result = min_peak_order(two_branches(14), time_limit=0.01)
    assert result.details["work_budget"] == int(0.01 * WORK_PER_SECOND)


# ------------------------------------------------------------------------------ zoo
@pytest.mark.parametrize("model", ["tiny_cnn", "resnet50", "inception_v3"])
def test_zoo_min_peak_at_most_default(model: str) -> None:
    import cosma

    path = MODELS / f"{model}.onnx"
    assert path.is_file(), f"zoo model {path} is missing"
    for graph in (g := cosma.load_onnx(path), g.without_weights()):
        result = min_peak_order(graph)
        assert graph.is_topological(result.order) and graph.peak(result.order) == result.peak
        assert result.bound <= result.peak <= graph.peak()
        assert result.proven  # measured: every zoo model of this size is solved exactly in well under a second
