"""Cheap lower bounds that need no solver run: the forced-spanning covers.

At the step of operator ``o`` its inputs and outputs must be resident (``M_o``), and so must every
tensor that is *forced to span* ``o`` unless the plan pays to evict it: a tensor with a use forced
before ``o`` and a use forced after ``o`` (``S_o``). When ``F(M_o) + F(S_o)`` exceeds the capacity,
some subset of ``S_o`` with footprint at least the excess is out of the scratchpad at ``o``'s step,
and each tensor of that subset costs at least one reload, plus one store for an activation. The
cheapest such subset (a covering knapsack, solved exactly) is a lower bound; covers of operators
whose spanning sets are disjoint are paid by different tensors, so they add up.

For min-peak mode (no eviction) ``F(M_o) + F(S_o)`` itself bounds the extent from below.

In-place pairs (docs/formulation.md, "In-place operators"). ``M_o`` counts an input that an output of
``o`` may overwrite once for both: any plan may overwrite it (a later reader then pays a reload, which
the cover does not need to count), so the excess can only be smaller. In min-peak mode an input is
overwritten only where ``o`` may be its last use (nothing is reloaded); elsewhere it counts in full. The
peak bound needs nothing more: the peak of an order already saves an input overwritten at its last use,
and an input overwritten before a later use is loaded again, at a cost of at least its size, as the
argument below counts for an untouched live tensor that is out.

The *peak bound*: every allowed order has a step where at least ``P`` bytes are live with no eviction
(``P``: the fixed order's peak, or a proven floor on the minimum peak over all orders). The live tensors
the running operator does not touch have a use before and a use after that step, so each one that is
out of the scratchpad is loaded again later, at a cost of at least its size; at least ``P - C`` bytes of
them are out. So ``extra >= P - C``.

Every bound here is checked against the exhaustive oracle in ``tests/test_formulation.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ortools.algorithms.python import knapsack_solver

from cosma.formulation.instance import Instance
from cosma.schedule import graph_lower_bound

#: Covering knapsacks with more spanners than this take their LP bound (rounded up), not the exact optimum.
#: Up to it, the exact optimum comes from enumerating every subset (at most 2**16, 0.2 ms in OR-Tools' brute
#: force solver): no time limit, so the same inputs give the same bound on any machine. Branch and bound,
#: used before, blew up on RandWire's dozens of equal items and needed a wall-clock limit.
KNAPSACK_MAX_ITEMS = 16


@dataclass(frozen=True)
class Cover:
    """The pressure at one operator: must-resident units, forced spanners and the cheapest cover."""

    op: str
    must: int
    spanning: frozenset[str]
    cost: int  # cost units


def spanning_sets(instance: Instance) -> dict[str, frozenset[str]]:
    """``S_o`` for every operator: tensors not used by ``o`` with a use forced before and one forced after it."""
    members: dict[str, set[str]] = {o: set() for o in instance.order}
    for t in instance.tensors:
        before = after = 0
        for u in instance.uses[t]:
            before |= instance.after_mask(u)  # ops that some use of t is forced to precede
            after |= instance.before_mask(u)  # ops that some use of t is forced to follow
        for u in instance.uses[t]:
            before &= ~(1 << instance.index[u])
        span = before & after
        while span:
            low = span & -span
            members[instance.order[low.bit_length() - 1]].add(t)
            span ^= low
    return {o: frozenset(ts) for o, ts in members.items()}


def spanning(instance: Instance, op: str) -> frozenset[str]:
    """``S_o`` of one operator."""
    return spanning_sets(instance)[op]


def must_units(instance: Instance, op: str, *, reloads: bool = True) -> int:
    """Units resident at ``op``'s step: its inputs and outputs, an input some output may overwrite in place
    counted once for both (with ``reloads=False``, only where ``op`` may be the input's last use)."""
    o = instance.graph.op(op)
    total = sum(instance.footprint.get(t, 0) for t in set(o.inputs) | set(o.outputs))
    shared = (t for t in o.overwritable if reloads or instance.may_be_last(t, op))
    return total - sum(instance.footprint.get(t, 0) for t in shared)


def cover(instance: Instance, op: str, span: frozenset[str] | None = None) -> Cover:
    """The cheapest set of forced spanners of ``op`` whose eviction makes its step fit."""
    span = spanning(instance, op) if span is None else span
    must = must_units(instance, op)
    room = instance.capacity - must
    items = sorted(span)
    sizes = [instance.footprint[t] for t in items]
    if sum(sizes) <= room:
        return Cover(op, must, span, 0)
    costs = [instance.reload_cost(t) + instance.spill_cost(t) for t in items]
    need = sum(sizes) - max(room, 0)
    fractional, greedy = _fractional_cover(costs, sizes, need)
    if fractional == greedy:  # the LP bound is met by an integer cover: it is the optimum
        return Cover(op, must, span, greedy)
    if len(items) > KNAPSACK_MAX_ITEMS:  # enumeration doubles per item: the LP bound stands beyond the cap
        return Cover(op, must, span, fractional)
    solver = knapsack_solver.KnapsackSolver(knapsack_solver.SolverType.KNAPSACK_BRUTE_FORCE_SOLVER, "kept")
    solver.init(costs, [sizes], [max(room, 0)])
    kept = solver.solve()  # the most valuable spanners that can stay, over every subset
    if not solver.is_solution_optimal():  # never without a time limit; the LP bound would still be valid
        return Cover(op, must, span, fractional)
    return Cover(op, must, span, sum(costs) - kept)


def _fractional_cover(costs: list[int], sizes: list[int], need: int) -> tuple[int, int]:
    """The LP bound of the cheapest cover of ``need`` units (rounded up) and the cost of the greedy cover."""
    ranked = sorted((i for i in range(len(costs)) if sizes[i] > 0), key=lambda i: (costs[i] / sizes[i], i))
    left, whole, bound = need, 0, None
    for i in ranked:
        if left <= 0:
            break
        if sizes[i] >= left and bound is None:
            bound = whole + -(-costs[i] * left // sizes[i])
        whole += costs[i]
        left -= sizes[i]
    return (whole if bound is None else bound), whole


def eviction_bound(instance: Instance) -> int:
    """Lower bound on the extra traffic (cost units): covers of operators with disjoint spanning sets."""
    sets = spanning_sets(instance)
    covers = sorted((cover(instance, o, sets[o]) for o in instance.order), key=lambda c: -c.cost)
    total, used = 0, set[str]()
    for c in covers:
        if c.cost == 0:
            break
        if used.isdisjoint(c.spanning):
            total += c.cost
            used |= c.spanning
    return total


def peak_bound(instance: Instance) -> int:
    """Lower bound on the extra traffic (cost units): ``P - C`` rounded up, ``P`` a floor on any order's peak."""
    graph = instance.graph
    floor = graph.peak(instance.order) if instance.mode == "fixed-order" else graph_lower_bound(graph)
    excess = floor - instance.accelerator.scratchpad_bytes
    return -(-excess // instance.cost_unit) if excess > 0 else 0


def lower_bound(instance: Instance) -> int:
    """The better of the cover and peak bounds (cost units); they may count the same tensors, so not their sum."""
    return max(eviction_bound(instance), peak_bound(instance))


def extent_bound(instance: Instance) -> int:
    """Lower bound on the address extent (units) of a plan that never evicts."""
    sets = spanning_sets(instance)
    return max(
        (must_units(instance, o, reloads=False) + sum(instance.footprint[t] for t in sets[o]) for o in instance.order),
        default=0,
    )
