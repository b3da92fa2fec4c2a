"""Local improvement of an order by exact search over windows (a large-neighbourhood search).

Operators ``order[s:e]`` that are consecutive in a topological order form a
:func:`~cosma.schedule.segments.window`: any order of them that respects their own edges,
spliced back, keeps the whole order topological and leaves every step outside the window as it
was. :func:`improve` therefore lowers the peak one window at a time: it takes a step at the
peak, lets :func:`~cosma.schedule.search.exact_search` look for an order of a window around it
whose largest step is below the peak, and splices it in. It stops when the peak reaches
``floor`` (a proven lower bound), when no window around any peak step helps, when the searches
have spent ``total_work`` work units together (the deterministic limit; building a window and
splicing one in charge one unit per operator of the order, the searches their own work), or at the
deadline (a safety net).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from cosma.graph import Graph
from cosma.schedule.search import exact_search
from cosma.schedule.segments import spans, window


@dataclass(frozen=True)
class LocalResult:
    order: tuple[str, ...]
    peak: int
    windows: int  # windows searched
    improvements: int  # windows spliced in
    states: int = 0  # states the window searches expanded
    work: int = 0  # work units spent (see :class:`~cosma.schedule.search.Work`)


def improve(
    graph: Graph,
    order: Sequence[str],
    *,
    floor: int,
    width: int,
    max_states: int,
    deadline: float,
    total_work: int | None = None,
) -> LocalResult:
    """``order`` with its peak lowered window by window; see the module docstring."""
    current = list(order)
    n = len(current)
    live = graph.live_bytes(current)
    peak = max(live, default=0)
    order_spans = spans(graph, current)
    stuck: set[int] = set()  # peak steps no window could lower, at the current peak
    windows = improvements = spent = generated = 0
    while peak > floor and time.perf_counter() < deadline:
        if total_work is not None and spent >= total_work:
            break
        target = next((i for i, v in enumerate(live) if v == peak and i not in stuck), None)
        if target is None:
            break
        spliced = False
        starts = (target - width // 2, target - width + 1, target)  # centred, ending at, starting at the peak
        for start in dict.fromkeys(max(0, min(s, n - width)) for s in starts):
            end = min(n, start + width)
            left = None if total_work is None else total_work - spent - n
            if left is not None and left <= 0:
                break  # the budget is spent: the remaining windows around this step are not tried
            seg = window(graph, current, start, end, order_spans)
            spent += n  # building the window scans the whole order's tensors
            result = exact_search(
                seg,
                peak - seg.background,
                tuple(range(end - start)),
                max_states=max_states,
                max_work=left,
                deadline=deadline,
            )
            windows += 1
            spent += result.work
            generated += result.states
            if result.peak + seg.background < peak:
                current[start:end] = [seg.ops[i] for i in result.order]
                spliced = True
                break
        if not spliced:
            if total_work is not None and spent >= total_work:
                break
            stuck.add(target)
            continue
        improvements += 1
        spent += 2 * n  # the new order's live bytes and spans
        live = graph.live_bytes(current)
        lowered = max(live)
        if lowered < peak:
            stuck.clear()
        peak = lowered
        order_spans = spans(graph, current)
    return LocalResult(tuple(current), peak, windows, improvements, generated, spent)
