"""Budget sweeps: extra off-chip traffic against scratchpad size, for one or more models.

A sweep plans every model at ``points`` scratchpad sizes evenly spaced from ``start`` to ``stop``
(sizes or budget names such as ``M_R`` and ``M_P``, resolved per model by
:func:`cosma.budgets.resolve_budget`), once per method. Each point is one
:func:`cosma.methods.compile`; the points are independent, so they run in parallel on one of
three backends of :mod:`cosma.runner` that give the same answers in the same order:

- ``serial``: in this process, one after another;
- ``process``: a local process pool. A task carries the model's path and load options, never
  the model: each worker loads a model once and keeps it for its later points;
- ``ray``: Ray tasks, on a local Ray instance or on a cluster given its address. The lowered
  graph (names and sizes, not the weights) is put in Ray's object store once per model, so
  the workers need neither the model file nor a shared file system.

A point whose scratchpad is below the model's ``M_R`` is kept with status ``below-M_R`` and
no traffic. Timings differ from run to run; everything else is a function of the inputs (for
methods whose result does not depend on where a time limit cuts them off).

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> g = Graph.build("chain", [Tensor("x", 4, "input"), Tensor("y", 8, "activation"),
    ...                           Tensor("z", 4, "output")],
    ...                 [Operator("a", "Relu", ("x",), ("y",)), Operator("b", "Relu", ("y",), ("z",))])
    >>> [(p.scratchpad_bytes, p.extra_bytes) for p in sweep([g], start="12", stop="16", points=3).points]
    [(12, 0), (14, 0), (16, 0)]
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosma.budgets import resolve_budget
from cosma.errors import BudgetError, OptionError
from cosma.fileio import atomic_write_text
from cosma.frontend import load_model
from cosma.graph import Graph, Operator, Tensor
from cosma.methods import METHODS
from cosma.methods import compile as compile_graph
from cosma.methods.baselines import minpeak_time_limit
from cosma.options import Options
from cosma.runner import BACKENDS, Backend, ray_session, run_tasks
from cosma.units import format_size
from cosma.viz import _bytes_axis, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BELOW_M_R = "below-M_R"


@dataclass(frozen=True)
class LoadOptions:
    """How a model file is lowered: the options of ``cosma compile`` that shape the graph."""

    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    element_bytes: int | None = None
    weights: bool = True
    fuse: bool = True
    fold_batchnorm: bool = True
    fold_if: bool = True
    inplace: bool = True

    def load(self, path: str | os.PathLike[str]) -> Graph:
        return load_model(
            path,
            input_shapes=dict(self.input_shapes),
            element_bytes=self.element_bytes,
            weights=self.weights,
            fuse=self.fuse,
            fold_batchnorm=self.fold_batchnorm,
            fold_if=self.fold_if,
            inplace=self.inplace,
        )


@dataclass(frozen=True)
class ModelSource:
    """Where a worker finds a model's graph: a file to load, or the graph's own data.

    ``key`` names the content (path, size and modification time plus the load options, or a
    digest of the graph data) so that a worker's cache never serves a stale graph.
    """

    label: str
    key: str
    path: str | None = None
    load: LoadOptions = LoadOptions()
    data: tuple[Any, ...] | None = None  # packed graph (see _pack), when there is no file


@dataclass(frozen=True)
class SweepTask:
    """One point: plan ``source``'s graph with ``method`` for ``scratchpad_bytes``."""

    index: int
    source: ModelSource
    method: str
    scratchpad_bytes: int
    alignment: int = 1
    allocator: str = "first-fit"
    time_limit: float = 60.0
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class SweepPoint:
    """The outcome of one point; traffic fields are None when the scratchpad is below ``M_R``."""

    model: str
    method: str
    scratchpad_bytes: int
    status: str
    extra_bytes: int | None
    offchip_bytes: int | None
    compulsory_bytes: int | None
    bound: int | None
    peak_resident_bytes: int | None
    solve_seconds: float
    total_seconds: float
    note: str = ""

    def outcome(self) -> tuple[Any, ...]:
        """Everything but the timings: what two backends must agree on."""
        return tuple(getattr(self, f.name) for f in fields(self) if not f.name.endswith("_seconds"))


@dataclass(frozen=True)
class ModelRange:
    """The scratchpad range a model was swept over, with its ``M_R`` for reference."""

    model: str
    start_bytes: int
    stop_bytes: int
    min_scratchpad: int


@dataclass(frozen=True)
class SweepResult:
    points: tuple[SweepPoint, ...]
    ranges: tuple[ModelRange, ...]
    methods: tuple[str, ...]
    backend: str

    def to_csv(self) -> str:
        buffer = io.StringIO()
        names = [f.name for f in fields(SweepPoint)]
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for p in self.points:
            writer.writerow(["" if getattr(p, n) is None else _cell(getattr(p, n)) for n in names])
        return buffer.getvalue()

    def save_csv(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        atomic_write_text(path, self.to_csv())
        return path

    def save_plot(self, path: str | os.PathLike[str]) -> Path:
        """:func:`sweep_figure` written atomically to a .png, .svg or .pdf file."""
        return save_figure(sweep_figure(self), path)


# ------------------------------------------------------------------------------- driver
def budget_points(start: int, stop: int, points: int) -> list[int]:
    """``points`` sizes evenly spaced over ``[start, stop]``, rounded to whole bytes, without repeats.

    >>> budget_points(100, 200, 5)
    [100, 125, 150, 175, 200]
    """
    if points < 1:
        raise OptionError(f"--points is {points}; ask for at least 1 point")
    if points == 1 or start == stop:
        return [start]
    return sorted({round(start + (stop - start) * i / (points - 1)) for i in range(points)})


def sweep(
    models: Sequence[str | os.PathLike[str] | Graph],
    *,
    start: str = "M_R",
    stop: str = "M_P",
    points: int = 10,
    methods: Sequence[str] = ("auto",),
    load: LoadOptions = LoadOptions(),
    alignment: int = 1,
    allocator: str = "first-fit",
    time_limit: float = 60.0,
    threads: int = 1,
    seed: int = 0,
    backend: Backend = "serial",
    jobs: int | None = None,
    ray_address: str | None = None,
    progress: Callable[[SweepPoint], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> SweepResult:
    """Sweep every model (an ONNX path or a :class:`Graph`) over ``points`` budgets per method.

    ``start`` and ``stop`` are sizes (``512KiB``) or budget names (``M_R``, ``M_P``...), resolved
    per model (``M_P`` from the min-peak search's share of ``time_limit``, as in :func:`cosma.compile`).
    ``jobs`` is the number of parallel workers (default: every CPU); ``ray_address`` names a Ray cluster (default or
    ``"local"``: start a local Ray instance of ``jobs`` CPUs, or use the one this process is
    already connected to). The process backend starts fresh worker processes, so a script that
    uses it needs the usual ``if __name__ == "__main__":`` guard. ``progress`` is called in this
    process as each point finishes, and ``on_start`` with the number of points once the budgets are
    resolved (a progress bar's total). The points come back ordered by model, method and size.
    """
    if backend not in BACKENDS:
        raise OptionError(f"unknown sweep backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not models:
        raise OptionError("no model to sweep; name one or more ONNX files")
    for m in methods:
        if m != "auto" and m not in METHODS:
            raise OptionError(f"unknown method {m!r}; choose one of: auto, {', '.join(METHODS)}")
    jobs = jobs or os.cpu_count() or 1

    sources: list[ModelSource] = []
    graphs: list[Graph] = []
    ranges: list[ModelRange] = []
    labels = _labels(models)
    for model, label in zip(models, labels):
        source = _source(model, label, load)
        graph = model if isinstance(model, Graph) else _graph(source)
        share = minpeak_time_limit(Options(time_limit=time_limit))  # the share compile and the methods use
        lo, hi = (resolve_budget(graph, text, alignment=alignment, time_limit=share) for text in (start, stop))
        if lo > hi:
            raise OptionError(f"{label}: --from is {lo} B, above --to at {hi} B; swap them")
        sources.append(source)
        graphs.append(graph)
        ranges.append(ModelRange(label, lo, hi, graph.min_scratchpad))

    tasks: list[SweepTask] = []
    for source, r in zip(sources, ranges):
        for method in methods:
            for size in budget_points(r.start_bytes, r.stop_bytes, points):
                tasks.append(
                    SweepTask(len(tasks), source, method, size, alignment, allocator, time_limit, threads, seed)
                )
    if on_start is not None:
        on_start(len(tasks))
    results = _run(tasks, {s.key: g for s, g in zip(sources, graphs)}, backend, jobs, ray_address, progress)
    return SweepResult(tuple(results), tuple(ranges), tuple(methods), backend)


def _labels(models: Sequence[str | os.PathLike[str] | Graph]) -> list[str]:
    """A model's name in the results: its file's stem (its path when stems repeat) or its graph name."""
    stems = [m.name if isinstance(m, Graph) else Path(m).stem for m in models]
    labels = [
        str(m) if not isinstance(m, Graph) and stems.count(s) > 1 else (s or f"model{i}")
        for i, (m, s) in enumerate(zip(models, stems))
    ]
    if len(set(labels)) != len(labels):
        labels = [f"{label}#{i}" for i, label in enumerate(labels)]
    return labels


def _source(model: str | os.PathLike[str] | Graph, label: str, load: LoadOptions) -> ModelSource:
    if isinstance(model, Graph):
        data = _pack(model)
        return ModelSource(label, "graph:" + hashlib.sha256(pickle.dumps(data)).hexdigest(), data=data)
    path = Path(model).resolve()
    try:
        stat = path.stat()
    except OSError as e:
        raise OptionError(f"cannot read model {model}: {e.strerror}; give the path of an ONNX file") from None
    return ModelSource(label, f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}:{load!r}", path=str(path), load=load)


# ------------------------------------------------------------------------------ workers
def run_point(task: SweepTask) -> SweepPoint:
    """Plan one point (in whichever process runs it) and keep what the results need."""
    return _solve(task, _graph(task.source))


def _solve(task: SweepTask, graph: Graph) -> SweepPoint:
    try:
        plan = compile_graph(
            graph,
            task.scratchpad_bytes,
            method=task.method,
            alignment=task.alignment,
            allocator=task.allocator,
            time_limit=task.time_limit,
            threads=task.threads,
            seed=task.seed,
            quiet=True,
        )
    except BudgetError as e:
        return SweepPoint(
            task.source.label,
            task.method,
            task.scratchpad_bytes,
            BELOW_M_R,
            None,
            None,
            None,
            None,
            None,
            0.0,
            0.0,
            f"operator {e.op} needs {e.working_set} B",
        )
    s = plan.summary
    return SweepPoint(
        task.source.label,
        task.method,
        task.scratchpad_bytes,
        s.status,
        s.extra_bytes,
        s.offchip_bytes,
        s.compulsory_bytes,
        s.bound,
        s.peak_resident_bytes,
        s.solve_seconds,
        s.total_seconds,
        s.method if task.method == "auto" else "",
    )


def _graph(source: ModelSource) -> Graph:
    """The source's graph, loaded at most once per process."""
    data, path = source.data, source.path  # locals, so that the lambdas see them narrowed
    if data is not None:
        return _GRAPHS.get(source.key, lambda: _unpack(data))
    assert path is not None
    return _GRAPHS.get(source.key, lambda: source.load.load(path))


class _GraphCache:
    """The last few graphs a process loaded, by content key (a worker's memory across its tasks)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._graphs: OrderedDict[str, Graph] = OrderedDict()

    def get(self, key: str, make: Callable[[], Graph]) -> Graph:
        if key in self._graphs:
            self._graphs.move_to_end(key)
            return self._graphs[key]
        graph = self._graphs[key] = make()
        while len(self._graphs) > self.size:
            self._graphs.popitem(last=False)
        return graph


#: Per-process cache; keys name content (see ModelSource), so it never changes a result.
_GRAPHS = _GraphCache(8)


def _pack(graph: Graph) -> tuple[Any, ...]:
    """A graph as plain picklable data (its metadata is a read-only mapping, which pickle refuses)."""
    return (graph.name, graph.tensors, graph.ops, dict(graph.metadata))


def _unpack(data: tuple[Any, ...]) -> Graph:
    name, tensors, ops, metadata = data
    return Graph.build(name, (Tensor(*_fields(t)) for t in tensors), (Operator(*_fields(o)) for o in ops), metadata)


def _fields(obj: Any) -> list[Any]:
    return [getattr(obj, f.name) for f in fields(obj)]


# ----------------------------------------------------------------------------- backends
def _run(
    tasks: Sequence[SweepTask],
    graphs: dict[str, Graph],
    backend: str,
    jobs: int,
    ray_address: str | None,
    progress: Callable[[SweepPoint], None] | None,
) -> list[SweepPoint]:
    """The points of ``tasks`` in task order, on ``backend`` (see :mod:`cosma.runner`)."""

    def on_result(_task: object, point: SweepPoint) -> None:
        if progress is not None:
            progress(point)

    if backend != "ray":
        return run_tasks(run_point, tasks, backend=backend, jobs=jobs, on_result=on_result)
    with ray_session(jobs, ray_address) as ray:
        # One copy of each lowered graph in the object store. A task gets its reference inside a
        # list, so Ray does not fetch it eagerly: a worker that has the graph cached never does.
        refs: dict[str, Any] = {}
        for task in tasks:
            if task.source.key not in refs:
                refs[task.source.key] = ray.put(_pack(graphs[task.source.key]))
        # The graph travels through the object store only, not again inside every task.
        remote_tasks = [(replace(t, source=replace(t.source, data=None)), [refs[t.source.key]]) for t in tasks]
        return run_tasks(
            _ray_point,
            remote_tasks,
            backend="ray",
            jobs=jobs,
            ray_address=ray_address,
            cpus_per_task=max(t.threads for t in tasks),
            on_result=on_result,
        )


def _ray_point(task_and_ref: tuple[SweepTask, list[Any]]) -> SweepPoint:
    task, graph_ref = task_and_ref

    def fetch() -> Graph:
        import ray

        return _unpack(ray.get(graph_ref[0]))

    return _solve(task, _GRAPHS.get(task.source.key, fetch))


# ---------------------------------------------------------------------------------- plot
def sweep_figure(result: SweepResult) -> Figure:
    """Extra traffic against scratchpad size: one panel per model, one curve per method.

    A filled marker is a proven optimum (status ``optimal``), a hollow one is not; points below
    ``M_R`` are left out and the model's ``M_R`` is the dotted line.
    """
    # matplotlib is imported here, not at the top, so that sweep workers start without it.
    from matplotlib.figure import Figure

    models = [r.model for r in result.ranges]
    cols = min(3, len(models))
    rows = -(-len(models) // cols)
    fig = Figure(figsize=(5.2 * cols, 3.8 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, r in enumerate(result.ranges):
        ax = axes[i // cols][i % cols]
        for method in result.methods:
            pts = [p for p in result.points if p.model == r.model and p.method == method and p.extra_bytes is not None]
            if not pts:
                continue
            xs, ys = [p.scratchpad_bytes for p in pts], [p.extra_bytes for p in pts]
            (line,) = ax.plot(xs, ys, label=method, linewidth=1.5)
            proved = [p.status == "optimal" for p in pts]
            ax.scatter(
                [x for x, ok in zip(xs, proved) if ok],
                [y for y, ok in zip(ys, proved) if ok],
                color=line.get_color(),
                zorder=3,
                s=22,
            )
            ax.scatter(
                [x for x, ok in zip(xs, proved) if not ok],
                [y for y, ok in zip(ys, proved) if not ok],
                facecolors="white",
                edgecolors=line.get_color(),
                zorder=3,
                s=22,
            )
        ax.axvline(r.min_scratchpad, color="#888888", linestyle=":", linewidth=1)
        # Named on the line itself: a dotted line at the left edge says nothing by itself.
        ax.annotate(
            f"M_R = {format_size(r.min_scratchpad)}",
            xy=(r.min_scratchpad, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=8,
            color="#555555",
        )
        ax.set_title(r.model, fontsize=10, loc="left")
        ax.set_xlabel("scratchpad size")
        ax.set_ylabel("extra off-chip traffic")
        _bytes_axis(ax.xaxis, nbins=6, min_ticks=4)
        _bytes_axis(ax.yaxis)
        xs_all = [p.scratchpad_bytes for p in result.points if p.model == r.model] + [r.min_scratchpad]
        pad = 0.03 * max(max(xs_all) - min(xs_all), 1)
        ax.set_xlim(min(xs_all) - pad, max(xs_all) + pad)
        # Headroom over the highest point keeps the M_R label off the curves.
        ys_all = [p.extra_bytes for p in result.points if p.model == r.model and p.extra_bytes is not None]
        ax.set_ylim(bottom=0, top=max(max(ys_all, default=0), 1) * 1.15)
        ax.grid(alpha=0.3)
        if len(result.methods) > 1 or i == 0:
            ax.legend(fontsize=8, title="filled: proven optimal", title_fontsize=7)
    for j in range(len(models), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    return fig


def _cell(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)
