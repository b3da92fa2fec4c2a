"""What a replacement policy sees of the fixed-order walk (:mod:`cosma.replace.engine`).

A policy reads the arena, the graph and the next-use and eviction-cost queries; only the engine
evicts, so a policy's answer is a list of names and it never changes the state itself.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from cosma.alloc.online import Arena
from cosma.contract import Free, Step, Store
from cosma.graph import Graph


@dataclass
class WalkState:
    """What the engine knows at one point of the walk."""

    graph: Graph
    arena: Arena
    uses: dict[str, list[int]]  # tensor -> sorted positions in the order that read it
    has_copy: set[str]
    steps: list[Step] = field(default_factory=list)
    now: int = 0

    def next_use(self, tensor: str) -> float:
        """Position of the next operator (from the current one on) that reads ``tensor``; ``inf`` if none."""
        positions = self.uses.get(tensor, [])
        i = bisect.bisect_right(positions, self.now - 1)  # a use at the current step counts
        return positions[i] if i < len(positions) else math.inf

    def later_use(self, tensor: str) -> float:
        """Position of the next operator after the current one that reads ``tensor``; ``inf`` if none."""
        positions = self.uses.get(tensor, [])
        i = bisect.bisect_right(positions, self.now)
        return positions[i] if i < len(positions) else math.inf

    def overwrite_cost(self, tensor: str) -> int:
        """Extra bytes overwriting the current operator's input ``tensor`` in place causes: a spill store if a
        later reader needs a DRAM copy it lacks, and that reader's reload."""
        if self.later_use(tensor) == math.inf:
            return 0
        size = self.graph.size(tensor)
        return size + (0 if tensor in self.has_copy else size)

    def eviction_cost(self, tensor: str) -> int:
        """Extra bytes evicting ``tensor`` now causes: a spill store if needed, one reload if used again."""
        size = self.graph.size(tensor)
        if self.next_use(tensor) == math.inf:
            return 0
        return size + (0 if tensor in self.has_copy else size)

    def evict(self, tensor: str) -> None:
        """Free ``tensor``'s range, storing it first when a later use needs a DRAM copy it lacks."""
        if self.next_use(tensor) != math.inf and tensor not in self.has_copy:
            self.steps.append(Store(tensor))
            self.has_copy.add(tensor)
        self.steps.append(Free(tensor))
        self.arena.remove(tensor)
