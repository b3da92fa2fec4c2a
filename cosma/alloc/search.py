"""Complete search over canonical packings (in the vein of Google's MiniMalloc).

**State.** A node is the set ``U`` of unplaced buffers and, for each, its *floor* ``cand[i]``:
the lowest offset it may take, i.e. the top of the highest placed buffer it conflicts with
(rounded up to its alignment). The node asks: can ``U`` be packed within the capacity with
every buffer at or above its floor? Nothing else about the placed buffers matters, so the
answer depends on ``(U, cand)`` alone, and failed nodes are remembered under that key.

**Branching.** Take a buffer ``b`` whose floor is the lowest of all (so no unplaced buffer it
conflicts with can go below it). Either ``b`` sits exactly on its floor -- place it there and
lift the floors of the buffers it conflicts with to its top -- or it does not. In a packing
where every buffer is as low as it can go (any packing can be pushed down to one), a buffer
above its floor rests on the top of an unplaced buffer ``j`` it conflicts with, so in the
second branch its floor rises to the lowest such top, ``min_j cand[j] + size[j]``. Both
branches together lose no packing, which makes an exhausted search a proof of infeasibility.

**Pruning.** In every time section the unplaced buffers that live there must stack above their
floors within the capacity. Stacking them in order of floor is optimal for one section (one
machine, release dates, common deadline), which gives the bound
``max_i cand[i] + sum(size[j] for j in the section with cand[j] >= cand[i]) <= capacity``.

**Decomposition.** When no unplaced buffer spans a time point the node splits into
independent sub-nodes, solved (and remembered) separately.

**Order.** Among the buffers at the lowest floor, the branching buffer is the first in a static
preorder (MiniMalloc's W/A/T keys), optionally restricted to buffers living in the section with
the least slack. The search cycles through these orders with a node limit that doubles each
round, keeping the memory of failed nodes (valid for every order).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from cosma.alloc.problem import NO_OFFSET, AllocInstance

STRATEGIES: tuple[tuple[str, bool], ...] = tuple(
    (key, tight) for tight in (False, True) for key in ("WAT", "TAW", "TWA")
)
"""(static preorder, prefer the tightest section) pairs tried in turn."""

_FAR = np.int64(1) << 60

DENSE_CELLS = 1 << 20
"""Windows of the slack computation up to this many rows x sections are stacked as one dense
block; larger ones (near the root of large instances) row by row, in linear memory."""

MEMO_LIMIT = 2_000_000
"""Failed nodes remembered at most (16-byte digests, about 100 bytes each with the set)."""

Node = tuple[np.ndarray, np.ndarray, np.ndarray, int, int]
"""A node: unplaced buffers (sorted by first section), floors, per-section slack, and the range of
sections whose slack must be recomputed."""
Answer = dict[int, int] | None  # offsets of the node's buffers, or None if it has no packing


def _digest(U: np.ndarray, cand: np.ndarray) -> bytes:
    """A 128-bit digest of the node ``(U, cand[U])``: collisions (which could make a node look
    failed) are far less likely than a hardware fault, and memory stays small."""
    h = hashlib.blake2b(U.tobytes(), digest_size=16)
    h.update(cand[U].tobytes())
    return h.digest()


class _Stop(Exception):
    """The node or time budget ran out."""


@dataclass
class SearchResult:
    offsets: np.ndarray | None  # in units; None if no packing was found
    infeasible: bool  # the search was exhausted: no packing fits the capacity
    nodes: int


@dataclass
class _Search:
    inst: AllocInstance
    capacity: int
    deadline: float
    stop: Callable[[], bool] = lambda: False
    nodes: int = 0
    budget: int = 0
    failed: set[bytes] = field(default_factory=set)  # digests of nodes proven to have no packing
    rank: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tight: bool = False

    def __post_init__(self) -> None:
        inst = self.inst
        self.is_fixed = inst.fixed != NO_OFFSET
        none = np.zeros(0, dtype=np.int64)
        self.fixed_conflicts = (
            tuple(c[self.is_fixed[c]] for c in inst.conflicts) if self.is_fixed.any() else (none,) * inst.n
        )
        # sections whose stacking can change when a buffer is placed: its own and those of
        # the buffers it conflicts with (their floors rise)
        ptr, idx = inst.conflict_csr
        self.reach_lo, self.reach_hi = inst.lo.copy(), inst.hi.copy()
        has = np.flatnonzero(ptr[1:] > ptr[:-1])
        if len(has):
            starts = ptr[:-1][has]
            self.reach_lo[has] = np.minimum(self.reach_lo[has], np.minimum.reduceat(inst.lo[idx], starts))
            self.reach_hi[has] = np.maximum(self.reach_hi[has], np.maximum.reduceat(inst.hi[idx], starts))

    # ---- the node budget -------------------------------------------------------------------

    def _tick(self) -> None:
        self.nodes += 1
        self.budget -= 1
        if self.budget < 0 or time.monotonic() > self.deadline or (self.nodes & 255 == 0 and self.stop()):
            raise _Stop

    # ---- decomposition ---------------------------------------------------------------------

    def _split(self, U: np.ndarray) -> list[np.ndarray]:
        """Independent groups of ``U`` (which is sorted by first section)."""
        reach = np.maximum.accumulate(self.inst.hi[U])
        cuts = np.flatnonzero(self.inst.lo[U][1:] >= reach[:-1]) + 1
        return np.split(U, cuts) if len(cuts) else [U]

    def run(self, U: np.ndarray, cand: np.ndarray) -> dict[int, int] | None:
        """Solve the node ``(U, cand)``. Nodes are generators that yield the child nodes they
        need and receive their answers, so the depth of the search is not limited by Python's
        call stack."""
        slack = np.zeros(self.inst.sections, dtype=np.int64)
        stack: list[Generator[Node, Answer, Answer]] = [self._solve(U, cand, slack, 0, self.inst.sections)]
        answer: Answer = None
        while stack:
            try:
                child = stack[-1].send(answer)
            except StopIteration as done:
                stack.pop()
                answer = done.value
                continue
            stack.append(self._solve(*child))
            answer = None
        return answer

    def _solve(
        self, U: np.ndarray, cand: np.ndarray, slack: np.ndarray, w0: int, w1: int
    ) -> Generator[Node, Answer, Answer]:
        parts = self._split(U)
        if len(parts) == 1:
            return (yield from self._node(U, cand, slack, w0, w1))
        found: dict[int, int] = {}
        for part in sorted(parts, key=len):  # small parts first: cheap to settle, and often the cause
            placed = yield part, cand, slack, w0, w1
            if placed is None:
                return None
            found.update(placed)
        return found

    # ---- one node: place-or-raise on the branching buffer, until it fails ------------------

    def _node(
        self, U: np.ndarray, cand: np.ndarray, slack: np.ndarray, w0: int, w1: int
    ) -> Generator[Node, Answer, Answer]:
        """``slack`` holds the parent's per-section slack, still exact outside ``[w0, w1)``."""
        inst, cap = self.inst, self.capacity
        seen: list[bytes] = []
        owned = False  # whether ``cand`` is this frame's own copy
        slack = slack.copy()
        while True:
            self._tick()
            key = _digest(U, cand)
            if key in self.failed:
                break
            seen.append(key)
            if not self._update_slack(U, cand, slack, w0, w1):
                break
            b = self._branch_buffer(U, cand, slack)
            at = int(cand[b])
            top = at + int(inst.size[b])
            if self._fits(b, at, top):
                if len(U) == 1:
                    return {b: at}
                child = cand.copy()
                near = inst.conflicts[b]
                a = inst.align[near]
                child[near] = np.maximum(child[near], -(-top // a) * a)
                # only sections where b or a buffer whose floor rose lives can change
                placed = yield U[U != b], child, slack, int(self.reach_lo[b]), int(self.reach_hi[b])  # noqa: SIM300
                if placed is not None:
                    placed[b] = at
                    return placed
            if self.is_fixed[b]:
                break  # a pinned buffer cannot rise
            rise = self._rise(U, cand, b)
            if rise is None or rise + inst.size[b] > cap:
                break
            if not owned:
                cand, owned = cand.copy(), True
            cand[b] = rise
            w0, w1 = int(inst.lo[b]), int(inst.hi[b])
        if len(self.failed) > MEMO_LIMIT:
            self.failed.clear()  # forgetting is safe; it only costs repeated work
        self.failed.update(seen)
        return None

    def _fits(self, b: int, at: int, top: int) -> bool:
        if top > self.capacity:
            return False
        if self.is_fixed[b]:
            return at == self.inst.fixed[b]
        # pinned buffers it conflicts with: placed ones lie below ``at`` (they set its floor);
        # the others lie at or above the lowest floor, and ``b`` must not reach into them
        pins = self.fixed_conflicts[b]
        starts = self.inst.fixed[pins]
        return bool(((starts + self.inst.size[pins] <= at) | (starts >= top)).all())

    def _rise(self, U: np.ndarray, cand: np.ndarray, b: int) -> int | None:
        """The floor of ``b`` once it may not sit on its current floor: the lowest top of an
        unplaced buffer it conflicts with (it must rest on one), aligned, and above the floor."""
        inst = self.inst
        near = inst.conflicts[b]
        inU = np.zeros(inst.n, dtype=bool)
        inU[U] = True
        near = near[inU[near]]
        if not len(near):
            return None
        a = int(inst.align[b])
        lowest = int((cand[near] + inst.size[near]).min())
        return max(int(cand[b]) + a, -(-lowest // a) * a)

    # ---- bound and branching choice --------------------------------------------------------

    def _update_slack(self, U: np.ndarray, cand: np.ndarray, slack: np.ndarray, w0: int, w1: int) -> bool:
        """Recompute the slack of sections ``[w0, w1)`` of the node; False if one overflows."""
        inst = self.inst
        lo, hi = inst.lo[U], inst.hi[U]
        w0, w1 = max(w0, int(lo.min())), min(w1, int(hi.max()))
        if w0 >= w1:
            return True
        rows = U[(lo < w1) & (hi > w0)]
        order = rows[np.argsort(-cand[rows], kind="stable")]
        if len(order) * (w1 - w0) <= DENSE_CELLS:
            cover = inst.cover(order, w0, w1)
            above = np.cumsum(cover * inst.size[order][:, None], axis=0)  # size with floor >= this row's
            makespan = np.where(cover, above + cand[order][:, None], 0).max(axis=0)
        else:
            makespan = self._makespan_sparse(order, cand, w0, w1)
        slack[w0:w1] = self.capacity - makespan
        return bool(slack[w0:w1].min() >= 0)

    def _makespan_sparse(self, order: np.ndarray, cand: np.ndarray, w0: int, w1: int) -> np.ndarray:
        """The dense stacking of :meth:`_update_slack`, row by row: memory in sections, time in the
        rows' lifetimes (for the wide windows near the root of large instances)."""
        inst = self.inst
        above = np.zeros(w1 - w0, dtype=np.int64)
        makespan = np.zeros(w1 - w0, dtype=np.int64)
        for i in order.tolist():
            a, b = max(int(inst.lo[i]), w0) - w0, min(int(inst.hi[i]), w1) - w0
            above[a:b] += inst.size[i]
            np.maximum(makespan[a:b], above[a:b] + cand[i], out=makespan[a:b])
        return makespan

    def _branch_buffer(self, U: np.ndarray, cand: np.ndarray, slack: np.ndarray) -> int:
        floors = cand[U]
        low = floors.min()
        at_low = U[floors == low]
        pinned = at_low[self.is_fixed[at_low]]
        if len(pinned):
            return int(pinned[0])  # a pinned buffer at the lowest floor has no alternative
        if self.tight and len(at_low) > 1:
            # the sections at the lowest floor are those where a buffer of ``at_low`` lives
            inst = self.inst
            edges = np.zeros(len(slack) + 1, dtype=np.int64)
            np.add.at(edges, inst.lo[at_low], 1)
            np.add.at(edges, inst.hi[at_low], -1)
            low_here = np.cumsum(edges[:-1]) > 0
            s = int(np.where(low_here, slack, _FAR).argmin())
            living = at_low[(inst.lo[at_low] <= s) & (s < inst.hi[at_low])]
            if len(living):
                at_low = living
        return int(at_low[np.argmin(self.rank[at_low])])


def search(
    inst: AllocInstance,
    capacity: int,
    deadline: float,
    node_limit: int | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> SearchResult:
    """Look for a packing of ``inst`` within ``capacity`` (units) until ``deadline`` (monotonic
    seconds) or ``node_limit`` nodes; cycles through :data:`STRATEGIES` with doubling limits."""
    s = _Search(inst, capacity, deadline, stop)
    if int(inst.size.max(initial=0)) > capacity or inst.max_load > capacity:
        return SearchResult(None, True, 0)
    cand = np.where(inst.fixed != NO_OFFSET, inst.fixed, 0).astype(np.int64)
    U = np.arange(inst.n)
    ranks = {key: inst.preorder(key) for key, _ in STRATEGIES}
    limit = max(2 * inst.n, 64)
    total = node_limit if node_limit is not None else 1 << 62
    try:
        while True:
            for key, tight in STRATEGIES:
                s.rank, s.tight = ranks[key], tight
                s.budget = min(limit, total - s.nodes)
                if s.budget <= 0:
                    raise _Stop
                try:
                    placed = s.run(U, cand)
                except _Stop:
                    if s.budget >= 0:  # time ran out, not the round's limit
                        raise
                    continue
                if placed is None:
                    return SearchResult(None, True, s.nodes)
                offsets = np.array([placed[i] for i in range(inst.n)], dtype=np.int64)
                return SearchResult(offsets, False, s.nodes)
            limit *= 2
    except _Stop:
        return SearchResult(None, False, s.nodes)
