"""Peak floors of every segment, by the exact min-peak search run to a state limit, and the traffic they imply.

The min-peak search's best-first order (:func:`cosma.schedule.search.exact_search`) proves, when it stops,
that no order of the segment peaks below the smallest ``f`` still queued; that floor, plus the segment's
background, is a floor on the live bytes at some step of the segment in every order. Segments whose
default order already fits the scratchpad cannot imply traffic and are not searched.
:mod:`cosma.formulation.peak_traffic` turns the floors into extra traffic, counting whole tensors.

The search stops on ``max_states`` (deterministic), not on the clock; the clock is a safety net only.
"""

from __future__ import annotations

import time
from typing import Any

from cosma.formulation.peak_traffic import SegmentFloor, peak_traffic_bound, segments_traffic_bound
from cosma.graph import Graph
from cosma.hardware import Accelerator
from cosma.schedule import graph_lower_bound
from cosma.schedule.minpeak import ScheduleResult
from cosma.schedule.search import exact_search
from cosma.schedule.segments import segments

#: States of the exact search per segment: about 3 s on a 300-operator RandWire stage (2 shared cores).
SEGMENT_STATES = 100_000


def segment_floors(
    graph: Graph, capacity: int, *, max_states: int = SEGMENT_STATES, deadline: float | None = None
) -> list[SegmentFloor]:
    """A proven floor (background included) on the bytes live at some step of each segment, in every order."""
    deadline = time.perf_counter() + 600.0 if deadline is None else deadline
    out = []
    for seg in segments(graph):
        floor = seg.background + seg.lower_bound
        default = tuple(range(len(seg.ops)))
        upper = seg.peak(default)
        if seg.background + upper > capacity and max_states > 0:  # else no floor of it can exceed C
            found = exact_search(seg, upper, default, max_states=max_states, deadline=deadline)
            floor = max(floor, seg.background + found.bound)
        out.append(SegmentFloor(frozenset(seg.ops), floor))
    return out


def peak_traffic(
    graph: Graph,
    accelerator: Accelerator,
    schedule: ScheduleResult | None = None,
    *,
    max_states: int = SEGMENT_STATES,
) -> tuple[int, dict[str, Any]]:
    """Extra traffic (bytes) every plan pays by the peak floors: the larger of the whole-graph cover (at the
    best floor, ``schedule.bound`` included when it was found on these sizes) and the sum over segments."""
    capacity = accelerator.scratchpad_bytes
    floors = segment_floors(graph, capacity, max_states=max_states)
    best = max([graph_lower_bound(graph)] + [f.floor for f in floors])
    if schedule is not None and accelerator.alignment == 1:
        best = max(best, schedule.bound)
    whole = peak_traffic_bound(graph, capacity, best)
    split = segments_traffic_bound(graph, capacity, floors)
    return max(whole, split), {"floor": best, "whole": whole, "segments": split}
