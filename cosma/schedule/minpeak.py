"""Operator orders: the default (ONNX) order and a minimum-peak order (COSMA's MPMF mode).

:func:`min_peak_order` minimises :meth:`Graph.peak <cosma.graph.Graph.peak>`, the scratchpad an
order needs when nothing is ever evicted:

1. cut the graph at its cut points (:mod:`cosma.schedule.segments`); the minimum peak is the
   largest over segments of ``background + the segment's own minimum``, exactly;
2. give every segment an incumbent: the better of its default order and a beam search;
3. in decreasing order of their contribution, run the exact best-first search
   (:func:`~cosma.schedule.search.exact_search`) on the segments that can still lower the peak,
   each under a state limit and all under one budget of work (:class:`~cosma.schedule.search.Work`);
4. keep the best order found; it is never worse than the default order (step 2 compares the
   two segment by segment, and the peak separates over segments).

The result states whether every search that mattered finished (``method == "exact"``) and
whether the peak is proven minimal (it equals ``bound``, a proven lower bound). Graphs whose
segments have a few dozen operators, or are narrow, finish exactly; wide segments of hundreds
of operators get the beam's order and a lower bound.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> t = [Tensor("x", 1, "input"), Tensor("y", 1, "output")]
    >>> t += [Tensor(n, 1, "activation") for n in "abcd"] + [Tensor(n, 10, "activation") for n in "pq"]
    >>> ops = [Operator("s", "Split", ("x",), ("a", "b")),
    ...        Operator("a1", "Conv", ("a",), ("p",)), Operator("b1", "Conv", ("b",), ("q",)),
    ...        Operator("a2", "Conv", ("p",), ("c",)), Operator("b2", "Conv", ("q",), ("d",)),
    ...        Operator("j", "Add", ("c", "d"), ("y",))]
    >>> g = Graph.build("two_branches", t, ops)
    >>> g.peak()  # the default order holds both 10-byte tensors at once
    21
    >>> r = min_peak_order(g)
    >>> r.order, r.peak, r.proven
    (('s', 'a1', 'a2', 'b1', 'b2', 'j'), 12, True)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cosma.graph import Graph
from cosma.schedule.local import improve
from cosma.schedule.search import SearchResult, beam_search, exact_search
from cosma.schedule.segments import Segment, segments

#: Default limits: generous for graphs of a few hundred operators, bounded for thousands. 20 s of work
#: (20 M units, 0-2.8 s on an idle machine here) rather than 10: with 10 M units RandWire-BA without
#: weights stops at a peak of 1,589,952 B instead of 1,467,648 B; at 20 M and at 30 M units every zoo
#: model's minimum-peak order has the peak it had when the searches ran on the clock.
DEFAULT_TIME_LIMIT = 20.0
DEFAULT_MAX_STATES = 200_000
DEFAULT_BEAM_WIDTH = 8
DEFAULT_WINDOW_WIDTH = 32
DEFAULT_WINDOW_STATES = 20_000
#: Work units (:class:`~cosma.schedule.search.Work`) the whole call may spend per second of its time limit.
#: The searches stop on this count, not on the clock, so an order depends on the time limit but not on the
#: machine's speed or load. A unit costs 270-470 ns here whatever the segment's width (a state of a
#: 1,000-operator RandWire segment costs ten times one of a narrow segment, and is charged so), so the
#: budget takes about a third of the time limit on an idle machine and the clock, a safety net, should
#: not strike first even with both cores busy with other work.
WORK_PER_SECOND = 1_000_000
#: Share of the work budget the incumbents and exact searches may use; the rest is the windows'.
EXACT_SHARE = 0.75

ORDERS: tuple[str, ...] = ("default", "minpeak")


@dataclass(frozen=True)
class ScheduleResult:
    """An operator order and its peak (bytes resident with no eviction).

    ``method`` is ``"default"`` (the ONNX order, as given), ``"exact"`` (every search that could
    lower the peak finished) or ``"heuristic"`` (some search stopped at its limit).
    ``bound`` is a proven lower bound on the minimum peak; ``proven`` is ``peak == bound``.
    """

    order: tuple[str, ...]
    peak: int
    proven: bool
    method: str
    seconds: float
    bound: int
    details: Mapping[str, Any] = field(default_factory=dict)


def graph_lower_bound(graph: Graph) -> int:
    """A peak no order goes below: the largest step floor over the graph's segments."""
    return max((s.background + s.lower_bound for s in segments(graph)), default=0)


def default_schedule(graph: Graph) -> ScheduleResult:
    """The ONNX node order, as the exporting framework emitted it."""
    started = time.perf_counter()
    peak = graph.peak()
    bound = min(peak, graph.min_scratchpad)
    return ScheduleResult(graph.default_order, peak, peak == bound, "default", time.perf_counter() - started, bound)


@dataclass
class _SegmentState:
    seg: Segment
    order: tuple[int, ...]
    peak: int
    bound: int
    source: str  # which search gave the order: default, beam or exact
    complete: bool  # the exact search ran to the end (or was not needed)
    states: int = 0
    work: int = 0

    @property
    def total(self) -> int:
        return self.seg.background + self.peak

    @property
    def total_bound(self) -> int:
        return self.seg.background + self.bound


def min_peak_order(
    graph: Graph,
    *,
    time_limit: float = DEFAULT_TIME_LIMIT,
    max_states: int = DEFAULT_MAX_STATES,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    window_width: int = DEFAULT_WINDOW_WIDTH,
    window_states: int = DEFAULT_WINDOW_STATES,
    total_work: int | None = None,
) -> ScheduleResult:
    """An order of ``graph`` minimising the peak with no eviction; see the module docstring.

    ``total_work`` caps the work units all searches spend together (default
    ``WORK_PER_SECOND * time_limit``; a search stops generating states once it is spent, so it is
    exceeded by at most one state's work), ``max_states`` the states of each segment's exact search
    and ``window_states`` those of each window's: these limits make the result deterministic.
    ``time_limit`` also caps the call in seconds, as a safety net: should the clock strike first,
    the result depends on the machine's speed (``details["time_limit_hit"]`` says so).
    """
    started = time.perf_counter()
    deadline = started + time_limit
    budget = int(WORK_PER_SECOND * time_limit) if total_work is None else total_work
    states: list[_SegmentState] = []
    for seg in segments(graph):
        states.append(_incumbent(seg, beam_width, deadline, max(0, budget - sum(st.work for st in states))))
    spent = sum(st.work for st in states)
    generated = sum(st.states for st in states)
    floor = max((s.total_bound for s in states), default=0)
    for st in sorted(states, key=lambda s: -s.total):
        if st.total <= floor or st.complete:
            continue  # lowering this segment cannot lower the peak below what is proven
        if time.perf_counter() > deadline or spent >= budget:
            break
        # the exact searches leave a share of the budget to the window improvement below: on wide segments they
        # rarely finish, while windows around the peak step often lower it (RandWire-WS without weights)
        exact_budget = int(EXACT_SHARE * budget)
        if spent >= exact_budget:
            break
        result = exact_search(
            st.seg, st.peak, st.order, max_states=max_states, max_work=exact_budget - spent, deadline=deadline
        )
        spent += result.work
        generated += result.states
        _improve(st, result)
        floor = max(floor, st.total_bound)

    order = tuple(st.seg.ops[i] for st in states for i in st.order)
    peak = graph.peak(order)
    expected = max((st.total for st in states), default=0)
    if peak != expected:  # the decomposition is exact: a mismatch is a bug, not a heuristic's miss
        raise AssertionError(f"segment peaks give {expected} B but the order's peak is {peak} B")
    floor = max(floor, max((st.total_bound for st in states), default=0))
    local = None
    if peak > floor and time.perf_counter() < deadline and spent < budget:
        local = improve(
            graph,
            order,
            floor=floor,
            width=window_width,
            max_states=window_states,
            deadline=deadline,
            total_work=budget - spent,
        )
        order, peak = local.order, local.peak
        spent += local.work
        generated += local.states
    default_peak = graph.peak()
    if default_peak < peak:  # cannot happen (segments start from their default order); kept as a guarantee
        order, peak = graph.default_order, default_peak
    bound = min(peak, floor)
    exact = all(st.complete or st.total <= bound for st in states)
    sources = [st.source for st in states]
    details = {
        "segments": len(states),
        "largest_segment": max((len(st.seg.ops) for st in states), default=0),
        "states": generated,
        "work": spent,
        "work_budget": budget,
        "default_peak": default_peak,
        "orders_from": {s: sources.count(s) for s in ("default", "beam", "exact") if s in sources},
        "windows": local.windows if local else 0,
        "window_improvements": local.improvements if local else 0,
        "time_limit_hit": time.perf_counter() > deadline,
    }
    return ScheduleResult(
        order=order,
        peak=peak,
        proven=peak == bound,
        method="exact" if exact else "heuristic",
        seconds=time.perf_counter() - started,
        bound=bound,
        details=details,
    )


def _incumbent(seg: Segment, beam_width: int, deadline: float, max_work: int) -> _SegmentState:
    """The better of the segment's default order and the beam's, with the segment's floor as bound."""
    default_order = tuple(range(len(seg.ops)))
    default = _SegmentState(seg, default_order, seg.peak(default_order), seg.lower_bound, "default", False)
    if len(seg.ops) == 1 or default.peak <= seg.lower_bound:
        default.complete = True
        default.bound = default.peak
        return default
    if max_work <= 0:  # the budget is spent: even the beam's set-up would overrun it
        return default
    beam = beam_search(seg, beam_width, deadline, max_work=max_work)
    state = default
    if beam.peak < default.peak:
        state = _SegmentState(seg, beam.order, beam.peak, seg.lower_bound, "beam", False, beam.states, beam.work)
    else:
        state.states, state.work = beam.states, beam.work
    if state.peak <= seg.lower_bound:
        state.complete = True
        state.bound = state.peak
    return state


def _improve(st: _SegmentState, result: SearchResult) -> None:
    st.states += result.states
    st.work += result.work
    if result.peak < st.peak:
        st.order, st.peak, st.source = result.order, result.peak, "exact"
    st.bound = max(st.bound, result.bound)
    st.complete = result.proven
