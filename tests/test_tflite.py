"""The TFLite front end: MLPerf Tiny's real files and flatbuffers written by models/corpus/tflite_writer.py."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cosma
from cosma.cli import main
from cosma.errors import ModelError
from cosma.frontend import load_model

ROOT = Path(__file__).resolve().parents[1]
MLPERF = ROOT.parent / "shared" / "models" / "tflite"
CHECKPLAN = ROOT.parent / "shared" / "tools" / "checkplan.py"


def _writer():
    spec = importlib.util.spec_from_file_location("tflite_writer", ROOT / "models" / "corpus" / "tflite_writer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tflite_writer"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


W = _writer()


def _write(tmp_path: Path, net, name: str | None = None, **kwargs) -> Path:
    path = tmp_path / (name or f"{net.name}.tflite")
    path.write_bytes(net.to_bytes(**kwargs))
    return path


def _mlperf() -> list[Path]:
    return sorted(MLPERF.glob("*.tflite"))


@pytest.mark.skipif(not _mlperf(), reason="../shared/models/tflite is not beside the checkout")
@pytest.mark.parametrize("path", _mlperf(), ids=lambda p: p.stem)
def test_mlperf_tiny_models_load_with_their_real_sizes(path: Path) -> None:
    g = cosma.load_tflite(path)
    assert g.metadata["format"] == "tflite"
    assert not any(o.op_type == "RESHAPE" for o in g.ops)  # views are aliases, not operators
    kinds = {t.kind for t in g.tensors}
    assert kinds == {"input", "weight", "activation", "output"}
    for t in g.tensors:
        size = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4}[t.dtype]
        elements = 1
        for d in t.shape:
            elements *= d
        assert t.bytes == elements * size
    # Every operator of these models but the classifier head carries the activation TFLite fused in.
    assert any(o.fused == ("RELU",) for o in g.ops)
    assert load_model(path) == g


@pytest.mark.skipif(not _mlperf(), reason="../shared/models/tflite is not beside the checkout")
def test_int8_and_float_variants_differ_by_element_size() -> None:
    int8 = cosma.load_tflite(MLPERF / "kws_ref_model.tflite")
    fp32 = cosma.load_tflite(MLPERF / "kws_ref_model_float32.tflite")
    assert [o.op_type for o in int8.ops] == [o.op_type for o in fp32.ops]
    act8 = int8.bytes_of_kind("activation", "output", "input")
    act32 = fp32.bytes_of_kind("activation", "output", "input")
    assert act32 == 4 * act8
    assert (
        cosma.load_tflite(MLPERF / "kws_ref_model_float32.tflite", element_bytes=1).bytes_of_kind(
            "activation", "output", "input"
        )
        == act8
    )


@pytest.mark.skipif(not CHECKPLAN.exists() or not _mlperf(), reason="../shared is not beside the checkout")
def test_cli_compiles_a_tflite_model_to_a_valid_plan(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    result = CliRunner().invoke(
        main,
        ["compile", str(MLPERF / "vww_96_int8.tflite"), "-s", "M_R", "--method", "default+belady", "-o", str(plan)],
    )
    assert result.exit_code == 0, result.output
    checked = subprocess.run([sys.executable, str(CHECKPLAN), str(plan)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(plan.read_text())["tensors"]


def test_generated_model_matches_its_architecture(tmp_path: Path) -> None:
    path = _write(tmp_path, W.ds_cnn("ds_cnn_s", 64, 4))
    g = cosma.load_tflite(path)
    assert [o.op_type for o in g.ops] == ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 4 + [
        "AVERAGE_POOL_2D",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    assert g.tensor("input").bytes == 49 * 10 and g.tensor("input").dtype == "int8"
    weights = [t for t in g.tensors if t.kind == "weight"]
    assert g.tensor(g.ops[0].inputs[1]).shape == (64, 3, 3, 1)
    assert {t.dtype for t in weights} == {"int8", "int32"}  # int32 biases, as quantized kernels take
    assert cosma.load_tflite(path, weights=False).bytes_of_kind("weight") == 0
    assert cosma.load_tflite(path, element_bytes=2).tensor("input").bytes == 2 * 49 * 10


def test_separate_activation_fuses_like_an_onnx_epilogue(tmp_path: Path) -> None:
    net = W.TfliteNet("sep", "FLOAT32")
    x = net.input("x", (1, 8, 8, 4))
    y = net.conv(x, 4, 3, 1, None)
    z = net.unary("HARD_SWISH", y)
    net.output(net.unary("RELU6", net.conv(z, 4, 1, 1, "RELU")))
    path = _write(tmp_path, net)
    fused = cosma.load_tflite(path)
    assert [(o.op_type, o.fused) for o in fused.ops] == [("CONV_2D", ("HARD_SWISH",)), ("CONV_2D", ("RELU", "RELU6"))]
    plain = cosma.load_tflite(path, fuse=False)
    assert [o.op_type for o in plain.ops] == ["CONV_2D", "HARD_SWISH", "CONV_2D", "RELU6"]


def test_constant_only_operators_fold_into_weights(tmp_path: Path) -> None:
    # float16 weights dequantized at run time: the converter's fp16 models look like this.
    net = W.TfliteNet("fp16", "FLOAT32")
    x = net.input("x", (1, 16))
    w = net.dequantize(net.weight((8, 16), "FLOAT16"))
    net.output(net.op("FULLY_CONNECTED", [x, w], [(1, 8)])[0])
    g = cosma.load_tflite(_write(tmp_path, net))
    assert [o.op_type for o in g.ops] == ["FULLY_CONNECTED"]
    assert g.tensor(g.ops[0].inputs[1]).kind == "weight" and g.tensor(g.ops[0].inputs[1]).bytes == 8 * 16 * 4
    assert g.metadata["folded_nodes"] == "1"


def test_view_to_output_and_custom_operator_and_real_buffer(tmp_path: Path) -> None:
    net = W.TfliteNet("views", "INT8")
    x = net.input("x", (1, 4, 4, 2))
    data = net.tensor((2,), "INT8", "scale", data=b"\x01\x02")
    y = net.op("MyCustomOp", [x, data], [(1, 4, 4, 2)], custom=True)[0]
    net.output(net.reshape(y, (1, 32)))
    g = cosma.load_tflite(_write(tmp_path, net))
    assert [o.op_type for o in g.ops] == ["MyCustomOp"]
    assert g.tensor("scale").kind == "weight" and g.tensor("scale").bytes == 2
    assert g.tensor(g.ops[0].outputs[0]).kind == "output"  # the reshape's output aliases it


def test_dispatch_by_identifier_whatever_the_suffix(tmp_path: Path) -> None:
    path = _write(tmp_path, W.resnet_cifar("resnet8"), name="resnet8.bin")
    assert load_model(path).metadata["format"] == "tflite"
    assert load_model(ROOT / "models" / "tiny_cnn.onnx").metadata.get("format") != "tflite"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"garbage bytes, not a model", "not a TFLite model"),
        (b"\x00\x00\x00\x00TFL3\xff\xff", "no subgraph"),
        (W.ds_cnn("cut", 8, 1).to_bytes()[:400], "corrupt or truncated TFLite"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        cosma.load_tflite(path)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_control_flow_and_shape_overrides_are_refused(tmp_path: Path) -> None:
    net = W.TfliteNet("loop", "FLOAT32")
    x = net.input("x", (1, 4))
    net.output(net.op("WHILE", [x], [(1, 4)])[0])
    with pytest.raises(ModelError, match=r"'WHILE_0' \(WHILE\) is control flow"):
        cosma.load_tflite(_write(tmp_path, net, extra_subgraphs=2))
    path = _write(tmp_path, W.autoencoder("ae", 64, 16, 4, 1))
    assert cosma.load_tflite(path, input_shapes={"input": (1, 64)}).tensor("input").shape == (1, 64)
    with pytest.raises(ModelError, match="fixed at conversion"):
        cosma.load_tflite(path, input_shapes={"input": (2, 64)})
    with pytest.raises(ModelError, match="has no input 'nope'"):
        cosma.load_tflite(path, input_shapes={"nope": (1, 64)})
