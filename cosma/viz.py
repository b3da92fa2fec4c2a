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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from cosma.contract import Free, Load, ReplayResult, Run, Store, replay
from cosma.errors import CosmaError, PlanInvalid
from cosma.fileio import atomic_write_bytes
from cosma.graph import DRAM_KINDS
from cosma.plan import Plan, Status
from cosma.units import format_size

TimeAxis = Literal["op", "step"]
#: The words a plan's ``summary.status`` may hold.
STATUSES: tuple[str, ...] = get_args(Status)

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
#: Widest default timeline, inches (2,400 pixels): a bigger plan is seen whole at this width, then zoomed with a window.
MAX_WIDTH = 24.0
_TICK_POINTS = 7.0
_TICK_PX = 11.0  # pixels between operator names under the axis (a 7-point line turned upright)
_TICK_CHARS = 28  # longest operator name under the axis
_MIN_ENDPOINT_PX = 5.0
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
    #: the steps that placed and ended it (``len(plan.steps)`` when it stays to the end), and the
    #: operator whose run placed it ("" when a load did): what a reader hovering over it asks
    first_step: int = 0
    last_step: int = 0
    placed_by: str = ""


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
    """Read a plan file and check it by replay.

    Raise :class:`PlanFileError` (exit 2) when the file cannot be read as JSON, and
    :class:`~cosma.errors.PlanInvalid` (exit 1, what ``cosma check`` says) when the plan breaks the
    contract or its summary claims what the replay does not give; each is one line.
    """
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise PlanFileError(f"cannot read plan {path}: {e.strerror or e}; give the path of a plan JSON") from None
    except ValueError as e:
        raise PlanFileError(f"{path} is not JSON ({e}); give a plan written by `cosma compile -o`") from None
    try:
        if not isinstance(data, dict):
            raise PlanInvalid(f"a plan is a JSON object, not {type(data).__name__}")
        replay(data)
        plan = Plan.from_dict(data)
        verify(plan)
        return plan
    except PlanInvalid as e:
        raise PlanInvalid(f"{path} is not a valid plan: {e}; `cosma check {path}` names the broken rule") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise PlanInvalid(f"{path} is not a valid plan: {e}; check it with `cosma check {path}`") from None


def verify(plan: Plan) -> ReplayResult:
    """Replay ``plan`` and return what the replay measures; every number a picture or report shows comes from it.

    Raise :class:`~cosma.errors.PlanInvalid` when a step breaks the contract, when the summary's traffic
    differs from the replay's, or when its status or bound cannot be true (a bound above the replayed
    extra traffic, a status that is not a word of the format): such a plan is refused, not drawn.
    """
    result = replay(plan.to_dict())
    s = plan.summary
    if not isinstance(s.status, str) or s.status not in STATUSES:
        raise PlanInvalid(f"summary status {s.status!r} is not one of {', '.join(STATUSES)}")
    if not isinstance(s.method, str):
        raise PlanInvalid(f"summary method {s.method!r} is not a string")
    if s.bound is not None and not (_is_count(s.bound) and s.bound <= result.extra_bytes):
        raise PlanInvalid(f"summary bound {s.bound!r} is not a byte count at most the replayed {result.extra_bytes}")
    return result


def _is_count(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def trace(plan: Plan, time_axis: TimeAxis = "op") -> PlanTrace:
    """Replay ``plan`` into residencies and transfers (see the module docstring for the time axis)."""
    if time_axis not in ("op", "step"):
        raise ValueError(f"time_axis must be 'op' or 'step', not {time_axis!r}")
    graph = plan.graph
    read = {t for o in graph.ops for t in o.inputs}
    loaded: set[str] = set()
    stored: set[str] = set()
    open_: dict[str, _Open] = {}
    closed: list[tuple[str, _Open, float, int]] = []  # tensor, how it was placed, end time, end step
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
            open_[t.name] = _Open(step.offset, now, not compulsory, [], index, "")
        elif isinstance(step, Store):
            t = graph.tensor(step.tensor)
            compulsory = t.kind == "output" and t.name not in stored
            stored.add(t.name)
            # In step time a store sits in the middle of its own unit so its mark does not hide an edge.
            at = now if time_axis == "op" else now + 0.5
            transfer = Transfer(index, at, t.name, "store", t.bytes, not compulsory)
            transfers.append(transfer)
            open_[t.name].stores.append(transfer)
        elif isinstance(step, Free):
            closed.append((step.tensor, open_.pop(step.tensor), now, index))
        elif isinstance(step, Run):
            run_times.append((step.op, now))
            declared = dict(graph.op(step.op).inplace)
            for name, offset in step.outputs:
                over = declared.get(name)
                if over in open_ and open_[over].offset == offset:  # written in place: the input ends here
                    closed.append((over, open_.pop(over), now, index))
            for name, offset in step.outputs:
                open_[name] = _Open(offset, now, False, [], index, step.op)
            runs += 1
    horizon = float(runs if time_axis == "op" else len(plan.steps))
    for name, placed in open_.items():
        closed.append((name, placed, horizon, len(plan.steps)))
    closed.sort(key=lambda c: (c[1].start, c[1].offset, c[0]))
    count: dict[str, int] = {}
    for c in closed:
        count[c[0]] = count.get(c[0], 0) + 1
    seen: dict[str, int] = {}
    residencies = []
    for name, placed, end, end_step in closed:
        seen[name] = seen.get(name, 0) + 1
        t = graph.tensor(name)
        residencies.append(
            Placement(
                name,
                t.kind,
                placed.offset,
                t.bytes,
                placed.start,
                end,
                placed.reloaded,
                seen[name] < count[name],
                tuple(placed.stores),
                placed.step,
                end_step,
                placed.by,
            )
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


@dataclass
class _Open:
    """A residency still open during :func:`trace`."""

    offset: int
    start: float
    reloaded: bool
    stores: list[Transfer]
    step: int
    by: str


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
    each time, extra traffic in red. The x axis names the operators: every one in a ``window``, an
    evenly spaced readable subset otherwise. The title gives the replayed traffic, the status, the
    bound and the gap.

    ``window=(start, end)`` zooms into part of the time axis. ``width`` (inches) defaults to about
    8 pixels per time unit, 10 to :data:`MAX_WIDTH` inches (a window grows up to 80 inches so that
    every operator's name fits). A residency thinner than a pixel is drawn as a line along its
    address so every tensor shows; inputs and outputs, few and often tiny, get a box at least
    :data:`_MIN_ENDPOINT_PX` pixels tall instead. Raise :class:`~cosma.errors.PlanInvalid` for a
    plan the replay refuses.
    """
    measured = verify(plan)
    tr = trace(plan, time_axis)
    lo, hi = (0.0, max(tr.horizon, 1.0)) if window is None else (float(window[0]), float(window[1]))
    if not hi > lo:
        raise ValueError(f"empty window [{lo}, {hi}]")
    span = hi - lo
    left, right = 1.0, 0.3  # inches
    if width is None:
        width = min(max(10.0, 0.08 * span + 1.6), MAX_WIDTH)
        if window is not None and time_axis == "op":
            width = min(max(width, span * _TICK_PX / _DPI + left + right), 80.0)
    capacity = tr.capacity
    top = capacity * 1.04

    fig = Figure(figsize=(width, height), dpi=_DPI)
    names = [(op, t) for op, t in tr.run_times if lo <= t < hi] if time_axis == "op" else []
    name_chars = max((len(_op_label(i, op)) for i, (op, _) in enumerate(tr.run_times)), default=0)
    bottom = 0.55 + (min(name_chars, _TICK_CHARS) * 0.5 * _TICK_POINTS / 72 + 0.1 if names else 0.1)
    head, legend_h, strip, gap = 0.5, 0.3, 1.1, 0.12
    main_h = height - bottom - head - legend_h - strip - gap
    plot_w = width - left - right
    ax = fig.add_axes((left / width, bottom / height, plot_w / width, main_h / height))
    ax_traffic = fig.add_axes(
        (left / width, (bottom + main_h + gap) / height, plot_w / width, strip / height),
        sharex=ax,
    )

    shown = [r for r in tr.residencies if r.bytes > 0 and r.end >= lo and r.start <= hi]
    px_per_byte = main_h * _DPI / top
    endpoint = [r for r in shown if r.kind in ("input", "output") and r.bytes * px_per_byte < _MIN_ENDPOINT_PX]
    thin = [r for r in shown if r.bytes * px_per_byte < 1.5 and r not in endpoint]
    boxes = [r for r in shown if r.bytes * px_per_byte >= 1.5 and r not in endpoint]
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
    if endpoint:
        # A 4 KiB output in a 6 MiB scratchpad is under a pixel tall; the reader looks for it first.
        least = _MIN_ENDPOINT_PX / px_per_byte
        ax.add_collection(
            PolyCollection(
                [_rect(r, least) for r in endpoint],
                facecolors=[KIND_COLOURS[r.kind] for r in endpoint],
                edgecolors="#222222",
                linewidths=0.8,
                zorder=2.5,
            )
        )
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
    ax.set_ylabel("scratchpad address")
    if names:
        _name_ticks(ax, tr.run_times, names, plot_w * _DPI / span)
        ax.set_xlabel("operator (run index and name)")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=max(4, int(width * 1.5))))
        ax.set_xlabel("step")

    if labels:
        _label(fig, ax, shown, lo, hi, top)

    _traffic_strip(ax_traffic, tr, lo, hi)
    lines = [title] if title is not None else _heading(plan, measured, tr, window, lo, hi)
    # Shrink the title rather than let the figure's edge cut it (a window's title is the longest).
    points = min(10.0, min((width - 0.4) * 72 / (0.6 * max(len(line), 1)) for line in lines))
    fig.text(0.2 / width, 1 - 0.1 / height, "\n".join(lines), ha="left", va="top", fontsize=points, linespacing=1.3)
    ax_traffic.legend(
        handles=_legend_handles(shown, spills, stores),
        loc="lower left",
        bbox_to_anchor=(0.0, 1.04),
        ncol=8,
        fontsize=8,
        frameon=False,
        borderaxespad=0.0,
    )
    return fig


def _heading(
    plan: Plan, measured: ReplayResult, tr: PlanTrace, window: tuple[float, float] | None, lo: float, hi: float
) -> list[str]:
    """The title: what was planned and how good the plan is, traffic as the replay measures it."""
    s = plan.summary
    first = (
        f"{plan.graph.name or 'plan'}: {len(tr.run_times)} operators, {len(plan.steps)} steps, "
        f"scratchpad {format_size(tr.capacity)}; {s.method or 'unknown method'}, {s.status}"
    )
    if window is not None:
        first += f"; showing {'operators' if tr.time_axis == 'op' else 'steps'} {lo:g} to {hi:g}"
    second = (
        f"extra traffic {format_size(measured.extra_bytes)} (compulsory {format_size(measured.compulsory_bytes)}), "
        + _bound_text(s.bound, measured.extra_bytes)
    )
    return [first, second]


def _bound_text(bound: int | None, extra: int) -> str:
    if bound is None:
        return "no lower bound proven"
    gap = 0.0 if extra == 0 else (extra - bound) / extra
    return f"lower bound {format_size(bound)}, gap {100 * gap:.1f}%"


def _op_label(index: int, op: str) -> str:
    return f"{index} {_labels(op, _TICK_CHARS)[-1]}"


def _name_ticks(ax: Any, run_times: Sequence[tuple[str, float]], names: Sequence[tuple[str, float]], px: float) -> None:
    """Operator names under the axis, every ``k``-th where all do not fit (k from 1, 2, 5, 10, 20, ...)."""
    index = {t: i for i, (_, t) in enumerate(run_times)}
    need = _TICK_PX / max(px, 1e-9)
    k = next(k for k in _steps_of(10**9) if k >= need)
    picked = [(op, t) for op, t in names if index[t] % k == 0]
    ax.set_xticks([t + 0.5 for _, t in picked], [_op_label(index[t], op) for op, t in picked])
    ax.tick_params(axis="x", labelrotation=90, labelsize=_TICK_POINTS)
    if k > 1:
        ax.set_xticks([t + 0.5 for _, t in names], minor=True)


def _steps_of(limit: int) -> Iterator[int]:
    for decade in itertools.count():
        for m in (1, 2, 5):
            k = m * 10**decade
            if k > limit:
                return
            yield k


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
def _rect(r: Placement, least: float = 0.0) -> Sequence[tuple[float, float]]:
    """The residency's corners; ``least`` bytes tall at least, grown about its middle."""
    grow = max(0.0, least - r.bytes) / 2
    low = max(0.0, r.offset - grow)  # at address 0 it grows upwards only
    high = low + max(float(r.bytes), least)
    return ((r.start, low), (r.end, low), (r.end, high), (r.start, high))


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


def _bytes_axis(axis: Any, nbins: int | Literal["auto"] = "auto", min_ticks: int = 2) -> None:
    def label(value: float, _: Any) -> str:
        lo, hi = axis.get_view_interval()
        unit, name = _unit(max(abs(lo), abs(hi)))
        return "0" if value == 0 else f"{round(value / unit, 3):g} {name}"

    axis.set_major_locator(_ByteLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10], min_n_ticks=min_ticks))
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
