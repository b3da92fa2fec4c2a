"""Searches for a minimum-peak order of one :class:`~cosma.schedule.segments.Segment`.

Both searches walk the lattice of *down-sets* (sets ``S`` of operators closed under
predecessors, as in Serenity's dynamic programming over frontiers): from ``S`` any *ready*
operator ``o`` (all predecessors in ``S``) may run next, the step costs ``live(S, o)`` bytes
and the value of a path is the largest step it takes. The minimum peak is the bottleneck
shortest path from the empty set to the full set.

- :func:`exact_search` is best-first search on ``f(S) = max(g(S), h(S))``, where ``g`` is the
  path's peak so far and ``h(S) = max(open(S), max_{o ∉ S} floor(o))`` is a lower bound on every
  remaining step (an operator's step holds at least its floor,
  :attr:`~cosma.schedule.segments.Segment.op_floor`). ``f`` never decreases
  along a path, so the first complete set taken from the queue is optimal; states with
  ``f >= upper`` (an incumbent's peak) are dropped, and when the queue runs dry the incumbent is
  proven optimal. Stopped early (state or time limit) it returns the incumbent with the least
  ``f`` left in the queue as a proven lower bound.
- :func:`beam_search` keeps the ``width`` most promising states per number of operators run: a
  heuristic that scales to thousands of operators.

Both count their effort in *work units* (:class:`Work`): one unit per ready operator looked at
or copied, a few per live-bytes step evaluated. A state of a segment with hundreds of ready
operators costs that many more units than one of a narrow segment, so a budget in units takes
about the same time on any graph, where a budget in states would not.

Both apply one exact reduction (:func:`_forced`): a ready operator whose step costs no more than
``max(g(S), lower bound)`` and that leaves no more bytes open than before (it closes at least as
much as it opens for later steps) can run at once. Moving it to the front of any completion
never raises a later step: every tensor it opens for later is paid for by one it closes, and
the step itself stays under a value the path reaches anyway.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from cosma.schedule.segments import Segment

#: Units charged per state generated (on top of one per ready operator copied) and per evaluation of a step's
#: live bytes (:meth:`Segment.step`, on top of one per tensor it touches): their fixed Python overheads in
#: ready-operator look-ups, as profiled. Measured: 270-470 ns per unit on RandWire, NASNet and Transformer
#: segments of 170-1,002 operators, where one state costs 5-57 us.
STATE_UNITS = 8
STEP_UNITS = 2


@dataclass
class Work:
    """Work spent so far, in units of about one ready-operator look-up (a fraction of a microsecond)."""

    units: int = 0


# A path is a linked list of move tuples, newest first, so that states share their history.
Path = tuple[tuple[int, ...], "Path"] | None


@dataclass(frozen=True)
class SearchResult:
    """A local order of a segment and what is known about it."""

    order: tuple[int, ...]
    peak: int
    proven: bool
    bound: int  # no order of the segment has a smaller peak
    states: int  # states generated
    work: int = 0  # work units spent (see :class:`Work`)


@dataclass(frozen=True)
class _Node:
    done: int
    open_bytes: int
    peak: int
    ready: tuple[int, ...]
    path: Path
    #: ``(extra, delta)`` per ready operator, known from the parent unless in the mask ``stale``
    #: (see :func:`_costs_of`)
    known: Mapping[int, tuple[int, int]]
    stale: int
    costs: dict[int, tuple[int, int]] = field(default_factory=dict, compare=False)


def _costs_of(seg: Segment, node: _Node, work: Work) -> dict[int, tuple[int, int]]:
    """Per ready operator, ``(extra, delta)``: its step holds ``open_bytes + extra`` bytes and leaves
    ``open_bytes + delta`` open.

    Both depend only on which users of its tensors are done, so a child reuses its parent's values
    except for the operators sharing a tensor with the one it ran; they are computed on first use
    (most children in the exact search are never expanded).
    """
    if len(node.costs) != len(node.ready):
        node.costs.update(_costs(seg, node.done, node.ready, node.known, node.stale, work))
    return node.costs


def _moves(path: Path) -> tuple[int, ...]:
    chunks: list[tuple[int, ...]] = []
    while path is not None:
        chunks.append(path[0])
        path = path[1]
    return tuple(op for chunk in reversed(chunks) for op in chunk)


def _costs(
    seg: Segment,
    done: int,
    ready: tuple[int, ...],
    known: Mapping[int, tuple[int, int]],
    stale: int,
    work: Work,
) -> dict[int, tuple[int, int]]:
    """``(extra, delta)`` of every ready operator, reusing ``known`` except for operators in the mask ``stale``."""
    costs = {}
    units = len(ready)
    for op in ready:
        cost = None if stale >> op & 1 else known.get(op)
        if cost is None:
            live, after = seg.step(done, 0, op)
            cost = (live, after)
            units += STEP_UNITS + len(seg.touch[op])
        costs[op] = cost
    work.units += units
    return costs


def _advance(seg: Segment, node: _Node, op: int, moves: tuple[int, ...], parent: Path, work: Work) -> _Node:
    """``node`` after running ``op``; ``moves`` (if any) are recorded on the path after ``parent``."""
    costs = _costs_of(seg, node, work)
    work.units += STATE_UNITS + len(node.ready) + len(seg.succs[op])
    extra, delta = costs[op]
    done = node.done | (1 << op)
    ready = [r for r in node.ready if r != op]
    ready.extend(s for s in seg.succs[op] if not seg.preds[s] & ~done)
    return _Node(
        done,
        node.open_bytes + delta,
        max(node.peak, node.open_bytes + extra),
        tuple(sorted(ready)),
        (moves, parent) if moves else parent,
        costs,
        seg.neighbours[op],
    )


def _forced(seg: Segment, node: _Node, work: Work) -> _Node:
    """Run every operator that the reduction in the module docstring allows, as long as one does."""
    floor = seg.lower_bound
    moved: list[int] = []
    changed = True
    while changed:
        changed = False
        limit = max(node.peak, floor) - node.open_bytes
        costs = _costs_of(seg, node, work)
        for op in node.ready:
            extra, delta = costs[op]
            if delta <= 0 and extra <= limit:
                node = _advance(seg, node, op, (), None, work)
                moved.append(op)
                changed = True
                break
    if not moved:
        return node
    return replace(node, path=(tuple(moved), None), costs=node.costs)


def _child(seg: Segment, node: _Node, op: int, work: Work) -> _Node:
    """``node`` after running ``op`` (forced moves are applied by the caller)."""
    return _advance(seg, node, op, (op,), node.path, work)


def _expand_forced(seg: Segment, node: _Node, work: Work) -> _Node:
    """``node`` followed by its forced moves, with the path extended accordingly."""
    forced = _forced(seg, node, work)
    if forced.done == node.done:
        return node
    return replace(forced, path=(forced.path[0], node.path), costs=forced.costs)  # type: ignore[index]


def _start(seg: Segment, work: Work) -> _Node:
    ready = tuple(i for i, p in enumerate(seg.preds) if not p)
    node = _Node(0, seg.initial_open, 0, ready, None, {}, 0)
    return _forced(seg, node, work)


class _Bound:
    """``h(S)``: a lower bound on the largest step still to come from ``S``."""

    def __init__(self, seg: Segment) -> None:
        self.full = seg.full
        self.floor = seg.op_floor
        self.by_floor = sorted(range(len(seg.ops)), key=lambda i: -seg.op_floor[i])

    def __call__(self, node: _Node) -> int:
        if node.done == self.full:
            return 0
        for op in self.by_floor:
            if not node.done >> op & 1:
                return max(node.open_bytes, self.floor[op])
        return node.open_bytes


def exact_search(
    seg: Segment,
    upper: int,
    upper_order: tuple[int, ...],
    *,
    max_states: int,
    deadline: float,
    max_work: int | None = None,
) -> SearchResult:
    """Best-first search for an order with peak below ``upper`` (``upper_order`` achieves ``upper``).

    It generates at most ``max_states`` states and stops generating once it has spent ``max_work``
    units (so it overshoots by at most one state's work); ``deadline`` is a safety net only.
    """
    if upper <= seg.lower_bound:
        return SearchResult(upper_order, upper, True, upper, 0)
    work = Work(len(seg.ops))  # the set-up: the bound's ranking of every operator
    work_limit = max_work if max_work is not None else -1
    h = _Bound(seg)
    start = _start(seg, work)
    best_peak: dict[int, int] = {start.done: start.peak}
    closed: set[int] = set()
    queue: list[tuple[int, int, int, int, _Node]] = []
    counter = 0  # insertion order settles ties deterministically without comparing nodes

    def push(node: _Node) -> None:
        nonlocal counter
        f = max(node.peak, h(node))
        if f >= upper:
            return
        counter += 1
        heapq.heappush(queue, (f, -node.done.bit_count(), counter, node.done, node))

    def offer(node: _Node) -> None:
        if node.done in closed or node.peak >= best_peak.get(node.done, upper):
            return
        best_peak[node.done] = node.peak
        push(node)

    def spent() -> bool:
        return expanded >= max_states or 0 <= work_limit <= work.units

    push(start)
    expanded = popped = 0
    while queue:
        f, _, _, done, node = heapq.heappop(queue)
        if done in closed:
            continue
        if done == seg.full:
            order = _moves(node.path)
            return SearchResult(order, node.peak, True, node.peak, expanded, work.units)
        popped += 1
        if spent() or (popped % CLOCK_EVERY == 0 and time.perf_counter() > deadline):
            return SearchResult(upper_order, upper, False, min(upper, f), expanded, work.units)
        closed.add(done)
        forced = _expand_forced(seg, node, work)
        if forced.done != done:  # its forced moves lead on from here: that successor alone is needed
            offer(forced)
            continue
        for op in node.ready:
            # the budget is checked per state generated, so no search exceeds it by more than one state; a node cut
            # short keeps the bound valid: its missing children have f >= its own
            if spent():
                return SearchResult(upper_order, upper, False, min(upper, f), expanded, work.units)
            expanded += 1
            offer(_child(seg, node, op, work))
    return SearchResult(upper_order, upper, True, upper, expanded, work.units)


def beam_search(
    seg: Segment, width: int, deadline: float, max_states: int | None = None, max_work: int | None = None
) -> SearchResult:
    """The best complete order found keeping ``width`` states per depth.

    The beam generates at most ``max_states`` states and stops generating once it has spent ``max_work``
    units. Should it run out of them (or, as a safety net only, should the clock pass ``deadline``, checked
    every :data:`CLOCK_EVERY` states) before a complete order, the best state of the current depth is
    completed in the segment's own operator order, which costs no search: the work count keeps the result
    independent of the machine's speed.
    """
    work = Work(len(seg.ops))  # the set-up: the bound's ranking of every operator
    state_limit = max_states if max_states is not None else -1
    work_limit = max_work if max_work is not None else -1
    h = _Bound(seg)
    n = len(seg.ops)
    layers: dict[int, dict[int, _Node]] = {}

    def add(node: _Node) -> None:
        layer = layers.setdefault(node.done.bit_count(), {})
        old = layer.get(node.done)
        if old is None or node.peak < old.peak:
            layer[node.done] = node

    add(_start(seg, work))
    expanded = 0
    while True:
        depth = min(layers)
        layer = layers.pop(depth)
        if depth == n:
            best = min(layer.values(), key=lambda v: (v.peak, v.done))
            order = _moves(best.path)
            return SearchResult(order, best.peak, best.peak <= seg.lower_bound, seg.lower_bound, expanded, work.units)
        ranked = sorted(layer.values(), key=lambda v: (max(v.peak, h(v)), v.open_bytes, v.peak, v.done))
        for node in ranked[:width]:
            for op in node.ready:  # children take their forced moves before they are ranked
                if (
                    0 <= state_limit <= expanded
                    or 0 <= work_limit <= work.units
                    or (expanded % CLOCK_EVERY == 0 and time.perf_counter() > deadline)
                ):
                    return _complete(seg, ranked[0], expanded, work.units)
                expanded += 1
                add(_expand_forced(seg, _child(seg, node, op, work), work))


CLOCK_EVERY = 64
"""States generated (beam) or expanded (exact) between two looks at the clock."""


def _complete(seg: Segment, node: _Node, expanded: int, units: int) -> SearchResult:
    """``node``'s moves followed by the operators not yet run, in the segment's order (a topological one)."""
    order = _moves(node.path)
    order += tuple(i for i in range(len(seg.ops)) if not node.done >> i & 1)
    peak = seg.peak(order)
    return SearchResult(order, peak, peak <= seg.lower_bound, seg.lower_bound, expanded, units)
