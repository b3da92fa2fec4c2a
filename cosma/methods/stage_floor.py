"""Peak floors by a decision search, and the traffic they imply stage by stage (issue 19, RandWire gaps).

The min-peak best-first search (:func:`cosma.schedule.search.exact_search`) proves a floor ``f`` only
after queueing every state below ``f``, and it may run a ready operator at once only when its step stays
under the path's own peak. Asking instead *is there an order whose every step holds at most ``limit``
bytes?* lets every ready operator that closes at least as many bytes as it opens and whose step fits
``limit`` run at once (moving it to the front of any completion under ``limit`` raises no later step:
each byte it opens is paid by one it closes, and its own step fits), which collapses RandWire's Mul/Add
chains and conv pairs into single moves. A depth-first walk over the down-sets reachable under ``limit``
(each visited once) either finds a full order, or proves that every order has a step above ``limit``:
the least step value it had to refuse is then a floor. The walk counts states and gives up past
``max_states``, so its answer never depends on the clock.

The bound charges each stage (a segment of :func:`cosma.schedule.segments.segments` with enough operators)
two ways and keeps the larger:

- on its *restriction* (:func:`cosma.methods.neighbourhood.restrict`): every plan of the graph projects onto a
  plan of the restriction, so the restriction's floor implies traffic
  (:func:`cosma.formulation.peak_traffic.peak_traffic_bound`) that every plan pays on the stage's tensors;
- on the *whole graph's segment*, whose exits stay live until their readers after the stage and whose entries
  are live from its start (RandWire-WS's stage 2: 15 tensors where the restriction, its exits freed, needs 14).
  Every order of the graph has a step of the stage with at least ``F = background + floor`` live bytes
  (:mod:`cosma.schedule.segments`), at most ``C`` of them resident, and the running operator's own tensors
  resident, so live tensors it does not touch with at least ``F - C`` bytes are out at that step; each was
  touched before it and is read after it, so it costs a reload (and a store for an activation). Those tensors
  lie among the stage's tensors with two touchers or more in the *graph* (priced by their true kinds, as the
  restriction widened by the stage's boundary operators would price its exits and entries) and the stage's
  background; the background is counted out at no cost. (A widened restriction is not enough in general: a
  tensor the stage produces and only a later stage reads has one toucher there, yet is held through the
  stage in the whole graph and must stay in the cover's pool.)

Either way a stage's bound is paid on tensors the stage's operators touch. A tensor already charged to an
earlier stage is counted out for free (its bytes taken off the need, it never adds cost), so the stages' bounds
are paid on disjoint tensor sets and add up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cosma.formulation.peak_traffic import evictable, min_cover_cost
from cosma.graph import Graph
from cosma.hardware import Accelerator
from cosma.methods.neighbourhood import restrict
from cosma.schedule.search import beam_search
from cosma.schedule.segments import Segment, segments

#: States all decision searches of one bound may visit together (20-120 us each on a RandWire stage): a 120 s
#: solve's budget, room for randwire_ws' stage 2 as a whole-graph segment (15 tensors: about 290,000 states) on
#: top of the restrictions' walks; a 30 s solve's budget (:func:`state_budget`) stays below it as before.
MAX_STATES = 800_000
#: States per second of the solve's time limit the bound may visit (at most :data:`MAX_STATES`): the walks cost
#: 40-120 us per state on RandWire stages, so a 30 s solve gives them about a third of its time.
STATES_PER_SECOND = 6_500


def state_budget(time_limit: float) -> int:
    """The deterministic state budget of a solve with ``time_limit`` seconds."""
    return min(MAX_STATES, int(STATES_PER_SECOND * max(0.0, time_limit)))


#: Limits tried per segment, each the least step the previous walk refused.
MAX_ROUNDS = 4
#: States the first walk of a segment may visit before the segment is given up (randwire_ws's stages decide
#: within 60,000 at a tensor below the scratchpad; randwire_er/ba's stay undecided past 200,000).
PROBE_STATES = 65_000
#: Width and generated-state cap of the beam search whose order gives each segment's upper bound (about
#: 0.1-0.4 s on RandWire stages; its peak is randwire_ws no-weights' proven optimum).
BEAM_WIDTH = 4
BEAM_STATES = 25_000
#: Segments smaller than this are left to the other bounds (their restrictions rarely exceed the scratchpad).
MIN_OPS = 8


@dataclass(frozen=True)
class Fit:
    """Whether some order of the segment keeps every step at most ``limit`` bytes (``None``: undecided), the
    least refused step value when not (a floor on the minimum peak), and the states visited."""

    limit: int
    fits: bool | None
    refused: int
    states: int


def fits_under(seg: Segment, limit: int, max_states: int = MAX_STATES) -> Fit:
    """Decide whether an order of ``seg`` has every step at most ``limit`` bytes (background excluded)."""
    full = seg.full
    n = len(seg.ops)
    indegree = [bin(p).count("1") for p in seg.preds]
    seen: set[int] = set()
    refused = -1
    states = 0
    # a state: (done mask, open bytes, ready operators)
    start_ready = tuple(i for i in range(n) if indegree[i] == 0)
    stack: list[tuple[int, int, tuple[int, ...]]] = [(0, seg.initial_open, start_ready)]
    while stack:
        done, open_bytes, ready = stack.pop()
        if done in seen:  # visited, or its forced moves lead where they led before
            continue
        seen.add(done)
        entered = done
        # forced moves (module docstring), in passes over the ready operators until a pass runs none
        moved = True
        while moved:
            moved = False
            for op in ready:
                live, after = seg.step(done, open_bytes, op)
                if after <= open_bytes and live <= limit and not done >> op & 1:
                    done, open_bytes, ready = _run(seg, done, after, ready, op)
                    moved = True
        if done == full:
            return Fit(limit, True, -1, states)
        if done != entered:
            if done in seen:
                continue
            seen.add(done)
        states += 1
        if states > max_states:
            return Fit(limit, None, -1, states)
        for op in reversed(ready):
            live, after = seg.step(done, open_bytes, op)
            if live > limit:
                refused = live if refused < 0 else min(refused, live)
            elif done | (1 << op) not in seen:
                stack.append(_run(seg, done, after, ready, op))
    return Fit(limit, False, refused, states)


def _run(seg: Segment, done: int, after: int, ready: tuple[int, ...], op: int) -> tuple[int, int, tuple[int, ...]]:
    """The state after running ``op`` from ``done``."""
    now = done | (1 << op)
    nxt = [r for r in ready if r != op]
    nxt.extend(s for s in seg.succs[op] if not seg.preds[s] & ~now)
    return now, after, tuple(sorted(nxt))


def segment_floor(
    seg: Segment, start: int, budget: list[int], rounds: int = MAX_ROUNDS, probe_states: int = PROBE_STATES
) -> int:
    """A proven floor (background excluded) on the minimum peak of ``seg``, at least ``seg.lower_bound``, for a
    question that starts at ``start`` (a floor at or below it proves nothing the caller needs). ``budget[0]``
    is the states left to all walks; each walk spends what it visits.

    A walk that cannot decide costs its whole state cap, so the limits are tried in the order that decides
    fast: a beam order's peak ``upper`` answers the question outright when it fits; a probe walk a largest
    tensor below ``start``, capped at ``probe_states``, gives the segment up when even that smaller space stays
    undecided (RandWire-ER/BA's stages at M_R); then one walk just below ``upper`` proves the floor tight when
    no order beats the beam; only if one does, limits climb from the question's limit as before."""
    floor = seg.lower_bound
    limit = max(start, floor)
    if budget[0] <= 0:
        return floor
    upper = beam_search(seg, BEAM_WIDTH, float("inf"), max_states=BEAM_STATES).peak
    if upper <= limit:  # an order fits: no floor above the question's limit
        return floor
    probe = fits_under(seg, max(floor, limit - max(seg.sizes, default=0)), min(budget[0], probe_states))
    budget[0] -= probe.states
    if probe.fits is not False or probe.refused < 0:  # fits even lower, or undecided: give the segment up
        return floor
    floor = max(floor, probe.refused)
    if budget[0] > 0 and upper - 1 > floor:
        tight = fits_under(seg, upper - 1, budget[0])
        budget[0] -= tight.states
        if tight.fits is False and tight.refused >= 0:
            return max(floor, tight.refused)
        if tight.fits is None:
            return floor
    limit = max(limit, floor)  # walks below the question prove nothing it needs
    for _ in range(rounds):
        if budget[0] <= 0:
            break
        fit = fits_under(seg, limit, budget[0])
        budget[0] -= fit.states
        if fit.fits is not False or fit.refused < 0:  # an order fits (or undecided): nothing more is proven
            break
        floor = max(floor, fit.refused)
        limit = fit.refused
    return floor


def cover(pool: dict[str, tuple[int, int]], tensors: Iterable[str], free: set[str], need: int) -> int:
    """The cheapest cover of ``need`` bytes by the ``pool`` tensors among ``tensors``, those in ``free`` out at no
    cost (their bytes come off the need); 0 when nothing is needed or nothing covers it."""
    inside = [t for t in tensors if t in pool]
    need -= sum(pool[t][0] for t in inside if t in free)
    if need <= 0:
        return 0
    return max(0, min_cover_cost([pool[t] for t in inside if t not in free], need))


def stage_traffic(
    graph: Graph, accelerator: Accelerator, *, max_states: int = MAX_STATES, min_ops: int = MIN_OPS
) -> tuple[int, dict[str, Any]]:
    """Extra traffic (bytes) every plan of ``graph`` pays, summed over its segments of at least ``min_ops``
    operators, each charged at the larger of its restriction's and its whole-graph segment's decision-search
    floor (module docstring) on the tensors its operators touch, those charged before counted out for free;
    all walks together visit at most ``max_states`` states."""
    capacity = accelerator.scratchpad_bytes
    budget = [max_states]
    total = 0
    charged: set[str] = set()
    whole_pool = evictable(graph)
    parts = []
    for whole_seg in segments(graph):
        if len(whole_seg.ops) < min_ops:
            continue
        sub = restrict(graph, whole_seg.ops)
        floor = 0
        before = budget[0]
        for seg in segments(sub):
            floor = max(floor, seg.background + seg.lower_bound)
            default = tuple(range(len(seg.ops)))
            if seg.background + seg.peak(default) > capacity:  # else no floor of it can exceed the scratchpad
                floor = max(floor, seg.background + segment_floor(seg, capacity - seg.background, budget))
        names = [t.name for t in sub.tensors]
        restricted = cover(evictable(sub), names, charged, floor - capacity)
        # the whole segment holds at each step, its background aside, all the restriction holds and more, and its
        # orders are orders of the restriction, so its floor starts at the restriction's; its walks are harder,
        # so they run only where the restriction's proved a floor above the scratchpad or all decided within
        # one probe's states (RandWire-ER/BA's undecided stages cost nothing more)
        bg = whole_seg.background
        local = max(whole_seg.lower_bound, floor)
        default = tuple(range(len(whole_seg.ops)))
        decided = floor > capacity or before - budget[0] < PROBE_STATES
        if decided and bg + whole_seg.peak(default) > capacity:
            local = max(local, segment_floor(whole_seg, max(capacity - bg, local), budget))
        # a step with bg + local live bytes has bg + local - capacity out; the background is out for free
        whole = cover(whole_pool, whole_seg.tensor_names, charged, local - capacity)
        bound = max(restricted, whole)
        parts.append(
            {"ops": len(sub.ops), "floor": floor, "whole_floor": bg + local, "restricted": restricted, "whole": whole}
        )
        if bound > 0:
            charged.update(names)
            total += bound
    return total, {"stages": parts, "states": max_states - budget[0]}
