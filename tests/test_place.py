"""Placing a relaxation's segments with the offline allocation engine (cosma.methods.place).

On random DAGs at tight budgets (with and without alignment): every residency it returns replays
valid, and it agrees with the CP-SAT NoOverlap2D allocation on whether the segments fit.
"""

from __future__ import annotations

import random

import pytest
from test_formulation import random_graph

from cosma.backends.base import SolverParams
from cosma.backends.cpsat import solve as solve_cpsat
from cosma.formulation import cpsat
from cosma.formulation.instance import Instance
from cosma.formulation.residency import Residency, Stay
from cosma.hardware import Accelerator
from cosma.methods.place import buffers_of, place, place_segments

PARAMS = SolverParams(time_limit=10.0)


def relaxed(seed: int, alignment: int) -> tuple[Instance, Residency]:
    graph = random_graph(seed, max_ops=6)
    budget = max(graph.working_set(o.name, alignment) for o in graph.ops) + random.Random(seed).randint(0, 2)
    inst = Instance.build(graph, Accelerator(budget, alignment), "joint")
    outcome = solve_cpsat(cpsat.build(inst, addresses=False), PARAMS)
    assert outcome.residency is not None
    return inst, outcome.residency


@pytest.mark.parametrize("alignment", [1, 3])
@pytest.mark.parametrize("seed", range(12))
def test_placed_residency_replays_valid_and_agrees_with_cpsat(seed: int, alignment: int) -> None:
    inst, residency = relaxed(seed, alignment)
    ours = place(inst, residency, PARAMS)
    theirs = solve_cpsat(cpsat.allocate(inst, residency), PARAMS)
    assert ours.status in ("feasible", "infeasible")  # tiny: always decided
    assert (ours.residency is not None) == (theirs.residency is not None)
    if ours.residency is not None:
        plan = ours.residency.to_plan(inst.graph, inst.accelerator, method="test")  # raises PlanInvalid when broken
        assert plan.extra_bytes == theirs.residency.to_plan(inst.graph, inst.accelerator, method="test").extra_bytes
        assert [s.tensor for s in ours.residency.segments] == [s.tensor for s in residency.segments]


def test_back_to_back_segments_share_addresses() -> None:
    """A segment ending at run s and one starting at run s + 1 do not overlap in time."""
    inst, residency = relaxed(0, 1)
    buffers = buffers_of(inst, residency)
    for b, seg in zip(buffers, residency.segments, strict=True):
        assert (b.lower, b.upper, b.size) == (seg.first, seg.last + 1, inst.graph.size(seg.tensor))


def test_too_many_segments_at_once_is_infeasible() -> None:
    """Every tensor resident for the whole order cannot fit a tight budget: proven, no residency."""
    inst, residency = relaxed(1, 1)
    last = len(residency.order) - 1
    everything = Residency(
        residency.order, tuple(Stay(t, 0, last, 0, False) for t in inst.tensors if inst.graph.size(t) > 0)
    )
    if sum(inst.footprint[s.tensor] for s in everything.segments) <= inst.capacity:
        pytest.skip("the graph fits whole")
    assert place(inst, everything, PARAMS).status == "infeasible"
    assert place_segments(inst, everything, 5.0) is None


@pytest.mark.parametrize("seed", range(12))
def test_agrees_with_cpsat_on_lengthened_segments(seed: int) -> None:
    """Stays stretched to overlap more often do not fit: both allocators must say so alike."""
    inst, residency = relaxed(seed, 3)
    rng = random.Random(seed)
    last = len(residency.order) - 1
    stretched = Residency(
        residency.order,
        tuple(Stay(s.tensor, s.first, min(last, s.last + rng.randint(0, 2)), 0, s.created) for s in residency.segments),
    )
    ours = place(inst, stretched, PARAMS)
    theirs = solve_cpsat(cpsat.allocate(inst, stretched), PARAMS)
    assert ours.status in ("feasible", "infeasible")
    assert (ours.status == "infeasible") == (theirs.status == "infeasible")
    assert (ours.residency is None) == (theirs.residency is None)
    if ours.residency is not None:
        ours.residency.to_plan(inst.graph, inst.accelerator, method="test")
