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

**Gaps.** With gaps a buffer may go *under* a placed one's window, so the offsets a placed
buffer forbids are no longer all below the floor. Floors are then kept at the lowest offset
that no placed buffer forbids (every unplaced buffer conflicting with ``b`` still lies at or
above it, so is still raised past what ``b`` forbids there); a buffer above its floor rests
on a piece of a buffer below it, so its floor rises to the lowest such resting offset: over an
unplaced buffer (from its floor) or over a placed one (the end of a forbidden range above the
floor). A node's answer then also depends on the offsets of the placed buffers that conflict
with it, which join its key. The stacking bound counts pieces, each released at its buffer's
floor plus its window's start.

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

from cosma.alloc.problem import NO_OFFSET, AllocInstance, ranges

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

Node = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]
"""A node: unplaced buffers (sorted by first section), floors, placed offsets (kept with gaps only,
else NO_OFFSET), per-section slack, and the range of sections whose slack must be recomputed."""
Answer = dict[int, int] | None  # offsets of the node's buffers, or None if it has no packing


def _digest(U: np.ndarray, cand: np.ndarray, placed: np.ndarray | None = None, at: np.ndarray | None = None) -> bytes:
    """A 128-bit digest of the node ``(U, cand[U])`` (and, with gaps, the offsets ``at`` of the placed
    buffers ``placed`` that conflict with it): collisions (which could make a node look failed)
    are far less likely than a hardware fault, and memory stays small."""
    h = hashlib.blake2b(U.tobytes(), digest_size=16)
    h.update(cand[U].tobytes())
    if placed is not None and at is not None:
        h.update(placed.tobytes())
        h.update(at[placed].tobytes())
    return h.digest()


def _lowest_free(b0: np.ndarray, b1: np.ndarray, x: int, align: int) -> int:
    """The lowest multiple of ``align`` at or above ``x`` outside every range ``[b0, b1)``."""
    y = -(-x // align) * align
    order = np.argsort(b0, kind="stable")
    for s, e in zip(b0[order].tolist(), b1[order].tolist()):
        if s > y:
            break  # every later range starts above y too
        if e > y:
            y = -(-e // align) * align
    return y


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
        at = np.full(self.inst.n, NO_OFFSET, dtype=np.int64)
        stack: list[Generator[Node, Answer, Answer]] = [self._solve(U, cand, at, slack, 0, self.inst.sections)]
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
        self, U: np.ndarray, cand: np.ndarray, at: np.ndarray, slack: np.ndarray, w0: int, w1: int
    ) -> Generator[Node, Answer, Answer]:
        parts = self._split(U)
        if len(parts) == 1:
            return (yield from self._node(U, cand, at, slack, w0, w1))
        found: dict[int, int] = {}
        for part in sorted(parts, key=len):  # small parts first: cheap to settle, and often the cause
            placed = yield part, cand, at, slack, w0, w1
            if placed is None:
                return None
            found.update(placed)
        return found

    # ---- one node: place-or-raise on the branching buffer, until it fails ------------------

    def _node(
        self, U: np.ndarray, cand: np.ndarray, at: np.ndarray, slack: np.ndarray, w0: int, w1: int
    ) -> Generator[Node, Answer, Answer]:
        """``slack`` holds the parent's per-section slack, still exact outside ``[w0, w1)``."""
        inst, cap = self.inst, self.capacity
        seen: list[bytes] = []
        owned = False  # whether ``cand`` is this frame's own copy
        slack = slack.copy()
        placed_near = self._placed_near(U, at) if inst.gapped else None
        while True:
            self._tick()
            key = _digest(U, cand, placed_near, at)
            if key in self.failed:
                break
            seen.append(key)
            if not self._update_slack(U, cand, slack, w0, w1):
                break
            b = self._branch_buffer(U, cand, slack)
            here = int(cand[b])
            top = here + int(inst.size[b])
            if self._fits(b, here, top):
                if len(U) == 1:
                    return {b: here}
                rest = U[U != b]  # noqa: SIM300
                child = cand.copy()
                near = inst.conflicts[b]
                if inst.gapped:
                    child_at = at.copy()
                    child_at[b] = here
                    inU = np.zeros(inst.n, dtype=bool)
                    inU[rest] = True
                    for j in near[inU[near]].tolist():
                        child[j] = _lowest_free(*inst.blocked(j, child_at), int(child[j]), int(inst.align[j]))
                else:
                    child_at = at
                    a = inst.align[near]
                    child[near] = np.maximum(child[near], -(-top // a) * a)
                # only sections where b or a buffer whose floor rose lives can change
                placed = yield rest, child, child_at, slack, int(self.reach_lo[b]), int(self.reach_hi[b])
                if placed is not None:
                    placed[b] = here
                    return placed
            if self.is_fixed[b]:
                break  # a pinned buffer cannot rise
            rise = self._rise_gapped(U, cand, at, b) if inst.gapped else self._rise(U, cand, b)
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

    def _placed_near(self, U: np.ndarray, at: np.ndarray) -> np.ndarray:
        """The placed buffers that conflict with one of ``U`` (sorted)."""
        ptr, idx = self.inst.conflict_csr
        near = np.unique(idx[ranges(ptr, U)])
        return near[at[near] != NO_OFFSET]

    def _fits(self, b: int, at: int, top: int) -> bool:
        if top > self.capacity:
            return False
        if self.is_fixed[b]:
            return at == self.inst.fixed[b]
        # pinned buffers it conflicts with: placed ones lie below ``at`` (they set its floor);
        # the others lie at or above the lowest floor, and ``b`` must not reach into them
        pins = self.fixed_conflicts[b]
        if not len(pins):
            return True
        if self.inst.gapped:
            fptr, nbr, f0, f1 = self.inst.forbidden
            k = slice(int(fptr[b]), int(fptr[b + 1]))
            pinned = self.is_fixed[nbr[k]]
            d = self.inst.fixed[nbr[k][pinned]] - at
            return not bool(((f0[k][pinned] <= d) & (d < f1[k][pinned])).any())
        starts = self.inst.fixed[pins]
        return bool(((starts + self.inst.size[pins] <= at) | (starts >= top)).all())

    def _rise_gapped(self, U: np.ndarray, cand: np.ndarray, at: np.ndarray, b: int) -> int | None:
        """:meth:`_rise` with gaps: ``b`` rests on a piece of an unplaced buffer ``j`` (at least
        ``cand[j] + 1 - f0`` for a forbidden range ``[f0, f1)`` of ``offset_j - offset_b``) or of a placed
        one (the end of a range it forbids, above the floor); then the lowest offset no placed buffer
        forbids."""
        inst = self.inst
        fptr, nbr, f0, _ = inst.forbidden
        k = slice(int(fptr[b]), int(fptr[b + 1]))
        near = nbr[k]
        inU = np.zeros(inst.n, dtype=bool)
        inU[U] = True
        unplaced = inU[near]
        base = np.where(unplaced, cand[near], at[near])
        rest = base + 1 - f0[k]
        usable = unplaced | ((at[near] != NO_OFFSET) & (rest > cand[b]))
        if not usable.any():
            return None
        a = int(inst.align[b])
        lowest = int(rest[usable].min())
        return _lowest_free(*inst.blocked(b, at), max(int(cand[b]) + a, -(-lowest // a) * a), a)

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
        if inst.gapped:
            # pieces, each released at its buffer's floor plus its window's start
            pieces = inst.pieces_of(rows)
            pieces = pieces[(inst.plo[pieces] < w1) & (inst.phi[pieces] > w0)]
            release = cand[inst.pown[pieces]] + inst.pstart[pieces]
            order = np.argsort(-release, kind="stable")
            pieces, release = pieces[order], release[order]
            lo, hi, width = inst.plo[pieces], inst.phi[pieces], inst.pstop[pieces] - inst.pstart[pieces]
        else:
            rows = rows[np.argsort(-cand[rows], kind="stable")]
            lo, hi, width, release = inst.lo[rows], inst.hi[rows], inst.size[rows], cand[rows]
        if len(lo) * (w1 - w0) <= DENSE_CELLS:
            s = np.arange(w0, w1)
            cover = (lo[:, None] <= s[None, :]) & (s[None, :] < hi[:, None])
            above = np.cumsum(cover * width[:, None], axis=0)  # size released no earlier than this row
            makespan = np.where(cover, above + release[:, None], 0).max(axis=0, initial=0)
        else:
            makespan = _makespan_sparse(lo, hi, width, release, w0, w1)
        slack[w0:w1] = self.capacity - makespan
        return bool(slack[w0:w1].min() >= 0)

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


def _makespan_sparse(
    lo: np.ndarray, hi: np.ndarray, width: np.ndarray, release: np.ndarray, w0: int, w1: int
) -> np.ndarray:
    """The dense stacking of :meth:`_Search._update_slack` (rows by decreasing release), row by row:
    memory in sections, time in the rows' lifetimes (for the wide windows near the root of large
    instances)."""
    above = np.zeros(w1 - w0, dtype=np.int64)
    makespan = np.zeros(w1 - w0, dtype=np.int64)
    for a, b, size, r in zip(lo.tolist(), hi.tolist(), width.tolist(), release.tolist()):
        a, b = max(a, w0) - w0, min(b, w1) - w0
        above[a:b] += size
        np.maximum(makespan[a:b], above[a:b] + r, out=makespan[a:b])
    return makespan


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
    cand = np.where(inst.fixed != NO_OFFSET, inst.fixed, 0).astype(np.int64)  # nothing placed forbids 0 yet
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
