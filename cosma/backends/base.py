"""What every solver backend shares: the protocol and registry, parameters, the outcome record, progress, interruption.

A backend is one module of :mod:`cosma.backends` holding a :class:`Backend` and registering it
(:func:`register_backend`); :mod:`cosma.backends` imports every such module, so a new backend is one new
file. A backend solves one formulation's model (``"cpsat"``: :mod:`cosma.formulation.cpsat`, ``"milp"``:
:mod:`cosma.formulation.milp`) and can write it in its solver's native format (``--dump-model``).

A backend runs its solver in a worker thread (:func:`run_interruptibly`) so that Ctrl-C reaches
Python in the main thread, which asks the solver to stop; the solver then returns its best
solution so far like it does at its time limit. A solver that fails (rejects a model, dies) raises
:class:`~cosma.errors.SolverError`.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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


#: The models a backend can solve: the CP-SAT model or the MILP (:mod:`cosma.formulation`).
Formulation = Literal["cpsat", "milp"]


class Backend(Protocol):
    """A solver behind one name: solves a built model of its formulation, and writes it out for use elsewhere."""

    # read-only: a class attribute or a frozen dataclass field satisfies each
    @property
    def name(self) -> str:
        """The ``--solver`` name."""
        ...

    @property
    def formulation(self) -> Formulation:
        """The model it solves: ``cpsat`` (:class:`~cosma.formulation.cpsat.CpSatModel`) or ``milp``
        (:class:`~cosma.formulation.milp.MilpModel`)."""
        ...

    @property
    def summary(self) -> str:
        """One line for ``cosma compile --help``."""
        ...

    @property
    def model_suffix(self) -> str:
        """The file name ending of :meth:`dump`'s native format, e.g. ``.pb.txt`` or ``.mps``."""
        ...

    def solve(
        self, model: Any, params: SolverParams, progress: Progress | None = None, hint: Residency | None = None
    ) -> SolveResult:
        """Solve ``model``, warm-started from ``hint`` when given; the result carries the best residency found."""
        ...

    def dump(self, model: Any, path: Path) -> None:
        """Write ``model`` to ``path`` in the solver's native format (the format follows ``path``'s ending)."""
        ...


#: What solves a model: ``(model, params, progress, hint) -> SolveResult``.
SolveFunction = Callable[[Any, SolverParams, "Progress | None", "Residency | None"], SolveResult]


@dataclass(frozen=True)
class FunctionBackend:
    """A backend that is a solve function and a dump function under a name: each of cosma's backends is one."""

    name: str
    formulation: Formulation
    summary: str
    model_suffix: str
    solve_model: SolveFunction
    dump_model: Callable[[Any, Path], None]

    def solve(
        self, model: Any, params: SolverParams, progress: Progress | None = None, hint: Residency | None = None
    ) -> SolveResult:
        return self.solve_model(model, params, progress, hint)

    def dump(self, model: Any, path: Path) -> None:
        self.dump_model(model, path)


_REGISTRY: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Make ``backend`` available by its name (to ``--solver`` and ``Options.solver``); returns it.

    Registering a second backend under a taken name replaces the first (a test's toy backend, say).
    """
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", backend.name) or backend.name == "auto":
        raise ValueError(f"backend name {backend.name!r}: lower-case letters, digits, - and _, and not 'auto'")
    if backend.formulation not in ("cpsat", "milp"):
        raise ValueError(f"backend {backend.name!r}: formulation {backend.formulation!r} is not cpsat or milp")
    _REGISTRY[backend.name] = backend
    return backend


def unregister_backend(name: str) -> None:
    """Forget a backend (a test's toy backend, when the test ends)."""
    _REGISTRY.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """The registered backends' names, sorted."""
    return tuple(sorted(_REGISTRY))


def get_backend(name: str) -> Backend:
    """The backend called ``name``; an unknown name is an :class:`~cosma.errors.OptionError` listing the known."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise OptionError(f"unknown solver {name!r}; choose one of: auto, {', '.join(backend_names())}") from None


def dump_path(folder: str | Path, label: str, backend: Backend) -> Path:
    """A new file in ``folder`` for a model: ``<index>-<label><suffix>``, the index one past the highest there.

    The index orders the models as they were built, across every solve that writes to one folder (a joint
    solve runs further exact solves for its neighbourhood bound).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in folder.iterdir() if (m := re.match(r"(\d+)-", p.name))]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "model"
    return folder / f"{max(taken, default=0) + 1:03d}-{safe}{backend.model_suffix}"


def overrun_deadline(time_limit: float) -> float:
    """Seconds after which a solver that ignores its own time limit is stopped: the project's tolerance,
    10% plus one second (a racing CP-SAT portfolio has run 7x past its limit on NASNet-A)."""
    return 1.1 * time_limit + 1.0


def run_interruptibly(
    solve: Callable[[], Any], stop: Callable[[], None], time_limit: float | None = None
) -> tuple[Any, bool]:
    """Run ``solve`` in a thread; on Ctrl-C call ``stop`` and wait for it. Returns (result, interrupted).

    With ``time_limit``, ``stop`` is also called once :func:`overrun_deadline` has passed, as a safety net
    for solvers that overrun their own limit; that stop is not an interruption (the result is the solver's
    best so far, as at its own limit).

    The main thread polls with short sleeps rather than ``Thread.join``: a KeyboardInterrupt that lands
    inside ``join`` can leave the thread marked finished while it still runs. While the thread starts,
    Ctrl-C is only noted (a KeyboardInterrupt inside ``Thread.start`` cannot tell whether the thread runs)
    and acted on once it has.
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
    deadline = None if time_limit is None else time.perf_counter() + overrun_deadline(time_limit)
    stopped_late = False
    pressed = threading.Event()
    restore = _note_ctrl_c(pressed)
    interrupted = False
    try:
        worker.start()
        while True:
            # every statement of the loop sits inside the try: a Ctrl-C noted during start() may be delivered
            # by the default handler at any bytecode once the handler is restored, the loop test included
            try:
                if restore is not None:
                    restore()  # idempotent: a Ctrl-C landing before the next line only repeats it
                    restore = None
                if pressed.is_set() and not interrupted:
                    interrupted = True
                    stop()
                if deadline is not None and not stopped_late and time.perf_counter() > deadline:
                    stopped_late = True
                    stop()
                if done.is_set() and restore is None:
                    break
                time.sleep(0.02)
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted = True
                    stop()
    finally:
        if restore is not None:  # start() itself failed
            restore()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box.get("result"), interrupted


def _note_ctrl_c(pressed: threading.Event) -> Callable[[], None] | None:
    """In the main thread, make SIGINT set ``pressed`` instead of raising; returns what puts the handler back.

    Elsewhere (no signal reaches another thread) there is nothing to do and None is returned.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIGINT ignored or left to the OS: no KeyboardInterrupt to worry about
        return None

    def note(signum: int, frame: Any) -> None:
        pressed.set()

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, note)
    return restore


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
