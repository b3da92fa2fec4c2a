"""The live progress line: incumbent, bound, gap and elapsed of the time limit, on a terminal only.

:func:`progress_line` returns a context manager that is also a
:class:`~cosma.backends.base.Progress`: a transient rich live line on standard error when it is a
terminal and the run is not quiet, nothing otherwise (so pipes, logs and ``--json`` on standard
output stay clean). Values arrive in model units and are shown in bytes.

Every bound a search reports is a lower bound on the whole problem, and every incumbent a plan of
it, so the line keeps the best of each (the highest bound, the lowest incumbent): phases that start
their own model from scratch cannot make the bound drop or the gap jump.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from cosma.units import format_size


def describe(incumbent: float | None, bound: float | None, limit: float | None, elapsed: float) -> str:
    """The line's numbers (bytes and seconds): ``bound`` None is a method that proves none.

    >>> describe(2048, 1024, 60, 1.25)
    'incumbent 2.0 KiB  bound 1.0 KiB  gap 50.0%  1.2 / 60 s'
    >>> describe(2048, None, None, 3)
    'incumbent 2.0 KiB  no bound  gap n/a  3.0 s'
    """
    parts = ["incumbent " + (format_size(round(incumbent)) if incumbent is not None else "-")]
    parts.append("no bound" if bound is None else "bound " + format_size(max(0, round(bound))))
    if incumbent is None or bound is None:
        parts.append("gap n/a")
    else:
        parts.append(f"gap {100 * max(0.0, incumbent - bound) / incumbent:.1f}%" if incumbent > 0 else "gap 0.0%")
    parts.append(f"{elapsed:.1f} / {limit:g} s" if limit is not None else f"{elapsed:.1f} s")
    return "  ".join(parts)


class LiveProgress(AbstractContextManager):
    """A one-line rich display, refreshed by rich's own thread, fed by solver callbacks.

    ``started`` (a :func:`time.perf_counter` value) is when the run began, so the elapsed time counts
    the phases before the line appeared; ``limit`` is the run's time limit in seconds.
    """

    def __init__(self, title: str, console: Console, limit: float | None = None, started: float | None = None) -> None:
        self.title = title
        self.phase = ""
        self.scale = 1
        self.limit = limit
        self.incumbent: float | None = None
        self.bound: float | None = None
        self.started = time.perf_counter() if started is None else started
        self._lock = threading.Lock()
        self._live = Live(self, console=console, refresh_per_second=4, transient=True)

    def set_phase(self, phase: str, scale: int) -> None:
        with self._lock:
            self.phase, self.scale = phase, scale

    def update(self, incumbent: float | None = None, bound: float | None = None) -> None:
        with self._lock:
            if incumbent is not None:
                value = incumbent * self.scale
                self.incumbent = value if self.incumbent is None else min(self.incumbent, value)
            if bound is not None:
                value = bound * self.scale
                self.bound = value if self.bound is None else max(self.bound, value)
            if self.incumbent is not None and self.bound is not None and self.bound > self.incumbent:
                self.bound = self.incumbent  # a solver's bound in rounded units may pass a byte-exact incumbent

    def __rich__(self) -> Text:
        with self._lock:
            inc, bnd, phase = self.incumbent, self.bound, self.phase
        line = f"[{phase}]  {describe(inc, bnd, self.limit, time.perf_counter() - self.started)}  ({self.title})"
        return Text(line, no_wrap=True, overflow="ellipsis")  # the title last: the part a narrow terminal may cut

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.stop()


class QuietProgress(AbstractContextManager):
    def set_phase(self, phase: str, scale: int) -> None:
        pass

    def update(self, incumbent: float | None = None, bound: float | None = None) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        return None


def progress_line(
    title: str, quiet: bool, limit: float | None = None, started: float | None = None
) -> LiveProgress | QuietProgress:
    """A live line on standard error if it is a terminal and ``quiet`` is false; a silent stand-in otherwise."""
    if quiet or not sys.stderr.isatty():
        return QuietProgress()
    return LiveProgress(title, Console(stderr=True), limit, started)
