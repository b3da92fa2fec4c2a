"""Every ```python block of README.md runs as written, so the documented API cannot drift from the code.

Each block runs in a fresh namespace in a temporary directory that sees the repository's ``models/``
(the README's paths are relative to the repository root) and keeps whatever the block writes out of
the checkout. Any plan it writes must replay.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cosma.contract import FORMAT, replay

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: what the snippets may read by relative path
SHARED_DIRS = ("models", "examples")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of each fenced ```python block."""
    return [
        (text.count("\n", 0, m.start(1)) + 1, m.group(1))
        for m in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.MULTILINE | re.DOTALL)
    ]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_python_blocks_are_found() -> None:
    assert python_blocks("text\n```python\nx = 1\n```\n```sh\nls\n```\n") == [(3, "x = 1\n")]
    assert BLOCKS, "README.md has no ```python block: the API section lost its example"


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_python_block_runs(line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SHARED_DIRS:
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{README}:{line}", "exec"), {"__name__": "__readme__"})

    for path in tmp_path.glob("*.json"):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("format") == FORMAT:
            replay(data)  # raises PlanInvalid with the broken rule
