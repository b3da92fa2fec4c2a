"""The hardware description: the accelerator's scratchpad as data, and the checks a budget must pass.

An :class:`Accelerator` is one scratchpad of ``scratchpad_bytes`` with placements on ``alignment``
(``shared/docs/plan-format.md``, "The machine being modelled"). It is kept apart from solver options
(:mod:`cosma.options`) and from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosma.errors import BudgetError, OptionError
from cosma.graph import Graph, Tensor, round_up


@dataclass(frozen=True)
class Accelerator:
    """The machine: one scratchpad of ``scratchpad_bytes`` with placements on ``alignment``."""

    scratchpad_bytes: int
    alignment: int = 1

    def __post_init__(self) -> None:
        if self.scratchpad_bytes <= 0:
            raise OptionError(f"scratchpad must be a positive number of bytes, got {self.scratchpad_bytes}")
        if self.alignment < 1:
            raise OptionError(f"alignment must be at least 1 byte, got {self.alignment}")


def aligned(graph: Graph, alignment: int) -> Graph:
    """``graph`` with every tensor's size rounded up to a multiple of ``alignment``."""
    if alignment == 1:
        return graph
    tensors = (Tensor(t.name, round_up(t.bytes, alignment), t.kind, t.shape, t.dtype) for t in graph.tensors)
    return Graph.build(graph.name, tensors, graph.ops, graph.metadata)


def check_budget(graph: Graph, accelerator: Accelerator) -> None:
    """Raise :class:`BudgetError` when the largest aligned working set exceeds the scratchpad."""
    if not graph.ops:
        return
    op = graph.largest_op(accelerator.alignment)
    need = graph.working_set(op.name, accelerator.alignment)
    if need > accelerator.scratchpad_bytes:
        raise BudgetError(op.name, need, accelerator.scratchpad_bytes)
