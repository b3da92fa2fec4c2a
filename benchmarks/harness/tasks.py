"""Task planning: the budgets of each (model, weights) variant, the protocol's per-method options, and
which solves a run needs (budgets that coincide in bytes and runs that coincide are planned once)."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from cosma.budgets import budgets_of_schedule
from cosma.frontend import load_onnx
from cosma.graph import Graph
from cosma.methods import auto_method
from cosma.methods.baselines import BASELINES, baseline_order
from cosma.options import Options
from cosma.schedule import min_peak_order
from harness.protocol import ELEMENT_BYTES, BenchConfig, Planner, one_line
from harness.records import BenchTask, ModelBudgets
from harness.zoo import ZooModel

#: One solve per key: (model, weights, scratchpad bytes, method).
TaskKey = tuple[str, bool, int, str]


def load_graph(path: str, weights: bool, inplace: bool = False) -> Graph:
    """The zoo model at ``path`` as the protocol loads it (cached per process).

    ``inplace`` is off by default: the budgets and the reference traffic in solvers/reference.json are
    COSMA's figures, without in-place operators; ``benchmarks/bench.py --inplace`` turns the pairs on.
    """
    return _cached_graph(path, os.stat(path).st_mtime_ns, weights, inplace)


@functools.lru_cache(maxsize=4)
def _cached_graph(path: str, mtime_ns: int, weights: bool, inplace: bool) -> Graph:
    # a worker's memory across its tasks; the key names the file's content, so it never changes a result
    return load_onnx(path, element_bytes=ELEMENT_BYTES, weights=weights, inplace=inplace)


def budgets_job(job: tuple[ZooModel, bool, BenchConfig]) -> ModelBudgets:
    """The budgets of one (model, weights) variant, its minimum-peak order and what ``auto`` stands for."""
    model, weights, config = job
    try:
        graph = load_graph(model.path, weights, config.inplace)
        schedule = min_peak_order(graph, time_limit=config.budget_time_limit)
        return ModelBudgets(
            model.name,
            weights,
            budgets_of_schedule(graph, schedule),
            len(graph.ops),
            order=tuple(schedule.order),
            auto_method=auto_method(graph, solve_options(config.time_limit, config.seed)),
        )
    except Exception as e:  # recorded, not fatal: the model's rows become error rows
        return ModelBudgets(model.name, weights, None, error=one_line(e))


def solve_options(time_limit: float, seed: int) -> Any:
    """The :class:`cosma.methods.Options` of every protocol run (before :func:`protocol_options`)."""
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
    order = task.order or tuple(baseline_order(graph, accelerator, "minpeak", options).order)
    return dataclasses.replace(options, order=order)


def plan_tasks(
    config: BenchConfig,
    variants: Sequence[tuple[ZooModel, bool]],
    budgets: Mapping[tuple[str, bool], ModelBudgets],
    missing: Sequence[str],
    planners: Mapping[str, Planner],
) -> dict[TaskKey, BenchTask]:
    """One task per distinct (model, weights, bytes, method): budgets that coincide are solved once, and a
    method that would repeat another's computation shares its task (:func:`shared_task_method`)."""
    tasks: dict[TaskKey, BenchTask] = {}
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
                tasks[key] = BenchTask(
                    len(tasks),
                    m,
                    w,
                    size,
                    method,
                    config.time_limit,
                    config.seed,
                    order,
                    config.inplace,
                    config.plans_dir,
                )
    return tasks


def cost_estimate(budgets: Mapping[tuple[str, bool], ModelBudgets]) -> Callable[[BenchTask], tuple[int, int, int]]:
    """Longest first (solver methods, then larger graphs), so the pool's last tasks are short ones."""

    def key(t: BenchTask) -> tuple[int, int, int]:
        return (t.method in BASELINES, -budgets[(t.model.name, t.weights)].ops, t.index)

    return key
