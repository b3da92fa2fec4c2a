"""Quickstart: load a bundled model, plan it for a small scratchpad, check and save the plan.

Run it from the repository root::

    python examples/quickstart.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cosma

MODEL = Path(__file__).resolve().parent.parent / "models" / "resnet50.onnx"


def main(out_dir: Path) -> cosma.Plan:
    # Weights stay in the scratchpad budget; 1-byte elements model an int8 accelerator.
    graph = cosma.load_onnx(MODEL, element_bytes=1)
    print(
        f"{graph.name}: {len(graph.ops)} operators, M_R = {graph.min_scratchpad} B, "
        f"default-order peak = {graph.peak()} B"
    )

    # The smallest scratchpad that can run the model at all: evictions are unavoidable here.
    plan = cosma.compile(graph, graph.min_scratchpad, time_limit=10)
    s = plan.summary
    print(
        f"method {s.method}: extra traffic {s.extra_bytes} B over the compulsory {s.compulsory_bytes} B, "
        f"status {s.status}, bound {s.bound}"
    )

    path = out_dir / "resnet50.plan.json"
    plan.save(path)  # validated by replay, written atomically
    assert cosma.replay(cosma.Plan.load(path).to_dict()).extra_bytes == s.extra_bytes
    print(f"wrote {path}")
    return plan


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
