"""OR-Tools CP-SAT on the CP-SAT model (:mod:`cosma.formulation.cpsat`): the default backend.

``--solver-param NAME=VALUE`` sets any field of CP-SAT's ``SatParameters`` by name, typed like the field.
Models are written as CP-SAT's ``CpModelProto``: text (``.pb.txt``, readable, the default) or binary
(``.pb``); ``python -c "from ortools.sat.python import cp_model; m = cp_model.CpModel();
m.Proto().ParseFromString(open('model.pb', 'rb').read())"`` reads the binary one back, and
``google.protobuf.text_format`` the text one. Models are written before their hint is added.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from ortools.sat import sat_parameters_pb2
from ortools.sat.python import cp_model

from cosma.backends.base import (
    FunctionBackend,
    NoProgress,
    Progress,
    SolveResult,
    SolverParams,
    SolveStatus,
    register_backend,
    run_interruptibly,
    typed,
)
from cosma.errors import OptionError, SolverError
from cosma.formulation.cpsat import CpSatModel, add_hint, read_solution
from cosma.formulation.residency import Residency


class _Reporter(cp_model.CpSolverSolutionCallback):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress
        self.stopping = False

    def stop(self, solver: cp_model.CpSolver) -> None:
        """Ask the search to stop; asked again at each later solution, in case the first request came
        before the search could take it (seen under load with the interleaved portfolio)."""
        self.stopping = True
        solver.stop_search()

    def on_solution_callback(self) -> None:
        self.progress.update(incumbent=self.objective_value, bound=self.best_objective_bound)
        if self.stopping:
            self.stop_search()


#: tasks per synchronised batch of the interleaved portfolio: one round of CP-SAT's 8 full-model subsolvers. Fixed,
#: not CP-SAT's default (3 x workers), so that the search, hence the plan, does not depend on the thread count.
PORTFOLIO_BATCH = 8
#: phases given less time than this run CP-SAT's single default worker instead: the portfolio's batches cost more
#: than they bring there (NASNet at M_H: its 1 s neighbourhood bound, proven by one worker in 0.8 s, is lost).
PORTFOLIO_MIN_SECONDS = 2.0


def configure(solver: cp_model.CpSolver, params: SolverParams) -> None:
    """Time limit, seed and search, then any ``--solver-param`` by its SatParameters name.

    The search is deterministic whatever ``params.threads``: CP-SAT's portfolio (its 8 full-model subsolvers and
    LNS) interleaved in batches of :data:`PORTFOLIO_BATCH` tasks run on ``params.threads`` OS threads, the same
    search for any count from 2 on (1 thread runs CP-SAT's sequential variant); a solve given less than
    :data:`PORTFOLIO_MIN_SECONDS` runs one default worker. ``--solver-param interleave_search=false`` races
    ``params.threads`` workers instead (CP-SAT's plain portfolio: often faster, not reproducible).
    """
    p = solver.parameters
    p.max_time_in_seconds = max(params.time_limit, 0.001)
    p.random_seed = params.seed
    if params.time_limit < PORTFOLIO_MIN_SECONDS:
        p.num_workers = 1
    else:
        p.num_workers = params.threads
        p.interleave_search = True
        p.interleave_batch_size = PORTFOLIO_BATCH
    p.catch_sigint_signal = False  # Ctrl-C reaches Python, which stops the search (run_interruptibly)
    for name, value in params.extra.items():
        if name not in sat_parameters_pb2.SatParameters.DESCRIPTOR.fields_by_name:
            raise OptionError(f"--solver-param {name}: CP-SAT has no parameter of that name (see sat_parameters.proto)")
        try:
            setattr(p, name, typed(value, getattr(p, name)))
        except (TypeError, ValueError) as e:
            raise OptionError(f"--solver-param {name}={value}: {e}") from None


_STATUS: dict[cp_model.CpSolverStatus, SolveStatus] = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.UNKNOWN: "unknown",
    cp_model.MODEL_INVALID: "unknown",
}


def solve(
    m: CpSatModel, params: SolverParams, progress: Progress | None = None, hint: Residency | None = None
) -> SolveResult:
    """Solve a built model (hinted from ``hint`` first, when given); the result carries the best residency found."""
    progress = progress or NoProgress()
    if hint is not None:
        add_hint(m, hint)
    solver = cp_model.CpSolver()
    configure(solver, params)
    solver.best_bound_callback = lambda b: progress.update(bound=b)
    started = time.perf_counter()
    reporter = _Reporter(progress)
    status, interrupted = run_interruptibly(
        lambda: solver.solve(m.model, reporter), lambda: reporter.stop(solver), params.time_limit
    )
    seconds = time.perf_counter() - started
    kind = _STATUS.get(status, "unknown")
    if status == cp_model.MODEL_INVALID:
        raise SolverError(f"CP-SAT rejected the model: {m.model.validate()}")
    has_solution = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    if kind in ("feasible", "unknown") and not interrupted and seconds >= params.time_limit * 0.98:
        kind = "time-limit"
    objective = round(solver.objective_value) if has_solution else None
    bound = None
    if kind == "optimal":
        bound = objective
    elif has_solution or kind in ("unknown", "time-limit"):
        bound = math.ceil(solver.best_objective_bound - 1e-6)
    residency = read_solution(m, solver.value) if has_solution else None
    return SolveResult(
        status=kind,
        objective=objective,
        bound=bound,
        seconds=seconds,
        residency=residency,
        interrupted=interrupted,
        details={"conflicts": solver.num_conflicts, "branches": solver.num_branches},
    )


def dump(m: CpSatModel, path: Path) -> None:
    """The model's ``CpModelProto``: text when ``path`` ends in ``.txt``, binary otherwise."""
    if not m.model.export_to_file(str(path)):
        raise SolverError(f"CP-SAT could not write the model to {path}")


BACKEND = register_backend(
    FunctionBackend(
        "cpsat", "cpsat", "OR-Tools CP-SAT (relaxation, allocation, then the full model)", ".pb.txt", solve, dump
    )
)
