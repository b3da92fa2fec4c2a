"""What ``cosma alloc`` does, apart from parsing its options: read, solve, report, write."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from cosma.alloc.buffers import Packing, read_csv, write_csv
from cosma.alloc.dsa import solve
from cosma.errors import CosmaError, ExitCode
from cosma.units import parse_size

EXIT_PACKED = ExitCode.DONE
EXIT_INFEASIBLE = ExitCode.NEGATIVE  # proven: no packing fits the capacity
EXIT_UNDECIDED = ExitCode.UNDECIDED  # the time limit ran out before a packing was found or ruled out


def exit_status(packing: Packing) -> ExitCode:
    if packing.status == "infeasible":
        return EXIT_INFEASIBLE
    if packing.status == "unknown":
        return EXIT_UNDECIDED
    return EXIT_PACKED


def summary(name: str, n: int, packing: Packing) -> str:
    """One line: what was asked, what was found, what is proven."""
    p = packing
    asked = f"capacity {p.capacity} B" if p.capacity is not None else "least height"
    head = f"{name}: {n} buffers, {asked}: "
    tail = f", {p.seconds:.2f} s, {p.method}" + (f", {p.nodes} search nodes" if p.nodes else "")
    if p.status == "infeasible":
        return (
            head + f"INFEASIBLE: no packing fits (proven lower bound {p.lower_bound} B; "
            f"lowest found {p.height} B){tail}"
        )
    if p.status == "unknown":
        return (
            head + f"UNKNOWN: no packing within the capacity found in time (lowest found {p.height} B, "
            f"lower bound {p.lower_bound} B){tail}"
        )
    proof = "optimal" if p.status == "optimal" else f"feasible, lower bound {p.lower_bound} B"
    return head + f"height {p.height} B ({proof}){tail}"


def alloc_command(
    path: Path,
    capacity: str | None,
    output: Path | None,
    *,
    time_limit: float,
    seed: int,
    threads: int,
    echo: Callable[[str], None],
    engine: str = "auto",
) -> ExitCode:
    """Pack the buffers of ``path``; write ``output`` when they fit; return the exit status."""
    started = time.monotonic()
    buffers = read_csv(path)
    cap = None if capacity is None else parse_size(capacity)
    # the limit covers the whole command: reading a large file takes a second or more
    left = max(0.0, time_limit - (time.monotonic() - started))
    packing = solve(buffers, capacity=cap, time_limit=left, seed=seed, workers=threads, engine=engine)
    line = summary(Path(path).name, len(buffers), packing)
    if output is not None and packing.fits:
        try:
            write_csv(output, buffers, packing.offsets)
        except OSError as e:  # the temporary file's name in e would mislead: name the path asked for
            raise CosmaError(
                f"cannot write the packing to {output}: {e.strerror or e}; choose another --output"
            ) from None
        line += f" -> {output}"
    elif output is not None:
        line += f"; {output} not written"
    echo(line)
    return exit_status(packing)
