"""Every planning method behind one name-keyed registry, and :func:`compile`, the one entry point.

A method has the shape ``solve(graph, accelerator, options) -> Plan`` so that the CLI, the
benchmark and the tests need no special cases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cosma.errors import OptionError
from cosma.graph import Graph
from cosma.hardware import Accelerator, check_budget
from cosma.methods import baselines, dc, exact, neighbourhood
from cosma.options import Options
from cosma.plan import Plan
from cosma.provenance import plan_provenance

Method = Callable[[Graph, Accelerator, Options], Plan]


METHODS: dict[str, Method] = {
    "default+belady": baselines.default_belady,
    "minpeak+belady": baselines.minpeak_belady,
    "default+greedy": baselines.default_greedy,
    "minpeak+greedy": baselines.minpeak_greedy,
    "joint": neighbourhood.solve_joint,
    "fixed-order": exact.solve_fixed_order,
    "min-peak": exact.solve_min_peak,
    "dc": dc.solve_dc,
}
#: ``auto``: the exact joint solver, warm-started from (and never worse than) the best baseline; for graphs
#: of more than :data:`cosma.dc.DC_THRESHOLD_OPS` operators (or with ``segment_ops`` set), ``dc``.
DEFAULT_METHOD = "joint"


def auto_method(graph: Graph, options: Options) -> str:
    """The method ``auto`` stands for: ``dc`` above the measured size threshold or when ``segment_ops`` is set."""
    if options.segment_ops or len(graph.ops) > dc.DC_THRESHOLD_OPS:
        return "dc"
    return DEFAULT_METHOD


def compile(
    graph: Graph,
    scratchpad_bytes: int,
    *,
    method: str = "auto",
    alignment: int = 1,
    options: Options | None = None,
    **option_changes: Any,
) -> Plan:
    """Plan ``graph`` for a scratchpad of ``scratchpad_bytes``; the result is validated.

    Example:
        >>> from cosma.graph import Graph, Operator, Tensor
        >>> g = Graph.build("g", [Tensor("x", 4, "input"), Tensor("y", 4, "output")],
        ...                 [Operator("relu", "Relu", ("x",), ("y",))])
        >>> compile(g, 8).summary.extra_bytes
        0
    """
    options = replace(options or Options(), **option_changes)
    accelerator = Accelerator(scratchpad_bytes, alignment)
    check_budget(graph, accelerator)
    name = auto_method(graph, options) if method == "auto" else method
    if name not in METHODS:
        raise OptionError(f"unknown method {method!r}; choose one of: auto, {', '.join(METHODS)}")
    started = time.perf_counter()
    plan = METHODS[name](graph, accelerator, options)
    plan = plan.with_summary(total_seconds=time.perf_counter() - started)
    return replace(plan, provenance=plan_provenance(graph, accelerator, method, name, options))
