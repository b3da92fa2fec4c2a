"""The live progress line: incumbent, bound, gap and elapsed time, on a terminal only.

:func:`progress_line` returns a context manager that is also a
:class:`~cosma.backends.base.Progress`: a transient rich live line when standard output is a
terminal and the run is not quiet, nothing otherwise (so pipes and logs stay clean). Values arrive
in model units and are shown in bytes.
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


class LiveProgress(AbstractContextManager):
    """A one-line rich display, refreshed by rich's own thread, fed by solver callbacks."""

    def __init__(self, title: str, console: Console) -> None:
        self.title = title
        self.phase = ""
        self.scale = 1
        self.incumbent: float | None = None
        self.bound: float | None = None
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self._live = Live(self, console=console, refresh_per_second=4, transient=True)

    def set_phase(self, phase: str, scale: int) -> None:
        with self._lock:
            self.phase, self.scale = phase, scale

    def update(self, incumbent: float | None = None, bound: float | None = None) -> None:
        with self._lock:
            if incumbent is not None:
                self.incumbent = incumbent * self.scale
            if bound is not None:
                self.bound = bound * self.scale

    def __rich__(self) -> Text:
        with self._lock:
            inc, bnd, phase = self.incumbent, self.bound, self.phase
        parts = [
            f"[{phase}]",
            "incumbent " + (format_size(round(inc)) if inc is not None else "-"),
            "bound " + (format_size(max(0, round(bnd))) if bnd is not None else "-"),
        ]
        if inc is not None and bnd is not None:
            parts.append(f"gap {100 * (inc - bnd) / inc:.1f}%" if inc > 0 else "gap 0.0%")
        parts.append(f"{time.perf_counter() - self.started:.1f} s")
        parts.append(f"({self.title})")  # last: the part a narrow terminal may cut
        return Text("  ".join(parts), no_wrap=True, overflow="ellipsis")

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


def progress_line(title: str, quiet: bool) -> LiveProgress | QuietProgress:
    """A live line if standard output is a terminal and ``quiet`` is false; a silent stand-in otherwise."""
    if quiet or not sys.stdout.isatty():
        return QuietProgress()
    return LiveProgress(title, Console())
