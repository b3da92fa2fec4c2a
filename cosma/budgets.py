"""Scratchpad budgets of a graph, by name, as the COSMA paper defines them.

- ``M_R``: the largest working set (inputs + outputs of one operator), the smallest scratchpad
  that can run the graph at all;
- ``M_P``: the minimum peak over all operator orders with no eviction
  (:func:`cosma.schedule.min_peak_order`): the smallest scratchpad that needs no extra traffic
  when fragmentation is ignored;
- ``M_H = (M_R + M_P) / 2`` (rounded down), the budget in between.

Each is taken of a graph variant: with weights in the scratchpad, or activation-only
(:meth:`Graph.without_weights <cosma.graph.Graph.without_weights>`); :func:`budgets` gives all six.
With an alignment above 1 every tensor is counted at its aligned size, as the allocators place it.
In-place pairs (:mod:`cosma.graph`) count as the graph's analyses count them: ``M_R`` shares an
overwritten input's bytes with its output, ``M_P`` saves them where the order reads the input last.
A graph loaded with ``inplace=False`` (``--no-inplace``) gives COSMA's figures.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> g = Graph.build("skip", [Tensor("x", 2, "input"), Tensor("s", 6, "activation"),
    ...     Tensor("u", 10, "activation"), Tensor("v", 3, "activation"), Tensor("y", 1, "output")],
    ...     [Operator("a", "Relu", ("x",), ("s",)), Operator("b", "Conv", ("s",), ("u",)),
    ...      Operator("c", "Conv", ("u",), ("v",)), Operator("d", "Add", ("s", "v"), ("y",))])
    >>> b = graph_budgets(g)
    >>> b.m_r, b.m_h, b.m_p, b.m_p_proven
    (16, 17, 19, True)
    >>> resolve_budget(g, "M_H"), resolve_budget(g, "512")
    (17, 512)
"""

from __future__ import annotations

from dataclasses import dataclass

from cosma.errors import OptionError
from cosma.graph import Graph
from cosma.hardware import aligned
from cosma.schedule import ScheduleResult, min_peak_order
from cosma.schedule.minpeak import DEFAULT_TIME_LIMIT
from cosma.units import parse_size

#: Budget names accepted wherever a scratchpad size is, smallest first.
BUDGET_NAMES: tuple[str, ...] = ("M_R", "M_H", "M_P")


@dataclass(frozen=True)
class GraphBudgets:
    """``M_R``, ``M_H`` and ``M_P`` of one graph variant, in bytes.

    ``m_p`` is the peak of the best order found; ``m_p_bound`` a proven lower bound on the true
    minimum, ``m_p_proven`` whether they meet (the search's time limit can leave them apart).
    """

    m_r: int
    m_h: int
    m_p: int
    m_p_proven: bool
    m_p_bound: int
    m_p_method: str

    def get(self, name: str) -> int:
        """The budget called ``name`` (one of :data:`BUDGET_NAMES`, any case)."""
        key = name.strip().upper()
        if key not in BUDGET_NAMES:
            raise OptionError(f"unknown budget {name!r}; use one of {', '.join(BUDGET_NAMES)} or a size")
        return {"M_R": self.m_r, "M_H": self.m_h, "M_P": self.m_p}[key]


@dataclass(frozen=True)
class Budgets:
    """The six budgets of a model: each of ``M_R``, ``M_H``, ``M_P`` with and without weights."""

    with_weights: GraphBudgets
    without_weights: GraphBudgets

    def items(self) -> list[tuple[str, int]]:
        """``(label, bytes)`` for all six, weights first: ``M_R``... then ``M_R/no-weights``..."""
        return [(n, self.with_weights.get(n)) for n in BUDGET_NAMES] + [
            (f"{n}/no-weights", self.without_weights.get(n)) for n in BUDGET_NAMES
        ]


def graph_budgets(graph: Graph, *, alignment: int = 1, time_limit: float = DEFAULT_TIME_LIMIT) -> GraphBudgets:
    """``M_R``, ``M_H`` and ``M_P`` of ``graph`` as it is (weights in it or not)."""
    sized = aligned(graph, alignment)
    return budgets_of_schedule(sized, min_peak_order(sized, time_limit=time_limit))


def budgets_of_schedule(graph: Graph, schedule: ScheduleResult) -> GraphBudgets:
    """``M_R``, ``M_H`` and ``M_P`` of ``graph`` given its minimum-peak ``schedule`` (for a caller that also
    needs the order itself, such as the benchmark's fixed-order runs)."""
    m_r = graph.min_scratchpad
    return GraphBudgets(
        m_r=m_r,
        m_h=(m_r + schedule.peak) // 2,
        m_p=schedule.peak,
        m_p_proven=schedule.proven,
        m_p_bound=schedule.bound,
        m_p_method=schedule.method,
    )


def budgets(graph: Graph, *, alignment: int = 1, time_limit: float = DEFAULT_TIME_LIMIT) -> Budgets:
    """All six budgets: of ``graph`` (weights counted) and of its activation-only variant.

    ``time_limit`` applies to each of the two minimum-peak searches.
    """
    with_weights = graph_budgets(graph, alignment=alignment, time_limit=time_limit)
    if not any(t.kind == "weight" for t in graph.tensors):
        return Budgets(with_weights, with_weights)
    return Budgets(with_weights, graph_budgets(graph.without_weights(), alignment=alignment, time_limit=time_limit))


def resolve_budget(graph: Graph, text: str, *, alignment: int = 1, time_limit: float = DEFAULT_TIME_LIMIT) -> int:
    """Bytes for a ``--scratchpad`` value: a size (``512KiB``) or a budget name (``M_R``, ``M_H``, ``M_P``).

    The names refer to ``graph`` as given: load it ``--no-weights`` for the activation-only budgets.
    """
    key = str(text).strip().upper()
    if key == "M_R":
        return aligned(graph, alignment).min_scratchpad
    if key in BUDGET_NAMES:
        return graph_budgets(graph, alignment=alignment, time_limit=time_limit).get(key)
    if key.startswith("M_"):
        raise OptionError(f"unknown budget {text!r}; use one of {', '.join(BUDGET_NAMES)} or a size such as 512KiB")
    return parse_size(text)
