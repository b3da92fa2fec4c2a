"""Benchmark: MiniMalloc's "challenging" suite, each instance packed at its capacity.

:func:`run_minimalloc_suite` solves every ``X.<capacity>.csv`` of a directory with
:func:`cosma.alloc.solve` and checks each packing with the independent checker; the rows are
stored as CSV (:data:`RESULTS`) and rendered by :func:`markdown_section` beside the solve
times MiniMalloc's authors published. Run it with::

    python benchmarks/minimalloc.py [--dir ../shared/benchmarks/minimalloc/challenging] [--time-limit 60] \\
        [--out DIR | --update-docs]

which writes ``allocation_minimalloc.csv`` into ``--out`` (default ``./bench-out``). With
``--update-docs`` it rewrites ``docs/allocation_minimalloc.csv`` and the section
``## Allocation: MiniMalloc challenging suite`` of ``docs/BENCHMARKS.md`` of the source tree
instead (the rest of that file is left as it is).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from docs_section import replace_section

from cosma.alloc.buffers import max_load, read_csv
from cosma.alloc.dsa import ENGINES, solve
from cosma.alloc.verify import packing_errors
from cosma.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]  # the source tree around benchmarks/
SUITE = ROOT.parent / "shared" / "benchmarks" / "minimalloc" / "challenging"
RESULTS = ROOT / "docs" / "allocation_minimalloc.csv"
BENCHMARKS_MD = ROOT / "docs" / "BENCHMARKS.md"
HEADING = "## Allocation: MiniMalloc challenging suite"
COMMAND = "python benchmarks/minimalloc.py"
#: Where a run writes unless told otherwise: a folder of the current directory, never the source tree.
DEFAULT_OUT = Path("bench-out")

MINIMALLOC_MS: dict[str, int] = {
    "A": 4910,
    "B": 3661,
    "C": 637,
    "D": 2674,
    "E": 3717,
    "F": 5358,
    "G": 1181,
    "H": 1808,
    "I": 3908,
    "J": 883,
    "K": 628,
}
"""MiniMalloc's solve times (ms) at capacity 1,048,576, from the "Empirical Results: Challenging
Suite" slide of the MiniMalloc ASPLOS talk (M. D. Moffitt, ASPLOS 2023/24; ``img/minimalloc.slides.pdf``
in google/minimalloc). The same slide gives > 3,600,000 ms (time-out) for a mixed ILP and for
TelaMalloc on every instance. Their machine is not ours: compare orders of magnitude."""


@dataclass(frozen=True)
class AllocRow:
    instance: str
    buffers: int
    capacity: int
    max_load: int
    status: str
    height: int
    lower_bound: int
    seconds: float
    method: str
    nodes: int
    valid: bool  # the independent checker accepts the packing within the capacity
    minimalloc_ms: int | None


def _capacity_of(path: Path) -> int:
    match = re.fullmatch(r"(.+)\.(\d+)\.csv", path.name)
    if not match:
        raise ValueError(f"{path.name}: expected NAME.CAPACITY.csv")
    return int(match.group(2))


def run_minimalloc_suite(
    directory: Path | str = SUITE,
    time_limit: float = 60.0,
    seed: int = 0,
    progress: Callable[[AllocRow], None] | None = None,
    engine: str = "auto",
) -> list[AllocRow]:
    """Solve every ``NAME.CAPACITY.csv`` in ``directory`` at its capacity, one at a time, with
    ``engine`` (see :data:`cosma.alloc.dsa.ENGINES`)."""
    rows = []
    for path in sorted(Path(directory).glob("*.csv")):
        capacity = _capacity_of(path)
        buffers = read_csv(path)
        packing = solve(buffers, capacity=capacity, time_limit=time_limit, seed=seed, engine=engine)
        name = path.name.split(".")[0]
        row = AllocRow(
            instance=name,
            buffers=len(buffers),
            capacity=capacity,
            max_load=max_load(buffers),
            status=packing.status,
            height=packing.height,
            lower_bound=packing.lower_bound,
            seconds=round(packing.seconds, 3),
            method=packing.method,
            nodes=packing.nodes,
            valid=packing.fits and not packing_errors(buffers, packing.offsets, capacity),
            minimalloc_ms=MINIMALLOC_MS.get(name) if capacity == 1048576 else None,
        )
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


def to_csv(rows: Sequence[AllocRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(AllocRow)], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return out.getvalue()


def read_rows(path: Path | str = RESULTS) -> list[AllocRow]:
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append(
                AllocRow(
                    instance=r["instance"],
                    buffers=int(r["buffers"]),
                    capacity=int(r["capacity"]),
                    max_load=int(r["max_load"]),
                    status=r["status"],
                    height=int(r["height"]),
                    lower_bound=int(r["lower_bound"]),
                    seconds=float(r["seconds"]),
                    method=r["method"],
                    nodes=int(r["nodes"]),
                    valid=r["valid"] == "True",
                    minimalloc_ms=int(r["minimalloc_ms"]) if r["minimalloc_ms"] else None,
                )
            )
    return rows


def markdown_section(rows: Sequence[AllocRow] | None = None, meta: str = "") -> str:
    """The per-instance table and its summary, without the heading (from :data:`RESULTS` if no rows)."""
    if rows is None:
        if not RESULTS.exists():
            return f"Not measured yet: run `{COMMAND} --update-docs`."
        rows = read_rows(RESULTS)
        meta = meta or f"Results from `{RESULTS.relative_to(ROOT)}`."
    lines = [
        "Each instance of MiniMalloc's challenging suite (Apache-2.0 data from google/minimalloc) packed "
        "at capacity 1,048,576 by `cosma.alloc.solve` (decision mode), one instance at a time, 1 CP-SAT "
        "worker, seed 0; every packing re-checked by the independent overlap and capacity test "
        "(`cosma.alloc.verify`). `optimal`: the height equals the max-load lower bound. Produced by "
        f"`{COMMAND}`" + (f"; {meta}" if meta else "."),
        "",
        "| instance | buffers | max-load | status | height | valid | cosma (s) | found by | search nodes "
        "| MiniMalloc (s), published |",
        "|---|---:|---:|---|---:|---|---:|---|---:|---:|",
    ]
    for r in rows:
        published = "-" if r.minimalloc_ms is None else f"{r.minimalloc_ms / 1000:.2f}"
        lines.append(
            f"| {r.instance} | {r.buffers} | {r.max_load:,} | {r.status} | {r.height:,} | "
            f"{'yes' if r.valid else 'NO'} | {r.seconds:.2f} | {r.method} | {r.nodes:,} | {published} |"
        )
    solved = [r for r in rows if r.valid]
    if rows:
        times = [r.seconds for r in rows]
        zero_slack = [r for r in rows if r.max_load == r.capacity]
        lines += [
            "",
            f"{len(solved)} of {len(rows)} packed within the capacity; "
            f"{sum(r.height == r.capacity for r in zero_slack)} of the {len(zero_slack)} zero-slack instances "
            f"(max-load = capacity) at height exactly {rows[0].capacity:,}. Time per instance: median "
            f"{statistics.median(times):.2f} s, max {max(times):.2f} s. MiniMalloc's published times (C++, "
            "their machine) are 0.6 to 5.4 s; a mixed ILP and TelaMalloc time out after one hour on every "
            "instance (same source).",
        ]
    return "\n".join(lines)


def write_section(text: str, path: Path) -> None:
    """Replace (or append) the allocation section of ``path``, leaving the rest untouched."""
    # also the heading the zoo bench gives the same table, so that the section is never doubled
    replace_section(path, HEADING, COMMAND, text, pattern=r"^## Allocation\b[^\n]*MiniMalloc[^\n]*\n.*?(?=^## |\Z)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=SUITE, help="folder of NAME.CAPACITY.csv files")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per instance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="auto (the default, the one documented) or one engine alone, to compare them; "
        "only auto writes the markdown section",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder for the CSV and BENCHMARKS.md (default: ./bench-out)"
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="write docs/allocation_minimalloc.csv and the section of docs/BENCHMARKS.md of the source tree instead",
    )
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a folder of MiniMalloc CSV files; pass --dir", file=sys.stderr)
        return 2
    results, markdown = (
        (RESULTS, BENCHMARKS_MD)
        if args.update_docs
        else (
            args.out / RESULTS.name,
            args.out / BENCHMARKS_MD.name,
        )
    )
    try:
        results.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create {results.parent}: {e.strerror or e}; choose another --out", file=sys.stderr)
        return 2
    started = time.strftime("%Y-%m-%d")
    rows = run_minimalloc_suite(
        args.dir,
        args.time_limit,
        args.seed,
        engine=args.engine,
        progress=lambda r: print(
            f"{r.instance}: {r.status}, height {r.height}, {r.seconds:.2f} s, {r.method}, valid {r.valid}", flush=True
        ),
    )
    atomic_write_text(results, to_csv(rows))
    if args.engine != "auto":
        return 0 if all(r.valid for r in rows) else 1
    cpu = platform.processor() or platform.machine()
    meta = (
        f"run {started} on {cpu} ({os.cpu_count()} cores visible, Python {platform.python_version()}), "
        f"time limit {args.time_limit:g} s per instance; rows in `{results.name}`."
    )
    write_section(markdown_section(rows, meta), markdown)
    print(f"wrote {results}, {markdown}")
    return 0 if all(r.valid for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
