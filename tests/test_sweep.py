"""Budget sweeps: the points, the three backends (serial, process pool, Ray), the CSV, the plot, the CLI."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from graphs import FIXTURES
from onnx_builders import const, model, node, value

from cosma.budgets import resolve_budget
from cosma.cli import main
from cosma.errors import OptionError
from cosma.frontend import load_onnx
from cosma.methods import compile
from cosma.runner import run_tasks
from cosma.sweep import BELOW_M_R, LoadOptions, SweepPoint, budget_points, sweep, sweep_figure

METHODS = ("default+belady", "default+greedy")


def residual_mlp(blocks: int, width: int, name: str) -> onnx.ModelProto:
    """x[16, W] -> blocks of MatMul-Relu-MatMul plus a skip Add -> Relu -> y: the skips force spills at M_R."""
    nodes, inits, h = [], [], "x"
    for i in range(blocks):
        inits += [
            const(f"w{i}a", np.zeros((width, width), np.float32)),
            const(f"w{i}b", np.zeros((width, width), np.float32)),
        ]
        nodes += [
            node("MatMul", [h, f"w{i}a"], [f"a{i}"], f"mm{i}a"),
            node("Relu", [f"a{i}"], [f"r{i}"], f"relu{i}"),
            node("MatMul", [f"r{i}", f"w{i}b"], [f"b{i}"], f"mm{i}b"),
            node("Add", [f"b{i}", h], [f"h{i}"], f"add{i}"),
        ]
        h = f"h{i}"
    nodes.append(node("Relu", [h], ["y"], "out"))
    return model(nodes, [value("x", [16, width])], [value("y", [16, width])], inits, name=name)


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("models")
    paths = []
    for blocks, width in ((4, 16), (3, 24)):
        path = folder / f"mlp{blocks}x{width}.onnx"
        onnx.save(residual_mlp(blocks, width, path.stem), path)
        paths.append(path)
    return paths


def outcomes(points: tuple[SweepPoint, ...]) -> list[tuple]:
    return [p.outcome() for p in points]


# ------------------------------------------------------------------------------ points
def test_budget_points_are_even_whole_and_distinct():
    assert budget_points(100, 200, 5) == [100, 125, 150, 175, 200]
    assert budget_points(10, 13, 3) == [10, 12, 13]  # 11.5 rounds to even
    assert budget_points(7, 7, 4) == [7]
    assert budget_points(3, 9, 1) == [3]
    assert budget_points(0, 3, 10) == [0, 1, 2, 3]
    with pytest.raises(OptionError):
        budget_points(1, 2, 0)


def test_each_point_is_the_plan_compile_makes():
    diamond = FIXTURES["diamond"]().graph
    skip = FIXTURES["skip"]().graph
    result = sweep([diamond, skip], start="M_R", stop="M_P", points=4, methods=METHODS)
    assert [r.model for r in result.ranges] == ["diamond", "skip"]
    expected = []
    for graph in (diamond, skip):
        lo, hi = resolve_budget(graph, "M_R"), resolve_budget(graph, "M_P")
        for method in METHODS:
            for size in budget_points(lo, hi, 4):
                s = compile(graph, size, method=method).summary
                expected.append((graph.name, method, size, s.status, s.extra_bytes, s.compulsory_bytes))
    got = [(p.model, p.method, p.scratchpad_bytes, p.status, p.extra_bytes, p.compulsory_bytes) for p in result.points]
    assert got == expected
    # at M_P some order runs with no eviction at all, and the diamond's fixture says so by hand
    assert FIXTURES["diamond"]().min_peak == result.ranges[0].stop_bytes


def test_points_below_m_r_are_kept_without_traffic():
    diamond = FIXTURES["diamond"]().graph  # M_R = 28
    result = sweep([diamond], start="20", stop="30", points=3, methods=["default+belady"])
    assert [(p.scratchpad_bytes, p.status) for p in result.points][:1] == [(20, BELOW_M_R)]
    first = result.points[0]
    assert first.extra_bytes is None and "needs 28 B" in first.note
    assert result.points[-1].extra_bytes is not None


def test_bad_requests_name_the_problem(tmp_path):
    g = FIXTURES["chain"]().graph
    with pytest.raises(OptionError, match="unknown method"):
        sweep([g], methods=["no-such-method"])
    with pytest.raises(OptionError, match="swap them"):
        sweep([g], start="64", stop="40")
    with pytest.raises(OptionError, match="cannot read model"):
        sweep([tmp_path / "missing.onnx"])
    with pytest.raises(OptionError, match="backend"):
        sweep([g], backend="threads")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ backends
def test_process_pool_matches_serial_on_onnx_files(onnx_models):
    kwargs = dict(start="M_R", stop="M_P", points=5, methods=METHODS)
    serial = sweep(onnx_models, backend="serial", **kwargs)
    pooled = sweep(onnx_models, backend="process", jobs=2, **kwargs)
    assert outcomes(pooled.points) == outcomes(serial.points)
    assert [p.model for p in serial.points[:1]] == ["mlp4x16"]
    assert len(serial.points) == 2 * 2 * 5
    assert any(p.extra_bytes for p in serial.points)  # the curves are not flat zero
    g = load_onnx(onnx_models[0])
    assert serial.ranges[0].start_bytes == g.min_scratchpad


def test_ray_matches_the_process_pool(onnx_models):
    """A small sweep as Ray tasks on a local Ray instance gives the process pool's points, in its order."""
    pytest.importorskip("ray", reason="Ray is in the test extra: pip install -e '.[test]'")
    models = [*onnx_models, FIXTURES["diamond"]().graph]  # files and an in-memory graph
    kwargs = dict(start="M_R", stop="M_P", points=4, methods=METHODS)
    pooled = sweep(models, backend="process", jobs=2, **kwargs)
    seen: list[SweepPoint] = []
    on_ray = sweep(models, backend="ray", jobs=2, progress=seen.append, **kwargs)
    assert on_ray.backend == "ray"
    assert outcomes(on_ray.points) == outcomes(pooled.points)
    assert sorted(map(SweepPoint.outcome, seen)) == sorted(outcomes(pooled.points))


def test_load_options_reach_the_workers(onnx_models):
    """--element-bytes 1 quarters every float32 tensor, in the pool's workers as in this process."""
    kwargs = dict(start="M_R", stop="M_P", points=2, methods=["default+belady"])
    four = sweep(onnx_models[:1], **kwargs)
    one = sweep(onnx_models[:1], load=LoadOptions(element_bytes=1), backend="process", jobs=2, **kwargs)
    assert outcomes(one.points) == outcomes(sweep(onnx_models[:1], load=LoadOptions(element_bytes=1), **kwargs).points)
    assert [p.scratchpad_bytes * 4 for p in one.points] == [p.scratchpad_bytes for p in four.points]
    assert [p.compulsory_bytes * 4 for p in one.points] == [p.compulsory_bytes for p in four.points]


# ------------------------------------------------------------------------------ outputs
def test_csv_and_plot(tmp_path):
    result = sweep(
        [FIXTURES["diamond"]().graph, FIXTURES["skip"]().graph], start="M_R", stop="M_P", points=3, methods=METHODS
    )
    path = result.save_csv(tmp_path / "s.csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == len(result.points)
    assert rows[0].keys() >= {"model", "method", "scratchpad_bytes", "extra_bytes", "status", "bound"}
    assert [int(r["scratchpad_bytes"]) for r in rows] == [p.scratchpad_bytes for p in result.points]
    fig = sweep_figure(result)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in panels] == ["diamond", "skip"]
    assert all(len(ax.get_lines()) == len(METHODS) + 1 for ax in panels)  # one curve per method and M_R's line
    assert result.save_plot(tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_sweep(onnx_models, tmp_path):
    out = CliRunner().invoke(
        main,
        [
            "sweep",
            *map(str, onnx_models),
            "--from",
            "M_R",
            "--to",
            "M_P",
            "--points",
            "3",
            "--method",
            "default+belady",
            "-o",
            str(tmp_path / "s.csv"),
            "--jobs",
            "1",
        ],
    )
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert [r["model"] for r in rows] == ["mlp4x16"] * 3 + ["mlp3x24"] * 3
    assert (tmp_path / "s.png").stat().st_size > 1000
    bad = CliRunner().invoke(main, ["sweep", str(onnx_models[0]), "--method", "nope", "-o", str(tmp_path / "b.csv")])
    assert bad.exit_code == 2 and "unknown method" in bad.output


def test_docstring_examples_run():
    import doctest

    import cosma.sweep

    result = doctest.testmod(cosma.sweep)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------------------- runner
@pytest.mark.parametrize("backend", ["serial", "process"])
def test_runner_answers_in_task_order_and_reports_each_result(backend):
    seen: list[tuple[int, int]] = []
    tasks = [-5, 3, -1, 0, 7]
    assert run_tasks(abs, tasks, backend=backend, jobs=2, on_result=lambda t, r: seen.append((t, r))) == [5, 3, 1, 0, 7]
    assert sorted(seen) == sorted(zip(tasks, [5, 3, 1, 0, 7]))


def test_runner_refuses_an_unknown_backend_and_no_jobs():
    with pytest.raises(OptionError, match="unknown backend"):
        run_tasks(abs, [1], backend="threads")
    with pytest.raises(OptionError, match="at least 1"):
        run_tasks(abs, [1], jobs=0)
