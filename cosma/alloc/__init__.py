"""Address assignment: online arenas for step-by-step planners, and offline packing of buffers
with fixed lifetimes (dynamic storage allocation, :func:`solve`)."""

from cosma.alloc.buffers import AllocError, Buffer, BufferFileError, Gap, Packing, max_load, read_csv, write_csv
from cosma.alloc.dsa import solve
from cosma.alloc.online import ALLOCATORS, Arena
from cosma.alloc.verify import packing_errors, packing_height

__all__ = [
    "ALLOCATORS",
    "AllocError",
    "Arena",
    "Buffer",
    "BufferFileError",
    "Gap",
    "Packing",
    "max_load",
    "packing_errors",
    "packing_height",
    "read_csv",
    "solve",
    "write_csv",
]
