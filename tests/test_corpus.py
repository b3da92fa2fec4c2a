"""A CI sample of the public-model corpus (models/corpus): load, plan, and check each plan with checkplan.py.

The full table is ``python models/corpus/table.py`` (docs/corpus.md). Here: the corpus size and the recorded
table, every 6th corpus model and every generated .tflite through load and the fast baseline at M_R, and the
default method on three small models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cosma
from cosma.frontend import load_model

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "models" / "corpus" / "manifest.json"
CHECKPLAN = ROOT.parent / "shared" / "tools" / "checkplan.py"
ENTRIES: dict[str, dict[str, str]] = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
SAMPLE = [n for i, n in enumerate(ENTRIES) if i % 6 == 0 or ENTRIES[n]["file"].startswith("models/corpus/tflite")]
DEFAULT_METHOD = ["person_detect_int8", "tv_resnet18", "onnx_light_squeezenet"]

pytestmark = pytest.mark.skipif(not CHECKPLAN.exists(), reason="../shared/tools/checkplan.py is not here")


def _path(name: str) -> Path:
    path = ROOT / ENTRIES[name]["file"]
    if not path.exists():
        pytest.skip(f"{path} is not here (MLPerf files live in ../shared)")
    return path


def _check(plan: cosma.Plan, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    plan.save(out)
    checked = subprocess.run([sys.executable, str(CHECKPLAN), str(out)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


RESULTS = ROOT / "models" / "corpus" / "results.json"


def test_corpus_has_at_least_150_models_with_their_files() -> None:
    assert len(ENTRIES) >= 150
    assert sum(e["format"] == "tflite" for e in ENTRIES.values()) >= 15
    # MLPerf Tiny files are referenced from ../shared, outside the repository; the rest are committed.
    missing = [n for n, e in ENTRIES.items() if not e["file"].startswith("..") and not (ROOT / e["file"]).exists()]
    assert not missing


def test_recorded_table_is_complete_and_98_percent_valid() -> None:
    # The full run is `python models/corpus/table.py` (about 6 minutes); here: its recorded results cover the
    # corpus, and every model that is not valid carries its one-line reason.
    results = json.loads(RESULTS.read_text())
    assert set(results) == set(ENTRIES)
    valid = [n for n, r in results.items() if r["verdict"] == "valid" and r["M_R_valid"] and r["M_H_valid"]]
    assert len(valid) >= 0.98 * len(ENTRIES)
    assert all(r.get("error") and "\n" not in r["error"] for r in results.values() if r["verdict"] != "valid")


@pytest.mark.parametrize("name", SAMPLE)
def test_sample_loads_and_plans_at_m_r(name: str, tmp_path: Path) -> None:
    # the default load, with in-place pairs: M_R is then the in-place working set, which the baseline engine
    # reaches by overwriting (issue 16)
    graph = load_model(_path(name))
    assert graph.ops and graph.min_scratchpad > 0
    _check(cosma.compile(graph, graph.min_scratchpad, method="default+belady"), tmp_path)


@pytest.mark.parametrize("name", [n for n in DEFAULT_METHOD if n in ENTRIES])
def test_default_method_on_small_models(name: str, tmp_path: Path) -> None:
    graph = load_model(_path(name))
    _check(cosma.compile(graph, graph.min_scratchpad, time_limit=10), tmp_path)
