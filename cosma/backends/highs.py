"""HiGHS (highspy) on the MILP (:mod:`cosma.formulation.milp`), in a process of its own.

HiGHS runs in :mod:`cosma.backends.highs_worker`, a script started with the model as arrays: OR-Tools bundles
its own HiGHS under highspy's shared-object name, and whichever of the two loads second fails to link. The
warm start goes in as ``setSolution``, progress comes from HiGHS's improving-solution callback, Ctrl-C becomes
a SIGINT to the worker, which cancels the search and still reports its best solution. ``--solver-param
NAME=VALUE`` sets any HiGHS option by name. Models are written as free MPS (``.mps``) or LP (``.lp``) files,
which HiGHS (``highs model.mps``) and most MILP solvers read.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pulp

from cosma.backends.base import (
    FunctionBackend,
    NoProgress,
    Progress,
    SolveResult,
    SolverParams,
    SolveStatus,
    register_backend,
    run_interruptibly,
)
from cosma.errors import OptionError, SolverError
from cosma.formulation.milp import MilpModel, decode, export, hint_values, integrality_tolerance
from cosma.formulation.residency import Residency


def solve(
    m: MilpModel, params: SolverParams, progress: Progress | None = None, hint: Residency | None = None
) -> SolveResult:
    """HiGHS in its own process (see :mod:`cosma.backends.highs_worker` for why), fed the PuLP model's arrays."""
    payload, column = highs_payload(m, params, hint)
    variables = m.lp.variables()
    started = time.perf_counter()
    result, interrupted = run_worker(payload, progress or NoProgress())
    seconds = time.perf_counter() - started
    if "error" in result:
        raise OptionError(f"--solver-param: {result['error']}")
    statuses: dict[str, SolveStatus] = {
        "Optimal": "optimal",
        "Infeasible": "infeasible",
        "Time limit reached": "time-limit",
        "Interrupted by user": "feasible",
    }
    kind = statuses.get(result["status"], "unknown")
    objective = round(result["objective"]) if result["has_solution"] else None
    bound = (
        objective if kind == "optimal" else (math.ceil(result["bound"] - 1e-6) if result["bound"] is not None else None)
    )
    residency = None
    if result["has_solution"]:
        col = result["col_value"]
        residency = decode(m, lambda v: col[column[v.name]])
    return SolveResult(
        kind,
        objective,
        bound,
        seconds,
        residency,
        interrupted or result["interrupted"],
        details={"nodes": result["nodes"], "rows": len(payload["starts"]), "columns": len(variables)},
    )


def highs_payload(m: MilpModel, params: SolverParams, hint: Residency | None) -> tuple[dict[str, Any], dict[str, int]]:
    """What highs_worker.py reads: the model as arrays, HiGHS's options and the start; and each variable's column."""
    lp = m.lp
    variables = lp.variables()
    column = {v.name: i for i, v in enumerate(variables)}
    index: list[int] = []
    starts, vals, row_lo, row_hi = [], [], [], []
    for c in lp.constraints.values():
        starts.append(len(index))
        for v, coef in c.items():
            if coef:
                index.append(column[v.name])
                vals.append(coef)
        bound = -c.constant
        row_lo.append(bound if c.sense in (pulp.LpConstraintGE, pulp.LpConstraintEQ) else -math.inf)
        row_hi.append(bound if c.sense in (pulp.LpConstraintLE, pulp.LpConstraintEQ) else math.inf)
    options: dict[str, Any] = {
        "time_limit": float(max(params.time_limit, 0.001)),
        "random_seed": int(params.seed),
        "threads": int(params.threads),
        "mip_feasibility_tolerance": integrality_tolerance(m),
        "mip_rel_gap": 0.0,
        "mip_abs_gap": 0.999,  # costs are integers: within 1 of the bound is optimal
    }
    for name, value in params.extra.items():
        options[name] = _highs_value(value)
    payload: dict[str, Any] = {
        "cost": np.array([lp.objective.get(v, 0.0) for v in variables], dtype=np.float64),
        "col_lower": np.array([-math.inf if v.lowBound is None else v.lowBound for v in variables], dtype=np.float64),
        "col_upper": np.array([math.inf if v.upBound is None else v.upBound for v in variables], dtype=np.float64),
        "integer": np.array([i for i, v in enumerate(variables) if v.cat == pulp.LpInteger], dtype=np.int32),
        "row_lower": np.array(row_lo, dtype=np.float64),
        "row_upper": np.array(row_hi, dtype=np.float64),
        "starts": np.array(starts, dtype=np.int32),
        "index": np.array(index, dtype=np.int32),
        "values": np.array(vals, dtype=np.float64),
        "offset": float(lp.objective.constant),
        "options": options,
    }
    if hint is not None:
        hinted = hint_values(m, hint)
        idx = np.array([column[k] for k in hinted if k in column], dtype=np.int32)
        payload["start"] = (idx, np.array([hinted[variables[i].name] for i in idx], dtype=np.float64))
    return payload, column


def _highs_value(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def run_worker(payload: dict[str, Any], progress: Progress, log: Path | None = None) -> tuple[dict[str, Any], bool]:
    """Run highs_worker.py on ``payload``; returns (its result, whether Ctrl-C stopped it).

    The protocol runs over two pipes of its own (``pass_fds``), so nothing that HiGHS or Python prints can reach
    it: the worker's descriptors 1 and 2 both go to a log file. That log is deleted after a clean run and kept
    (its path and last line in the error) when the worker dies; a caller that passes ``log`` keeps it always.
    """
    worker = Path(__file__).with_name("highs_worker.py")
    keep = log is not None
    if log is None:
        fd, name = tempfile.mkstemp(prefix="cosma-highs-", suffix=".log")
        os.close(fd)
        log = Path(name)
    payload_r, payload_w = os.pipe()
    channel_r, channel_w = os.pipe()
    try:
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, str(worker), "--payload-fd", str(payload_r), "--channel-fd", str(channel_w)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                pass_fds=(payload_r, channel_w),
            )
    except BaseException:
        os.close(payload_w)
        os.close(channel_r)
        raise
    finally:
        # the child has its copies; ours must go or the channel never reaches end of file
        os.close(payload_r)
        os.close(channel_w)
    stop_sent = False

    def stop() -> None:
        nonlocal stop_sent
        stop_sent = True
        proc.send_signal(signal.SIGINT)

    def exchange() -> dict[str, Any] | None:
        with open(channel_r, encoding="utf-8") as channel:
            try:
                with open(payload_w, "wb") as sink:
                    sink.write(pickle.dumps(payload))
            except BrokenPipeError:
                pass  # the worker died before reading it all: its log says why
            for line in channel:
                message = json.loads(line)
                if "result" in message:
                    return message["result"]
                progress.update(incumbent=message["incumbent"], bound=message["bound"])
        return None

    try:
        result, interrupted = run_interruptibly(exchange, stop, payload["options"].get("time_limit"))
    finally:
        proc.wait()
    if result is None and not stop_sent:
        # the last lines that start a message (a traceback's exception line, not a wrapped array)
        lines = [line for line in log.read_text(errors="replace").splitlines() if line[:1].strip()]
        tail = " | ".join(lines[-3:])[-600:] or "(its log is empty)"
        raise SolverError(
            f"the HiGHS worker ended without a result (exit status {proc.returncode}): {tail}; "
            f"its output is kept in {log}"
        )
    if not keep:
        log.unlink(missing_ok=True)
    if result is None:
        # Ctrl-C reached the worker before it could catch it (while Python started): nothing was found
        result = {
            "status": "Interrupted by user",
            "has_solution": False,
            "objective": None,
            "bound": None,
            "nodes": 0,
            "interrupted": True,
            "col_value": None,
        }
    return result, interrupted


BACKEND = register_backend(FunctionBackend("highs", "milp", "HiGHS on the COSMA MILP", ".mps", solve, export))
