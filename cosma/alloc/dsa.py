"""Offline address assignment (dynamic storage allocation): the driver.

:func:`solve` packs buffers with fixed lifetimes into one address space, either within a
capacity (decision) or as low as possible (minimise). Phases, per independent component
(no lifetime crosses between components):

1. greedy heuristics (:mod:`cosma.alloc.greedy`) give a packing and an upper bound;
2. the complete canonical search (:mod:`cosma.alloc.search`) runs with a node budget: it finds
   a packing or proves that none fits;
3. if the budget runs out undecided, the CP-SAT model (:mod:`cosma.alloc.cpsat`) gets the
   remaining time.

The lower bound is the max-load (the largest total size live at one time) or a pinned
buffer's top, raised when a search proves a smaller height impossible. Every packing returned
has passed the independent check in :mod:`cosma.alloc.verify`.

>>> from cosma.alloc.buffers import Buffer
>>> p = solve([Buffer("a", 0, 2, 4), Buffer("b", 1, 3, 4), Buffer("c", 2, 4, 4)])
>>> p.height, p.lower_bound, p.status
(8, 8, 'optimal')
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cosma.alloc.buffers import AllocError, Buffer, Packing, Status
from cosma.alloc.cpsat import solve_cpsat
from cosma.alloc.greedy import best_greedy, height_of
from cosma.alloc.problem import NO_OFFSET, AllocInstance, make_instance, split_components, unit_of
from cosma.alloc.search import search
from cosma.alloc.verify import packing_errors

SEARCH_NODES = 10_000
"""Node budget of the canonical search per question before CP-SAT takes over."""

FINISH_SHARE = 0.05
"""Share of the time limit kept for the independent check of the packing and its writing: the
packers stop at ``(1 - FINISH_SHARE) * time_limit`` (the check of a 62,000-buffer packing takes
about 2 s)."""

ENGINES: tuple[str, ...] = ("auto", "search", "cp-sat")
"""``auto``: the canonical search with a node budget, then CP-SAT; ``search``: the canonical
search alone, until the time limit; ``cp-sat``: CP-SAT alone (after the heuristics)."""


@dataclass(frozen=True)
class _Options:
    engine: str
    seed: int
    workers: int
    nodes: int  # the search's node budget per question


@dataclass
class _Component:
    inst: AllocInstance
    offsets: np.ndarray  # best packing so far, in units
    lower: int  # proven lower bound on its height, in units
    method: str
    nodes: int = 0

    @property
    def height(self) -> int:
        return height_of(self.inst, self.offsets)

    def take(self, offsets: np.ndarray, method: str) -> None:
        if height_of(self.inst, offsets) < self.height:
            self.offsets, self.method = offsets, method


def solve(
    buffers: Sequence[Buffer],
    capacity: int | None = None,
    time_limit: float = 60.0,
    seed: int = 0,
    workers: int = 1,
    engine: str = "auto",
    search_nodes: int = SEARCH_NODES,
) -> Packing:
    """Addresses for ``buffers``: within ``capacity`` bytes if given, else of least height.

    Returns the lowest packing found within ``time_limit`` seconds with a proven lower bound.
    Decision mode stops at the first packing that fits (``feasible``, or ``optimal`` when it
    meets the lower bound); ``infeasible`` means proven that nothing fits, ``unknown`` that the
    time ran out first (the packing returned then exceeds the capacity). ``seed`` and
    ``workers`` go to CP-SAT; with one worker the result is the same on every run unless the
    time limit cuts a phase short. ``engine`` is one of :data:`ENGINES`.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    options = _Options(engine, seed, workers, search_nodes)
    start = time.monotonic()
    deadline = start + max(0.0, time_limit) * (1 - FINISH_SHARE)
    buffers = list(buffers)
    _validate(buffers, capacity)
    unit = unit_of(buffers)
    # every phase, the heuristics included, stops at the deadline with the best packing so far
    components = [_start(make_instance(group, unit), deadline) for group in split_components(buffers)]
    if capacity is None:
        status = _minimise(components, deadline, options)
    else:
        status = _fit_all(components, capacity // unit, deadline, options)
    offsets = {b.id: (b.offset or 0) for b in buffers if b.size == 0}
    for c in components:
        offsets.update(c.inst.to_bytes(c.offsets))
    offsets = {b.id: offsets[b.id] for b in buffers}
    errors = packing_errors(buffers, offsets)
    if errors:
        raise RuntimeError(f"allocation engine produced an invalid packing: {errors[0]}")
    height = max((c.height for c in components), default=0) * unit
    lower = max((c.lower for c in components), default=0) * unit
    if capacity is not None and status == "infeasible":
        lower = max(lower, (capacity // unit + 1) * unit)
    if status == "feasible" and height == lower:
        status = "optimal"
    methods = sorted({c.method for c in components if c.inst.n > 1} or {c.method for c in components})
    return Packing(
        offsets=offsets,
        height=height,
        lower_bound=lower,
        status=status,
        seconds=time.monotonic() - start,
        capacity=capacity,
        nodes=sum(c.nodes for c in components),
        method="+".join(methods) or "none",
    )


def _validate(buffers: list[Buffer], capacity: int | None) -> None:
    ids = [b.id for b in buffers]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise AllocError(f"buffer id {dup!r} appears twice; ids must be unique")
    if capacity is not None and capacity < 0:
        raise AllocError(f"capacity {capacity} is negative")
    pinned = sorted((b for b in buffers if b.offset is not None and b.size > 0), key=lambda b: b.lower)
    for i, a in enumerate(pinned):
        for b in pinned[i + 1 :]:
            if b.lower >= a.upper:
                break
            assert a.offset is not None and b.offset is not None  # only pinned buffers are in the list
            if _pinned_overlap(a, a.offset, b, b.offset):
                raise AllocError(
                    f"pinned buffers {a.id!r} and {b.id!r} overlap while both live; move one of their offsets"
                )


def _pinned_overlap(a: Buffer, oa: int, b: Buffer, ob: int) -> bool:
    """Whether pieces of ``a`` at ``oa`` and of ``b`` at ``ob`` share a byte at a common time."""
    return any(
        pa[0] < pb[1] and pb[0] < pa[1] and oa + pa[2] < ob + pb[3] and ob + pb[2] < oa + pa[3]
        for pa in a.pieces()
        for pb in b.pieces()
    )


def _start(inst: AllocInstance, deadline: float) -> _Component:
    pinned_tops = np.where(inst.fixed != NO_OFFSET, inst.fixed + inst.size, 0)
    # with gaps a buffer may be taller than the load it adds anywhere: its size bounds the height too
    lower = max(inst.max_load, int(pinned_tops.max(initial=0)), int(inst.size.max(initial=0)))
    return _Component(inst, best_greedy(inst, deadline), lower, "greedy")


def _fit_all(components: list[_Component], capacity: int, deadline: float, options: _Options) -> Status:
    """Decision mode: make every component fit ``capacity`` units."""
    status: Status = "feasible"
    for c in sorted(components, key=lambda c: -c.inst.n):
        answer = _fit(c, capacity, deadline, options)
        if answer == "infeasible":
            return "infeasible"
        if answer == "unknown":
            status = "unknown"
    return status


def _fit(c: _Component, capacity: int, deadline: float, options: _Options, cpsat_seconds: float | None = None) -> str:
    """Make ``c`` fit ``capacity``: 'feasible', 'infeasible' (proven, bound raised) or 'unknown'.
    CP-SAT gets ``cpsat_seconds`` (default: all the time left) if the search is undecided."""
    if c.height <= capacity:
        return "feasible"
    if c.lower > capacity:
        return "infeasible"
    if time.monotonic() >= deadline:
        return "unknown"  # setting up a search on a large instance takes seconds by itself
    if options.engine != "cp-sat":
        result = search(c.inst, capacity, deadline, node_limit=None if options.engine == "search" else options.nodes)
        c.nodes += result.nodes
        if result.offsets is not None:
            c.take(result.offsets, "search")
            return "feasible"
        if result.infeasible:
            c.lower = max(c.lower, capacity + 1)
            return "infeasible"
        if options.engine == "search":
            return "unknown"
    left = deadline - time.monotonic()
    if cpsat_seconds is not None:
        left = min(left, cpsat_seconds)
    if left <= 0:
        return "unknown"
    cp = solve_cpsat(c.inst, capacity, left, seed=options.seed, workers=options.workers)
    if cp.offsets is not None:
        c.take(cp.offsets, "cp-sat")
        return "feasible"
    if cp.infeasible:
        c.lower = max(c.lower, capacity + 1)
        return "infeasible"
    return "unknown"


def _minimise(components: list[_Component], deadline: float, options: _Options) -> Status:
    """Minimise mode: the overall height is the highest component's, so lower each component
    that stands above the proven bound, sharing the time among them."""
    tallest_first = sorted(components, key=lambda c: -c.height)
    for k, c in enumerate(tallest_first):
        floor = max(d.lower for d in components)
        if c.height > floor:
            now = time.monotonic()
            _lower(c, floor, now + (deadline - now) / (len(tallest_first) - k), options)
    return "feasible"


def _lower(c: _Component, floor: int, deadline: float, options: _Options) -> None:
    """Bisect the height of ``c`` between ``floor`` (a proven bound) and its best packing: first
    ask for the bound itself, then for the middle of what is left. A question left undecided is
    given up (the bound stays where it was proven); each CP-SAT call gets a quarter of the time
    left, so later questions still get some."""
    give_up = max(floor, c.lower)  # heights below this are proven impossible or given up
    target = give_up
    while give_up < c.height and time.monotonic() < deadline:
        slice_ = max(1.0, (deadline - time.monotonic()) / 4)
        answer = _fit(c, target, deadline, options, cpsat_seconds=slice_)
        if answer != "feasible":
            give_up = target + 1
        target = (give_up + c.height) // 2
