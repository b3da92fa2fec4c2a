"""Executing plans byte for byte (cosma.execute, cosma run): correct plans match ONNX Runtime, mutated ones do not."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime")

import cosma
from cosma.execute import ExecutionInputError, ExecutionResult, Model

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "models" / "tiny_cnn.onnx"
TINY_WEIGHTS = ROOT / "models" / "tiny_cnn_weights.onnx"


@pytest.fixture(scope="module")
def tiny() -> Model:
    return Model.prepare(TINY, seed=0)


def _plan(path: Path, method: str, weights: bool = True) -> dict[str, Any]:
    graph = cosma.load_onnx(path, weights=weights)
    return cosma.compile(graph, graph.min_scratchpad, method=method, time_limit=5).to_dict()


def _caught(result: ExecutionResult) -> str:
    """The operator the failure is pinned on; fails the test when the mutation went unnoticed."""
    assert not result.ok
    named = result.first_bad_op or ""
    for text in (result.replay_error, result.fault):
        if text and "operator" in text:
            named = named or text
    assert named, result.describe()
    return named


def _resident_at(plan: dict[str, Any], upto: int) -> dict[str, int]:
    resident: dict[str, int] = {}
    for step in plan["steps"][:upto]:
        if step["action"] == "load":
            resident[step["tensor"]] = step["offset"]
        elif step["action"] == "free":
            resident.pop(step["tensor"], None)
        elif step["action"] == "run":
            resident.update(step["outputs"])
    return resident


@pytest.mark.parametrize("method", ["default+belady", "minpeak+greedy", "joint"])
@pytest.mark.parametrize("path", [TINY, TINY_WEIGHTS])
@pytest.mark.parametrize("weights", [True, False])
def test_plans_of_every_kind_compute_the_model(path: Path, method: str, weights: bool) -> None:
    result = cosma.execute(path, _plan(path, method, weights))
    assert result.ok, result.describe()
    assert result.fault is None and result.first_bad_op is None
    assert all(o.max_rel <= 1e-6 for o in result.outputs)  # same kernels on both sides


def test_element_bytes_plans_execute_with_scaled_addresses(tiny: Model) -> None:
    graph = cosma.load_onnx(TINY, element_bytes=1)
    plan = cosma.compile(graph, graph.min_scratchpad, method="default+belady").to_dict()
    result = tiny.execute(plan)
    assert result.ok and result.address_scale == 4


def test_a_plan_of_another_model_is_bad_input(tiny: Model) -> None:
    with pytest.raises(ExecutionInputError, match="not made from this model"):
        cosma.execute(ROOT / "models" / "mobilenet_v2.onnx", _plan(TINY, "default+belady"))


def test_mutation_swapped_offsets_of_two_live_tensors(tiny: Model) -> None:
    plan = _plan(TINY, "default+belady")
    steps = plan["steps"]
    # The first run whose output and one of its resident inputs differ in offset: swap the two placements.
    for i, step in enumerate(steps):
        if step["action"] != "run":
            continue
        resident = _resident_at(plan, i)
        out, at = next(iter(step["outputs"].items()))
        other = next((t for t in resident if resident[t] != at), None)
        if other is not None:
            break
    mutated = copy.deepcopy(plan)
    mutated["steps"][i]["outputs"][out] = resident[other]
    for step in mutated["steps"][:i]:  # move `other` to where `out` was
        if step["action"] == "load" and step["tensor"] == other:
            step["offset"] = at
        elif step["action"] == "run" and other in step["outputs"]:
            step["outputs"][other] = at
    _caught(tiny.execute(mutated))


def test_mutation_dropped_store_before_a_reload() -> None:
    model = Model.prepare(TINY_WEIGHTS, seed=0)
    graph = cosma.load_onnx(TINY_WEIGHTS)
    plan = cosma.compile(graph, graph.min_scratchpad, method="default+belady").to_dict()
    steps = plan["steps"]
    produced = {t for s in steps if s["action"] == "run" for t in s["outputs"]}
    store = next(
        i
        for i, s in enumerate(steps)
        if s["action"] == "store"
        and s["tensor"] in produced
        and any(x["action"] == "load" and x["tensor"] == s["tensor"] for x in steps[i:])
    )
    mutated = copy.deepcopy(plan)
    del mutated["steps"][store]
    result = model.execute(mutated)
    _caught(result)
    assert result.first_bad_op is not None  # the reload copied 0xFF fill: a wrong number, pinned on its reader


def test_mutation_load_shifted_by_one_alignment_unit(tiny: Model) -> None:
    """A load moved one unit onto a neighbour (a shift into free space is harmless and not a mutation)."""
    plan = _plan(TINY, "default+belady")
    sizes = {t["name"]: t["bytes"] for t in plan["tensors"]}
    found = None
    for i, step in enumerate(plan["steps"]):
        if step["action"] != "load" or found:
            continue
        resident = _resident_at(plan, i)
        for delta in (plan["alignment"], -plan["alignment"]):
            lo = step["offset"] + delta
            hi = lo + sizes[step["tensor"]]
            if lo >= 0 and any(a < hi and lo < a + sizes[t] for t, a in resident.items()):
                found = (i, delta)
                break
    assert found is not None
    mutated = copy.deepcopy(plan)
    mutated["steps"][found[0]]["offset"] += found[1]
    _caught(tiny.execute(mutated))


def test_mutation_false_inplace_pair(tiny: Model, tmp_path: Path) -> None:
    """A 3x3 convolution declared in place over its input: computed streaming, it reads what it overwrote."""
    plan = _plan(TINY, "default+belady")
    op = "/body/body.1/Conv"
    src, out = "/body/body.0/Relu_output_0", "/body/body.3/Relu_output_0"
    mutated = copy.deepcopy(plan)
    next(o for o in mutated["ops"] if o["name"] == op)["inplace"] = {out: src}
    run = next(i for i, s in enumerate(mutated["steps"]) if s["action"] == "run" and s["op"] == op)
    mutated["steps"][run]["outputs"][out] = _resident_at(mutated, run)[src]
    # The input stops being resident at the run: its later free goes, and the output takes its bytes.
    mutated["steps"] = [
        s for j, s in enumerate(mutated["steps"]) if not (j > run and s["action"] == "free" and s["tensor"] == src)
    ]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(mutated))
    result = tiny.execute(mutated)
    assert result.fault is None and not result.ok
    assert any(not o.ok for o in result.outputs)


def test_cli_run_exit_codes(tmp_path: Path) -> None:
    plan = _plan(TINY, "minpeak+belady")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(plan))
    bad = copy.deepcopy(plan)
    store = next(i for i, s in enumerate(bad["steps"]) if s["action"] == "store")
    del bad["steps"][store]
    broken = tmp_path / "bad.json"
    broken.write_text(json.dumps(bad))
    cli = [sys.executable, "-m", "cosma.cli", "run", str(TINY)]
    ok = subprocess.run([*cli, str(good)], capture_output=True, text=True)
    assert ok.returncode == 0 and "match" in ok.stdout, ok.stdout + ok.stderr
    wrong = subprocess.run([*cli, str(broken)], capture_output=True, text=True)
    assert wrong.returncode == 1 and "MISMATCH" in wrong.stdout, wrong.stdout + wrong.stderr
    missing = subprocess.run([*cli, str(tmp_path / "none.json")], capture_output=True, text=True)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
