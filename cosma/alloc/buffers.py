"""Buffers with fixed lifetimes, packings, and MiniMalloc's CSV format.

A :class:`Buffer` lives during the half-open interval ``[lower, upper)`` and occupies
``size`` bytes at an offset that is a multiple of ``alignment``; ``offset`` pins it. Two
buffers *conflict* when their lifetimes intersect and neither is empty; conflicting
buffers need disjoint address ranges ``[offset, offset + size)``.

The CSV format is MiniMalloc's: a header line, then one buffer a line with columns
``id,lower,upper,size`` (``upper`` exclusive) and the optional columns ``alignment`` and
``offset``. For files written by older tools, ``buffer`` is read as ``id``, ``start`` as
``lower`` and an inclusive ``end`` replaces ``upper`` (``upper = end + 1``), as
MiniMalloc's own reader does. A solution is the same CSV with an ``offset`` column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cosma.errors import CosmaError
from cosma.fileio import atomic_write_text

Status = Literal["optimal", "feasible", "infeasible", "unknown"]
"""``optimal``: the height is proven minimal. ``feasible``: the packing fits (the capacity if
one was given) but its height is not proven minimal. ``infeasible``: proven that no packing
fits the capacity. ``unknown``: the time ran out before a packing within the capacity was
found or ruled out."""


class AllocError(CosmaError):
    """Buffers that cannot be packed as given (bad sizes, lifetimes, alignments, pinned offsets)."""


class BufferFileError(AllocError):
    """A buffer CSV that cannot be read."""


@dataclass(frozen=True)
class Buffer:
    """A block of ``size`` bytes live during ``[lower, upper)``."""

    id: str
    lower: int
    upper: int
    size: int
    alignment: int = 1
    offset: int | None = None

    def __post_init__(self) -> None:
        if self.lower >= self.upper:
            raise AllocError(
                f"buffer {self.id!r}: lifetime [{self.lower}, {self.upper}) is empty; "
                "upper must exceed lower (upper is exclusive)"
            )
        if self.size < 0:
            raise AllocError(f"buffer {self.id!r}: size {self.size} is negative")
        if self.alignment < 1:
            raise AllocError(f"buffer {self.id!r}: alignment {self.alignment} must be at least 1")
        if self.offset is not None and (self.offset < 0 or self.offset % self.alignment):
            raise AllocError(
                f"buffer {self.id!r}: fixed offset {self.offset} must be a non-negative "
                f"multiple of its alignment {self.alignment}"
            )

    def conflicts(self, other: Buffer) -> bool:
        """Whether both are non-empty and live at some common time."""
        return self.size > 0 and other.size > 0 and self.lower < other.upper and other.lower < self.upper


@dataclass(frozen=True)
class Packing:
    """An address for every buffer, with what is proven about it.

    ``offsets`` always holds a complete packing (the lowest found), even when its ``height``
    exceeds the capacity asked for; ``lower_bound`` is a proven lower bound on the height of
    any packing (the max-load, raised by exhaustive search), so ``height == lower_bound``
    proves the packing height-optimal.
    """

    offsets: dict[str, int]
    height: int
    lower_bound: int
    status: Status
    seconds: float
    capacity: int | None = None
    nodes: int = 0  # canonical-search nodes expanded (0 when the heuristics sufficed)
    method: str = ""  # what produced the packing: greedy, search, cp-sat (joined by + over components)

    @property
    def proven(self) -> bool:
        """Whether the answer is certain: height proven minimal, or capacity proven too small."""
        return self.status in ("optimal", "infeasible")

    @property
    def fits(self) -> bool:
        return self.capacity is None or self.height <= self.capacity


def max_load(buffers: Sequence[Buffer]) -> int:
    """Largest total size of buffers live at one time: a lower bound on any packing's height.

    >>> max_load([Buffer("a", 0, 2, 4), Buffer("b", 1, 3, 4), Buffer("c", 2, 3, 1)])
    8
    """
    events = sorted([(b.lower, b.size) for b in buffers] + [(b.upper, -b.size) for b in buffers])
    live = best = 0
    for _, delta in events:  # at equal times the (negative) ends sort first: [lower, upper) is half-open
        live += delta
        best = max(best, live)
    return best


# ---- CSV ---------------------------------------------------------------------------------------

_ALIASES = {"buffer": "id", "start": "lower"}


def parse_csv(text: str, source: str = "<csv>") -> list[Buffer]:
    """Buffers from MiniMalloc CSV text (see the module docstring)."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise BufferFileError(f"{source}: empty file; expected a header line id,lower,upper,size")
    header = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in rows[0]]
    inclusive_end = "upper" not in header and "end" in header
    if inclusive_end:
        header[header.index("end")] = "upper"
    missing = [c for c in ("id", "lower", "upper", "size") if c not in header]
    if missing:
        raise BufferFileError(
            f"{source}: header lacks column(s) {', '.join(missing)}; expected id,lower,upper,size[,alignment][,offset]"
        )
    col = {name: header.index(name) for name in header}
    buffers: list[Buffer] = []
    seen: set[str] = set()
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise BufferFileError(f"{source}:{line}: {len(row)} fields, header has {len(header)}")
        try:

            def field(name: str, row: list[str] = row) -> int | None:
                if name not in col or not row[col[name]].strip():
                    return None
                return int(row[col[name]])

            def number(name: str, default: int | None = None, row: list[str] = row) -> int:
                value = field(name, row)
                if value is not None:
                    return value
                if default is None:
                    # An empty required cell is reported like a non-integer one, below.
                    raise ValueError(f"{name} is empty")
                return default

            upper = number("upper")
            buffer = Buffer(
                id=row[col["id"]].strip(),
                lower=number("lower"),
                upper=upper + 1 if inclusive_end else upper,
                size=number("size"),
                alignment=number("alignment", 1),
                offset=field("offset"),
            )
        except ValueError:
            raise BufferFileError(f"{source}:{line}: fields must be integers, got {','.join(row)}") from None
        except AllocError as e:
            raise BufferFileError(f"{source}:{line}: {e}") from None
        if buffer.id in seen:
            raise BufferFileError(f"{source}:{line}: buffer id {buffer.id!r} appears twice; ids must be unique")
        seen.add(buffer.id)
        buffers.append(buffer)
    return buffers


def read_csv(path: Path | str) -> list[Buffer]:
    """Buffers from a MiniMalloc CSV file; :class:`BufferFileError` if it cannot be read."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BufferFileError(f"cannot read {path}: {e.strerror if isinstance(e, OSError) else e}") from None
    return parse_csv(text, str(path))


def format_csv(buffers: Iterable[Buffer], offsets: Mapping[str, int]) -> str:
    """MiniMalloc's solution CSV: the input columns plus ``offset``."""
    buffers = list(buffers)
    aligned = any(b.alignment != 1 for b in buffers)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "lower", "upper", "size", *(["alignment"] if aligned else []), "offset"])
    for b in buffers:
        writer.writerow([b.id, b.lower, b.upper, b.size, *([b.alignment] if aligned else []), offsets[b.id]])
    return out.getvalue()


def write_csv(path: Path | str, buffers: Iterable[Buffer], offsets: Mapping[str, int]) -> None:
    """Write the solution CSV atomically (temporary file and rename)."""
    atomic_write_text(Path(path), format_csv(buffers, offsets))
