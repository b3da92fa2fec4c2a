"""The figures of a run: the headline reductions, per-instance summaries, solve times, and divide and conquer."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.protocol import BASELINES, COSMA_METHODS, GROUP_METHODS, HEADLINE_GROUPS, MISSING, WEIGHT_VARIANTS
from harness.records import BenchResult, BenchRow


# ------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class Reduction:
    """The headline figure for one group and weights variant at one budget."""

    group: str
    weights: bool
    budget: str
    per_model: tuple[tuple[str, int, int, float], ...]  # (model, best baseline, best COSMA, reduction)
    excluded: tuple[str, ...]  # models without both a baseline and a COSMA plan
    zero_baseline: int  # models whose best baseline already has no extra traffic (reduction 0 by definition)

    @property
    def average(self) -> float | None:
        """Mean over the models, a model whose best baseline has no extra traffic counting as 0."""
        return statistics.fmean(r for *_, r in self.per_model) if self.per_model else None

    @property
    def with_traffic(self) -> tuple[tuple[str, int, int, float], ...]:
        """The models whose best baseline has extra traffic to reduce."""
        return tuple(p for p in self.per_model if p[1] > 0)

    @property
    def average_with_traffic(self) -> float | None:
        """Mean over :attr:`with_traffic` only (None when no model has traffic to reduce)."""
        return statistics.fmean(r for *_, r in self.with_traffic) if self.with_traffic else None


def reduction(best_baseline: int, best_cosma: int) -> float:
    """``1 - best_cosma / best_baseline``; 0 when the baseline has no extra traffic to reduce.

    >>> reduction(100, 16), reduction(0, 0)
    (0.84, 0.0)
    """
    return 0.0 if best_baseline == 0 else 1.0 - best_cosma / best_baseline


def reductions(
    rows: Sequence[BenchRow], budget: str = "M_R", groups: Sequence[str] = HEADLINE_GROUPS
) -> list[Reduction]:
    """Per group and weights variant: the reduction of the best COSMA plan against the best baseline."""
    out = []
    variants = [w for w in WEIGHT_VARIANTS if any(r.weights == w for r in rows)]
    for group in groups:
        for weights in variants:
            chosen = [r for r in rows if r.group == group and r.weights == weights and r.budget == budget]
            per_model, excluded, zero = [], [], 0
            for model in dict.fromkeys(r.model for r in chosen):
                base = _best(r for r in chosen if r.model == model and r.method not in COSMA_METHODS)
                cosma = _best(r for r in chosen if r.model == model and r.method in COSMA_METHODS)
                if base is None or cosma is None:
                    excluded.append(model)
                    continue
                zero += base == 0
                per_model.append((model, base, cosma, reduction(base, cosma)))
            if per_model or excluded:
                out.append(Reduction(group, weights, budget, tuple(per_model), tuple(excluded), zero))
    return out


def _best(rows: Iterable[BenchRow]) -> int | None:
    extras = [r.extra_bytes for r in rows if r.planned]
    return min(extras) if extras else None  # type: ignore[type-var]


@dataclass(frozen=True)
class InstanceSummary:
    """Across the methods of one run: the best plan, the best bound valid for the instance, whether they meet.

    A plan without extra traffic is optimal by itself.
    """

    key: str
    model: str
    weights: bool
    budget: str
    scratchpad_bytes: int
    best_extra_bytes: int | None
    best_method: str
    bound: int | None
    bound_method: str

    @property
    def proven(self) -> bool:
        if self.best_extra_bytes is None:
            return False
        return self.best_extra_bytes == 0 or (self.bound is not None and self.bound >= self.best_extra_bytes)


def instances(rows: Sequence[BenchRow]) -> list[InstanceSummary]:
    """One summary per instance, in row order."""
    out = []
    for key in dict.fromkeys(r.key for r in rows):
        group = [r for r in rows if r.key == key]
        planned = [r for r in group if r.planned]
        best = min(planned, key=lambda r: r.extra_bytes, default=None)  # type: ignore[arg-type,return-value]
        bounded = [r for r in planned if r.instance_bound is not None]
        top = max(bounded, key=lambda r: r.instance_bound, default=None)  # type: ignore[arg-type,return-value]
        r0 = group[0]
        out.append(
            InstanceSummary(
                key,
                r0.model,
                r0.weights,
                r0.budget,
                r0.scratchpad_bytes,
                None if best is None else best.extra_bytes,
                "" if best is None else best.method,
                None if top is None else top.instance_bound,
                "" if top is None else top.method,
            )
        )
    return out


def time_stats(rows: Sequence[BenchRow], method: str) -> tuple[int, float, float, float, float] | None:
    """``(runs, median solve s, max solve s, median total s, max total s)`` of a method's planned runs."""
    done = [r for r in rows if r.method == method and r.valid is not None]
    if not done:
        return None
    solve = [r.solve_seconds for r in done]
    total = [r.total_seconds for r in done]
    return len(done), statistics.median(solve), max(solve), statistics.median(total), max(total)


DC_HEADING = "## Divide and conquer on NAS-generated and randomly wired graphs"
#: The groups of the divide-and-conquer section: those the protocol runs ``dc`` on by name.
DC_GROUPS: tuple[str, ...] = tuple(g for g, methods in GROUP_METHODS.items() if "dc" in methods)


def change(baseline: int, extra: int) -> float | None:
    """``extra / baseline - 1`` (-0.85: 85% less traffic); None when the baseline has no traffic to reduce.

    >>> change(100, 15), change(0, 0)
    (-0.85, None)
    """
    return None if baseline == 0 else extra / baseline - 1.0


@dataclass(frozen=True)
class DcInstance:
    """One instance of the divide-and-conquer section: ``dc``'s run and the baselines' extra bytes."""

    run: BenchRow
    ops: int
    baselines: Mapping[str, int | None]  # extra bytes of each baseline's valid plan (None: no valid plan)

    @property
    def best_baseline(self) -> int | None:
        extras = [x for x in self.baselines.values() if x is not None]
        return min(extras) if extras else None

    def change_to(self, baseline: int | None) -> float | None:
        """dc's change against ``baseline`` extra bytes (None: no plan on either side, or nothing to reduce)."""
        if baseline is None or not self.run.planned:
            return None
        assert self.run.extra_bytes is not None
        return change(baseline, self.run.extra_bytes)

    @property
    def mean_change(self) -> float | None:
        """Mean change against the baselines with traffic (None when none has any)."""
        changes = [c for c in (self.change_to(x) for x in self.baselines.values()) if c is not None]
        return statistics.fmean(changes) if changes else None

    @property
    def gap(self) -> float | None:
        """``1 - bound / extra``; None without a bound or when dc's plan has no extra traffic."""
        r = self.run
        if not r.planned or r.bound is None or not r.extra_bytes:
            return None
        return 1.0 - r.bound / r.extra_bytes


def dc_instances(result: BenchResult) -> list[DcInstance]:
    """The ``dc`` runs on models of :data:`DC_GROUPS`, in row order, each with the baselines of its instance."""
    ops = {(b.model, b.weights): b.ops for b in result.budgets}
    out = []
    for r in result.rows:
        if r.method != "dc" or r.group not in DC_GROUPS or r.status == MISSING:
            continue
        mine = {x.method: x for x in result.rows if x.key == r.key}
        baselines = {b: mine[b].extra_bytes if b in mine and mine[b].planned else None for b in BASELINES}
        out.append(DcInstance(r, ops.get((r.model, r.weights), 0), baselines))
    return out


@dataclass(frozen=True)
class DcSummary:
    """The divide-and-conquer section's summary line."""

    runs: int
    valid: int
    longest_seconds: float
    #: baseline -> (mean change of dc against it, instances where it has traffic), and "best" for the best
    #: baseline of each instance; the mean is None where no instance has traffic.
    changes: Mapping[str, tuple[float | None, int]]


def dc_summary(found: Sequence[DcInstance]) -> DcSummary:
    changes: dict[str, tuple[float | None, int]] = {}
    for name in (*BASELINES, "best"):
        values = [
            c for i in found if (c := i.change_to(i.best_baseline if name == "best" else i.baselines[name])) is not None
        ]
        changes[name] = (statistics.fmean(values) if values else None, len(values))
    return DcSummary(
        len(found),
        sum(i.run.valid is True for i in found),
        max((i.run.total_seconds for i in found), default=0.0),
        changes,
    )
