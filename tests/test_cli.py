"""The command line through click's CliRunner: check's exit codes, compile on a tiny ONNX model,
sizes and budget names, and bad input (exit 2, one line on stderr, no traceback, no file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper, numpy_helper

from cosma.check import replay
from cosma.cli import main
from cosma.frontend import load_onnx
from cosma.methods import DEFAULT_METHOD

WIDTH = 16  # activations are 1 x WIDTH float32 = 64 B, weights WIDTH x WIDTH = 1 KiB


def skip_model(batch: int | str = 1) -> onnx.ModelProto:
    """x -> MatMul w1 -> h1 -> MatMul w2 -> h2 -> MatMul w3 -> h3; y = h3 + h1 (a skip connection)."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((WIDTH, WIDTH)).astype(np.float32), f"w{i}")
               for i in (1, 2, 3)]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"], name="mm1"),
        helper.make_node("MatMul", ["h1", "w2"], ["h2"], name="mm2"),
        helper.make_node("MatMul", ["h2", "w3"], ["h3"], name="mm3"),
        helper.make_node("Add", ["h3", "h1"], ["y"], name="skip_add"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, WIDTH])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, WIDTH])
    m = helper.make_model(helper.make_graph(nodes, "skip", [x], [y], weights),
                          opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "skip.onnx"
    onnx.save(skip_model(), path)
    return path


@pytest.fixture
def symbolic_model(tmp_path: Path) -> Path:
    path = tmp_path / "symbolic.onnx"
    onnx.save(skip_model("N"), path)
    return path


def cosma(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result: Result, *words: str) -> None:
    """Exit 2, exactly one line on stderr naming the problem, and no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in result.output


# -------------------------------------------------------------------------------- check
def compiled(model: Path, tmp_path: Path, *options: str) -> Path:
    out = tmp_path / "plan.json"
    result = cosma("compile", model, "-o", out, *options)
    assert result.exit_code == 0, result.output
    return out


def test_check_valid_plan(model: Path, tmp_path: Path) -> None:
    plan = compiled(model, tmp_path, "-s", "M_R")
    result = cosma("check", plan)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{plan}: valid: ") and result.stderr == ""
    result = cosma("check", "--json", plan)
    figures = json.loads(result.stdout)
    assert figures["valid"] is True
    assert figures["extra_bytes"] == figures["offchip_bytes"] - figures["compulsory_bytes"]


def test_check_invalid_plan_names_the_first_broken_rule(model: Path, tmp_path: Path) -> None:
    plan = compiled(model, tmp_path, "-s", "1MiB")
    data = json.loads(plan.read_text())
    data["summary"]["extra_bytes"] += 1
    plan.write_text(json.dumps(data))
    result = cosma("check", plan)
    assert result.exit_code == 1
    assert "INVALID: summary extra_bytes is" in result.stdout
    data["summary"]["extra_bytes"] -= 1
    first = data["steps"].pop(0)  # a load: the first run now lacks an input
    assert first["action"] == "load"
    plan.write_text(json.dumps(data))
    result = cosma("check", plan)
    assert result.exit_code == 1
    assert "INVALID: step " in result.stdout and "inputs not resident" in result.stdout


def test_check_unreadable(tmp_path: Path) -> None:
    (tmp_path / "junk.json").write_text("{not json")
    for path in (tmp_path / "junk.json", tmp_path / "missing.json", tmp_path):
        result = cosma("check", path)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"{path}: unreadable: ") and len(result.stderr.splitlines()) == 1


def test_check_reports_the_worst_of_several(model: Path, tmp_path: Path) -> None:
    good = compiled(model, tmp_path, "-s", "1MiB")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(good.read_text()), "format": "cosma.plan/0"}))
    assert cosma("check", good, good).exit_code == 0
    assert cosma("check", good, bad).exit_code == 1
    assert cosma("check", bad, tmp_path / "missing.json", good).exit_code == 2


# ------------------------------------------------------------------------------ compile
@pytest.mark.parametrize(("size", "scratchpad"), [("512KiB", 524_288), ("1MiB", 1_048_576), ("2MB", 2_000_000),
                                                  ("4096", 4096)])
def test_compile_sizes(model: Path, tmp_path: Path, size: str, scratchpad: int) -> None:
    out = tmp_path / "plan.json"
    result = cosma("compile", model, "--scratchpad", size, "--output", out)
    assert result.exit_code == 0, result.output
    assert f"scratchpad {scratchpad} B" in result.stdout and f"-> {out}" in result.stdout
    data = json.loads(out.read_text())
    assert data["scratchpad_bytes"] == scratchpad
    r = replay(data)
    assert r.extra_bytes == 0  # everything fits at once
    assert data["summary"]["status"] == "optimal"


def test_compile_at_m_r(model: Path, tmp_path: Path) -> None:
    graph = load_onnx(model)
    out = compiled(model, tmp_path, "-s", "M_R")
    data = json.loads(out.read_text())
    assert data["scratchpad_bytes"] == graph.min_scratchpad
    r = replay(data)
    assert r.peak_resident_bytes <= graph.min_scratchpad
    assert r.compulsory_bytes == graph.compulsory_bytes
    assert len(data["ops"]) == len(graph.ops)


@pytest.mark.parametrize(
    "options",
    [
        ("--method", "default+greedy"),
        ("--method", "auto", "--allocator", "best-fit"),
        ("--alignment", "64"),
        ("--no-weights",),
        ("--no-fuse", "--element-bytes", "1"),
    ],
)
def test_compile_options_give_valid_plans(model: Path, tmp_path: Path, options: tuple[str, ...]) -> None:
    out = compiled(model, tmp_path, "-s", "M_R", *options)
    data = json.loads(out.read_text())
    replay(data)
    if "--alignment" in options:
        assert data["alignment"] == 64
        assert all(s.get("offset", 0) % 64 == 0 for s in data["steps"])
    if "--no-weights" in options:
        assert all(t["kind"] != "weight" for t in data["tensors"])
    if "--method" in options:
        assert data["summary"]["method"] == {"auto": DEFAULT_METHOD}.get(options[1], options[1])


def test_compile_symbolic_input_with_input_shape(symbolic_model: Path, tmp_path: Path) -> None:
    out = compiled(symbolic_model, tmp_path, "-s", "1MiB", "--input-shape", f"x=2x{WIDTH}")
    data = json.loads(out.read_text())
    replay(data)
    assert {t["name"]: t["bytes"] for t in data["tensors"]}["x"] == 2 * WIDTH * 4


def test_compile_without_output_writes_nothing(model: Path, tmp_path: Path) -> None:
    result = cosma("compile", model, "-s", "1MiB")
    assert result.exit_code == 0 and "->" not in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["skip.onnx"]


def test_inspect_and_methods(model: Path) -> None:
    graph = load_onnx(model)
    result = cosma("inspect", model)
    assert result.exit_code == 0, result.output
    assert f"{graph.min_scratchpad} B" in result.stdout and "M_R" in result.stdout
    result = cosma("methods")
    assert result.exit_code == 0 and "default+belady" in result.stdout.split()


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing file", ("nope.onnx", "no such file")),
        ("not ONNX", ("junk.onnx", "not an ONNX model")),
        ("unknown dims", ("unknown", "--input-shape")),
        ("budget too small", ("below M_R", "--scratchpad")),
        ("zero budget", ("--scratchpad 0",)),
        ("unreadable size", ("cannot read size 'lots'",)),
        ("unknown budget name", ("'M_Q'",)),
        ("unknown option", ("--frobnicate",)),
        ("unknown method", ("unknown method 'magic'", "default+belady")),
        ("bad --input-shape", ("--input-shape", "x=2xtwo", "NAME=")),
        ("--input-shape of no input", ("--input-shape", "has no input 'nope'")),
        ("unknown allocator", ("--allocator", "next-fit")),
        ("zero alignment", ("--alignment",)),
        ("no scratchpad", ("--scratchpad",)),
        ("unwritable output", ("cannot write the plan", "no_such_dir")),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    case: str, words: tuple[str, ...], model: Path, symbolic_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plan.json"
    junk = tmp_path / "junk.onnx"
    junk.write_text("this is not a protobuf")
    args: list[str | Path] = {
        "missing file": [tmp_path / "nope.onnx", "-s", "1MiB"],
        "not ONNX": [junk, "-s", "1MiB"],
        "unknown dims": [symbolic_model, "-s", "1MiB"],
        "budget too small": [model, "-s", "100"],
        "zero budget": [model, "-s", "0"],
        "unreadable size": [model, "-s", "lots"],
        "unknown budget name": [model, "-s", "M_Q"],
        "unknown option": [model, "-s", "1MiB", "--frobnicate"],
        "unknown method": [model, "-s", "1MiB", "--method", "magic"],
        "bad --input-shape": [symbolic_model, "-s", "1MiB", "--input-shape", "x=2xtwo"],
        "--input-shape of no input": [model, "-s", "1MiB", "--input-shape", "nope=1x2"],
        "unknown allocator": [model, "-s", "1MiB", "--allocator", "next-fit"],
        "zero alignment": [model, "-s", "1MiB", "--alignment", "0"],
        "no scratchpad": [model],
        "unwritable output": [model, "-s", "1MiB", "-o", tmp_path / "no_such_dir" / "plan.json"],
    }[case]
    if case != "unwritable output":
        args += ["-o", out]
    result = cosma("compile", *args)
    assert_one_line_error(result, *words)
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["junk.onnx", "skip.onnx", "symbolic.onnx"])


def test_unknown_command_is_one_line() -> None:
    assert_one_line_error(cosma("frobnicate"), "No such command 'frobnicate'")


def test_inspect_bad_input_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(cosma("inspect", tmp_path / "nope.onnx"), "no such file")
