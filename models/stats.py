#!/usr/bin/env python3
"""Statistics of the model zoo, as cosma sees it, written into the table of ``models/README.md``.

    python models/stats.py            # recompute and rewrite the table between the README's markers
    python models/stats.py --print    # print the table only
    python models/stats.py --check    # exit 1 when the README's table differs from a fresh one

Every number comes from :func:`cosma.load_onnx` with its defaults (weights kept, epilogues
fused, element sizes of the file: float32): operators and tensors after the front end,
weight bytes, activation bytes (activations and outputs), ``M_R`` (the largest working set,
the smallest scratchpad that can run the graph) and the peak of the default (ONNX) order
with no eviction, for the graph with its weights and for the activation-only graph
(``weights=False``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo import ZOO, ZooEntry, entries, models_dir

import cosma

START = "<!-- zoo-table:start (python models/stats.py) -->"
END = "<!-- zoo-table:end -->"


@dataclass(frozen=True)
class Row:
    entry: ZooEntry
    file_bytes: int
    ops: int
    tensors: int
    weight_bytes: int
    activation_bytes: int
    m_r: int
    peak: int
    m_r_activations: int
    peak_activations: int


def measure(entry: ZooEntry) -> Row:
    graph = cosma.load_onnx(entry.path)
    bare = graph.without_weights()
    return Row(
        entry,
        entry.path.stat().st_size,
        len(graph.ops),
        len(graph.tensors),
        graph.bytes_of_kind("weight"),
        graph.bytes_of_kind("activation", "output"),
        graph.min_scratchpad,
        graph.peak(),
        bare.min_scratchpad,
        bare.peak(),
    )


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.2f}"


def _shape(entry: ZooEntry) -> str:
    return ", ".join(
        "x".join(map(str, i.shape)) + ("" if i.dtype == "float32" else f" {i.dtype}") for i in entry.inputs
    )


def table(rows: list[Row]) -> str:
    head = (
        "| model | group | source | input | file kB | ops | tensors | weights MiB | activations MiB "
        "| M_R MiB | peak MiB | M_R MiB (act. only) | peak MiB (act. only) |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        e = r.entry
        lines.append(
            f"| {e.display} (`{e.file}`) | {e.group} | {e.source} | {_shape(e)} | {r.file_bytes / 1e3:.0f} "
            f"| {r.ops} | {r.tensors} | {_mib(r.weight_bytes)} | {_mib(r.activation_bytes)} | {_mib(r.m_r)} "
            f"| {_mib(r.peak)} | {_mib(r.m_r_activations)} | {_mib(r.peak_activations)} |"
        )
    return "\n".join(lines)


def fresh_table() -> str:
    present = [e for e in (*entries(), ZOO["tiny_cnn"]) if e.path.exists()]
    return table([measure(e) for e in present])


def replaced(readme: str, new_table: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"models/README.md lacks the markers {START!r} and {END!r}")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{new_table}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--print", action="store_true", help="print the table, leave the README alone")
    mode.add_argument("--check", action="store_true", help="exit 1 when the README's table is stale")
    args = parser.parse_args(argv)
    new_table = fresh_table()
    if args.print:
        print(new_table)
        return 0
    readme_path = models_dir() / "README.md"
    readme = readme_path.read_text()
    updated = replaced(readme, new_table)
    if args.check:
        if updated != readme:
            print("models/README.md: the statistics table is stale; run python models/stats.py", file=sys.stderr)
            return 1
        return 0
    readme_path.write_text(updated)
    print(new_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
