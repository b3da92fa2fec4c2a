#!/usr/bin/env python3
"""Divide and conquer on the NAS-generated and randomly wired zoo models, at the six budgets.

    python benchmarks/dc_nas.py                                   # NAS + RandWire, six budgets, dc, 60 s each
    python benchmarks/dc_nas.py --models darts --budgets M_R --time-limit 20
    python benchmarks/dc_nas.py --models resnet50 densenet121 --methods joint dc --budgets M_R   # the threshold

Every tensor is 1 byte per element (an int8 accelerator); the budgets are those of
:func:`cosma.budgets.budgets`: ``M_R``, ``M_H``, ``M_P`` of the graph with weights and of its
activation-only variant. For each instance it runs the four baselines once
(:func:`cosma.methods.baselines.best_baseline`, the same min-peak search limit as the exact methods) and
each requested method through :func:`cosma.compile`, checks every plan with the project's replay,
and prints one markdown row: the baselines' extra bytes, the method's extra bytes, its reduction
against the best baseline and against each baseline on average, its lower bound and gap, status and
seconds. ``--jsonl`` appends the raw rows to a file as they come (a long sweep can be resumed with
``--skip-done``). The figures in docs/formulation.md ("Divide and conquer") come from this script.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))

import zoo

from cosma.budgets import budgets
from cosma.contract import replay
from cosma.frontend import load_onnx
from cosma.hardware import Accelerator
from cosma.methods import compile
from cosma.methods.baselines import BASELINES, best_baseline
from cosma.options import Options

NAS_MODELS = ("nasnet_a", "pnasnet5", "amoebanet", "darts", "randwire_ws", "randwire_er", "randwire_ba")
BUDGETS = ("M_R", "M_H", "M_P", "M_R/no-weights", "M_H/no-weights", "M_P/no-weights")
SHORT = {"default+belady": "def+B", "minpeak+belady": "mp+B", "default+greedy": "def+G", "minpeak+greedy": "mp+G"}


def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.0f}%"


def reductions(extra: int, baselines: dict[str, int]) -> tuple[float | None, float | None]:
    """(change against the best baseline, mean change against each baseline with traffic)."""
    best = min(baselines.values())
    vs_best = None if best == 0 else extra / best - 1
    changes = [extra / b - 1 for b in baselines.values() if b > 0]
    return vs_best, (sum(changes) / len(changes) if changes else None)


def run_instance(
    model: str,
    graph: Any,
    label: str,
    scratchpad: int,
    methods: list[str],
    time_limit: float,
    segment_ops: int | None = None,
) -> list[dict[str, Any]]:
    options = Options(time_limit=time_limit)
    base = best_baseline(graph, Accelerator(scratchpad), options)
    baselines = dict(base.summary.details["baselines"])
    rows = []
    for method in methods:
        started = time.perf_counter()
        given = segment_ops if segment_ops and method in ("dc", "auto") else None
        plan = compile(graph, scratchpad, method=method, options=replace(options, segment_ops=given))
        seconds = time.perf_counter() - started
        replay(plan.to_dict())  # raises if the plan breaks a rule or misstates its cost
        s = plan.summary
        vs_best, vs_each = reductions(s.extra_bytes, baselines)
        rows.append(
            {
                "model": model,
                "ops": len(graph.ops),
                "budget": label,
                "scratchpad": scratchpad,
                "method": method,
                "segment_ops": segment_ops,
                "ran": s.method,
                "baselines": baselines,
                "extra": s.extra_bytes,
                "bound": s.bound,
                "gap": s.gap,
                "status": s.status,
                "seconds": round(seconds, 2),
                "vs_best": vs_best,
                "vs_each": vs_each,
                "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "phases": [p.get("phase") for p in s.details.get("phases", [])],
            }
        )
    return rows


def markdown_row(r: dict[str, Any]) -> str:
    b = r["baselines"]
    gap = "-" if r["gap"] is None else f"{100 * r['gap']:.0f}%"
    return (
        f"| {r['model']} | {r['ops']} | {r['budget']} | {r['scratchpad']} | "
        + " | ".join(str(b[n]) for n in BASELINES)
        + f" | {r['ran']} | {r['extra']} | {percent(r['vs_best'])} | {percent(r['vs_each'])} | {r['bound']} | {gap}"
        f" | {r['status']} | {r['seconds']:.1f} |"
    )


HEADER = (
    "| model | ops | budget | bytes | "
    + " | ".join(SHORT[n] for n in BASELINES)
    + " | method | extra | vs best | vs each (mean) | bound | gap | status | s |\n"
    + "|---" * (7 + len(BASELINES))
    + "|---|---|---|---|---|"
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(NAS_MODELS))
    parser.add_argument("--budgets", nargs="+", default=list(BUDGETS), choices=BUDGETS)
    parser.add_argument("--methods", nargs="+", default=["auto"])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--segment-ops", type=int, default=None, help="dc window size (default: the driver's)")
    parser.add_argument("--jsonl", type=Path, default=None, help="append raw rows to this file")
    parser.add_argument("--skip-done", action="store_true", help="skip instances already in --jsonl")
    args = parser.parse_args(argv)
    done = set()
    if args.skip_done and args.jsonl and args.jsonl.exists():
        for line in args.jsonl.read_text().splitlines():
            r = json.loads(line)
            done.add((r["model"], r["budget"], r["method"]))
    print(HEADER, flush=True)
    all_rows = []
    for model in args.models:
        graph = load_onnx(zoo.path(model), element_bytes=1)
        variants = {True: graph, False: graph.without_weights()}
        sizes = dict(budgets(graph).items())
        for label in args.budgets:
            methods = [m for m in args.methods if (model, label, m) not in done]
            if not methods:
                continue
            g = variants["no-weights" not in label]
            rows = run_instance(model, g, label, sizes[label], methods, args.time_limit, args.segment_ops)
            for r in rows:
                print(markdown_row(r), flush=True)
                if args.jsonl:
                    with args.jsonl.open("a") as f:
                        f.write(json.dumps(r) + "\n")
            all_rows.extend(rows)
    with_traffic = [r for r in all_rows if r["vs_each"] is not None]
    if with_traffic:
        mean_each = sum(r["vs_each"] for r in with_traffic) / len(with_traffic)
        best = [r["vs_best"] for r in with_traffic if r["vs_best"] is not None]
        print(
            f"\n{len(all_rows)} runs; {len(with_traffic)} with baseline traffic: mean change against each baseline "
            f"{percent(mean_each)}, against the best baseline {percent(sum(best) / len(best))}; "
            f"longest {max(r['seconds'] for r in all_rows):.1f} s; peak memory "
            f"{max(r['maxrss_mib'] for r in all_rows):.0f} MiB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
