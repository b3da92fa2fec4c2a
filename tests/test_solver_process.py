"""The HiGHS worker process: its protocol is out of reach of anything printed, it dies loudly, Ctrl-C stops it.

The worker (cosma/backends/highs_worker.py) talks over two pipes of its own; descriptors 1 and 2 go to a log.
``noise`` in the payload makes the worker write bytes straight to descriptors 1 and 2 (``os.write``, as C++ code
does) before HiGHS starts, around every progress message and before the result: bytes shaped like protocol
messages (a false result, a false incumbent) and bytes that are not JSON at all. If any of them reached the
protocol, the run would fail to parse or return the false result.
"""

from __future__ import annotations

import _thread
import json
from pathlib import Path
from typing import Any

import pytest
from graphs import FIXTURES
from test_formulation import random_graph

from cosma.backends import highs
from cosma.backends.base import SolverParams
from cosma.errors import SolverError
from cosma.formulation import milp
from cosma.formulation.instance import Instance
from cosma.formulation.residency import residency_of_plan
from cosma.hardware import Accelerator
from cosma.methods.baselines import best_baseline
from cosma.options import Options

FALSE_RESULT = {
    "status": "Infeasible",
    "has_solution": False,
    "objective": None,
    "bound": None,
    "nodes": 0,
    "interrupted": False,
    "col_value": None,
}
NOISE = (
    json.dumps({"result": FALSE_RESULT}) + "\n" + json.dumps({"incumbent": -1e9, "bound": 1e9}) + "\n"
).encode() + b"not json \x00\xff{\n"


class Recorder:
    def __init__(self) -> None:
        self.updates: list[tuple[float | None, float | None]] = []

    def update(self, incumbent: float | None = None, bound: float | None = None) -> None:
        self.updates.append((incumbent, bound))


def diamond_payload(**options: Any) -> tuple[dict[str, Any], Instance]:
    """The diamond at 28 bytes (least extra 8), warm-started from the best baseline so progress is reported."""
    graph = FIXTURES["diamond"]().graph
    inst = Instance.build(graph, Accelerator(28))
    warm = best_baseline(graph, inst.accelerator, Options())
    payload, _ = highs.highs_payload(milp.build(inst), SolverParams(time_limit=60), residency_of_plan(warm))
    payload["options"].update(options)
    return payload, inst


def test_output_on_descriptors_1_and_2_never_reaches_the_protocol(tmp_path: Path) -> None:
    # HiGHS's own log on the console too, so that the library writes to descriptor 1 as well
    payload, inst = diamond_payload(output_flag=True, log_to_console=True)
    payload["noise"] = NOISE
    log = tmp_path / "highs.log"
    progress = Recorder()
    result, interrupted = highs.run_worker(payload, progress, log=log)
    assert not interrupted and result["status"] == "Optimal" and result["has_solution"]
    assert round(result["objective"]) * inst.cost_unit == 8
    assert progress.updates and all(incumbent is not None and incumbent >= 0 for incumbent, _ in progress.updates)
    written = log.read_bytes()
    # both descriptors, at the start, around each progress message and at the end
    assert written.count(NOISE) == 2 * (3 + 2 * len(progress.updates))


def test_a_quiet_run_leaves_no_log_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    payload, _ = diamond_payload()
    result, _ = highs.run_worker(payload, Recorder())
    assert result["status"] == "Optimal"
    assert list(tmp_path.iterdir()) == []


def test_a_dying_worker_names_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    payload, _ = diamond_payload()
    del payload["row_lower"]  # the worker fails with a KeyError after HiGHS has printed its banner
    payload["noise"] = b"written before the crash\n"
    with pytest.raises(SolverError, match="ended without a result") as failure:
        highs.run_worker(payload, Recorder())
    (log,) = tmp_path.iterdir()
    assert str(log) in str(failure.value) and "KeyError" in str(failure.value)
    text = log.read_text()
    assert "written before the crash" in text and "Traceback" in text


def test_ctrl_c_stops_highs_and_keeps_its_best_solution() -> None:
    """Ctrl-C as the first incumbent arrives, on a model HiGHS is far from solving in 10 s (bound 0, incumbent 35)."""
    graph = random_graph(12, max_ops=22, max_size=9)
    inst = Instance.build(graph, Accelerator(graph.min_scratchpad))
    warm = best_baseline(graph, inst.accelerator, Options())
    payload, _ = highs.highs_payload(milp.build(inst), SolverParams(time_limit=600), residency_of_plan(warm))

    class InterruptOnFirst(Recorder):
        def update(self, incumbent: float | None = None, bound: float | None = None) -> None:
            if not self.updates:
                _thread.interrupt_main()
            super().update(incumbent, bound)

    result, interrupted = highs.run_worker(payload, InterruptOnFirst())
    assert interrupted and result["interrupted"] and result["status"] == "Interrupted by user"
    # stopped early enough, HiGHS may have no finite dual bound yet (highspy 1.8)
    assert result["has_solution"] and (result["bound"] is None or result["bound"] <= result["objective"])
