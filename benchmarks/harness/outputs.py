"""The files of a run: ``BENCHMARKS.md``, ``benchmarks.csv`` and ``img/bench_*.png`` in the folder given."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cosma.errors import OptionError
from cosma.fileio import atomic_write_text
from cosma.viz import save_figure
from harness.plots import plot_figures
from harness.records import BenchResult, BenchRow
from harness.reference import Reference
from harness.report import render_markdown

# ---------------------------------------------------------------------------- outputs
CSV_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BenchRow))


def to_csv(rows: Iterable[BenchRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([_cell(getattr(r, c)) for c in CSV_COLUMNS])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if not math.isnan(value) else ""
    return str(value)


def write_outputs(
    result: BenchResult,
    out_dir: str | os.PathLike[str],
    *,
    reference: Reference | None = None,
    reference_path: str = "",
) -> list[Path]:
    """Write ``BENCHMARKS.md``, ``benchmarks.csv`` and ``img/bench_*.png`` under ``out_dir`` (atomically)."""
    out = Path(out_dir)
    try:
        (out / "img").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OptionError(f"cannot create {out / 'img'}: {e.strerror or e}; choose another --out") from None
    written = []
    images = []
    for label, fig in plot_figures(result).items():
        path = save_figure(fig, out / "img" / f"bench_{label.replace('-', '_')}.png")
        images.append(path.relative_to(out).as_posix())
        written.append(path)
    csv_path = out / "benchmarks.csv"
    atomic_write_text(csv_path, to_csv(result.rows))
    written.append(csv_path)
    md_path = out / "BENCHMARKS.md"
    atomic_write_text(
        md_path,
        render_markdown(
            result, images=images, csv_name=csv_path.name, reference=reference, reference_path=reference_path
        ),
    )
    written.append(md_path)
    return written
