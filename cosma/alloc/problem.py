"""The packing problem in the form the packers work on: integer units, time sections, conflicts.

Sizes, alignments and pinned offsets are divided by their greatest common divisor ``unit``
(a canonical packing only ever places buffers at sums of sizes rounded up to alignments, so
no packing is lost). Time is compressed to *sections*: between two consecutive distinct
lifetime end points the set of live buffers does not change, so buffer ``i`` lives in the
sections ``lo[i] <= s < hi[i]`` and two buffers conflict iff their section ranges meet.

Where no buffer crosses a time point the instance falls apart into independent
:class:`AllocInstance` components (:func:`split_components`); empty buffers take no part.

**Gaps.** A buffer with gaps is split into *pieces*: section ranges over which it occupies one
byte range ``[offset + start, offset + stop)``, all pieces of a buffer sharing its offset (a
buffer without gaps is one piece ``[0, size)``). Gap ends are section borders, so a piece
never changes within a section. Two buffers conflict when pieces of theirs meet in time; for
such a pair the differences ``offset_j - offset_i`` that make a piece pair overlap are kept as
merged intervals (:attr:`AllocInstance.forbidden`), one list per conflicting pair: the packers
test placements against them instead of against whole ranges.
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
    # pieces, grouped by buffer: buffer i owns pieces pptr[i]:pptr[i + 1]; without gaps piece i is buffer i
    pptr: np.ndarray = field(repr=False)
    plo: np.ndarray = field(repr=False)  # first section of the piece
    phi: np.ndarray = field(repr=False)  # one past its last section
    pstart: np.ndarray = field(repr=False)  # bytes [offset + pstart, offset + pstop), in units
    pstop: np.ndarray = field(repr=False)
    gapped: bool = False  # some buffer has gaps: pieces differ from buffers

    @cached_property
    def pown(self) -> np.ndarray:
        """The buffer of each piece."""
        return np.repeat(np.arange(self.n), np.diff(self.pptr))

    def pieces_of(self, rows: np.ndarray) -> np.ndarray:
        """Pieces of the buffers ``rows``, in order of ``rows``."""
        return ranges(self.pptr, rows) if self.gapped else rows

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
        """Total size occupied in each section."""
        edges = np.zeros(self.sections + 1, dtype=np.int64)
        np.add.at(edges, self.plo, self.pstop - self.pstart)
        np.add.at(edges, self.phi, self.pstart - self.pstop)
        return np.cumsum(edges[:-1])

    @cached_property
    def max_load(self) -> int:
        return int(self.load.max(initial=0))

    @cached_property
    def conflict_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """The conflict graph as ``(ptr, idx)``: buffer ``i`` conflicts with ``idx[ptr[i]:ptr[i + 1]]``
        (sorted). Its size is the number of conflicting pairs, never buffers x buffers."""
        n = self.n
        if self.gapped:
            a, b = self._piece_pairs()
            a, b = self.pown[a], self.pown[b]
            key = np.unique(np.minimum(a, b) * n + np.maximum(a, b))
            a, b = key // max(n, 1), key % max(n, 1)
        else:
            a, b = _meeting_pairs(self.lo, self.hi)
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(a, minlength=n) + np.bincount(b, minlength=n), out=ptr[1:])
        # one key per directed pair, sorted: a plain sort of integers is several times faster than a lexsort
        key = np.concatenate([a * n + b, b * n + a])
        del a, b
        key.sort()
        idx = (key % max(n, 1)).astype(np.int32 if n < 2**31 else np.int64)
        return ptr, idx

    def _piece_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Pairs of pieces of different buffers that meet in time."""
        a, b = _meeting_pairs(self.plo, self.phi)
        own = self.pown
        other = own[a] != own[b]
        return a[other], b[other]

    @cached_property
    def forbidden(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(fptr, nbr, f0, f1)`` for a gapped instance: buffer ``i``'s intervals are ``fptr[i]:fptr[i + 1]``,
        sorted by neighbour; interval ``k`` says ``offset[nbr[k]] - offset[i]`` may not lie in ``[f0[k], f1[k])``.
        Pieces ``[sp, ep)`` of ``i`` and ``[sq, eq)`` of ``j`` overlap iff that difference is in
        ``[sp - eq + 1, ep - sq)``; the intervals of one pair are merged. One list per conflicting pair
        and direction, so the size follows the conflicts, not buffers x buffers."""
        p, q = self._piece_pairs()
        own = self.pown
        # both directions: (i, j, lo, hi) for offset_j - offset_i
        i = np.concatenate([own[p], own[q]])
        j = np.concatenate([own[q], own[p]])
        sp, ep = np.concatenate([self.pstart[p], self.pstart[q]]), np.concatenate([self.pstop[p], self.pstop[q]])
        sq, eq = np.concatenate([self.pstart[q], self.pstart[p]]), np.concatenate([self.pstop[q], self.pstop[p]])
        lo, hi = sp - eq + 1, ep - sq
        order = np.lexsort((lo, j, i))
        i, j, lo, hi = i[order], j[order], lo[order], hi[order]
        # merge overlapping or touching intervals of the same (i, j): a new run starts where the pair changes
        # or where an interval starts past every earlier end of its pair
        pair = i * max(self.n, 1) + j
        new_pair = np.ones(len(pair), dtype=bool)
        new_pair[1:] = pair[1:] != pair[:-1]
        # running maximum of the ends restarted per pair: lift each pair above all earlier ones
        rank = np.cumsum(new_pair) - 1
        base = int(hi.min(initial=0))
        span = int(hi.max(initial=0)) - base + 1
        reach = np.maximum.accumulate(hi - base + rank * span) - rank * span + base
        starts = new_pair.copy()
        starts[1:] |= lo[1:] > reach[:-1]
        keep = np.flatnonzero(starts)
        f0 = lo[keep]
        f1 = np.maximum.reduceat(hi, keep) if len(keep) else hi[:0]
        nbr = j[keep]
        fptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(i[keep], minlength=self.n), out=fptr[1:])
        return fptr, nbr, f0, f1

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

    def blocked(self, i: int, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gapped instances: the offsets ``[b0, b1)`` that ``i`` may not take, given the offsets of
        its neighbours that are placed (``offsets != NO_OFFSET``)."""
        fptr, nbr, f0, f1 = self.forbidden
        k = slice(int(fptr[i]), int(fptr[i + 1]))
        at = offsets[nbr[k]]
        placed = at != NO_OFFSET
        at = at[placed]
        # offset_j - offset_i in [f0, f1)  <=>  offset_i in (offset_j - f1, offset_j - f0]
        return at - f1[k][placed] + 1, at - f0[k][placed] + 1

    def to_bytes(self, offsets_units: Iterable[int]) -> dict[str, int]:
        return {b.id: int(o) * self.unit for b, o in zip(self.buffers, offsets_units)}

    def from_bytes(self, offsets: dict[str, int]) -> np.ndarray:
        return np.array([offsets[b.id] // self.unit for b in self.buffers], dtype=np.int64)


def ranges(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The positions ``ptr[r]:ptr[r + 1]`` of every row ``r`` of ``rows``, concatenated."""
    counts = ptr[rows + 1] - ptr[rows]
    first = np.repeat(ptr[rows] - np.cumsum(counts) + counts, counts)
    return first + np.arange(int(counts.sum()))


def _meeting_pairs(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of intervals ``[lo, hi)`` that meet, each once, in linear memory beyond the pairs."""
    n = len(lo)
    by_start = np.argsort(lo, kind="stable")
    starts = lo[by_start]
    # in order of first section, the intervals after p that meet it are the run p+1 .. end[p]-1:
    # they start no earlier than p and before p ends
    end = np.searchsorted(starts, hi[by_start], side="left")
    count = end - np.arange(n) - 1
    first = np.repeat(np.arange(n), count)
    run_start = np.cumsum(count) - count
    second = first + 1 + (np.arange(len(first)) - np.repeat(run_start, count))
    del run_start
    return by_start[first], by_start[second]


def unit_of(buffers: Sequence[Buffer]) -> int:
    """Greatest common divisor of sizes, alignments above 1, pinned offsets and gap windows (1 if none)."""
    values = [b.size for b in buffers if b.size > 0]
    values += [b.alignment for b in buffers if b.alignment > 1 and b.size > 0]
    values += [b.offset for b in buffers if b.offset and b.size > 0]
    values += [w for b in buffers if b.size > 0 for g in b.gaps if g.window for w in g.window if w]
    return reduce(math.gcd, values, 0) or 1


def make_instance(buffers: Sequence[Buffer], unit: int) -> AllocInstance:
    """An :class:`AllocInstance` of non-empty buffers (sorted by start, longer first on ties)."""
    buffers = sorted(buffers, key=lambda b: (b.lower, -b.upper))
    gapped = any(b.gaps for b in buffers)
    points = {t for b in buffers for t in (b.lower, b.upper)}
    points |= {t for b in buffers for g in b.gaps for t in (g.lower, g.upper)}
    times = np.array(sorted(points), dtype=np.int64)
    lo = np.searchsorted(times, [b.lower for b in buffers]).astype(np.int64)
    hi = np.searchsorted(times, [b.upper for b in buffers]).astype(np.int64)
    size = np.array([b.size // unit for b in buffers], dtype=np.int64)
    if gapped:
        pieces = [b.pieces() for b in buffers]
        flat = [p for ps in pieces for p in ps]
        pptr = np.zeros(len(buffers) + 1, dtype=np.int64)
        np.cumsum([len(ps) for ps in pieces], out=pptr[1:])
        plo = np.searchsorted(times, np.array([p[0] for p in flat], dtype=np.int64)).astype(np.int64)
        phi = np.searchsorted(times, np.array([p[1] for p in flat], dtype=np.int64)).astype(np.int64)
        pstart = np.array([p[2] // unit for p in flat], dtype=np.int64)
        pstop = np.array([p[3] // unit for p in flat], dtype=np.int64)
    else:
        pptr, plo, phi = np.arange(len(buffers) + 1, dtype=np.int64), lo, hi
        pstart, pstop = np.zeros(len(buffers), dtype=np.int64), size
    return AllocInstance(
        buffers=tuple(buffers),
        unit=unit,
        lo=lo,
        hi=hi,
        size=size,
        align=np.array([max(1, b.alignment // unit) for b in buffers], dtype=np.int64),
        fixed=np.array([NO_OFFSET if b.offset is None else b.offset // unit for b in buffers], dtype=np.int64),
        times=times,
        pptr=pptr,
        plo=plo,
        phi=phi,
        pstart=pstart,
        pstop=pstop,
        gapped=gapped,
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
