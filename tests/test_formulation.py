"""The exact formulations against exhaustive search, hand-derived answers and the baselines.

- named fixtures (tests/graphs.py): every formulation finds the hand-derived optimum and proves it;
- random DAGs of up to seven operators: every formulation's optimum equals the oracle's
  (tests/oracle.py), and every bound stays below it;
- the solver plumbing: time limit, Ctrl-C, seed, solver parameters, the never-worse guarantee;
- two real zoo models: no extra traffic at M_P (activations only), never worse than a baseline.
"""

from __future__ import annotations

import _thread
import linecache
import random
import sys
import threading
import time
from pathlib import Path

import pytest
from graphs import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import min_peak_by_segments, optimum, optimum_by_segments
from ortools.sat.python import cp_model

from cosma.backends import cbc
from cosma.backends.base import SolverParams, parse_solver_params, run_interruptibly
from cosma.backends.cpsat import solve as solve_cpsat
from cosma.errors import OptionError
from cosma.formulation import bounds, cpsat, milp
from cosma.formulation.instance import Instance
from cosma.formulation.residency import Residency, residency_of_plan
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.methods import compile
from cosma.methods.baselines import best_baseline
from cosma.methods.exact import NoEvictionFreePlan, solve_exact
from cosma.methods.place import place
from cosma.options import Options

ZOO = Path(__file__).resolve().parent.parent / "models"


def zoo_path(model: str) -> Path:
    path = ZOO / f"{model}.onnx"
    if not path.exists():
        pytest.fail(f"zoo model {path} is missing; run models/generate.py")
    return path


def random_graph(seed: int, max_ops: int = 7, max_size: int = 4) -> Graph:
    """A random DAG: 1-2 inputs, ops reading the newest tensor and older ones (skip connections keep tensors
    alive across operators), optional weights, an occasional second output, outputs where nothing reads."""
    rng = random.Random(seed)
    tensors: list[Tensor] = []
    ops: list[Operator] = []
    available: list[str] = []
    for i in range(rng.randint(1, 2)):
        tensors.append(Tensor(f"in{i}", rng.randint(1, max_size), "input"))
        available.append(f"in{i}")
    read: set[str] = set()
    for k in range(rng.randint(min(3, max_ops), max_ops)):
        count = rng.randint(1, min(3, len(available)))
        inputs = [available[-1]] if rng.random() < 0.7 else []
        pool = [t for t in available if t not in inputs]
        inputs += rng.sample(pool, min(len(pool), count - len(inputs)))
        if rng.random() < 0.4:
            tensors.append(Tensor(f"w{k}", rng.randint(1, max_size), "weight"))
            inputs.append(f"w{k}")
        outputs = [f"t{k}"] + ([f"t{k}b"] if rng.random() < 0.2 else [])
        for t in outputs:
            tensors.append(Tensor(t, rng.randint(1, max_size), "activation"))
            available.append(t)
        read.update(inputs)
        ops.append(Operator(f"op{k}", "Op", tuple(inputs), tuple(outputs)))
    final = [
        Tensor(t.name, t.bytes, "output")
        if t.kind == "activation" and (t.name not in read or rng.random() < 0.15)
        else t
        for t in tensors
    ]
    return Graph.build(f"random{seed}", final, ops)


def tight_budget(graph: Graph, seed: int) -> int:
    """M_R or one byte more: tight enough that about a quarter of the graphs need eviction."""
    return graph.min_scratchpad + random.Random(seed).randint(0, 1)


def solve(graph: Graph, budget: int, mode: str = "joint", solver: str = "cpsat", **extra) -> object:
    return solve_exact(
        graph,
        Accelerator(budget),
        Options(time_limit=30, solver=solver, **extra),
        mode=mode,
        order=graph.default_order if mode == "fixed-order" else None,
    )


def assert_consistent(plan) -> None:
    """The summary is what the replay says, and no phase's model disagreed with its replay."""
    assert plan.summary.bound is not None and plan.summary.bound <= plan.extra_bytes
    assert not [p for p in plan.summary.details["phases"] if "mismatch" in p]


# ------------------------------------------------------------------ named fixtures
FIXTURE_BUDGETS = [(name, budget) for name, make in FIXTURES.items() for budget in make().optimal_extra]


@pytest.mark.parametrize(("name", "budget"), FIXTURE_BUDGETS)
@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_fixture_optimum_is_found_and_proven(name: str, budget: int, solver: str) -> None:
    fixture = FIXTURES[name]()
    plan = solve(fixture.graph, budget, solver=solver)
    assert plan.extra_bytes == fixture.optimal_extra[budget]
    assert plan.summary.status == "optimal" and plan.summary.bound == plan.extra_bytes
    assert_consistent(plan)


@pytest.mark.parametrize("name", list(FIXTURES))
def test_min_peak_extent_is_the_least_scratchpad_without_eviction(name: str) -> None:
    fixture = FIXTURES[name]()
    size = min_peak_by_segments(fixture.graph)
    plan = solve(fixture.graph, 2 * size, mode="min-peak")
    assert plan.extra_bytes == 0
    assert plan.summary.details["extent_bytes"] == size
    assert plan.summary.details["extent_status"] == "optimal"


def test_min_peak_below_the_least_scratchpad_is_refused() -> None:
    fixture = FIXTURES["skip"]()
    with pytest.raises(NoEvictionFreePlan, match="without eviction"):
        solve(fixture.graph, min_peak_by_segments(fixture.graph) - 1, mode="min-peak")


# -------------------------------------------------------------- oracles and bounds
@pytest.mark.parametrize("seed", [0, 3, 8, 9, 10, 12])  # graphs of at most 8 tensors: seconds for the search
def test_oracles_agree(seed: int) -> None:
    """The step-by-step search (no normal form assumed) agrees with the normal-form enumeration."""
    graph = random_graph(seed, max_ops=4, max_size=2)
    budget = tight_budget(graph, seed)
    assert optimum(graph, budget) == optimum_by_segments(graph, budget)
    assert optimum(graph, budget, order=graph.default_order) == optimum_by_segments(
        graph, budget, order=graph.default_order
    )


def test_prefetching_never_helps_on_a_tiny_graph() -> None:
    """Loads just before a use lose nothing (docs/formulation.md, "Normal form"): checked with prefetch allowed."""
    graph = FIXTURES["skip"]().graph
    for budget in (16, 18):
        assert optimum(graph, budget, prefetch=True) == optimum(graph, budget)


SEEDS = st.integers(min_value=0, max_value=10_000)
PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(seed=SEEDS)
def test_cpsat_joint_equals_the_oracle(seed: int) -> None:
    graph = random_graph(seed)
    budget = tight_budget(graph, seed)
    best = optimum_by_segments(graph, budget)
    phased = solve(graph, budget)
    single = solve(graph, budget, single_phase=True)
    assert phased.extra_bytes == single.extra_bytes == best
    assert phased.summary.status == single.summary.status == "optimal"
    assert_consistent(phased)
    assert_consistent(single)
    inst = Instance.build(graph, Accelerator(budget))
    assert bounds.eviction_bound(inst) * inst.cost_unit <= best and bounds.peak_bound(inst) * inst.cost_unit <= best


@PROPERTY
@given(seed=SEEDS)
def test_cpsat_fixed_order_equals_the_oracle(seed: int) -> None:
    graph = random_graph(seed)
    budget = tight_budget(graph, seed)
    best = optimum_by_segments(graph, budget, order=graph.default_order)
    plan = solve(graph, budget, mode="fixed-order")
    assert plan.extra_bytes == best and plan.summary.status == "optimal"
    assert plan.order == graph.default_order
    assert_consistent(plan)
    inst = Instance.build(graph, Accelerator(budget), "fixed-order")
    assert bounds.lower_bound(inst) * inst.cost_unit <= best


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_milp_equals_the_oracle(seed: int) -> None:
    graph = random_graph(seed, max_ops=6)
    budget = tight_budget(graph, seed)
    for solver in ("highs", "cbc"):
        plan = solve(graph, budget, solver=solver)
        assert plan.extra_bytes == optimum_by_segments(graph, budget), solver
        assert plan.summary.status == "optimal"
        assert_consistent(plan)
    plan = solve(graph, budget, mode="fixed-order", solver="highs")
    assert plan.extra_bytes == optimum_by_segments(graph, budget, order=graph.default_order)


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_min_peak_equals_the_oracle(seed: int) -> None:
    graph = random_graph(seed, max_ops=6)
    size = min_peak_by_segments(graph)
    for solver in ("cpsat", "highs"):
        plan = solve(graph, 2 * size, mode="min-peak", solver=solver)
        assert plan.summary.details["extent_bytes"] == size, solver
        inst = Instance.build(graph, Accelerator(2 * size), "min-peak")
        assert bounds.extent_bound(inst) * inst.unit <= size


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS, alignment=st.sampled_from([2, 3]))
def test_aligned_offsets_lose_nothing(seed: int, alignment: int) -> None:
    """With alignment the scaled model still finds the oracle's optimum over aligned offsets."""
    graph = random_graph(seed, max_ops=5)
    budget = max(graph.working_set(o.name, alignment) for o in graph.ops) + random.Random(seed).randint(0, 2)
    # work, not speed, limits the solve: a wall clock of 30 s failed once with both cores busy
    options = Options(time_limit=600, solver_params={"max_deterministic_time": "30"})
    plan = solve_exact(graph, Accelerator(budget, alignment), options, mode="joint")
    assert plan.extra_bytes == optimum_by_segments(graph, budget, alignment=alignment)
    assert all(getattr(s, "offset", 0) % alignment == 0 for s in plan.steps)


# ---------------------------------------------------------------------- plumbing
def test_never_worse_than_the_best_baseline_even_without_time() -> None:
    graph = random_graph(17)
    budget = graph.min_scratchpad
    baseline = best_baseline(graph, Accelerator(budget), Options())
    plan = solve_exact(graph, Accelerator(budget), Options(time_limit=0.0), mode="joint")
    assert plan.extra_bytes <= baseline.extra_bytes
    assert plan.summary.status in ("optimal", "time-limit")
    assert plan.summary.bound is not None and plan.summary.bound <= plan.extra_bytes


def test_same_seed_same_plan() -> None:
    graph = FIXTURES["two_branches"]().graph
    plans = [solve_exact(graph, Accelerator(22), Options(seed=3), mode="joint") for _ in range(2)]
    assert plans[0].steps == plans[1].steps


def test_solver_parameters_pass_through_and_are_checked() -> None:
    graph = FIXTURES["diamond"]().graph
    assert parse_solver_params(["log_search_progress=false", "linearization_level = 2"]) == {
        "log_search_progress": "false",
        "linearization_level": "2",
    }
    plan = compile(graph, 28, method="joint", solver_params={"linearization_level": "2"})
    assert plan.extra_bytes == 8
    with pytest.raises(OptionError, match="no parameter"):
        compile(graph, 28, method="joint", solver_params={"no_such_knob": "1"})
    with pytest.raises(OptionError, match="NAME=VALUE"):
        parse_solver_params(["linearization_level"])
    with pytest.raises(OptionError, match="unknown solver"):
        compile(graph, 28, method="joint", solver="gurobi")


def test_auto_is_the_exact_joint_method() -> None:
    plan = compile(FIXTURES["two_branches"]().graph, 22)
    assert plan.summary.method == "joint" and plan.extra_bytes == 4 and plan.summary.status == "optimal"


def ctrl_c_once_waiting() -> None:
    """Ctrl-C once the main thread waits in :func:`run_interruptibly`'s loop (a Ctrl-C that lands while it
    starts the worker is not the case under test): polled, so however slowly the main thread gets there."""
    main = threading.main_thread().ident
    while True:
        frame = sys._current_frames().get(main)
        if (
            frame is not None
            and frame.f_code is run_interruptibly.__code__
            and "sleep" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        ):
            break
        time.sleep(0.001)
    _thread.interrupt_main()


def test_ctrl_c_stops_the_solver_and_keeps_its_result() -> None:
    stopped = threading.Event()

    def slow() -> str:
        ctrl_c_once_waiting()
        return "best so far" if stopped.wait(60) else "never stopped"

    result, interrupted = run_interruptibly(slow, stopped.set)
    assert (result, interrupted) == ("best so far", True)


class _CtrlCOnFirstSolution:
    """A progress receiver that presses Ctrl-C when the first incumbent arrives (no guess at how long it takes)."""

    def __init__(self) -> None:
        self.incumbents: list[float] = []

    def update(self, incumbent: float | None = None, bound: float | None = None) -> None:
        if incumbent is not None:
            if not self.incumbents:
                ctrl_c_once_waiting()
            self.incumbents.append(incumbent)


@pytest.mark.slow
def test_ctrl_c_during_cpsat_returns_its_best_solution() -> None:
    from cosma import load_onnx

    graph = load_onnx(zoo_path("transformer"), element_bytes=1, weights=False)
    inst = Instance.build(graph, Accelerator(114688))  # its M_H: far from solved when its first solution comes
    warm = best_baseline(graph, inst.accelerator, Options(minpeak_time_limit=1))
    model = cpsat.build(inst, addresses=False, upper=warm.extra_bytes // inst.cost_unit)
    cpsat.add_hint(model, residency_of_plan(warm))
    progress = _CtrlCOnFirstSolution()
    # the deterministic limit is far beyond the first solution: a search that ends without Ctrl-C fails the test
    outcome = solve_cpsat(model, SolverParams(time_limit=600, extra={"max_deterministic_time": "300"}), progress)
    assert progress.incumbents and outcome.interrupted
    assert outcome.status == "feasible" and outcome.residency is not None
    assert outcome.bound is not None and outcome.bound <= outcome.objective <= warm.extra_bytes // inst.cost_unit


def test_cbc_bound_adds_the_objective_constant() -> None:
    """CBC never sees the objective's constant (minus the compulsory loads): its logged bound must get it back."""
    log = "Result - Stopped on time limit\n\nNo feasible solution found\nLower bound:          85281322.000\n"
    assert cbc.cbc_bound(log, -33901098.0) == 51380224
    assert cbc.cbc_bound("Result - Stopped on time limit\n", 5.0) is None


def test_milp_tolerance_is_below_one_unit_over_big_m() -> None:
    graph = FIXTURES["two_branches"]().graph
    m = milp.build(Instance.build(graph, Accelerator(22)))
    assert milp.integrality_tolerance(m) * m.big_m < 0.5


# ------------------------------------------------- every solution, cut short or not
def first_solutions(m: cpsat.CpSatModel, k: int) -> list[tuple[int, Residency]]:
    """The objective and residency of each of the first ``k`` solutions CP-SAT reports, then it stops."""
    found: list[tuple[int, Residency]] = []

    class Stop(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            found.append((round(self.objective_value), cpsat.decode(m, self.value)))
            if len(found) >= k:
                self.stop_search()

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = 30.0
    solver.solve(m.model, Stop())
    return found


@pytest.mark.parametrize("addresses", [False, True], ids=["relaxation", "full"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_every_solution_replays_to_its_objective(addresses: bool, k: int) -> None:
    """The first solutions of DenseNet-121's fixed-order models at M_R, hinted like the solve hints them, replay
    to exactly their objective (a store was once paid for in the model without a reload: model 2x the replay)."""
    from cosma import load_onnx

    graph = load_onnx(zoo_path("densenet121"), element_bytes=1, weights=False)
    accelerator = Accelerator(graph.min_scratchpad)
    warm = best_baseline(graph, accelerator, Options())
    inst = Instance.build(graph, accelerator, "fixed-order", warm.order)
    m = cpsat.build(inst, addresses=addresses, lower=bounds.lower_bound(inst), upper=warm.extra_bytes // inst.cost_unit)
    cpsat.add_hint(m, residency_of_plan(warm))
    solutions = first_solutions(m, k)
    assert len(solutions) == k
    for objective, residency in solutions:
        if not addresses:
            residency = place(inst, residency, SolverParams(time_limit=60)).residency
            assert residency is not None
        assert residency.to_plan(graph, accelerator, method="x").extra_bytes == objective * inst.cost_unit


@pytest.mark.slow
def test_phases_cut_short_after_their_first_solution_agree_with_their_replay() -> None:
    """Every CP-SAT phase stops at its first solution: no phase's model disagrees with its replay."""
    from cosma import load_onnx

    graph = load_onnx(zoo_path("densenet121"), element_bytes=1, weights=False)
    plan = solve_exact(
        graph,
        Accelerator(graph.min_scratchpad),
        Options(time_limit=120, solver_params={"stop_after_first_solution": "true"}),
        mode="joint",
    )
    assert_consistent(plan)
    phases = {p["phase"] for p in plan.summary.details["phases"]}
    assert {"fixed order: relaxation", "fixed order: allocation"} <= phases


# ------------------------------------------------------------------------- zoo
@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet50", "densenet121"])
def test_zoo_no_extra_traffic_at_min_peak_and_never_worse(model: str) -> None:
    from cosma import load_onnx
    from cosma.budgets import graph_budgets

    graph = load_onnx(zoo_path(model), element_bytes=1, weights=False)
    b = graph_budgets(graph, time_limit=10)
    at_mp = solve_exact(graph, Accelerator(b.m_p), Options(time_limit=30), mode="joint")
    assert at_mp.extra_bytes == 0
    at_mr = solve_exact(graph, Accelerator(b.m_r), Options(time_limit=30), mode="joint")
    assert at_mr.extra_bytes <= at_mr.summary.details["baseline_extra_bytes"]
    assert_consistent(at_mr)
