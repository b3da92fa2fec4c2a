"""Fast packing heuristics: place buffers one at a time in a static order.

Each buffer goes into a free range left by the already placed buffers it conflicts with:

- ``first-fit``: the lowest aligned offset where it fits (gaps below the top are reused);
- ``best-fit``: the smallest free range that holds it, lowest offset on ties (the range above
  every placed buffer counts as unbounded).

Orders (largest first): ``size``, ``area`` (size x lifetime), ``conflicts`` (total size of the
buffers it conflicts with), ``width`` (lifetime); and ``start`` (earliest first, as an online
allocator sees them). Pinned buffers are placed first, at their offsets.
"""

from __future__ import annotations

import numpy as np

from cosma.alloc.problem import NO_OFFSET, Instance

ORDERS: tuple[str, ...] = ("size", "area", "conflicts", "width", "start")
POLICIES: tuple[str, ...] = ("first-fit", "best-fit")


def order_of(inst: Instance, name: str) -> np.ndarray:
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


def place_in_order(inst: Instance, order: np.ndarray, policy: str = "first-fit") -> np.ndarray:
    """Offsets (in units) for every buffer, placing them in ``order`` with ``policy``."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {POLICIES}")
    offsets = inst.fixed.copy()
    for i in order:
        if offsets[i] != NO_OFFSET:
            continue
        near = inst.conflicts[i]
        near = near[offsets[near] != NO_OFFSET]
        offsets[i] = _fit(offsets[near], offsets[near] + inst.size[near], int(inst.size[i]), int(inst.align[i]),
                          policy)
    return offsets


def _fit(starts: np.ndarray, ends: np.ndarray, size: int, align: int, policy: str) -> int:
    """Offset of a ``size`` block among occupied ranges [starts, ends)."""
    order = np.argsort(starts, kind="stable")
    best: tuple[int, int] | None = None  # (gap length, offset)
    cursor = 0
    for s, e in zip(starts[order].tolist(), ends[order].tolist()):
        at = -(-cursor // align) * align
        if at + size <= s:
            if policy == "first-fit":
                return at
            if best is None or (s - at) < best[0]:
                best = (s - at, at)
        cursor = max(cursor, e)
    top = -(-cursor // align) * align
    return top if best is None else best[1]


def height_of(inst: Instance, offsets: np.ndarray) -> int:
    return int((offsets + inst.size).max(initial=0))


def best_greedy(inst: Instance) -> np.ndarray:
    """The lowest packing over every order and policy (ties: the first tried)."""
    best: np.ndarray | None = None
    for name in ORDERS:
        order = order_of(inst, name)
        for policy in POLICIES:
            offsets = place_in_order(inst, order, policy)
            if best is None or height_of(inst, offsets) < height_of(inst, best):
                best = offsets
    assert best is not None
    return best
