"""``greedy``: evict the residents overlapping the contiguous window of the needed size that costs
least to clear, the locally optimal choice (COSMA's "ILP-based greedy" baseline solves exactly this
window problem per eviction).

A window starts at 0 or at the aligned end of a resident; one holding a pinned tensor is out. Ties
go to the window whose tensors are next used latest, then to the lower address.
"""

from __future__ import annotations

import math
from collections.abc import Set

from cosma.replace.registry import replacement_policy
from cosma.replace.state import WalkState


@replacement_policy("greedy", "evict the cheapest contiguous window of the size needed (locally optimal)", rank=1)
def choose(state: WalkState, size: int, pinned: Set[str]) -> list[str]:
    """Cheapest set of unpinned residents whose removal frees an aligned window of ``size`` bytes."""
    arena = state.arena
    occupants = list(arena.occupants())
    starts = {0} | {e + (-e) % arena.alignment for _, e, _ in occupants}
    best: tuple[tuple[float, ...], list[str]] | None = None
    for a in sorted(starts):
        b = a + size
        if b > arena.capacity:
            continue
        inside = [name for s, e, name in occupants if s < b and a < e]
        if any(name in pinned for name in inside):
            continue
        cost = sum(state.eviction_cost(t) for t in inside)
        soonest = min((state.next_use(t) for t in inside), default=math.inf)
        key = (cost, -soonest, a)
        if best is None or key < best[0]:
            best = (key, inside)
    return best[1] if best else []
