#!/usr/bin/env python3
"""Every zoo model x the four baselines x the six budgets, each plan checked by shared/tools/checkplan.py.

    python benchmarks/baselines_zoo.py                      # every model in models/
    python benchmarks/baselines_zoo.py resnet50 nasnet_a    # just these
    python benchmarks/baselines_zoo.py --json results.json  # also write every number

For each model and each variant (weights in the scratchpad, activation-only) it computes the
budgets M_R, M_H, M_P (:func:`cosma.budgets.graph_budgets`) and the two operator orders once,
plans the four baselines at each budget, writes the plans to a temporary folder and runs the
independent checker on them. It prints one line per model and variant (extra bytes per method
and budget, how M_P was found, seconds) and the totals; exit status 0 when every plan is valid.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cosma
from cosma.budgets import BUDGET_NAMES, graph_budgets
from cosma.hardware import Accelerator
from cosma.methods.baselines import BASELINES, baseline_order, solve_baseline
from cosma.options import Options

ROOT = Path(__file__).resolve().parent.parent
CHECKPLAN = ROOT.parent / "shared" / "tools" / "checkplan.py"


def run_variant(graph: cosma.Graph, label: str, folder: Path, options: Options) -> dict[str, object]:
    started = time.perf_counter()
    b = graph_budgets(graph, time_limit=options.time_limit)
    budget_seconds = time.perf_counter() - started
    accelerator = Accelerator(b.m_r)  # the orders do not depend on the budget
    schedules = {o: baseline_order(graph, accelerator, o, options) for o in ("default", "minpeak")}
    extra: dict[str, dict[str, int]] = {}
    paths = []
    plan_started = time.perf_counter()
    for budget in BUDGET_NAMES:
        size = b.get(budget)
        extra[budget] = {}
        for name in BASELINES:
            order, policy = name.split("+")
            plan = solve_baseline(
                graph, Accelerator(size), options, order=order, policy=policy, schedule=schedules[order]
            )
            path = folder / f"{label}.{budget}.{name}.json"
            plan.save(path)
            paths.append(path)
            extra[budget][name] = plan.extra_bytes
    plan_seconds = time.perf_counter() - plan_started
    check = subprocess.run(
        [sys.executable, str(CHECKPLAN), "--json", *map(str, paths)], capture_output=True, text=True, check=False
    )
    verdicts = [line for line in check.stdout.splitlines() if line.strip()]
    valid = sum(1 for line in verdicts if line.startswith("{") and json.loads(line).get("valid", True))
    return {
        "ops": len(graph.ops),
        "budgets": {"M_R": b.m_r, "M_H": b.m_h, "M_P": b.m_p},
        "m_p_proven": b.m_p_proven,
        "m_p_method": b.m_p_method,
        "m_p_bound": b.m_p_bound,
        "default_peak": schedules["default"].peak,
        "extra_bytes": extra,
        "plans": len(paths),
        "valid": valid,
        "checker_exit": check.returncode,
        "checker_errors": [line for line in verdicts if not line.startswith("{")][:3],
        "budget_seconds": round(budget_seconds, 3),
        "plan_seconds": round(plan_seconds, 3),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="zoo model names (default: every models/*.onnx)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds for each min-peak search")
    parser.add_argument("--json", type=Path, default=None, help="write every number to this file")
    args = parser.parse_args(argv)
    if not CHECKPLAN.is_file():
        print(f"error: {CHECKPLAN} is missing; run from a checkout with shared/ beside it", file=sys.stderr)
        return 2
    files = [ROOT / "models" / f"{m}.onnx" for m in args.models] or sorted((ROOT / "models").glob("*.onnx"))
    options = Options(time_limit=args.time_limit)
    results: dict[str, dict[str, object]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            graph = cosma.load_onnx(path)
            for variant, g in (("weights", graph), ("no-weights", graph.without_weights())):
                r = run_variant(g, f"{path.stem}.{variant}", Path(tmp), options)
                results[f"{path.stem}/{variant}"] = r
                cells = " ".join(
                    f"{budget}:" + "/".join(str(r["extra_bytes"][budget][n]) for n in BASELINES)  # type: ignore[index]
                    for budget in BUDGET_NAMES
                )
                print(
                    f"{path.stem:22s} {variant:10s} ops {r['ops']:5d} valid {r['valid']}/{r['plans']} "
                    f"M_P {r['m_p_method']}{'' if r['m_p_proven'] else ' (not proven)'} "
                    f"budgets {r['budget_seconds']:.1f}s plans {r['plan_seconds']:.1f}s | extra {cells}",
                    flush=True,
                )
    total = sum(int(r["plans"]) for r in results.values())  # type: ignore[call-overload]
    valid = sum(int(r["valid"]) for r in results.values())  # type: ignore[call-overload]
    print(
        f"{len(files)} models, {len(results)} variants: {valid}/{total} plans valid by checkplan.py, "
        f"{time.perf_counter() - started:.1f} s (extra bytes listed as {'/'.join(BASELINES)})"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if valid == total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
