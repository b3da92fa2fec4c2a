"""Executing plans byte for byte (cosma.execute, cosma run): correct plans match ONNX Runtime, mutated ones do not."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("onnxruntime")

import cosma
from cosma.contract import replay
from cosma.execute import ExecutionInputError, ExecutionResult, Folds, Model

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "models" / "tiny_cnn.onnx"
TINY_WEIGHTS = ROOT / "models" / "tiny_cnn_weights.onnx"
CHECKPLAN = Path("/work/shared/tools/checkplan.py")


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


def _by_hand(graph: cosma.Graph, pairs: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """A plan written by hand: graph order, each tensor in its own range, outputs taking their in-place input's.

    ``pairs`` (operator -> {OUT: IN}) replaces the graph's declared pairs when given, so a false
    pair can be declared. An output always takes its resident IN's range; an activation IN read
    later is stored first and loaded again by its next reader (the contract's rule).
    """
    declared = {o.name: dict(o.inplace) for o in graph.ops} if pairs is None else pairs
    readers_left = {t.name: sum(t.name in o.inputs for o in graph.ops) for t in graph.tensors}
    resident: dict[str, int] = {}
    in_dram = {t.name for t in graph.tensors if t.kind in ("input", "weight")}
    steps: list[dict[str, Any]] = []
    end = 0

    def place(t: str) -> int:
        nonlocal end
        end, at = end + graph.size(t), end
        return at

    for op in graph.ops:
        for t in op.inputs:
            if t not in resident:
                resident[t] = place(t)
                steps.append({"action": "load", "tensor": t, "offset": resident[t]})
        for t in op.inputs:
            readers_left[t] -= 1
        outputs = {}
        for out in op.outputs:
            src = declared.get(op.name, {}).get(out)
            if src in resident and readers_left[src] and src not in in_dram:
                steps.append({"action": "store", "tensor": src})
                in_dram.add(src)
            outputs[out] = resident.pop(src) if src in resident else place(out)
        steps.append({"action": "run", "op": op.name, "outputs": outputs})
        resident.update(outputs)
        for t in [*op.inputs, *op.outputs]:
            if t in resident and readers_left[t] == 0:
                if graph.tensor(t).kind == "output" and t not in in_dram:
                    steps.append({"action": "store", "tensor": t})
                steps.append({"action": "free", "tensor": t})
                del resident[t]
    plan = cosma.compile(graph, sum(t.bytes for t in graph.tensors), method="default+belady").to_dict()
    plan["scratchpad_bytes"] = max(end, 1)
    for o in plan["ops"]:
        o.pop("inplace", None)
        if declared.get(o["name"]):
            o["inplace"] = declared[o["name"]]
    plan["steps"] = steps
    done = replay(plan, check_summary=False)
    plan["summary"] = {
        "offchip_bytes": done.offchip_bytes,
        "compulsory_bytes": done.compulsory_bytes,
        "extra_bytes": done.extra_bytes,
    }
    return plan


def _overwrites(plan: dict[str, Any]) -> list[str]:
    """Operators whose run places an in-place output at its input's offset."""
    pairs = {o["name"]: o.get("inplace", {}) for o in plan["ops"]}
    found = []
    for i, step in enumerate(plan["steps"]):
        if step["action"] == "run":
            at = _resident_at(plan, i)
            if any(at.get(src) == step["outputs"][out] for out, src in pairs[step["op"]].items()):
                found.append(step["op"])
    return found


def _checkplan(plan: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return subprocess.run([sys.executable, str(CHECKPLAN), str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("path", [TINY, TINY_WEIGHTS])
def test_plans_using_inplace_pairs_compute_the_model(path: Path, tmp_path: Path) -> None:
    graph = cosma.load_onnx(path)
    plan = _by_hand(graph)
    assert _overwrites(plan) == ["/body/body.0/Relu", "/Add"]  # the Relu and the skip Add write over their input
    assert _checkplan(plan, tmp_path).returncode == 0
    result = cosma.execute(path, plan)
    assert result.ok, result.describe()


def test_compiled_plans_that_write_in_place_compute_the_model() -> None:
    """Whatever pairs the methods use today: every plan of tiny_cnn, with and without weights, executes."""
    model = Model.prepare(TINY, seed=0)
    for weights in (True, False):
        graph = cosma.load_onnx(TINY, weights=weights)
        for method in ("default+belady", "minpeak+greedy", "fixed-order"):
            plan = cosma.compile(graph, graph.min_scratchpad, method=method, time_limit=5).to_dict()
            result = model.execute(plan)
            assert result.ok, (method, weights, result.describe())


def test_mutation_false_inplace_pair_on_a_3x3_conv(tiny: Model, tmp_path: Path) -> None:
    """Only execution catches it: equal bytes satisfy cosma check and checkplan.py, the Conv reads what it overwrote."""
    graph = cosma.load_onnx(TINY)
    op = graph.op("/body/body.1/Conv")
    (src,), out = [t for t in op.inputs if graph.tensor(t).kind != "weight"], op.outputs[0]
    assert graph.size(src) == graph.size(out)
    pairs = {o.name: dict(o.inplace) for o in graph.ops} | {op.name: {out: src}}
    plan = _by_hand(graph, pairs)
    assert op.name in _overwrites(plan)
    replay(plan)  # cosma check accepts it
    assert _checkplan(plan, tmp_path).returncode == 0
    result = tiny.execute(plan)
    assert result.replay_error is None and result.fault is None and not result.ok
    assert result.first_wrong_op == op.name, result.describe()
    assert any(not o.ok for o in result.outputs)


def _transpose_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 16])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Transpose", ["a"], ["b"], name="transpose", perm=[1, 0]),
        helper.make_node("Sigmoid", ["b"], ["y"], name="sigmoid"),
    ]
    return helper.make_model(helper.make_graph(nodes, "t", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])


def test_mutation_false_inplace_pair_on_a_transpose(tmp_path: Path) -> None:
    proto = _transpose_model()
    graph = cosma.load_onnx(proto, fuse=False)
    assert graph.op("transpose").inplace == () and graph.op("relu").inplace == (("a", "x"),)
    good = _by_hand(graph)
    assert cosma.execute(proto, good).ok
    plan = _by_hand(graph, {"transpose": {"b": "a"}})
    assert _overwrites(plan) == ["transpose"]
    assert _checkplan(plan, tmp_path).returncode == 0
    result = cosma.execute(proto, plan)
    assert result.replay_error is None and result.fault is None and not result.ok
    assert result.first_wrong_op == "transpose" and result.first_bad_op == "sigmoid", result.describe()


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


def _conv_bn_model(stripped: bool) -> onnx.ModelProto:
    """Conv -> BatchNormalization -> Relu -> Conv: the front end folds the BN into the first Conv's weights."""
    rng = np.random.default_rng(1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    params = {
        "w1": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
        "b1": rng.standard_normal(8).astype(np.float32),
        "scale": rng.uniform(0.5, 2, 8).astype(np.float32),
        "bias": rng.standard_normal(8).astype(np.float32),
        "mean": rng.standard_normal(8).astype(np.float32),
        "var": rng.uniform(0.5, 2, 8).astype(np.float32),
        "w2": rng.standard_normal((4, 8, 1, 1)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2"),
    ]
    if stripped:
        inputs = [x] + [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in params.items()]
        graph = helper.make_graph(nodes, "convbn", inputs, [y])
    else:
        graph = helper.make_graph(nodes, "convbn", [x], [y], [numpy_helper.from_array(v, k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if stripped:
        helper.set_model_props(model, {"stripped_weight_inputs": json.dumps(list(params))})
    return model


@pytest.mark.parametrize("stripped", [False, True])
@pytest.mark.parametrize("fold", [True, False])
def test_batchnorm_folded_by_the_front_end_is_executed_folded(stripped: bool, fold: bool) -> None:
    proto = _conv_bn_model(stripped)
    graph = cosma.load_onnx(proto, fold_batchnorm=fold)
    assert ("BatchNormalization" in {t for o in graph.ops for t in (o.op_type, *o.fused)}) is not fold
    plan = cosma.compile(graph, graph.min_scratchpad, method="minpeak+belady").to_dict()
    model = Model.prepare(proto, seed=0, folds=Folds(fold_batchnorm=fold))
    # The executor runs the nodes the Graph was lowered from: conv1 with the folded weights, no BN node.
    assert ("bn1" in model.node_by_label) is not fold
    result = model.execute(plan)
    assert result.ok, result.describe()
    assert cosma.execute(proto, plan).ok  # the folds come from the plan's provenance
    with pytest.raises(ExecutionInputError, match="folds"):
        Model.prepare(proto, seed=0, folds=Folds(fold_batchnorm=not fold)).execute(plan)


def test_folding_batchnorm_keeps_the_function_of_a_model_with_weights() -> None:
    proto = _conv_bn_model(stripped=False)
    folded = Model.prepare(proto, seed=0)
    raw = Model.prepare(proto, seed=0, folds=Folds(fold_batchnorm=False))
    want = raw.reference["y"]
    w = folded.node_by_label["conv1"].input[1]  # the Conv's folded weight, W * scale / sqrt(var + eps)
    assert w != "w1" and not np.allclose(folded.constants[w], raw.constants["w1"])
    np.testing.assert_allclose(folded.reference["y"], want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


def test_an_integer_model_executes_bit_exact(tmp_path: Path) -> None:
    """tiny_cnn_weights quantized to uint8 QLinearConv (as in the zoo table): every integer value equal."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from execute_zoo import quantized_tiny_cnn
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    path = quantized_tiny_cnn(tmp_path)
    graph = cosma.load_onnx(path)
    assert {"uint8", "int8", "int32"} <= {t.dtype for t in graph.tensors}
    model = Model.prepare(path, seed=0)
    for method in ("default+belady", "minpeak+greedy"):
        result = model.execute(cosma.compile(graph, graph.min_scratchpad, method=method).to_dict())
        assert result.ok and all(o.max_abs == 0 for o in result.outputs), result.describe()
