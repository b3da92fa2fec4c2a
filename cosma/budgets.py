"""Scratchpad budgets of a graph, by name: ``M_R`` (largest working set), ``M_P`` (minimum peak
of any order, no eviction) and ``M_H = (M_R + M_P) / 2``, as COSMA defines them."""

from __future__ import annotations

from cosma.graph import Graph
from cosma.units import parse_size


def resolve_budget(graph: Graph, text: str) -> int:
    """Bytes for a ``--scratchpad`` value: a size (``512KiB``) or a budget name (``M_R``)."""
    if text.strip().upper() == "M_R":
        return graph.min_scratchpad
    return parse_size(text)
