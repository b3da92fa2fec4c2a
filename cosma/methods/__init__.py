"""Every planning method behind one name-keyed registry, and :func:`compile`, the one entry point.

A method has the shape ``solve(graph, accelerator, options) -> Plan`` so that the CLI, the
benchmark and the tests need no special cases. Each is registered once, with a name and a one-line
description, in :mod:`cosma.methods.registry`; the modules of this package are found with
:mod:`pkgutil`, so a new method is one new file. :data:`METHODS` reads the registry at each use.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from cosma.budgets import resolve_budget
from cosma.errors import OptionError
from cosma.graph import Graph
from cosma.hardware import Accelerator, check_budget
from cosma.methods import dc, exact, neighbourhood
from cosma.methods.baselines import minpeak_time_limit
from cosma.methods.registry import AUTO, Method, MethodSpec, add_method, methods, register_method, unregister_method
from cosma.options import Options
from cosma.plan import Plan
from cosma.provenance import plan_provenance

# The exact family's registrations, kept here until their modules (exact, neighbourhood, dc) carry
# them as @register_method; each is still registered once.
add_method(
    MethodSpec(
        "joint",
        "order, addresses and evictions together, proven optimal or with a gap; never worse than a baseline",
        neighbourhood.solve_joint,
    )
)
add_method(
    MethodSpec(
        "fixed-order",
        "addresses and evictions for a fixed order (minimum-peak by default; COSMA's FS mode)",
        exact.solve_fixed_order,
    )
)
add_method(
    MethodSpec(
        "min-peak", "no eviction at all: an order and addresses of least extent, or exit 1/3", exact.solve_min_peak
    )
)
add_method(
    MethodSpec(
        "dc",
        "divide and conquer: exact windows over a long order, with a global bound; for large graphs",
        dc.solve_dc,
    )
)

#: The method ``auto`` stands for on small graphs (see :func:`auto_method`).
DEFAULT_METHOD = "joint"
#: ``auto``: the exact joint solver, warm-started from (and never worse than) the best baseline; for graphs
#: of more than :data:`cosma.methods.dc.DC_THRESHOLD_OPS` operators (or with ``segment_ops`` set), ``dc``.
AUTO_DESCRIPTION = f"the default: {DEFAULT_METHOD}, or dc above {dc.DC_THRESHOLD_OPS} operators or with --segment-ops"


class MethodTable(Mapping[str, Method]):
    """The registered methods by name, read from the registry at each use (so one registered later is in)."""

    def __getitem__(self, name: str) -> Method:
        return methods()[name].solve

    def __iter__(self) -> Iterator[str]:
        return iter(methods())

    def __len__(self) -> int:
        return len(methods())

    def __repr__(self) -> str:
        return f"MethodTable({list(self)})"


METHODS: Mapping[str, Method] = MethodTable()


def method_spec(name: str) -> MethodSpec:
    """The registered method ``name`` (not ``auto``); an unknown name is bad input, named with the choices."""
    found = methods()
    if name not in found:
        raise OptionError(f"unknown method {name!r}; choose one of: {AUTO}, {', '.join(found)}")
    return found[name]


def method_names() -> tuple[str, ...]:
    """What ``--method`` accepts: ``auto`` and every registered method."""
    return (AUTO, *methods())


def auto_method(graph: Graph, options: Options) -> str:
    """The method ``auto`` stands for: ``dc`` above the measured size threshold or when ``segment_ops`` is set."""
    if options.segment_ops or len(graph.ops) > dc.DC_THRESHOLD_OPS:
        return "dc"
    return DEFAULT_METHOD


def compile(
    graph: Graph,
    scratchpad_bytes: int | str,
    *,
    method: str = AUTO,
    alignment: int = 1,
    options: Options | None = None,
    **option_changes: Any,
) -> Plan:
    """Plan ``graph`` for a scratchpad of ``scratchpad_bytes``; the result is validated.

    ``scratchpad_bytes`` is a number of bytes or a size as users write it: ``"512KiB"``, or a budget name
    of the graph, ``"M_R"``, ``"M_H"`` or ``"M_P"`` (:func:`cosma.budgets.resolve_budget`, at the given
    alignment, with the min-peak search's share of the time limit).

    Example:
        >>> from cosma.graph import Graph, Operator, Tensor
        >>> g = Graph.build("g", [Tensor("x", 4, "input"), Tensor("y", 4, "output")],
        ...                 [Operator("relu", "Relu", ("x",), ("y",))])
        >>> compile(g, 8).summary.extra_bytes
        0
        >>> compile(g, "M_R").accelerator.scratchpad_bytes
        8
    """
    options = replace(options or Options(), **option_changes)
    started = time.perf_counter()
    run_options = options
    if isinstance(scratchpad_bytes, str):
        share = minpeak_time_limit(options)
        text = scratchpad_bytes
        scratchpad_bytes = resolve_budget(graph, text, alignment=alignment, time_limit=share)
        if scratchpad_bytes <= 0:
            raise OptionError(f"a scratchpad of {scratchpad_bytes} B; give a positive size such as 512KiB, or M_R")
        if text.strip().upper() in ("M_H", "M_P"):
            # these ran the min-peak search's share: it counts against the limit like every phase. What is
            # left is a function of the options, not of the clock, so the method's own min-peak search gets
            # the same share (and finds the same order) whenever the limit leaves room for it.
            left = max(0.0, options.time_limit - share)
            run_options = replace(options, time_limit=left)
    accelerator = Accelerator(scratchpad_bytes, alignment)
    check_budget(graph, accelerator)
    name = auto_method(graph, options) if method == AUTO else method
    solve = method_spec(name).solve
    plan = solve(graph, accelerator, run_options)
    plan = plan.with_summary(total_seconds=time.perf_counter() - started)
    return replace(plan, provenance=plan_provenance(graph, accelerator, method, name, options))


__all__ = [
    "AUTO",
    "AUTO_DESCRIPTION",
    "DEFAULT_METHOD",
    "METHODS",
    "Method",
    "MethodSpec",
    "MethodTable",
    "add_method",
    "auto_method",
    "compile",
    "method_names",
    "method_spec",
    "methods",
    "register_method",
    "unregister_method",
]
