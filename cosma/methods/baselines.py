"""The baselines the COSMA paper compares against, as planning methods of cosma.

A baseline fixes the operator order first and then walks it once with an online allocator and
a replacement policy (:func:`cosma.replace.engine.plan_fixed_order`):

==================  =====================================  ==========================================
method              order (:mod:`cosma.schedule`)           replacement when no free range fits
==================  =====================================  ==========================================
``default+belady``  the ONNX node order                    furthest next use first (Belady's MIN)
``minpeak+belady``  an order of minimum peak (MPMF)        furthest next use first
``default+greedy``  the ONNX node order                    cheapest contiguous window (locally optimal)
``minpeak+greedy``  an order of minimum peak               cheapest contiguous window
==================  =====================================  ==========================================

The allocator (``first-fit`` by default, or ``best-fit``) comes from
:class:`~cosma.methods.Options`, the alignment from the :class:`~cosma.plan.Accelerator`.
:func:`best_baseline` runs all four and keeps the plan with the least extra traffic: the exact
solver's warm start and its "never worse than a baseline" guarantee. ``docs/baselines.md`` says
what each one mirrors.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> from cosma.methods import Options
    >>> g = Graph.build("g", [Tensor("x", 4, "input"), Tensor("h", 8, "activation"),
    ...                       Tensor("y", 4, "output")],
    ...                 [Operator("a", "Relu", ("x",), ("h",)), Operator("b", "Relu", ("h",), ("y",))])
    >>> plan = best_baseline(g, Accelerator(12), Options())
    >>> plan.summary.method, plan.extra_bytes
    ('default+belady', 0)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cosma.errors import OptionError
from cosma.graph import Graph
from cosma.hardware import Accelerator, aligned, check_budget
from cosma.options import Options
from cosma.plan import Plan
from cosma.replace.engine import POLICIES, plan_fixed_order
from cosma.schedule import ORDERS, ScheduleResult, default_schedule, min_peak_order

#: The four baselines, in the order :func:`best_baseline` prefers them on ties.
BASELINES: tuple[str, ...] = ("default+belady", "minpeak+belady", "default+greedy", "minpeak+greedy")


def minpeak_time_limit(options: Options) -> float:
    """The min-peak search's share of a run: ``options.minpeak_time_limit`` seconds (default
    :data:`~cosma.options.MINPEAK_TIME_LIMIT`), at most the time limit.

    The search's state budget follows from it, so the order is a function of the options alone, and
    the same for every time limit above the cap: the budgets' ``M_P``, the baselines, the exact methods'
    warm start and the driver all run the same order.
    """
    cap = options.minpeak_time_limit
    return min(cap, options.time_limit)


def baseline_order(graph: Graph, accelerator: Accelerator, order: str, options: Options) -> ScheduleResult:
    """The operator order a baseline runs: ``default`` or ``minpeak`` (sizes at the accelerator's alignment).

    The min-peak search gets :func:`minpeak_time_limit` seconds, so every method that starts from a
    baseline (the exact ones, the driver) sees the same order as the baseline run on its own.
    """
    if order == "default":
        return default_schedule(graph)
    if order == "minpeak":
        return min_peak_order(aligned(graph, accelerator.alignment), time_limit=minpeak_time_limit(options))
    raise OptionError(f"unknown operator order {order!r}; choose one of {', '.join(ORDERS)}")


def solve_baseline(
    graph: Graph,
    accelerator: Accelerator,
    options: Options,
    *,
    order: str,
    policy: str,
    schedule: ScheduleResult | None = None,
) -> Plan:
    """Plan ``graph`` with the ``order`` + ``policy`` baseline (``schedule``: a precomputed order)."""
    if policy not in POLICIES:
        raise OptionError(f"unknown replacement policy {policy!r}; choose one of {', '.join(POLICIES)}")
    started = time.perf_counter()
    check_budget(graph, accelerator)
    schedule = schedule or baseline_order(graph, accelerator, order, options)
    plan = plan_fixed_order(
        graph, accelerator, schedule.order, allocator=options.allocator, policy=policy, method=f"{order}+{policy}"
    )
    details = {
        **plan.summary.details,
        "order": order,
        "order_method": schedule.method,
        "order_peak": schedule.peak,
        "order_peak_proven": schedule.proven,
        "order_seconds": round(schedule.seconds, 6),
    }
    return plan.with_summary(solve_seconds=time.perf_counter() - started, details=details)


def _method(order: str, policy: str) -> Callable[[Graph, Accelerator, Options], Plan]:
    def solve(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
        return solve_baseline(graph, accelerator, options, order=order, policy=policy)

    solve.__name__ = f"solve_{order}_{policy}"
    solve.__doc__ = f"Baseline: the {order} operator order, {policy} replacement, the options' allocator."
    return solve


default_belady = _method("default", "belady")
minpeak_belady = _method("minpeak", "belady")
default_greedy = _method("default", "greedy")
minpeak_greedy = _method("minpeak", "greedy")


def best_baseline(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """The plan with the least extra bytes among the four baselines (ties: the earlier in :data:`BASELINES`).

    Each order is computed once and shared by its two policies. The plan's summary lists every
    baseline's extra bytes under ``details["baselines"]``.
    """
    return best_baseline_and_orders(graph, accelerator, options)[0]


def best_baseline_and_orders(
    graph: Graph, accelerator: Accelerator, options: Options
) -> tuple[Plan, dict[str, ScheduleResult]]:
    """:func:`best_baseline`, and the two orders the baselines ran (callers reuse the min-peak search's bound)."""
    check_budget(graph, accelerator)
    schedules = {order: baseline_order(graph, accelerator, order, options) for order in ORDERS}
    plans = []
    for name in BASELINES:
        order, policy = name.split("+")
        plans.append(solve_baseline(graph, accelerator, options, order=order, policy=policy, schedule=schedules[order]))
    best = min(range(len(plans)), key=lambda i: (plans[i].extra_bytes, i))
    details = {**plans[best].summary.details, "baselines": {n: p.extra_bytes for n, p in zip(BASELINES, plans)}}
    return plans[best].with_summary(details=details), schedules
