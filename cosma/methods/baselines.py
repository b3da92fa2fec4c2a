"""The baselines the COSMA paper compares against, as planning methods of cosma.

A baseline fixes the operator order first and then walks it once with an online allocator and
a replacement policy (:func:`cosma.replace.engine.plan_fixed_order`). The baselines are every
operator order of :data:`ORDERS` with every replacement policy registered in
:mod:`cosma.replace.registry`, generated at each look-up; the shipped ones:

==================  =====================================  ==========================================
method              order (:mod:`cosma.schedule`)           replacement when no free range fits
==================  =====================================  ==========================================
``default+belady``  the ONNX node order                    furthest next use first (Belady's MIN)
``minpeak+belady``  an order of minimum peak (MPMF)        furthest next use first
``default+greedy``  the ONNX node order                    cheapest contiguous window (locally optimal)
``minpeak+greedy``  an order of minimum peak               cheapest contiguous window
==================  =====================================  ==========================================

A new policy (one file in ``cosma/replace/policies/``) adds ``default+NAME`` and ``minpeak+NAME``.
The allocator (``first-fit`` by default, or ``best-fit``) comes from
:class:`~cosma.options.Options`, the alignment from the :class:`~cosma.hardware.Accelerator`.
:func:`best_baseline` runs them all and keeps the plan with the least extra traffic: the exact
methods' and dc's warm start and their "never worse than a baseline" guarantee. ``docs/baselines.md``
says what each one mirrors.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> from cosma.options import Options
    >>> g = Graph.build("g", [Tensor("x", 4, "input"), Tensor("h", 8, "activation"),
    ...                       Tensor("y", 4, "output")],
    ...                 [Operator("a", "Relu", ("x",), ("h",)), Operator("b", "Relu", ("h",), ("y",))])
    >>> plan = best_baseline(g, Accelerator(12), Options())
    >>> plan.summary.method, plan.extra_bytes
    ('default+belady', 0)
"""

from __future__ import annotations

import functools
import time

from cosma.errors import OptionError
from cosma.graph import Graph
from cosma.hardware import Accelerator, aligned, check_budget
from cosma.methods.registry import Method, MethodSpec, register_family
from cosma.options import Options
from cosma.plan import Plan
from cosma.replace.engine import plan_fixed_order
from cosma.replace.registry import get_policy, policies
from cosma.schedule import ScheduleResult, default_schedule, min_peak_order

#: The operator orders a baseline may run (:func:`baseline_order`), each with what it is.
ORDERS: dict[str, str] = {
    "default": "the ONNX node order",
    "minpeak": "an order of minimum peak",
}


def baseline_names() -> tuple[str, ...]:
    """``ORDER+POLICY`` for every registered policy (by rank) and every order: the order
    :func:`best_baseline` prefers them in on ties."""
    return tuple(f"{order}+{policy.name}" for policy in policies() for order in ORDERS)


#: The baselines of the policies shipped as files, as at import (today's four); :func:`baseline_names`
#: also has the policies registered at run time.
BASELINES: tuple[str, ...] = baseline_names()


def minpeak_time_limit(options: Options) -> float:
    """The min-peak search's share of a run: ``options.minpeak_time_limit`` seconds (default
    :data:`~cosma.options.MINPEAK_TIME_LIMIT`), at most the time limit.

    The search's work budget follows from it, so the order is a function of the options alone, and
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
    get_policy(policy)  # an unknown policy is bad input before the order's search runs
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


@functools.cache
def _method(order: str, policy: str) -> Method:
    def solve(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
        return solve_baseline(graph, accelerator, options, order=order, policy=policy)

    solve.__name__ = f"solve_{order}_{policy}"
    solve.__doc__ = f"Baseline: the {order} operator order, {policy} replacement, the options' allocator."
    return solve


def baseline_specs() -> list[MethodSpec]:
    """The baselines as planning methods, for the method registry."""
    return [
        MethodSpec(
            f"{order}+{policy.name}",
            f"baseline: {ORDERS[order]}, then {policy.description}",
            _method(order, policy.name),
        )
        for policy in policies()
        for order in ORDERS
    ]


register_family("baselines", baseline_specs)


def best_baseline(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """The plan with the least extra bytes among the baselines (ties: the earlier in :func:`baseline_names`).

    Every registered policy runs on each order; each order is computed once and shared by the policies.
    The plan's summary lists every baseline's extra bytes under ``details["baselines"]``.
    """
    return best_baseline_and_orders(graph, accelerator, options)[0]


def best_baseline_and_orders(
    graph: Graph, accelerator: Accelerator, options: Options
) -> tuple[Plan, dict[str, ScheduleResult]]:
    """:func:`best_baseline`, and the orders the baselines ran (callers reuse the min-peak search's bound)."""
    check_budget(graph, accelerator)
    schedules = {order: baseline_order(graph, accelerator, order, options) for order in ORDERS}
    names = baseline_names()
    plans = []
    for name in names:
        order, _, policy = name.partition("+")
        plans.append(solve_baseline(graph, accelerator, options, order=order, policy=policy, schedule=schedules[order]))
    best = min(range(len(plans)), key=lambda i: (plans[i].extra_bytes, i))
    details = {**plans[best].summary.details, "baselines": {n: p.extra_bytes for n, p in zip(names, plans)}}
    return plans[best].with_summary(details=details), schedules
