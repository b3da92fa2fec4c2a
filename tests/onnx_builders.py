"""Tiny hand-built ONNX models for tests, made with ``onnx.helper`` (importable by any test).

Each builder returns a ModelProto that passes ``onnx.checker``; names say what the graph is.
Shapes are NCHW unless stated; ``F``/``F16``/``I8``/``I64`` are the ONNX element types.

Example:
    >>> m = conv_bn_relu()
    >>> [n.op_type for n in m.graph.node]
    ['Conv', 'BatchNormalization', 'Relu']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
F16 = TensorProto.FLOAT16
I8 = TensorProto.INT8
I64 = TensorProto.INT64
OPSET = 17
Dims = Sequence[int | str | None]


def light_models_dir() -> str:
    """The folder of the nine classic 'light' models shipped inside the onnx wheel."""
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def value(name: str, shape: Dims | None, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def const(name: str, array: np.ndarray | Sequence[float] | float, dtype: type = np.float32) -> onnx.TensorProto:
    """An initializer holding ``array``."""
    return numpy_helper.from_array(np.asarray(array, dtype=dtype), name)


def zeros(name: str, shape: Sequence[int], dtype: type = np.float32) -> onnx.TensorProto:
    return const(name, np.zeros(shape, dtype=dtype), dtype)


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    *,
    name: str = "g",
    opset: int = OPSET,
    ir_version: int | None = None,
    metadata: Mapping[str, str] | None = None,
    functions: Sequence[onnx.FunctionProto] = (),
    extra_opsets: Mapping[str, int] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    m = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    if ir_version is not None:
        m.ir_version = ir_version
    for key, text in (metadata or {}).items():
        entry = m.metadata_props.add()
        entry.key, entry.value = key, text
    return m


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], name: str = "", **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op, list(inputs), list(outputs), name=name or None, **attrs)


# ------------------------------------------------------------------ named graphs
def conv_bn_relu(channels: int = 8, size: int = 16) -> onnx.ModelProto:
    """x[1,3,S,S] -> Conv(w, b) -> BatchNormalization -> Relu -> y: one operator once fused."""
    c = channels
    inits = [
        zeros("w", (c, 3, 3, 3)),
        zeros("b", (c,)),
        zeros("scale", (c,)),
        zeros("bias", (c,)),
        zeros("mean", (c,)),
        zeros("var", (c,)),
    ]
    nodes = [
        node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["n"], "bn"),
        node("Relu", ["n"], ["y"], "relu"),
    ]
    return model(nodes, [value("x", [1, 3, size, size])], [value("y", [1, c, size, size])], inits, name="conv_bn_relu")


def fan_out_relu() -> onnx.ModelProto:
    """Conv whose output feeds a Relu and an Add: the Relu must not fuse into the Conv."""
    inits = [zeros("w", (4, 4, 1, 1))]
    nodes = [
        node("Conv", ["x", "w"], ["c"], "conv"),
        node("Relu", ["c"], ["r"], "relu"),
        node("Add", ["c", "r"], ["y"], "add"),
    ]
    return model(nodes, [value("x", [1, 4, 8, 8])], [value("y", [1, 4, 8, 8])], inits, name="fan_out_relu")


def shape_chain_flatten() -> onnx.ModelProto:
    """The torch-export flatten idiom and a ConstantOfShape weight, all constant-computable.

    x[1,3,4,4] -> Relu -> r; Shape(r) -> Gather(0) -> Unsqueeze -> Concat(-1) -> Reshape(r) -> f[1,48];
    w = ConstantOfShape(Constant([48, 10])); y = MatMul(f, w) -> [1,10].
    """
    nodes = [
        node("Relu", ["x"], ["r"], "relu"),
        node("Shape", ["r"], ["s"], "shape"),
        node("Constant", [], ["i0"], "c_i0", value=const("i0", 0, np.int64)),
        node("Gather", ["s", "i0"], ["batch"], "gather", axis=0),
        node("Constant", [], ["axes"], "c_axes", value=const("axes", [0], np.int64)),
        node("Unsqueeze", ["batch", "axes"], ["batch1"], "unsq"),
        node("Constant", [], ["minus1"], "c_m1", value=const("minus1", [-1], np.int64)),
        node("Concat", ["batch1", "minus1"], ["target"], "concat", axis=0),
        node("Reshape", ["r", "target"], ["f"], "reshape"),
        node("Constant", [], ["wshape"], "c_ws", value=const("wshape", [48, 10], np.int64)),
        node("ConstantOfShape", ["wshape"], ["w"], "cos", value=const("v", [0.5])),
        node("MatMul", ["f", "w"], ["y"], "matmul"),
    ]
    return model(nodes, [value("x", [1, 3, 4, 4])], [value("y", [1, 10])], name="shape_chain_flatten")


def views_chain() -> onnx.ModelProto:
    """Every pure view between two operators, and a Reshape as the graph output.

    x[1,2,4,4] -> Relu -> r -> Flatten -> Unsqueeze -> Squeeze -> Identity -> Dropout -> d[1,32]
    -> MatMul(w[32,6]) -> m -> Reshape[1,2,3] -> y.
    """
    inits = [zeros("w", (32, 6)), const("axes", [0], np.int64), const("yshape", [1, 2, 3], np.int64)]
    nodes = [
        node("Relu", ["x"], ["r"], "relu"),
        node("Flatten", ["r"], ["fl"], "flatten", axis=1),
        node("Unsqueeze", ["fl", "axes"], ["un"], "unsqueeze"),
        node("Squeeze", ["un", "axes"], ["sq"], "squeeze"),
        node("Identity", ["sq"], ["idn"], "identity"),
        node("Dropout", ["idn"], ["d"], "dropout"),
        node("MatMul", ["d", "w"], ["m"], "matmul"),
        node("Reshape", ["m", "yshape"], ["y"], "reshape_out"),
    ]
    return model(nodes, [value("x", [1, 2, 4, 4])], [value("y", [1, 2, 3])], inits, name="views_chain")


def control_flow(kind: str = "If") -> onnx.ModelProto:
    """A graph with one ``If`` (or ``Loop``) node named ``branch``."""
    then_graph = helper.make_graph([node("Relu", ["x"], ["t"])], "then", [], [value("t", [2])])
    else_graph = helper.make_graph([node("Neg", ["x"], ["e"])], "else", [], [value("e", [2])])
    if kind == "If":
        nodes = [
            node("ReduceSum", ["x"], ["s"], "sum", keepdims=0),
            node("Greater", ["s", "zero"], ["cond"], "gt"),
            node("If", ["cond"], ["y"], "branch", then_branch=then_graph, else_branch=else_graph),
        ]
        return model(nodes, [value("x", [2])], [value("y", [2])], [const("zero", 0.0)], name="if_graph")
    body = helper.make_graph(
        [node("Identity", ["cond_in"], ["cond_out"]), node("Add", ["acc_in", "x"], ["acc_out"])],
        "body",
        [value("i", [], I64), value("cond_in", [], TensorProto.BOOL), value("acc_in", [2])],
        [value("cond_out", [], TensorProto.BOOL), value("acc_out", [2])],
    )
    nodes = [node("Loop", ["trips", "", "x"], ["y"], "branch", body=body)]
    return model(nodes, [value("x", [2])], [value("y", [2])], [const("trips", 3, np.int64)], name="loop_graph")
