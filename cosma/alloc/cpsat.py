"""Packing as a CP-SAT model: offsets as variables, one no-overlap constraint per time section.

Variables: ``offset_i`` for every buffer (a multiple of its alignment, pinned if given) and,
when minimising, ``height``. Size of the model: n offset variables and one disjunctive
constraint per *maximal* time section (a section whose live set is not contained in a
neighbour's), each over the buffers live there.

Constraint families:

- ``add_no_overlap_per_section``: buffers live in the same section occupy disjoint ranges.
- ``add_height``: every buffer ends at or below ``height`` (minimise mode).

The search is told to build canonical packings -- take the unplaced buffer with the lowest
possible offset (ties: MiniMalloc's WAT preorder) and try that offset first -- while CP-SAT adds
its propagation (edge finding on each section, with upper bounds as well as lower ones) and
learns from conflicts. Per-section disjunctions propagate far better here than one
``NoOverlap2D`` with fixed time intervals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from cosma.alloc.problem import NO_OFFSET, Instance

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


def maximal_sections(inst: Instance) -> list[np.ndarray]:
    """Live sets of the sections whose set is not contained in a neighbouring section's."""
    live = [np.flatnonzero(inst.cover[:, s]) for s in range(inst.sections)]
    keep = []
    for s, here in enumerate(live):
        if s > 0 and np.isin(here, live[s - 1]).all():
            continue  # nothing starts in s: contained in (or equal to) the previous section
        if s + 1 < len(live) and np.isin(here, live[s + 1]).all() and len(live[s + 1]) > len(here):
            continue  # strictly contained in the next section
        keep.append(here)
    return keep


def build_model(inst: Instance, capacity: int, minimise: bool, hint: np.ndarray | None = None) -> Model:
    model = cp_model.CpModel()
    offsets = add_offsets(model, inst, capacity)
    intervals = [model.new_fixed_size_interval_var(offsets[i], int(inst.size[i]), f"block_{i}") for i in range(inst.n)]
    add_no_overlap_per_section(model, inst, intervals)
    height = add_height(model, inst, offsets, capacity) if minimise else None
    if height is not None:
        model.minimize(height)
    rank = inst.preorder(PREORDER)
    model.add_decision_strategy([offsets[i] for i in np.argsort(rank)], cp_model.CHOOSE_LOWEST_MIN,
                                cp_model.SELECT_MIN_VALUE)
    if hint is not None:
        for var, value in zip(offsets, hint.tolist()):
            model.add_hint(var, value)
    return Model(model, offsets, height)


def add_offsets(model: cp_model.CpModel, inst: Instance, capacity: int) -> list[cp_model.IntVar]:
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


def add_no_overlap_per_section(model: cp_model.CpModel, inst: Instance, intervals: list) -> None:
    """Buffers live in the same time section occupy disjoint address ranges."""
    for live in maximal_sections(inst):
        if len(live) > 1:
            model.add_no_overlap([intervals[i] for i in live])


def add_height(model: cp_model.CpModel, inst: Instance, offsets: list, capacity: int) -> cp_model.IntVar:
    """Every buffer ends at or below ``height``; the max-load is a valid lower bound on it."""
    height = model.new_int_var(min(inst.max_load, capacity), capacity, "height")
    for i in range(inst.n):
        model.add(offsets[i] + int(inst.size[i]) <= height)
    return height


def solve_cpsat(inst: Instance, capacity: int, time_limit: float, minimise: bool = False,
                hint: np.ndarray | None = None, seed: int = 0, workers: int = 1) -> CpResult:
    """Pack ``inst`` within ``capacity`` units (lowest height if ``minimise``) in ``time_limit`` s."""
    start = time.monotonic()
    if inst.max_load > capacity or int(inst.size.max(initial=0)) > capacity:
        return CpResult(None, True, False, capacity + 1, "INFEASIBLE", 0.0)
    m = build_model(inst, capacity, minimise, hint)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, time_limit)
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
