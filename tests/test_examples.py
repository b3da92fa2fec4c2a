"""The examples are part of the documentation: each one runs as a test."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_quickstart_runs_and_writes_a_valid_plan(tmp_path: Path) -> None:
    module = runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="quickstart")
    plan = module["main"](tmp_path)
    written = tmp_path / "resnet50.plan.json"
    assert written.exists()
    assert plan.summary.extra_bytes >= 0
    assert plan.summary.offchip_bytes == plan.summary.compulsory_bytes + plan.summary.extra_bytes
