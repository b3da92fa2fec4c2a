"""Pictures of a plan: the scratchpad over time, and where the off-chip traffic goes.

A plan's steps are replayed into *residencies*: one tensor held at one address range over one
interval of time, from the step that placed it (a load or the run of its producer) to the step
that freed it (or the end of the plan). Residencies of a valid plan never overlap in
(time, address) space, so drawn as rectangles they tile the scratchpad picture.

Time is the operator index by default (``time_axis="op"``): run ``i`` spans ``[i, i + 1)``, and
the loads, stores and frees between runs ``i - 1`` and ``i`` happen at the boundary ``i``. This
keeps a 1,000-operator plan 1,000 units wide however many transfers it makes. ``time_axis="step"``
gives every step its own unit instead.

Traffic is split the way the cost model splits it (``shared/docs/plan-format.md``): the first
load of an input or weight that some operator reads and the first store of an output are
compulsory; every other load (a *reload*) and store (a *spill*) is extra.

Every figure is a :class:`matplotlib.figure.Figure` built without pyplot, so it renders with the
Agg backend, holds no global state, and shows itself in a notebook.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> from cosma.methods import compile
    >>> g = Graph.build("g", [Tensor("x", 4, "input"), Tensor("y", 4, "output")],
    ...                 [Operator("relu", "Relu", ("x",), ("y",))])
    >>> [(r.tensor, r.offset, r.start, r.end) for r in trace(compile(g, 8)).residencies]
    [('x', 0, 0.0, 1.0), ('y', 4, 0.0, 1.0)]
"""

from __future__ import annotations

import io
import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from cosma.contract import Free, Load, Run, Store, replay
from cosma.errors import CosmaError, PlanInvalid
from cosma.fileio import atomic_write_bytes
from cosma.graph import DRAM_KINDS
from cosma.plan import Plan
from cosma.units import format_size

TimeAxis = Literal["op", "step"]

#: Fill colour of a residency by tensor kind (colour-blind-safe Okabe-Ito hues).
KIND_COLOURS: dict[str, str] = {
    "input": "#009E73",
    "weight": "#999999",
    "activation": "#56B4E9",
    "output": "#E69F00",
}
SPILL_COLOUR = "#D0021B"  # extra traffic, whether a spill store or a reload
STORE_COLOUR = "#222222"  # compulsory store of an output
CAPACITY_COLOUR = "#D0021B"
#: Residencies thinner than a pixel are drawn as lines of a darker shade of their kind's colour.
_THIN_COLOURS: dict[str, str] = {"input": "#00664A", "weight": "#555555", "activation": "#1F6F9E", "output": "#9A6A00"}

_DPI = 100
_LABEL_POINTS = 7.0
_MAX_LABELS = 1500  # text artists are slow to draw; the largest rectangles get labels first


class PlanFileError(CosmaError):
    """A plan file that cannot be read or breaks the plan contract."""


@dataclass(frozen=True)
class Transfer:
    """One load or store: ``step`` indexes ``plan.steps``; ``extra`` is False for compulsory traffic."""

    step: int
    time: float
    tensor: str
    direction: Literal["load", "store"]
    bytes: int
    extra: bool


@dataclass(frozen=True)
class Placement:
    """``tensor`` held at ``[offset, offset + bytes)`` over the time interval ``[start, end)``.

    ``reloaded``: placed by an extra load. ``evicted``: freed while a later residency of the same
    tensor follows (it was spilled or dropped and reloaded). ``stores``: stores made meanwhile.
    """

    tensor: str
    kind: str
    offset: int
    bytes: int
    start: float
    end: float
    reloaded: bool
    evicted: bool
    stores: tuple[Transfer, ...]


@dataclass(frozen=True)
class PlanTrace:
    """A plan replayed into residencies and transfers on one time axis ``[0, horizon]``."""

    residencies: tuple[Placement, ...]
    transfers: tuple[Transfer, ...]
    step_times: tuple[float, ...]  # time of every step of the plan
    run_times: tuple[tuple[str, float], ...]  # (operator, time) for every run
    horizon: float
    time_axis: TimeAxis
    capacity: int


@dataclass(frozen=True)
class TensorTraffic:
    """Off-chip traffic caused by one tensor; ``compulsory_bytes + extra_bytes`` is all of it."""

    tensor: str
    kind: str
    bytes: int
    loads: int
    stores: int
    compulsory_bytes: int
    extra_bytes: int
    residencies: int

    @property
    def total_bytes(self) -> int:
        return self.compulsory_bytes + self.extra_bytes


# --------------------------------------------------------------------------- analysis
def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read and validate a plan file; raise :class:`PlanFileError` (one line) when it is unusable."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise PlanFileError(f"cannot read plan {path}: {e.strerror or e}; give the path of a plan JSON") from None
    except ValueError as e:
        raise PlanFileError(f"{path} is not JSON ({e}); give a plan written by `cosma compile -o`") from None
    try:
        replay(data, check_summary=False)
        return Plan.from_dict(data)
    except (PlanInvalid, ValueError, KeyError, TypeError) as e:
        raise PlanFileError(f"{path} is not a valid plan: {e}; check it with `cosma check {path}`") from None


def trace(plan: Plan, time_axis: TimeAxis = "op") -> PlanTrace:
    """Replay ``plan`` into residencies and transfers (see the module docstring for the time axis)."""
    if time_axis not in ("op", "step"):
        raise ValueError(f"time_axis must be 'op' or 'step', not {time_axis!r}")
    graph = plan.graph
    read = {t for o in graph.ops for t in o.inputs}
    loaded: set[str] = set()
    stored: set[str] = set()
    open_: dict[str, tuple[int, float, bool, list[Transfer]]] = {}  # tensor -> offset, start, reloaded, stores
    closed: list[tuple[str, int, float, float, bool, tuple[Transfer, ...]]] = []
    transfers: list[Transfer] = []
    step_times: list[float] = []
    run_times: list[tuple[str, float]] = []
    runs = 0
    for index, step in enumerate(plan.steps):
        now = float(runs if time_axis == "op" else index)
        step_times.append(now)
        if isinstance(step, Load):
            t = graph.tensor(step.tensor)
            compulsory = t.kind in DRAM_KINDS and t.name in read and t.name not in loaded
            loaded.add(t.name)
            transfers.append(Transfer(index, now, t.name, "load", t.bytes, not compulsory))
            open_[t.name] = (step.offset, now, not compulsory, [])
        elif isinstance(step, Store):
            t = graph.tensor(step.tensor)
            compulsory = t.kind == "output" and t.name not in stored
            stored.add(t.name)
            # In step time a store sits in the middle of its own unit so its mark does not hide an edge.
            at = now if time_axis == "op" else now + 0.5
            transfer = Transfer(index, at, t.name, "store", t.bytes, not compulsory)
            transfers.append(transfer)
            open_[t.name][3].append(transfer)
        elif isinstance(step, Free):
            offset, start, reloaded, stores = open_.pop(step.tensor)
            closed.append((step.tensor, offset, start, now, reloaded, tuple(stores)))
        elif isinstance(step, Run):
            run_times.append((step.op, now))
            declared = dict(graph.op(step.op).inplace)
            for name, offset in step.outputs:
                over = declared.get(name)
                if over in open_ and open_[over][0] == offset:  # written in place: the input ends here
                    at, start, reloaded, stores = open_.pop(over)
                    closed.append((over, at, start, now, reloaded, tuple(stores)))
            for name, offset in step.outputs:
                open_[name] = (offset, now, False, [])
            runs += 1
    horizon = float(runs if time_axis == "op" else len(plan.steps))
    for name, (offset, start, reloaded, stores) in open_.items():
        closed.append((name, offset, start, horizon, reloaded, tuple(stores)))
    closed.sort(key=lambda c: (c[2], c[1], c[0]))
    count: dict[str, int] = {}
    for c in closed:
        count[c[0]] = count.get(c[0], 0) + 1
    seen: dict[str, int] = {}
    residencies = []
    for name, offset, start, end, reloaded, spills in closed:
        seen[name] = seen.get(name, 0) + 1
        t = graph.tensor(name)
        residencies.append(
            Placement(name, t.kind, offset, t.bytes, start, end, reloaded, seen[name] < count[name], spills)
        )
    return PlanTrace(
        tuple(residencies),
        tuple(transfers),
        tuple(step_times),
        tuple(run_times),
        horizon,
        time_axis,
        plan.accelerator.scratchpad_bytes,
    )


def traffic_by_tensor(plan: Plan) -> list[TensorTraffic]:
    """Traffic per tensor that moves at all, most extra traffic first (then most traffic, then name).

    The extra bytes add up to ``plan.summary.extra_bytes``.
    """
    tr = trace(plan)
    rows: dict[str, list[int]] = {}  # loads, stores, compulsory, extra
    for x in tr.transfers:
        row = rows.setdefault(x.tensor, [0, 0, 0, 0])
        row[0 if x.direction == "load" else 1] += 1
        row[3 if x.extra else 2] += x.bytes
    spans: dict[str, int] = {}
    for r in tr.residencies:
        spans[r.tensor] = spans.get(r.tensor, 0) + 1
    out = [
        TensorTraffic(
            name,
            plan.graph.tensor(name).kind,
            plan.graph.size(name),
            loads,
            stores,
            compulsory,
            extra,
            spans.get(name, 0),
        )
        for name, (loads, stores, compulsory, extra) in rows.items()
    ]
    out.sort(key=lambda r: (-r.extra_bytes, -r.total_bytes, r.tensor))
    return out


# ---------------------------------------------------------------------------- figures
def timeline_figure(
    plan: Plan,
    *,
    time_axis: TimeAxis = "op",
    window: tuple[float, float] | None = None,
    labels: bool = True,
    title: str | None = None,
    width: float | None = None,
    height: float = 9.0,
) -> Figure:
    """The scratchpad over the plan: time across, address up, one rectangle per residency.

    Fill colour is the tensor's kind; a residency placed by a reload is hatched and edged in red;
    a spill store is a red bar at its time across the tensor's range, a compulsory store a black
    one; the dashed line is the capacity. A tensor's name is written inside its rectangle where it
    fits (turned upright in tall narrow ones). The strip on top shows the off-chip bytes moved at
    each time, extra traffic in red. ``window=(start, end)`` zooms into part of the time axis;
    ``width`` (inches) defaults to about 8 pixels per time unit, 10 to 80 inches. A residency
    thinner than a pixel at that scale is drawn as a line along its address, so every tensor shows.
    """
    tr = trace(plan, time_axis)
    lo, hi = (0.0, max(tr.horizon, 1.0)) if window is None else (float(window[0]), float(window[1]))
    if not hi > lo:
        raise ValueError(f"empty window [{lo}, {hi}]")
    span = hi - lo
    if width is None:
        width = min(max(10.0, 0.08 * span + 1.6), 80.0)
    capacity = tr.capacity
    top = capacity * 1.04

    fig = Figure(figsize=(width, height), dpi=_DPI)
    named_ticks = time_axis == "op" and span <= 40
    left, right, head, strip, gap = 1.0, 0.3, 0.75, 1.1, 0.12  # inches
    bottom = 1.15 if named_ticks else 0.65
    main_h = height - bottom - head - strip - gap
    ax = fig.add_axes((left / width, bottom / height, (width - left - right) / width, main_h / height))
    ax_traffic = fig.add_axes(
        ((left) / width, (bottom + main_h + gap) / height, (width - left - right) / width, strip / height),
        sharex=ax,
    )

    shown = [r for r in tr.residencies if r.bytes > 0 and r.end >= lo and r.start <= hi]
    px_per_byte = main_h * _DPI / top
    thin = [r for r in shown if r.bytes * px_per_byte < 1.5]
    boxes = [r for r in shown if r.bytes * px_per_byte >= 1.5]
    plain = [r for r in boxes if not r.reloaded]
    reloads = [r for r in boxes if r.reloaded]
    for group, hatch, edge, lw in ((plain, None, "#333333", 0.3), (reloads, "////", SPILL_COLOUR, 0.8)):
        if not group:
            continue
        coll = PolyCollection(
            [_rect(r) for r in group],
            facecolors=[KIND_COLOURS.get(r.kind, "#cccccc") for r in group],
            edgecolors=edge,
            linewidths=lw,
            hatch=hatch,
        )
        ax.add_collection(coll)
    if thin:
        # Too thin to fill: a line one pixel wide at the tensor's address keeps it in sight.
        ax.add_collection(
            LineCollection(
                [((r.start, r.offset + r.bytes / 2), (r.end, r.offset + r.bytes / 2)) for r in thin],
                colors=[SPILL_COLOUR if r.reloaded else _THIN_COLOURS.get(r.kind, "#555555") for r in thin],
                linewidths=72 / _DPI,
                capstyle="butt",
            )
        )

    spills = [(x, r) for r in shown for x in r.stores if x.extra]
    stores = [(x, r) for r in shown for x in r.stores if not x.extra]
    for marks, colour, lw in ((stores, STORE_COLOUR, 1.2), (spills, SPILL_COLOUR, 2.2)):
        if marks:
            ax.add_collection(
                LineCollection(
                    [((x.time, r.offset), (x.time, r.offset + r.bytes)) for x, r in marks],
                    colors=colour,
                    linewidths=lw,
                    capstyle="butt",
                    zorder=3,
                )
            )

    ax.axhline(capacity, color=CAPACITY_COLOUR, linestyle="--", linewidth=1.2, zorder=4)
    ax.annotate(
        f"capacity {format_size(capacity)}",
        xy=(1.0, capacity),
        xycoords=("axes fraction", "data"),
        xytext=(-4, 3),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=8,
        color=CAPACITY_COLOUR,
    )
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, top)
    _bytes_axis(ax.yaxis)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=max(4, int(width * 1.5))))
    ax.set_ylabel("scratchpad address")
    ax.set_xlabel("operator (run index)" if time_axis == "op" else "step")
    if named_ticks:
        # Few operators: name them under the axis.
        names = [(op, t) for op, t in tr.run_times if lo <= t < hi]
        ax.set_xticks(
            [t + 0.5 for _, t in names], [_labels(op, 20)[0] for op, _ in names], rotation=60, ha="right", fontsize=7
        )

    if labels:
        _label(fig, ax, shown, lo, hi, top)

    _traffic_strip(ax_traffic, tr, lo, hi)
    s = plan.summary
    heading = (
        title
        if title is not None
        else (
            f"{plan.graph.name or 'plan'}: {len(tr.run_times)} operators, {len(plan.steps)} steps, "
            f"scratchpad {format_size(capacity)}, {s.method or 'unknown method'}: "
            f"extra traffic {format_size(s.extra_bytes)} (compulsory {format_size(s.compulsory_bytes)})"
            + ("" if window is None else f"; showing {'operators' if time_axis == 'op' else 'steps'} {lo:g} to {hi:g}")
        )
    )
    ax_traffic.set_title(heading, loc="left", fontsize=10)
    ax_traffic.legend(
        handles=_legend_handles(shown, spills, stores),
        loc="lower left",
        bbox_to_anchor=(0.0, 1.18),
        ncol=8,
        fontsize=8,
        frameon=False,
        borderaxespad=0.0,
    )
    return fig


def traffic_figure(plan: Plan, *, top: int = 25) -> Figure:
    """Bar chart of the ``top`` tensors by traffic: compulsory bytes and extra bytes stacked."""
    rows = traffic_by_tensor(plan)[:top]
    fig = Figure(figsize=(9, 0.28 * max(len(rows), 3) + 1.2), dpi=_DPI)
    ax = fig.add_axes((0.38, 0.8 / fig.get_figheight(), 0.58, 1 - 1.1 / fig.get_figheight()))
    y = list(range(len(rows)))
    ax.barh(y, [r.compulsory_bytes for r in rows], color="#7f7f7f", label="compulsory")
    ax.barh(
        y,
        [r.extra_bytes for r in rows],
        left=[r.compulsory_bytes for r in rows],
        color=SPILL_COLOUR,
        label="extra (spills and reloads)",
    )
    ax.set_yticks(y, [_labels(r.tensor, 48)[0] for r in rows], fontsize=7)
    ax.invert_yaxis()
    _bytes_axis(ax.xaxis)
    ax.set_xlabel("off-chip bytes")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"traffic by tensor (top {len(rows)})", loc="left", fontsize=10)
    return fig


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """The figure encoded as ``png``, ``svg`` or ``pdf``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=_DPI)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` atomically in the format its suffix names (.png, .svg or .pdf)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise PlanFileError(f"cannot write a picture to {path}: name a .png, .svg or .pdf file")
    atomic_write_bytes(path, figure_bytes(fig, fmt))
    return path


def save_timeline(plan: Plan, path: str | os.PathLike[str], **options: Any) -> Path:
    """:func:`timeline_figure` of ``plan`` written to ``path`` (what ``cosma show`` does)."""
    return save_figure(timeline_figure(plan, **options), path)


# ---------------------------------------------------------------------------- helpers
def _rect(r: Placement) -> Sequence[tuple[float, float]]:
    return ((r.start, r.offset), (r.end, r.offset), (r.end, r.offset + r.bytes), (r.start, r.offset + r.bytes))


def _shorten(name: str, limit: int) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def _labels(name: str, limit: int | None = None) -> list[str]:
    """Ever shorter labels for a tensor name, each made of components of it.

    ONNX exporters name tensors after module paths, ``/features/denseblock1/denselayer6/relu1/Relu_output_0``.
    The compact path drops the ``_output_0`` suffix, every component that the next one repeats
    (``conv``, ``conv.0``) and a last component that only repeats its module's name (``relu1/Relu``):
    ``features/denseblock1/denselayer6/relu1``. The shorter forms keep only the numbered
    components and the last one (``denseblock1/denselayer6/relu1``), then ever shorter tails of
    at least two components (``denselayer6/relu1``). A ``limit`` keeps the labels of at most
    that many characters (the last one cut if none is that short).
    """
    path = name.strip("/")
    path = path[: -len("_output_0")] if path.endswith("_output_0") else path
    parts = [p for p in path.split("/") if p]
    parts = [p for i, p in enumerate(parts) if i + 1 == len(parts) or not parts[i + 1].startswith(p)]
    if len(parts) >= 2 and parts[-2].lower().startswith(parts[-1].lower()):
        parts.pop()
    out = ["/".join(parts) or name]
    numbered = [p for p in parts[:-1] if any(c.isdigit() for c in p)] + parts[-1:]
    for k in range(len(numbered), 1, -1):
        label = "/".join(numbered[-k:])
        if label not in out:
            out.append(label)
    if limit is not None:
        out = [label for label in out if len(label) <= limit] or [_shorten(out[-1], limit)]
    return out


class _ByteLocator(MaxNLocator):
    """Ticks at round numbers of the unit (B, KiB, MiB, GiB) the axis range calls for."""

    def tick_values(self, vmin: float, vmax: float) -> Any:
        unit = _unit(max(abs(vmin), abs(vmax)))[0]
        return np.asarray(super().tick_values(vmin / unit, vmax / unit)) * unit


def _unit(value: float) -> tuple[int, str]:
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= 2 * unit:
            return unit, name
    return 1, "B"


def _bytes_axis(axis: Any, nbins: int | Literal["auto"] = "auto") -> None:
    def label(value: float, _: Any) -> str:
        lo, hi = axis.get_view_interval()
        unit, name = _unit(max(abs(lo), abs(hi)))
        return "0" if value == 0 else f"{round(value / unit, 3):g} {name}"

    axis.set_major_locator(_ByteLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(FuncFormatter(label))


def _label(fig: Figure, ax: Any, shown: Sequence[Placement], lo: float, hi: float, top: float) -> None:
    """Write each tensor's name inside its rectangle where it fits, largest rectangles first."""
    box = ax.get_position()
    px_w = box.width * fig.get_figwidth() * _DPI / (hi - lo)  # pixels per time unit
    px_h = box.height * fig.get_figheight() * _DPI / top  # pixels per byte
    char_w = _LABEL_POINTS * 0.62 * _DPI / 72  # DejaVu Sans averages ~0.6 em per character
    line_h = _LABEL_POINTS * 1.25 * _DPI / 72
    candidates = []
    for r in shown:
        start, end = max(r.start, lo), min(r.end, hi)
        w, h = (end - start) * px_w, r.bytes * px_h
        if min(w, h) >= line_h:
            candidates.append((w * h, r, start, end, w, h))
    candidates.sort(key=lambda c: -c[0])
    placed = 0
    for _, r, start, end, w, h in candidates:
        if placed >= _MAX_LABELS:
            break
        for text, rotation in itertools.product(_labels(r.tensor), (0, 90)):
            length = len(text) * char_w + 4
            fits = (length <= w and line_h <= h) if rotation == 0 else (length <= h and line_h <= w)
            if fits:
                # On hatching, a pale box behind the name keeps it readable.
                box = {"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.6} if r.reloaded else None
                ax.text(
                    (start + end) / 2,
                    r.offset + r.bytes / 2,
                    text,
                    ha="center",
                    va="center",
                    rotation=rotation,
                    fontsize=_LABEL_POINTS,
                    clip_on=True,
                    zorder=5,
                    bbox=box,
                )
                placed += 1
                break


def _traffic_strip(ax: Any, tr: PlanTrace, lo: float, hi: float) -> None:
    """Off-chip bytes moved at each time: compulsory in grey, extra in red on top."""
    compulsory: dict[float, int] = {}
    extra: dict[float, int] = {}
    for x in tr.transfers:
        if lo <= x.time <= hi:
            target = extra if x.extra else compulsory
            target[x.time] = target.get(x.time, 0) + x.bytes
    times = sorted(set(compulsory) | set(extra))
    base = [compulsory.get(t, 0) for t in times]
    width = 0.9 if tr.time_axis == "step" else 0.8
    ax.bar(times, base, width=width, color="#7f7f7f", linewidth=0)
    ax.bar(times, [extra.get(t, 0) for t in times], bottom=base, width=width, color=SPILL_COLOUR, linewidth=0)
    _bytes_axis(ax.yaxis, nbins=3)
    ax.set_ylabel("off-chip", fontsize=8)
    ax.tick_params(labelbottom=False, labelsize=7)
    ax.set_xlim(lo, hi)


def _legend_handles(shown: Sequence[Placement], spills: Sequence[Any], stores: Sequence[Any]) -> list[Any]:
    kinds = [k for k in KIND_COLOURS if any(r.kind == k for r in shown)]
    handles: list[Any] = [Patch(facecolor=KIND_COLOURS[k], edgecolor="#333333", label=k) for k in kinds]
    if any(r.reloaded for r in shown):
        handles.append(Patch(facecolor="white", edgecolor=SPILL_COLOUR, hatch="////", label="reloaded (extra load)"))
    if spills:
        handles.append(Line2D([], [], color=SPILL_COLOUR, linewidth=2.2, label="spill store (extra)"))
    if stores:
        handles.append(Line2D([], [], color=STORE_COLOUR, linewidth=1.2, label="output store"))
    handles.append(Line2D([], [], color=CAPACITY_COLOUR, linestyle="--", label="capacity"))
    return handles
