"""The regression guard: ``solvers/reference.json``, the comparison of a run with it, and the merge.

For each instance (model, weights, budget) the reference keeps the best known extra bytes, the method that
found it, the highest proven lower bound, and each method's own best. :func:`merge_reference` folds a run
into it and never makes a value worse unless forced.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosma.errors import OptionError
from cosma.fileio import atomic_write_text
from harness.protocol import BUDGET_TIME_LIMIT, COMMAND, ELEMENT_BYTES, ERROR, MISSING, PROTOCOL_METHODS
from harness.records import BenchRow

# ------------------------------------------------------------------------- reference
REFERENCE_FORMAT = "cosma.reference/1"


@dataclass(frozen=True)
class ReferenceEntry:
    """The best known result for one instance.

    ``lower_bound`` is the highest proven lower bound on the extra bytes of any plan of the instance
    (from the methods of :data:`GLOBAL_BOUND_METHODS`; 0 when none is known);
    ``methods`` each method's own best extra bytes (the per-method regression guard).
    """

    model: str
    weights: bool
    budget: str
    scratchpad_bytes: int
    best_extra_bytes: int
    best_method: str
    lower_bound: int = 0
    bound_method: str = ""
    methods: Mapping[str, int] = field(default_factory=dict)

    @property
    def proven_optimal(self) -> bool:
        return self.lower_bound >= self.best_extra_bytes

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["methods"] = dict(sorted(self.methods.items()))
        d["proven_optimal"] = self.proven_optimal
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceEntry:
        return cls(
            d["model"],
            bool(d["weights"]),
            d["budget"],
            int(d["scratchpad_bytes"]),
            int(d["best_extra_bytes"]),
            d["best_method"],
            int(d.get("lower_bound", 0)),
            d.get("bound_method", ""),
            {k: int(v) for k, v in d.get("methods", {}).items()},
        )


@dataclass(frozen=True)
class Reference:
    """``solvers/reference.json``: a :class:`ReferenceEntry` per instance key, plus the protocol it holds for."""

    entries: Mapping[str, ReferenceEntry] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "format": REFERENCE_FORMAT,
            "protocol": {
                "element_bytes": ELEMENT_BYTES,
                "alignment": 1,
                "allocator": "first-fit",
                "budget_time_limit": BUDGET_TIME_LIMIT,
            },
            "instances": {k: self.entries[k].to_dict() for k in sorted(self.entries)},
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Reference:
        """The reference at ``path``; an empty one when the file does not exist."""
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            if data.get("format") != REFERENCE_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {REFERENCE_FORMAT!r}")
            return cls({k: ReferenceEntry.from_dict(v) for k, v in data["instances"].items()})
        except (ValueError, KeyError, TypeError) as e:
            raise OptionError(f"cannot read the reference {path}: {e}; restore it from git") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(Path(path), self.to_json())


@dataclass(frozen=True)
class Violation:
    """One way a run is worse than (or inconsistent with) the reference."""

    key: str
    method: str
    kind: str  # invalid | error | budget-changed | worse | below-bound | bound-above-plan | false-optimal
    message: str

    def __str__(self) -> str:
        return f"{self.key} {self.method}: {self.kind}: {self.message}"


def compare_to_reference(rows: Iterable[BenchRow], reference: Reference) -> list[Violation]:
    """Everything in ``rows`` that the reference says is a regression or an inconsistency.

    Per run: the plan must be valid and the run must not fail; the instance's budget must still
    be the reference's size; the extra bytes must not exceed the method's reference value (where
    the reference proves optimality the method that found the optimum must therefore match it
    exactly) nor fall below the reference's proven lower bound; a bound valid for the instance must
    not exceed the best known plan, and a run with such a bound may call itself optimal only at the
    best known value (a fixed-order run is optimal for its order only: it is not held to either). Missing methods
    and instances the reference does not hold are not violations (:func:`uncovered` lists them).
    """
    out = []
    for r in rows:
        if r.status == MISSING:
            continue
        if r.status == ERROR:
            out.append(Violation(r.key, r.method, "error", r.message))
            continue
        if r.valid is not True:
            out.append(Violation(r.key, r.method, "invalid", r.message or "the plan failed the replay"))
            continue
        ref = reference.entries.get(r.key)
        if ref is None or r.extra_bytes is None:
            continue
        if ref.scratchpad_bytes != r.scratchpad_bytes:
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "budget-changed",
                    f"{r.budget} is now {r.scratchpad_bytes} B, the reference has "
                    f"{ref.scratchpad_bytes} B; if intended, refresh with "
                    f"{COMMAND} --update-reference --force",
                )
            )
            continue
        limit = ref.methods.get(r.method)
        if limit is not None and r.extra_bytes > limit:
            stopped = r.status in ("time-limit", "feasible")  # unproven: the machine's load may be the cause
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "worse",
                    f"extra {r.extra_bytes} B > reference {limit} B for this method"
                    + (" (proven optimal)" if ref.proven_optimal and limit == ref.best_extra_bytes else "")
                    + ("; this run stopped at its time limit" if stopped else ""),
                )
            )
        if r.extra_bytes < ref.lower_bound:
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "below-bound",
                    f"extra {r.extra_bytes} B < proven lower bound {ref.lower_bound} B "
                    f"({ref.bound_method}): the bound or the plan's cost is wrong",
                )
            )
        bound = r.instance_bound
        if bound is not None and bound > ref.best_extra_bytes:
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "bound-above-plan",
                    f"bound {bound} B > best known plan {ref.best_extra_bytes} B "
                    f"({ref.best_method}): the bound is wrong",
                )
            )
        if bound is not None and r.status == "optimal" and r.extra_bytes > ref.best_extra_bytes:
            out.append(
                Violation(
                    r.key,
                    r.method,
                    "false-optimal",
                    f"claims optimal at {r.extra_bytes} B, {ref.best_method} found {ref.best_extra_bytes} B",
                )
            )
    return out


def uncovered(rows: Iterable[BenchRow], reference: Reference) -> list[tuple[str, str]]:
    """``(instance, method)`` of planned rows the reference has no value for."""
    return [
        (r.key, r.method)
        for r in rows
        if r.planned and (r.key not in reference.entries or r.method not in reference.entries[r.key].methods)
    ]


@dataclass(frozen=True)
class Merge:
    reference: Reference
    changes: tuple[str, ...]
    refused: tuple[str, ...]  # what --force would have changed


def merge_reference(reference: Reference, rows: Iterable[BenchRow], *, force: bool = False) -> Merge:
    """Fold a run into the reference.

    Without ``force``: best and per-method values only go down, lower bounds only go up, and a
    change of an instance's budget size, or a bound above a known plan, is refused (listed). With
    ``force``: the run's values replace the reference's for every instance and method it covers.
    """
    entries = dict(reference.entries)
    changes: list[str] = []
    refused: list[str] = []
    planned = [r for r in rows if r.planned]
    for key in dict.fromkeys(r.key for r in planned):
        mine = [r for r in planned if r.key == key]
        r0 = mine[0]
        old = entries.get(key)
        if old is not None and old.scratchpad_bytes != r0.scratchpad_bytes:
            if not force:
                refused.append(f"{key}: budget {old.scratchpad_bytes} B -> {r0.scratchpad_bytes} B")
                continue
            changes.append(f"{key}: budget {old.scratchpad_bytes} B -> {r0.scratchpad_bytes} B (entry replaced)")
            old = None
        methods = dict(old.methods) if old is not None else {}
        for r in mine:
            assert r.extra_bytes is not None
            before = methods.get(r.method)
            if before is None or r.extra_bytes < before or (force and r.extra_bytes != before):
                methods[r.method] = r.extra_bytes
            elif r.extra_bytes > before:
                refused.append(f"{key} {r.method}: {before} B -> {r.extra_bytes} B")
        best_row = min(
            mine,
            key=lambda r: (
                r.extra_bytes,
                PROTOCOL_METHODS.index(r.method) if r.method in PROTOCOL_METHODS else len(PROTOCOL_METHODS),
            ),
        )
        assert best_row.extra_bytes is not None
        if old is None or force or best_row.extra_bytes < old.best_extra_bytes:
            best, best_method = best_row.extra_bytes, best_row.method
        else:
            best, best_method = old.best_extra_bytes, old.best_method
        if force:
            best, best_method = min((v, m) for m, v in methods.items())
        lb, lb_method = (0, "") if old is None or force else (old.lower_bound, old.bound_method)
        for r in mine:
            bound = r.instance_bound
            if bound is None:
                continue
            if bound > best:
                refused.append(f"{key} {r.method}: bound {bound} B above the best known plan {best} B")
            elif bound > lb:
                lb, lb_method = bound, r.method
        new = ReferenceEntry(
            r0.model, r0.weights, r0.budget, r0.scratchpad_bytes, best, best_method, lb, lb_method, methods
        )
        if new != old:
            changes.append(_describe_change(key, old, new))
            entries[key] = new
    return Merge(Reference(entries), tuple(changes), tuple(refused))


def _describe_change(key: str, old: ReferenceEntry | None, new: ReferenceEntry) -> str:
    if old is None:
        return f"{key}: new, best {new.best_extra_bytes} B ({new.best_method}), bound {new.lower_bound} B"
    parts = []
    if new.best_extra_bytes != old.best_extra_bytes:
        parts.append(f"best {old.best_extra_bytes} -> {new.best_extra_bytes} B ({new.best_method})")
    if new.lower_bound != old.lower_bound:
        parts.append(f"bound {old.lower_bound} -> {new.lower_bound} B ({new.bound_method})")
    for m in sorted(set(new.methods) | set(old.methods)):
        if new.methods.get(m) != old.methods.get(m):
            parts.append(f"{m} {old.methods.get(m)} -> {new.methods.get(m)} B")
    return f"{key}: " + ", ".join(parts or ["method of the best changed"])
