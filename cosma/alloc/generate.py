"""Large packing instances shaped like MiniMalloc's challenging suite, for scale tests and timings.

The challenging suite's files (154-454 buffers) are cuts of a full ``capacity x horizon``
rectangle: each buffer is a rectangle of it, so a packing at the capacity exists, and a few
percent of the area is left empty. :func:`guillotine_buffers` makes instances of any size the
same way -- recursive guillotine cuts (in time or in address, alternately biased by the longer
side) of the full rectangle, then a fraction of the pieces dropped -- so their max-load, slack
and lifetimes-to-horizon ratios follow the suite's while the number of buffers grows.

    python -m cosma.alloc.generate 62185 --seed 0 -o big.csv
"""

from __future__ import annotations

import argparse
import heapq
import random
from pathlib import Path

from cosma.alloc.buffers import Buffer, format_csv

CAPACITY = 1 << 20
SIZE_QUANTUM = 1024  # the suite's sizes are multiples of 1 KiB


def guillotine_buffers(
    n: int, *, seed: int = 0, capacity: int = CAPACITY, horizon: int | None = None, drop: float = 0.05
) -> list[Buffer]:
    """About ``n`` buffers whose rectangles tile (all but ``drop`` of) ``capacity x horizon``.

    The horizon defaults to ``64 * n`` time steps, so distinct time points grow with ``n`` as in
    the suite (about 0.5-1.2 per buffer). Largest pieces are cut first, so sizes stay balanced.
    """
    rng = random.Random(seed)
    horizon = horizon or 64 * max(n, 1)
    units = capacity // SIZE_QUANTUM
    pieces: list[tuple[int, int, int, int, int]] = [(-horizon * units, 0, horizon, 0, units)]  # (-area, t0, t1, a0, a1)
    keep = max(1, round(n / (1 - drop)))
    stuck: list[tuple[int, int, int, int, int]] = []
    while pieces and len(pieces) + len(stuck) < keep:
        _, t0, t1, a0, a1 = heapq.heappop(pieces)
        long_in_time = (t1 - t0) / horizon > (a1 - a0) / units
        cut_time = rng.random() < (0.75 if long_in_time else 0.25)
        if cut_time and t1 - t0 >= 2:
            t = rng.randint(t0 + 1, t1 - 1)
            halves = [(t0, t, a0, a1), (t, t1, a0, a1)]
        elif a1 - a0 >= 2:
            a = rng.randint(a0 + 1, a1 - 1)
            halves = [(t0, t1, a0, a), (t0, t1, a, a1)]
        elif t1 - t0 >= 2:
            t = rng.randint(t0 + 1, t1 - 1)
            halves = [(t0, t, a0, a1), (t, t1, a0, a1)]
        else:
            stuck.append((0, t0, t1, a0, a1))
            continue
        for p in halves:
            heapq.heappush(pieces, (-(p[1] - p[0]) * (p[3] - p[2]), *p))
    rects = sorted(p[1:] for p in pieces + stuck)
    rng.shuffle(rects)
    rects = rects[:n]
    return [Buffer(str(i), t0, t1, (a1 - a0) * SIZE_QUANTUM) for i, (t0, t1, a0, a1) in enumerate(rects)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("buffers", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    buffers = guillotine_buffers(args.buffers, seed=args.seed)
    text = format_csv(buffers, {b.id: 0 for b in buffers})
    # the solution format's offset column would pin every buffer: write the input columns only
    args.output.write_text("\n".join(line.rsplit(",", 1)[0] for line in text.splitlines()) + "\n")


if __name__ == "__main__":
    main()
