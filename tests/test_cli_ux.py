"""Issue 18, the command line: each test is one item of the issue's list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosma.cli import main
from cosma.progress import LiveProgress, describe

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "models" / "tiny_cnn.onnx")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    code, _, _ = run("compile", TINY, "-s", "M_R", "-q", "-o", str(path))
    assert code == 0
    return path


def test_import_of_the_cli_loads_no_solver_rich_onnx_or_matplotlib() -> None:
    heavy = "('ortools', 'highspy', 'onnx', 'matplotlib', 'rich', 'numpy')"
    probe = f"import sys, cosma.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_public_api_is_the_same_after_lazy_loading() -> None:
    import cosma

    for name in cosma.__all__:
        assert getattr(cosma, name) is not None
    import cosma.execute

    assert callable(cosma.execute) and not isinstance(cosma.execute, type(sys))


def test_every_command_has_an_example_in_its_help() -> None:
    for name in main.commands:
        code, out, _ = run(name, "--help")
        assert code == 0 and "Examples:" in out and f"cosma {name}" in out, name


def test_compile_json_is_pure_json_on_stdout_and_no_o_says_where_the_plan_went() -> None:
    code, out, err = run("compile", TINY, "-s", "M_R", "--json")
    assert code == 0
    record = json.loads(out)  # nothing else on stdout
    assert record["plan"] is None and record["summary"]["extra_bytes"] == record["summary"]["bound"]
    assert "not written" in err and "-o" in err


def test_global_quiet_silences_the_note_and_verbose_lists_the_phases() -> None:
    _, _, err = run("-q", "compile", TINY, "-s", "M_R")
    assert err == ""
    _, _, err = run("-v", "compile", TINY, "-s", "M_R")
    assert "phase warm start" in err


def test_inspect_json_lists_every_operator_and_piped_tables_keep_long_names() -> None:
    code, out, _ = run("inspect", TINY, "--json")
    record = json.loads(out)
    assert code == 0 and record["ops"] == len(record["operators"]) == 8
    _, out, _ = run("inspect", TINY)  # CliRunner's stdout is not a terminal: no cut at 80 columns
    assert all(o["name"] in out for o in record["operators"])


def test_check_json_reports_an_invalid_plan_as_json(plan_file: Path, tmp_path: Path) -> None:
    data = json.loads(plan_file.read_text())
    data["summary"]["offchip_bytes"] += 1
    data["summary"]["extra_bytes"] += 1
    bad = tmp_path / "lie.json"
    bad.write_text(json.dumps(data))
    code, out, _ = run("check", "--json", str(bad))
    assert code == 1 and json.loads(out)["valid"] is False


@pytest.mark.parametrize("change", [("status", 3), ("offchip_bytes", "x"), ("extra_bytes", "+1")])
@pytest.mark.parametrize("command", ["show", "report"])
def test_show_and_report_refuse_a_plan_the_replay_rejects(
    plan_file: Path, tmp_path: Path, command: str, change: tuple[str, object]
) -> None:
    data = json.loads(plan_file.read_text())
    key, value = change
    if value == "+1":
        data["summary"]["extra_bytes"] += 1
        data["summary"]["offchip_bytes"] += 1
    else:
        data["summary"][key] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    code, _, err = run(command, str(bad), "-o", str(tmp_path / ("x.png" if command == "show" else "x.html")))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "not a valid plan" in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.html").exists()


def test_show_text_draws_a_memory_map_line_per_operator(plan_file: Path) -> None:
    code, out, _ = run("show", str(plan_file), "--text", "--width", "40")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("scratchpad 53824 B")
    bars = [line for line in lines if "|" in line]
    assert len(bars) == 8 and all(len(line.split("|")[1]) == 40 for line in bars)


def test_sweep_refuses_a_plot_name_before_computing(tmp_path: Path) -> None:
    code, _, err = run("sweep", TINY, "--points", "1", "-o", str(tmp_path / "s.csv"), "--plot", str(tmp_path / "x.jpg"))
    assert code == 2 and "--plot" in err and not (tmp_path / "s.csv").exists()


def test_sweep_writes_every_finished_point_to_the_csv(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    code, _, _ = run("sweep", TINY, "--points", "2", "-j", "1", "--method", "default+belady", "-o", str(csv))
    assert code == 0 and len(csv.read_text().splitlines()) == 3


def test_sweep_ctrl_c_keeps_the_finished_points_and_exits_130(tmp_path: Path, monkeypatch) -> None:
    import cosma.sweep as sweep_module

    real = sweep_module.sweep

    def interrupted_after_one(*args, progress=None, on_start=None, **kwargs):  # Ctrl-C after the first point
        def first_then_stop(point):
            progress(point)
            raise KeyboardInterrupt

        return real(*args, progress=first_then_stop, on_start=on_start, **kwargs)

    monkeypatch.setattr(sweep_module, "sweep", interrupted_after_one)
    csv = tmp_path / "s.csv"
    code, _, err = run("sweep", TINY, "--points", "3", "-j", "1", "--method", "default+belady", "-o", str(csv))
    assert code == 130 and "1 finished points kept" in err
    assert len(csv.read_text().splitlines()) == 2


def test_ray_address_without_the_client_is_one_line(monkeypatch) -> None:
    pytest.importorskip("ray")
    code, _, err = run("sweep", TINY, "--points", "1", "--ray=ray://127.0.0.1:1")
    assert code == 2 and err.startswith("error: --ray ray://127.0.0.1:1") and len(err.strip().splitlines()) == 1


def test_unwritable_output_is_refused_before_the_work(plan_file: Path) -> None:
    code, _, err = run("show", str(plan_file), "-o", "/proc/x.png")
    assert code == 2 and "/proc/x.png" in err and ".tmp" not in err


def test_live_line_keeps_the_best_bound_and_says_no_bound() -> None:
    from rich.console import Console

    line = LiveProgress("t", Console(), limit=60)
    line.update(incumbent=1000, bound=500)
    line.update(bound=100)  # a later phase's own weaker bound
    line.update(incumbent=2000)
    assert (line.incumbent, line.bound) == (1000, 500)
    assert describe(1000, None, 60, 1.0) == "incumbent 1000 B  no bound  gap n/a  1.0 / 60 s"
