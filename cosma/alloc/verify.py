"""An independent check of a packing, sharing no code with the packers.

A packing is valid when every buffer has an offset, offsets are non-negative multiples of
their buffer's alignment, pinned offsets are kept, every buffer ends within the capacity
(if one is given), and no two buffers occupy a common byte at a common time. A buffer occupies
``[offset, offset + size)`` over ``[lower, upper)`` except during its gaps, where it occupies
nothing or only its gap's window; the expansion into such pieces is done here again, apart from
the packers' own.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from cosma.alloc.buffers import Buffer

Piece = tuple[int, int, int, int]  # time [lower, upper), bytes [start, stop) relative to the offset


def _occupied(b: Buffer) -> list[Piece]:
    """Pieces of time over which ``b`` occupies one byte range, plain gaps and empty windows dropped."""
    if not b.gaps:
        return [(b.lower, b.upper, 0, b.size)] if b.size > 0 else []
    cuts = [(b.lower, (0, b.size))]
    for g in sorted(b.gaps, key=lambda g: g.lower):
        cuts.append((g.lower, g.window or (0, 0)))
        cuts.append((g.upper, (0, b.size)))
    cuts.append((b.upper, (0, 0)))
    out = []
    for (t0, (w0, w1)), (t1, _) in itertools.pairwise(cuts):
        if t0 < t1 and w0 < w1:
            out.append((t0, t1, w0, w1))
    return out


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
    # one row per occupied piece; rows of one buffer never meet in time, so every clash is between two
    pieces = [(b, *piece) for b in buffers if b.id in offsets for piece in _occupied(b)]
    pieces.sort(key=lambda r: r[1])
    lower = np.array([r[1] for r in pieces], dtype=np.int64)
    upper = np.array([r[2] for r in pieces], dtype=np.int64)
    start = np.array([offsets[r[0].id] + r[3] for r in pieces], dtype=np.int64)
    stop = np.array([offsets[r[0].id] + r[4] for r in pieces], dtype=np.int64)
    # by start time, the pieces live when ``pieces[p]`` ends are p+1 .. last[p]-1; pairs are taken in
    # chunks of about CHUNK_PAIRS so memory stays linear however many pieces live at once
    last = np.searchsorted(lower, upper, side="left")
    count = last - np.arange(len(pieces)) - 1
    p0 = 0
    while p0 < len(pieces) and len(errors) < limit:
        p1 = p0 + 1
        budget = count[p0]
        while p1 < len(pieces) and budget + count[p1] <= CHUNK_PAIRS:
            budget += count[p1]
            p1 += 1
        c = count[p0:p1]
        first = np.repeat(np.arange(p0, p1), c)
        second = first + 1 + (np.arange(len(first)) - np.repeat(np.cumsum(c) - c, c))
        clash = (start[first] < stop[second]) & (start[second] < stop[first])
        for q, p in sorted(zip(second[clash].tolist(), first[clash].tolist())):
            x, y = pieces[p], pieces[q]  # x started first
            errors.append(
                f"{x[0].id} [{start[p]}, {stop[p]}) and {y[0].id} [{start[q]}, {stop[q]}) overlap while both live "
                f"in [{y[1]}, {min(x[2], y[2])})"
            )
        p0 = p1
    return errors[:limit]


def packing_height(buffers: Sequence[Buffer], offsets: Mapping[str, int]) -> int:
    """Highest address used: ``max(offset + size)`` (0 when nothing is placed)."""
    return max((offsets[b.id] + b.size for b in buffers), default=0)
