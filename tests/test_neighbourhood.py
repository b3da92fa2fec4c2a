"""Neighbourhood bounds (cosma/methods/neighbourhood.py): restrictions, soundness, additivity.

The oracle is tests/oracle.py's exhaustive search: a restriction's proven bound, and the sum over
tensor-disjoint neighbourhoods, must never exceed the whole graph's optimum.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oracle import optimum
from test_driver import random_dag

from cosma.formulation import bounds
from cosma.formulation.instance import Instance
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.methods import compile
from cosma.methods.neighbourhood import neighbourhood_bound, neighbourhoods, restrict, solve_piece
from cosma.options import Options

#: Every CP-SAT solve limited by deterministic time (work, the same on any machine); the wall-clock limits below
#: are generous safety nets: these instances take milliseconds, and the assertions are about correctness.
WORK = Options(time_limit=600.0, solver_params={"max_deterministic_time": "10"})


def stem(prefix: str = "", x: int = 10, pad: int = 11, out: int = 3) -> tuple[list[Tensor], list[Operator]]:
    """NASNet's stem in miniature: ``X`` read by three ``pad`` branches; a ``pad`` output and ``X`` fill
    the budget, so each branch's next operator runs with ``X`` evicted."""
    p = prefix
    tensors = [Tensor(f"{p}in", 1, "input"), Tensor(f"{p}X", x, "activation"), Tensor(f"{p}y", out, "output")]
    ops = [Operator(f"{p}conv", "Conv", (f"{p}in",), (f"{p}X",))]
    for i in range(3):
        tensors += [Tensor(f"{p}P{i}", pad, "activation"), Tensor(f"{p}d{i}", out, "activation")]
        ops += [
            Operator(f"{p}pad{i}", "Pad", (f"{p}X",), (f"{p}P{i}",)),
            Operator(f"{p}dw{i}", "Conv", (f"{p}P{i}",), (f"{p}d{i}",)),
        ]
    ops.append(Operator(f"{p}join", "Concat", tuple(f"{p}d{i}" for i in range(3)), (f"{p}y",)))
    return tensors, ops


def one_stem() -> Graph:
    return Graph.build("stem", *stem())


def two_stems() -> Graph:
    a, b = stem("a."), stem("b.")
    return Graph.build("stems", a[0] + b[0], a[1] + b[1])


def test_restriction_relaxes_kinds_at_its_border() -> None:
    g = one_stem()
    sub = restrict(g, ["pad0", "dw0"])
    kinds = {t.name: t.kind for t in sub.tensors}
    assert kinds == {"X": "input", "P0": "activation", "d0": "output"}
    assert [o.name for o in sub.ops] == ["pad0", "dw0"]


def test_stem_bound_is_sound_and_beats_the_cheap_bounds() -> None:
    g = one_stem()
    capacity = 21  # X + a pad output: M_R
    assert g.min_scratchpad == capacity
    best = optimum(g, capacity)
    found, details = neighbourhood_bound(g, Accelerator(capacity), WORK, 60.0)
    # X stored once and reloaded twice (30); the optimum also spills two branch results (2 x (3 + 3)),
    # which the neighbourhood, ending before the join, does not see
    assert found == 30 and best == 42
    cheap = bounds.lower_bound(Instance.build(g, Accelerator(capacity), "joint"))
    assert cheap * Instance.build(g, Accelerator(capacity), "joint").cost_unit < found
    assert details["groups"] and details["groups"][0]["proven"]


def test_bounds_of_tensor_disjoint_neighbourhoods_add_up() -> None:
    capacity = 21
    single, _ = neighbourhood_bound(one_stem(), Accelerator(capacity), WORK, 60.0)
    double, details = neighbourhood_bound(two_stems(), Accelerator(capacity), WORK, 120.0)
    assert double == 2 * single
    assert len(details["groups"]) == 2
    plan = compile(two_stems(), capacity, method="joint", options=WORK)
    assert plan.summary.bound == plan.extra_bytes == 2 * 42 >= double
    phase = next(p for p in plan.summary.details["phases"] if p["phase"] == "neighbourhood bound")
    assert phase["bound"] == double  # the joint method starts from it


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), ops=st.integers(3, 10), data=st.data())
def test_restriction_bounds_never_exceed_the_optimum(seed: int, ops: int, data: st.DataObject) -> None:
    """The reference is the joint model's proven optimum without this bound (tests/test_formulation.py
    checks the joint model against exhaustive search, which is too slow at these sizes)."""
    graph = random_dag(seed, ops, max_size=8)
    capacity = graph.min_scratchpad + random.Random(seed).randint(0, 3)
    exact = compile(graph, capacity, method="joint", options=replace(WORK, neighbourhood_bound=False))
    assume(exact.summary.status == "optimal")
    best = exact.extra_bytes
    chosen = data.draw(st.sets(st.sampled_from([o.name for o in graph.ops]), min_size=1))
    piece = solve_piece(graph, Accelerator(capacity), frozenset(chosen), WORK, 60.0)
    assert 0 <= piece.bound <= best
    found, _ = neighbourhood_bound(graph, Accelerator(capacity), WORK, 60.0)
    assert 0 <= found <= best


def test_neighbourhoods_are_around_tensors_read_more_than_once() -> None:
    sets = neighbourhoods(one_stem())
    assert frozenset({"conv", "pad0", "pad1", "pad2", "dw0", "dw1", "dw2"}) in sets
    assert all(len(s) <= 40 for s in sets)
