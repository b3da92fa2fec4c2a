"""Address assignment: online arenas for step-by-step planners, and (see :mod:`cosma.alloc.dsa`)
offline packing of buffers with fixed lifetimes."""

from cosma.alloc.online import ALLOCATORS, Arena

__all__ = ["ALLOCATORS", "Arena"]
