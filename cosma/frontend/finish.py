"""The steps every front end shares: checking its options, and the passes that end each lowering."""

from __future__ import annotations

from collections.abc import Callable

from cosma.errors import OptionError
from cosma.frontend.inplace import declare_inplace
from cosma.graph import Graph


def check_element_bytes(element_bytes: int | None) -> None:
    """``element_bytes`` overrides every tensor's element size; it must be a positive integer when given."""
    if element_bytes is not None and element_bytes < 1:
        raise OptionError(f"element_bytes must be a positive integer, not {element_bytes}; use 1 for int8")


def finish(graph: Graph, *, fuse: Callable[[Graph], Graph] | None, weights: bool, inplace: bool) -> Graph:
    """Fusion, then weights out of the scratchpad (activation-only studies), then in-place pairs: pairs come last
    because they depend on the fused operators and on which tensors remain."""
    if fuse is not None:
        graph = fuse(graph)
    if not weights:
        graph = graph.without_weights()
    if inplace:
        graph = declare_inplace(graph)
    return graph
