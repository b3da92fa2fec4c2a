#!/usr/bin/env python3
"""BatchNorm folding measured on corpus models that keep BatchNormalization nodes: ``python models/corpus/bn_fold.py``.

For each model, loaded with ``fold_batchnorm`` False then True (everything else default): operators,
tensors, BatchNorm nodes folded, M_R, and the loads and extra traffic of ``default+belady`` at M_R
(deterministic, so the figures are the same on every run). Prints a Markdown table for docs/frontend.md;
``--no-fuse`` loads without epilogue fusion (BatchNorm then is an operator of its own unless folded).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import onnx

import cosma
from cosma.contract import Load
from cosma.frontend import load_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODELS = (
    "onnx_light_inception_v2",
    "onnx_light_resnet50",
    "onnx_light_shufflenet",
    "onnx_light_densenet121",
    "timm_mixnet_s",
    "timm_levit_128s",
    "timm_convmixer_768_32",
    "tv_densenet121",
)
METHOD = "default+belady"


def _row(path: Path, fold: bool, fuse: bool) -> dict[str, int]:
    # inplace=False as in the corpus table (docs/frontend.md: in-place pairs wait for issue 16, part B)
    graph = load_model(path, fold_batchnorm=fold, fuse=fuse, inplace=False)
    m_r = graph.min_scratchpad
    plan = cosma.compile(graph, m_r, method=METHOD)
    return {
        "ops": len(graph.ops),
        "tensors": len(graph.tensors),
        "folded": int(graph.metadata.get("folded_batchnorm", "0")),
        "M_R": m_r,
        "loads": sum(isinstance(s, Load) for s in plan.steps),
        "extra": plan.summary.extra_bytes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(MODELS))
    parser.add_argument("--no-fuse", action="store_true", help="load with fuse=False (BatchNorm not an epilogue)")
    args = parser.parse_args(argv)
    manifest = json.loads((HERE / "manifest.json").read_text())
    print("| model | BN nodes | BN folded | operators | tensors | M_R (B) | loads at M_R | extra at M_R (B) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.names:
        path = ROOT / manifest[name]["file"]
        bn = sum(n.op_type == "BatchNormalization" for n in onnx.load(path, load_external_data=False).graph.node)
        try:
            off, on = _row(path, False, not args.no_fuse), _row(path, True, not args.no_fuse)
        except Exception as e:  # one model's failure is a row of the table, not the end of it
            print(f"| {name} | {bn} | error: {type(e).__name__} {' '.join(str(e).split())[:120]} |||||", flush=True)
            continue
        cells = [f"{off[k]:,} -> {on[k]:,}" for k in ("ops", "tensors", "M_R", "loads", "extra")]
        print(f"| {name} | {bn} | {on['folded']} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
