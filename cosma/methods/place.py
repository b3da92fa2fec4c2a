"""Addresses for a residency's segments with the offline allocation engine (:func:`cosma.alloc.solve`).

The allocation half of the two-phase path: once a capacity-only relaxation has chosen which
tensors are resident when, placing the segments is dynamic storage allocation over fixed
lifetimes. A segment resident during the runs ``first .. last`` becomes a buffer live during
``[first, last + 1)``: between runs ``s`` and ``s + 1`` the frees of segments ending at ``s`` come
before the loads (and productions) of segments beginning at ``s + 1``
(:mod:`cosma.formulation.residency`), so those two may share addresses.

A buffer is the tensor's exact bytes aligned to the instance's address ``unit`` within the
scratchpad's exact bytes. That is the instance's model exactly: at offsets that are multiples of
``unit``, ``bytes`` and the ``footprint * unit`` bytes the model reserves overlap the same
neighbours (``footprint * unit`` is the least multiple of ``unit`` not below ``bytes``), and
``offset + bytes <= scratchpad`` is the model's ``offset <= top``. So a packing is valid and a
proof that none fits holds for the residency.

An in-place stay (``Stay.over``) and the stay of the input it is written over are one buffer: they
share the address, and the input's bytes become the output's at the step where both are resident.
"""

from __future__ import annotations

import time
from dataclasses import replace

from cosma.alloc import Buffer, solve
from cosma.backends.base import SolveResult, SolverParams
from cosma.formulation.instance import Instance
from cosma.formulation.residency import Residency


def groups_of(residency: Residency) -> list[list[int]]:
    """Segment indices sharing one address: a stay written in place over its input (``Stay.over``) joins
    the input's stay ending where it begins; every other stay is a group of its own."""
    ending = {(seg.tensor, seg.last): i for i, seg in enumerate(residency.segments)}
    parent = list(range(len(residency.segments)))
    taken: set[int] = set()
    for i, seg in enumerate(residency.segments):
        j = ending.get((seg.over, seg.first)) if seg.created and seg.over is not None else None
        if j is not None and j not in taken:
            taken.add(j)
            parent[i] = j
    groups: dict[int, list[int]] = {}
    for i in range(len(parent)):
        root = i
        while parent[root] != root:
            root = parent[root]
        groups.setdefault(root, []).append(i)
    return list(groups.values())


def buffers_of(instance: Instance, residency: Residency) -> list[Buffer]:
    """One buffer per group of segments (:func:`groups_of`), in bytes, named by its first segment's index
    in ``residency.segments`` (an in-place pair has equal bytes, so a group has one size)."""
    segs = residency.segments
    return [
        Buffer(
            str(group[0]),
            min(segs[i].first for i in group),
            max(segs[i].last for i in group) + 1,
            instance.graph.size(segs[group[0]].tensor),
            alignment=instance.unit,
        )
        for group in groups_of(residency)
    ]


def place(instance: Instance, residency: Residency, params: SolverParams) -> SolveResult:
    """Place ``residency``'s segments within the scratchpad: ``feasible`` with the placed residency,
    ``infeasible`` when proven that none fits, else ``unknown`` (out of time, no residency)."""
    start = time.monotonic()
    packing = solve(
        buffers_of(instance, residency),
        capacity=instance.accelerator.scratchpad_bytes,
        time_limit=params.time_limit,
        seed=params.seed,
    )
    details = {"engine": "dsa", "method": packing.method, "nodes": packing.nodes}
    if packing.status == "infeasible":
        return SolveResult("infeasible", None, None, time.monotonic() - start, details=details)
    if not packing.fits:
        return SolveResult("unknown", None, None, time.monotonic() - start, details=details)
    offset = {i: packing.offsets[str(group[0])] for group in groups_of(residency) for i in group}
    segs = tuple(replace(seg, offset=offset[i]) for i, seg in enumerate(residency.segments))
    return SolveResult(
        "feasible", None, None, time.monotonic() - start, Residency(residency.order, segs), details=details
    )


def place_segments(instance: Instance, residency: Residency, time_limit: float, seed: int = 0) -> Residency | None:
    """``residency`` with byte offsets that fit, or None when none was found (infeasible or out of time)."""
    return place(instance, residency, SolverParams(time_limit=time_limit, seed=seed)).residency
