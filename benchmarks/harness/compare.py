"""Two bench runs side by side, per instance: the section "In-place operators" of docs/BENCHMARKS.md.

``python benchmarks/harness/compare.py OFF/benchmarks.csv ON/benchmarks.csv`` prints a markdown table of
the runs without and with in-place pairs (``benchmarks/bench.py`` and ``benchmarks/bench.py --inplace``):
per model, weights variant and budget, the budget's bytes, the best extra traffic over the methods, whether
a bound proves it, and the time of ``auto``. The budgets differ between the runs: ``M_R`` and ``M_P`` are
computed with the pairs, so they shrink, and ``M_H`` with them.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the harness package lives beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.protocol import variant_label
from harness.records import BenchRow
from harness.stats import InstanceSummary, instances


def _int(text: str) -> int | None:
    return None if text == "" else int(float(text))


def read_rows(path: Path) -> list[BenchRow]:
    """The rows of a run's ``benchmarks.csv`` (the columns of :data:`harness.outputs.CSV_COLUMNS`)."""
    rows = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            rows.append(
                BenchRow(
                    r["model"],
                    r["group"],
                    r["weights"] == "True",
                    r["budget"],
                    int(r["scratchpad_bytes"]),
                    r["method"],
                    r["resolved_method"],
                    r["status"],
                    None if r["valid"] == "" else r["valid"] == "True",
                    _int(r["extra_bytes"]),
                    _int(r["compulsory_bytes"]),
                    _int(r["bound"]),
                    None if r["gap"] == "" else float(r["gap"]),
                    float(r["solve_seconds"] or 0),
                    float(r["total_seconds"] or 0),
                    r["message"],
                )
            )
    return rows


def _bytes(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _auto_seconds(rows: Sequence[BenchRow], key: str) -> str:
    found = [r.total_seconds for r in rows if r.key == key and r.method == "auto"]
    return f"{found[0]:.1f}" if found else "-"


def side_by_side(off: Sequence[BenchRow], on: Sequence[BenchRow]) -> str:
    """The markdown table and its totals (instances present in both runs, in the first run's order)."""
    on_by_key = {s.key: s for s in instances(on)}
    lines = [
        "| model | weights | budget | bytes off | bytes on | extra off | extra on | proven off/on | auto s off/on |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    pairs: list[tuple[InstanceSummary, InstanceSummary]] = []
    for a in instances(off):
        b = on_by_key.get(a.key)
        if b is None:
            continue
        pairs.append((a, b))
        lines.append(
            f"| {a.model} | {variant_label(a.weights)} | {a.budget} | {_bytes(a.scratchpad_bytes)} | "
            f"{_bytes(b.scratchpad_bytes)} | {_bytes(a.best_extra_bytes)} | {_bytes(b.best_extra_bytes)} | "
            f"{'yes' if a.proven else 'no'}/{'yes' if b.proven else 'no'} | "
            f"{_auto_seconds(off, a.key)}/{_auto_seconds(on, b.key)} |"
        )
    invalid = [r for rows in (off, on) for r in rows if r.valid is False or r.status in ("error", "invalid")]
    smaller = sum(b.scratchpad_bytes < a.scratchpad_bytes for a, b in pairs)
    lines += [
        "",
        f"{len(pairs)} instances: proven optimal {sum(a.proven for a, _ in pairs)} without in-place, "
        f"{sum(b.proven for _, b in pairs)} with; the budget is smaller with pairs on {smaller}; "
        f"{len(invalid)} invalid or failed runs over both.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not all(Path(a).is_file() for a in args):
        print("usage: compare.py OFF/benchmarks.csv ON/benchmarks.csv (two existing files)", file=sys.stderr)
        return 2
    print(side_by_side(read_rows(Path(args[0])), read_rows(Path(args[1]))), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
