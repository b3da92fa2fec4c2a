"""Online placement in a scratchpad: which free range a new tensor goes to.

:class:`Arena` keeps the resident ranges sorted by address. Two policies choose the range:

- ``first-fit``: the lowest aligned offset where the tensor fits (TensorFlow Lite's arena);
- ``best-fit``: the smallest free gap that holds it, lowest address on ties (XLA, ONNX Runtime).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from cosma.graph import round_up

ALLOCATORS: tuple[str, ...] = ("first-fit", "best-fit")


@dataclass
class Arena:
    """Resident tensors of a scratchpad as disjoint ranges ``[offset, offset + size)``."""

    capacity: int
    alignment: int = 1
    _starts: list[int] = field(default_factory=list)
    _ends: list[int] = field(default_factory=list)
    _names: list[str] = field(default_factory=list)
    _where: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __contains__(self, tensor: str) -> bool:
        return tensor in self._where

    def offset(self, tensor: str) -> int:
        return self._where[tensor][0]

    @property
    def used(self) -> int:
        return sum(e - s for s, e in self._where.values())

    def occupants(self) -> Iterator[tuple[int, int, str]]:
        """Resident ranges ``(start, end, tensor)`` in address order (empty tensors excluded)."""
        return iter(zip(self._starts, self._ends, self._names))

    def gaps(self) -> Iterator[tuple[int, int]]:
        """Free ranges ``(start, end)`` in address order, starts aligned."""
        cursor = 0
        for s, e in zip(self._starts, self._ends):
            start = round_up(cursor, self.alignment)
            if start < s:
                yield start, s
            cursor = max(cursor, e)
        start = round_up(cursor, self.alignment)
        if start < self.capacity:
            yield start, self.capacity

    def copy(self) -> Arena:
        """An independent arena with the same residents (for trying evictions without making them)."""
        return Arena(
            self.capacity, self.alignment, list(self._starts), list(self._ends), list(self._names), dict(self._where)
        )

    def find(self, size: int, policy: str = "first-fit") -> int | None:
        """An aligned offset where ``size`` bytes fit, or None."""
        if size == 0:
            return 0
        fitting = [(s, e) for s, e in self.gaps() if e - s >= size]
        if not fitting:
            return None
        if policy == "first-fit":
            return fitting[0][0]
        if policy == "best-fit":
            return min(fitting, key=lambda g: (g[1] - g[0], g[0]))[0]
        raise ValueError(f"unknown allocator {policy!r}; choose one of {ALLOCATORS}")

    def place(self, tensor: str, offset: int, size: int) -> None:
        if tensor in self._where:
            raise ValueError(f"{tensor} is already resident")
        self._where[tensor] = (offset, offset + size)
        if size == 0:
            return
        i = bisect.bisect_left(self._starts, offset)
        if (i > 0 and self._ends[i - 1] > offset) or (i < len(self._starts) and self._starts[i] < offset + size):
            del self._where[tensor]
            raise ValueError(f"{tensor} at [{offset}, {offset + size}) overlaps a resident tensor")
        if offset + size > self.capacity or offset % self.alignment:
            del self._where[tensor]
            raise ValueError(f"{tensor} at [{offset}, {offset + size}) is out of bounds or misaligned")
        self._starts.insert(i, offset)
        self._ends.insert(i, offset + size)
        self._names.insert(i, tensor)

    def remove(self, tensor: str) -> None:
        start, end = self._where.pop(tensor)
        if end == start:
            return
        i = bisect.bisect_left(self._starts, start)
        del self._starts[i], self._ends[i], self._names[i]
