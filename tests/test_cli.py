"""The command line through click's CliRunner: check's exit codes, compile on a tiny ONNX model,
sizes and budget names, and bad input (exit 2, one line on stderr, no traceback, no file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper, numpy_helper

from cosma.cli import main
from cosma.contract import replay
from cosma.frontend import load_onnx
from cosma.methods import DEFAULT_METHOD

WIDTH = 16  # activations are 1 x WIDTH float32 = 64 B, weights WIDTH x WIDTH = 1 KiB


def skip_model(batch: int | str = 1) -> onnx.ModelProto:
    """x -> MatMul w1 -> h1 -> MatMul w2 -> h2 -> MatMul w3 -> h3; y = h3 + h1 (a skip connection)."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((WIDTH, WIDTH)).astype(np.float32), f"w{i}") for i in (1, 2, 3)
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"], name="mm1"),
        helper.make_node("MatMul", ["h1", "w2"], ["h2"], name="mm2"),
        helper.make_node("MatMul", ["h2", "w3"], ["h3"], name="mm3"),
        helper.make_node("Add", ["h3", "h1"], ["y"], name="skip_add"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, WIDTH])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, WIDTH])
    m = helper.make_model(
        helper.make_graph(nodes, "skip", [x], [y], weights), opset_imports=[helper.make_opsetid("", 17)]
    )
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
@pytest.mark.parametrize(
    ("size", "scratchpad"), [("512KiB", 524_288), ("1MiB", 1_048_576), ("2MB", 2_000_000), ("4096", 4096)]
)
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


# -------------------------------------------------------------------------- exit status
# One status per outcome, the same for every command (cosma.errors.ExitCode): 0 done, 1 a proven
# negative answer, 2 bad input, 3 undecided, 70 internal error (with a crash log), 130 interrupted.
ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("inspect", "compile", "check", "methods", "budgets", "show", "report", "sweep", "alloc")
# capacity 11 = the most bytes live at once: no proof either way without searching, so a zero time
# limit leaves it undecided (the first greedy packing is 12 B high)
UNDECIDED_BUFFERS = """id,lower,upper,size
b0,3,6,2
b1,2,4,4
b2,0,2,1
b3,3,8,1
b4,6,7,2
b5,7,8,2
b6,7,8,5
b7,6,7,2
b8,3,4,4
b9,4,8,2
b10,6,7,4
b11,4,5,5
"""
#: The library function each command calls first after parsing: where a bug or Ctrl-C is simulated.
ENTRY_POINTS = {
    "inspect": "cosma.cli._load",  # the model loader, whichever frontend it calls
    "compile": "cosma.methods.compile",
    "check": "cosma.contract.replay",
    "methods": "cosma.methods.METHODS",
    "budgets": "cosma.budgets.budgets",
    "show": "cosma.viz.save_timeline",
    "report": "cosma.report.write_report",
    "sweep": "cosma.sweep.sweep",
    "alloc": "cosma.alloc.command.alloc_command",
}


class Raising:
    """Stands in for a function (called) or a registry (iterated): either way it raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise self.error

    def __iter__(self) -> None:
        raise self.error


@pytest.fixture
def plan(model: Path, tmp_path: Path) -> Path:
    return compiled(model, tmp_path, "-s", "M_R")


@pytest.fixture
def buffers(tmp_path: Path) -> Path:
    path = tmp_path / "buffers.csv"
    path.write_text((ROOT / "examples" / "input.12.csv").read_text())  # packs into 12 B, not into 11
    return path


def done_args(command: str, model: Path, plan: Path, buffers: Path, tmp_path: Path) -> list[str | Path]:
    """A command line of ``command`` that succeeds."""
    return {
        "inspect": ["inspect", model],
        "compile": ["compile", model, "-s", "1MiB", "-o", tmp_path / "out.json"],
        "check": ["check", plan],
        "methods": ["methods"],
        "budgets": ["budgets", model, "--time-limit", "5"],
        "show": ["show", plan, "-o", tmp_path / "timeline.png"],
        "report": ["report", plan, "-o", tmp_path / "report.html"],
        "sweep": [
            "sweep",
            model,
            "--points",
            "2",
            "-j",
            "1",
            "--method",
            "default+belady",
            "-o",
            tmp_path / "sweep.csv",
            "-q",
        ],
        "alloc": ["alloc", buffers, "-c", "12", "-o", tmp_path / "packed.csv"],
    }[command]


def files(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.mark.parametrize("command", COMMANDS)
def test_exit_0_when_done(command: str, model: Path, plan: Path, buffers: Path, tmp_path: Path) -> None:
    result = cosma(*done_args(command, model, plan, buffers, tmp_path))
    assert result.exit_code == 0, result.output
    assert "error" not in result.stderr and "interrupted" not in result.output


def test_exit_1_when_check_finds_an_invalid_plan(plan: Path) -> None:
    data = json.loads(plan.read_text())
    data["steps"].pop(0)
    plan.write_text(json.dumps(data))
    result = cosma("check", plan)
    assert result.exit_code == 1 and "INVALID" in result.stdout


def test_exit_1_when_alloc_proves_the_buffers_do_not_fit(buffers: Path, tmp_path: Path) -> None:
    result = cosma("alloc", buffers, "-c", "11", "-o", tmp_path / "packed.csv")
    assert result.exit_code == 1 and "INFEASIBLE" in result.stdout
    assert not (tmp_path / "packed.csv").exists()


def test_exit_1_when_compile_proves_no_plan_without_eviction(model: Path, tmp_path: Path) -> None:
    # M_R of the skip model is 64 B below its least peak: min-peak proves every plan there evicts
    result = cosma(
        "compile", model, "-s", "M_R", "--method", "min-peak", "--time-limit", "30", "-o", tmp_path / "out.json"
    )
    assert result.exit_code == 1, result.output
    assert "proven" in result.stderr and len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_exit_2_on_bad_input(command: str, model: Path, plan: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("id,lower,upper,size\nq,5,1,3\n")
    args: list[str | Path] = {
        "inspect": ["inspect", tmp_path / "nope.onnx"],
        "compile": ["compile", model, "-s", "lots"],
        "check": ["check", junk],
        "methods": ["methods", "--frobnicate"],
        "budgets": ["budgets", tmp_path / "nope.onnx"],
        "show": ["show", junk],
        "report": ["report", tmp_path / "nope.json"],
        "sweep": ["sweep", "-o", tmp_path / "sweep.csv"],
        "alloc": ["alloc", bad_csv],
    }[command]
    before = files(tmp_path)
    result = cosma(*args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output, result.stderr
    assert files(tmp_path) == before


OUTPUTS = {  # a command line writing OUT, OUT's suffix, and the words its refusal names
    "compile": (["compile", "{model}", "-s", "1MiB", "-o", "{out}"], ".json", "the plan"),
    "show": (["show", "{plan}", "-o", "{out}"], ".png", "the picture"),
    "report": (["report", "{plan}", "-o", "{out}"], ".html", "the page"),
    "sweep -o": (
        [
            "sweep",
            "{model}",
            "--points",
            "1",
            "-j",
            "1",
            "--method",
            "default+belady",
            "-q",
            "-o",
            "{out}",
            "--plot",
            "{tmp}/sweep.png",
        ],
        ".csv",
        "the CSV",
    ),
    "sweep --plot": (
        [
            "sweep",
            "{model}",
            "--points",
            "1",
            "-j",
            "1",
            "--method",
            "default+belady",
            "-q",
            "-o",
            "{tmp}/sweep.csv",
            "--plot",
            "{out}",
        ],
        ".svg",
        "the plot",
    ),
    "alloc": (["alloc", "{buffers}", "-c", "12", "-o", "{out}"], ".csv", "the packing"),
}


@pytest.mark.parametrize("checked_first", [True, False], ids=["before the work", "when writing"])
@pytest.mark.parametrize("case", list(OUTPUTS))
def test_exit_2_on_an_unwritable_output_names_it_in_one_line(
    case: str,
    checked_first: bool,
    model: Path,
    plan: Path,
    buffers: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not checked_first:  # skip the early check: the write itself fails, on the temporary file beside OUT
        monkeypatch.setattr("cosma.cli._check_writable", lambda *args: None)
    template, suffix, what = OUTPUTS[case]
    out = tmp_path / "no_such_dir" / f"out{suffix}"
    fields = {"model": model, "plan": plan, "buffers": buffers, "out": out, "tmp": tmp_path}
    before = files(tmp_path)
    result = cosma(*(a.format(**fields) for a in template))
    assert_one_line_error(result, f"cannot write {what} to {out}", "--plot" if "plot" in case else "--output")
    assert ".tmp" not in result.stderr
    written_before_the_failure = {tmp_path / "sweep.csv"} if case == "sweep --plot" and not checked_first else set()
    assert files(tmp_path) == before | written_before_the_failure


def test_exit_3_when_compile_finds_no_plan_in_time(model: Path, tmp_path: Path) -> None:
    # the same question as the proven case above, with no time to search: nothing found, nothing proven
    result = cosma(
        "compile", model, "-s", "M_R", "--method", "min-peak", "--time-limit", "0", "-o", tmp_path / "out.json"
    )
    assert result.exit_code == 3, result.output
    assert "no plan without eviction found" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out.json").exists()


def test_exit_3_when_alloc_neither_packs_nor_rules_out(tmp_path: Path) -> None:
    path = tmp_path / "undecided.csv"
    path.write_text(UNDECIDED_BUFFERS)
    result = cosma("alloc", path, "-c", "11", "--time-limit", "0", "-o", tmp_path / "packed.csv")
    assert result.exit_code == 3, result.output
    assert "UNKNOWN" in result.stdout and not (tmp_path / "packed.csv").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_exit_70_on_a_bug_names_it_and_logs_the_traceback(
    command: str, model: Path, plan: Path, buffers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(crash_dir))
    args = done_args(command, model, plan, buffers, tmp_path)
    monkeypatch.setattr(ENTRY_POINTS[command], Raising(RuntimeError("boom\nsecond line")))
    result = cosma(*args)
    assert result.exit_code == 70, result.output
    [log] = crash_dir.iterdir()
    assert result.stderr.splitlines() == [
        f"internal error: RuntimeError: boom (a bug in cosma; traceback in {log}, please report it)"
    ]
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom\nsecond line" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_exit_130_on_ctrl_c(
    command: str, model: Path, plan: Path, buffers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = done_args(command, model, plan, buffers, tmp_path)
    monkeypatch.setattr(ENTRY_POINTS[command], Raising(KeyboardInterrupt()))
    before = files(tmp_path)
    result = cosma(*args)
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines() == ["interrupted before a result was written"]
    assert files(tmp_path) == before


def test_compile_interrupted_in_the_search_writes_the_best_plan_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C as the exact search starts: the search stops with the best baseline, which is written
    monkeypatch.setattr("cosma.methods.exact.run_cpsat_phases", Raising(KeyboardInterrupt()))
    out = tmp_path / "plan.json"
    result = cosma("compile", ROOT / "models" / "tiny_cnn.onnx", "-s", "M_R", "-o", out)
    assert result.exit_code == 130, result.output
    assert ", interrupted, " in result.stdout and result.stdout.rstrip().endswith(f"-> {out}")
    data = json.loads(out.read_text())
    assert data["summary"]["status"] == "feasible" and data["summary"]["details"]["interrupted"] is True
    replay(data)


def test_a_closed_output_is_an_interruption_not_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ENTRY_POINTS["methods"], Raising(BrokenPipeError()))
    result = cosma("methods")
    assert result.exit_code == 130 and result.stderr.splitlines() == ["interrupted: the output was closed"]


def test_a_real_process_exits_70_and_writes_its_crash_log(plan: Path, tmp_path: Path) -> None:
    script = (
        "import cosma.contract, sys\n"
        "def boom(data): raise RuntimeError('boom')\n"
        "cosma.contract.replay = boom\n"
        "from cosma.cli import main\n"
        "sys.argv = ['cosma', 'check', sys.argv[1]]\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(plan)],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 70, result.stderr
    log = tmp_path / f"cosma-crash-{result.stderr.split('cosma-crash-')[1].split('.log')[0]}.log"
    assert result.stderr.splitlines() == [
        f"internal error: RuntimeError: boom (a bug in cosma; traceback in {log}, please report it)"
    ]
    text = log.read_text()
    assert "command: cosma check" in text and "in boom" in text and "RuntimeError: boom" in text


def test_exit_statuses_are_documented_in_help_and_readme() -> None:
    from cosma.errors import ExitCode

    help_text = cosma("--help").stdout
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    for code in ExitCode:
        assert f"{code.value:>3}  {code.meaning}" in help_text
        assert f"| {code.value} |" in section, code
