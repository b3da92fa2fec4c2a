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
"""

from __future__ import annotations

import time

from cosma.alloc import Buffer, solve
from cosma.backends.base import SolveResult, SolverParams
from cosma.formulation.instance import Instance
from cosma.formulation.residency import Residency, Stay


def buffers_of(instance: Instance, residency: Residency) -> list[Buffer]:
    """One buffer per segment, in bytes, named by its index in ``residency.segments``."""
    return [
        Buffer(str(i), seg.first, seg.last + 1, instance.graph.size(seg.tensor), alignment=instance.unit)
        for i, seg in enumerate(residency.segments)
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
    segs = tuple(
        Stay(seg.tensor, seg.first, seg.last, packing.offsets[str(i)], seg.created)
        for i, seg in enumerate(residency.segments)
    )
    return SolveResult(
        "feasible", None, None, time.monotonic() - start, Residency(residency.order, segs), details=details
    )


def place_segments(instance: Instance, residency: Residency, time_limit: float, seed: int = 0) -> Residency | None:
    """``residency`` with byte offsets that fit, or None when none was found (infeasible or out of time)."""
    return place(instance, residency, SolverParams(time_limit=time_limit, seed=seed)).residency
