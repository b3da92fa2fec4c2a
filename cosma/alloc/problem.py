"""The packing problem in the form the packers work on: integer units, time sections, conflicts.

Sizes, alignments and pinned offsets are divided by their greatest common divisor ``unit``
(a canonical packing only ever places buffers at sums of sizes rounded up to alignments, so
no packing is lost). Time is compressed to *sections*: between two consecutive distinct
lifetime end points the set of live buffers does not change, so buffer ``i`` lives in the
sections ``lo[i] <= s < hi[i]`` and two buffers conflict iff their section ranges meet.

Where no buffer crosses a time point the instance falls apart into independent
:class:`AllocInstance` components (:func:`split_components`); empty buffers take no part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, reduce

import numpy as np

from cosma.alloc.buffers import Buffer

NO_OFFSET = -1


@dataclass(frozen=True, eq=False)
class AllocInstance:
    """One independent component, in units of ``unit`` bytes (arrays indexed by local buffer)."""

    buffers: tuple[Buffer, ...]
    unit: int
    lo: np.ndarray  # first section
    hi: np.ndarray  # one past the last section
    size: np.ndarray
    align: np.ndarray
    fixed: np.ndarray  # pinned offset, or NO_OFFSET
    times: np.ndarray = field(repr=False)  # section s spans [times[s], times[s + 1])

    @property
    def n(self) -> int:
        return len(self.buffers)

    @property
    def sections(self) -> int:
        return len(self.times) - 1

    def cover(self, rows: np.ndarray, w0: int, w1: int) -> np.ndarray:
        """``cover[k, s - w0]``: buffer ``rows[k]`` lives in section ``s``, for ``w0 <= s < w1``. Only
        a window is ever built: the whole buffers x sections matrix is quadratic in the instance."""
        s = np.arange(w0, w1)
        return (self.lo[rows, None] <= s[None, :]) & (s[None, :] < self.hi[rows, None])

    @cached_property
    def load(self) -> np.ndarray:
        """Total size live in each section."""
        edges = np.zeros(self.sections + 1, dtype=np.int64)
        np.add.at(edges, self.lo, self.size)
        np.add.at(edges, self.hi, -self.size)
        return np.cumsum(edges[:-1])

    @cached_property
    def max_load(self) -> int:
        return int(self.load.max(initial=0))

    @cached_property
    def conflict_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """The conflict graph as ``(ptr, idx)``: buffer ``i`` conflicts with ``idx[ptr[i]:ptr[i + 1]]``
        (sorted). Its size is the number of conflicting pairs, never buffers x buffers."""
        n = self.n
        by_start = np.argsort(self.lo, kind="stable")
        starts = self.lo[by_start]
        # in order of first section, the buffers after p that meet it are the run p+1 .. end[p]-1:
        # they start no earlier than p and before p ends
        end = np.searchsorted(starts, self.hi[by_start], side="left")
        count = end - np.arange(n) - 1
        first = np.repeat(np.arange(n), count)
        run_start = np.cumsum(count) - count
        second = first + 1 + (np.arange(len(first)) - np.repeat(run_start, count))
        del run_start
        a, b = by_start[first], by_start[second]
        del first, second
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(a, minlength=n) + np.bincount(b, minlength=n), out=ptr[1:])
        # one key per directed pair, sorted: a plain sort of integers is several times faster than a lexsort
        key = np.concatenate([a * n + b, b * n + a])
        del a, b
        key.sort()
        idx = (key % max(n, 1)).astype(np.int32 if n < 2**31 else np.int64)
        return ptr, idx

    @cached_property
    def conflicts(self) -> tuple[np.ndarray, ...]:
        """For each buffer, the (sorted) buffers it conflicts with: views into :attr:`conflict_csr`."""
        ptr, idx = self.conflict_csr
        return tuple(np.split(idx, ptr[1:-1])) if self.n else ()

    @cached_property
    def width(self) -> np.ndarray:
        """Lifetime length in time steps."""
        return self.times[self.hi] - self.times[self.lo]

    @cached_property
    def total(self) -> np.ndarray:
        """For each buffer, the largest section load along its lifetime."""
        return np.array([self.load[a:b].max() for a, b in zip(self.lo, self.hi)], dtype=np.int64)

    def preorder(self, key: str) -> np.ndarray:
        """Rank of each buffer (0 = first) under a static order named by letters, most significant
        first: W = longer lifetime, A = larger area, T = larger section total, S = larger size.
        Ties go to the earlier-starting buffer, then the lower index."""
        columns = {"W": -self.width, "A": -self.width * self.size, "T": -self.total, "S": -self.size}
        order = np.lexsort((np.arange(self.n), self.lo, *(columns[c] for c in reversed(key))))
        rank = np.empty(self.n, dtype=np.int64)
        rank[order] = np.arange(self.n)
        return rank

    def to_bytes(self, offsets_units: Iterable[int]) -> dict[str, int]:
        return {b.id: int(o) * self.unit for b, o in zip(self.buffers, offsets_units)}

    def from_bytes(self, offsets: dict[str, int]) -> np.ndarray:
        return np.array([offsets[b.id] // self.unit for b in self.buffers], dtype=np.int64)


def unit_of(buffers: Sequence[Buffer]) -> int:
    """Greatest common divisor of sizes, alignments above 1 and pinned offsets (1 if none)."""
    values = [b.size for b in buffers if b.size > 0]
    values += [b.alignment for b in buffers if b.alignment > 1 and b.size > 0]
    values += [b.offset for b in buffers if b.offset and b.size > 0]
    return reduce(math.gcd, values, 0) or 1


def make_instance(buffers: Sequence[Buffer], unit: int) -> AllocInstance:
    """An :class:`AllocInstance` of non-empty buffers (sorted by start, longer first on ties)."""
    buffers = sorted(buffers, key=lambda b: (b.lower, -b.upper))
    times = np.array(sorted({t for b in buffers for t in (b.lower, b.upper)}), dtype=np.int64)
    lo = np.searchsorted(times, [b.lower for b in buffers]).astype(np.int64)
    hi = np.searchsorted(times, [b.upper for b in buffers]).astype(np.int64)
    return AllocInstance(
        buffers=tuple(buffers),
        unit=unit,
        lo=lo,
        hi=hi,
        size=np.array([b.size // unit for b in buffers], dtype=np.int64),
        align=np.array([max(1, b.alignment // unit) for b in buffers], dtype=np.int64),
        fixed=np.array([NO_OFFSET if b.offset is None else b.offset // unit for b in buffers], dtype=np.int64),
        times=times,
    )


def split_components(buffers: Sequence[Buffer]) -> list[list[Buffer]]:
    """Groups of non-empty buffers such that no lifetime crosses from one group into another."""
    live = sorted((b for b in buffers if b.size > 0), key=lambda b: (b.lower, -b.upper))
    groups: list[list[Buffer]] = []
    reach = None
    for b in live:
        if reach is None or b.lower >= reach:
            groups.append([])
            reach = b.upper
        groups[-1].append(b)
        reach = max(reach, b.upper)
    return groups
