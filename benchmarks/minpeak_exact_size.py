#!/usr/bin/env python3
"""Up to what size is the min-peak order proven? Random DAGs of growing size, default limits.

    python benchmarks/minpeak_exact_size.py                 # 20 graphs per size
    python benchmarks/minpeak_exact_size.py --graphs 5 --sizes 10 40

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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 30, 40, 60, 80, 120])
    parser.add_argument("--graphs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    for n in args.sizes:
        results = [min_peak_order(random_graph(rng, n), time_limit=args.time_limit) for _ in range(args.graphs)]
        seconds = [r.seconds for r in results]
        gaps = [(r.peak - r.bound) / r.peak for r in results if r.peak]
        print(f"{n:4d} operators: proven {sum(r.proven for r in results)}/{len(results)}, "
              f"median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s, "
              f"median gap to the bound {100 * statistics.median(gaps):.0f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
