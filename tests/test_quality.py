"""The code-quality gates that CI runs through pytest: ruff's linter and formatter, and mypy on cosma/.

CI runs only ``python -m pytest`` (.ci/run), so a gate that is not a test is not a gate. Each runs the
tool pinned in the ``test`` extra as a subprocess from the repository root, where pyproject.toml
configures it, and shows the tool's own report when it fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: every Python tree of the project; ruff reads its settings and exclusions from pyproject.toml
PYTHON_TREES = ("cosma", "tests", "benchmarks", "models", "examples", "conftest.py")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return f"`{' '.join(result.args[1:])}` exited {result.returncode}:\n{result.stdout}{result.stderr}"


def test_ruff_check() -> None:
    result = _run("ruff", "check", "--no-cache", *PYTHON_TREES)
    assert result.returncode == 0, _report(result)


def test_ruff_format() -> None:
    result = _run("ruff", "format", "--check", "--no-cache", *PYTHON_TREES)
    assert result.returncode == 0, _report(result) + "\nrun `python -m ruff format` on the files listed"


@pytest.mark.slow
def test_mypy() -> None:
    # packages and strictness come from [tool.mypy]; the incremental cache keeps repeated runs to seconds
    result = _run("mypy")
    assert result.returncode == 0, _report(result)
