"""An independent check of a packing, sharing no code with the packers.

A packing is valid when every buffer has an offset, offsets are non-negative multiples of
their buffer's alignment, pinned offsets are kept, every buffer ends within the capacity
(if one is given), and buffers whose half-open lifetimes intersect occupy disjoint ranges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cosma.alloc.buffers import Buffer

CHUNK_PAIRS = 1 << 22
"""Pairs of time-overlapping buffers checked per vectorised batch."""


def packing_errors(
    buffers: Sequence[Buffer], offsets: Mapping[str, int], capacity: int | None = None, limit: int = 10
) -> list[str]:
    """Up to ``limit`` violations, as sentences; empty when the packing is valid.

    >>> a, b = Buffer("a", 0, 2, 4), Buffer("b", 1, 3, 4)
    >>> packing_errors([a, b], {"a": 0, "b": 4}), packing_errors([a, b], {"a": 0, "b": 2})
    ([], ['a [0, 4) and b [2, 6) overlap while both live in [1, 2)'])
    """
    errors: list[str] = []
    for b in buffers:
        if b.id not in offsets:
            errors.append(f"{b.id} has no offset")
            continue
        o = offsets[b.id]
        if o < 0 or o % b.alignment:
            errors.append(f"{b.id} at {o} is not a non-negative multiple of its alignment {b.alignment}")
        if b.offset is not None and o != b.offset:
            errors.append(f"{b.id} is pinned at {b.offset} but placed at {o}")
        if capacity is not None and o + b.size > capacity:
            errors.append(f"{b.id} [{o}, {o + b.size}) exceeds the capacity {capacity}")
    placed = sorted((b for b in buffers if b.id in offsets and b.size > 0), key=lambda b: b.lower)
    lower = np.array([b.lower for b in placed], dtype=np.int64)
    upper = np.array([b.upper for b in placed], dtype=np.int64)
    start = np.array([offsets[b.id] for b in placed], dtype=np.int64)
    stop = start + np.array([b.size for b in placed], dtype=np.int64)
    # by start time, the buffers live when ``placed[p]`` ends are p+1 .. last[p]-1; pairs are taken in
    # chunks of about CHUNK_PAIRS so memory stays linear however many buffers live at once
    last = np.searchsorted(lower, upper, side="left")
    count = last - np.arange(len(placed)) - 1
    p0 = 0
    while p0 < len(placed) and len(errors) < limit:
        p1 = p0 + 1
        budget = count[p0]
        while p1 < len(placed) and budget + count[p1] <= CHUNK_PAIRS:
            budget += count[p1]
            p1 += 1
        c = count[p0:p1]
        first = np.repeat(np.arange(p0, p1), c)
        second = first + 1 + (np.arange(len(first)) - np.repeat(np.cumsum(c) - c, c))
        clash = (start[first] < stop[second]) & (start[second] < stop[first])
        for q, p in sorted(zip(second[clash].tolist(), first[clash].tolist())):
            x, b = placed[p], placed[q]  # x started first
            lo, hi = offsets[b.id], offsets[b.id] + b.size
            xlo, xhi = offsets[x.id], offsets[x.id] + x.size
            errors.append(
                f"{x.id} [{xlo}, {xhi}) and {b.id} [{lo}, {hi}) overlap while both live in "
                f"[{b.lower}, {min(x.upper, b.upper)})"
            )
        p0 = p1
    return errors[:limit]


def packing_height(buffers: Sequence[Buffer], offsets: Mapping[str, int]) -> int:
    """Highest address used: ``max(offset + size)`` (0 when nothing is placed)."""
    return max((offsets[b.id] + b.size for b in buffers), default=0)
