"""One self-contained, interactive HTML page about a plan.

The page holds where the plan came from (model, options, solver, cosma version), how good it is
against the baselines the planner ran, a zoomable timeline of the scratchpad (hover a rectangle
for the tensor, the operator that placed it, its steps and bytes), the scratchpad occupancy at
every step, a table per operator (working set, bytes resident while it runs, DMA in before it and
out after it), the traffic by tensor and the step list. Pictures are inline SVG, the style sheet
and the little script are inline too: the page fetches nothing and opens from a mail attachment.

Every number about the plan's traffic and occupancy comes from replaying its steps
(:func:`cosma.viz.verify`, which refuses a plan whose steps or summary the replay contradicts). The
baselines' numbers are the planner's record, which no replay can check; the page says so.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> from cosma.methods import compile
    >>> g = Graph.build("g", [Tensor("x", 4, "input"), Tensor("y", 4, "output")],
    ...                 [Operator("relu", "Relu", ("x",), ("y",))])
    >>> page = render_report(compile(g, 8))
    >>> page.startswith("<!DOCTYPE html>") and 'data-tensor="y"' in page and "<script src" not in page
    True
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from cosma.contract import Free, Load, ReplayResult, Run, Store
from cosma.fileio import atomic_write_text
from cosma.plan import Plan
from cosma.units import format_size
from cosma.viz import KIND_COLOURS, SPILL_COLOUR, STORE_COLOUR, PlanTrace, _op_label, trace, traffic_by_tensor, verify

#: Lists longer than this start folded.
OPEN_ROWS = 300

#: Pixel geometry of the two pictures, which share their time axis (and their zoom).
PLOT_LEFT = 78
PLOT_WIDTH = 1100
TIMELINE_HEIGHT = 420
OCCUPANCY_HEIGHT = 180
_TICK_ROOM = 150  # under the timeline, for the operator names

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 2px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th { font-weight: normal; color: #555; }
tr.extra td { background: #fdecee; }
.figure { overflow-x: auto; border: 1px solid #ddd; padding: 4px; }
.figure svg { display: block; font-size: 11px; user-select: none; }
.plotarea { cursor: grab; }
.note { color: #666; font-size: 0.85em; }
.controls button { font-size: 0.85em; margin-right: 4px; }
#cosma-tip { position: fixed; display: none; pointer-events: none; background: #fffff2; border: 1px solid #888;
  padding: 4px 7px; font-size: 12px; white-space: pre; box-shadow: 2px 2px 6px rgba(0,0,0,.2); z-index: 10; }
summary { cursor: pointer; margin: 0.5em 0; }
code { font-size: 0.95em; }
""".strip()

# Wheel zooms the time axis about the pointer, dragging pans, double-click resets; the operator names
# under the axis are redrawn for the visible range; hovering a rectangle shows what it holds.
_SCRIPT = """
(function () {
  const meta = JSON.parse(document.getElementById('cosma-meta').textContent);
  const H = meta.horizon, L = meta.left, W = meta.width, names = meta.ops;
  const groups = Array.from(document.querySelectorAll('g.zoomable'));
  const ticks = document.getElementById('cosma-xticks');
  const range = document.getElementById('cosma-range');
  const tip = document.getElementById('cosma-tip');
  const SVGNS = 'http://www.w3.org/2000/svg';
  let lo = 0, hi = H;
  function draw() {
    const sx = H / (hi - lo);
    groups.forEach(g => g.setAttribute('transform', `translate(${L - lo * W / H * sx} 0) scale(${sx} 1)`));
    const px = W / (hi - lo);
    let k = 1;
    for (const m of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]) { k = m; if (m * px >= 11) break; }
    while (ticks.firstChild) ticks.removeChild(ticks.firstChild);
    for (let i = Math.max(0, Math.floor(lo)); i < Math.min(names.length, Math.ceil(hi)); i++) {
      if (i % k) continue;
      const x = L + (i + 0.5 - lo) * px;
      const t = document.createElementNS(SVGNS, 'text');
      t.setAttribute('transform', `translate(${x + 3} ${meta.axis + 6}) rotate(-90)`);
      t.setAttribute('text-anchor', 'end');
      t.textContent = names[i];
      ticks.appendChild(t);
    }
    range.textContent = `operators ${lo.toFixed(1)} to ${hi.toFixed(1)} of ${H}`;
  }
  function zoom(at, factor) {
    const span = Math.min(H, Math.max(2, (hi - lo) * factor));
    lo = Math.min(Math.max(0, at - (at - lo) * span / (hi - lo)), H - span);
    hi = lo + span;
    draw();
  }
  function place(x, y) {  // beside the pointer, on the side where the tooltip fits in the window
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = (x + 14 + w > window.innerWidth ? Math.max(0, x - 14 - w) : x + 14) + 'px';
    tip.style.top = (y + 14 + h > window.innerHeight ? Math.max(0, y - 14 - h) : y + 14) + 'px';
  }
  function dataX(svg, clientX) {
    return lo + (clientX - svg.getBoundingClientRect().left - L) / W * (hi - lo);
  }
  document.querySelectorAll('svg.cosma-zoom').forEach(svg => {
    svg.addEventListener('wheel', e => { e.preventDefault(); zoom(dataX(svg, e.clientX), e.deltaY < 0 ? 0.8 : 1.25); },
                         {passive: false});
    let dragging = null;
    svg.addEventListener('mousedown', e => { dragging = {x: e.clientX, lo: lo, hi: hi}; });
    window.addEventListener('mouseup', () => { dragging = null; });
    window.addEventListener('mousemove', e => {
      if (!dragging) return;
      const span = dragging.hi - dragging.lo;
      lo = Math.min(Math.max(0, dragging.lo - (e.clientX - dragging.x) / W * span), H - span);
      hi = lo + span;
      draw();
    });
    svg.addEventListener('dblclick', () => { lo = 0; hi = H; draw(); });
    svg.addEventListener('mouseover', e => {
      const r = e.target.closest('[data-tensor]');
      if (!r) return;
      const d = r.dataset;
      tip.textContent = `${d.tensor} (${d.kind})\\n` +
        `${d.op ? 'produced by ' + d.op : 'loaded from DRAM'} at step ${d.step}, resident to step ${d.end}\\n` +
        `${Number(d.bytes).toLocaleString('en')} B at ${d.offset}` + (d.reloaded ? '\\nreloaded: extra traffic' : '');
      tip.style.display = 'block';
      place(e.clientX, e.clientY);
    });
    svg.addEventListener('mousemove', e => place(e.clientX, e.clientY));
    svg.addEventListener('mouseout', e => { if (e.target.closest('[data-tensor]')) tip.style.display = 'none'; });
  });
  document.getElementById('cosma-in').addEventListener('click', () => zoom((lo + hi) / 2, 0.5));
  document.getElementById('cosma-out').addEventListener('click', () => zoom((lo + hi) / 2, 2));
  document.getElementById('cosma-reset').addEventListener('click', () => { lo = 0; hi = H; draw(); });
  draw();
})();
""".strip()


@dataclass(frozen=True)
class OperatorRow:
    """One operator of the plan as the replay sees it.

    ``dma_in_bytes``: loads issued after the previous run and before this one (what it waits for);
    ``dma_out_bytes``: stores issued after this run and before the next. ``resident_bytes``: bytes
    resident while it runs. The ``extra`` parts are the non-compulsory share of each.
    """

    index: int
    op: str
    op_type: str
    step: int
    working_set: int
    resident_bytes: int
    dma_in_bytes: int
    dma_in_extra: int
    dma_out_bytes: int
    dma_out_extra: int


def operator_rows(plan: Plan, tr: PlanTrace | None = None) -> list[OperatorRow]:
    """One row per run, in run order; the DMA columns add up to the plan's off-chip traffic."""
    tr = tr or trace(plan)
    run_steps = [i for i, s in enumerate(plan.steps) if isinstance(s, Run)]
    occupancy = occupancy_after_steps(plan, tr)
    moved = [[0, 0, 0, 0] for _ in run_steps]  # in, in extra, out, out extra
    for x in tr.transfers:
        if x.direction == "load":  # the next run waits for it
            i = min(bisect.bisect_right(run_steps, x.step), len(run_steps) - 1)
            moved[i][0] += x.bytes
            moved[i][1] += x.bytes if x.extra else 0
        else:  # the last run made it possible
            i = max(bisect.bisect_left(run_steps, x.step) - 1, 0)
            moved[i][2] += x.bytes
            moved[i][3] += x.bytes if x.extra else 0
    rows = []
    for i, step in enumerate(run_steps):
        run = plan.steps[step]
        assert isinstance(run, Run)
        op = plan.graph.op(run.op)
        rows.append(
            OperatorRow(
                i,
                run.op,
                op.op_type,
                step,
                plan.graph.working_set(run.op),
                occupancy[step],
                *moved[i],
            )
        )
    return rows


def occupancy_after_steps(plan: Plan, tr: PlanTrace | None = None) -> list[int]:
    """Bytes resident after each step (a run's outputs placed, an input it overwrote gone)."""
    tr = tr or trace(plan)
    change = [0] * (len(plan.steps) + 1)
    for r in tr.residencies:
        change[r.first_step] += r.bytes
        change[r.last_step] -= r.bytes
    out, live = [], 0
    for delta in change[:-1]:
        live += delta
        out.append(live)
    return out


def render_report(plan: Plan, *, title: str | None = None, generated: datetime | None = None) -> str:
    """The HTML page for ``plan`` as a string; raise :class:`~cosma.errors.PlanInvalid` for a plan the replay refuses.

    ``generated``: the date the page states it was written (default: now, in UTC).
    """
    measured = verify(plan)
    tr = trace(plan)
    rows = operator_rows(plan, tr)
    name = plan.graph.name or "plan"
    heading = title or f"{name}: plan for a scratchpad of {format_size(plan.accelerator.scratchpad_bytes)}"
    when = (generated or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M %Z").strip()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(heading)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(heading)}</h1>",
        f'<p class="note">Report written {escape(when)} by cosma {escape(_version(plan))}. Traffic and occupancy '
        "below are measured by replaying the plan's steps, not read from its summary.</p>",
        _summary(plan, measured),
        "<h2>Against the baselines</h2>",
        _baselines(plan, measured),
        "<h2>Scratchpad timeline</h2>",
        '<p class="note">Time runs across (one unit per operator), addresses up. Each rectangle is one tensor '
        "held at one address; colour is its kind. Hatched red-edged rectangles were reloaded (extra loads), "
        "red bars are spill stores, black bars output stores, the dashed line is the capacity. "
        "Hover over a rectangle for its tensor, operator, steps and bytes; the wheel zooms the time axis, "
        "dragging pans, a double click shows the whole plan again.</p>",
        '<p class="controls"><button id="cosma-in" type="button">zoom in</button>'
        '<button id="cosma-out" type="button">zoom out</button>'
        '<button id="cosma-reset" type="button">whole plan</button> <span id="cosma-range" class="note"></span></p>',
        f'<div class="figure">{_timeline_svg(plan, tr)}</div>',
        "<h2>Scratchpad occupancy</h2>",
        '<p class="note">Bytes resident after every step (blue; a run holds its inputs and outputs) and each '
        "operator's working set, the least it needs (grey); the dashed line is the capacity. Zooms with the "
        "timeline.</p>",
        f'<div class="figure">{_occupancy_svg(plan, tr, rows, measured)}</div>',
        "<h2>Operators</h2>",
        _operators(rows),
        "<h2>Where it came from</h2>",
        _provenance(plan),
        "<h2>Traffic by tensor</h2>",
        _traffic(plan),
        "<h2>Steps</h2>",
        _steps(plan, tr),
        '<p class="note">The plan follows the <code>cosma.plan/1</code> contract; check it with '
        "<code>cosma check</code>.</p>",
        '<div id="cosma-tip"></div>',
        '<script type="application/json" id="cosma-meta">'
        + _json_in_html(
            {
                "horizon": tr.horizon,
                "left": PLOT_LEFT,
                "width": PLOT_WIDTH,
                "axis": TIMELINE_HEIGHT,
                "ops": [_op_label(i, op) for i, (op, _) in enumerate(tr.run_times)],
            }
        )
        + "</script>",
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_report(
    plan: Plan, path: str | os.PathLike[str], *, title: str | None = None, generated: datetime | None = None
) -> Path:
    """Write :func:`render_report` to ``path`` atomically."""
    path = Path(path)
    atomic_write_text(path, render_report(plan, title=title, generated=generated))
    return path


# ---------------------------------------------------------------------------- sections
def _summary(plan: Plan, measured: ReplayResult) -> str:
    s, g = plan.summary, plan.graph
    if s.bound is None:
        bound, gap = "none proven", "unknown (no bound)"
    else:
        extra = measured.extra_bytes
        bound, gap = _bytes(s.bound), f"{100 * (0.0 if extra == 0 else (extra - s.bound) / extra):.1f}%"
    rows = [
        ("status", escape(s.status)),
        ("method", escape(s.method or "unknown")),
        ("solver", escape(str(s.details.get("solver") or "none (the method runs no solver)"))),
        ("off-chip traffic", _bytes(measured.offchip_bytes)),
        ("compulsory traffic", _bytes(measured.compulsory_bytes)),
        ("extra traffic", f"<strong>{_bytes(measured.extra_bytes)}</strong>"),
        ("lower bound on extra traffic", bound),
        ("gap to the bound", gap),
        ("scratchpad", f"{_bytes(measured.scratchpad_bytes)}, alignment {plan.accelerator.alignment} B"),
        ("M_R (largest working set)", _bytes(g.min_scratchpad)),
        ("peak resident", _bytes(measured.peak_resident_bytes)),
        ("graph", f"{measured.ops} operators, {measured.tensors} tensors, {len(plan.steps)} steps"),
        ("loads, stores", f"{measured.loads:,}, {measured.stores:,}"),
        ("solve time", f"{s.solve_seconds:.2f} s (total {s.total_seconds:.2f} s)"),
    ]
    return _pairs(rows)


def _baselines(plan: Plan, measured: ReplayResult) -> str:
    details = plan.summary.details
    recorded: dict[str, int] = {}
    if isinstance(details.get("baselines"), Mapping):
        recorded.update({str(k): v for k, v in details["baselines"].items() if _is_count(v)})
    if isinstance(details.get("baseline"), str) and _is_count(details.get("baseline_extra_bytes")):
        recorded.setdefault(details["baseline"], details["baseline_extra_bytes"])
    if not recorded:
        return "<p>The plan records no baseline run (its method ran none).</p>"
    extra = measured.extra_bytes
    body = []
    for name, value in sorted(recorded.items(), key=lambda kv: (kv[1], kv[0])):
        saved = value - extra
        share = "" if value == 0 else f" ({100 * saved / value:.1f}% of it)"
        body.append(("", [escape(name), _num(value), f"{_num(saved)}{share}"]))
    table = _table(["baseline", "extra bytes (recorded)", "this plan saves"], body)
    return (
        f"<p>This plan: <strong>{_bytes(extra)}</strong> of extra traffic (replayed). The baselines' extra bytes "
        "are as the planner recorded them when it ran them (the plan holds no baseline steps to replay).</p>" + table
    )


def _provenance(plan: Plan) -> str:
    p = plan.provenance
    if not p:
        return "<p>The plan carries no provenance (it was built from steps, not by <code>cosma compile</code>).</p>"
    model = p.get("model") or {}
    comp = p.get("compile") or {}
    shapes = model.get("input_shapes") or {}
    rows = [
        ("model file", escape(str(model.get("file") or "unknown"))),
        ("model sha256", f"<code>{escape(str(model.get('sha256') or 'unknown'))}</code>"),
        ("format", escape(str(model.get("format") or "unknown"))),
        ("input shapes", escape(", ".join(f"{k}: {'x'.join(map(str, v))}" for k, v in shapes.items()) or "none")),
        ("load options", _options(p.get("load"))),
        ("method asked, resolved", escape(f"{comp.get('method', '?')}, {comp.get('resolved_method', '?')}")),
        ("budget", _bytes(comp["scratchpad_bytes"]) if _is_count(comp.get("scratchpad_bytes")) else "unknown"),
        ("planning options", _options(comp.get("options"))),
        ("cosma version", escape(str(p.get("cosma", "unknown")))),
    ]
    return _pairs(rows)


def _operators(rows: Sequence[OperatorRow]) -> str:
    header = ["#", "operator", "type", "step", "working set", "resident", "DMA in", "extra in", "DMA out", "extra out"]
    body = [
        (
            "extra" if r.dma_in_extra or r.dma_out_extra else "",
            [
                str(r.index),
                escape(r.op),
                escape(r.op_type),
                str(r.step),
                _num(r.working_set),
                _num(r.resident_bytes),
                _num(r.dma_in_bytes),
                _num(r.dma_in_extra),
                _num(r.dma_out_bytes),
                _num(r.dma_out_extra),
            ],
        )
        for r in rows
    ]
    note = (
        '<p class="note">Bytes. DMA in: loads issued after the previous operator ran and before this one; '
        "DMA out: stores issued after it ran and before the next. Rows with extra traffic are highlighted.</p>"
    )
    return note + _folded(f"{len(rows)} operators in run order", header, body)


def _traffic(plan: Plan) -> str:
    rows = traffic_by_tensor(plan)
    if not rows:
        return "<p>No off-chip traffic.</p>"
    moved = [r for r in rows if r.extra_bytes]
    lead = (
        f"<p>{len(rows)} tensors move between DRAM and the scratchpad; {len(moved)} of them cause extra traffic "
        f"({_bytes(sum(r.extra_bytes for r in rows))} in all).</p>"
    )
    header = ["tensor", "kind", "bytes", "loads", "stores", "residencies", "compulsory", "extra", "total"]
    body = [
        (
            "extra" if r.extra_bytes else "",
            [
                escape(r.tensor),
                r.kind,
                _num(r.bytes),
                _num(r.loads),
                _num(r.stores),
                _num(r.residencies),
                _num(r.compulsory_bytes),
                _num(r.extra_bytes),
                _num(r.total_bytes),
            ],
        )
        for r in rows
    ]
    return lead + _folded(f"all {len(rows)} tensors with traffic, most extra first", header, body)


def _steps(plan: Plan, tr: PlanTrace) -> str:
    moves = {x.step: x for x in tr.transfers}
    header = ["#", "operator index", "action", "tensor / operator", "address", "bytes", "traffic"]
    body: list[tuple[str, list[str]]] = []
    for i, step in enumerate(plan.steps):
        at = f"{tr.step_times[i]:g}"
        if isinstance(step, Run):
            places = ", ".join(f"{escape(t)} @ {o}" for t, o in step.outputs)
            body.append(("", [str(i), at, "run", escape(step.op), places, "", ""]))
            continue
        size = plan.graph.size(step.tensor)
        address = f"{step.offset}..{step.offset + size}" if isinstance(step, Load) else ""
        move = moves.get(i)
        traffic = "" if move is None else ("extra" if move.extra else "compulsory")
        action = "load" if isinstance(step, Load) else "store" if isinstance(step, Store) else "free"
        assert isinstance(step, Load | Store | Free)
        body.append(
            (
                "extra" if traffic == "extra" else "",
                [str(i), at, action, escape(step.tensor), address, _num(size), traffic],
            )
        )
    return _folded(f"{len(plan.steps)} steps (extra traffic highlighted)", header, body)


# ---------------------------------------------------------------------------- pictures
def _timeline_svg(plan: Plan, tr: PlanTrace) -> str:
    """The residencies as SVG rectangles in a zoomable group, each carrying what the tooltip shows."""
    horizon = max(tr.horizon, 1.0)
    top = tr.capacity * 1.04
    sx, sy = PLOT_WIDTH / horizon, TIMELINE_HEIGHT / top
    height = TIMELINE_HEIGHT + _TICK_ROOM
    total_w = PLOT_LEFT + PLOT_WIDTH + 20

    def y(address: float) -> float:
        return TIMELINE_HEIGHT - address * sy

    rects = []
    for r in tr.residencies:
        if r.bytes == 0 or r.end <= r.start:
            continue
        # Thin ones get at least a couple of pixels, inputs and outputs more, so the pointer can find them.
        least = 5.0 if r.kind in ("input", "output") else 2.0
        h = max(r.bytes * sy, least)
        top_y = y(r.offset + r.bytes) - (h - r.bytes * sy) / 2
        fill = "url(#cosma-hatch)" if r.reloaded else KIND_COLOURS.get(r.kind, "#cccccc")
        stroke = SPILL_COLOUR if r.reloaded else "#333333"
        title = f"{r.tensor}: {r.bytes:,} B at {r.offset}, steps {r.first_step} to {r.last_step}"
        rects.append(
            f'<rect x="{r.start * sx:.3f}" y="{top_y:.2f}" width="{(r.end - r.start) * sx:.3f}" height="{h:.2f}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="0.6" vector-effect="non-scaling-stroke" '
            f'data-tensor="{escape(r.tensor)}" data-kind="{r.kind}" data-op="{escape(r.placed_by)}" '
            f'data-step="{r.first_step}" data-end="{r.last_step}" data-bytes="{r.bytes}" data-offset="{r.offset}"'
            + (' data-reloaded="1"' if r.reloaded else "")
            + f"><title>{escape(title)}</title></rect>"
        )
    marks = []
    for r in tr.residencies:
        for x in r.stores:
            colour, width = (SPILL_COLOUR, 2.2) if x.extra else (STORE_COLOUR, 1.2)
            marks.append(
                f'<line x1="{x.time * sx:.3f}" x2="{x.time * sx:.3f}" y1="{y(r.offset):.2f}" '
                f'y2="{y(r.offset + r.bytes):.2f}" stroke="{colour}" stroke-width="{width}" '
                'vector-effect="non-scaling-stroke"/>'
            )
    static_ticks = _static_ticks(tr)
    return (
        f'<svg class="cosma-zoom" id="cosma-timeline" xmlns="http://www.w3.org/2000/svg" width="{total_w}" '
        f'height="{height}" viewBox="0 0 {total_w} {height}">'
        '<defs><pattern id="cosma-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#56B4E9"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{SPILL_COLOUR}" stroke-width="2"/></pattern>'
        f'<clipPath id="cosma-clip-t"><rect x="{PLOT_LEFT}" y="0" width="{PLOT_WIDTH}" height="{TIMELINE_HEIGHT}"/>'
        "</clipPath></defs>"
        + _address_axis(tr.capacity, top, TIMELINE_HEIGHT, "address")
        + _zoom_group("cosma-clip-t")
        + "".join(rects)
        + "".join(marks)
        + "</g></g>"
        + _capacity_line(y(tr.capacity), tr.capacity)
        + f'<rect x="{PLOT_LEFT}" y="0" width="{PLOT_WIDTH}" height="{TIMELINE_HEIGHT}" fill="none" stroke="#444"/>'
        + f'<g id="cosma-xticks" font-size="9">{static_ticks}</g>'
        + "</svg>"
    )


def _occupancy_svg(plan: Plan, tr: PlanTrace, rows: Sequence[OperatorRow], measured: ReplayResult) -> str:
    """Resident bytes after every step and each operator's working set, on the timeline's time axis."""
    horizon = max(tr.horizon, 1.0)
    top = max(tr.capacity, measured.peak_resident_bytes) * 1.04
    sx, sy = PLOT_WIDTH / horizon, OCCUPANCY_HEIGHT / top
    height = OCCUPANCY_HEIGHT + 30
    total_w = PLOT_LEFT + PLOT_WIDTH + 20

    def y(value: float) -> float:
        return OCCUPANCY_HEIGHT - value * sy

    occupancy = occupancy_after_steps(plan, tr)
    points: list[str] = []
    for step, (time, live) in enumerate(zip(tr.step_times, occupancy)):
        points.append(f"{time * sx:.2f},{y(live):.2f}")
        if isinstance(plan.steps[step], Run):  # held for the whole run
            points.append(f"{(time + 1) * sx:.2f},{y(live):.2f}")
    working = "".join(
        f'<rect x="{r.index * sx:.3f}" y="{y(r.working_set):.2f}" width="{sx:.3f}" height="{r.working_set * sy:.2f}" '
        f'fill="#d9d9d9"><title>{escape(r.op)}: working set {r.working_set:,} B, resident {r.resident_bytes:,} B'
        "</title></rect>"
        for r in rows
    )
    peak = measured.peak_resident_bytes
    return (
        f'<svg class="cosma-zoom" id="cosma-occupancy" xmlns="http://www.w3.org/2000/svg" width="{total_w}" '
        f'height="{height}" viewBox="0 0 {total_w} {height}">'
        f'<defs><clipPath id="cosma-clip-o"><rect x="{PLOT_LEFT}" y="0" width="{PLOT_WIDTH}" '
        f'height="{OCCUPANCY_HEIGHT}"/></clipPath></defs>'
        + _address_axis(max(tr.capacity, peak), top, OCCUPANCY_HEIGHT, "resident")
        + _zoom_group("cosma-clip-o")
        + working
        + f'<polyline fill="none" stroke="#1F6F9E" stroke-width="1.4" vector-effect="non-scaling-stroke" '
        f'points="{" ".join(points)}"/></g></g>'
        + _capacity_line(y(tr.capacity), tr.capacity)
        + f'<text x="{PLOT_LEFT + 6}" y="{OCCUPANCY_HEIGHT + 20}" fill="#1F6F9E">peak resident {_bytes(peak)}</text>'
        + f'<rect x="{PLOT_LEFT}" y="0" width="{PLOT_WIDTH}" height="{OCCUPANCY_HEIGHT}" fill="none" stroke="#444"/>'
        + "</svg>"
    )


def _address_axis(largest: int, top: float, height: int, label: str) -> str:
    """Four or five byte ticks at round values of one unit, on the left."""
    unit, name = next(
        ((u, n) for u, n in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")) if largest >= 2 * u), (1, "B")
    )
    span = largest / unit
    step = next(
        s for s in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000) if span / s <= 6
    )
    parts = []
    value = 0.0
    while value * unit <= top:
        yy = height - value * unit * height / top
        parts.append(
            f'<line x1="{PLOT_LEFT - 4}" x2="{PLOT_LEFT}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#444"/>'
            f'<text x="{PLOT_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{value:g} {name if value else ""}</text>'
        )
        value = round(value + step, 6)
    parts.append(f'<text transform="translate(12 {height / 2:.0f}) rotate(-90)" text-anchor="middle">{label}</text>')
    return "".join(parts)


def _zoom_group(clip: str) -> str:
    """The opening of the group the script scales and shifts along x (inside a clipped group)."""
    return f'<g clip-path="url(#{clip})" class="plotarea"><g class="zoomable" transform="translate({PLOT_LEFT} 0)">'


def _capacity_line(at: float, capacity: int) -> str:
    return (
        f'<line x1="{PLOT_LEFT}" x2="{PLOT_LEFT + PLOT_WIDTH}" y1="{at:.2f}" y2="{at:.2f}" stroke="{SPILL_COLOUR}" '
        'stroke-dasharray="6 4" stroke-width="1.2"/>'
        f'<text x="{PLOT_LEFT + PLOT_WIDTH - 4}" y="{at - 4 if at > 16 else at + 13:.2f}" text-anchor="end" '
        f'fill="{SPILL_COLOUR}">'
        f"capacity {format_size(capacity)}</text>"
    )


def _static_ticks(tr: PlanTrace) -> str:
    """The operator names the script would draw for the whole plan (shown as is without the script)."""
    horizon = max(tr.horizon, 1.0)
    px = PLOT_WIDTH / horizon
    k = next(m for m in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10**9) if m * px >= 11)
    return "".join(
        f'<text transform="translate({PLOT_LEFT + (i + 0.5) * px + 3:.1f} {TIMELINE_HEIGHT + 6}) rotate(-90)" '
        f'text-anchor="end">{escape(_op_label(i, op))}</text>'
        for i, (op, _) in enumerate(tr.run_times)
        if i % k == 0
    )


# ---------------------------------------------------------------------------- helpers
def _version(plan: Plan) -> str:
    return str(plan.provenance.get("cosma", "")) or "(version not recorded)"


def _options(values: Any) -> str:
    if not isinstance(values, Mapping) or not values:
        return "none recorded"
    return "<br>".join(f"<code>{escape(str(k))}</code> = {escape(json.dumps(v))}" for k, v in values.items())


def _pairs(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'


_NUM = ' class="num"'
_NUMERIC = {
    "bytes",
    "loads",
    "stores",
    "residencies",
    "compulsory",
    "extra",
    "total",
    "#",
    "operator index",
    "step",
    "working set",
    "resident",
    "DMA in",
    "extra in",
    "DMA out",
    "extra out",
    "extra bytes (recorded)",
    "this plan saves",
}


def _table(header: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]]) -> str:
    head = "".join(f"<th{_NUM if h in _NUMERIC else ''}>{h}</th>" for h in header)
    lines = []
    for css, cells in rows:
        tds = "".join(f"<td{_NUM if h in _NUMERIC else ''}>{c}</td>" for h, c in zip(header, cells))
        lines.append(f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _folded(caption: str, header: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]]) -> str:
    rows = list(rows)
    state = " open" if len(rows) <= OPEN_ROWS else ""
    return f"<details{state}><summary>{escape(caption)}</summary>{_table(header, rows)}</details>"


def _json_in_html(value: Any) -> str:
    # "</" inside a script element would end it early; the escaped form is the same JSON.
    return json.dumps(value).replace("</", "<\\/")


def _is_count(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _bytes(n: int) -> str:
    return f"{n:,} B ({format_size(n)})" if n >= 1024 else f"{n:,} B"


def _num(n: int) -> str:
    return f"{n:,}"
