"""A wheel install (`pip install .`, not editable) works on its own and writes only where it is told.

The wheel is built from this checkout and installed into a folder of its own, which comes first on
the path, so the commands below run the installed copy, not the source tree. Each documented
command runs from an empty working folder, and afterwards neither the installed package nor the
source tree has changed: nothing is written anywhere a user did not name.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "tiny_cnn.onnx"
BUFFERS = ROOT / "examples" / "input.12.csv"

pytestmark = pytest.mark.slow


def snapshot(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under ``folder`` (skipping top-level names in ``skip``)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] in skip or "__pycache__" in rel.parts or not path.is_file():
            continue
        found[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, installed without dependencies (they are the test environment's)."""
    dist = tmp_path_factory.mktemp("dist")
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # build isolation, as `pip install .` does: the environment need not have setuptools itself
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dist), str(ROOT)], check=True)
    (wheel,) = dist.glob("cosma-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    return target


def cosma(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    code = "import sys; from cosma.cli import main; sys.argv[0] = 'cosma'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_installed_copy_is_the_one_that_runs(installed: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    out = subprocess.run(
        [sys.executable, "-c", "import cosma; print(cosma.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()).is_relative_to(installed)


def test_every_documented_command_works_and_writes_only_where_told(installed: Path, tmp_path: Path) -> None:
    before_site = snapshot(installed)
    before_tree = snapshot(ROOT, skip=(".git", ".mypy_cache", ".pytest_cache", ".ruff_cache", "cosma.egg-info"))
    work = tmp_path / "work"
    work.mkdir()
    plan = tmp_path / "out" / "plan.json"
    plan.parent.mkdir()
    commands = [
        ("inspect", str(MODEL)),
        ("methods",),
        ("budgets", str(MODEL)),
        ("compile", str(MODEL), "--scratchpad", "M_R", "-o", str(plan), "--time-limit", "20"),
        ("check", str(plan)),
        ("show", str(plan), "-o", str(tmp_path / "out" / "timeline.png")),
        ("report", str(plan), "-o", str(tmp_path / "out" / "report.html")),
        ("sweep", str(MODEL), "--points", "2", "--time-limit", "5", "-o", str(tmp_path / "out" / "sweep.csv")),
        ("alloc", str(BUFFERS), "-o", str(tmp_path / "out" / "alloc.csv"), "--time-limit", "10"),
    ]
    for args in commands:
        done = cosma(installed, work, *args)
        assert done.returncode == 0, f"cosma {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
    assert plan.exists() and (tmp_path / "out" / "report.html").exists()
    assert sorted(p.name for p in work.iterdir()) == [], "a command wrote into the working folder unasked"
    assert snapshot(installed) == before_site, "a command wrote into the installed package"
    after_tree = snapshot(ROOT, skip=(".git", ".mypy_cache", ".pytest_cache", ".ruff_cache", "cosma.egg-info"))
    changed = {k for k in before_tree.keys() | after_tree.keys() if before_tree.get(k) != after_tree.get(k)}
    assert not changed, f"a command changed the source tree: {sorted(changed)[:10]}"
