"""An independent check of a packing, sharing no code with the packers.

A packing is valid when every buffer has an offset, offsets are non-negative multiples of
their buffer's alignment, pinned offsets are kept, every buffer ends within the capacity
(if one is given), and buffers whose half-open lifetimes intersect occupy disjoint ranges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cosma.alloc.buffers import Buffer


def packing_errors(buffers: Sequence[Buffer], offsets: Mapping[str, int], capacity: int | None = None,
                   limit: int = 10) -> list[str]:
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
    live: list[Buffer] = []  # buffers whose lifetime contains the current sweep time
    for b in placed:
        live = [x for x in live if x.upper > b.lower]
        lo, hi = offsets[b.id], offsets[b.id] + b.size
        for x in live:
            xlo, xhi = offsets[x.id], offsets[x.id] + x.size
            if lo < xhi and xlo < hi:
                errors.append(f"{x.id} [{xlo}, {xhi}) and {b.id} [{lo}, {hi}) overlap while both live in "
                              f"[{b.lower}, {min(x.upper, b.upper)})")
        live.append(b)
    return errors[:limit]


def packing_height(buffers: Sequence[Buffer], offsets: Mapping[str, int]) -> int:
    """Highest address used: ``max(offset + size)`` (0 when nothing is placed)."""
    return max((offsets[b.id] + b.size for b in buffers), default=0)
