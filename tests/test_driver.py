"""Divide and conquer (cosma/methods/dc.py): stitching, window pricing, validity, bounds, never worse.

- stitching a window's own part back is the identity, and every window solution stitched into the
  plan replays valid with exactly the traffic the window's objective promised;
- dc plans on hand-made fixtures, random DAGs and zoo models replay valid, are never worse than the
  best baseline, and their bound is below the exact optimum (exhaustive search or a proven CP-SAT
  optimum), which is below their traffic;
- cuts, options, the automatic choice of ``dc``, determinism.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from graphs import FIXTURES
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oracle import optimum

from cosma.backends.base import SolverParams
from cosma.backends.cpsat import solve as solve_cpsat
from cosma.contract import replay
from cosma.errors import OptionError
from cosma.formulation import cpsat
from cosma.formulation.residency import residency_of_plan
from cosma.frontend import load_onnx
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.methods import auto_method, compile
from cosma.methods import dc as driver
from cosma.methods.baselines import best_baseline
from cosma.options import Options

ZOO = Path(__file__).resolve().parent.parent / "models"


def random_dag(seed: int, ops: int = 10, max_size: int = 6, inplace: bool = False) -> Graph:
    """Ops reading the newest tensor and up to two older ones (long skips), some weights, some outputs;
    with ``inplace``, most operators may write their first output over their first input (of its size)."""
    rng = random.Random(seed)
    tensors = [Tensor("in0", rng.randint(1, max_size), "input")]
    available = ["in0"]
    operators = []
    read: set[str] = set()
    for k in range(ops):
        inputs = [available[-1]]
        older = [t for t in available[:-1] if t not in inputs]
        inputs += rng.sample(older, min(len(older), rng.randint(0, 2)))
        if rng.random() < 0.3:
            tensors.append(Tensor(f"w{k}", rng.randint(1, max_size), "weight"))
            inputs.append(f"w{k}")
        outputs = [f"t{k}"] + ([f"u{k}"] if rng.random() < 0.2 else [])
        tensors += [Tensor(t, rng.randint(0 if rng.random() < 0.05 else 1, max_size), "activation") for t in outputs]
        pairs: tuple[tuple[str, str], ...] = ()
        if inplace and rng.random() < 0.7:  # drawn only with pairs, so the graphs without them stay as they were
            size = next(x.bytes for x in tensors if x.name == inputs[0])
            tensors[-len(outputs)] = Tensor(outputs[0], size, "activation")
            pairs = ((outputs[0], inputs[0]),)
        available += outputs
        read.update(inputs)
        operators.append(Operator(f"op{k}", "Op", tuple(inputs), tuple(outputs), inplace=pairs))
    final = [Tensor(t.name, t.bytes, "output") if t.kind == "activation" and t.name not in read else t for t in tensors]
    return Graph.build(f"dag{seed}", final, operators)


#: Options of the exact joint model used as the reference: each CP-SAT solve limited by deterministic time (work,
#: the same on any machine), the wall-clock limit only a safety net, so the reference is optimal under load too.
EXACT = {"time_limit": 600.0, "solver_params": {"max_deterministic_time": "10"}}


def tight(graph: Graph, seed: int) -> int:
    return graph.min_scratchpad + random.Random(seed).randint(0, 3)


def dc(graph: Graph, budget: int, segment_ops: int, mode: str = "joint", time_limit: float = 20.0, alignment: int = 1):
    return compile(
        graph,
        budget,
        method="dc",
        alignment=alignment,
        options=Options(time_limit=time_limit, segment_ops=segment_ops, dc_mode=mode),
    )


def assert_sound(plan, graph: Graph, budget: int, alignment: int = 1) -> None:
    """Valid, never worse than the best baseline, bound at most the traffic."""
    replay(plan.to_dict())
    assert plan.summary.method == "dc"
    assert plan.extra_bytes <= best_baseline(graph, Accelerator(budget, alignment), Options()).extra_bytes
    assert plan.summary.bound is not None and 0 <= plan.summary.bound <= plan.extra_bytes
    assert (plan.summary.status == "optimal") == (plan.summary.bound == plan.extra_bytes)


# ------------------------------------------------------------------ in-place pairs
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), ops=st.integers(3, 12), cut=st.data())
def test_a_window_keeps_its_operators_pairs_and_stitches_back_what_they_overwrite(
    seed: int, ops: int, cut: st.DataObject
) -> None:
    graph = random_dag(seed, ops, inplace=True)
    accelerator = Accelerator(graph.min_scratchpad)  # the in-place M_R: the baselines must overwrite
    residency = residency_of_plan(best_baseline(graph, accelerator, Options()))
    a = cut.draw(st.integers(0, ops - 1))
    b = cut.draw(st.integers(a + 1, ops))
    window = driver.Window.of(graph, accelerator, residency, a, b)
    local = window.instance.graph
    for name in residency.order[a:b]:
        assert local.op(name).inplace == graph.op(name).inplace
    begun_inside = {(s.tensor, s.first - a + 1): s.over for s in residency.segments if a <= s.first < b}
    assert {(s.tensor, s.first): s.over for s in window.hint.segments if s.first >= 1} == begun_inside
    stitched = driver.stitch(residency, window, window.hint)
    assert sorted(stitched.segments, key=repr) == sorted(residency.segments, key=repr)


# -------------------------------------------------------------------- stitching
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), ops=st.integers(3, 12), cut=st.data())
def test_stitching_a_windows_own_part_back_changes_nothing(seed: int, ops: int, cut: st.DataObject) -> None:
    graph = random_dag(seed, ops)
    accelerator = Accelerator(tight(graph, seed))
    residency = residency_of_plan(best_baseline(graph, accelerator, Options()))
    a = cut.draw(st.integers(0, ops - 1))
    b = cut.draw(st.integers(a + 1, ops))
    window = driver.Window.of(graph, accelerator, residency, a, b)
    stitched = driver.stitch(residency, window, window.hint)
    assert sorted(stitched.segments, key=repr) == sorted(residency.segments, key=repr)
    assert stitched.order == residency.order


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    ops=st.integers(3, 12),
    mode=st.sampled_from(["joint", "fixed-order"]),
    inplace=st.booleans(),
    cut=st.data(),
)
def test_a_window_solution_stitches_into_a_valid_plan_with_the_promised_traffic(
    seed: int, ops: int, mode: str, inplace: bool, cut: st.DataObject
) -> None:
    """The window's objective is exactly the plan's traffic up to a constant: boundaries are priced right, with
    in-place pairs (at the smallest scratchpad) and without (at a tight one)."""
    graph = random_dag(seed, ops, inplace=inplace)
    accelerator = Accelerator(graph.min_scratchpad if inplace else tight(graph, seed))
    plan = residency_of_plan(best_baseline(graph, accelerator, Options())).to_plan(graph, accelerator, method="x")
    residency = residency_of_plan(plan)
    a = cut.draw(st.integers(0, ops - 1))
    b = cut.draw(st.integers(a + 1, ops))
    window = driver.Window.of(graph, accelerator, residency, a, b, mode)  # type: ignore[arg-type]
    upper = window.cost(window.hint)
    m = cpsat.build(window.instance, symmetry_breaking=False)
    window.fix_boundary(m)
    outcome = solve_cpsat(
        m, SolverParams(time_limit=600, extra={"max_deterministic_time": "10"}), hint=window.hint
    )  # work, not speed
    assert outcome.status == "optimal" and outcome.objective <= upper
    stitched = driver.stitch(residency, window, outcome.residency).to_plan(graph, accelerator, method="x")
    assert stitched.extra_bytes == plan.extra_bytes - (upper - outcome.objective) * window.instance.cost_unit
    assert stitched.summary.peak_resident_bytes <= accelerator.scratchpad_bytes


def test_a_tensor_resident_at_both_boundaries_keeps_its_offset_or_is_reloaded_there() -> None:
    """A long skip across a window that needs the whole scratchpad: it leaves and comes back at the exit."""
    t = [
        Tensor("x", 2, "input"),
        Tensor("s", 3, "activation"),
        Tensor("big", 8, "activation"),
        Tensor("c", 2, "activation"),
        Tensor("y", 1, "output"),
    ]
    g = Graph.build(
        "skip_over",
        t,
        [
            Operator("a", "Op", ("x",), ("s",)),
            Operator("b", "Op", ("s",), ("big",)),
            Operator("c", "Op", ("big",), ("c",)),
            Operator("d", "Op", ("s", "c"), ("y",)),
        ],
    )
    budget = 11  # b needs s and big (11): s can stay there, but c needs big and c (10) with s (3) = 13
    plan = dc(g, budget, 1)
    assert_sound(plan, g, budget)
    assert plan.extra_bytes == optimum(g, budget) == 6  # s stored and loaded once


# ------------------------------------------------------------------------ plans
FIXTURE_BUDGETS = [(name, budget) for name, make in FIXTURES.items() for budget in make().optimal_extra]


@pytest.mark.parametrize(("name", "budget"), FIXTURE_BUDGETS)
@pytest.mark.parametrize(("segment_ops", "mode"), [(1, "joint"), (2, "joint"), (2, "fixed-order"), (3, "auto")])
def test_fixtures_plan_within_the_bound_of_the_optimum(name: str, budget: int, segment_ops: int, mode: str) -> None:
    fixture = FIXTURES[name]()
    plan = dc(fixture.graph, budget, segment_ops, mode)
    assert_sound(plan, fixture.graph, budget)
    assert plan.summary.bound <= fixture.optimal_extra[budget] <= plan.extra_bytes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), ops=st.integers(4, 10), segment_ops=st.integers(1, 4))
def test_random_dags_within_the_bound_of_the_exact_optimum(seed: int, ops: int, segment_ops: int) -> None:
    """The reference is the joint model's proven optimum (tests/test_formulation.py checks it against
    exhaustive search); ``segment_ops`` below the graph's size makes the windows do the work."""
    graph = random_dag(seed, ops)
    budget = tight(graph, seed)
    exact = compile(graph, budget, method="joint", **EXACT)
    assume(exact.summary.status == "optimal")
    plan = dc(graph, budget, segment_ops)
    assert_sound(plan, graph, budget)
    assert plan.summary.bound <= exact.extra_bytes <= plan.extra_bytes


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), segment_ops=st.integers(2, 8), mode=st.sampled_from(["joint", "auto"]))
def test_larger_random_dags_give_valid_plans(seed: int, segment_ops: int, mode: str) -> None:
    graph = random_dag(seed, ops=30, max_size=40)
    budget = tight(graph, seed)
    assert_sound(dc(graph, budget, segment_ops, mode, time_limit=10), graph, budget)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), alignment=st.sampled_from([2, 4, 8]), segment_ops=st.integers(2, 5))
def test_aligned_plans_are_valid_and_within_the_bound_of_the_exact_optimum(
    seed: int, alignment: int, segment_ops: int
) -> None:
    """Offsets on the alignment: the windows' address unit divides every fixed boundary offset."""
    graph = random_dag(seed, ops=10, max_size=9)
    budget = graph.working_set(graph.largest_op(alignment).name, alignment) + seed % 5
    plan = dc(graph, budget, segment_ops, alignment=alignment)
    assert_sound(plan, graph, budget, alignment)
    exact = compile(graph, budget, method="joint", alignment=alignment, **EXACT)
    assume(exact.summary.status == "optimal")
    assert plan.summary.bound <= exact.extra_bytes <= plan.extra_bytes


@pytest.mark.parametrize(("model", "weights"), [("tiny_cnn", True), ("resnet50", True), ("densenet121", False)])
def test_zoo_models_within_the_bound_of_the_exact_optimum(model: str, weights: bool) -> None:
    """Small enough for the exact joint model to prove its optimum (each needs extra traffic at M_R):
    dc's traffic and bound enclose it."""
    graph = load_onnx(ZOO / f"{model}.onnx", element_bytes=1, weights=weights)
    budget = graph.min_scratchpad
    exact = compile(graph, budget, method="joint", **EXACT)
    assert exact.extra_bytes > 0
    assert exact.summary.status == "optimal"
    plan = dc(graph, budget, 8, time_limit=15)
    assert_sound(plan, graph, budget)
    assert plan.summary.bound <= exact.extra_bytes <= plan.extra_bytes


def test_same_inputs_same_plan() -> None:
    graph = random_dag(7, ops=20, max_size=30)
    budget = tight(graph, 7)
    first, second = dc(graph, budget, 4), dc(graph, budget, 4)
    assert first.steps == second.steps


# ---------------------------------------------------------------- cuts, options
def test_cuts_make_windows_of_half_to_full_size_and_move_between_passes() -> None:
    graph = random_dag(3, ops=40)
    order = graph.default_order
    cuts = driver.choose_cuts(graph, order, 8)
    bounds = list(zip((0, *cuts), (*cuts, len(order))))
    assert all(4 <= b - a <= 8 for a, b in bounds[:-1]) and 1 <= bounds[-1][1] - bounds[-1][0] <= 8
    shifted = driver.choose_cuts(graph, order, 8, avoid=cuts)
    assert not {c for c in shifted for d in cuts if abs(c - d) < 2}


def test_cuts_prefer_boundaries_few_tensors_cross() -> None:
    """Two chains joined by one tensor: the cut falls where only it crosses."""
    t = [Tensor("x", 1, "input"), Tensor("y", 1, "output")]
    t += [Tensor(f"a{i}", 1, "activation") for i in range(6)] + [Tensor("skip", 1, "activation")]
    ops = [Operator("s", "Op", ("x",), ("a0", "skip"))]
    ops += [
        Operator(f"o{i}", "Op", (f"a{i - 1}", "skip") if i < 3 else (f"a{i - 1}",), (f"a{i}",)) for i in range(1, 6)
    ]
    ops += [Operator("e", "Op", ("a5",), ("y",))]
    g = Graph.build("chains", t, ops)
    crossing = driver.crossing(g, g.default_order)
    assert crossing[0] == 0 and crossing[len(ops)] == 0
    assert driver.choose_cuts(g, g.default_order, 6) == [min(range(3, 7), key=lambda b: (crossing[b], -b))]
    assert crossing[4] == 1  # after o3, only a3 crosses; skip is dead


def test_bad_options_are_refused() -> None:
    g = FIXTURES["chain"]().graph
    with pytest.raises(OptionError, match="segment-ops"):
        dc(g, g.min_scratchpad, 0)
    with pytest.raises(OptionError, match="dc mode"):
        dc(g, g.min_scratchpad, 2, mode="sideways")


def test_auto_picks_dc_for_large_graphs_or_when_segment_ops_is_given() -> None:
    small = FIXTURES["chain"]().graph
    assert auto_method(small, Options()) == "joint"
    assert auto_method(small, Options(segment_ops=3)) == "dc"
    n = driver.DC_THRESHOLD_OPS + 1
    t = [Tensor("t0", 1, "input")] + [Tensor(f"t{i}", 1, "activation") for i in range(1, n)]
    t.append(Tensor(f"t{n}", 1, "output"))
    chain = Graph.build("long", t, [Operator(f"o{i}", "Op", (f"t{i}",), (f"t{i + 1}",)) for i in range(n)])
    assert auto_method(chain, Options()) == "dc"
    assert compile(chain, 2, time_limit=10).summary.method == "dc"


def test_dc_proves_what_joint_proves_on_a_small_graph() -> None:
    """dc on a graph small enough for joint gets joint's relaxation bound: no wider gap on the same plan (issue 18)."""
    graph = load_onnx(str(Path(__file__).resolve().parents[1] / "models" / "resnet50.onnx"), element_bytes=1)
    options = Options(time_limit=600, solver_params={"max_deterministic_time": "20"})
    joint = compile(graph, "M_R", method="joint", options=options)
    dc = compile(graph, "M_R", method="dc", options=options)
    assert joint.summary.status == "optimal"
    assert dc.extra_bytes == joint.extra_bytes and dc.summary.bound == joint.summary.bound
    assert dc.summary.details["bound_kind"] == "relaxation"
