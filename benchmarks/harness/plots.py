"""The report's figures: extra traffic against budget, one panel per model, one curve per method."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cosma.sweep import ModelRange, SweepPoint, SweepResult, sweep_figure
from harness.protocol import ELEMENT_BYTES, PLOT_MODELS, variant_label
from harness.records import BenchResult
from harness.stats import instances


def plot_figures(result: BenchResult, models: Sequence[str] = PLOT_MODELS) -> dict[str, Any]:
    """Extra traffic against budget, one panel per model and one curve per method, per weights variant.

    Draws the models of :data:`PLOT_MODELS` that the run covers (else its first four). Returns
    ``{"weights": Figure, "no-weights": Figure}`` for the variants the run has.
    """
    ran = [m.name for m in result.models]
    summaries = {s.key: s for s in instances(result.rows)}
    chosen = [m for m in models if m in ran] or ran[:4]
    methods = tuple(m for m in result.methods if m not in result.missing_methods)
    figures = {}
    for weights in result.config.weights:
        points, ranges = [], []
        for model in chosen:
            mb = next(b for b in result.budgets if b.model == model and b.weights == weights)
            if mb.budgets is None:
                continue
            rows = [r for r in result.rows if r.model == model and r.weights == weights and r.planned]
            seen = set()
            for r in sorted(
                rows, key=lambda r: (methods.index(r.method) if r.method in methods else 99, r.scratchpad_bytes)
            ):
                if (r.method, r.scratchpad_bytes) in seen:
                    continue  # coinciding budgets: one point
                seen.add((r.method, r.scratchpad_bytes))
                s = summaries[r.key]
                at_optimum = s.proven and r.extra_bytes == s.best_extra_bytes  # filled marker
                points.append(
                    SweepPoint(
                        model,
                        r.method,
                        r.scratchpad_bytes,
                        "optimal" if at_optimum else "feasible",
                        r.extra_bytes,
                        None,
                        r.compulsory_bytes,
                        r.bound,
                        None,
                        r.solve_seconds,
                        r.total_seconds,
                    )
                )
            b = mb.budgets
            ranges.append(ModelRange(model, b.m_r, b.m_p, b.m_r))
        if ranges:
            fig = sweep_figure(SweepResult(tuple(points), tuple(ranges), methods, "bench"))
            fig.suptitle(
                f"extra off-chip traffic at M_R, M_H, M_P ({variant_label(weights)}, {ELEMENT_BYTES}-byte elements)",
                fontsize=11,
            )
            figures[variant_label(weights)] = fig
    return figures
