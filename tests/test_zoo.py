"""The model zoo: files present and small, weights stripped as declared, small models plan at M_R.

The full-zoo check (every model compiled at M_R and accepted by shared/tools/checkplan.py) is
``python models/check_zoo.py``; here a few small models stand for it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cosma

MODELS = Path(__file__).resolve().parent.parent / "models"


def _module(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, MODELS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


zoo = _module("zoo")
ELEMENT_BYTES = {"float32": 4, "int64": 8}
#: Small zoo models for the fast suite: a fixture, a CNN, a NAS cell network, a transformer.
SMALL = ("tiny_cnn", "mobilenet_v2", "darts", "transformer")


def _stripped_names(model: onnx.ModelProto) -> list[str]:
    entry = next(p for p in model.metadata_props if p.key == zoo.STRIPPED_KEY)
    return json.loads(entry.value)


def _signature(graph: cosma.Graph) -> tuple[list[tuple], list[tuple]]:
    ops = [(o.name, o.op_type, o.inputs, o.outputs, o.fused) for o in graph.ops]
    tensors = [(t.name, t.bytes, t.kind, t.shape, t.dtype) for t in graph.tensors]
    return ops, tensors


# ---------------------------------------------------------------------------------- the files
@pytest.mark.parametrize("entry", list(zoo.ZOO.values()), ids=list(zoo.ZOO))
def test_registry_file_exists_under_one_megabyte(entry):
    assert entry.path.is_file(), f"{entry.file} missing: run python models/generate.py {entry.name}"
    assert entry.path.stat().st_size < 1_000_000


@pytest.mark.parametrize("entry", [e for e in zoo.ZOO.values() if e.stripped], ids=lambda e: e.name)
def test_stripped_file_declares_its_weights_as_inputs(entry):
    model = onnx.load(entry.path)
    graph = model.graph
    names = _stripped_names(model)
    inputs = {i.name: i for i in graph.input}
    initializers = {i.name for i in graph.initializer}
    assert names and len(set(names)) == len(names)
    assert all(n in inputs and n not in initializers for n in names)
    # What remains in the file is small: no floating-point initializer of more than one element
    # except scale factors, which are parameters of Resize.
    resize_params = {n.input[i] for n in graph.node if n.op_type == "Resize" for i in (1, 2) if len(n.input) > i}
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and init.name not in resize_params:
            assert math.prod(init.dims) <= 1, init.name
    # The real inputs are exactly the registry's, with static shapes.
    real = [i for i in graph.input if i.name not in set(names)]
    declared = [(i.name, i.shape, i.dtype) for i in entry.inputs]
    found = [
        (
            i.name,
            tuple(d.dim_value for d in i.type.tensor_type.shape.dim),
            helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type).name,
        )
        for i in real
    ]
    assert found == declared
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 17


def test_registry_groups_and_lookup():
    assert {e.group for e in zoo.entries()} == {"human", "nas", "random", "everyday", "large"}
    assert len(list(zoo.entries("human"))) == 10
    assert len(list(zoo.entries("nas"))) == 4
    assert zoo.path("resnet50") == zoo.models_dir() / "resnet50.onnx"
    with pytest.raises(KeyError, match="no zoo model"):
        zoo.path("resnet51")
    with pytest.raises(ValueError, match="unknown zoo group"):
        list(zoo.entries("vision"))


# ------------------------------------------------------------------------- through cosma
@pytest.mark.parametrize("name", SMALL)
def test_small_model_loads_with_every_shape_and_plans_at_m_r(name):
    entry = zoo.ZOO[name]
    graph = cosma.load_onnx(entry.path)
    for t in graph.tensors:
        assert t.bytes == math.prod(t.shape) * ELEMENT_BYTES[t.dtype], t.name
    stripped = set(_stripped_names(onnx.load(entry.path)))
    read = {x for o in graph.ops for x in o.inputs}
    # Every weight an operator reads directly is one of the stripped inputs or derived from them.
    assert {t.name for t in graph.tensors if t.kind == "input"} == {i.name for i in entry.inputs} & read
    assert stripped & read <= {t.name for t in graph.tensors if t.kind == "weight"}
    plan = cosma.compile(graph, graph.min_scratchpad, time_limit=5)
    result = cosma.replay(plan.to_dict())
    assert result.extra_bytes == plan.summary.extra_bytes
    assert result.ops == len(graph.ops)
    assert result.scratchpad_bytes == graph.min_scratchpad


def test_stripped_file_lowers_like_the_same_export_with_weights():
    stripped = zoo.ZOO["tiny_cnn"].path
    full = zoo.ZOO["tiny_cnn_weights"].path
    with_data = onnx.load(full)
    assert sum(math.prod(i.dims) for i in with_data.graph.initializer) > 1000  # weights really are in it
    assert not any(p.key == zoo.STRIPPED_KEY for p in with_data.metadata_props)
    for options in ({}, {"weights": False}, {"fuse": False}, {"element_bytes": 1}):
        a = cosma.load_onnx(stripped, **options)
        b = cosma.load_onnx(full, **options)
        assert _signature(a) == _signature(b), options
    graph = cosma.load_onnx(stripped)
    assert graph.bytes_of_kind("weight") > 0


# ----------------------------------------------------------------- the stripping rule itself
def _hand_built() -> onnx.ModelProto:
    """Conv (weight + bias) -> Reshape (shape constant) -> Mul by a scalar -> Resize (scales)."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
        numpy_helper.from_array(np.array([1, 4, 8, 8], dtype=np.int64), "shape"),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["c", "shape"], ["r"]),
        helper.make_node("Mul", ["r", "half"], ["m"]),
        helper.make_node("Resize", ["m", "", "scales"], ["y"], mode="nearest"),
    ]
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_strip_weights_turns_only_weights_into_inputs():
    generate = _module("generate")  # imports torch only when a network is built
    model = generate.normalize(_hand_built())
    stripped = generate.strip_weights(model)
    assert _stripped_names(stripped) == ["w", "b"]
    inputs = {i.name: i for i in stripped.graph.input}
    assert [d.dim_value for d in inputs["w"].type.tensor_type.shape.dim] == [4, 3, 3, 3]
    assert inputs["b"].type.tensor_type.elem_type == TensorProto.FLOAT
    assert {i.name for i in stripped.graph.initializer} == {"shape", "half", "scales"}
    onnx.checker.check_model(stripped, full_check=True)
    assert _signature(cosma.load_onnx(stripped)) == _signature(cosma.load_onnx(model))


def test_normalize_folds_static_shape_arithmetic():
    generate = _module("generate")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["i"], value=numpy_helper.from_array(np.array([0], dtype=np.int64))),
        helper.make_node("Gather", ["s", "i"], ["n"], axis=0),
        helper.make_node("Constant", [], ["m"], value=numpy_helper.from_array(np.array([-1], dtype=np.int64))),
        helper.make_node("Concat", ["n", "m"], ["target"], axis=0),
        helper.make_node("Identity", ["x"], ["x2"]),
        helper.make_node("Reshape", ["x2", "target"], ["y"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "shapes", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    normalized = generate.normalize(model)
    assert [n.op_type for n in normalized.graph.node] == ["Reshape"]
    target = next(i for i in normalized.graph.initializer if i.name == normalized.graph.node[0].input[1])
    assert numpy_helper.to_array(target).tolist() == [2, -1]
    assert normalized.graph.node[0].input[0] == "x"
