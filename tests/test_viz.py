"""Plan pictures and reports: the replay into residencies, the figures, the HTML page, the CLI."""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from graphs import FIXTURES
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from cosma.cli import main
from cosma.errors import PlanInvalid
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.methods import compile
from cosma.plan import Plan
from cosma.report import render_report
from cosma.viz import (
    MAX_WIDTH,
    PlanFileError,
    _labels,
    load_plan,
    save_figure,
    timeline_figure,
    trace,
    traffic_by_tensor,
    traffic_figure,
)

MODELS = Path(__file__).resolve().parent.parent / "models"


def diamond_at_28() -> Plan:
    """The diamond's witness at 28 B: q is spilled after b (extra store) and reloaded for d (extra load)."""
    fixture = FIXTURES["diamond"]()
    return Plan.from_steps(fixture.graph, Accelerator(28), fixture.witnesses[28], method="witness")


def random_dag(n: int, seed: int) -> Graph:
    """A random layered DAG whose operators read up to three of the last six tensors plus a weight."""
    rng = random.Random(seed)
    tensors = [Tensor("x", rng.choice([16, 32, 64]), "input")]
    ops = []
    recent = ["x"]
    for i in range(n):
        inputs = rng.sample(recent[-6:], rng.randint(1, min(3, len(recent[-6:]))))
        tensors.append(Tensor(f"w{i}", rng.choice([0, 8, 16, 32]), "weight"))
        tensors.append(Tensor(f"t{i}", rng.choice([16, 32, 48, 96]), "output" if i == n - 1 else "activation"))
        ops.append(Operator(f"op{i}", "Conv", (*inputs, f"w{i}"), (f"t{i}",)))
        recent.append(f"t{i}")
    return Graph.build(f"random{seed}", tensors, ops)


def random_plans() -> list[Plan]:
    plans = []
    for seed in range(6):
        g = random_dag(40, seed)
        for factor in (1.0, 1.3):
            plans.append(compile(g, int(g.min_scratchpad * factor), method="default+belady"))
    return plans


# ------------------------------------------------------------------------- the replay
def test_trace_of_the_diamond_spill_is_derived_by_hand():
    tr = trace(diamond_at_28())
    got = {(r.tensor, r.start, r.end, r.offset, r.reloaded, r.evicted) for r in tr.residencies}
    assert got == {
        ("x", 0, 1, 16, False, False),
        ("p", 0, 3, 0, False, False),
        ("q", 1, 2, 16, False, True),  # spilled: a later residency of q follows
        ("r", 2, 4, 16, False, False),
        ("q", 3, 4, 0, True, False),  # reloaded for d
        ("y", 3, 4, 4, False, False),
    }
    spill = next(r for r in tr.residencies if r.tensor == "q" and r.evicted)
    assert [(x.direction, x.time, x.extra) for x in spill.stores] == [("store", 2, True)]
    y = next(r for r in tr.residencies if r.tensor == "y")
    assert [(x.time, x.extra) for x in y.stores] == [(4, False)]  # an output's first store is compulsory
    assert tr.horizon == 4 and [op for op, _ in tr.run_times] == ["a", "b", "c", "d"]


def test_step_time_axis_gives_every_step_a_unit():
    plan = diamond_at_28()
    tr = trace(plan, "step")
    assert tr.step_times == tuple(float(i) for i in range(len(plan.steps)))
    q = [r for r in tr.residencies if r.tensor == "q"]
    # Run b is step 3, its store step 4 and free step 5; the reload is step 8 and its free step 11.
    assert [(r.start, r.end) for r in q] == [(3, 5), (8, 11)]
    assert q[0].stores[0].time == 4.5


def rectangles_overlap(a, b) -> bool:
    return a.start < b.end and b.start < a.end and a.offset < b.offset + b.bytes and b.offset < a.offset + a.bytes


@pytest.mark.parametrize("time_axis", ["op", "step"])
def test_residencies_of_valid_plans_never_overlap_and_stay_inside(time_axis):
    for plan in random_plans():
        tr = trace(plan, time_axis)
        boxes = [r for r in tr.residencies if r.bytes > 0 and r.end > r.start]
        for r in boxes:
            assert r.offset >= 0 and r.offset + r.bytes <= plan.accelerator.scratchpad_bytes
            assert 0 <= r.start < r.end <= tr.horizon
        boxes.sort(key=lambda r: r.start)
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                if b.start >= a.end:
                    break
                assert not rectangles_overlap(a, b), (plan.graph.name, a, b)
        # every tensor an operator touches is resident at least once
        assert {r.tensor for r in tr.residencies} == {t for o in plan.graph.ops for t in (*o.inputs, *o.outputs)}


def test_traffic_by_tensor_adds_up_to_the_plan_cost():
    for plan in [diamond_at_28(), *random_plans()]:
        rows = traffic_by_tensor(plan)
        assert sum(r.extra_bytes for r in rows) == plan.summary.extra_bytes
        assert sum(r.compulsory_bytes for r in rows) == plan.summary.compulsory_bytes
        assert [r.extra_bytes for r in rows] == sorted((r.extra_bytes for r in rows), reverse=True)
    q = next(r for r in traffic_by_tensor(diamond_at_28()) if r.tensor == "q")
    assert (q.loads, q.stores, q.compulsory_bytes, q.extra_bytes, q.residencies) == (1, 1, 0, 8, 2)


# ------------------------------------------------------------------------- the figures
def collections(fig: Figure) -> tuple[list[PolyCollection], list[LineCollection]]:
    ax = fig.axes[0]
    return (
        [c for c in ax.collections if isinstance(c, PolyCollection)],
        [c for c in ax.collections if isinstance(c, LineCollection)],
    )


def test_timeline_draws_every_residency_marks_spills_and_capacity():
    plan = diamond_at_28()
    fig = timeline_figure(plan)
    polys, lines = collections(fig)
    drawn = sum(len(c.get_paths()) for c in polys)
    assert drawn == len(trace(plan).residencies)
    hatched = [c for c in polys if c.get_hatch()]
    assert len(hatched) == 1 and len(hatched[0].get_paths()) == 1  # the reloaded q
    red = [c for c in lines if tuple(c.get_color()[0][:3]) == pytest.approx((0xD0 / 255, 0x02 / 255, 0x1B / 255))]
    assert sum(len(c.get_segments()) for c in red) == 1  # one spill store
    ax = fig.axes[0]
    assert ax.get_ylim()[1] > 28 and any(line.get_ydata()[0] == 28 for line in ax.get_lines())  # capacity
    labels = {t.get_text() for t in ax.texts}
    assert {"p", "r"} <= labels


def test_every_tensor_of_a_zoo_plan_is_drawn(tmp_path):
    """Tiny tensors (biases, 4-byte constants) become lines; nothing is dropped."""
    from cosma import load_onnx

    graph = load_onnx(MODELS / "mobilenet_v2.onnx")
    plan = compile(graph, graph.min_scratchpad)
    fig = timeline_figure(plan)
    polys, lines = collections(fig)
    drawn = sum(len(c.get_paths()) for c in polys) + sum(
        len(c.get_segments()) for c in lines if c.get_linestyle()[0][1] is None and c.get_linewidth()[0] < 1
    )
    assert drawn == sum(1 for r in trace(plan).residencies if r.bytes > 0)
    assert {t.get_text() for t in fig.axes[0].texts} & {"input", "classifier.1.weight"}
    png = save_figure(fig, tmp_path / "mobilenet.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_window_zooms_into_part_of_the_plan():
    plan = random_plans()[0]
    fig = timeline_figure(plan, window=(10, 20))
    assert fig.axes[0].get_xlim() == (10, 20)
    with pytest.raises(ValueError):
        timeline_figure(plan, window=(5, 5))


def test_labels_are_made_of_the_name_and_shrink():
    name = "/features/denseblock1/denselayer6/relu1/Relu_output_0"
    assert _labels(name) == [
        "features/denseblock1/denselayer6/relu1",
        "denseblock1/denselayer6/relu1",
        "denselayer6/relu1",
    ]
    assert _labels("/features/features.2/conv/conv.0/conv.0.2/Clip_output_0") == [
        "features.2/conv.0.2/Clip",
        "conv.0.2/Clip",
    ]
    assert _labels("onnx::Conv_688") == ["onnx::Conv_688"]
    assert all(len(s) <= 10 for s in _labels(name, 10))


def test_svg_and_png_are_written_and_other_suffixes_refused(tmp_path):
    fig = timeline_figure(diamond_at_28())
    svg = save_figure(fig, tmp_path / "t.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert save_figure(traffic_figure(diamond_at_28()), tmp_path / "t.png").stat().st_size > 1000
    with pytest.raises(PlanFileError, match=r"\.png, \.svg or \.pdf"):
        save_figure(fig, tmp_path / "t.jpg")


# ------------------------------------------------------------------------- plan files
def test_load_plan_names_the_problem(tmp_path):
    with pytest.raises(PlanFileError, match="cannot read plan"):
        load_plan(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(PlanFileError, match="not JSON"):
        load_plan(tmp_path / "junk.json")
    data = diamond_at_28().to_dict()
    data["steps"] = [s for s in data["steps"] if not (s["action"] == "store" and s["tensor"] == "y")]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(PlanInvalid, match="not a valid plan: outputs never stored"):
        load_plan(tmp_path / "bad.json")
    plan = diamond_at_28()
    plan.save(tmp_path / "good.json")
    assert load_plan(tmp_path / "good.json").steps == plan.steps


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("extra_bytes", 1, "summary extra_bytes is 1, the replay gives 8"),
        ("offchip_bytes", "lots", "summary offchip_bytes is 'lots'"),
        ("status", 3, "summary status 3 is not one of"),
        ("bound", 9, "summary bound 9 is not a byte count at most the replayed 8"),
    ],
)
def test_a_plan_whose_summary_the_replay_contradicts_is_refused(tmp_path, key, value, message):
    """What `cosma check` rejects is never drawn: exit 1 (PlanInvalid), one line."""
    data = diamond_at_28().to_dict()
    data["summary"][key] = value
    (tmp_path / "edited.json").write_text(json.dumps(data))
    with pytest.raises(PlanInvalid, match=re.escape(message)) as caught:
        load_plan(tmp_path / "edited.json")
    assert caught.value.exit_code == 1 and "\n" not in str(caught.value)
    edited = Plan.from_dict(data)
    for draw in (timeline_figure, render_report):
        with pytest.raises(PlanInvalid):
            draw(edited)


# ------------------------------------------------------------------------- axes, title, width
def tick_texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_xticklabels()]


def test_operator_names_label_the_x_axis_a_readable_subset_and_all_in_a_window():
    graph = random_dag(300, 3)
    plan = compile(graph, graph.min_scratchpad, method="default+belady")
    fig = timeline_figure(plan)
    ticks = tick_texts(fig)
    order = plan.order
    assert 20 <= len(ticks) < len(order)  # a subset, evenly spaced, each named "index name"
    indices = [int(t.split()[0]) for t in ticks]
    assert all(t.split()[1] == order[i] for t, i in zip(ticks, indices))
    assert len({b - a for a, b in itertools.pairwise(indices)}) == 1
    zoomed = timeline_figure(plan, window=(100, 160))
    assert [int(t.split()[0]) for t in tick_texts(zoomed)] == list(range(100, 160))
    assert zoomed.axes[0].get_xlabel() == "operator (run index and name)"


def test_width_is_capped_for_big_plans():
    graph = random_dag(400, 4)
    plan = compile(graph, graph.min_scratchpad, method="default+belady")
    fig = timeline_figure(plan)
    assert fig.get_figwidth() * fig.dpi == MAX_WIDTH * fig.dpi <= 2400
    assert timeline_figure(random_plans()[0]).get_figwidth() == 10  # small plans keep the least width


def title_of(fig: Figure) -> str:
    return fig.texts[0].get_text()


@pytest.mark.parametrize("window", [None, (1.0, 3.0)])
def test_title_gives_status_bound_and_gap_and_fits_the_figure(window):
    plan = diamond_at_28().with_summary(bound=4, status="feasible")
    fig = timeline_figure(plan, window=window)
    title = title_of(fig)
    assert "witness, feasible" in title and "extra traffic 8 B" in title and "lower bound 4 B, gap 50.0%" in title
    assert ("showing operators 1 to 3" in title) == (window is not None)
    renderer = FigureCanvasAgg(fig).get_renderer()
    box = fig.texts[0].get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.get_figwidth() * fig.dpi and box.y1 <= fig.get_figheight() * fig.dpi
    assert "no lower bound proven" in title_of(timeline_figure(diamond_at_28().with_summary(bound=None)))


def test_a_tiny_output_is_drawn_at_least_five_pixels_tall():
    tensors = [Tensor("x", 4, "input"), Tensor("big", 100_000, "activation"), Tensor("y", 4, "output")]
    ops = [Operator("a", "Conv", ("x",), ("big",)), Operator("b", "Gemm", ("big",), ("y",))]
    plan = compile(Graph.build("tiny-out", tensors, ops), 100_008)
    fig = timeline_figure(plan)
    ax = fig.axes[0]
    orange = [c for c in ax.collections if isinstance(c, PolyCollection) and len(c.get_facecolor())]
    heights = []
    for c in orange:
        for path, colour in zip(c.get_paths(), c.get_facecolor()):
            if tuple(colour[:3]) == pytest.approx((0xE6 / 255, 0x9F / 255, 0x00)):
                ys = ax.transData.transform(path.vertices)[:, 1]
                heights.append(ys.max() - ys.min())
    assert heights and min(heights) >= 5 - 1e-6


def test_sweep_figure_has_more_than_two_ticks_and_names_m_r():
    from cosma.sweep import ModelRange, SweepPoint, SweepResult, sweep_figure

    m_r = 9_940_992
    points = tuple(
        SweepPoint("resnet50", "default+belady", m_r + i * 44_600, "heuristic", 10_000_000 - i, 0, 0, None, 0, 0, 0)
        for i in range(10)
    )
    result = SweepResult(points, (ModelRange("resnet50", m_r, m_r + 401_408, m_r),), ("default+belady",), "serial")
    fig = sweep_figure(result)
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert len(ticks) > 2
    assert any(t.get_text().startswith("M_R = 9.5 MiB") for t in ax.texts)
    assert lo < m_r  # the M_R line is inside the axes, not on its edge


# ------------------------------------------------------------------------- the CLI
def test_cli_show_and_report(tmp_path):
    plan = diamond_at_28()
    plan.save(tmp_path / "plan.json")
    runner = CliRunner()
    out = runner.invoke(main, ["show", str(tmp_path / "plan.json"), "-o", str(tmp_path / "t.svg")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "t.svg").read_text().count("<svg") == 1
    out = runner.invoke(
        main, ["show", str(tmp_path / "plan.json"), "-o", str(tmp_path / "w.png"), "--time", "step", "--window", "2:9"]
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, ["report", str(tmp_path / "plan.json"), "-o", str(tmp_path / "r.html")])
    assert out.exit_code == 0, out.output
    assert "<!DOCTYPE html>" in (tmp_path / "r.html").read_text()


def test_cli_show_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "junk.json").write_text("{not json")
    out = CliRunner().invoke(main, ["show", str(tmp_path / "junk.json"), "-o", str(tmp_path / "t.png")])
    assert out.exit_code == 2
    assert len(out.output.strip().splitlines()) == 1 and "junk.json" in out.output
    (tmp_path / "list.json").write_text("[]")  # JSON, but no plan: refused as `cosma check` refuses it
    out = CliRunner().invoke(main, ["report", str(tmp_path / "list.json"), "-o", str(tmp_path / "r.html")])
    assert out.exit_code == 1 and len(out.output.strip().splitlines()) == 1 and "list.json" in out.output
    out = CliRunner().invoke(main, ["show", str(tmp_path / "junk.json"), "--window", "x"])
    assert out.exit_code == 2


def test_docstring_examples_run():
    import doctest

    import cosma.report
    import cosma.viz

    for module in (cosma.viz, cosma.report):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
