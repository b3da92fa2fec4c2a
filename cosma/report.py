"""One self-contained HTML page about a plan: summary, timeline, traffic by tensor, step list.

The page needs nothing but itself: pictures are embedded as base64 PNG, the style sheet is
inline, and the long lists fold with ``<details>`` (no script). It opens in any browser and can
be mailed or attached to a review as one file.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> from cosma.methods import compile
    >>> g = Graph.build("g", [Tensor("x", 4, "input"), Tensor("y", 4, "output")],
    ...                 [Operator("relu", "Relu", ("x",), ("y",))])
    >>> page = render_report(compile(g, 8))
    >>> page.startswith("<!DOCTYPE html>") and "<script" not in page
    True
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from matplotlib.figure import Figure

from cosma.contract import Free, Load, Run, Store
from cosma.fileio import atomic_write_text
from cosma.plan import Plan
from cosma.units import format_size
from cosma.viz import figure_bytes, timeline_figure, trace, traffic_by_tensor, traffic_figure

#: Lists longer than this start folded.
OPEN_ROWS = 300

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 2px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th { font-weight: normal; color: #555; }
tr.extra td { background: #fdecee; }
.figure { overflow-x: auto; border: 1px solid #ddd; padding: 4px; }
.figure img { display: block; max-width: none; }
.note { color: #666; font-size: 0.85em; }
summary { cursor: pointer; margin: 0.5em 0; }
code { font-size: 0.95em; }
""".strip()


def render_report(plan: Plan, *, title: str | None = None) -> str:
    """The HTML page for ``plan`` as a string."""
    name = plan.graph.name or "plan"
    heading = title or f"{name}: plan for a scratchpad of {format_size(plan.accelerator.scratchpad_bytes)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(heading)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(heading)}</h1>",
        _summary(plan),
        "<h2>Scratchpad timeline</h2>",
        '<p class="note">Time runs across (one unit per operator), addresses up. Each rectangle is one tensor '
        "held at one address; colour is its kind. Hatched red-edged rectangles were reloaded (extra loads), "
        "red bars are spill stores, black bars output stores, the dashed line is the capacity. "
        "The strip on top shows off-chip bytes per operator boundary, extra traffic in red. "
        "Scroll sideways on long plans.</p>",
        _image(timeline_figure(plan), "scratchpad timeline"),
        "<h2>Traffic by tensor</h2>",
        _traffic(plan),
        "<h2>Steps</h2>",
        _steps(plan),
        '<p class="note">Written by cosma. The plan follows the <code>cosma.plan/1</code> contract; '
        "check it with <code>cosma check</code>.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_report(plan: Plan, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write :func:`render_report` to ``path`` atomically."""
    path = Path(path)
    atomic_write_text(path, render_report(plan, title=title))
    return path


# ---------------------------------------------------------------------------- sections
def _summary(plan: Plan) -> str:
    s, g = plan.summary, plan.graph
    bound = "unknown" if s.bound is None else _bytes(s.bound)
    gap = "unknown" if s.gap is None else f"{100 * s.gap:.1f}%"
    rows = [
        ("status", escape(s.status)),
        ("method", escape(s.method or "unknown")),
        ("off-chip traffic", _bytes(s.offchip_bytes)),
        ("compulsory traffic", _bytes(s.compulsory_bytes)),
        ("extra traffic", f"<strong>{_bytes(s.extra_bytes)}</strong>"),
        ("lower bound on extra traffic", bound),
        ("gap to the bound", gap),
        ("scratchpad", f"{_bytes(plan.accelerator.scratchpad_bytes)}, alignment {plan.accelerator.alignment} B"),
        ("M_R (largest working set)", _bytes(g.min_scratchpad)),
        ("peak resident", _bytes(s.peak_resident_bytes)),
        ("graph", f"{len(g.ops)} operators, {len(g.tensors)} tensors, {len(plan.steps)} steps"),
        ("solve time", f"{s.solve_seconds:.2f} s (total {s.total_seconds:.2f} s)"),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'


def _traffic(plan: Plan) -> str:
    rows = traffic_by_tensor(plan)
    if not rows:
        return "<p>No off-chip traffic.</p>"
    moved = [r for r in rows if r.extra_bytes]
    lead = (
        f"<p>{len(rows)} tensors move between DRAM and the scratchpad; {len(moved)} of them cause extra traffic "
        f"({_bytes(sum(r.extra_bytes for r in rows))} in all).</p>"
    )
    chart = _image(traffic_figure(plan), "traffic by tensor")
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
    return lead + chart + _folded(f"all {len(rows)} tensors with traffic, most extra first", header, body)


def _steps(plan: Plan) -> str:
    tr = trace(plan)
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


# ---------------------------------------------------------------------------- helpers
def _image(fig: Figure, alt: str) -> str:
    data = base64.b64encode(figure_bytes(fig, "png")).decode("ascii")
    width = int(fig.get_figwidth() * fig.dpi)
    return f'<div class="figure"><img width="{width}" alt="{escape(alt)}" src="data:image/png;base64,{data}"></div>'


def _folded(caption: str, header: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]]) -> str:
    rows = list(rows)
    numeric = {"bytes", "loads", "stores", "residencies", "compulsory", "extra", "total", "#", "operator index"}
    head = "".join(f'<th class="{"num" if h in numeric else ""}">{h}</th>' for h in header)
    lines = []
    for css, cells in rows:
        tds = "".join(f'<td class="{"num" if h in numeric else ""}">{c}</td>' for h, c in zip(header, cells))
        lines.append(f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>")
    state = " open" if len(rows) <= OPEN_ROWS else ""
    return (
        f"<details{state}><summary>{escape(caption)}</summary>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table></details>"
    )


def _bytes(n: int) -> str:
    return f"{n:,} B ({format_size(n)})" if n >= 1024 else f"{n:,} B"


def _num(n: int) -> str:
    return f"{n:,}"
