#!/usr/bin/env python3
"""Full-zoo check: every model loads, every tensor has a static shape, and a plan at M_R passes checkplan.py.

    python models/check_zoo.py                    # every zoo model, weights kept
    python models/check_zoo.py --no-weights       # the activation-only graphs
    python models/check_zoo.py resnet50 darts     # just these

For each model: :func:`cosma.load_onnx`, a check that every tensor has a static shape whose
elements times the element size give its bytes, :func:`cosma.compile` at ``M_R`` with the default
method, the plan written to a temporary file, and ``shared/tools/checkplan.py`` run on it (the
independent checker; its verdict is the one that counts). Exit status 0 when every model passes.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo import ZOO, ZooEntry, models_dir

import cosma

DEFAULT_CHECKPLAN = models_dir().parent.parent / "shared" / "tools" / "checkplan.py"
_ELEMENT_BYTES = {"float32": 4, "float16": 2, "int64": 8, "int32": 4, "bool": 1, "int8": 1, "uint8": 1}


def shape_problems(graph: cosma.Graph) -> list[str]:
    """Tensors whose recorded shape and dtype do not account for their bytes."""
    problems = []
    for t in graph.tensors:
        size = _ELEMENT_BYTES.get(t.dtype)
        if size is None or math.prod(t.shape) * size != t.bytes:
            problems.append(f"{t.name}: shape {t.shape} dtype {t.dtype!r} vs {t.bytes} B")
    return problems


def check(entry: ZooEntry, checkplan: Path, weights: bool, out: Path) -> dict[str, object]:
    started = time.perf_counter()
    graph = cosma.load_onnx(entry.path, weights=weights)
    loaded = time.perf_counter()
    problems = shape_problems(graph)
    plan = cosma.compile(graph, graph.min_scratchpad)
    compiled = time.perf_counter()
    plan_path = out / f"{entry.name}.plan.json"
    plan.save(plan_path)
    verdict = subprocess.run(
        [sys.executable, str(checkplan), str(plan_path)], capture_output=True, text=True, check=False
    )
    return {
        "model": entry.name,
        "ops": len(graph.ops),
        "tensors": len(graph.tensors),
        "M_R": graph.min_scratchpad,
        "extra_bytes": plan.summary.extra_bytes,
        "load_s": round(loaded - started, 2),
        "compile_s": round(compiled - loaded, 2),
        "shape_problems": problems[:3],
        "checkplan_exit": verdict.returncode,
        "checkplan": (verdict.stdout or verdict.stderr).strip().split(": ", 1)[-1][:300],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="zoo models (default: all)")
    parser.add_argument("--no-weights", dest="weights", action="store_false", help="activation-only graphs")
    parser.add_argument("--checkplan", type=Path, default=DEFAULT_CHECKPLAN, help="path of checkplan.py")
    parser.add_argument("--json", action="store_true", help="one JSON object per model")
    args = parser.parse_args(argv)
    if not args.checkplan.exists():
        parser.error(f"{args.checkplan}: no such file; give --checkplan PATH")
    unknown = [n for n in args.names if n not in ZOO]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {', '.join(ZOO)}")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names or list(ZOO):
            try:
                result = check(ZOO[name], args.checkplan, args.weights, Path(tmp))
                ok = result["checkplan_exit"] == 0 and not result["shape_problems"]
            except Exception as e:  # report every model, then fail
                result, ok = {"model": name, "error": f"{type(e).__name__}: {e}"}, False
            failed += not ok
            if args.json:
                print(json.dumps(result), flush=True)
            elif "error" in result:
                print(f"{name:22s} FAIL {result['error']}", flush=True)
            else:
                print(
                    f"{name:22s} {'ok  ' if ok else 'FAIL'} {result['ops']:5d} ops  M_R {result['M_R']:>11,d} B  "
                    f"extra {result['extra_bytes']:>12,d} B  load {result['load_s']:5.1f} s  "
                    f"compile {result['compile_s']:6.1f} s  checkplan: {result['checkplan'][:70]}",
                    flush=True,
                )
    print(f"{len(args.names or ZOO) - failed} of {len(args.names or ZOO)} models pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
