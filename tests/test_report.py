"""The HTML report: one self-contained page, every plan number replayed, hover and zoom in the page's script."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from graphs import FIXTURES
from test_viz import diamond_at_28, random_dag

from cosma.contract import replay
from cosma.hardware import Accelerator
from cosma.methods import compile
from cosma.plan import Plan
from cosma.report import OPEN_ROWS, occupancy_after_steps, operator_rows, render_report, write_report
from cosma.viz import trace

ROOT = Path(__file__).resolve().parent.parent
WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def rects(page: str) -> list[dict[str, str]]:
    """The attributes of every hoverable rectangle of the page."""
    return [
        dict(re.findall(r'data-([a-z]+)="([^"]*)"', m)) for m in re.findall(r"<rect ([^>]*data-tensor[^>]*)>", page)
    ]


def test_page_is_self_contained_and_interactive():
    plan = diamond_at_28()
    page = render_report(plan, generated=WHEN)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r'(src|href)="(?!#)', page) and "@import" not in page  # nothing fetched
    assert "<img" not in page and page.count("<svg") == 2  # timeline and occupancy, inline
    # one rectangle per residency, each carrying what the tooltip shows, and a <title> for no-script readers
    shown = [r for r in trace(plan).residencies if r.bytes > 0]
    got = rects(page)
    assert sorted((r["tensor"], int(r["step"]), int(r["end"])) for r in got) == sorted(
        (r.tensor, r.first_step, r.last_step) for r in shown
    )
    q = [r for r in got if r["tensor"] == "q"]
    assert {(r["op"], r.get("reloaded")) for r in q} == {("b", None), ("", "1")}  # produced by b, then reloaded
    assert len(re.findall(r"<rect [^>]*data-tensor[^>]*><title>", page)) == len(shown)
    # the script: tooltip on mouseover from the data attributes, wheel zoom, drag pan, redrawn operator names
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    for needle in ("'mouseover'", "d.tensor", "'wheel'", "'mousemove'", "cosma-xticks", "zoomable"):
        assert needle in script
    assert '<div id="cosma-tip">' in page
    meta = json.loads(re.search(r'id="cosma-meta">(.*?)</script>', page).group(1))
    assert meta["ops"] == ["0 a", "1 b", "2 c", "3 d"] and meta["horizon"] == 4
    assert "Report written 2026-11-30 12:00 UTC" in page


def test_every_plan_number_is_the_replays():
    for plan in [diamond_at_28()] + [compile(random_dag(60, s), random_dag(60, s).min_scratchpad) for s in (1, 2)]:
        measured = replay(plan.to_dict())
        rows = operator_rows(plan)
        assert [r.op for r in rows] == list(plan.order)
        assert sum(r.dma_in_bytes + r.dma_out_bytes for r in rows) == measured.offchip_bytes
        assert sum(r.dma_in_extra + r.dma_out_extra for r in rows) == measured.extra_bytes
        assert all(r.resident_bytes >= r.working_set for r in rows)  # a run holds its inputs and outputs
        assert max(occupancy_after_steps(plan)) == measured.peak_resident_bytes
        page = render_report(plan, generated=WHEN)
        assert f"<strong>{measured.extra_bytes:,} B" in page
        assert f"{measured.peak_resident_bytes:,} B" in page


def test_diamond_operator_rows_by_hand():
    """x (8 B) loaded for a; q (4 B) stored after b and reloaded for d (both extra); y (2 B) stored after d.

    Resident during each run: a holds x + p = 24, b p + q = 20 (x freed), c p + r = 28 (q spilled),
    d r + q + y = 18 (p freed).
    """
    rows = [
        (r.op, r.resident_bytes, r.dma_in_bytes, r.dma_in_extra, r.dma_out_bytes, r.dma_out_extra)
        for r in operator_rows(diamond_at_28())
    ]
    assert rows == [("a", 24, 8, 0, 0, 0), ("b", 20, 0, 0, 4, 4), ("c", 28, 0, 0, 0, 0), ("d", 18, 4, 4, 2, 0)]
    assert [r.working_set for r in operator_rows(diamond_at_28())] == [24, 20, 28, 18]


def test_baselines_and_provenance_are_shown():
    from cosma import load_onnx

    graph = load_onnx(ROOT / "models" / "mobilenet_v2.onnx")
    plan = compile(graph, graph.min_scratchpad, time_limit=30)
    details = plan.summary.details
    page = render_report(plan, generated=WHEN)
    assert f'<td>{details["baseline"]}</td><td class="num">{details["baseline_extra_bytes"]:,}</td>' in page
    for text in ("mobilenet_v2.onnx", plan.provenance["model"]["sha256"], "cosma version", "planning options"):
        assert text in page
    assert f"by cosma {plan.provenance['cosma']}" in page
    bare = render_report(diamond_at_28(), generated=WHEN)
    assert "records no baseline run" in bare and "carries no provenance" in bare


def test_long_lists_start_folded(tmp_path):
    graph = random_dag(120, 7)
    plan = compile(graph, graph.min_scratchpad, method="default+belady")
    assert len(plan.steps) > OPEN_ROWS
    page = write_report(plan, tmp_path / "r.html", generated=WHEN).read_text()
    assert f"<details><summary>{len(plan.steps)} steps" in page
    assert "<details open><summary>120 operators in run order" in page
    small = render_report(diamond_at_28(), generated=WHEN)
    assert "<details open><summary>14 steps" in small
    assert (
        len(re.findall(r'<tr class="extra"><td class="num">\d+</td><td class="num">\d+</td><td>(load|store)', small))
        == 2
    )


def load_browser_script():
    spec = importlib.util.spec_from_file_location("report_in_browser", ROOT / "benchmarks" / "report_in_browser.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")), reason="no Chromium"
)
def test_hovering_a_rectangle_in_chromium_shows_its_tensor_name(tmp_path):
    browser = load_browser_script()
    plan = Plan.from_steps(
        FIXTURES["diamond"]().graph, Accelerator(28), FIXTURES["diamond"]().witnesses[28], method="witness"
    )
    page = write_report(plan, tmp_path / "diamond.html", generated=WHEN)
    hovered = browser.check_report(page, screenshot=tmp_path / "shot.png", width=1300, height=1200)
    assert hovered.visible and hovered.tooltip.startswith(f"{hovered.tensor} (")
    assert "at step" in hovered.tooltip and " B at " in hovered.tooltip
    assert (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"
