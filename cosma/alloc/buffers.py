"""Buffers with fixed lifetimes, packings, and MiniMalloc's CSV format.

A :class:`Buffer` lives during the half-open interval ``[lower, upper)`` and occupies
``size`` bytes at an offset that is a multiple of ``alignment``; ``offset`` pins it. During
its :class:`Gap` intervals it occupies nothing, or only the window ``[offset + window[0],
offset + window[1])``. Two buffers *conflict* where the byte ranges they occupy overlap at a
common time; a packing must have none. A buffer's *height* is still ``offset + size``.

The CSV format is MiniMalloc's: a header line, then one buffer a line with columns
``id,lower,upper,size`` (``upper`` exclusive) and the optional columns ``alignment``, ``gaps``
and ``offset``. ``gaps`` holds space-separated items ``LO-HI`` (nothing occupied during
``[LO, HI)``) or ``LO-HI@WLO:WHI`` (only bytes ``[WLO, WHI)`` of the buffer). As MiniMalloc's
reader does, ``begin`` and ``start`` are read as ``lower``, ``buffer`` and ``buffer_id`` as
``id``, and an ``end`` column replaces ``upper`` inclusively (``upper = end + 1``, and each
gap's ``HI + 1``). A solution is the same CSV with an ``offset`` column.
"""

from __future__ import annotations

import csv
import io
import re
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
class Gap:
    """During ``[lower, upper)`` its buffer occupies nothing (``window`` None) or only the bytes
    ``[offset + window[0], offset + window[1])``."""

    lower: int
    upper: int
    window: tuple[int, int] | None = None

    def __str__(self) -> str:
        text = f"{self.lower}-{self.upper}"
        return text if self.window is None else text + f"@{self.window[0]}:{self.window[1]}"


@dataclass(frozen=True)
class Buffer:
    """A block of ``size`` bytes live during ``[lower, upper)``, less its ``gaps``."""

    id: str
    lower: int
    upper: int
    size: int
    alignment: int = 1
    offset: int | None = None
    gaps: tuple[Gap, ...] = ()

    def __post_init__(self) -> None:
        if self.lower >= self.upper:
            raise AllocError(
                f"buffer {self.id!r}: lifetime [{self.lower}, {self.upper}) is empty; "
                "upper must exceed lower (upper is exclusive)"
            )
        previous = self.lower
        for gap in self.gaps:
            if not self.lower <= gap.lower < gap.upper <= self.upper:
                raise AllocError(
                    f"buffer {self.id!r}: gap {gap} must be a non-empty interval inside its lifetime "
                    f"[{self.lower}, {self.upper})"
                )
            if gap.lower < previous:
                raise AllocError(f"buffer {self.id!r}: gap {gap} overlaps or precedes the one before; sort the gaps")
            if gap.window is not None and not 0 <= gap.window[0] <= gap.window[1] <= self.size:
                raise AllocError(
                    f"buffer {self.id!r}: gap {gap} has window [{gap.window[0]}, {gap.window[1]}) "
                    f"outside [0, {self.size}) of the buffer"
                )
            previous = gap.upper
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
        """Whether both are non-empty and live at some common time (gaps ignored)."""
        return self.size > 0 and other.size > 0 and self.lower < other.upper and other.lower < self.upper

    def pieces(self) -> list[tuple[int, int, int, int]]:
        """What it occupies, as ``(lower, upper, start, stop)``: bytes ``[offset + start, offset +
        stop)`` during ``[lower, upper)``, in time order; empty pieces (plain gaps) left out."""
        out = []
        t = self.lower
        for gap in self.gaps:
            if t < gap.lower:
                out.append((t, gap.lower, 0, self.size))
            if gap.window is not None and gap.window[0] < gap.window[1]:
                out.append((gap.lower, gap.upper, gap.window[0], gap.window[1]))
            t = gap.upper
        if t < self.upper:
            out.append((t, self.upper, 0, self.size))
        return [p for p in out if p[2] < p[3]]


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
    """Largest total size occupied at one time: a lower bound on any packing's height.

    >>> max_load([Buffer("a", 0, 2, 4), Buffer("b", 1, 3, 4), Buffer("c", 2, 3, 1)])
    8
    """
    if any(b.gaps for b in buffers):
        pieces = [p for b in buffers for p in b.pieces()]
        events = sorted([(p[0], p[3] - p[2]) for p in pieces] + [(p[1], p[2] - p[3]) for p in pieces])
    else:
        events = sorted([(b.lower, b.size) for b in buffers] + [(b.upper, -b.size) for b in buffers])
    live = best = 0
    for _, delta in events:  # at equal times the (negative) ends sort first: [lower, upper) is half-open
        live += delta
        best = max(best, live)
    return best


# ---- CSV ---------------------------------------------------------------------------------------

_ALIASES = {"buffer": "id", "buffer_id": "id", "begin": "lower", "start": "lower"}
_COLUMNS = "id,lower,upper,size[,alignment][,gaps][,offset]"
_GAP = re.compile(r"(-?\d+)-(-?\d+)(?:@(\d+):(\d+))?")


def _integer(name: str, cell: str, where: str, required: bool = True) -> int | None:
    cell = cell.strip()
    if not cell and not required:
        return None
    try:
        return int(cell)
    except ValueError:
        raise BufferFileError(f"{where}: {name} is {cell!r}; fields must be integers") from None


def _gaps(cell: str, where: str, inclusive_end: bool) -> tuple[Gap, ...]:
    gaps = []
    for item in cell.split():
        match = _GAP.fullmatch(item)
        if match is None:
            raise BufferFileError(f"{where}: gaps item {item!r} is not LO-HI or LO-HI@WLO:WHI (integers)")
        lo, hi, wlo, whi = match.groups()
        window = None if wlo is None else (int(wlo), int(whi))
        gaps.append(Gap(int(lo), int(hi) + 1 if inclusive_end else int(hi), window))
    return tuple(gaps)


def parse_csv(text: str, source: str = "<csv>") -> list[Buffer]:
    """Buffers from MiniMalloc CSV text (see the module docstring)."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise BufferFileError(f"{source}: empty file; expected a header line {_COLUMNS}")
    header = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in rows[0]]
    inclusive_end = "upper" not in header and "end" in header
    if inclusive_end:
        header[header.index("end")] = "upper"
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise BufferFileError(
            f"{source}: header names column {twice[0]} twice (begin/start read as lower, buffer/buffer_id as id); "
            "keep one"
        )
    missing = [c for c in ("id", "lower", "upper", "size") if c not in header]
    if missing:
        raise BufferFileError(f"{source}: header lacks column(s) {', '.join(missing)}; expected {_COLUMNS}")
    col = {name: header.index(name) for name in header}
    buffers: list[Buffer] = []
    seen: set[str] = set()
    for line, row in enumerate(rows[1:], start=2):
        where = f"{source}:{line}"
        if len(row) != len(header):
            raise BufferFileError(f"{where}: {len(row)} fields, header has {len(header)}")
        cells = {name: row[i] for name, i in col.items()}
        upper = _integer("upper", cells["upper"], where)
        alignment = _integer("alignment", cells.get("alignment", ""), where, required=False)
        try:
            buffer = Buffer(
                id=cells["id"].strip(),
                lower=_integer("lower", cells["lower"], where) or 0,
                upper=(upper or 0) + 1 if inclusive_end else (upper or 0),
                size=_integer("size", cells["size"], where) or 0,
                alignment=1 if alignment is None else alignment,
                offset=_integer("offset", cells.get("offset", ""), where, required=False),
                gaps=_gaps(cells.get("gaps", ""), where, inclusive_end),
            )
        except AllocError as e:
            if isinstance(e, BufferFileError):
                raise
            raise BufferFileError(f"{where}: {e}") from None
        if buffer.id in seen:
            raise BufferFileError(f"{where}: buffer id {buffer.id!r} appears twice; ids must be unique")
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
    """MiniMalloc's solution CSV: the input columns plus ``offset`` (``upper`` and gap ends exclusive)."""
    buffers = list(buffers)
    aligned = any(b.alignment != 1 for b in buffers)
    gapped = any(b.gaps for b in buffers)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["id", "lower", "upper", "size", *(["alignment"] if aligned else []), *(["gaps"] if gapped else []), "offset"]
    )
    for b in buffers:
        extra = ([b.alignment] if aligned else []) + ([" ".join(map(str, b.gaps))] if gapped else [])
        writer.writerow([b.id, b.lower, b.upper, b.size, *extra, offsets[b.id]])
    return out.getvalue()


def write_csv(path: Path | str, buffers: Iterable[Buffer], offsets: Mapping[str, int]) -> None:
    """Write the solution CSV atomically (temporary file and rename)."""
    atomic_write_text(Path(path), format_csv(buffers, offsets))
