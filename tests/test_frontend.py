"""The ONNX front end: folding, views, fusion, kinds, sizes, shapes, errors, and the onnx wheel's light models."""

from __future__ import annotations

import doctest
import glob
import json
import os
from math import prod

import numpy as np
import onnx
import onnx_builders
import pytest
from onnx import TensorProto, helper
from onnx_builders import (
    F16,
    I8,
    I64,
    F,
    const,
    control_flow,
    conv_bn_relu,
    fan_out_relu,
    light_models_dir,
    model,
    node,
    shape_chain_flatten,
    value,
    views_chain,
    zeros,
)

import cosma
import cosma.frontend.fuse
import cosma.frontend.lower
from cosma.errors import ModelError
from cosma.frontend import fuse_epilogues, load_onnx

LIGHT_MODELS = sorted(glob.glob(os.path.join(light_models_dir(), "*.onnx")))


def kinds(graph: cosma.Graph) -> dict[str, str]:
    return {t.name: t.kind for t in graph.tensors}


def op_types(graph: cosma.Graph) -> list[str]:
    return [o.op_type for o in graph.ops]


# --------------------------------------------------------------------- folding
def test_constant_shape_and_constant_of_shape_chains_never_become_operators():
    g = load_onnx(shape_chain_flatten())
    assert op_types(g) == ["Relu", "MatMul"]
    matmul = g.op("matmul")
    assert matmul.inputs == ("r", "w")  # reads Reshape's root and the folded ConstantOfShape
    assert g.tensor("w").kind == "weight"
    assert g.tensor("w").shape == (48, 10)
    assert g.tensor("w").bytes == 48 * 10 * 4
    assert set(kinds(g)) == {"x", "r", "w", "y"}


def test_shape_arithmetic_that_data_propagation_misses_is_evaluated():
    # ReduceProd / Div / Range are beyond ONNX's data propagation: the front end evaluates them.
    nodes = [
        node("Relu", ["x"], ["r"], "relu"),
        node("Shape", ["r"], ["s"]),
        node("ReduceProd", ["s"], ["n"], keepdims=1),
        node("Div", ["n", "two"], ["half"]),
        node("Concat", ["two", "half"], ["target"], axis=0),
        node("Reshape", ["r", "target"], ["v"]),
        node("Squeeze", ["half"], ["count"]),
        node("Range", ["zero", "count", "one"], ["steps"]),
        node("Cast", ["steps"], ["ramp"], to=F),
        node("Mul", ["v", "ramp"], ["y"], "scale"),
    ]
    inits = [const("two", [2], np.int64), const("zero", 0, np.int64), const("one", 1, np.int64)]
    g = load_onnx(model(nodes, [value("x", [1, 3, 4, 4])], [value("y", ["a", "b"])], inits), fuse=False)
    assert op_types(g) == ["Relu", "Mul"]
    assert g.tensor("ramp").kind == "weight" and g.tensor("ramp").shape == (24,)
    assert g.tensor("y").shape == (2, 24) and g.tensor("y").kind == "output"


def test_light_model_constant_of_shape_weights_are_weights_not_operators():
    g = load_onnx(os.path.join(light_models_dir(), "light_bvlc_alexnet.onnx"), fuse=False)
    assert "ConstantOfShape" not in op_types(g)
    w = g.tensor("conv1_w_0")
    assert (w.kind, w.shape, w.bytes) == ("weight", (96, 3, 11, 11), 96 * 3 * 11 * 11 * 4)
    assert g.op("n0").inputs == ("data_0", "conv1_w_0", "conv1_b_0")
    assert "OC2_DUMMY_1" not in kinds(g)  # Reshape's shape: folded, read by no operator


# ----------------------------------------------------------------------- views
def test_views_become_aliases_and_a_view_output_makes_its_root_the_output():
    g = load_onnx(views_chain())
    assert op_types(g) == ["Relu", "MatMul"]
    assert g.op("matmul").inputs == ("r", "w")
    assert kinds(g) == {"x": "input", "r": "activation", "w": "weight", "m": "output"}
    assert g.tensor("m").shape == (1, 6)
    assert int(g.metadata["view_nodes"]) == 6


def test_dropout_whose_mask_is_used_stays_an_operator():
    nodes = [
        node("Relu", ["x"], ["r"], "relu"),
        node("Dropout", ["r"], ["d", "mask"], "drop"),
        node("Cast", ["mask"], ["maskf"], "cast", to=F),
        node("Add", ["d", "maskf"], ["y"], "add"),
    ]
    g = load_onnx(model(nodes, [value("x", [4])], [value("y", [4])]), fuse=False)
    assert op_types(g) == ["Relu", "Dropout", "Cast", "Add"]
    assert g.tensor("mask").bytes == 4  # bool: one byte per element


def test_graph_output_that_is_a_graph_input_through_a_view_is_refused():
    m = model([node("Identity", ["x"], ["y"], "id")], [value("x", [4])], [value("y", [4])])
    with pytest.raises(ModelError, match="graph output 'y' is the graph input 'x'"):
        load_onnx(m)


def test_graph_output_that_is_a_constant_is_refused():
    m = model([node("Relu", ["x"], ["r"]), node("Shape", ["r"], ["y"])], [value("x", [4])], [value("y", [1], I64)])
    with pytest.raises(ModelError, match="graph output 'y' is a constant"):
        load_onnx(m)


# ---------------------------------------------------------------------- fusion
def test_conv_bn_relu_fuses_into_one_conv():
    g = load_onnx(conv_bn_relu(), fold_batchnorm=False)
    assert len(g.ops) == 1
    (conv,) = g.ops
    assert (conv.name, conv.op_type, conv.fused) == ("conv", "Conv", ("BatchNormalization", "Relu"))
    assert conv.inputs == ("x", "w", "b", "scale", "bias", "mean", "var")
    assert conv.outputs == ("y",)
    assert set(kinds(g)) == {"x", "w", "b", "scale", "bias", "mean", "var", "y"}


def test_fuse_false_keeps_every_operator():
    g = load_onnx(conv_bn_relu(), fuse=False, fold_batchnorm=False)
    assert op_types(g) == ["Conv", "BatchNormalization", "Relu"]
    assert all(o.fused == () for o in g.ops)
    assert g.tensor("c").kind == "activation" and g.tensor("n").kind == "activation"


def test_relu_whose_producer_has_two_consumers_is_not_fused():
    g = load_onnx(fan_out_relu())
    assert op_types(g) == ["Conv", "Relu", "Add"]
    assert all(o.fused == () for o in g.ops)


def test_epilogue_of_a_graph_output_is_not_fused():
    nodes = [node("Conv", ["x", "w"], ["c"], "conv"), node("Relu", ["c"], ["y"], "relu")]
    m = model(
        nodes,
        [value("x", [1, 2, 4, 4])],
        [value("c", [1, 2, 4, 4]), value("y", [1, 2, 4, 4])],
        [zeros("w", (2, 2, 1, 1))],
    )
    g = load_onnx(m)
    assert op_types(g) == ["Conv", "Relu"]
    assert kinds(g)["c"] == "output"


def test_residual_add_is_not_an_epilogue_but_the_relu_after_it_is():
    nodes = [
        node("Conv", ["x", "w"], ["c"], "conv"),
        node("Add", ["c", "x"], ["s"], "add"),
        node("Relu", ["s"], ["y"], "relu"),
    ]
    m = model(nodes, [value("x", [1, 2, 4, 4])], [value("y", [1, 2, 4, 4])], [zeros("w", (2, 2, 1, 1))])
    g = load_onnx(m)
    assert [(o.op_type, o.fused) for o in g.ops] == [("Conv", ()), ("Add", ("Relu",))]


def test_broadcast_that_grows_the_tensor_is_not_fused():
    nodes = [node("Relu", ["x"], ["r"], "relu"), node("Add", ["r", "big"], ["y"], "add")]
    m = model(nodes, [value("x", [1, 4])], [value("y", [3, 4])], [zeros("big", (3, 4))])
    assert op_types(load_onnx(m)) == ["Relu", "Add"]


def test_bias_add_and_scale_mul_by_constants_fuse_into_gemm():
    nodes = [
        node("Gemm", ["x", "w"], ["g"], "fc"),
        node("Add", ["bias", "g"], ["a"], "bias"),
        node("Mul", ["a", "half"], ["m"], "scale"),
        node("Clip", ["m", "", "six"], ["y"], "clip"),
    ]
    inits = [zeros("w", (8, 4)), zeros("bias", (4,)), const("half", 0.5), const("six", 6.0)]
    g = load_onnx(model(nodes, [value("x", [2, 8])], [value("y", [2, 4])], inits), fold_batchnorm=False)
    (fc,) = g.ops
    assert fc.fused == ("Add", "Mul", "Clip")
    assert fc.inputs == ("x", "w", "bias", "half", "six")
    assert g.tensor("half").shape == () and g.tensor("half").bytes == 4


def test_fuse_epilogues_is_idempotent_on_light_models():
    for path in LIGHT_MODELS[:3]:
        g = load_onnx(path)
        assert fuse_epilogues(g) is g


# ----------------------------------------------------------------------- kinds
def test_kinds_initializer_stripped_input_input_activation_output():
    nodes = [
        node("Conv", ["x", "w", "b"], ["c"], "conv"),
        node("Relu", ["c"], ["r"], "relu"),
        node("Conv", ["r", "w2"], ["y"], "conv2"),
    ]
    m = model(
        nodes,
        [value("x", [1, 2, 4, 4]), value("w", [2, 2, 1, 1]), value("unused", [7])],
        [value("y", [1, 2, 4, 4])],
        [zeros("b", (2,)), zeros("w2", (2, 2, 1, 1))],
        metadata={"stripped_weight_inputs": json.dumps(["w"])},
    )
    g = load_onnx(m, fuse=False)
    assert kinds(g) == {
        "x": "input",
        "w": "weight",
        "b": "weight",
        "c": "activation",
        "r": "activation",
        "w2": "weight",
        "y": "output",
    }
    assert g.compulsory_bytes == (32 + 4 + 2 + 4 + 32) * 4  # x, w, b, w2 loaded; y stored


def test_graph_input_that_is_also_an_initializer_is_a_weight():
    m = model(
        [node("Mul", ["x", "k"], ["y"], "mul")],
        [value("x", [4]), value("k", [4])],
        [value("y", [4])],
        [zeros("k", (4,))],
        ir_version=3,
        opset=9,
    )
    g = load_onnx(m)
    assert kinds(g) == {"x": "input", "k": "weight", "y": "output"}


def test_bad_stripped_weight_inputs_metadata_is_a_model_error():
    m = model(
        [node("Relu", ["x"], ["y"])],
        [value("x", [4])],
        [value("y", [4])],
        metadata={"stripped_weight_inputs": "w1, w2"},
    )
    with pytest.raises(ModelError, match="stripped_weight_inputs"):
        load_onnx(m)


# ----------------------------------------------------------------------- sizes
@pytest.mark.parametrize(("elem", "width"), [(F, 4), (F16, 2), (I8, 1), (I64, 8)])
def test_bytes_are_elements_times_the_onnx_element_size(elem, width):
    m = model([node("Neg", ["x"], ["y"], "neg")], [value("x", [3, 5], elem)], [value("y", [3, 5], elem)])
    g = load_onnx(m)
    assert [t.bytes for t in g.tensors] == [15 * width, 15 * width]
    assert g.tensor("x").shape == (3, 5)
    assert g.tensor("x").dtype == {F: "float32", F16: "float16", I8: "int8", I64: "int64"}[elem]


def test_element_bytes_overrides_every_tensor_and_matches_with_element_bytes():
    g1 = load_onnx(conv_bn_relu(), element_bytes=1)
    assert all(t.bytes == prod(t.shape) for t in g1.tensors)
    g4 = load_onnx(conv_bn_relu())
    assert [t.bytes for t in g4.with_element_bytes(1).tensors] == [t.bytes for t in g1.tensors]
    assert [t.bytes for t in g4.tensors] == [4 * t.bytes for t in g1.tensors]


def test_element_bytes_below_one_is_an_option_error():
    with pytest.raises(cosma.OptionError, match="element_bytes"):
        load_onnx(conv_bn_relu(), element_bytes=0)


# --------------------------------------------------------------------- weights
def test_weights_false_leaves_weights_out_entirely():
    g = load_onnx(conv_bn_relu(), weights=False, fold_batchnorm=False)
    assert kinds(g) == {"x": "input", "y": "output"}
    assert g.ops[0].inputs == ("x",) and g.ops[0].fused == ("BatchNormalization", "Relu")


# ---------------------------------------------------------------------- shapes
def symbolic_relu() -> onnx.ModelProto:
    nodes = [
        node("Relu", ["x"], ["r"], "relu"),
        node("Flatten", ["r"], ["f"], "flat"),
        node("Neg", ["f"], ["y"], "neg"),
    ]
    return model(nodes, [value("x", ["N", 3, "H", "W"])], [value("y", ["N", "K"])], name="symbolic")


def test_input_shapes_fix_symbolic_dims():
    g = load_onnx(symbolic_relu(), input_shapes={"x": (2, 3, 4, 5)}, fuse=False)
    assert g.tensor("x").shape == (2, 3, 4, 5)
    assert g.tensor("y").shape == (2, 60) and g.tensor("y").bytes == 2 * 60 * 4


def test_input_shapes_override_shapes_recorded_for_other_input_dims():
    m = symbolic_relu()
    m.graph.value_info.append(value("r", [1, 3, 7, 7]))  # stale: recorded for another input size
    del m.graph.output[0].type.tensor_type.shape.dim[:]
    m.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 1
    m.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 147
    g = load_onnx(m, input_shapes={"x": (2, 3, 4, 5)}, fuse=False)
    assert g.tensor("r").shape == (2, 3, 4, 5) and g.tensor("y").shape == (2, 60)


def test_the_callers_model_proto_is_left_unchanged():
    m = symbolic_relu()
    before = m.SerializeToString()
    load_onnx(m, input_shapes={"x": (2, 3, 4, 5)})
    assert m.SerializeToString() == before


def test_unknown_shape_names_the_tensor_and_suggests_input_shape():
    with pytest.raises(ModelError, match=r"shape of tensor 'x'.*--input-shape x=") as info:
        load_onnx(symbolic_relu())
    assert "\n" not in str(info.value)


def test_unknown_shape_of_an_operator_output_names_it():
    # NonZero's output size depends on the data: no input shape can fix it.
    nodes = [node("NonZero", ["x"], ["nz"], "nonzero"), node("Cast", ["nz"], ["y"], "cast", to=F)]
    m = model(nodes, [value("x", [4])], [value("y", [1, "k"])])
    with pytest.raises(ModelError, match=r"tensor 'nz' \(output of node 'nonzero'.*depends on values at run"):
        load_onnx(m)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"z": (1, 3, 4, 4)}, "has no input 'z'"),
        ({"x": (1, 3, 4)}, "does not fit input 'x'"),
        ({"x": (1, 2, 4, 4)}, r"declared Nx3xHxW"),
    ],
)
def test_bad_input_shapes_are_model_errors(shapes, message):
    with pytest.raises(ModelError, match=message):
        load_onnx(symbolic_relu(), input_shapes=shapes)


# ---------------------------------------------------------------- unsupported
@pytest.mark.parametrize("kind", ["If", "Loop"])
def test_control_flow_is_a_model_error_naming_the_node(kind):
    with pytest.raises(ModelError, match=rf"node 'branch' \({kind}\) is control flow"):
        load_onnx(control_flow(kind))


def test_sequence_operators_are_a_model_error_naming_the_node():
    nodes = [node("SplitToSequence", ["x"], ["seq"], "split"), node("ConcatFromSequence", ["seq"], ["y"], axis=0)]
    m = model(nodes, [value("x", [4])], [value("y", [4])])
    with pytest.raises(ModelError, match=r"node 'split' \(SplitToSequence\)"):
        load_onnx(m)


def test_missing_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match=r"nothere\.onnx: no such file"):
        load_onnx(tmp_path / "nothere.onnx")
    with pytest.raises(ModelError, match="not a file"):
        load_onnx(tmp_path)


def test_non_onnx_bytes_are_a_model_error(tmp_path):
    for i, data in enumerate([b"\xff\xfe this is not a protobuf \x00\x01", b"", b"hello, world\n"]):
        path = tmp_path / f"junk{i}.onnx"
        path.write_bytes(data)
        with pytest.raises(ModelError, match=rf"junk{i}\.onnx: not (an ONNX model|a valid ONNX model)") as info:
            load_onnx(path)
        assert "\n" not in str(info.value)


# ------------------------------------------------------------- names and order
def test_graph_name_is_the_file_stem_or_the_graph_name_or_given(tmp_path):
    path = tmp_path / "my_net.onnx"
    onnx.save(conv_bn_relu(), path)
    assert load_onnx(path).name == "my_net"
    assert load_onnx(str(path), name="other").name == "other"
    assert load_onnx(conv_bn_relu()).name == "conv_bn_relu"


def test_empty_names_are_generated_duplicates_listed_once_optional_inputs_skipped():
    nodes = [
        node("Relu", ["x"], ["r"]),
        node("Add", ["r", "r"], ["a"]),
        node("Clip", ["a", "", "hi"], ["c"]),
        node("Split", ["c"], ["s0", "s1"], "split", axis=0),
        node("Concat", ["s1", "s0"], ["y"], axis=0),
    ]
    m = model(nodes, [value("x", [4])], [value("y", [4])], [const("hi", 6.0)])
    g = load_onnx(m, fuse=False)
    assert [o.name for o in g.ops] == ["Relu_0", "Add_1", "Clip_2", "split", "Concat_4"]
    assert g.op("Add_1").inputs == ("r",)
    assert g.op("Clip_2").inputs == ("a", "hi")
    assert g.op("split").outputs == ("s0", "s1")


def test_generated_names_avoid_names_already_taken():
    nodes = [node("Relu", ["x"], ["r"], "Neg_1"), node("Neg", ["r"], ["y"])]
    g = load_onnx(model(nodes, [value("x", [4])], [value("y", [4])]), fuse=False)
    assert [o.name for o in g.ops] == ["Neg_1", "Neg_1_1"]


def test_unsorted_file_is_sorted_topologically_and_stably():
    nodes = [
        node("Neg", ["b"], ["y"], "last"),
        node("Relu", ["x"], ["a"], "first"),
        node("Sigmoid", ["x"], ["side"], "side"),
        node("Add", ["a", "side"], ["b"], "mid"),
    ]
    g = load_onnx(model(nodes, [value("x", [4])], [value("y", [4])]), fuse=False)
    assert g.default_order == ("first", "side", "mid", "last")


def test_dead_operators_are_dropped():
    nodes = [node("Relu", ["x"], ["y"], "live"), node("Neg", ["x"], ["unused"], "dead")]
    g = load_onnx(model(nodes, [value("x", [4])], [value("y", [4])]))
    assert g.default_order == ("live",) and g.metadata["dead_operators"] == "1"


# ------------------------------------------------------- files, functions, torch
def test_external_weight_data_is_not_needed(tmp_path):
    path = tmp_path / "ext.onnx"
    onnx.save(conv_bn_relu(), path, save_as_external_data=True, location="ext.bin", size_threshold=0)
    (tmp_path / "ext.bin").unlink()
    g = load_onnx(path)
    assert g.tensor("w").kind == "weight" and g.tensor("w").bytes == 8 * 3 * 3 * 3 * 4


def test_model_local_functions_are_inlined():
    body = helper.make_function(
        "local",
        "Act",
        ["a"],
        ["b"],
        [node("Sigmoid", ["a"], ["s"]), node("Mul", ["a", "s"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    nodes = [node("Act", ["x"], ["y"], "act", domain="local")]
    m = model(nodes, [value("x", [4])], [value("y", [4])], functions=[body], extra_opsets={"local": 1})
    g = load_onnx(m, fuse=False)
    assert op_types(g) == ["Sigmoid", "Mul"]


def test_torch_style_export_at_opset_17():
    # The TorchScript exporter's idioms: Constant nodes, Identity of initializers, Shape-based
    # flatten, a bias Add after MatMul, slash-separated node names and a symbolic batch dim.
    nodes = [
        node("Identity", ["onnx::Conv_1"], ["conv.weight"], "/Identity"),
        node("Conv", ["input", "conv.weight"], ["/conv/Conv_output_0"], "/conv/Conv", pads=[1, 1, 1, 1]),
        node("Relu", ["/conv/Conv_output_0"], ["/relu/Relu_output_0"], "/relu/Relu"),
        node("Shape", ["/relu/Relu_output_0"], ["/Shape_output_0"], "/Shape"),
        node("Constant", [], ["/Constant_output_0"], "/Constant", value=const("c0", 0, np.int64)),
        node("Gather", ["/Shape_output_0", "/Constant_output_0"], ["/Gather_output_0"], "/Gather", axis=0),
        node("Constant", [], ["/Constant_1_output_0"], "/Constant_1", value=const("c1", [0], np.int64)),
        node("Unsqueeze", ["/Gather_output_0", "/Constant_1_output_0"], ["/Unsqueeze_output_0"], "/Unsqueeze"),
        node("Constant", [], ["/Constant_2_output_0"], "/Constant_2", value=const("c2", [-1], np.int64)),
        node("Concat", ["/Unsqueeze_output_0", "/Constant_2_output_0"], ["/Concat_output_0"], "/Concat", axis=0),
        node("Reshape", ["/relu/Relu_output_0", "/Concat_output_0"], ["/Reshape_output_0"], "/Reshape"),
        node("MatMul", ["/Reshape_output_0", "onnx::MatMul_2"], ["/fc/MatMul_output_0"], "/fc/MatMul"),
        node("Add", ["fc.bias", "/fc/MatMul_output_0"], ["output"], "/fc/Add"),
    ]
    inits = [zeros("onnx::Conv_1", (4, 3, 3, 3)), zeros("onnx::MatMul_2", (4 * 8 * 8, 10)), zeros("fc.bias", (10,))]
    m = model(nodes, [value("input", ["batch", 3, 8, 8])], [value("output", ["batch", 10])], inits)
    m.producer_name, m.producer_version = "pytorch", "2.1.0"
    g = load_onnx(m, input_shapes={"input": (2, 3, 8, 8)})
    assert [(o.name, o.fused) for o in g.ops] == [("/conv/Conv", ("Relu",)), ("/fc/MatMul", ("Add",))]
    assert g.op("/conv/Conv").inputs == ("input", "conv.weight")
    assert g.tensor("conv.weight").kind == "weight"
    assert g.tensor("output").shape == (2, 10)
    assert g.metadata["producer"] == "pytorch 2.1.0" and g.metadata["opset"] == "17"


# ------------------------------------------------------------------ light models
@pytest.mark.parametrize("path", LIGHT_MODELS, ids=[os.path.basename(p)[6:-5] for p in LIGHT_MODELS])
def test_light_model_loads(path):
    for fuse in (True, False):
        g = load_onnx(path, fuse=fuse)
        assert g.ops and g.name == os.path.basename(path)[:-5]
        assert all(t.bytes > 0 or 0 in t.shape for t in g.tensors)
        assert all(t.bytes == 4 * prod(t.shape) for t in g.tensors)  # every light model is float32
        assert {"ConstantOfShape", "Reshape", "Dropout", "Unsqueeze"}.isdisjoint(op_types(g))
        assert sum(t.kind == "input" for t in g.tensors) == 1
        assert sum(t.kind == "output" for t in g.tensors) == 1
        assert g.is_topological(g.default_order)


def test_light_models_have_the_expected_operator_counts():
    # Hand-counted from the node lists: fused ops are Conv/Gemm (+BN/+Relu), the rest stand alone.
    alexnet = os.path.join(light_models_dir(), "light_bvlc_alexnet.onnx")
    assert len(load_onnx(alexnet, fuse=False).ops) == 40 - 16 - 1 - 2  # minus ConstantOfShape, Reshape, Dropout
    assert len(load_onnx(alexnet).ops) == 21 - 7  # the seven Relus fold into 5 Convs and 2 Gemms


@pytest.mark.parametrize("stem", ["light_squeezenet", "light_inception_v1", "light_resnet50"])
def test_light_model_plans_at_min_scratchpad_replay(stem):
    for weights in (True, False):
        # inplace=False until the methods write in place (issue 16): M_R with pairs is below what they reach
        g = load_onnx(os.path.join(light_models_dir(), f"{stem}.onnx"), weights=weights, inplace=False)
        plan = cosma.compile(g, g.min_scratchpad)
        result = cosma.replay(plan.to_dict())
        assert result.offchip_bytes == plan.summary.offchip_bytes
        assert plan.summary.compulsory_bytes == g.compulsory_bytes


def test_light_model_through_the_onnx_round_trip_equals_the_file(tmp_path):
    path = os.path.join(light_models_dir(), "light_squeezenet.onnx")
    from_file = load_onnx(path)
    from_proto = load_onnx(onnx.load(path), name="light_squeezenet")
    assert from_file.tensors == from_proto.tensors and from_file.ops == from_proto.ops


def test_tensor_proto_dtypes_cover_sub_byte_types():
    m = model(
        [node("Identity", ["x"], ["i"]), node("Cast", ["i"], ["y"], "cast", to=F)],
        [value("x", [5], TensorProto.INT4)],
        [value("y", [5])],
        opset=21,
    )
    g = load_onnx(m)
    assert g.tensor("x").bytes == 3  # five 4-bit elements round up to three bytes


def test_zoo_weights_stripped_file_lowers_like_the_file_with_weights():
    # models/tiny_cnn.onnx is a torch export (opset 17) whose weights became graph inputs named in
    # stripped_weight_inputs; models/tiny_cnn_weights.onnx keeps them as initializers.
    models = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
    stripped = load_onnx(os.path.join(models, "tiny_cnn.onnx"))
    full = load_onnx(os.path.join(models, "tiny_cnn_weights.onnx"))
    assert stripped.tensors == full.tensors and stripped.ops == full.ops
    assert sum(t.kind == "weight" for t in stripped.tensors) == 10
    assert [t.name for t in stripped.tensors if t.kind == "input"] == ["input"]


@pytest.mark.parametrize(
    "module", [cosma.frontend.lower, cosma.frontend.fuse, onnx_builders], ids=["lower", "fuse", "onnx_builders"]
)
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
