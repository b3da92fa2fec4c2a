"""In-place operators in the exact models and the bounds (issue 16, B-2).

- the two oracles (tests/oracle.py) agree with in-place pairs on tiny graphs;
- random DAGs with pairs: each exact model (CP-SAT joint, fixed-order, min-peak; the MILP via HiGHS and
  CBC), solved on its own with no warm start, reaches the oracle's optimum and its solution replays to it;
  the exact method does too; every bound stays at or below the oracle's optimum;
- a graph without pairs builds no in-place decision.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import min_peak_by_segments, optimum, optimum_by_segments
from test_formulation import random_graph
from test_inplace import read_later, relu_chain

from cosma.backends import cbc, highs
from cosma.backends import cpsat as cpsat_backend
from cosma.backends.base import SolverParams
from cosma.formulation import bounds, cpsat, milp
from cosma.formulation.instance import Instance
from cosma.frontend import declare_inplace
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.methods.exact import solve_exact
from cosma.methods.neighbourhood import neighbourhood_bound
from cosma.options import Options

#: deterministic work per model solve: generous for graphs of a few operators, the same on any machine
PARAMS = SolverParams(time_limit=120.0, extra={"max_deterministic_time": "20"})
#: the MILP backends are deterministic; the wall-clock limit is a safety net
MILP_PARAMS = SolverParams(time_limit=120.0)


def paired_graph(seed: int, max_ops: int = 5, max_size: int = 3) -> Graph:
    """A random DAG (tests/test_formulation.py) where most outputs declare an in-place pair over one of
    their operator's inputs (weights included), resized to that input's bytes."""
    g = random_graph(seed, max_ops=max_ops, max_size=max_size)
    rng = random.Random(seed + 1)
    size = {t.name: t.bytes for t in g.tensors}
    pairs: dict[str, tuple[tuple[str, str], ...]] = {}
    for o in g.ops:
        chosen = []
        for out in o.outputs:
            if rng.random() < 0.7:
                inp = rng.choice(o.inputs)
                size[out] = size[inp]
                chosen.append((out, inp))
        pairs[o.name] = tuple(chosen)
    tensors = [Tensor(t.name, size[t.name], t.kind) for t in g.tensors]
    ops = [Operator(o.name, o.op_type, o.inputs, o.outputs, inplace=pairs[o.name]) for o in g.ops]
    return Graph.build(f"{g.name}+inplace", tensors, ops)


def budget_of(graph: Graph, seed: int) -> int:
    return graph.min_scratchpad + random.Random(seed).randint(0, 1)


def replayed(inst: Instance, result) -> int:
    """The extra bytes of a model solution's plan, as the contract's replay counts them."""
    assert result.residency is not None
    return result.residency.to_plan(inst.graph, inst.accelerator, method="test").extra_bytes


PROPERTY = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(min_value=0, max_value=10_000)


# ----------------------------------------------------------------------------------- the oracle
def test_oracle_counts_the_shared_bytes_once() -> None:
    """A Relu chain of 10 B tensors runs in 10 B only by writing each output over its input; read_later's
    skip tensor a is either kept (20 B) or overwritten by b and loaded again (store + load: 20 B extra)."""
    chain = declare_inplace(relu_chain())
    assert optimum(chain, 10) == optimum_by_segments(chain, 10) == 0
    assert optimum(chain.without_inplace(), 10) is None
    later = declare_inplace(read_later())
    assert optimum(later, 20) == optimum_by_segments(later, 20) == 0
    assert min_peak_by_segments(later) == 20


@pytest.mark.parametrize("seed", [0, 6, 10, 13, 31, 38])  # graphs of at most 8 tensors: seconds for the search
def test_oracles_agree_with_pairs(seed: int) -> None:
    """The step-by-step search (no normal form) agrees with the normal-form enumeration extended to in-place."""
    graph = paired_graph(seed, max_ops=4, max_size=2)
    budget = budget_of(graph, seed)
    assert optimum(graph, budget) == optimum_by_segments(graph, budget)
    order = graph.default_order
    assert optimum(graph, budget, order=order) == optimum_by_segments(graph, budget, order=order)


def test_in_place_pays_on_some_random_graph() -> None:
    """The property tests below are not vacuous: their budgets (M_R with pairs, or one byte more) are mostly
    below M_R without pairs, so every plan the models find there overwrites in place."""
    lowered = 0
    for seed in range(12):
        graph = paired_graph(seed, max_ops=4, max_size=2)
        budget = budget_of(graph, seed)
        with_pairs = optimum_by_segments(graph, budget)
        assert with_pairs is not None
        if budget < graph.without_inplace().min_scratchpad:
            lowered += 1
            continue
        without = optimum_by_segments(graph.without_inplace(), budget)
        assert without is not None and with_pairs <= without
    assert lowered >= 6


# ------------------------------------------------------------------------------------ the models
@PROPERTY
@given(seed=SEEDS)
def test_cpsat_joint_model_equals_the_oracle(seed: int) -> None:
    graph = paired_graph(seed)
    budget = budget_of(graph, seed)
    best = optimum_by_segments(graph, budget)
    inst = Instance.build(graph, Accelerator(budget))
    full = cpsat_backend.solve(cpsat.build(inst), PARAMS)
    assert full.status == "optimal" and full.objective is not None
    assert full.objective * inst.cost_unit == replayed(inst, full) == best
    relaxed = cpsat_backend.solve(cpsat.build(inst, addresses=False), PARAMS)
    assert relaxed.objective is not None and relaxed.objective * inst.cost_unit <= best
    assert bounds.eviction_bound(inst) * inst.cost_unit <= best
    assert bounds.peak_bound(inst) * inst.cost_unit <= best
    plan = solve_exact(graph, Accelerator(budget), Options(time_limit=60), mode="joint")
    assert plan.extra_bytes == best and plan.summary.status == "optimal"
    assert not [p for p in plan.summary.details["phases"] if "mismatch" in p]


@PROPERTY
@given(seed=SEEDS)
def test_cpsat_fixed_order_model_equals_the_oracle(seed: int) -> None:
    graph = paired_graph(seed)
    budget = budget_of(graph, seed)
    best = optimum_by_segments(graph, budget, order=graph.default_order)
    inst = Instance.build(graph, Accelerator(budget), "fixed-order")
    full = cpsat_backend.solve(cpsat.build(inst), PARAMS)
    assert full.status == "optimal" and full.objective is not None
    assert full.objective * inst.cost_unit == replayed(inst, full) == best
    assert bounds.lower_bound(inst) * inst.cost_unit <= best
    plan = solve_exact(
        graph, Accelerator(budget), Options(time_limit=60), mode="fixed-order", order=graph.default_order
    )
    assert plan.extra_bytes == best and plan.summary.status == "optimal"


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_milp_equals_the_oracle(seed: int) -> None:
    graph = paired_graph(seed, max_ops=4)
    budget = budget_of(graph, seed)
    best = optimum_by_segments(graph, budget)
    inst = Instance.build(graph, Accelerator(budget))
    for backend in (highs, cbc):
        result = backend.solve(milp.build(inst), MILP_PARAMS)
        assert result.status == "optimal", backend.__name__
        assert result.objective is not None and result.objective * inst.cost_unit == best, backend.__name__
        assert replayed(inst, result) == best, backend.__name__
    fixed = Instance.build(graph, Accelerator(budget), "fixed-order")
    result = highs.solve(milp.build(fixed), MILP_PARAMS)
    assert result.objective is not None
    assert result.objective * fixed.cost_unit == optimum_by_segments(graph, budget, order=graph.default_order)


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_min_peak_models_equal_the_oracle(seed: int) -> None:
    graph = paired_graph(seed, max_ops=4)
    size = min_peak_by_segments(graph)
    inst = Instance.build(graph, Accelerator(2 * size), "min-peak")
    assert bounds.extent_bound(inst) * inst.unit <= size
    for name, result in (
        ("cpsat", cpsat_backend.solve(cpsat.build(inst), PARAMS)),
        ("highs", highs.solve(milp.build(inst), MILP_PARAMS)),
    ):
        assert result.status == "optimal" and result.objective is not None, name
        assert result.objective * inst.unit == size, name
        assert replayed(inst, result) == 0, name
    plan = solve_exact(graph, Accelerator(2 * size), Options(time_limit=60), mode="min-peak")
    assert plan.summary.details["extent_bytes"] == size


@pytest.mark.parametrize("seed", [0, 6, 10, 13])
def test_neighbourhood_bound_stays_below_the_oracle(seed: int) -> None:
    graph = paired_graph(seed, max_ops=4, max_size=2)
    budget = budget_of(graph, seed)
    found, _ = neighbourhood_bound(graph, Accelerator(budget), Options(), 30.0)
    assert found <= optimum_by_segments(graph, budget)


# ------------------------------------------------------------------------- decode and allocation
def test_relaxation_residency_is_placed_with_its_overwrites() -> None:
    """The capacity-only model decodes at offset 0 and says which outputs overwrite which inputs; the
    allocation model gives each pair one address, so the Relu chain fits its 10 B."""
    graph = declare_inplace(relu_chain())
    inst = Instance.build(graph, Accelerator(10))
    relaxed = cpsat_backend.solve(cpsat.build(inst, addresses=False), PARAMS)
    assert relaxed.residency is not None
    assert {(s.tensor, s.over) for s in relaxed.residency.segments if s.over} == {("a", "x"), ("b", "a"), ("y", "b")}
    placed = cpsat_backend.solve(cpsat.allocate(inst, relaxed.residency), PARAMS)
    assert placed.residency is not None
    plan = placed.residency.to_plan(graph, inst.accelerator, method="test")
    assert plan.extra_bytes == 0 and plan.summary.peak_resident_bytes == 10


def test_without_pairs_no_in_place_decision_is_built() -> None:
    graph = paired_graph(3).without_inplace()
    for mode in ("joint", "fixed-order", "min-peak"):
        inst = Instance.build(graph, Accelerator(2 * graph.min_scratchpad), mode)  # type: ignore[arg-type]
        assert not cpsat.build(inst).over and not milp.build(inst).w
