"""CBC on the MILP (:mod:`cosma.formulation.milp`), through PuLP's bundled ``cbc`` command.

The warm start goes in as PuLP's ``warmStart``; CBC's proven bound is read from its log. ``--solver-param
NAME=VALUE`` passes ``NAME VALUE`` to the command (e.g. ``maxSolutions=1``). CBC checks its clock only between
nodes, so it can overrun its time limit, and its preprocessing has declared feasible big-M models infeasible:
a CBC "infeasible" is reported as ``unknown``. Models are written as free MPS (``.mps``) or LP (``.lp``).
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from pathlib import Path

import pulp

from cosma.backends.base import FunctionBackend, Progress, SolveResult, SolverParams, SolveStatus, register_backend
from cosma.formulation.milp import MilpModel, decode, export, hint_values, integrality_tolerance
from cosma.formulation.residency import Residency

_CBC_BOUND = re.compile(r"(?:Lower bound|Best possible):\s*(-?[0-9.eE+]+)")


def cbc_bound(log: str, offset: float) -> int | None:
    """CBC's last proven lower bound in its log, plus the objective's constant (which CBC never sees)."""
    found = _CBC_BOUND.findall(log)
    return math.ceil(float(found[-1]) + offset - 1e-6) if found else None


def solve(
    m: MilpModel, params: SolverParams, progress: Progress | None = None, hint: Residency | None = None
) -> SolveResult:
    """CBC through PuLP, warm-started from ``hint``; no progress reports (CBC runs as a command to its end)."""
    lp = m.lp
    if hint is not None:
        hinted = hint_values(m, hint)
        for v in lp.variables():
            if v.name in hinted:
                v.setInitialValue(hinted[v.name])
    options = [
        f"randomCbcSeed {max(params.seed, 1)}",
        f"integerTolerance {integrality_tolerance(m)}",
        "timeMode elapsed",
    ]  # the time limit is wall-clock, like the other backends'
    options += [f"{k} {v}" for k, v in params.extra.items()]
    with tempfile.TemporaryDirectory(prefix="cosma-cbc-") as tmp:
        log = Path(tmp) / "cbc.log"
        solver = pulp.PULP_CBC_CMD(
            msg=False,
            timeLimit=max(params.time_limit, 1),
            threads=params.threads,
            warmStart=hint is not None,
            options=options,
            logPath=str(log),
            keepFiles=False,
        )
        started = time.perf_counter()
        interrupted = False
        try:
            lp.solve(solver)
        except KeyboardInterrupt:
            interrupted = True
        except pulp.PulpSolverError:
            pass
        seconds = time.perf_counter() - started
        text = log.read_text() if log.exists() else ""
    status = lp.status if not interrupted else pulp.LpStatusNotSolved
    sol_status = lp.sol_status if not interrupted else pulp.LpSolutionNoSolutionFound
    has_solution = sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    if interrupted:
        kind: SolveStatus = "feasible"
    elif status == pulp.LpStatusInfeasible:
        # not trusted: CBC's preprocessing declares feasible big-M models of the zoo infeasible
        # ("Cut generators found to be infeasible"); without a proof we only know nothing was found
        kind = "unknown"
    elif sol_status == pulp.LpSolutionOptimal:
        kind = "optimal"
    elif "Stopped on time" in text:
        kind = "time-limit"
    else:
        kind = "unknown"
    objective = round(pulp.value(lp.objective)) if has_solution else None
    bound = objective if kind == "optimal" else None
    if bound is None:
        bound = cbc_bound(text, lp.objective.constant)
    residency = decode(m, lambda v: v.varValue or 0.0) if has_solution else None
    return SolveResult(kind, objective, bound, seconds, residency, interrupted)


BACKEND = register_backend(FunctionBackend("cbc", "milp", "CBC on the COSMA MILP", ".mps", solve, export))
