"""Inference-time folding before lowering: shapes computed from constants, BatchNorm, constant If."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from cosma.errors import ModelError
from cosma.frontend import load_onnx
from cosma.frontend.fold import fold_batchnorm, fold_constant_ifs, fold_constants
from tests.onnx_builders import const, control_flow, conv_bn_relu, model, node, value, zeros


def test_shape_of_a_reshape_view_feeds_a_transpose():
    # Div is outside data propagation: the Reshape's shape is known only once the chain is folded.
    nodes = [
        node("MatMul", ["x", "w"], ["q"], "proj"),
        node("Shape", ["q"], ["s"], "shape"),
        node("Gather", ["s", "i0"], ["b"], "g0", axis=0),
        node("Div", ["b", "two"], ["bh"], "div"),
        node("Unsqueeze", ["bh", "ax"], ["b1"], "u0"),
        node("Concat", ["b1", "rest"], ["target"], "cat", axis=0),
        node("Reshape", ["q", "target"], ["r"], "reshape"),
        node("Transpose", ["r"], ["y"], "tr", perm=[0, 2, 1, 3]),
    ]
    inits = [
        zeros("w", (16, 16)),
        const("i0", 0, np.int64),
        const("two", 2, np.int64),
        const("ax", [0], np.int64),
        const("rest", [2, 8, 8], np.int64),
    ]
    g = load_onnx(model(nodes, [value("x", [2, 8, 16])], [value("y", ["a", "b", "c", "d"])], inits))
    assert [o.op_type for o in g.ops] == ["MatMul", "Transpose"]
    assert g.tensor("y").shape == (1, 8, 2, 8)


def _conv_bn(rng: np.random.Generator) -> onnx.ModelProto:
    c = 4
    inits = [
        const("w", rng.normal(size=(c, 3, 3, 3))),
        const("scale", rng.uniform(0.5, 2, c)),
        const("bias", rng.normal(size=c)),
        const("mean", rng.normal(size=c)),
        const("var", rng.uniform(0.5, 2, c)),
        const("m", rng.normal(size=(c, 1, 1))),
        const("a", rng.normal(size=(1, c, 1, 1))),
    ]
    nodes = [
        node("Conv", ["x", "w"], ["c"], "conv", pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["n"], "bn", epsilon=1e-3),
        node("Mul", ["n", "m"], ["p"], "mul"),
        node("Add", ["p", "a"], ["q"], "add"),
        node("Relu", ["q"], ["y"], "relu"),
    ]
    return model(nodes, [value("x", [1, 3, 6, 6])], [value("y", [1, c, 6, 6])], inits, name="conv_bn")


def test_batchnorm_mul_add_fold_into_conv_with_the_same_numbers():
    rng = np.random.default_rng(0)
    original = _conv_bn(rng)
    folded = onnx.ModelProto()
    folded.CopyFrom(original)
    assert fold_batchnorm(folded) == 3
    assert [n.op_type for n in folded.graph.node] == ["Conv", "Relu"]
    x = rng.normal(size=(1, 3, 6, 6)).astype(np.float32)
    (want,) = ReferenceEvaluator(original).run(None, {"x": x})
    (got,) = ReferenceEvaluator(folded).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    g = load_onnx(original)
    assert [(o.op_type, o.fused) for o in g.ops] == [("Conv", ("Relu",))]
    assert g.metadata["folded_batchnorm"] == "3"
    assert len(load_onnx(original, fold_batchnorm=False).ops) == 1  # still fused, but BN's weights are loaded
    assert len(load_onnx(original, fold_batchnorm=False).op("conv").inputs) == 8


def test_batchnorm_folds_into_gemm_with_the_same_numbers():
    rng = np.random.default_rng(1)
    inits = [
        const("w", rng.normal(size=(5, 8))),
        const("b", rng.normal(size=5)),
        const("scale", rng.uniform(0.5, 2, 5)),
        const("bias", rng.normal(size=5)),
        const("mean", rng.normal(size=5)),
        const("var", rng.uniform(0.5, 2, 5)),
    ]
    nodes = [
        node("Gemm", ["x", "w", "b"], ["g"], "fc", transB=1, beta=0.5),
        node("BatchNormalization", ["g", "scale", "bias", "mean", "var"], ["y"], "bn"),
    ]
    m = model(nodes, [value("x", [2, 8])], [value("y", [2, 5])], inits)
    folded = onnx.ModelProto()
    folded.CopyFrom(m)
    assert fold_batchnorm(folded) == 1
    x = rng.normal(size=(2, 8)).astype(np.float32)
    np.testing.assert_allclose(
        ReferenceEvaluator(folded).run(None, {"x": x})[0],
        ReferenceEvaluator(m).run(None, {"x": x})[0],
        rtol=1e-4,
        atol=1e-4,
    )


def test_weights_stripped_batchnorm_folds_structurally():
    m = conv_bn_relu()
    weights = [t.name for t in m.graph.initializer]
    for t in m.graph.initializer:
        m.graph.input.append(value(t.name, list(t.dims)))
    del m.graph.initializer[:]
    entry = m.metadata_props.add()
    entry.key, entry.value = "stripped_weight_inputs", str(weights).replace("'", '"')
    g = load_onnx(m)
    (conv,) = g.ops
    assert conv.fused == ("Relu",)
    assert conv.inputs == ("x", "w", "b")
    assert {t.name: t.kind for t in g.tensors} == {"x": "input", "w": "weight", "b": "weight", "y": "output"}


def test_constant_if_resolves_to_its_branch_and_others_are_refused():
    then_graph = onnx.helper.make_graph([node("Relu", ["x"], ["t"])], "then", [], [value("t", [2])])
    else_graph = onnx.helper.make_graph([node("Neg", ["x"], ["e"])], "else", [], [value("e", [2])])
    nodes = [
        node("Greater", ["one", "zero"], ["cond"], "gt"),
        node("If", ["cond"], ["y"], "branch", then_branch=then_graph, else_branch=else_graph),
    ]
    m = model(nodes, [value("x", [2])], [value("y", [2])], [const("one", 1.0), const("zero", 0.0)])
    g = load_onnx(m)
    assert [(o.name, o.op_type) for o in g.ops] == [("branch/Relu_0", "Relu")]
    assert g.metadata["folded_if"] == "1"
    with pytest.raises(ModelError, match=r"node 'branch' \(If\) is control flow"):
        load_onnx(m, fold_if=False)
    with pytest.raises(ModelError, match=r"node 'branch' \(If\) is control flow"):
        load_onnx(control_flow("If"))  # its condition depends on the input
    copy = onnx.ModelProto()
    copy.CopyFrom(control_flow("If"))
    assert fold_constant_ifs(copy) == 0


def test_constant_subgraphs_become_initializers():
    nodes = [
        node("Identity", ["w0"], ["w"], "id"),
        node("Mul", ["w", "two"], ["w2"], "mul"),
        node("MatMul", ["x", "w2"], ["y"], "mm"),
    ]
    m = model(nodes, [value("x", [1, 4])], [value("y", [1, 4])], [const("w0", np.eye(4)), const("two", 2.0)])
    assert fold_constants(m) == 2
    assert [n.op_type for n in m.graph.node] == ["MatMul"]
    np.testing.assert_array_equal(
        onnx.numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "w2")), 2 * np.eye(4)
    )


def test_truly_symbolic_input_is_named_with_its_rank():
    nodes = [
        node("Shape", ["x"], ["s"], "shape"),
        node("Reshape", ["w", "s"], ["r"], "reshape"),
        node("Add", ["x", "r"], ["y"], "add"),
    ]
    m = model(nodes, [value("x", ["batch", "seq"])], [value("y", ["batch", "seq"])], [zeros("w", (6,))])
    with pytest.raises(ModelError) as e:
        load_onnx(m)
    text = str(e.value)
    assert "x[batchxseq]" in text and "--input-shape x=1x1 " in text


def test_quantized_tensors_have_their_real_sizes():
    nodes = [
        node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], "q"),
        node("QLinearConv", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["yq"], "qconv"),
        node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], "dq"),
    ]
    inits = [
        const("xs", 0.1),
        const("xz", 0, np.uint8),
        const("w", np.zeros((8, 3, 3, 3)), np.int8),
        const("ws", np.ones(8) * 0.1),
        const("wz", np.zeros(8), np.int8),
        const("ys", 0.2),
        const("yz", 0, np.uint8),
        const("b", np.zeros(8), np.int32),
    ]
    g = load_onnx(model(nodes, [value("x", [1, 3, 8, 8])], [value("y", [1, 8, 6, 6])], inits))
    sizes = {t.name: (t.bytes, t.dtype) for t in g.tensors}
    assert sizes["xq"] == (192, "uint8") and sizes["yq"] == (288, "uint8") and sizes["w"] == (216, "int8")
    assert sizes["xz"] == (1, "uint8") and sizes["ws"] == (32, "float32") and sizes["b"] == (32, "int32")


def test_dequantized_int8_weight_is_loaded_at_int8_size():
    # The QDQ form: the operator reads the int8 weight and its scale, not a float copy of it.
    nodes = [node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], "dqw"), node("MatMul", ["x", "w"], ["y"], "mm")]
    inits = [const("wq", np.ones((64, 64)), np.int8), const("ws", 0.1), const("wz", 0, np.int8)]
    g = load_onnx(model(nodes, [value("x", [1, 64])], [value("y", [1, 64])], inits))
    assert g.op("mm").inputs == ("x", "wq", "ws", "wz")
    assert g.tensor("wq").bytes == 64 * 64 and g.tensor("wq").dtype == "int8"
