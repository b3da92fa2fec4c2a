"""Run HiGHS (highspy) on a MILP in a process of its own; executed as a script, never imported by cosma.

Why a process: OR-Tools bundles its own HiGHS library under the same shared-object name as highspy's
(``libhighs.so.1``), so whichever loads second fails to link; cosma loads OR-Tools. This script imports
nothing of cosma, only highspy and numpy.

Protocol: two pipes of their own, never standard input or output, whose descriptor numbers come on the command
line (``--payload-fd``, ``--channel-fd``). The parent writes one pickled dict to the payload pipe (the matrix,
bounds, integrality, options, an optional start) and reads JSON lines from the channel: ``{"incumbent": x,
"bound": y}`` while solving, then one ``{"result": {...}}``. Descriptors 1 and 2 belong to the libraries: HiGHS
prints its banner and log there from C++ (highspy 1.16 prints a banner whenever a ``Highs`` is made), so the
parent points both at a log file and never parses them. SIGINT (Ctrl-C, or the parent asking) stops the search
and the best solution so far is still reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import signal
from collections.abc import Callable
from typing import IO, Any


class _Interrupts:
    """Remembers a SIGINT that lands before the search starts, when there is nothing yet to cancel."""

    def __init__(self) -> None:
        self.pending = False
        signal.signal(signal.SIGINT, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        self.pending = True

    def hand_to_highspy(self) -> bool:
        """From now on SIGINT raises KeyboardInterrupt, which highspy's solve turns into a cancel.

        Returns whether a SIGINT already came, in which case there is no point in starting.
        """
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return self.pending


def _noise(payload: dict[str, Any]) -> Callable[[], None]:
    """Bytes to write straight to descriptors 1 and 2 at each point of the run, as a library would.

    Only tests/test_solver_process.py sets ``noise``: it proves that nothing written there reaches the protocol.
    """
    data: bytes = payload.get("noise", b"")

    def write() -> None:
        if data:
            os.write(1, data)
            os.write(2, data)

    return write


def solve(payload: dict[str, Any], send: Callable[[dict[str, Any]], None], interrupts: _Interrupts) -> dict[str, Any]:
    import highspy
    import numpy as np

    noise = _noise(payload)
    noise()
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
    h.addRows(
        len(row_lo), row_lo, row_hi, len(payload["index"]), payload["starts"], payload["index"], payload["values"]
    )
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
        noise()
        send({"incumbent": out.objective_function_value + offset, "bound": out.mip_dual_bound + offset})
        noise()

    h.cbMipImprovingSolution.subscribe(report)
    h.HandleKeyboardInterrupt = True  # solve() runs HiGHS in a thread; Ctrl-C here cancels it gracefully
    noise()
    if interrupts.hand_to_highspy():
        return _nothing_found("Interrupted by user", interrupted=True)
    try:
        h.solve()
    except KeyboardInterrupt:
        # landed in the few lines of highspy's solve before it starts watching for it
        h.cancelSolve()
        h.joinSolve()
    noise()
    info = h.getInfo()
    model_status = h.getModelStatus()
    has_solution = int(info.primal_solution_status) == 2
    bound = info.mip_dual_bound
    return {
        "status": h.modelStatusToString(model_status),
        "has_solution": has_solution,
        "objective": info.objective_function_value + offset if has_solution else None,
        "bound": bound + offset if math.isfinite(bound) else None,
        "nodes": int(info.mip_node_count),
        "interrupted": model_status == highspy.HighsModelStatus.kInterrupt,
        "col_value": list(h.getSolution().col_value) if has_solution else None,
    }


def _nothing_found(status: str, *, interrupted: bool) -> dict[str, Any]:
    return {
        "status": status,
        "has_solution": False,
        "objective": None,
        "bound": None,
        "nodes": 0,
        "interrupted": interrupted,
        "col_value": None,
    }


def main(argv: list[str] | None = None) -> None:
    interrupts = _Interrupts()  # first: a Ctrl-C while highspy loads must not kill the worker
    parser = argparse.ArgumentParser(description="HiGHS worker of cosma; started by cosma.backends.highs")
    parser.add_argument("--payload-fd", type=int, required=True)
    parser.add_argument("--channel-fd", type=int, required=True)
    args = parser.parse_args(argv)
    with os.fdopen(args.payload_fd, "rb") as source:
        payload = pickle.load(source)
    channel: IO[str] = os.fdopen(args.channel_fd, "w", encoding="utf-8")

    def send(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    with channel:
        send({"result": solve(payload, send, interrupts)})


if __name__ == "__main__":
    main()
