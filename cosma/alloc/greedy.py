"""Fast packing heuristics: place buffers one at a time in a static order.

Each buffer goes into a free range left by the already placed buffers it conflicts with:

- ``first-fit``: the lowest aligned offset where it fits (gaps below the top are reused);
- ``best-fit``: the smallest free range that holds it, lowest offset on ties (the range above
  every placed buffer counts as unbounded).

Orders (largest first): ``size``, ``area`` (size x lifetime), ``conflicts`` (total size of the
buffers it conflicts with), ``width`` (lifetime); and ``start`` (earliest first, as an online
allocator sees them). Pinned buffers are placed first, at their offsets.

The free ranges are found as the offsets not *blocked* by a placed buffer: a range ``[s, e)``
blocks ``[s - size + 1, e)``; with gaps, each conflicting pair blocks the differences kept in
:attr:`~cosma.alloc.problem.AllocInstance.forbidden`, so a buffer may slip under another's window.
"""

from __future__ import annotations

import math
import time

import numpy as np

from cosma.alloc.problem import NO_OFFSET, AllocInstance

ORDERS: tuple[str, ...] = ("size", "area", "conflicts", "width", "start")
POLICIES: tuple[str, ...] = ("first-fit", "best-fit")


def order_of(inst: AllocInstance, name: str) -> np.ndarray:
    """Buffer indices in the named order (ties: earlier start, then index)."""
    if name == "size":
        key = -inst.size
    elif name == "area":
        key = -inst.size * inst.width
    elif name == "conflicts":
        key = -np.array([inst.size[c].sum() for c in inst.conflicts], dtype=np.int64)
    elif name == "width":
        key = -inst.width
    elif name == "start":
        key = inst.lo
    else:
        raise ValueError(f"unknown order {name!r}; choose one of {ORDERS}")
    return np.lexsort((np.arange(inst.n), inst.lo, key))


def place_in_order(
    inst: AllocInstance, order: np.ndarray, policy: str = "first-fit", deadline: float = math.inf
) -> np.ndarray:
    """Offsets (in units) for every buffer, placing them in ``order`` with ``policy``.

    Past ``deadline`` the buffers not yet placed are stacked above everything placed: a valid
    packing at once, however high, so a caller out of time still has one."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {POLICIES}")
    offsets = inst.fixed.copy()
    for k, i in enumerate(order.tolist()):
        if offsets[i] != NO_OFFSET:
            continue
        if k & 255 == 0 and time.monotonic() > deadline:
            _stack_rest(inst, offsets)
            break
        if inst.gapped:
            b0, b1 = inst.blocked(i, offsets)
        else:
            near = inst.conflicts[i]
            near = near[offsets[near] != NO_OFFSET]
            b0, b1 = offsets[near] - inst.size[i] + 1, offsets[near] + inst.size[near]
        offsets[i] = _fit(b0, b1, int(inst.align[i]), policy)
    return offsets


def _stack_rest(inst: AllocInstance, offsets: np.ndarray) -> None:
    """Place every unplaced buffer above all placed ones, one on top of the other."""
    placed = offsets != NO_OFFSET
    top = int((offsets[placed] + inst.size[placed]).max(initial=0))
    for i in np.flatnonzero(~placed).tolist():
        a = int(inst.align[i])
        offsets[i] = -(-top // a) * a
        top = int(offsets[i] + inst.size[i])


def _fit(b0: np.ndarray, b1: np.ndarray, align: int, policy: str) -> int:
    """An aligned offset >= 0 outside the blocked ranges ``[b0, b1)``."""
    if not len(b0):
        return 0
    order = np.argsort(b0, kind="stable")
    s, e = b0[order], b1[order]
    # the lowest free offset before range k is the highest end among the ranges that start before it
    cursor = np.empty_like(e)
    cursor[0] = 0
    np.maximum.accumulate(e[:-1], out=cursor[1:])
    np.maximum(cursor, 0, out=cursor)
    at = -(-cursor // align) * align
    fits = at < s
    if fits.any():
        if policy == "first-fit":
            return int(at[np.argmax(fits)])
        # the free range's length less the block's size: the same order as the length itself
        return int(at[np.argmin(np.where(fits, s - at, np.iinfo(np.int64).max))])
    return int(-(-max(int(e.max()), 0) // align) * align)


def height_of(inst: AllocInstance, offsets: np.ndarray) -> int:
    return int((offsets + inst.size).max(initial=0))


def best_greedy(inst: AllocInstance, deadline: float = math.inf) -> np.ndarray:
    """The lowest packing over every order and policy (ties: the first tried). Past ``deadline``
    the remaining orders are skipped (the first always yields a packing, see :func:`place_in_order`)."""
    best: np.ndarray | None = None
    for name in ORDERS:
        order = order_of(inst, name)
        for policy in POLICIES:
            if best is not None and time.monotonic() > deadline:
                return best
            offsets = place_in_order(inst, order, policy, deadline)
            if best is None or height_of(inst, offsets) < height_of(inst, best):
                best = offsets
    assert best is not None
    return best
