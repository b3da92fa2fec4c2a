"""Run HiGHS (highspy) on a MILP in a process of its own; executed as a script, never imported by cosma.

Why a process: OR-Tools bundles its own HiGHS library under the same shared-object name as highspy's
(``libhighs.so.1``), so whichever loads second fails to link; cosma loads OR-Tools. This script imports
nothing of cosma, only highspy and numpy.

Protocol: the parent writes one pickled dict to standard input (the matrix, bounds, integrality, options,
an optional start) and reads JSON lines from standard output: ``{"incumbent": x, "bound": y}`` while
solving, then one ``{"result": {...}}``. SIGINT (Ctrl-C, or the parent asking) stops the search and the
best solution so far is still reported.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import sys
from typing import Any

#: The protocol's channel: the original standard output. Anything else printed (highspy prints a line when it
#: catches Ctrl-C) goes to standard error instead, so it cannot corrupt the protocol.
_CHANNEL = os.fdopen(os.dup(1), "w")
sys.stdout = sys.stderr


def _send(message: dict[str, Any]) -> None:
    _CHANNEL.write(json.dumps(message) + "\n")
    _CHANNEL.flush()


def solve(payload: dict[str, Any]) -> dict[str, Any]:
    import highspy
    import numpy as np

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    lower = np.where(np.isfinite(payload["col_lower"]), payload["col_lower"], -inf)
    upper = np.where(np.isfinite(payload["col_upper"]), payload["col_upper"], inf)
    n = len(lower)
    h.addCols(n, payload["cost"], lower, upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    ints = payload["integer"]
    if len(ints):
        h.changeColsIntegrality(len(ints), ints, np.ones(len(ints), dtype=np.uint8))
    row_lo = np.where(np.isfinite(payload["row_lower"]), payload["row_lower"], -inf)
    row_hi = np.where(np.isfinite(payload["row_upper"]), payload["row_upper"], inf)
    h.addRows(len(row_lo), row_lo, row_hi, len(payload["index"]), payload["starts"], payload["index"],
              payload["values"])
    for name, value in payload["options"].items():
        status = h.setOptionValue(name, value)
        if status != highspy.HighsStatus.kOk:
            return {"error": f"HiGHS rejected option {name}={value!r}"}
    offset = payload["offset"]
    start = payload.get("start")
    if start is not None:
        idx, vals = start
        h.setSolution(len(idx), idx, vals)

    def report(e: Any) -> None:
        out = e.data_out
        _send({"incumbent": out.objective_function_value + offset, "bound": out.mip_dual_bound + offset})

    h.cbMipImprovingSolution.subscribe(report)
    h.HandleKeyboardInterrupt = True  # solve() runs HiGHS in a thread; Ctrl-C here cancels it gracefully
    h.solve()
    info = h.getInfo()
    status = h.getModelStatus()
    has_solution = int(info.primal_solution_status) == 2
    bound = info.mip_dual_bound
    return {
        "status": h.modelStatusToString(status),
        "has_solution": has_solution,
        "objective": info.objective_function_value + offset if has_solution else None,
        "bound": bound + offset if math.isfinite(bound) else None,
        "nodes": int(info.mip_node_count),
        "interrupted": status == highspy.HighsModelStatus.kInterrupt,
        "col_value": list(h.getSolution().col_value) if has_solution else None,
    }


def main() -> None:
    payload = pickle.load(sys.stdin.buffer)
    _send({"result": solve(payload)})


if __name__ == "__main__":
    main()
