"""benchmarks/dc_large.py: its results file and the report section it shares with the bench."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import dc_large
from dc_large import HEADING, ScaleRow, markdown_section, merge, read_rows, to_csv, write_section


def _row(graph: str = "randwire_large", budget: str = "M_R", extra: int = 900, **kw: object) -> ScaleRow:
    values: dict[str, object] = dict(
        graph=graph,
        operators=3005,
        tensors=5207,
        budget=budget,
        scratchpad_bytes=1_283_280,
        method="dc",
        status="time-limit",
        extra_bytes=extra,
        best_baseline_bytes=1000,
        bound=None,
        time_limit=280.0,
        seconds=186.8,
        process_seconds=190.2,
        peak_mib=354.0,
        windows=27,
        verdict="/tmp/plan.json: valid: 3005 ops, 5207 tensors",
        date="2026-11-30",
        commit="abc1234",
        load="2.0-2.2",
    )
    values.update(kw)
    return ScaleRow(**values)  # type: ignore[arg-type]


def test_csv_round_trip_keeps_every_field(tmp_path: Path) -> None:
    rows = [_row(), _row(budget="M_H", bound=450, windows=None, best_baseline_bytes=None)]
    path = tmp_path / "dc_large.csv"
    path.write_text(to_csv(rows))
    assert read_rows(path) == rows


def test_merge_replaces_the_row_of_the_same_graph_and_budget() -> None:
    old = [_row(extra=900), _row(budget="M_H", extra=500)]
    new = [_row(extra=800), _row(graph="nas_like(cells=306, seed=7)", extra=100)]
    merged = merge(old, new)
    assert [(r.graph, r.budget, r.extra_bytes) for r in merged] == [
        ("randwire_large", "M_R", 800),
        ("randwire_large", "M_H", 500),
        ("nas_like(cells=306, seed=7)", "M_R", 100),
    ]


def test_section_reports_change_gap_and_verdict() -> None:
    text = markdown_section([_row(extra=600, bound=540), _row(budget="M_H", verdict="INVALID: overlap")])
    assert "| randwire_large | 3,005 | M_R | 1,283,280 | 1,000 | 600 | -40.0% | 540 | 10% |" in text
    assert "NO: INVALID: overlap" in text
    assert dataclasses.replace(_row(), extra_bytes=0).gap is None


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Before\n\nkept\n\n" + HEADING + "\n\nold table\n\n## After\n\nalso kept\n")
    write_section(markdown_section([_row()]), doc)
    write_section(markdown_section([_row(extra=700)]), doc)  # twice: never doubled
    text = doc.read_text()
    assert text.count(HEADING) == 1 and "old table" not in text
    assert "kept" in text and "also kept" in text and "| 700 |" in text
    assert text.index("## Before") < text.index(HEADING) < text.index("## After")


def test_missing_results_file_says_how_to_measure(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(dc_large, "RESULTS", tmp_path / "none.csv")
    assert "--update-docs" in markdown_section()


def test_small_synthetic_graph_end_to_end(capsys) -> None:
    """The script itself on a graph small enough for a unit test: a valid plan, never worse than the baselines."""
    assert dc_large.main(["--synthetic", "--cells", "3", "--budgets", "M_R", "--time-limit", "20"]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "INVALID" not in out
    found = re.search(r"extra (\d+) B \(best baseline (\d+)", out)
    assert found is not None and int(found[1]) <= int(found[2])
