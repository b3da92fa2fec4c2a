"""Packing as a CP-SAT model: offsets as variables, one no-overlap constraint per time section.

Variables: ``offset_i`` for every buffer (a multiple of its alignment, pinned if given) and,
when minimising, ``height``. Size of the model: n offset variables and one disjunctive
constraint per *maximal* time section (a section whose live set is not contained in a
neighbour's), each over the buffers live there.

Constraint families:

- ``add_no_overlap_per_section``: buffers live in the same section occupy disjoint ranges. With
  gaps the intervals are the buffers' pieces (``offset_i + start``, of the piece's width), so a
  window or a plain gap frees the rest of the range for others.
- ``add_height``: every buffer ends at or below ``height`` (minimise mode).

The search is told to build canonical packings -- take the unplaced buffer with the lowest
possible offset (ties: MiniMalloc's WAT preorder) and try that offset first -- while CP-SAT adds
its propagation (edge finding on each section, with upper bounds as well as lower ones) and
learns from conflicts. Per-section disjunctions propagate far better here than one
``NoOverlap2D`` with fixed time intervals.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from cosma.alloc.problem import NO_OFFSET, AllocInstance

PREORDER = "WAT"


@dataclass
class Model:
    model: cp_model.CpModel
    offsets: list[cp_model.IntVar]
    height: cp_model.IntVar | None


@dataclass
class CpResult:
    offsets: np.ndarray | None  # in units, the best packing found
    infeasible: bool  # proven: nothing fits the capacity
    optimal: bool  # proven: no lower height (minimise mode)
    bound: int  # proven lower bound on the height (units)
    status: str  # CP-SAT's status name
    seconds: float


def maximal_sections(inst: AllocInstance) -> list[np.ndarray]:
    """Live sets of pieces (buffers, without gaps) of the sections whose set is not contained in a
    neighbouring section's.

    A section's live set is contained in the previous one's unless a buffer starts there, and
    strictly contained in the next one's when no buffer ends at their border and one starts in the
    next: so the maximal sections are read off the start and end counts, and their live sets come
    from one sweep (linear in the buffers and the sets' total size, never buffers x sections)."""
    lo, hi, count = inst.plo, inst.phi, len(inst.plo)
    starts = np.bincount(lo, minlength=inst.sections + 1)
    ends = np.bincount(hi, minlength=inst.sections + 1)
    keep = np.zeros(inst.sections, dtype=bool)
    s = np.arange(inst.sections)
    keep[:] = (s == 0) | (starts[: inst.sections] > 0)
    grows = (ends[1 : inst.sections + 1] == 0) & (starts[1 : inst.sections + 1] > 0) & (s + 1 < inst.sections)
    keep &= ~grows
    by_start = np.argsort(lo, kind="stable")
    by_end = np.argsort(hi, kind="stable")
    live: set[int] = set()
    a = b = 0
    out: list[np.ndarray] = []
    for sec in np.flatnonzero(keep).tolist():
        while a < count and lo[by_start[a]] <= sec:
            live.add(int(by_start[a]))
            a += 1
        while b < count and hi[by_end[b]] <= sec:
            live.discard(int(by_end[b]))
            b += 1
        out.append(np.array(sorted(live), dtype=np.int64))
    return out


class _OutOfTime(Exception):
    """The deadline passed while the model was being built."""


def build_model(
    inst: AllocInstance, capacity: int, minimise: bool, hint: np.ndarray | None = None, deadline: float = math.inf
) -> Model:
    """The model; :class:`_OutOfTime` if ``deadline`` passes first (large instances take seconds)."""
    model = cp_model.CpModel()
    offsets = add_offsets(model, inst, capacity)
    if inst.gapped:
        own = inst.pown.tolist()
        intervals = [
            model.new_fixed_size_interval_var(offsets[i] + int(s0), int(s1 - s0), f"piece_{k}")
            for k, (i, s0, s1) in enumerate(zip(own, inst.pstart, inst.pstop))
        ]
    else:
        intervals = [
            model.new_fixed_size_interval_var(offsets[i], int(inst.size[i]), f"block_{i}") for i in range(inst.n)
        ]
    if time.monotonic() > deadline:
        raise _OutOfTime
    add_no_overlap_per_section(model, inst, intervals, deadline)
    height = add_height(model, inst, offsets, capacity) if minimise else None
    if height is not None:
        model.minimize(height)
    rank = inst.preorder(PREORDER)
    model.add_decision_strategy(
        [offsets[i] for i in np.argsort(rank)], cp_model.CHOOSE_LOWEST_MIN, cp_model.SELECT_MIN_VALUE
    )
    if hint is not None:
        for var, value in zip(offsets, hint.tolist()):
            model.add_hint(var, value)
    return Model(model, offsets, height)


def add_offsets(model: cp_model.CpModel, inst: AllocInstance, capacity: int) -> list[cp_model.IntVar]:
    """``offset_i``: a multiple of the alignment in [0, capacity - size], or the pinned value."""
    offsets = []
    for i in range(inst.n):
        top = capacity - int(inst.size[i])
        a = int(inst.align[i])
        if inst.fixed[i] != NO_OFFSET:
            values = [int(inst.fixed[i])] if inst.fixed[i] <= top else []
        elif a > 1:
            values = list(range(0, top + 1, a))
        else:
            values = None
        if values is None:
            offsets.append(model.new_int_var(0, top, f"offset_{i}"))
        else:
            offsets.append(model.new_int_var_from_domain(cp_model.Domain.from_values(values), f"offset_{i}"))
    return offsets


def add_no_overlap_per_section(
    model: cp_model.CpModel, inst: AllocInstance, intervals: list, deadline: float = math.inf
) -> None:
    """Pieces live in the same time section occupy disjoint address ranges (``intervals`` by piece)."""
    for k, live in enumerate(maximal_sections(inst)):
        if k & 63 == 0 and time.monotonic() > deadline:
            raise _OutOfTime
        if len(live) > 1:
            model.add_no_overlap([intervals[i] for i in live])


def add_height(model: cp_model.CpModel, inst: AllocInstance, offsets: list, capacity: int) -> cp_model.IntVar:
    """Every buffer ends at or below ``height``; the max-load and the largest size bound it below."""
    height = model.new_int_var(min(max(inst.max_load, int(inst.size.max(initial=0))), capacity), capacity, "height")
    for i in range(inst.n):
        model.add(offsets[i] + int(inst.size[i]) <= height)
    return height


def solve_cpsat(
    inst: AllocInstance,
    capacity: int,
    time_limit: float,
    minimise: bool = False,
    hint: np.ndarray | None = None,
    seed: int = 0,
    workers: int = 1,
) -> CpResult:
    """Pack ``inst`` within ``capacity`` units (lowest height if ``minimise``) in ``time_limit`` s."""
    start = time.monotonic()
    if inst.max_load > capacity or int(inst.size.max(initial=0)) > capacity:
        return CpResult(None, True, False, capacity + 1, "INFEASIBLE", 0.0)
    try:
        m = build_model(inst, capacity, minimise, hint, deadline=start + time_limit)
    except _OutOfTime:
        return CpResult(None, False, False, inst.max_load, "UNKNOWN", time.monotonic() - start)
    left = start + time_limit - time.monotonic()
    if left <= 0:
        return CpResult(None, False, False, inst.max_load, "UNKNOWN", time.monotonic() - start)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = left
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.solve(m.model)
    seconds = time.monotonic() - start
    name = solver.status_name(status)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        offsets = np.array([solver.value(v) for v in m.offsets], dtype=np.int64)
        height = int((offsets + inst.size).max())
        bound = int(solver.best_objective_bound) if minimise else inst.max_load
        optimal = minimise and status == cp_model.OPTIMAL
        return CpResult(offsets, False, optimal, min(bound, height), name, seconds)
    infeasible = status == cp_model.INFEASIBLE
    return CpResult(None, infeasible, False, capacity + 1 if infeasible else inst.max_load, name, seconds)
