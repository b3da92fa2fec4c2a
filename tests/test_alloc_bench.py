"""The MiniMalloc-suite benchmark harness, on small stand-ins for the suite."""

from __future__ import annotations

import shutil
from pathlib import Path

from minimalloc import HEADING, markdown_section, read_rows, run_minimalloc_suite, to_csv, write_section

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "input.12.csv"


def test_suite_rows_are_checked_and_rendered(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "X.12.csv")
    shutil.copy(EXAMPLE, tmp_path / "Y.11.csv")  # one unit short of the optimum
    rows = run_minimalloc_suite(tmp_path, time_limit=10)
    assert [(r.instance, r.status, r.height, r.valid) for r in rows] == [
        ("X", "optimal", 12, True),
        ("Y", "infeasible", 12, False),
    ]
    (tmp_path / "rows.csv").write_text(to_csv(rows))
    assert read_rows(tmp_path / "rows.csv") == rows
    text = markdown_section(rows)
    assert "| X | 5 | 12 | optimal | 12 | yes |" in text and "| Y | 5 | 12 | infeasible | 12 | NO |" in text
    assert "1 of 2 packed within the capacity" in text


def test_section_is_replaced_not_doubled(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(
        "# Benchmarks\n\n## Models\n\nkeep me\n\n## Allocation on the MiniMalloc suite\n\nold\n\n"
        "## Solve times\n\nkeep me too\n"
    )
    write_section("table one", md)
    write_section("table two", md)
    text = md.read_text()
    assert text.count("## Allocation") == 1 and HEADING in text
    assert "table two" in text and "table one" not in text and "old" not in text
    assert text.count("keep me") == 2 and text.index("## Models") < text.index(HEADING) < text.index("## Solve")
