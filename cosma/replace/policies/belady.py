"""``belady``: evict the unpinned resident tensor whose next use is furthest away, Belady's MIN rule.

Ties go to the tensor that is cheaper to evict (one with a DRAM copy needs no spill store), then
to the larger. The engine repeats the choice until a range fits.
"""

from __future__ import annotations

from collections.abc import Set

from cosma.replace.registry import replacement_policy
from cosma.replace.state import WalkState


@replacement_policy("belady", "evict the tensor used furthest in the future (Belady's MIN)", rank=0)
def choose(state: WalkState, size: int, pinned: Set[str]) -> list[str]:
    """The one unpinned resident tensor used furthest in the future (none if every resident is pinned)."""
    candidates = [name for _, _, name in state.arena.occupants() if name not in pinned]
    if not candidates:
        return []
    return [max(candidates, key=lambda t: (state.next_use(t), -state.eviction_cost(t), state.graph.size(t)))]
