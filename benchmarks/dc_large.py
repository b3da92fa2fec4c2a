#!/usr/bin/env python3
"""Divide and conquer on a NAS-style graph of about 3,000 operators: time, memory, traffic, validity.

    python benchmarks/dc_large.py                       # randwire_large (3,005 operators), M_R and M_H, 240 s each
    python benchmarks/dc_large.py --model randwire_ba --time-limit 60 --budgets M_R
    python benchmarks/dc_large.py --synthetic           # the synthetic graph: 90 cells (2,931 operators)
    python benchmarks/dc_large.py --synthetic --cells 30 --time-limit 60 --budgets M_R
    /usr/bin/time -v python benchmarks/dc_large.py --synthetic --ops 10000 --time-limit 540 --budgets M_R
                                                        # 10,011 operators (306 cells): the 600 s / 4 GB check

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
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))

import zoo
from minpeak_exact_size import nas_like

from cosma.budgets import resolve_budget
from cosma.contract import replay
from cosma.frontend import load_onnx
from cosma.graph import Graph
from cosma.methods import compile

CHECKPLAN = Path(__file__).resolve().parents[2] / "shared" / "tools" / "checkplan.py"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="randwire_large", help="zoo model name (default: randwire_large)")
    parser.add_argument("--synthetic", action="store_true", help="the synthetic nas_like graph instead of --model")
    parser.add_argument("--cells", type=int, default=90, help="cells of the synthetic graph")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic graph")
    parser.add_argument("--ops", type=int, help="synthetic graph: the fewest cells giving at least this many operators")
    parser.add_argument("--budgets", nargs="+", default=["M_R", "M_H"])
    parser.add_argument("--time-limit", type=float, default=240.0)
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
    print(f"{graph.name}: {len(graph.ops)} operators, {len(graph.tensors)} tensors", flush=True)
    for label in args.budgets:
        budget = resolve_budget(graph, label)
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
    return 0


def cells_for(ops: int, seed: int) -> int:
    """The fewest cells whose synthetic graph has at least ``ops`` operators (cells average about 33)."""
    cells = max(1, ops // 40)
    while len(nas_like(random.Random(seed), cells).ops) < ops:
        cells += 1
    return cells


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
