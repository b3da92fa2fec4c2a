#!/usr/bin/env bash
# Regenerate the pictures in docs/img from zoo models (run from the repository root; about a minute on 2 cores).
set -euo pipefail
out=docs/img
plans=$(mktemp -d)
trap 'rm -rf "$plans"' EXIT

# A small plan: MobileNetV2 (64 operators) at its smallest scratchpad, M_R.
cosma compile models/mobilenet_v2.onnx --scratchpad M_R -o "$plans/mobilenet_v2.json"
cosma show "$plans/mobilenet_v2.json" -o "$out/mobilenet_v2_M_R.png"

# A large plan: NASNet-A (736 operators, 3,200 steps) at M_R, whole and its first 160 operators.
cosma compile models/nasnet_a.onnx --scratchpad M_R -o "$plans/nasnet_a.json"
cosma show "$plans/nasnet_a.json" -o "$out/nasnet_a_M_R.png"
cosma show "$plans/nasnet_a.json" -o "$out/nasnet_a_M_R_ops_0-160.png" --window 0:160

# Extra traffic against scratchpad size from M_R to M_P, two baselines, three models.
cosma sweep models/resnet50.onnx models/densenet121.onnx models/nasnet_a.onnx --from M_R --to M_P --points 10 \
    --method default+belady --method minpeak+belady -o "$out/sweep.csv" --plot "$out/sweep.png" --quiet
