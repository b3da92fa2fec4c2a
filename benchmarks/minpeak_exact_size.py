#!/usr/bin/env python3
"""Up to what size is the min-peak order proven, and how does the search scale? Default limits.

    python benchmarks/minpeak_exact_size.py                 # 20 random graphs per size
    python benchmarks/minpeak_exact_size.py --graphs 5 --sizes 10 40
    python benchmarks/minpeak_exact_size.py --cells 30 60 90   # NAS-like graphs of ~1000-3000 operators

Each graph has 1..3 inputs and ``n`` operators; operator ``i`` reads up to three tensors drawn
from everything produced before it (and the inputs), sometimes one weight of its own, and writes
one or two tensors of 0..30 bytes. Such arbitrary wiring leaves no cut points, so the whole
graph is one segment for the exact search: a worst case, far wider than real networks. For each
size it prints how many orders :func:`cosma.schedule.min_peak_order` proved minimal and the
median and largest seconds. Deterministic for a given ``--seed`` (unless the time limit strikes).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys

from cosma.graph import Graph, Operator, Tensor
from cosma.schedule import min_peak_order
from cosma.schedule.minpeak import DEFAULT_TIME_LIMIT


def random_graph(rng: random.Random, n: int) -> Graph:
    tensors = [Tensor(f"in{i}", rng.randint(1, 20), "input") for i in range(rng.randint(1, 3))]
    produced: list[str] = []
    ops = []
    for i in range(n):
        pool = [t.name for t in tensors if t.kind == "input"] + produced
        inputs = rng.sample(pool, rng.randint(0, min(3, len(pool))))
        if rng.random() < 0.3:
            tensors.append(Tensor(f"w{i}", rng.randint(1, 20), "weight"))
            inputs.append(f"w{i}")
        outputs = []
        for j in range(rng.choice([1, 1, 1, 2])):
            name = f"t{i}_{j}"
            tensors.append(Tensor(name, rng.randint(0, 30), rng.choice(["activation", "activation", "output"])))
            outputs.append(name)
            produced.append(name)
        ops.append(Operator(f"op{i}", "Op", tuple(inputs), tuple(outputs)))
    return Graph.build(f"random{n}", tensors, ops)


def nas_like(rng: random.Random, cells: int, blocks: int = 5) -> Graph:
    """Cells that read the two previous cells' outputs, each of ``blocks`` blocks adding two chains.

    No operator is a cut point (a cell's output is read two cells later), so the whole graph is
    one segment of about 33 operators per cell.
    """
    tensors = [Tensor("x", 100, "input")]
    ops: list[Operator] = []

    def add(name: str, inputs: list[str], size: int) -> str:
        tensors.append(Tensor(name, size, "activation"))
        ops.append(Operator(name, "Op", tuple(inputs), (name,)))
        return name

    prev2 = prev = "x"
    for c in range(cells):
        size = rng.choice([64, 96, 128])
        available = [add(f"c{c}_adj0", [prev2], size), add(f"c{c}_adj1", [prev], size)]
        outs = []
        for k in range(blocks):
            ends = []
            for side in range(2):
                cur = rng.choice(available)
                for d in range(rng.randint(1, 4)):
                    cur = add(f"c{c}_b{k}_{side}_{d}", [cur], rng.choice([size, size // 2, size * 4, size * 6]))
                ends.append(cur)
            outs.append(add(f"c{c}_b{k}_add", ends, size))
            available.append(outs[-1])
        prev2, prev = prev, add(f"c{c}_cat", outs, size * blocks)
    tensors.append(Tensor("y", 10, "output"))
    ops.append(Operator("head", "Gemm", (prev,), ("y",)))
    return Graph.build(f"nas_like{cells}", tensors, ops)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 30, 40, 60, 80, 120])
    parser.add_argument("--graphs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT)
    parser.add_argument("--cells", type=int, nargs="*", default=None, help="measure NAS-like graphs instead")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    if args.cells:
        for cells in args.cells:
            g = nas_like(rng, cells)
            r = min_peak_order(g, time_limit=args.time_limit)
            print(
                f"{len(g.ops):5d} operators: default peak {g.peak()}, min-peak {r.peak} ({r.method}, "
                f"{'proven' if r.proven else f'bound {r.bound}'}), {r.seconds:.2f} s",
                flush=True,
            )
        return 0
    for n in args.sizes:
        results = [min_peak_order(random_graph(rng, n), time_limit=args.time_limit) for _ in range(args.graphs)]
        seconds = [r.seconds for r in results]
        gaps = [(r.peak - r.bound) / r.peak for r in results if r.peak]
        print(
            f"{n:4d} operators: proven {sum(r.proven for r in results)}/{len(results)}, "
            f"median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s, "
            f"median gap to the bound {100 * statistics.median(gaps):.0f}%",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
