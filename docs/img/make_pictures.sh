#!/usr/bin/env bash
# Regenerate the pictures in docs/img from zoo models (run from the repository root; a few minutes on 2 cores).
# The report screenshot needs Chromium (apt-get install chromium); without it that one picture is skipped.
set -euo pipefail
out=docs/img
plans=$(mktemp -d)
trap 'rm -rf "$plans"' EXIT

# A small plan: MobileNetV2 (64 operators) at its smallest scratchpad, M_R. The timeline shows the
# default+belady baseline, which spills and reloads (the exact plan at M_R has no extra traffic to show).
cosma compile models/mobilenet_v2.onnx --scratchpad M_R --method default+belady -o "$plans/mobilenet_v2_baseline.json"
cosma show "$plans/mobilenet_v2_baseline.json" -o "$out/mobilenet_v2_M_R.png"

# Its report, planned by the default method (the page compares it with the baselines), in headless Chromium:
# a screenshot with the tooltip of a hovered rectangle showing.
cosma compile models/mobilenet_v2.onnx --scratchpad M_R -o "$plans/mobilenet_v2.json"
cosma report "$plans/mobilenet_v2.json" -o "$plans/mobilenet_v2.html"
if command -v chromium >/dev/null; then
    python benchmarks/report_in_browser.py "$plans/mobilenet_v2.html" --height 1250 \
        --screenshot "$out/report_mobilenet_v2.png"
else
    echo "chromium not found: docs/img/report_mobilenet_v2.png left as it is" >&2
fi

# A large plan: NASNet-A (736 operators) at M_R, whole (capped at 2,400 px wide) and its first 160 operators.
cosma compile models/nasnet_a.onnx --scratchpad M_R -o "$plans/nasnet_a.json"
cosma show "$plans/nasnet_a.json" -o "$out/nasnet_a_M_R.png"
cosma show "$plans/nasnet_a.json" -o "$out/nasnet_a_M_R_ops_0-160.png" --window 0:160

# Extra traffic against scratchpad size from M_R to M_P, two baselines, three models.
cosma sweep models/resnet50.onnx models/densenet121.onnx models/nasnet_a.onnx --from M_R --to M_P --points 10 \
    --method default+belady --method minpeak+belady -o "$out/sweep.csv" --plot "$out/sweep.png" --quiet
