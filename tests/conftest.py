"""Shared test set-up: the benchmark harness on the path, and Ctrl-C that reaches Python.

The harness lives outside the package, in benchmarks/: its tests import it from there.
"""

import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")
if BENCHMARKS not in sys.path:
    sys.path.insert(0, BENCHMARKS)


@pytest.fixture(autouse=True)
def ctrl_c_raises() -> Iterator[None]:
    """Python's own SIGINT handler during each test, as at a terminal.

    Tests press Ctrl-C with ``_thread.interrupt_main()``, which does nothing while SIGINT is ignored, and a
    shell starts background jobs with SIGINT ignored: a suite run with ``&`` lost those Ctrl-Cs and hung.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
