"""What every solver backend shares: parameters, the outcome record, progress reports, interruption.

A backend runs its solver in a worker thread (:func:`run_interruptibly`) so that Ctrl-C reaches
Python in the main thread, which asks the solver to stop; the solver then returns its best
solution so far like it does at its time limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cosma.errors import OptionError
from cosma.formulation.residency import Residency

SolveStatus = Literal["optimal", "feasible", "infeasible", "time-limit", "unknown"]


@dataclass(frozen=True)
class SolverParams:
    """Knobs every backend honours, plus backend-specific ``extra`` parameters passed through by name."""

    time_limit: float = 60.0
    threads: int = 1
    seed: int = 0
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SolveResult:
    """One solver run: ``objective`` and ``bound`` in the model's units (cost units, or extent units)."""

    status: SolveStatus
    objective: int | None
    bound: int | None
    seconds: float
    residency: Residency | None = None
    interrupted: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)


class Progress(Protocol):
    """Receives the incumbent and the bound (model units) as a solver finds them."""

    def update(self, incumbent: float | None = None, bound: float | None = None) -> None: ...


class NoProgress:
    def update(self, incumbent: float | None = None, bound: float | None = None) -> None:
        pass


def run_interruptibly(solve: Callable[[], Any], stop: Callable[[], None]) -> tuple[Any, bool]:
    """Run ``solve`` in a thread; on Ctrl-C call ``stop`` and wait for it. Returns (result, interrupted).

    The main thread polls with short sleeps rather than ``Thread.join``: a KeyboardInterrupt that lands
    inside ``join`` can leave the thread marked finished while it still runs.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["result"] = solve()
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e
        finally:
            done.set()

    worker = threading.Thread(target=target, name="cosma-solver", daemon=True)
    worker.start()
    interrupted = False
    while not done.is_set():
        try:
            time.sleep(0.02)
        except KeyboardInterrupt:
            if not interrupted:
                interrupted = True
                stop()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box.get("result"), interrupted


def parse_solver_params(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["name=value", ...]`` (from ``--solver-param``) as a dict; values are typed by each backend."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise OptionError(f"--solver-param {item!r}: write NAME=VALUE, e.g. log_search_progress=true")
        out[name.strip()] = value.strip()
    return out


def typed(value: str, like: Any) -> Any:
    """``value`` parsed as the type of ``like`` (bool, int, float or str)."""
    if isinstance(like, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    return value


class Clock:
    """Seconds since construction; a deadline shared by the phases of one solve."""

    def __init__(self, limit: float) -> None:
        self.started = time.perf_counter()
        self.limit = limit

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return max(0.0, self.limit - self.elapsed())
