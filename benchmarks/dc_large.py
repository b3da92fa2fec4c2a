#!/usr/bin/env python3
"""Divide and conquer on a NAS-style graph of about 3,000 operators: time, memory, traffic, validity.

    python benchmarks/dc_large.py                       # randwire_large (3,005 operators), M_R and M_H, 240 s each
    python benchmarks/dc_large.py --model randwire_ba --time-limit 60 --budgets M_R
    python benchmarks/dc_large.py --synthetic           # the synthetic graph: 90 cells (2,931 operators)
    python benchmarks/dc_large.py --synthetic --cells 30 --time-limit 60 --budgets M_R
    /usr/bin/time -v python benchmarks/dc_large.py --synthetic --ops 10000 --time-limit 540 --budgets M_R
                                                        # 10,011 operators (306 cells): the 600 s / 4 GB check
    python benchmarks/dc_large.py --update-docs         # also record the rows in docs/dc_large.csv and
                                                        # the section of docs/BENCHMARKS.md

The graph is, by default, the zoo model ``--model`` (``randwire_large``: RandWire with
Barabasi-Albert graphs of 95 nodes per stage, see ``models/README.md``), loaded with
``cosma.load_onnx(zoo.path(name), element_bytes=1)`` as the benchmark protocol loads models, its
weights kept. With ``--synthetic`` it is :func:`minpeak_exact_size.nas_like` instead (cells reading
the two previous cells' outputs, five blocks of two chains each, no cut point), built
deterministically from ``--cells`` and ``--seed``. Each run
goes through :func:`cosma.compile` with method ``auto`` (which picks ``dc`` at this size), writes
the plan, checks it with the independent ``shared/tools/checkplan.py`` when it is there (else with
the project's replay), and reports wall seconds, the process's peak resident memory
(``resource.getrusage``), extra traffic against the best baseline, the bound and the gap.

With ``--update-docs`` each run's row replaces the row of the same graph and budget in
``docs/dc_large.csv`` and the section "Divide and conquer at scale" of ``docs/BENCHMARKS.md`` is
rewritten from that file (``benchmarks/bench.py`` renders the same section from it, so either
tool can refresh the report without losing the other's part).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))

import zoo
from docs_section import replace_section
from minpeak_exact_size import nas_like

from cosma.budgets import resolve_budget
from cosma.contract import replay
from cosma.fileio import atomic_write_text
from cosma.frontend import load_onnx
from cosma.graph import Graph
from cosma.methods import compile

ROOT = Path(__file__).resolve().parents[1]  # the source tree around benchmarks/
CHECKPLAN = ROOT.parent / "shared" / "tools" / "checkplan.py"
RESULTS = ROOT / "docs" / "dc_large.csv"
BENCHMARKS_MD = ROOT / "docs" / "BENCHMARKS.md"
HEADING = "## Divide and conquer at scale"
COMMAND = "python benchmarks/dc_large.py"


@dataclass(frozen=True)
class ScaleRow:
    """One compile of a large graph at one budget, as measured by this script."""

    graph: str  # the zoo model, or ``nas_like(cells=..., seed=...)``
    operators: int
    tensors: int
    budget: str
    scratchpad_bytes: int
    method: str
    status: str
    extra_bytes: int
    best_baseline_bytes: int | None
    bound: int | None
    time_limit: float
    seconds: float  # wall seconds of ``compile``
    process_seconds: float  # wall seconds of the script (after its imports) until the row, graph building included
    peak_mib: float  # the process's peak resident memory so far
    windows: int | None
    verdict: str  # checkplan.py's last line, or the project's replay where checkplan.py is absent
    date: str
    commit: str
    load: str  # 1-minute load average at the start and at the end of the compile

    @property
    def key(self) -> tuple[str, str]:
        return self.graph, self.budget

    @property
    def valid(self) -> bool:
        return self.verdict.startswith("valid") or ": valid" in self.verdict

    @property
    def change(self) -> float | None:
        base = self.best_baseline_bytes
        return None if not base else self.extra_bytes / base - 1.0

    @property
    def gap(self) -> float | None:
        return None if self.bound is None or not self.extra_bytes else 1.0 - self.bound / self.extra_bytes


_FIELDS = tuple(f.name for f in dataclasses.fields(ScaleRow))


def to_csv(rows: Sequence[ScaleRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_FIELDS)
    for r in rows:
        writer.writerow(["" if getattr(r, f) is None else getattr(r, f) for f in _FIELDS])
    return buffer.getvalue()


def read_rows(path: Path) -> list[ScaleRow]:
    types = {f.name: f.type for f in dataclasses.fields(ScaleRow)}
    rows = []
    with path.open(newline="") as f:
        for raw in csv.DictReader(f):
            values: dict[str, object] = {}
            for name, text in raw.items():
                kind = str(types[name])
                if text == "" and "None" in kind:
                    values[name] = None
                elif kind.startswith("int"):
                    values[name] = int(text)
                elif kind.startswith("float"):
                    values[name] = float(text)
                else:
                    values[name] = text
            rows.append(ScaleRow(**values))  # type: ignore[arg-type]
    return rows


def merge(old: Sequence[ScaleRow], new: Sequence[ScaleRow]) -> list[ScaleRow]:
    """``old`` with each row of ``new`` replacing the one of its graph and budget (appended if none)."""
    fresh = {r.key: r for r in new}
    kept = [fresh.pop(r.key, r) for r in old]
    return kept + [r for r in new if r.key in fresh]


def markdown_section(rows: Sequence[ScaleRow] | None = None) -> str:
    """The table of large-graph runs and how to read it, without the heading (from :data:`RESULTS` if no rows)."""
    if rows is None:
        if not RESULTS.exists():
            return f"Not measured yet: run `{COMMAND} --update-docs`."
        rows = read_rows(RESULTS)
    lines = [
        "Each row is one `cosma.compile(graph, budget, time_limit=...)` with method `auto` (which picks `dc` at "
        f"these sizes), run and measured by `{COMMAND}` (its docstring gives the commands); the zoo graph is "
        "loaded as `cosma compile` loads it (in-place pairs on), the synthetic one is built by "
        "`minpeak_exact_size.nas_like`. *time*: wall seconds of the compile; "
        "*script*: of the script up to that row (after its imports), loading or building the graph and "
        "resolving the budget included; *memory*: the "
        "process's peak resident set; *change*: extra bytes against the best of the four baselines; *gap*: "
        "1 - bound / extra. *checked*: the last line of the independent `shared/tools/checkplan.py` on the saved "
        "plan. Machine: the bench's (2 shared cores); *load* is the 1-minute load average at the compile's start "
        "and end: the windows run on CP-SAT's deterministic time, the clock is a safety net, so a loaded machine "
        "solves fewer windows in the same limit.",
        "",
        "| graph | ops | budget | bytes | best baseline | dc | change | bound | gap | status | limit s | time s "
        "| script s | memory MiB | checked | date | commit | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in rows:
        base = "-" if r.best_baseline_bytes is None else f"{r.best_baseline_bytes:,}"
        change = "-" if r.change is None else f"{100 * r.change:+.1f}%"
        bound = "-" if r.bound is None else f"{r.bound:,}"
        gap = "-" if r.gap is None else f"{100 * r.gap:.0f}%"
        lines.append(
            f"| {r.graph} | {r.operators:,} | {r.budget} | {r.scratchpad_bytes:,} | {base} | {r.extra_bytes:,} | "
            f"{change} | {bound} | {gap} | {r.status} | {r.time_limit:g} | {r.seconds:.0f} | {r.process_seconds:.0f} "
            f"| {r.peak_mib:,.0f} | {'valid' if r.valid else 'NO: ' + r.verdict} | {r.date} | {r.commit} | {r.load} |"
        )
    return "\n".join(lines)


def write_section(text: str, path: Path) -> None:
    """Replace (or append) this script's section of ``path``, leaving the rest untouched."""
    replace_section(path, HEADING, COMMAND, text)


def _commit() -> str:
    run = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return run.stdout.strip() if run.returncode == 0 else "-"


def main(argv: list[str]) -> int:
    script_start = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="randwire_large", help="zoo model name (default: randwire_large)")
    parser.add_argument("--synthetic", action="store_true", help="the synthetic nas_like graph instead of --model")
    parser.add_argument("--cells", type=int, default=90, help="cells of the synthetic graph")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic graph")
    parser.add_argument("--ops", type=int, help="synthetic graph: the fewest cells giving at least this many operators")
    parser.add_argument("--budgets", nargs="+", default=["M_R", "M_H"])
    parser.add_argument("--time-limit", type=float, default=240.0)
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="record the rows in docs/dc_large.csv and rewrite the section of docs/BENCHMARKS.md",
    )
    args = parser.parse_args(argv)
    if not args.synthetic and args.model not in zoo.ZOO:
        parser.error(f"no zoo model {args.model!r}; choose from {', '.join(zoo.ZOO)}")
    if args.ops is not None:
        args.synthetic = True
        args.cells = cells_for(args.ops, args.seed)
    graph: Graph = (
        nas_like(random.Random(args.seed), args.cells)
        if args.synthetic
        else load_onnx(zoo.path(args.model), element_bytes=1)
    )
    name = f"nas_like(cells={args.cells}, seed={args.seed})" if args.synthetic else args.model
    print(f"{graph.name}: {len(graph.ops)} operators, {len(graph.tensors)} tensors", flush=True)
    rows = []
    for label in args.budgets:
        budget = resolve_budget(graph, label)
        load_start = os.getloadavg()[0]
        started = time.perf_counter()
        plan = compile(graph, budget, time_limit=args.time_limit)
        seconds = time.perf_counter() - started
        s = plan.summary
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "plan.json"
            plan.save(path)
            if CHECKPLAN.exists():
                check = subprocess.run([sys.executable, str(CHECKPLAN), str(path)], capture_output=True, text=True)
                verdict = check.stdout.strip().splitlines()[-1] if check.returncode == 0 else f"INVALID: {check.stdout}"
            else:
                replay(plan.to_dict())
                verdict = "valid (project replay)"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        base = s.details.get("baseline_extra_bytes")
        change = "-" if not base else f"{100 * (s.extra_bytes / base - 1):+.1f}%"
        gap = "-" if s.gap is None else f"{100 * s.gap:.0f}%"
        print(
            f"{label} = {budget} B: method {s.method}, extra {s.extra_bytes} B (best baseline {base}, {change}), "
            f"bound {s.bound}, gap {gap}, {s.status}, {seconds:.1f} s wall, peak memory {rss:.0f} MiB; "
            f"windows {s.details.get('windows')} ({s.details.get('windows_improved')} improved)\n  check: {verdict}",
            flush=True,
        )
        windows = s.details.get("windows")
        rows.append(
            ScaleRow(
                graph=name,
                operators=len(graph.ops),
                tensors=len(graph.tensors),
                budget=label,
                scratchpad_bytes=budget,
                method=s.method,
                status=str(s.status),
                extra_bytes=s.extra_bytes,
                best_baseline_bytes=base,
                bound=s.bound,
                time_limit=args.time_limit,
                seconds=round(seconds, 1),
                process_seconds=round(time.perf_counter() - script_start, 1),
                peak_mib=round(rss, 1),
                windows=windows if isinstance(windows, int) else None,
                verdict=verdict,
                date=time.strftime("%Y-%m-%d"),
                commit=_commit(),
                load=f"{load_start:.1f}-{os.getloadavg()[0]:.1f}",
            )
        )
    if args.update_docs:
        merged = merge(read_rows(RESULTS) if RESULTS.exists() else [], rows)
        atomic_write_text(RESULTS, to_csv(merged))
        write_section(markdown_section(merged), BENCHMARKS_MD)
        print(f"wrote {RESULTS} and the section {HEADING[3:]!r} of {BENCHMARKS_MD}")
    return 0 if all(r.valid for r in rows) else 1


def cells_for(ops: int, seed: int) -> int:
    """The fewest cells whose synthetic graph has at least ``ops`` operators (cells average about 33)."""
    cells = max(1, ops // 40)
    while len(nas_like(random.Random(seed), cells).ops) < ops:
        cells += 1
    return cells


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
