"""``cosma bench``: the COSMA evaluation protocol on the model zoo, and the regression guard.

The protocol (:data:`PROTOCOL_METHODS`, :data:`GROUP_METHODS`, :data:`PROTOCOL_BUDGETS`,
:data:`WEIGHT_VARIANTS`): every zoo model, loaded with 1-byte elements with its weights in the
scratchpad and without them, is planned at its budgets ``M_R``, ``M_H`` and ``M_P``
(:mod:`cosma.budgets`) by every method of the protocol, and by the methods of its group (``dc`` on
the NAS-generated and randomly wired graphs). One run is one :func:`cosma.compile`; its plan is replayed by
:func:`cosma.contract.replay`, and the run becomes one :class:`BenchRow`: extra bytes, status,
bound, gap, solve and total seconds, validity. A run that raises becomes an error row, and a
method the registry does not have yet becomes a ``missing`` row: nothing is dropped silently.

The phases of :func:`run_bench`: read the zoo, resolve the budgets of every (model, weights)
variant, plan every instance with every method (a process pool when ``jobs > 1``; budgets that
coincide in bytes are planned once), collect the rows in protocol order.

The regression guard compares rows with ``solvers/reference.json``
(:func:`compare_to_reference`): for each instance (model, weights, budget) the reference keeps
the best known extra bytes, the method that found it, the highest proven lower bound, and each
method's own best. :func:`merge_reference` folds a run into it and never makes a value worse
unless forced.

Example:
    >>> row = BenchRow("m", "human", True, "M_R", 100, "default+belady", "default+belady", "heuristic",
    ...                True, 40, 10, None, None, 0.1, 0.1)
    >>> ref = merge_reference(Reference(), [row]).reference
    >>> ref.entries["m/M_R"].best_extra_bytes, compare_to_reference([row], ref)
    (40, [])
    >>> worse = dataclasses.replace(row, extra_bytes=50)
    >>> [v.kind for v in compare_to_reference([worse], ref)]
    ['worse']
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.util
import io
import json
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cosma.budgets import BUDGET_NAMES, GraphBudgets, budgets_of_schedule
from cosma.errors import OptionError
from cosma.fileio import atomic_write_text
from cosma.graph import Graph
from cosma.methods.baselines import BASELINES
from cosma.plan import Plan
from cosma.schedule import min_peak_order

# --------------------------------------------------------------------------- protocol
#: The methods of the protocol, in table order: change the protocol here and only here.
#: ``fixed-order`` is the exact solver on the minimum-peak order; ``auto`` is what ``cosma compile``
#: chooses (the joint formulation, or divide and conquer on large graphs).
PROTOCOL_METHODS: tuple[str, ...] = (*BASELINES, "fixed-order", "auto")
#: Methods the protocol adds for the models of one zoo group, after :data:`PROTOCOL_METHODS`: divide and
#: conquer by name on the NAS-generated and randomly wired graphs it was built for (``auto`` picks it there
#: too on large graphs; the run is then shared, see :func:`shared_task_method`).
GROUP_METHODS: Mapping[str, tuple[str, ...]] = MappingProxyType({"nas": ("dc",), "random": ("dc",)})
#: Methods whose plans count as COSMA's in the headline (all others present count as baselines).
COSMA_METHODS: tuple[str, ...] = ("fixed-order", "joint", "dc", "auto")
#: Exact methods: ``auto`` is taken as available only once one of them is registered, since before
#: that :func:`cosma.compile` would answer ``auto`` with a baseline.
EXACT_METHODS: tuple[str, ...] = ("joint", "dc")
#: Methods (as a plan's summary names them) whose proven bound holds for every plan of the instance.
#: A ``fixed-order`` bound holds only for plans of its order, so it proves nothing about the instance.
GLOBAL_BOUND_METHODS: tuple[str, ...] = ("joint", "dc")
PROTOCOL_BUDGETS: tuple[str, ...] = BUDGET_NAMES
#: Weights in the scratchpad (True) and activation-only (False).
WEIGHT_VARIANTS: tuple[bool, ...] = (True, False)
#: Bytes per element of every tensor (an int8 accelerator, as in the COSMA evaluation).
ELEMENT_BYTES = 1
#: Zoo groups the protocol runs by default, and the groups the headline averages over.
PROTOCOL_GROUPS: tuple[str, ...] = ("human", "nas", "random", "everyday")
HEADLINE_GROUPS: tuple[str, ...] = ("human", "nas")
#: The COSMA paper's average reductions at M_R against the best baseline, for comparison.
PAPER_REDUCTION = {"human": 0.84, "nas": 0.85}
#: Seconds per solve in a default run (a full run then fits in an hour on two cores).
DEFAULT_TIME_LIMIT = 30.0
#: Seconds for each minimum-peak search behind M_P; fixed, so that a run's budgets do not depend
#: on the per-solve time limit.
BUDGET_TIME_LIMIT = 10.0
#: Models drawn in the plots when they are part of the run (graphs whose three budgets differ).
PLOT_MODELS: tuple[str, ...] = ("densenet121", "vit_b_16", "nasnet_a", "pnasnet5", "r2plus1d_18", "transformer")

MISSING = "missing"  # the method is not registered (yet)
ERROR = "error"  # the run raised
INVALID = "invalid"  # the plan failed the replay

Planner = Callable[..., Plan]  # (graph, accelerator, options) -> Plan, as in cosma.methods.METHODS


def repo_root() -> Path:
    """The source tree around the installed ``cosma`` package (holding ``models/``, ``docs/``, ``solvers/``)."""
    return Path(__file__).resolve().parents[1]


def method_available(method: str) -> bool:
    """Whether ``method`` can run now (``auto`` needs an exact method behind it)."""
    from cosma.methods import METHODS

    if method == "auto":
        return "auto" in METHODS or any(m in METHODS for m in EXACT_METHODS)
    return method in METHODS


def variant_label(weights: bool) -> str:
    return "weights" if weights else "no-weights"


def instance_key(model: str, weights: bool, budget: str) -> str:
    """``resnet50/M_R`` (weights in the scratchpad) or ``resnet50/M_R/no-weights``."""
    return f"{model}/{budget}" + ("" if weights else "/no-weights")


# ------------------------------------------------------------------------------- zoo
@dataclass(frozen=True)
class ZooModel:
    """One zoo model as the bench needs it: name, display name, group, file."""

    name: str
    display: str
    group: str
    path: str


def load_zoo(zoo_dir: str | os.PathLike[str] | None = None) -> dict[str, ZooModel]:
    """The zoo registry (``zoo.py`` in ``zoo_dir``, default ``models/`` of the source tree), by name."""
    directory = Path(zoo_dir) if zoo_dir is not None else repo_root() / "models"
    registry = directory / "zoo.py"
    if not registry.is_file():
        raise OptionError(f"no zoo registry at {registry}; give --zoo-dir the models/ folder of a cosma checkout")
    spec = importlib.util.spec_from_file_location("cosma_bench_zoo", registry)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        return {
            e.name: ZooModel(e.name, e.display, e.group, str(directory.resolve() / e.file)) for e in module.ZOO.values()
        }
    except Exception as e:  # a broken registry is bad input, named in one line
        raise OptionError(f"cannot read the zoo registry {registry}: {type(e).__name__}: {e}") from None


def select_models(zoo: Mapping[str, ZooModel], names: Sequence[str] = ()) -> list[ZooModel]:
    """The named models (zoo order), or every model of :data:`PROTOCOL_GROUPS` when none are named.

    A name may also be a group (``human``, ``nas``...).
    """
    if not names:
        return [m for m in zoo.values() if m.group in PROTOCOL_GROUPS]
    groups = {m.group for m in zoo.values()}
    unknown = [n for n in names if n not in zoo and n not in groups]
    if unknown:
        raise OptionError(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(zoo)} "
            f"or a group ({', '.join(sorted(groups))})"
        )
    wanted = set(names)
    return [m for m in zoo.values() if m.name in wanted or m.group in wanted]


# ----------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class BenchConfig:
    """What one bench run covers and how long each solve may take.

    A model of group ``g`` runs ``methods`` and then ``group_methods[g]`` (:meth:`methods_for`); the
    protocol's :data:`GROUP_METHODS` by default, none when the methods are named explicitly
    (:func:`bench_command` clears it for ``--methods``).
    """

    models: tuple[str, ...] = ()  # names or groups; empty: the protocol's groups
    methods: tuple[str, ...] = PROTOCOL_METHODS
    group_methods: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(GROUP_METHODS), hash=False)
    budgets: tuple[str, ...] = PROTOCOL_BUDGETS
    weights: tuple[bool, ...] = WEIGHT_VARIANTS
    time_limit: float = DEFAULT_TIME_LIMIT
    budget_time_limit: float = BUDGET_TIME_LIMIT
    jobs: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [b for b in self.budgets if b not in BUDGET_NAMES]
        if bad or not self.budgets:
            raise OptionError(f"unknown budget(s) {', '.join(bad) or '(none)'}; choose from {', '.join(BUDGET_NAMES)}")
        if not self.methods:
            raise OptionError("no method to run; name one or more (see `cosma methods`)")
        if not self.weights:
            raise OptionError("no weights variant to run; choose with weights, without, or both")
        if self.jobs < 1:
            raise OptionError(f"--jobs is {self.jobs}; give at least 1")

    def methods_for(self, group: str) -> tuple[str, ...]:
        """The methods a model of ``group`` runs, in table order."""
        return tuple(dict.fromkeys((*self.methods, *self.group_methods.get(group, ()))))

    @property
    def all_methods(self) -> tuple[str, ...]:
        """Every method some group runs, in table order."""
        return tuple(dict.fromkeys((*self.methods, *(m for ms in self.group_methods.values() for m in ms))))


@dataclass(frozen=True)
class BenchTask:
    """One solve: ``model`` (its ``weights`` variant) with ``method`` for ``scratchpad_bytes``."""

    index: int
    model: ZooModel
    weights: bool
    scratchpad_bytes: int
    method: str
    time_limit: float
    seed: int = 0
    order: tuple[str, ...] = ()  # fixed-order: the variant's minimum-peak order


@dataclass(frozen=True)
class BenchRow:
    """One run of the protocol. ``status`` is the plan's, or ``missing``, ``error`` or ``invalid``."""

    model: str
    group: str
    weights: bool
    budget: str
    scratchpad_bytes: int
    method: str
    resolved_method: str  # what ran: for ``auto`` the method it chose
    status: str
    valid: bool | None  # None: no plan
    extra_bytes: int | None
    compulsory_bytes: int | None
    bound: int | None
    gap: float | None
    solve_seconds: float
    total_seconds: float
    message: str = ""

    @property
    def key(self) -> str:
        return instance_key(self.model, self.weights, self.budget)

    @property
    def planned(self) -> bool:
        """A valid plan with its traffic."""
        return self.valid is True and self.extra_bytes is not None

    @property
    def instance_bound(self) -> int | None:
        """The run's bound if it holds for every plan of the instance (see :data:`GLOBAL_BOUND_METHODS`)."""
        return self.bound if self.planned and _base_method(self.resolved_method) in GLOBAL_BOUND_METHODS else None


def _base_method(name: str) -> str:
    return name.split("/", 1)[0]


@dataclass(frozen=True)
class ModelBudgets:
    """The budgets of one (model, weights) variant, or why they could not be computed.

    ``order`` is the minimum-peak order whose peak is ``M_P``: the order fixed-order runs on;
    ``auto_method`` the method ``auto`` stands for on this graph under the protocol's options.
    """

    model: str
    weights: bool
    budgets: GraphBudgets | None
    ops: int = 0
    error: str = ""
    order: tuple[str, ...] = ()
    auto_method: str = ""


@dataclass(frozen=True)
class BenchResult:
    config: BenchConfig
    models: tuple[ZooModel, ...]
    budgets: tuple[ModelBudgets, ...]
    rows: tuple[BenchRow, ...]
    missing_methods: tuple[str, ...]
    machine: Mapping[str, str]
    command: str
    started: str
    seconds: float
    load_average: tuple[float, float]  # 1-minute load average at the start and at the end

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods with rows in this run (those of some model's group), in table order."""
        ran = {r.method for r in self.rows}
        return tuple(m for m in self.config.all_methods if m in ran)


def _load_graph(path: str, weights: bool) -> Graph:
    return _cached_graph(path, os.stat(path).st_mtime_ns, weights)


@functools.lru_cache(maxsize=4)
def _cached_graph(path: str, mtime_ns: int, weights: bool) -> Graph:
    # a worker's memory across its tasks; the key names the file's content, so it never changes a result
    from cosma.frontend import load_onnx

    return load_onnx(path, element_bytes=ELEMENT_BYTES, weights=weights)


def _budgets_job(
    model: ZooModel, weights: bool, time_limit: float, solve_time_limit: float = DEFAULT_TIME_LIMIT, seed: int = 0
) -> ModelBudgets:
    from cosma.methods import auto_method

    try:
        graph = _load_graph(model.path, weights)
        schedule = min_peak_order(graph, time_limit=time_limit)
        return ModelBudgets(
            model.name,
            weights,
            budgets_of_schedule(graph, schedule),
            len(graph.ops),
            order=tuple(schedule.order),
            auto_method=auto_method(graph, solve_options(solve_time_limit, seed)),
        )
    except Exception as e:  # recorded, not fatal: the model's rows become error rows
        return ModelBudgets(model.name, weights, None, error=_one_line(e))


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300]


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back for one task (the row minus what the driver knows)."""

    resolved_method: str
    status: str
    valid: bool | None
    extra_bytes: int | None
    compulsory_bytes: int | None
    bound: int | None
    gap: float | None
    solve_seconds: float
    total_seconds: float
    message: str = ""


def solve_options(time_limit: float, seed: int) -> Any:
    """The :class:`cosma.methods.Options` of every protocol run (before :func:`protocol_options`)."""
    from cosma.options import Options

    return Options(time_limit=time_limit, threads=1, seed=seed, quiet=True)


def shared_task_method(
    method: str, methods: Sequence[str], budgets: ModelBudgets, planners: Mapping[str, Planner] = MappingProxyType({})
) -> str:
    """The method whose run also stands for ``method``'s on this variant (usually ``method`` itself).

    ``dc`` shares ``auto``'s run where ``auto`` resolves to ``dc``: :func:`protocol_options` leaves both
    alone, so the two are one and the same computation, and a time-limited search run twice would only
    differ by the machine's load. Substituted planners (tests) never share.
    """
    if (
        method == "dc"
        and "auto" in methods
        and budgets.auto_method == "dc"
        and "dc" not in planners
        and "auto" not in planners
    ):
        return "auto"
    return method


def protocol_options(task: BenchTask, graph: Graph, accelerator: Any, options: Any) -> Any:
    """The protocol's per-method settings: ``fixed-order`` runs on the minimum-peak order.

    The order is the task's (the one whose peak is the variant's ``M_P``, found once per variant, so
    every budget runs the same order), else a fresh search as the ``minpeak`` baselines make it
    (:func:`cosma.methods.baselines.baseline_order`), whose time then counts in the run's total.
    """
    if task.method != "fixed-order":
        return options
    from cosma.methods.baselines import baseline_order

    order = task.order or tuple(baseline_order(graph, accelerator, "minpeak", options).order)
    return dataclasses.replace(options, order=order)


def run_task(task: BenchTask, planner: Planner | None = None) -> Outcome:
    """Plan one task and replay its plan; never raises (a failure is an ``error`` outcome).

    ``planner`` replaces the registry's method of that name (the regression test substitutes a
    deliberately worse one this way).
    """
    from cosma.contract import replay
    from cosma.errors import PlanInvalid
    from cosma.hardware import Accelerator
    from cosma.methods import compile as compile_graph

    started = time.perf_counter()
    try:
        graph = _load_graph(task.model.path, task.weights)
        started = time.perf_counter()  # total: the protocol's order search and the method, not the file's loading
        options = protocol_options(
            task, graph, Accelerator(task.scratchpad_bytes), solve_options(task.time_limit, task.seed)
        )
        if planner is None:
            plan = compile_graph(graph, task.scratchpad_bytes, method=task.method, options=options)
        else:
            plan = planner(graph, Accelerator(task.scratchpad_bytes), options)
        plan = plan.with_summary(total_seconds=time.perf_counter() - started)
    except Exception as e:  # recorded as an error row: one failing run must not end the bench
        return Outcome(
            task.method, ERROR, None, None, None, None, None, 0.0, time.perf_counter() - started, _one_line(e)
        )
    s = plan.summary
    try:
        checked = replay(plan.to_dict())
        valid, message = True, ""
        if plan.accelerator.scratchpad_bytes != task.scratchpad_bytes:
            valid, message = False, f"plan is for {plan.accelerator.scratchpad_bytes} B, not {task.scratchpad_bytes} B"
        elif checked.extra_bytes != s.extra_bytes:
            valid, message = False, f"replay gives {checked.extra_bytes} extra bytes, the plan claims {s.extra_bytes}"
    except PlanInvalid as e:
        valid, message = False, f"replay: {e}"
    return Outcome(
        s.method or task.method,
        s.status if valid else INVALID,
        valid,
        s.extra_bytes,
        s.compulsory_bytes,
        s.bound,
        s.gap,
        s.solve_seconds,
        s.total_seconds,
        message,
    )


def run_bench(
    config: BenchConfig,
    zoo: Mapping[str, ZooModel],
    *,
    command: str = "",
    progress: Callable[[str], None] | None = None,
    planners: Mapping[str, Planner] | None = None,
) -> BenchResult:
    """Run the protocol over ``config``'s selection of ``zoo`` (phases in the module docstring).

    ``planners`` substitutes methods by name (tests only; it forces a serial run, since a
    substitute need not be picklable). ``progress`` receives one line per finished solve.
    """
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    planners = dict(planners or {})
    models = select_models(zoo, config.models)
    if not models:
        raise OptionError("the selection holds no model; name zoo models or groups with --models")
    used = dict.fromkeys(method for m in models for method in config.methods_for(m.group))
    missing = tuple(m for m in used if m not in planners and not method_available(m))
    jobs = 1 if planners else config.jobs

    variants = [(m, w) for m in models for w in config.weights]
    budget_list = _map(
        jobs,
        _budgets_job,
        [(m, w, config.budget_time_limit, config.time_limit, config.seed) for m, w in variants],
        progress=None,
    )
    budgets = {(b.model, b.weights): b for b in budget_list}

    # One task per distinct (model, weights, bytes, method): budgets that coincide are solved once, and a
    # method that would repeat another's computation shares its task (shared_task_method).
    tasks: dict[tuple[str, bool, int, str], BenchTask] = {}
    for m, w in variants:
        mb = budgets[(m.name, w)]
        if mb.budgets is None:
            continue
        methods = config.methods_for(m.group)
        for name in config.budgets:
            size = mb.budgets.get(name)
            for method in methods:
                key = (m.name, w, size, method)
                if method in missing or key in tasks:
                    continue
                runs = shared_task_method(method, [x for x in methods if x not in missing], mb, planners)
                if runs != method and (m.name, w, size, runs) in tasks:
                    tasks[key] = tasks[(m.name, w, size, runs)]
                    continue
                order = mb.order if method == "fixed-order" else ()
                tasks[key] = BenchTask(len(tasks), m, w, size, method, config.time_limit, config.seed, order)

    def report(task: BenchTask, outcome: Outcome) -> None:
        if progress is not None:
            extra = "-" if outcome.extra_bytes is None else f"{outcome.extra_bytes} B"
            progress(
                f"{task.model.name} {variant_label(task.weights)} {task.scratchpad_bytes} B {task.method}: "
                f"extra {extra}, {outcome.status}, {outcome.total_seconds:.1f} s"
            )

    ordered = sorted({t.index: t for t in tasks.values()}.values(), key=_cost_estimate(budgets))
    if planners:
        outcomes = {}
        for t in ordered:
            outcomes[t.index] = run_task(t, planners.get(t.method))
            report(t, outcomes[t.index])
    else:
        done = _map(
            jobs,
            run_task,
            [(t,) for t in ordered],
            progress=lambda i, o: report(ordered[i], o),
            on_crash=lambda i, e: Outcome(
                ordered[i].method, ERROR, None, None, None, None, None, 0.0, 0.0, f"worker process died: {_one_line(e)}"
            ),
        )
        outcomes = {t.index: o for t, o in zip(ordered, done)}

    rows = []
    for m, w in variants:
        mb = budgets[(m.name, w)]
        for name in config.budgets:
            size = 0 if mb.budgets is None else mb.budgets.get(name)
            for method in config.methods_for(m.group):
                if mb.budgets is None:
                    rows.append(
                        BenchRow(
                            m.name,
                            m.group,
                            w,
                            name,
                            0,
                            method,
                            method,
                            ERROR,
                            None,
                            None,
                            None,
                            None,
                            None,
                            0.0,
                            0.0,
                            f"budgets: {mb.error}",
                        )
                    )
                elif method in missing:
                    rows.append(
                        BenchRow(
                            m.name,
                            m.group,
                            w,
                            name,
                            size,
                            method,
                            method,
                            MISSING,
                            None,
                            None,
                            None,
                            None,
                            None,
                            0.0,
                            0.0,
                            "not registered in cosma.methods.METHODS",
                        )
                    )
                else:
                    task = tasks[(m.name, w, size, method)]
                    o = outcomes[task.index]
                    if task.method != method and not o.message:  # a shared run says so in the CSV
                        o = dataclasses.replace(o, message=f"the run of {task.method}, which resolved to {method}")
                    rows.append(BenchRow(m.name, m.group, w, name, size, method, *dataclasses.astuple(o)))
    return BenchResult(
        config,
        tuple(models),
        tuple(budgets[(m.name, w)] for m, w in variants),
        tuple(rows),
        missing,
        machine_info(),
        command,
        started_at,
        time.perf_counter() - started,
        (load_before, os.getloadavg()[0]),
    )


def _cost_estimate(budgets: Mapping[tuple[str, bool], ModelBudgets]) -> Callable[[BenchTask], tuple[int, int, int]]:
    """Longest first (solver methods, then larger graphs), so the pool's last tasks are short ones."""

    def key(t: BenchTask) -> tuple[int, int, int]:
        return (t.method in BASELINES, -budgets[(t.model.name, t.weights)].ops, t.index)

    return key


def _map(
    jobs: int,
    fn: Callable[..., Any],
    args: Sequence[tuple[Any, ...]],
    *,
    progress: Callable[[int, Any], None] | None,
    on_crash: Callable[[int, BaseException], Any] | None = None,
) -> list[Any]:
    """``[fn(*a) for a in args]`` on ``jobs`` processes, in order. A task whose worker dies gets ``on_crash``'s
    answer and the rest continue on a fresh pool."""
    results: dict[int, Any] = {}
    if jobs <= 1 or len(args) <= 1:
        for i, a in enumerate(args):
            results[i] = fn(*a)
            if progress:
                progress(i, results[i])
        return [results[i] for i in range(len(args))]
    # forkserver: workers start clean, not as forks of a process that may run solver threads
    context = multiprocessing.get_context(
        "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    )
    pending = list(range(len(args)))
    while pending:
        with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=context) as pool:
            futures: dict[Future[Any], int] = {pool.submit(fn, *args[i]): i for i in pending}
            broken = False
            for future in as_completed(futures):
                i = futures[future]
                try:
                    results[i] = future.result()
                except BrokenProcessPool as e:
                    if on_crash is None:
                        raise
                    if not broken:  # the task that was running when the pool broke is blamed; the rest rerun
                        results[i] = on_crash(i, e)
                        broken = True
                    continue
                if progress:
                    progress(i, results[i])
        pending = [i for i in pending if i not in results]
    return [results[i] for i in range(len(args))]


# ------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class Reduction:
    """The headline figure for one group and weights variant at one budget."""

    group: str
    weights: bool
    budget: str
    per_model: tuple[tuple[str, int, int, float], ...]  # (model, best baseline, best COSMA, reduction)
    excluded: tuple[str, ...]  # models without both a baseline and a COSMA plan
    zero_baseline: int  # models whose best baseline already has no extra traffic (reduction 0 by definition)

    @property
    def average(self) -> float | None:
        """Mean over the models, a model whose best baseline has no extra traffic counting as 0."""
        return statistics.fmean(r for *_, r in self.per_model) if self.per_model else None

    @property
    def with_traffic(self) -> tuple[tuple[str, int, int, float], ...]:
        """The models whose best baseline has extra traffic to reduce."""
        return tuple(p for p in self.per_model if p[1] > 0)

    @property
    def average_with_traffic(self) -> float | None:
        """Mean over :attr:`with_traffic` only (None when no model has traffic to reduce)."""
        return statistics.fmean(r for *_, r in self.with_traffic) if self.with_traffic else None


def reduction(best_baseline: int, best_cosma: int) -> float:
    """``1 - best_cosma / best_baseline``; 0 when the baseline has no extra traffic to reduce.

    >>> reduction(100, 16), reduction(0, 0)
    (0.84, 0.0)
    """
    return 0.0 if best_baseline == 0 else 1.0 - best_cosma / best_baseline


def reductions(
    rows: Sequence[BenchRow], budget: str = "M_R", groups: Sequence[str] = HEADLINE_GROUPS
) -> list[Reduction]:
    """Per group and weights variant: the reduction of the best COSMA plan against the best baseline."""
    out = []
    variants = [w for w in WEIGHT_VARIANTS if any(r.weights == w for r in rows)]
    for group in groups:
        for weights in variants:
            chosen = [r for r in rows if r.group == group and r.weights == weights and r.budget == budget]
            per_model, excluded, zero = [], [], 0
            for model in dict.fromkeys(r.model for r in chosen):
                base = _best(r for r in chosen if r.model == model and r.method not in COSMA_METHODS)
                cosma = _best(r for r in chosen if r.model == model and r.method in COSMA_METHODS)
                if base is None or cosma is None:
                    excluded.append(model)
                    continue
                zero += base == 0
                per_model.append((model, base, cosma, reduction(base, cosma)))
            if per_model or excluded:
                out.append(Reduction(group, weights, budget, tuple(per_model), tuple(excluded), zero))
    return out


def _best(rows: Iterable[BenchRow]) -> int | None:
    extras = [r.extra_bytes for r in rows if r.planned]
    return min(extras) if extras else None  # type: ignore[type-var]


@dataclass(frozen=True)
class InstanceSummary:
    """Across the methods of one run: the best plan, the best bound valid for the instance, whether they meet.

    A plan without extra traffic is optimal by itself.
    """

    key: str
    model: str
    weights: bool
    budget: str
    scratchpad_bytes: int
    best_extra_bytes: int | None
    best_method: str
    bound: int | None
    bound_method: str

    @property
    def proven(self) -> bool:
        if self.best_extra_bytes is None:
            return False
        return self.best_extra_bytes == 0 or (self.bound is not None and self.bound >= self.best_extra_bytes)


def instances(rows: Sequence[BenchRow]) -> list[InstanceSummary]:
    """One summary per instance, in row order."""
    out = []
    for key in dict.fromkeys(r.key for r in rows):
        group = [r for r in rows if r.key == key]
        planned = [r for r in group if r.planned]
        best = min(planned, key=lambda r: r.extra_bytes, default=None)  # type: ignore[arg-type,return-value]
        bounded = [r for r in planned if r.instance_bound is not None]
        top = max(bounded, key=lambda r: r.instance_bound, default=None)  # type: ignore[arg-type,return-value]
        r0 = group[0]
        out.append(
            InstanceSummary(
                key,
                r0.model,
                r0.weights,
                r0.budget,
                r0.scratchpad_bytes,
                None if best is None else best.extra_bytes,
                "" if best is None else best.method,
                None if top is None else top.instance_bound,
                "" if top is None else top.method,
            )
        )
    return out


def time_stats(rows: Sequence[BenchRow], method: str) -> tuple[int, float, float, float, float] | None:
    """``(runs, median solve s, max solve s, median total s, max total s)`` of a method's planned runs."""
    done = [r for r in rows if r.method == method and r.valid is not None]
    if not done:
        return None
    solve = [r.solve_seconds for r in done]
    total = [r.total_seconds for r in done]
    return len(done), statistics.median(solve), max(solve), statistics.median(total), max(total)


# ------------------------------------------------------------------------- reference
REFERENCE_FORMAT = "cosma.reference/1"


@dataclass(frozen=True)
class ReferenceEntry:
    """The best known result for one instance.

    ``lower_bound`` is the highest proven lower bound on the extra bytes of any plan of the instance
    (from the methods of :data:`GLOBAL_BOUND_METHODS`; 0 when none is known);
    ``methods`` each method's own best extra bytes (the per-method regression guard).
    """

    model: str
    weights: bool
    budget: str
    scratchpad_bytes: int
    best_extra_bytes: int
    best_method: str
    lower_bound: int = 0
    bound_method: str = ""
    methods: Mapping[str, int] = field(default_factory=dict)

    @property
    def proven_optimal(self) -> bool:
        return self.lower_bound >= self.best_extra_bytes

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["methods"] = dict(sorted(self.methods.items()))
        d["proven_optimal"] = self.proven_optimal
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceEntry:
        return cls(
            d["model"],
            bool(d["weights"]),
            d["budget"],
            int(d["scratchpad_bytes"]),
            int(d["best_extra_bytes"]),
            d["best_method"],
            int(d.get("lower_bound", 0)),
            d.get("bound_method", ""),
            {k: int(v) for k, v in d.get("methods", {}).items()},
        )


@dataclass(frozen=True)
class Reference:
    """``solvers/reference.json``: a :class:`ReferenceEntry` per instance key, plus the protocol it holds for."""

    entries: Mapping[str, ReferenceEntry] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "format": REFERENCE_FORMAT,
            "protocol": {
                "element_bytes": ELEMENT_BYTES,
                "alignment": 1,
                "allocator": "first-fit",
                "budget_time_limit": BUDGET_TIME_LIMIT,
            },
            "instances": {k: self.entries[k].to_dict() for k in sorted(self.entries)},
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Reference:
        """The reference at ``path``; an empty one when the file does not exist."""
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            if data.get("format") != REFERENCE_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {REFERENCE_FORMAT!r}")
            return cls({k: ReferenceEntry.from_dict(v) for k, v in data["instances"].items()})
        except (ValueError, KeyError, TypeError) as e:
            raise OptionError(f"cannot read the reference {path}: {e}; restore it from git") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(Path(path), self.to_json())


@dataclass(frozen=True)
class Violation:
    """One way a run is worse than (or inconsistent with) the reference."""

    key: str
    method: str
    kind: str  # invalid | error | budget-changed | worse | below-bound | bound-above-plan | false-optimal
    message: str

    def __str__(self) -> str:
        return f"{self.key} {self.method}: {self.kind}: {self.message}"


def compare_to_reference(rows: Iterable[BenchRow], reference: Reference) -> list[Violation]:
    """Everything in ``rows`` that the reference says is a regression or an inconsistency.

    Per run: the plan must be valid and the run must not fail; the instance's budget must still
    be the reference's size; the extra bytes must not exceed the method's reference value (where
    the reference proves optimality the method that found the optimum must therefore match it
    exactly) nor fall below the reference's proven lower bound; a bound valid for the instance must
    not exceed the best known plan, and a run with such a bound may call itself optimal only at the
    best known value (a fixed-order run is optimal for its order only: it is not held to either). Missing methods
    and instances the reference does not hold are not violations (:func:`uncovered` lists them).
    """
    out = []
    for r in rows:
        if r.status == MISSING:
            continue
        if r.status == ERROR:
            out.append(Violation(r.key, r.method, "error", r.message))
            continue
        if r.valid is not True:
            out.append(Violation(r.key, r.method, "invalid", r.message or "the plan failed the replay"))
            continue
        ref = reference.entries.get(r.key)
        if ref is None or r.extra_bytes is None:
            continue
        if ref.scratchpad_bytes != r.scratchpad_bytes:
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "budget-changed",
                    f"{r.budget} is now {r.scratchpad_bytes} B, the reference has "
                    f"{ref.scratchpad_bytes} B; if intended, refresh with "
                    "cosma bench --update-reference --force",
                )
            )
            continue
        limit = ref.methods.get(r.method)
        if limit is not None and r.extra_bytes > limit:
            stopped = r.status in ("time-limit", "feasible")  # unproven: the machine's load may be the cause
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "worse",
                    f"extra {r.extra_bytes} B > reference {limit} B for this method"
                    + (" (proven optimal)" if ref.proven_optimal and limit == ref.best_extra_bytes else "")
                    + ("; this run stopped at its time limit" if stopped else ""),
                )
            )
        if r.extra_bytes < ref.lower_bound:
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "below-bound",
                    f"extra {r.extra_bytes} B < proven lower bound {ref.lower_bound} B "
                    f"({ref.bound_method}): the bound or the plan's cost is wrong",
                )
            )
        bound = r.instance_bound
        if bound is not None and bound > ref.best_extra_bytes:
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "bound-above-plan",
                    f"bound {bound} B > best known plan {ref.best_extra_bytes} B "
                    f"({ref.best_method}): the bound is wrong",
                )
            )
        if bound is not None and r.status == "optimal" and r.extra_bytes > ref.best_extra_bytes:
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "false-optimal",
                    f"claims optimal at {r.extra_bytes} B, {ref.best_method} found {ref.best_extra_bytes} B",
                )
            )
    return out


def uncovered(rows: Iterable[BenchRow], reference: Reference) -> list[tuple[str, str]]:
    """``(instance, method)`` of planned rows the reference has no value for."""
    return [
        (r.key, r.method)
        for r in rows
        if r.planned and (r.key not in reference.entries or r.method not in reference.entries[r.key].methods)
    ]


@dataclass(frozen=True)
class Merge:
    reference: Reference
    changes: tuple[str, ...]
    refused: tuple[str, ...]  # what --force would have changed


def merge_reference(reference: Reference, rows: Iterable[BenchRow], *, force: bool = False) -> Merge:
    """Fold a run into the reference.

    Without ``force``: best and per-method values only go down, lower bounds only go up, and a
    change of an instance's budget size, or a bound above a known plan, is refused (listed). With
    ``force``: the run's values replace the reference's for every instance and method it covers.
    """
    entries = dict(reference.entries)
    changes: list[str] = []
    refused: list[str] = []
    planned = [r for r in rows if r.planned]
    for key in dict.fromkeys(r.key for r in planned):
        mine = [r for r in planned if r.key == key]
        r0 = mine[0]
        old = entries.get(key)
        if old is not None and old.scratchpad_bytes != r0.scratchpad_bytes:
            if not force:
                refused.append(f"{key}: budget {old.scratchpad_bytes} B -> {r0.scratchpad_bytes} B")
                continue
            changes.append(f"{key}: budget {old.scratchpad_bytes} B -> {r0.scratchpad_bytes} B (entry replaced)")
            old = None
        methods = dict(old.methods) if old is not None else {}
        for r in mine:
            assert r.extra_bytes is not None
            before = methods.get(r.method)
            if before is None or r.extra_bytes < before or (force and r.extra_bytes != before):
                methods[r.method] = r.extra_bytes
            elif r.extra_bytes > before:
                refused.append(f"{key} {r.method}: {before} B -> {r.extra_bytes} B")
        best_row = min(
            mine,
            key=lambda r: (
                r.extra_bytes,
                PROTOCOL_METHODS.index(r.method) if r.method in PROTOCOL_METHODS else len(PROTOCOL_METHODS),
            ),
        )
        assert best_row.extra_bytes is not None
        if old is None or force or best_row.extra_bytes < old.best_extra_bytes:
            best, best_method = best_row.extra_bytes, best_row.method
        else:
            best, best_method = old.best_extra_bytes, old.best_method
        if force:
            best, best_method = min((v, m) for m, v in methods.items())
        lb, lb_method = (0, "") if old is None or force else (old.lower_bound, old.bound_method)
        for r in mine:
            bound = r.instance_bound
            if bound is None:
                continue
            if bound > best:
                refused.append(f"{key} {r.method}: bound {bound} B above the best known plan {best} B")
            elif bound > lb:
                lb, lb_method = bound, r.method
        new = ReferenceEntry(
            r0.model, r0.weights, r0.budget, r0.scratchpad_bytes, best, best_method, lb, lb_method, methods
        )
        if new != old:
            changes.append(_describe_change(key, old, new))
            entries[key] = new
    return Merge(Reference(entries), tuple(changes), tuple(refused))


def _describe_change(key: str, old: ReferenceEntry | None, new: ReferenceEntry) -> str:
    if old is None:
        return f"{key}: new, best {new.best_extra_bytes} B ({new.best_method}), bound {new.lower_bound} B"
    parts = []
    if new.best_extra_bytes != old.best_extra_bytes:
        parts.append(f"best {old.best_extra_bytes} -> {new.best_extra_bytes} B ({new.best_method})")
    if new.lower_bound != old.lower_bound:
        parts.append(f"bound {old.lower_bound} -> {new.lower_bound} B ({new.bound_method})")
    for m in sorted(set(new.methods) | set(old.methods)):
        if new.methods.get(m) != old.methods.get(m):
            parts.append(f"{m} {old.methods.get(m)} -> {new.methods.get(m)} B")
    return f"{key}: " + ", ".join(parts or ["method of the best changed"])


# ---------------------------------------------------------------------------- machine
def machine_info() -> dict[str, str]:
    """Where a run happened: platform, CPU model, cores, Python, solver and library versions, git commit."""
    from importlib.metadata import PackageNotFoundError, version

    info = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
    }
    for package in ("cosma", "ortools", "highspy", "pulp", "onnx", "numpy", "networkx"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = "not installed"
    info["git commit"] = _git_commit()
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    root = repo_root()
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "cosma"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" (cosma/ has uncommitted changes)" if dirty.stdout.strip() else "")


# ---------------------------------------------------------------------------- outputs
CSV_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BenchRow))


def to_csv(rows: Iterable[BenchRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([_cell(getattr(r, c)) for c in CSV_COLUMNS])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if not math.isnan(value) else ""
    return str(value)


def plot_figures(result: BenchResult, models: Sequence[str] = PLOT_MODELS) -> dict[str, Any]:
    """Extra traffic against budget, one panel per model and one curve per method, per weights variant.

    Draws the models of :data:`PLOT_MODELS` that the run covers (else its first four). Returns
    ``{"weights": Figure, "no-weights": Figure}`` for the variants the run has.
    """
    from cosma.sweep import ModelRange, SweepPoint, SweepResult, sweep_figure

    ran = [m.name for m in result.models]
    summaries = {s.key: s for s in instances(result.rows)}
    chosen = [m for m in models if m in ran] or ran[:4]
    methods = tuple(m for m in result.methods if m not in result.missing_methods)
    figures = {}
    for weights in result.config.weights:
        points, ranges = [], []
        for model in chosen:
            mb = next(b for b in result.budgets if b.model == model and b.weights == weights)
            if mb.budgets is None:
                continue
            rows = [r for r in result.rows if r.model == model and r.weights == weights and r.planned]
            seen = set()
            for r in sorted(
                rows, key=lambda r: (methods.index(r.method) if r.method in methods else 99, r.scratchpad_bytes)
            ):
                if (r.method, r.scratchpad_bytes) in seen:
                    continue  # coinciding budgets: one point
                seen.add((r.method, r.scratchpad_bytes))
                s = summaries[r.key]
                at_optimum = s.proven and r.extra_bytes == s.best_extra_bytes  # filled marker
                points.append(
                    SweepPoint(
                        model,
                        r.method,
                        r.scratchpad_bytes,
                        "optimal" if at_optimum else "feasible",
                        r.extra_bytes,
                        None,
                        r.compulsory_bytes,
                        r.bound,
                        None,
                        r.solve_seconds,
                        r.total_seconds,
                    )
                )
            b = mb.budgets
            ranges.append(ModelRange(model, b.m_r, b.m_p, b.m_r))
        if ranges:
            fig = sweep_figure(SweepResult(tuple(points), tuple(ranges), methods, "bench"))
            fig.suptitle(
                f"extra off-chip traffic at M_R, M_H, M_P ({variant_label(weights)}, {ELEMENT_BYTES}-byte elements)",
                fontsize=11,
            )
            figures[variant_label(weights)] = fig
    return figures


def write_outputs(
    result: BenchResult,
    out_dir: str | os.PathLike[str],
    *,
    reference: Reference | None = None,
    reference_path: str = "",
) -> list[Path]:
    """Write ``BENCHMARKS.md``, ``benchmarks.csv`` and ``img/bench_*.png`` under ``out_dir`` (atomically)."""
    from cosma.viz import save_figure

    out = Path(out_dir)
    try:
        (out / "img").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OptionError(f"cannot create {out / 'img'}: {e.strerror or e}; choose another --out-dir") from None
    written = []
    images = []
    for label, fig in plot_figures(result).items():
        path = save_figure(fig, out / "img" / f"bench_{label.replace('-', '_')}.png")
        images.append(path.relative_to(out).as_posix())
        written.append(path)
    csv_path = out / "benchmarks.csv"
    atomic_write_text(csv_path, to_csv(result.rows))
    written.append(csv_path)
    md_path = out / "BENCHMARKS.md"
    atomic_write_text(
        md_path,
        render_markdown(
            result, images=images, csv_name=csv_path.name, reference=reference, reference_path=reference_path
        ),
    )
    written.append(md_path)
    return written


def _allocation_section() -> list[str]:
    """The MiniMalloc allocation results, rendered by ``cosma.alloc.bench`` from its own results file.

    That module owns the suite and its measurements (``python -m cosma.alloc.bench`` reruns them);
    the bench only places its section here, under its heading, so that either tool can refresh it.
    """
    if importlib.util.find_spec("cosma.alloc.bench") is None:
        return []
    module = importlib.import_module("cosma.alloc.bench")
    heading = getattr(module, "HEADING", "## Allocation: MiniMalloc challenging suite")
    note = "<!-- Generated by `python -m cosma.alloc.bench`; do not edit by hand. -->"
    try:
        text = module.markdown_section().strip()
    except Exception as e:  # another tool's results file: say what went wrong rather than fail the bench
        text = f"The allocation results could not be rendered ({_one_line(e)}); rerun `python -m cosma.alloc.bench`."
    return [heading, "", note, "", text, ""]


def render_markdown(
    result: BenchResult,
    *,
    images: Sequence[str] = (),
    csv_name: str = "benchmarks.csv",
    reference: Reference | None = None,
    reference_path: str = "",
) -> str:
    """The benchmark report (generated; never edited by hand)."""
    cfg = result.config
    rows = result.rows
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `cosma bench`; do not edit by hand: rerun the command below. -->",
        "",
        f"Generated by `cosma bench` on {result.started} in {_duration(result.seconds)}. Command:",
        "",
        "```",
        result.command or "cosma bench",
        "```",
        "",
        "## Scope",
        "",
        f"- Models ({len(result.models)}): " + ", ".join(f"{m.display} [{m.group}]" for m in result.models) + ".",
        f"- Budgets: {', '.join(cfg.budgets)}, each "
        + " and ".join(
            "with weights in the scratchpad" if w else "without weights (activation-only)" for w in cfg.weights
        )
        + f"; {ELEMENT_BYTES}-byte elements, alignment 1, first-fit allocator. M_P comes from a "
        f"minimum-peak search of at most {cfg.budget_time_limit:g} s per graph variant.",
        f"- Methods: {', '.join(cfg.methods)}{_group_methods_note(result)}; time limit {cfg.time_limit:g} s per "
        "solve, 1 solver thread, "
        f"seed {cfg.seed}, {cfg.jobs} solve(s) at a time. `fixed-order` is the exact solver on that minimum-peak "
        "order (the one whose peak is M_P); `auto` is what `cosma compile` picks: the joint model, or divide and "
        "conquer (`dc`) on large graphs (the CSV's `resolved_method` says which ran).",
    ]
    if result.missing_methods:
        lines.append(
            f"- **Not run, not registered in this version:** {', '.join(result.missing_methods)} "
            "(their rows say `missing`)."
        )
    lines += [
        "- Every plan is replayed by `cosma.contract.replay`; `valid` in the CSV is its verdict. Budgets that coincide "
        "in bytes are planned once and reported under each name.",
        f"- Every run, with status, bound, gap and times: [{csv_name}]({csv_name}).",
        "",
    ]
    lines += _machine_section(result)
    lines += _headline_section(rows)
    lines += _dc_section(result)
    lines += _optimality_section(rows, result.methods, result.missing_methods)
    lines += _time_section(rows, result.methods, result.missing_methods)
    if reference is not None:
        lines += _reference_section(rows, reference, reference_path)
    lines += _allocation_section()
    if images:
        lines += [
            "## Extra traffic against budget",
            "",
            "Filled markers: the instance's proven optimum (whichever method reached it); hollow: not proven "
            "optimal. The dotted line is M_R.",
            "",
        ]
        lines += [f"![extra traffic against budget]({p})" for p in images] + [""]
    lines += _model_tables(result)
    return "\n".join(lines).rstrip() + "\n"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _machine_section(result: BenchResult) -> list[str]:
    lines = ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result.machine.items()]
    before, after = result.load_average
    lines += [
        f"| load average (1 min) | {before:.2f} at the start, {after:.2f} at the end |",
        "",
        "The machine was shared with other work while this ran, so times are noisy and a time-limited solve may "
        "find a different plan on another run; extra bytes of proven-optimal instances do not depend on it.",
        "",
    ]
    return lines


def _headline_section(rows: Sequence[BenchRow]) -> list[str]:
    lines = [
        "## Headline: reduction of extra traffic at M_R",
        "",
        "For each model and weights variant at M_R: *best baseline* is the least extra traffic of a valid plan "
        f"among the baselines ({', '.join(BASELINES)}); *best COSMA* the least among the COSMA methods run "
        f"({', '.join(m for m in COSMA_METHODS if any(r.method == m and r.planned for r in rows)) or 'none'}); "
        "the reduction is "
        "`1 - best COSMA / best baseline`, defined as 0 when the best baseline has no extra traffic (0/0: nothing "
        "to reduce). The average is the plain mean over the models of the group, a model whose best baseline is "
        "already 0 counting as 0%; the next column averages over the models with traffic to reduce only (best "
        "baseline above 0), so such models do not dilute it. A model without a valid plan on either side is left "
        "out and named.",
        "",
    ]
    found = reductions(rows)
    if not any(red.per_model for red in found):
        return [*lines, "No model of the human or NAS groups has both a baseline and a COSMA plan in this run.", ""]
    lines += [
        "| group | weights | models | average reduction | average over models with traffic to reduce | "
        "min | max | baseline already 0 | left out | COSMA paper |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for red in found:
        values = [r for *_, r in red.per_model]
        avg = "-" if red.average is None else f"{100 * red.average:.1f}%"
        with_traffic = (
            "-"
            if red.average_with_traffic is None
            else f"{100 * red.average_with_traffic:.1f}% ({len(red.with_traffic)})"
        )
        lines.append(
            f"| {red.group} | {variant_label(red.weights)} | {len(red.per_model)} | **{avg}** | {with_traffic} | "
            + (f"{100 * min(values):.1f}% | {100 * max(values):.1f}% | " if values else "- | - | ")
            + f"{red.zero_baseline} | {', '.join(red.excluded) or '-'} | "
            + (f"{100 * PAPER_REDUCTION[red.group]:.0f}%" if red.group in PAPER_REDUCTION else "-")
            + " |"
        )
    lines += [
        "",
        "Per model (extra bytes at M_R):",
        "",
        "| model | weights | best baseline | best COSMA | reduction |",
        "|---|---|---:|---:|---:|",
    ]
    for red in found:
        for model, base, cosma, r in red.per_model:
            lines.append(f"| {model} | {variant_label(red.weights)} | {base:,} | {cosma:,} | {100 * r:.1f}% |")
    return [*lines, ""]


DC_HEADING = "## Divide and conquer on NAS-generated and randomly wired graphs"
#: The groups of the divide-and-conquer section: those the protocol runs ``dc`` on by name.
DC_GROUPS: tuple[str, ...] = tuple(g for g, methods in GROUP_METHODS.items() if "dc" in methods)


def change(baseline: int, extra: int) -> float | None:
    """``extra / baseline - 1`` (-0.85: 85% less traffic); None when the baseline has no traffic to reduce.

    >>> change(100, 15), change(0, 0)
    (-0.85, None)
    """
    return None if baseline == 0 else extra / baseline - 1.0


@dataclass(frozen=True)
class DcInstance:
    """One instance of the divide-and-conquer section: ``dc``'s run and the baselines' extra bytes."""

    run: BenchRow
    ops: int
    baselines: Mapping[str, int | None]  # extra bytes of each baseline's valid plan (None: no valid plan)

    @property
    def best_baseline(self) -> int | None:
        extras = [x for x in self.baselines.values() if x is not None]
        return min(extras) if extras else None

    def change_to(self, baseline: int | None) -> float | None:
        """dc's change against ``baseline`` extra bytes (None: no plan on either side, or nothing to reduce)."""
        if baseline is None or not self.run.planned:
            return None
        assert self.run.extra_bytes is not None
        return change(baseline, self.run.extra_bytes)

    @property
    def mean_change(self) -> float | None:
        """Mean change against the baselines with traffic (None when none has any)."""
        changes = [c for c in (self.change_to(x) for x in self.baselines.values()) if c is not None]
        return statistics.fmean(changes) if changes else None

    @property
    def gap(self) -> float | None:
        """``1 - bound / extra``; None without a bound or when dc's plan has no extra traffic."""
        r = self.run
        if not r.planned or r.bound is None or not r.extra_bytes:
            return None
        return 1.0 - r.bound / r.extra_bytes


def dc_instances(result: BenchResult) -> list[DcInstance]:
    """The ``dc`` runs on models of :data:`DC_GROUPS`, in row order, each with the baselines of its instance."""
    ops = {(b.model, b.weights): b.ops for b in result.budgets}
    out = []
    for r in result.rows:
        if r.method != "dc" or r.group not in DC_GROUPS or r.status == MISSING:
            continue
        mine = {x.method: x for x in result.rows if x.key == r.key}
        baselines = {b: mine[b].extra_bytes if b in mine and mine[b].planned else None for b in BASELINES}
        out.append(DcInstance(r, ops.get((r.model, r.weights), 0), baselines))
    return out


@dataclass(frozen=True)
class DcSummary:
    """The divide-and-conquer section's summary line."""

    runs: int
    valid: int
    longest_seconds: float
    #: baseline -> (mean change of dc against it, instances where it has traffic), and "best" for the best
    #: baseline of each instance; the mean is None where no instance has traffic.
    changes: Mapping[str, tuple[float | None, int]]


def dc_summary(found: Sequence[DcInstance]) -> DcSummary:
    changes: dict[str, tuple[float | None, int]] = {}
    for name in (*BASELINES, "best"):
        values = [
            c for i in found if (c := i.change_to(i.best_baseline if name == "best" else i.baselines[name])) is not None
        ]
        changes[name] = (statistics.fmean(values) if values else None, len(values))
    return DcSummary(
        len(found),
        sum(i.run.valid is True for i in found),
        max((i.run.total_seconds for i in found), default=0.0),
        changes,
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def _dc_section(result: BenchResult) -> list[str]:
    found = dc_instances(result)
    if not found:
        return []
    lines = [
        DC_HEADING,
        "",
        "`dc` (divide and conquer, `cosma.methods.dc`) starts from the best of the four baselines, runs the exact "
        "fixed-order solver on that plan's order, then fixed-order windows of about 200 operators, then joint "
        "windows of about 24-48 consecutive operators (free to reorder), each window from the state the previous "
        "one left, stitches every improvement into the whole plan and replays it; it is never worse than the best "
        "baseline. Its bound holds for every plan of the instance: the largest of a cover bound, a peak bound and "
        "the neighbourhood bound (docs/formulation.md, sections 6 and 11). Each run has the bench's time limit "
        f"of {result.config.time_limit:g} s per solve. Where `auto` resolves to `dc` (graphs above the size "
        "threshold of `cosma compile`), the dc run is auto's run, not a second one (the CSV's message says so). "
        "*change*: dc's extra bytes / the baseline's - 1 (negative: less traffic); *mean vs baselines*: the mean "
        "of the changes against the baselines with traffic; *gap*: 1 - bound / dc's extra bytes.",
        "",
        "| model | ops | weights | budget | bytes | "
        + " | ".join(BASELINES)
        + " | dc | vs best baseline | mean vs baselines | dc bound | gap | status | dc s | valid |",
        "|---|---:|---|---|---:|" + "---:|" * len(BASELINES) + "---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for i in found:
        r = i.run
        base = ["-" if x is None else f"{x:,}" for x in i.baselines.values()]
        extra = f"{r.extra_bytes:,}" if r.planned else r.status
        bound = "-" if r.bound is None or not r.planned else f"{r.bound:,}"
        gap = "-" if i.gap is None else f"{100 * i.gap:.1f}%"
        valid = {True: "yes", False: "no", None: "-"}[r.valid]
        lines.append(
            f"| {r.model} | {i.ops} | {variant_label(r.weights)} | {r.budget} | {r.scratchpad_bytes:,} | "
            + " | ".join(base)
            + f" | {extra} | {_percent(i.change_to(i.best_baseline))} | "
            f"{_percent(i.mean_change)} | {bound} | {gap} | {r.status} | {r.total_seconds:.1f} | {valid} |"
        )
    summary = dc_summary(found)
    against = "; ".join(
        f"{name} {_percent(mean)} ({n})" for name, (mean, n) in summary.changes.items() if name != "best"
    )
    best, best_n = summary.changes["best"]
    lines += [
        "",
        f"**{summary.runs} runs, {summary.valid} valid plans, longest {summary.longest_seconds:.1f} s.** Mean change "
        f"of dc's extra traffic against each baseline, over the instances where that baseline has traffic (their "
        f"number in brackets): {against}; against the best baseline: **{_percent(best)}** ({best_n}). "
        f"The COSMA paper reports {-100 * PAPER_REDUCTION['nas']:.0f}% on average on its NAS graphs.",
        "",
    ]
    return lines


def _group_methods_note(result: BenchResult) -> str:
    extra: dict[str, list[str]] = {}
    for g, methods in result.config.group_methods.items():
        for m in methods:
            if m not in result.config.methods and m in result.methods:
                extra.setdefault(m, []).append(g)
    return "".join(f"; {m} on the {' and '.join(gs)} models" for m, gs in extra.items())


def _optimality_section(rows: Sequence[BenchRow], methods: Sequence[str], missing: Sequence[str]) -> list[str]:
    summaries = instances(rows)
    planned = [s for s in summaries if s.best_extra_bytes is not None]
    proven = [s for s in planned if s.proven]
    zero = [s for s in planned if s.best_extra_bytes == 0]
    lines = [
        "## Proven optimal",
        "",
        "An instance (model, weights variant, budget) is proven optimal when a proven lower bound valid for every "
        f"plan of the instance (from {', '.join(GLOBAL_BOUND_METHODS)}; `auto` counts when it ran one of them) "
        "reaches the least extra traffic any method found; a plan with no extra traffic is optimal by itself. "
        "A fixed-order run's `optimal` is optimal for its order only and proves nothing about the instance. "
        f"**{len(proven)} of {len(planned)} instances are proven optimal** "
        f"({len(zero)} of them need no extra traffic at all).",
        "",
        "| method | runs with a valid plan | status optimal | best of the instance | invalid | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    best_of = {s.key: s.best_extra_bytes for s in planned}
    for m in methods:
        if m in missing:
            lines.append(f"| {m} | missing | | | | |")
            continue
        mine = [r for r in rows if r.method == m]
        ok = [r for r in mine if r.planned]
        lines.append(
            f"| {m} | {len(ok)} | {sum(r.status == 'optimal' for r in ok)} | "
            f"{sum(r.extra_bytes == best_of.get(r.key) for r in ok)} | "
            f"{sum(r.valid is False for r in mine)} | {sum(r.status == ERROR for r in mine)} |"
        )
    open_ = [s for s in planned if not s.proven]
    if open_:
        lines += [
            "",
            "Instances not proven optimal (best plan, best bound):",
            "",
            "| instance | best extra | method | bound | gap |",
            "|---|---:|---|---:|---:|",
        ]
        for s in open_:
            bound = "-" if s.bound is None else f"{s.bound:,}"
            assert s.best_extra_bytes is not None
            gap = "-" if s.bound is None else f"{100 * (s.best_extra_bytes - s.bound) / s.best_extra_bytes:.1f}%"
            lines.append(f"| {s.key} | {s.best_extra_bytes:,} | {s.best_method} | {bound} | {gap} |")
    errors = [r for r in rows if r.status in (ERROR, INVALID)]
    if errors:
        lines += ["", "Failed runs:", "", "| instance | method | status | message |", "|---|---|---|---|"]
        lines += [f"| {r.key} | {r.method} | {r.status} | {r.message.replace('|', '/')} |" for r in errors]
    return [*lines, ""]


def _time_section(rows: Sequence[BenchRow], methods: Sequence[str], missing: Sequence[str]) -> list[str]:
    lines = [
        "## Solve times",
        "",
        "Seconds per run: *solve* as the method reports it, *total* the whole run (a baseline's includes its "
        "order search; fixed-order's order comes from the budget phase and is not counted). A distinct (model, "
        "weights, budget size) is solved once.",
        "",
        "| method | runs | median solve | max solve | median total | max total |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in methods:
        if m in missing:
            continue
        distinct = {(r.model, r.weights, r.scratchpad_bytes): r for r in rows if r.method == m}
        stats = time_stats(list(distinct.values()), m)
        if stats is not None:
            n, ms, xs, mt, xt = stats
            lines.append(f"| {m} | {n} | {ms:.2f} | {xs:.2f} | {mt:.2f} | {xt:.2f} |")
    return [*lines, ""]


def _reference_section(rows: Sequence[BenchRow], reference: Reference, path: str) -> list[str]:
    violations = compare_to_reference(rows, reference)
    missing = uncovered(rows, reference)
    where = f" `{path}`" if path else ""
    lines = [
        "## Against the reference",
        "",
        f"Compared with the reference{where} ({len(reference.entries)} instances): "
        f"**{len(violations)} violation(s)**; {len(missing)} planned run(s) the reference has no value for. "
        "The reference keeps each method's best value over all runs merged into it; a run that stopped at its "
        "time limit can fall short of it because of the machine's load (or, on graphs whose minimum-peak "
        "search is cut by its time limit, a different order), a proven run cannot.",
        "",
    ]
    if violations:
        lines += ["| instance | method | kind | detail |", "|---|---|---|---|"]
        lines += [f"| {v.key} | {v.method} | {v.kind} | {v.message.replace('|', '/')} |" for v in violations]
        lines.append("")
    return lines


def _model_tables(result: BenchResult) -> list[str]:
    ran = {(r.model, r.method) for r in result.rows}
    summaries = {s.key: s for s in instances(result.rows)}
    lines = [
        "## Per model",
        "",
        "Extra off-chip bytes of each method's plan (`*`: the run's status is optimal, for fixed-order optimal "
        "for its order; `invalid` / `error`: see the failed runs above). *bound*: the highest lower bound valid "
        f"for the instance ({', '.join(GLOBAL_BOUND_METHODS)}); *best*: the least extra traffic found.",
        "",
    ]
    by_key = {(r.key, r.method): r for r in result.rows}
    for m in result.models:
        lines += [f"### {m.display} (`{m.name}`, {m.group})", ""]
        infos = [b for b in result.budgets if b.model == m.name]
        notes = []
        for b in infos:
            if b.budgets is None:
                notes.append(f"{variant_label(b.weights)}: budgets failed: {b.error}")
            elif not b.budgets.m_p_proven:
                notes.append(
                    f"{variant_label(b.weights)}: M_P is the best peak found, not proven minimal "
                    f"(proven >= {b.budgets.m_p_bound:,} B)"
                )
        if infos and infos[0].ops:
            lines.append(f"{infos[0].ops} operators (with weights).")
        lines += [f"- {n}" for n in notes]
        # a model's own methods: a method of another group's (GROUP_METHODS) gets no column here
        methods = [x for x in result.methods if x not in result.missing_methods and (m.name, x) in ran]
        lines += [
            "",
            "| weights | budget | bytes | " + " | ".join(methods) + " | bound | best |",
            "|---|---|---:|" + "---:|" * len(methods) + "---:|---:|",
        ]
        for w in result.config.weights:
            for budget in result.config.budgets:
                key = instance_key(m.name, w, budget)
                s = summaries.get(key)
                if s is None:
                    continue
                cells = []
                for method in methods:
                    r = by_key.get((key, method))
                    cells.append("" if r is None else _table_cell(r))
                bound = "-" if s.bound is None else f"{s.bound:,}"
                best = "-" if s.best_extra_bytes is None else f"{s.best_extra_bytes:,}"
                lines.append(
                    f"| {variant_label(w)} | {budget} | {s.scratchpad_bytes:,} | "
                    + " | ".join(cells)
                    + f" | {bound} | {best} |"
                )
        lines.append("")
    return lines


def _table_cell(r: BenchRow) -> str:
    if r.status in (ERROR, INVALID, MISSING):
        return r.status
    assert r.extra_bytes is not None
    return f"{r.extra_bytes:,}" + ("*" if r.status == "optimal" else "")


def split_list(values: Iterable[str]) -> tuple[str, ...]:
    """Repeated and comma-separated option values as one tuple: ``("a,b", "c")`` -> ``("a", "b", "c")``."""
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def bench_command(
    *,
    models: Sequence[str] = (),
    methods: Sequence[str] = (),
    budgets: Sequence[str] = (),
    weights: str = "both",
    time_limit: float = DEFAULT_TIME_LIMIT,
    jobs: int = 1,
    seed: int = 0,
    zoo_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    reference_path: str | os.PathLike[str] | None = None,
    update_reference: bool = False,
    force: bool = False,
    check: bool = False,
    command: str = "",
    echo: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
) -> int:
    """What ``cosma bench`` does: run, write the report, compare with (or update) the reference.

    Returns the exit status: 1 when ``check`` is set and the run violates the reference, else 0.
    """
    variants = {"both": WEIGHT_VARIANTS, "with": (True,), "without": (False,)}
    if weights not in variants:
        raise OptionError(f"--weights {weights!r}: choose both, with or without")
    # named methods run exactly as named, on every model; the protocol adds its group methods
    config = BenchConfig(
        models=tuple(models),
        methods=tuple(methods) or PROTOCOL_METHODS,
        group_methods={} if methods else dict(GROUP_METHODS),
        budgets=tuple(b.upper() for b in budgets) or PROTOCOL_BUDGETS,
        weights=variants[weights],
        time_limit=time_limit,
        jobs=jobs,
        seed=seed,
    )
    from cosma.methods import METHODS

    known = {*METHODS, *PROTOCOL_METHODS, *COSMA_METHODS}  # protocol names not registered yet run as `missing`
    unknown = [m for m in config.methods if m not in known]
    if unknown:
        raise OptionError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}, auto")
    zoo = load_zoo(zoo_dir)
    ref_path = Path(reference_path) if reference_path is not None else repo_root() / "solvers" / "reference.json"
    reference = Reference.load(ref_path)
    result = run_bench(config, zoo, command=command, progress=progress)
    written = write_outputs(
        result,
        out_dir if out_dir is not None else repo_root() / "docs",
        reference=reference,
        reference_path=_display_path(ref_path),
    )

    for red in reductions(result.rows):
        if red.average is not None:
            echo(
                f"{red.group} ({variant_label(red.weights)}): average reduction at M_R {100 * red.average:.1f}% "
                f"over {len(red.per_model)} models"
                + (
                    ""
                    if red.average_with_traffic is None
                    else f", {100 * red.average_with_traffic:.1f}% over the {len(red.with_traffic)} with traffic"
                )
            )
    found = dc_instances(result)
    if found:
        dc = dc_summary(found)
        echo(
            f"dc on {', '.join(DC_GROUPS)}: {dc.valid} of {dc.runs} valid, longest {dc.longest_seconds:.1f} s, "
            f"{_percent(dc.changes['best'][0])} against the best baseline"
        )
    summaries = [s for s in instances(result.rows) if s.best_extra_bytes is not None]
    echo(
        f"{sum(s.proven for s in summaries)} of {len(summaries)} instances proven optimal; "
        f"{sum(r.status in (ERROR, INVALID) for r in result.rows)} failed runs; "
        + (f"missing methods: {', '.join(result.missing_methods)}; " if result.missing_methods else "")
        + f"{_duration(result.seconds)}"
    )
    violations = compare_to_reference(result.rows, reference)
    echo(f"{len(violations)} violation(s) of {_display_path(ref_path)}")
    for v in violations[:20]:
        echo(f"  {v}")
    if update_reference:
        merged = merge_reference(reference, result.rows, force=force)
        merged.reference.save(ref_path)
        echo(f"reference: {len(merged.changes)} change(s) -> {_display_path(ref_path)}")
        for c in merged.changes[:20]:
            echo(f"  {c}")
        if merged.refused:
            echo(f"kept {len(merged.refused)} better reference value(s) (--force replaces them):")
            for c in merged.refused[:20]:
                echo(f"  {c}")
    echo("wrote " + ", ".join(_display_path(p) for p in written))
    return 1 if check and violations else 0


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed: ``cosma bench`` and its arguments, quoted for a POSIX shell."""
    import shlex

    args = list(sys.argv[1:] if argv is None else argv)
    return "cosma " + " ".join(shlex.quote(a) for a in args)


__all__ = [
    "COSMA_METHODS",
    "GROUP_METHODS",
    "PROTOCOL_BUDGETS",
    "PROTOCOL_METHODS",
    "BenchConfig",
    "BenchResult",
    "BenchRow",
    "Reference",
    "ReferenceEntry",
    "Violation",
    "compare_to_reference",
    "load_zoo",
    "merge_reference",
    "run_bench",
    "write_outputs",
]
