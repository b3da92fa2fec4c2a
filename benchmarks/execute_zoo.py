#!/usr/bin/env python3
"""Execute every zoo plan byte for byte and compare with ONNX Runtime -> docs/execution.md.

    python benchmarks/execute_zoo.py                        # the whole zoo, smallest models first
    python benchmarks/execute_zoo.py tiny_cnn mobilenet_v2  # just these
    python benchmarks/execute_zoo.py --time-limit 20        # seconds per solver compile
    nice -n 10 python benchmarks/execute_zoo.py --model-budget 600 &   # the whole table, in the background

For each model, with and without weights, at M_R and M_P: the four baselines, fixed-order and
auto (joint, or dc on large graphs) are compiled, and each plan is executed by
:func:`cosma.execute` (random weights and inputs from seed 0). The zoo is every ``models/*.onnx``
but randwire_large (3,329 nodes: its execution alone outlasts any CI budget), plus
``tiny_cnn_int8``: tiny_cnn_weights quantized here by ONNX Runtime's ``quantize_static``
(QOperator format, its four Conv as uint8 QLinearConv), the integer model whose every uint8/int32
value must match bit for bit. TFLite models are not executed (no TFLite interpreter). Each model
gets ``--model-budget`` seconds; plans it has no time left for are listed as not run. The table
is rewritten after each model, so a run stopped early leaves the models it finished.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import cosma
from cosma.budgets import resolve_budget
from cosma.execute import ATOL, RTOL, Model

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("default+belady", "default+greedy", "minpeak+belady", "minpeak+greedy", "fixed-order", "auto")
EXCLUDED = ("randwire_large",)
INT8 = "tiny_cnn_int8"


def quantized_tiny_cnn(folder: Path) -> Path:
    """tiny_cnn_weights with its Conv quantized to uint8 QLinearConv (static, 4 random calibration batches)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(4)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    out = folder / f"{INT8}.onnx"
    quantize_static(
        ROOT / "models" / "tiny_cnn_weights.onnx",
        out,
        Batches(),
        quant_format=QuantFormat.QOperator,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv"],
    )
    return out


@dataclass(frozen=True)
class Row:
    model: str
    weights: bool
    budget: str
    method: str
    scratchpad: int
    extra_bytes: int
    compile_s: float
    execute_s: float
    max_abs: float
    max_rel: float
    verdict: str
    exact: bool = False


def run_model(path: Path, time_limit: float, budget_s: float, threads: int, log: Callable[[str], None]) -> list[Row]:
    name = path.stem
    deadline = time.perf_counter() + budget_s
    model = Model.prepare(path, seed=0, threads=threads)
    rows = []
    for weights in (True, False):
        graph = cosma.load_onnx(path, weights=weights)
        for budget in ("M_R", "M_P"):
            size = resolve_budget(graph, budget, time_limit=time_limit)
            for method in METHODS:
                if time.perf_counter() > deadline:
                    skipped = f"not run ({budget_s:g} s spent)"
                    rows.append(Row(name, weights, budget, method, size, 0, 0, 0, 0, 0, skipped))
                    continue
                started = time.perf_counter()
                try:
                    plan = cosma.compile(graph, size, method=method, time_limit=time_limit)
                except cosma.CosmaError as e:
                    log(f"{name} {weights} {budget} {method}: cannot compile: {e}")
                    continue
                compiled = time.perf_counter() - started
                started = time.perf_counter()
                result = model.execute(plan.to_dict())
                executed = time.perf_counter() - started
                worst_abs = max(o.max_abs for o in result.outputs)
                worst_rel = max(o.max_rel for o in result.outputs)
                verdict = "match" if result.ok else "; ".join(result.describe()[-3:])
                exact = result.ok and worst_abs == 0
                used = plan.summary.method or method
                rows.append(
                    Row(
                        name,
                        weights,
                        budget,
                        used if method == "auto" else method,
                        size,
                        plan.summary.extra_bytes,
                        compiled,
                        executed,
                        worst_abs,
                        worst_rel,
                        verdict,
                        exact,
                    )
                )
                log(f"{name} weights={weights} {budget} {method}: {verdict} ({compiled:.1f} s + {executed:.1f} s)")
    return rows


def write_table(rows: list[Row], out: Path, command: str, models: list[str], threads: int) -> None:
    done = sorted({r.model for r in rows}, key=[r.model for r in rows].index)
    ran = [r for r in rows if not r.verdict.startswith("not run")]
    ok = sum(r.verdict == "match" for r in ran)
    exact = sum(r.exact for r in ran)
    int8 = [r for r in ran if r.model == INT8]
    lines = [
        "# Executing plans: every byte, against ONNX Runtime",
        "",
        f"Generated by `{command}`; do not edit by hand.",
        "",
        "Each plan is executed by `cosma.execute` (`cosma run`): a scratchpad of the plan's size and a DRAM,",
        "both numpy byte arrays filled with 0xFF (NaN), steps followed literally, each operator run on ONNX",
        "Runtime as a sub-model of the ONNX nodes the front end folded into it (after the front end's own",
        "folds: a BatchNormalization folded into a Conv runs as that Conv with the folded weights). Graph",
        "outputs are read from DRAM at the end and compared with ONNX Runtime running the whole (folded)",
        "model on the same random inputs and weights (seed 0), both with graph optimisations and weight",
        f"pre-packing off and {threads} intra-op thread(s), so the same kernels run on both sides.",
        "",
        f"Tolerance for float values: max abs error <= {ATOL:g} + {RTOL:g} x max|reference| (a margin: in",
        "practice float outputs are bit-exact too, column `exact`); integer and bool values must be equal.",
        "Every intermediate value is compared as well: a plan matches only if every operator read right inputs",
        "and wrote right outputs. Max rel error is max abs error / max|reference|. `auto` is recorded as the",
        f"method it ran (joint or dc). `{INT8}` is the integer model: tiny_cnn_weights quantized by ONNX",
        "Runtime's `quantize_static` (QOperator, uint8 QLinearConv); every uint8/int8/int32 value must be equal",
        "(bit-exact). TFLite models are not executed: the executor runs ONNX only (no TFLite interpreter).",
        f"Excluded: {', '.join(EXCLUDED)} (too large to execute in a table run).",
        "",
        f"**{ok} of {len(ran)} plans executed match ({exact} bit-exact)** over {len(done)} of {len(models)} models"
        f" ({', '.join(done)}); {len(rows) - len(ran)} plans not run for lack of time.",
        f"Integer model {INT8}: {sum(r.exact for r in int8)} of {len(int8)} plans bit-exact.",
        "",
        "| model | weights | budget | scratchpad B | method | extra B | compile s | execute s | max abs | max rel | "
        "exact | verdict |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {'yes' if r.weights else 'no'} | {r.budget} | {r.scratchpad} | {r.method} | "
            f"{r.extra_bytes} | {r.compile_s:.1f} | {r.execute_s:.1f} | {r.max_abs:.3g} | {r.max_rel:.3g} | "
            f"{'yes' if r.exact else 'no'} | {r.verdict} |"
        )
    out.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("models", nargs="*", help="zoo model names (default: all but randwire_large, smallest first)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per solver compile")
    parser.add_argument("--model-budget", type=float, default=600.0, help="seconds per model, compile and execute")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (both sides)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "execution.md")
    args = parser.parse_args(argv)
    zoo = sorted((ROOT / "models").glob("*.onnx"), key=lambda p: p.stat().st_size)
    command = "python benchmarks/execute_zoo.py" + "".join(f" {a}" for a in argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        paths = {p.stem: p for p in zoo if p.stem not in EXCLUDED}
        paths[INT8] = quantized_tiny_cnn(Path(folder))
        names = args.models or [INT8, *(n for n in paths if n != INT8)]
        unknown = [n for n in names if n not in paths]
        if unknown:
            print(f"no zoo model {unknown[0]!r}; choose from {', '.join(paths)}", file=sys.stderr)
            return 2
        for name in names:
            rows.extend(
                run_model(paths[name], args.time_limit, args.model_budget, args.threads, lambda s: print(s, flush=True))
            )
            write_table(rows, args.output, command, names, args.threads)
    return 0 if all(r.verdict == "match" for r in rows if not r.verdict.startswith("not run")) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
