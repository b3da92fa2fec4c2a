"""What a floor on the minimum peak implies for traffic, counted in whole tensors.

Every order has a step where at least ``P`` bytes are live with no eviction (``P``: a proven floor on
the minimum peak). At that step the running operator's inputs and outputs are resident, and at most
``C`` bytes are, so live tensors the operator does not touch with at least ``P - C`` bytes between them
are out of the scratchpad. Each of them was produced or loaded before the step (it is live) and is read
after it (the operator does not touch it), so it is loaded again: at least one reload, and for an
activation (no DRAM copy) a store before it left. The extra traffic is therefore at least the cheapest
set of tensors that *could* be live and untouched at some step (``evictable``: two touching operators
or more) whose bytes reach ``P - C``: a covering knapsack over whole tensors. Where the tensors are of
a few sizes (RandWire: one per stage) whole tensors matter: one more byte than a tensor's size needs two.

The bound of :mod:`cosma.formulation.bounds` (``peak_bound``) charges one byte per byte; this one charges
whole tensors at their reload and store prices, so it is never lower.

Segments (:mod:`cosma.schedule.segments`) run one after the other in every order, each with a step at
its own floor (``background + its minimum``). The tensors all of whose touchers lie in one segment
are *internal* to it and live at no other segment's steps, so the covers of different segments are
paid by different tensors and add up; a non-internal tensor (background, or touched by another
segment too) is counted as out for free, which only lowers each term.

Every bound is checked against the exhaustive oracle in ``tests/test_bounds_large.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cosma.graph import Graph

#: Pareto points the exact covering knapsack may hold; past it the LP bound (rounded up) stands, which
#: is still a lower bound, so the result never depends on time.
MAX_FRONT = 50_000


@dataclass(frozen=True)
class SegmentFloor:
    """A proven floor (bytes, background included) on the live bytes at some step of one segment, and the
    operators of the segment."""

    ops: frozenset[str]
    floor: int


def evictable(graph: Graph) -> dict[str, tuple[int, int]]:
    """``(bytes, cost bytes)`` of every tensor that can be live at a step that does not touch it: the cost
    of evicting it there is a reload, plus a store for an activation."""
    touchers: Counter[str] = Counter()
    for o in graph.ops:
        for t in set(o.inputs) | set(o.outputs):
            touchers[t] += 1
    out = {}
    for t, n in touchers.items():
        size = graph.size(t)
        if n >= 2 and size > 0:
            kind = graph.tensor(t).kind
            out[t] = (size, size * (2 if kind == "activation" else 1))
    return out


def min_cover_cost(items: Iterable[tuple[int, int]], need: int) -> int:
    """The least total cost of items (``(size, cost)``, each used at most once) whose sizes reach ``need``;
    a lower bound on it (the LP bound, rounded up) when the exact front grows past :data:`MAX_FRONT`.
    Returns ``-1`` when even all items do not reach ``need`` (no plan can exist)."""
    if need <= 0:
        return 0
    classes = Counter((s, c) for s, c in items if s > 0)
    if sum(s * n for (s, _), n in classes.items()) < need:
        return -1
    # Pareto front of (covered bytes capped at need, cost): items of one class are interchangeable, so a
    # class adds 0..k copies at once, k no more than needed to cover on its own
    front: dict[int, int] = {0: 0}
    for (size, cost), count in sorted(classes.items()):
        copies = min(count, -(-need // size))
        grown = dict(front)
        for covered, paid in front.items():
            for k in range(1, copies + 1):
                c = min(need, covered + k * size)
                p = paid + k * cost
                if p < grown.get(c, p + 1):
                    grown[c] = p
                if c == need:
                    break
        front = _pareto(grown)
        if len(front) > MAX_FRONT:
            return _lp_cover(classes, need)
    return front[need]


def _pareto(points: dict[int, int]) -> dict[int, int]:
    """Points no other covers as much for as little."""
    kept: dict[int, int] = {}
    best = None
    for covered in sorted(points, reverse=True):
        paid = points[covered]
        if best is None or paid < best:
            kept[covered] = paid
            best = paid
    return kept


def _lp_cover(classes: Counter[tuple[int, int]], need: int) -> int:
    """The fractional covering knapsack's optimum, rounded up."""
    left, total = need, 0
    for (size, cost), count in sorted(classes.items(), key=lambda kv: kv[0][1] / kv[0][0]):
        take = min(count * size, left)
        if take == count * size:
            total += count * cost
            left -= take
        else:
            return total + -(-cost * take // size)
    return total


def peak_traffic_bound(graph: Graph, capacity: int, floor: int) -> int:
    """Extra traffic (bytes) every plan pays when every order has a step with ``floor`` live bytes."""
    excess = floor - capacity
    if excess <= 0:
        return 0
    return max(0, min_cover_cost(evictable(graph).values(), excess))


def segments_traffic_bound(graph: Graph, capacity: int, floors: Sequence[SegmentFloor]) -> int:
    """The sum over segments (``floors`` in the order every topological order runs them) of each one's cover,
    paid by its internal tensors; a tensor touched from two segments may be out at no cost to the terms of
    the segments from its first toucher's to its last's (module docstring)."""
    pool = evictable(graph)
    where = {name: k for k, f in enumerate(floors) for name in f.ops}
    reach: dict[str, tuple[int, int]] = {}
    for o in graph.ops:
        k = where.get(o.name)
        for t in set(o.inputs) | set(o.outputs):
            if t not in pool:
                continue
            if k is None:  # an operator of no listed segment: the tensor is internal to none
                reach[t] = (0, len(floors) - 1) if t not in reach else (0, max(reach[t][1], len(floors) - 1))
                continue
            lo, hi = reach.get(t, (k, k))
            reach[t] = (min(lo, k), max(hi, k))
    total = 0
    for k, f in enumerate(floors):
        excess = f.floor - capacity
        if excess <= 0:
            continue
        inside = [pool[t] for t, (lo, hi) in reach.items() if lo == hi == k]
        shared = sum(pool[t][0] for t, (lo, hi) in reach.items() if lo <= k <= hi and lo != hi)
        total += max(0, min_cover_cost(inside, excess - shared))
    return total
