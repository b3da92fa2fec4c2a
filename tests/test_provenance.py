"""Plans say where they came from (cosma/provenance.py) and can be made again from their own file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from math import prod
from pathlib import Path

import numpy as np
import onnx
import pytest

import cosma
from cosma.errors import ModelError, OptionError
from cosma.reproduce import reproduce
from cosma.sweep import LoadOptions
from tests.onnx_builders import conv_bn_relu

CHECKPLAN = Path(__file__).resolve().parents[2] / "shared" / "tools" / "checkplan.py"


def _model(tmp_path: Path) -> Path:
    path = tmp_path / "net.onnx"
    onnx.save(conv_bn_relu(channels=8, size=16), path)
    return path


def _plan(tmp_path: Path, **load: object) -> tuple[Path, dict]:
    graph = cosma.load_model(_model(tmp_path), **load)
    plan = cosma.compile(graph, graph.min_scratchpad, method="default+belady", seed=3)
    out = tmp_path / "plan.json"
    plan.save(out)
    return out, json.loads(out.read_text())


def test_plan_file_records_model_load_and_planning_options(tmp_path: Path) -> None:
    out, data = _plan(tmp_path, element_bytes=1, fold_batchnorm=False)
    p = data["provenance"]
    assert p["cosma"] and p["model"]["file"] == "net.onnx" and p["model"]["format"] == "onnx"
    assert p["model"]["sha256"] == hashlib.sha256((tmp_path / "net.onnx").read_bytes()).hexdigest()
    assert p["model"]["input_shapes"] == {"x": [1, 3, 16, 16]}
    assert p["load"]["element_bytes"] == 1 and p["load"]["fold_batchnorm"] is False and p["load"]["fuse"] is True
    c = p["compile"]
    assert c["method"] == c["resolved_method"] == "default+belady"
    assert c["scratchpad_bytes"] == data["scratchpad_bytes"]
    assert c["options"]["seed"] == 3 and "time_limit" in c["options"] and "quiet" not in c["options"]
    assert str(tmp_path) not in out.read_text()  # no absolute path anywhere in the file
    if CHECKPLAN.exists():
        checked = subprocess.run([sys.executable, str(CHECKPLAN), str(out)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_plan_read_back_keeps_its_provenance(tmp_path: Path) -> None:
    out, data = _plan(tmp_path)
    assert cosma.Plan.load(out).to_dict()["provenance"] == data["provenance"]


def test_reproduce_gives_the_same_steps(tmp_path: Path) -> None:
    out, _ = _plan(tmp_path, element_bytes=2, fold_batchnorm=False)
    result = reproduce(out)
    assert result.same, result.first_difference
    assert result.again.steps == result.recorded.steps


def test_reproduce_refuses_another_model_and_plans_without_provenance(tmp_path: Path) -> None:
    out, data = _plan(tmp_path)
    other = tmp_path / "other.onnx"
    onnx.save(conv_bn_relu(channels=4, size=16), other)
    with pytest.raises(ModelError, match="sha256"):
        reproduce(out, other)
    del data["provenance"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(data))
    with pytest.raises(OptionError, match="no provenance"):
        reproduce(bare)


@pytest.mark.parametrize("element_bytes", [None, 1, 2])
def test_tensor_bytes_follow_dtype_unless_element_bytes_overrides(tmp_path: Path, element_bytes: int | None) -> None:
    # The documented rule (docs/frontend.md): dtype stays the model's, provenance.load.element_bytes says
    # when it does not give the size.
    _, data = _plan(tmp_path, element_bytes=element_bytes)
    assert data["provenance"]["load"]["element_bytes"] == element_bytes
    for t in data["tensors"]:
        size = element_bytes or np.dtype(t["dtype"]).itemsize
        assert t["bytes"] == prod(t["shape"]) * size, t


def test_sweep_load_options_pass_the_folding_switches(tmp_path: Path) -> None:
    path = _model(tmp_path)
    folded, kept = LoadOptions().load(path), LoadOptions(fold_batchnorm=False).load(path)
    assert len(kept.tensors) > len(folded.tensors)
    assert json.loads(kept.metadata["load_options"])["fold_batchnorm"] is False
