"""Solver backends: one registry, a backend added at run time, models written out and read back, early stops.

- the registry lists the three backends, ``--solver`` and ``Options.solver`` take their names and refuse others;
- a toy backend (CP-SAT under a fixed seed, counting its calls) registered here is one class and one call:
  ``compile(..., solver="toy")`` and ``cosma compile --solver toy`` use it;
- ``dump_model`` writes every model the exact method builds; CP-SAT's proto parses, HiGHS reads the MPS and
  solves it to the optimum;
- a MILP solution cut short at its first solution replays to its objective (no store without a reload);
- Ctrl-C while :func:`run_interruptibly` starts its thread stops the solve instead of escaping.
"""

from __future__ import annotations

import _thread
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from google.protobuf import text_format
from graphs import FIXTURES
from ortools.sat import cp_model_pb2
from ortools.sat.python import cp_model
from test_formulation import random_graph

from cosma.backends import backend_names, cpsat, get_backend, register_backend, unregister_backend
from cosma.backends.base import Formulation, Progress, SolveResult, SolverParams, run_interruptibly
from cosma.cli import main
from cosma.errors import OptionError
from cosma.formulation import milp
from cosma.formulation.instance import Instance
from cosma.formulation.residency import Residency
from cosma.hardware import Accelerator
from cosma.methods import compile
from cosma.options import Options


def test_the_registry_holds_the_three_backends_and_refuses_other_names() -> None:
    assert backend_names() == ("cbc", "cpsat", "highs")
    assert {n: get_backend(n).formulation for n in backend_names()} == {
        "cbc": "milp",
        "cpsat": "cpsat",
        "highs": "milp",
    }
    with pytest.raises(OptionError, match=r"^unknown solver 'gurobi'; choose one of: auto, cbc, cpsat, highs$"):
        compile(FIXTURES["diamond"]().graph, 28, method="joint", solver="gurobi")


# ---------------------------------------------------------------- a new backend
class FixedSeedCpSat:
    """CP-SAT under seed 7 whatever the options say; counts the models it solves."""

    name: ClassVar[str] = "toy"
    formulation: ClassVar[Formulation] = "cpsat"
    summary: ClassVar[str] = "CP-SAT with a fixed seed (a test's backend)"
    model_suffix: ClassVar[str] = ".pb"

    def __init__(self) -> None:
        self.solved = 0

    def solve(
        self, model: Any, params: SolverParams, progress: Progress | None = None, hint: Residency | None = None
    ) -> SolveResult:
        self.solved += 1
        return get_backend("cpsat").solve(model, replace(params, seed=7), progress, hint)

    def dump(self, model: Any, path: Path) -> None:
        get_backend("cpsat").dump(model, path)


@pytest.fixture
def toy() -> Iterator[FixedSeedCpSat]:
    backend = FixedSeedCpSat()
    register_backend(backend)
    yield backend
    unregister_backend(backend.name)


def test_a_backend_registered_at_run_time_is_a_solver(toy: FixedSeedCpSat) -> None:
    assert "toy" in backend_names()
    plan = compile(FIXTURES["two_branches"]().graph, 22, method="joint", solver="toy", neighbourhood_bound=False)
    assert toy.solved > 0
    assert plan.extra_bytes == 4 and plan.summary.status == "optimal"
    assert plan.summary.details["solver"] == "toy"


def test_the_cli_offers_the_registered_backends(toy: FixedSeedCpSat, tmp_path: Path) -> None:
    runner = CliRunner()
    assert "[auto|cbc|cpsat|highs|toy]" in runner.invoke(main, ["compile", "--help"]).output
    model = Path(__file__).resolve().parent.parent / "models" / "resnet50.onnx"
    args = ["compile", str(model), "--element-bytes", "1", "-s", "M_R", "-q", "--time-limit", "20"]
    result = runner.invoke(main, [*args, "--solver", "toy", "-o", str(tmp_path / "plan.json")])
    assert result.exit_code == 0, result.output
    assert toy.solved > 0
    assert json.loads((tmp_path / "plan.json").read_text())["summary"]["details"]["solver"] == "toy"
    refused = runner.invoke(main, [*args, "--solver", "gurobi"])
    assert refused.exit_code == 2 and "'gurobi' is not one of 'auto', 'cbc', 'cpsat', 'highs', 'toy'" in refused.output


# ------------------------------------------------------------------- dump_model
def test_cpsat_models_are_written_and_parse_back(tmp_path: Path) -> None:
    graph = random_graph(3, max_ops=12, max_size=9)  # its warm start is not optimal: the solver runs
    options = {"method": "joint", "neighbourhood_bound": False, "dump_model": str(tmp_path)}
    compile(graph, graph.min_scratchpad, single_phase=True, **options)
    compile(graph, graph.min_scratchpad, **options)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[:2] == ["001-random3-joint-cpsat.pb.txt", "002-random3-joint-relaxation.pb.txt"]
    full, relaxation = (_variables(tmp_path / name) for name in names[:2])
    assert {"pos", "next", "keep", "spill", "addr", "break"} <= full
    assert "keep" in relaxation and "addr" not in relaxation


def _variables(path: Path) -> set[str]:
    """The families (name up to ``[``) of a written CP-SAT model's variables."""
    proto = text_format.Parse(path.read_text(), cp_model_pb2.CpModelProto())
    return {v.name.split("[")[0] for v in proto.variables if v.name}


# HiGHS runs in a process of its own: it cannot share one with OR-Tools (cosma/backends/highs_worker.py says why)
READ_WITH_HIGHS = """
import json, sys, highspy
h = highspy.Highs()
h.setOptionValue("output_flag", False)
assert h.readModel(sys.argv[1]) == highspy.HighsStatus.kOk
h.run()
print(json.dumps({"names": list(h.getLp().col_names_), "objective": h.getInfo().objective_function_value}))
"""


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_the_milp_is_written_as_mps_that_highs_reads_and_solves(solver: str, tmp_path: Path) -> None:
    graph = FIXTURES["diamond"]().graph
    plan = compile(graph, 28, method="fixed-order", order="default", solver=solver, dump_model=str(tmp_path))
    (path,) = tmp_path.iterdir()
    assert path.name == f"001-{graph.name}-fixed-order-{solver}.mps"
    read = subprocess.run([sys.executable, "-c", READ_WITH_HIGHS, str(path)], capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    found = json.loads(read.stdout.splitlines()[-1])
    assert {n.split("_")[0] for n in found["names"]} >= {"P", "L", "D", "a"}
    # the file's objective leaves out the model's constant (less the compulsory loads): add it back
    inst = Instance.build(graph, Accelerator(28), "fixed-order", graph.default_order)
    constant = milp.build(inst).lp.objective.constant
    assert round(found["objective"] + constant) * inst.cost_unit == plan.extra_bytes


# ------------------------------------------------ MILP solutions cut short
@pytest.mark.parametrize(
    ("solver", "stop"), [("cbc", {"maxSolutions": "1"}), ("highs", {"mip_max_improving_sols": "1"})]
)
@pytest.mark.parametrize("seed", [1, 23, 5])
def test_a_milp_solution_stopped_early_replays_to_its_objective(solver: str, stop: dict[str, str], seed: int) -> None:
    """CBC's first solution on random graphs 1 and 23 once paid for stores its plan never made (4 B replayed,
    7 B claimed on graph 23) before the MILP tied a spill to a later reload."""
    graph = random_graph(seed, max_ops=10, max_size=6)
    inst = Instance.build(graph, Accelerator(graph.min_scratchpad))
    outcome = get_backend(solver).solve(milp.build(inst), SolverParams(time_limit=60, extra=stop))
    assert outcome.residency is not None and outcome.objective is not None
    plan = outcome.residency.to_plan(graph, inst.accelerator, method="x")
    assert plan.extra_bytes == outcome.objective * inst.cost_unit


# --------------------------------------------------------- Ctrl-C at thread start
def test_ctrl_c_while_the_solver_thread_starts_stops_the_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    stopped = threading.Event()
    start = threading.Thread.start

    def start_with_ctrl_c(self: threading.Thread) -> None:
        if self.name == "cosma-solver":
            _thread.interrupt_main()  # lands inside Thread.start, as a Ctrl-C pressed at that moment would
        start(self)

    monkeypatch.setattr(threading.Thread, "start", start_with_ctrl_c)
    result, interrupted = run_interruptibly(lambda: "stopped" if stopped.wait(60) else "never stopped", stopped.set)
    assert (result, interrupted) == ("stopped", True)


def test_cpsat_searches_with_the_interleaved_portfolio_unless_told_to_race_or_short_of_time() -> None:
    solver = cp_model.CpSolver()
    cpsat.configure(solver, SolverParams(time_limit=5, threads=3, seed=7))
    p = solver.parameters
    assert (p.interleave_search, p.interleave_batch_size) == (True, cpsat.PORTFOLIO_BATCH)
    assert (p.num_workers, p.random_seed) == (3, 7)
    # --threads stays the OS thread count; a user can still race the workers, CP-SAT's plain portfolio
    cpsat.configure(solver, SolverParams(time_limit=5, threads=3, seed=7, extra={"interleave_search": "false"}))
    assert not solver.parameters.interleave_search and solver.parameters.num_workers == 3
    # a short phase (a 1 s neighbourhood bound) runs one default worker: the batches would cost more than they bring
    solver = cp_model.CpSolver()
    cpsat.configure(solver, SolverParams(time_limit=cpsat.PORTFOLIO_MIN_SECONDS / 2, threads=3, seed=7))
    assert not solver.parameters.interleave_search and solver.parameters.num_workers == 1


def test_the_default_exact_solve_gives_one_plan_run_after_run_and_for_any_thread_count() -> None:
    graph = random_graph(11, max_ops=14)
    size = graph.min_scratchpad
    plans = [
        compile(graph, size, method="joint", options=Options(threads=threads), neighbourhood_bound=False)
        for threads in (Options().threads, Options().threads, 2, 3)
    ]
    assert plans[0].summary.status == "optimal"
    assert all(p.steps == plans[0].steps for p in plans[1:])


def test_a_solver_that_overruns_its_limit_is_stopped_and_keeps_its_result() -> None:
    """The safety net: a solver still running 10% + 1 s past its limit is told to stop; that is no Ctrl-C."""
    import threading

    from cosma.backends.base import run_interruptibly

    stopped = threading.Event()

    def stubborn() -> str:
        stopped.wait(timeout=600)  # ignores its own limit; returns its best only when told to stop
        return "best so far"

    result, interrupted = run_interruptibly(stubborn, stopped.set, time_limit=0.0)
    assert stopped.is_set() and result == "best so far" and not interrupted
