"""Divide and conquer for graphs too large for one exact model: the ``dc`` method.

docs/formulation.md, "Divide and conquer", gives the design and the measurements. In short, the
driver is a large-neighbourhood search over a complete, valid plan, in named phases:

1. start: the best baseline (:func:`cosma.methods.baselines.best_baseline`'s four plans); its residency
   (order, and every tensor's stays in the scratchpad) is the incumbent, so the result is never
   worse than any baseline;
2. bound: a lower bound for the whole graph (:func:`global_bound`, and the sum of proven bounds of
   tensor-disjoint neighbourhoods, :mod:`cosma.methods.neighbourhood`), so the gap is known;
3. passes (after the exact fixed-order method on the whole order, and fixed-order windows of
   ``FIXED_ORDER_SCALE * segment_ops`` operators): cut the incumbent's order into consecutive
   windows of at most ``segment_ops`` operators, at steps few tensors cross (:func:`choose_cuts`);
   solve each window in order with the exact CP-SAT model (:mod:`cosma.formulation.cpsat`) in joint
   mode, its operators free to reorder, with the boundary state of the incumbent: the tensors
   resident when the window starts (fixed offsets, produced by a synthetic ``enter`` operator at its
   first step) and those the rest of the plan expects resident when it ends (fixed offsets, read by
   a synthetic ``exit`` operator at its last step). Tensors the rest of the plan reloads are priced
   like any other eviction: a reload, and the one store of an activation unless the rest of the plan
   pays it already. A window's solution replaces its part of the incumbent when it is cheaper
   (:func:`stitch`); the next pass cuts between the previous pass's cuts, so every boundary decision
   is revisited; passes repeat while the time lasts and a pass still improves;
4. stitch and validate: the incumbent's residency becomes steps, replayed as a whole by
   :meth:`~cosma.plan.Plan.from_steps`.

Every window's model contains the incumbent's part as a solution (given as the hint, its cost as
the upper bound), so the incumbent only improves and stays valid; Ctrl-C or the time limit stop
the search with the incumbent. The per-window bounds hold only under fixed boundaries, so the
status is ``optimal`` only when the global bound meets the plan.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any, Literal, cast

from cosma.backends.base import Clock, NoProgress, Progress, SolverParams, dump_path
from cosma.errors import OptionError
from cosma.formulation import bounds, cpsat
from cosma.formulation.instance import Instance, Mode
from cosma.formulation.residency import Residency, Stay, residency_of_plan
from cosma.graph import DRAM_KINDS, Graph, Operator, Tensor
from cosma.hardware import Accelerator, check_budget
from cosma.methods.baselines import best_baseline_and_orders
from cosma.methods.exact import cpsat_backend, solve_exact, solver_name
from cosma.methods.moves import reorder
from cosma.methods.neighbourhood import SOLVE_LIMIT, lifted_order, neighbourhood_bound, restrict, solve_piece
from cosma.methods.peak_bound import peak_traffic
from cosma.methods.stage_floor import stage_traffic, state_budget
from cosma.options import Options
from cosma.plan import Plan
from cosma.progress import progress_line
from cosma.schedule import ScheduleResult

#: Operators per joint window unless ``--segment-ops`` says otherwise (docs/formulation.md gives the measurement).
DEFAULT_SEGMENT_OPS = 24
#: ``auto`` runs ``dc`` on graphs of more operators than this, the exact joint model on smaller ones
#: (docs/formulation.md, "Divide and conquer", gives the measurement).
DC_THRESHOLD_OPS = 400
#: Seconds one window's solve may take at most; the rest of the time goes to more windows and passes.
WINDOW_TIME_CAP = 5.0
#: Fixed-order windows are this many times larger than joint ones (their models are much smaller per operator).
FIXED_ORDER_SCALE = 8
#: Share of the time limit kept for the final replay and for the bound.
RESERVE_SHARE = 0.05
#: Share of the time left that the neighbourhood bound may take (it usually needs about a second).
BOUND_SHARE = 0.15
#: Operators of the incumbent's order (from the producer of its costliest tensor) that a lift restricts to, and
#: the CP-SAT deterministic seconds it gets (issue 19: nasnet_a's stem at M_H, 47 operators, in about 5 s).
LIFT_OPS = 45
LIFT_EFFORT = 5.0

ENTER, EXIT = "dc.enter", "dc.exit"


# ------------------------------------------------------------------------ method
def solve_dc(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """Divide and conquer (see the module docstring): never worse than the best baseline."""
    clock = Clock(options.time_limit)
    check_budget(graph, accelerator)
    given = options.segment_ops
    segment_ops = DEFAULT_SEGMENT_OPS if given is None else int(given)
    if segment_ops < 1:
        raise OptionError(f"--segment-ops {segment_ops}: give at least 1 operator per segment")
    schedule = stages(segment_ops, options.dc_mode)
    phases: list[dict[str, Any]] = []

    warm, schedules = best_baseline_and_orders(graph, accelerator, options)
    phases.append(
        {
            "phase": "start",
            "from": warm.summary.method,
            "extra_bytes": warm.extra_bytes,
            "seconds": round(clock.elapsed(), 3),
        }
    )
    lower, bound_details = global_bound(graph, accelerator, schedules.get("minpeak"))
    if lower < warm.extra_bytes:  # stage floors by the decision search, charged stage by stage (issue 19)
        staged, bound_details["stages"] = stage_traffic(graph, accelerator, max_states=state_budget(options.time_limit))
        if staged > lower:
            lower, bound_details["kind"] = staged, "stages"
    if lower < warm.extra_bytes:
        pieces, piece_details = neighbourhood_bound(graph, accelerator, options, BOUND_SHARE * max(0.0, clock.left()))
        bound_details = {**bound_details, "neighbourhoods": pieces, "neighbourhood": piece_details}
        if pieces > lower:
            lower, bound_details["kind"] = pieces, "neighbourhoods"
    if lower < warm.extra_bytes and len(graph.ops) <= DC_THRESHOLD_OPS:
        relaxed = relaxation_bound(graph, accelerator, options, lower, warm.extra_bytes, BOUND_SHARE * clock.left())
        bound_details = {**bound_details, "relaxation": relaxed}
        if relaxed > lower:
            lower, bound_details["kind"] = relaxed, "relaxation"
    phases.append({"phase": "bound", "bound": lower, **bound_details, "seconds": round(clock.elapsed(), 3)})

    start = residency_of_plan(warm)
    search = DcSearch(
        graph, accelerator, options, start, start.to_plan(graph, accelerator, method="dc").extra_bytes, clock
    )
    search.improved = search.extra_bytes < warm.extra_bytes
    search.interrupted = bool(bound_details.get("neighbourhood", {}).get("interrupted"))  # Ctrl-C in the bound
    if search.extra_bytes > lower:
        with progress_line(f"{graph.name}: dc", options.quiet, options.time_limit, clock.started) as progress:
            progress.set_phase("windows", 1)
            progress.update(incumbent=search.extra_bytes, bound=lower)
            search.progress = progress
            try:
                search.run(schedule, target=lower)
            except KeyboardInterrupt:  # between solver calls: the incumbent is whole, stop with it
                search.interrupted = True
    phases.extend(search.log)
    plan = warm
    if search.improved:
        stitched = search.residency.to_plan(graph, accelerator, method="dc")
        plan = stitched if stitched.extra_bytes < warm.extra_bytes else warm
    lower = min(lower, plan.extra_bytes)
    details = {
        "segment_ops": segment_ops,
        "baseline": warm.summary.method,
        "baseline_extra_bytes": warm.extra_bytes,
        "baselines": dict(warm.summary.details.get("baselines", {})),
        "windows": search.windows_solved,
        "windows_improved": search.windows_improved,
        "passes": search.passes,
        "interrupted": search.interrupted,
        "phases": phases,
        "bound_kind": bound_details["kind"],
    }
    status = "optimal" if lower == plan.extra_bytes else ("time-limit" if search.timed_out else "feasible")
    return plan.with_summary(method="dc", status=status, bound=lower, solve_seconds=clock.elapsed(), details=details)


# ------------------------------------------------------------------------- bound
def global_bound(
    graph: Graph, accelerator: Accelerator, schedule: ScheduleResult | None = None
) -> tuple[int, dict[str, Any]]:
    """A lower bound on the extra traffic of any plan of ``graph`` (bytes), and how it was found.

    The larger of the two bounds of :mod:`cosma.formulation.bounds` on the joint-mode instance, both
    valid for every order: the forced-spanning ``cover``, and the ``peak`` bound ``extra >= P - C``
    with ``P`` a proven floor on the minimum peak. ``schedule`` (the baselines' min-peak search, run on
    the raw sizes when the alignment is 1) may give a higher floor than
    :func:`~cosma.schedule.graph_lower_bound`: its proven bound then serves as ``P``.
    """
    instance = Instance.build(graph, accelerator, "joint")
    unit = instance.cost_unit
    cover = bounds.eviction_bound(instance) * unit
    peak = bounds.peak_bound(instance) * unit
    if schedule is not None and accelerator.alignment == 1:
        excess = schedule.bound - accelerator.scratchpad_bytes
        peak = max(peak, -(-excess // unit) * unit if excess > 0 else 0)  # traffic is a multiple of the unit
    traffic = peak_traffic(graph, accelerator, schedule, max_states=0)[0]  # whole tensors at the floor (issue 19)
    peak = max(peak, traffic)
    kind = "cover" if cover >= peak else "peak"
    return max(cover, peak), {"kind": kind, "cover": cover, "peak": peak}


def relaxation_bound(
    graph: Graph, accelerator: Accelerator, options: Options, lower: int, upper: int, time_limit: float
) -> int:
    """The proven bound (bytes) of the joint capacity-only relaxation of the whole graph, the bound the
    ``joint`` method proves with; 0 when the solver proves nothing in ``time_limit``.

    A graph small enough for ``joint`` (at most :data:`DC_THRESHOLD_OPS` operators) gets it, so that dc
    never reports a wider gap than joint would on the same plan; larger graphs' relaxations do not solve.
    """
    instance = Instance.build(graph, accelerator, "joint")
    unit = instance.cost_unit
    model = cpsat.build(instance, addresses=False, lower=-(-lower // unit), upper=upper // unit)
    backend = cpsat_backend(solver_name(options))
    params = SolverParams(
        time_limit=max(time_limit, 0.01), threads=options.threads, seed=options.seed, extra=dict(options.solver_params)
    )
    result = backend.solve(model, params)
    if result.bound is None or result.status == "infeasible":
        return 0
    return max(0, result.bound) * unit


# ------------------------------------------------------------------------ search
@dataclass(frozen=True)
class Stage:
    """Windows of one mode, from ``segment_ops`` operators up to ``max_ops`` (None: the whole graph), for a
    ``share`` of the time left; mode ``whole`` is the exact fixed-order method on the whole order."""

    mode: Mode | Literal["whole", "moves", "lift"]
    segment_ops: int
    share: float
    max_ops: int | None = None


def stages(segment_ops: int, mode: str | None = None) -> tuple[Stage, ...]:
    """The default schedule: the exact fixed-order method on the incumbent's whole order (it settles
    evictions and addresses, and often proves that order's optimum in seconds), then fixed-order
    windows of ``FIXED_ORDER_SCALE`` times ``segment_ops`` (they move eviction decisions across hundreds
    of steps where the whole order is too large to solve: RandWire-large), then joint windows (they
    reorder) of up to twice ``segment_ops``: larger joint windows rarely pay for their time
    (docs/formulation.md, "Divide and conquer"). Rounds repeat while they improve.
    ``mode`` ``joint`` or ``fixed-order`` runs windows of that mode alone, growing to the whole graph."""
    if mode in ("joint", "fixed-order"):
        return (Stage(cast(Mode, mode), segment_ops, 1.0),)
    if mode not in (None, "", "auto"):
        raise OptionError(f"unknown dc mode {mode!r}; choose auto, joint or fixed-order")
    return (
        Stage("moves", 0, 0.3),  # issue 19: long-range reordering (cosma.methods.moves)
        Stage("whole", 0, 0.3),
        Stage("lift", 0, 0.3),  # issue 19: the region of the costliest tensor reordered with a free boundary
        Stage("fixed-order", FIXED_ORDER_SCALE * segment_ops, 0.4, max_ops=2 * FIXED_ORDER_SCALE * segment_ops),
        Stage("joint", segment_ops, 0.9, max_ops=2 * segment_ops),
        # issue 19: joint windows reorder, so the new order's evictions are settled again (nasnet_a/pnasnet5:
        # the whole order then drops 0.1-13% below the windows' stitched plan in under a second)
        Stage("whole", 0, 1.0),
    )


@dataclass
class DcSearch:
    """The incumbent residency and the passes of window solves that improve it."""

    graph: Graph
    accelerator: Accelerator
    options: Options
    residency: Residency
    extra_bytes: int
    clock: Clock
    improved: bool = False
    interrupted: bool = False
    timed_out: bool = False
    passes: int = 0
    windows_solved: int = 0
    windows_improved: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    progress: Progress = field(default_factory=NoProgress)
    #: windows already solved (their local problem) -> seconds spent; a proven one maps to infinity
    tried: dict[tuple[str, int, int, Residency], float] = field(default_factory=dict)
    #: operator sets already lifted (:meth:`_lift`)
    lifted: set[frozenset[str]] = field(default_factory=set)
    #: the cheapest lifted plan not yet adopted (residency, extra bytes): a second incumbent, so that the
    #: windows still improve the un-lifted one (issue 19: from a lifted plan they may reach a worse basin)
    alternative: tuple[Residency, int] | None = None

    def run(self, stages: Sequence[Stage], target: int = 0) -> None:
        """The stages in turn, each for its share of the time left, again while a round improves."""
        reserve = RESERVE_SHARE * self.clock.limit
        try:
            while self.clock.left() > reserve and not self.interrupted and self.extra_bytes > target:
                before = self.extra_bytes
                for stage in stages:
                    deadline = min(
                        self.clock.elapsed() + stage.share * (self.clock.left() - reserve), self.clock.limit - reserve
                    )
                    if stage.mode == "moves":  # issue 19: long-range reordering (cosma.methods.moves)
                        self._moves(deadline)
                    elif stage.mode == "whole":
                        self._whole_order(deadline - self.clock.elapsed())
                    elif stage.mode == "lift":
                        self._lift(deadline)
                    else:
                        self._stage(stage, deadline, target)
                self._adopt_alternative()  # the next round (if any) works on the cheaper of the two
                if self.extra_bytes == before:
                    break
        finally:
            self._adopt_alternative()

    def _adopt_alternative(self) -> None:
        """The lifted plan becomes the incumbent when it is cheaper than what the windows reached."""
        if self.alternative is not None and self.alternative[1] < self.extra_bytes:
            self.residency, self.extra_bytes = self.alternative
            self.improved = True
            self.log.append({"phase": "adopt lift", "extra_bytes": self.extra_bytes})
            self.progress.update(incumbent=self.extra_bytes)
        self.alternative = None

    def _stage(self, stage: Stage, deadline: float, target: int) -> None:
        """Passes of windows until ``deadline`` (clock seconds) or the bound is met.

        Consecutive passes cut between each other's cuts. When two passes in a row find nothing,
        the windows grow by half (and each may take longer), until one window holds the whole graph.
        """
        mode = stage.mode
        assert mode != "whole" and mode != "moves" and mode != "lift", (
            "the whole, moves and lift stages are not windows"
        )
        previous: Sequence[int] = ()
        size, quiet = stage.segment_ops, 0
        n = len(self.residency.order)
        while deadline - self.clock.elapsed() > 0.05 and not self.interrupted and self.extra_bytes > target:
            cuts = choose_cuts(self.graph, self.residency.order, size, avoid=previous)
            reloads = reload_steps(self.graph, self.residency)
            # a window with no reload at its steps (or at its exit) costs nothing: nothing to solve
            spans = [
                (a, b)
                for a, b in zip((0, *cuts), (*cuts, n))
                if bisect.bisect_left(reloads, a) < bisect.bisect_right(reloads, b)
            ]
            before, started, solved = self.extra_bytes, self.clock.elapsed(), self.windows_solved
            # each window's effort in CP-SAT's deterministic seconds, from the time limit and the number of
            # windows, never from the clock: the same inputs give the same plan unless the time limit strikes
            share = 0.5 * self.clock.limit / max(1, len(spans))
            effort = min(WINDOW_TIME_CAP * size / stage.segment_ops, max(0.2, share))
            for a, b in spans:
                left = deadline - self.clock.elapsed()
                if left <= 0.05 or self.interrupted:
                    self.timed_out = not self.interrupted
                    break
                self._window(mode, a, b, effort, deadline)
            self.passes += 1
            if self.windows_solved > solved:
                self.log.append(
                    {
                        "phase": f"pass {self.passes}",
                        "mode": stage.mode,
                        "segment_ops": size,
                        "windows": len(spans),
                        "solved": self.windows_solved - solved,
                        "extra_bytes": self.extra_bytes,
                        "seconds": round(self.clock.elapsed() - started, 3),
                    }
                )
            previous = cuts
            quiet = 0 if self.extra_bytes < before else quiet + 1
            if quiet >= 2:  # both sets of cuts found nothing: larger windows
                largest = min(n, stage.max_ops or n)
                if size >= largest:
                    return
                size, previous, quiet = min(largest, size + size // 2 + 1), (), 0

    def _moves(self, deadline: float) -> None:
        """Long-range reordering (issue 19, :func:`cosma.methods.moves.reorder`); its plan replaces a costlier one."""
        started = self.clock.elapsed()
        safety = self.clock.started + deadline  # the moves stop on work; the stage's deadline is a safety net
        order, allocator = self.residency.order, self.options.allocator
        found = reorder(self.graph, self.accelerator, order, self.extra_bytes, allocator=allocator, deadline=safety)
        if found.plan is not None and found.plan.extra_bytes < self.extra_bytes:
            self.residency, self.extra_bytes = residency_of_plan(found.plan), found.plan.extra_bytes
            self.improved = True
            self.progress.update(incumbent=self.extra_bytes)
        seconds = round(self.clock.elapsed() - started, 3)
        self.log.append({"phase": "moves", "rounds": found.rounds, "extra_bytes": self.extra_bytes, "seconds": seconds})

    def _lift(self, deadline: float) -> None:
        """Issue 19: solve the restriction (:func:`cosma.methods.neighbourhood.restrict`) to the region of the
        costliest reloaded tensor - its producer, readers and their readers, and :data:`LIFT_OPS` operators of
        the order from its producer on - with the joint method, its boundary free; run the incumbent in the
        restriction plan's sequence there (:func:`~cosma.methods.neighbourhood.lifted_order`) and settle the
        new order's evictions by the exact fixed-order method. Windows keep the incumbent's boundary state, so
        they cannot move a NAS stem's readers of one large tensor together; this can. A cheaper result becomes
        :attr:`alternative`, adopted at the end of the round if the windows have not beaten it."""
        order = self.residency.order
        step = {o: k for k, o in enumerate(order)}
        first: dict[str, int] = {}
        for seg in self.residency.segments:
            first[seg.tensor] = min(first.get(seg.tensor, seg.first), seg.first)
        cost: dict[str, int] = defaultdict(int)
        for seg in self.residency.segments:
            kind = self.graph.tensor(seg.tensor).kind
            if not seg.created and (seg.first > first[seg.tensor] or kind not in DRAM_KINDS):
                cost[seg.tensor] += self.graph.size(seg.tensor)
        if not cost:
            return
        top = max(cost, key=lambda t: (cost[t], t))
        producer = self.graph.producer(top)
        readers = self.graph.consumers(top)
        near = {*readers, *([producer] if producer is not None else [])}
        near.update(r for o in readers for t in self.graph.op(o).outputs for r in self.graph.consumers(t))
        start = step[producer] if producer is not None else min(step[r] for r in readers)
        region = frozenset({*order[start : start + LIFT_OPS], *near})
        left = deadline - self.clock.elapsed()
        if region in self.lifted or left < 0.5:
            return
        # where the incumbent pays no more on the neighbourhood's tensors than the neighbourhood alone proves, it
        # has nothing to remove there (nasnet_a at M_R: a lift then only leads the windows to a worse basin)
        piece = solve_piece(self.graph, self.accelerator, frozenset(near), self.options, min(SOLVE_LIMIT, left))
        paid = sum(
            cost[t] + (self.graph.size(t) if cost[t] and self.graph.tensor(t).kind not in DRAM_KINDS else 0)
            for t in piece.tensors
        )
        if paid <= piece.bound:
            return
        self.lifted.add(region)
        started = self.clock.elapsed()
        extra = {"max_deterministic_time": str(LIFT_EFFORT), **self.options.solver_params}
        quick = replace(
            self.options,
            time_limit=max(0.1, deadline - self.clock.elapsed()),
            quiet=True,
            neighbourhood_bound=False,
            solver_params=extra,
        )
        sub = solve_exact(restrict(self.graph, region), self.accelerator, quick, mode="joint")
        self.interrupted = self.interrupted or bool(sub.summary.details.get("interrupted"))
        new = lifted_order(self.graph, order, sub.order)
        left = deadline - self.clock.elapsed()
        if tuple(new) == order or left < 0.1 or self.interrupted:
            return
        options = replace(self.options, time_limit=left, quiet=True)
        plan = solve_exact(self.graph, self.accelerator, options, mode="fixed-order", order=new)
        self.interrupted = self.interrupted or bool(plan.summary.details.get("interrupted"))
        # kept aside, not adopted: the windows go on from the un-lifted incumbent and the cheaper plan wins at the
        # end of the round (nasnet_a M_R: from the lifted 15.25M the windows find nothing, from the un-lifted
        # 16.57M they reach 14.53M; at M_H the lifted 10.32M beats their 12.19M)
        best = self.extra_bytes if self.alternative is None else min(self.extra_bytes, self.alternative[1])
        if plan.extra_bytes < best:
            self.alternative = residency_of_plan(plan), plan.extra_bytes
        seconds = round(self.clock.elapsed() - started, 3)
        self.log.append({"phase": "lift", "ops": len(region), "extra_bytes": plan.extra_bytes, "seconds": seconds})

    def _whole_order(self, time_limit: float) -> None:
        """The exact fixed-order method on the incumbent's whole order (:func:`cosma.methods.exact.solve_exact`)."""
        if time_limit < 0.1:
            return
        started = self.clock.elapsed()
        options = replace(self.options, time_limit=time_limit, quiet=True)
        plan = solve_exact(self.graph, self.accelerator, options, mode="fixed-order", order=self.residency.order)
        self.interrupted = self.interrupted or bool(plan.summary.details.get("interrupted"))
        self.log.append(
            {
                "phase": "whole order",
                "mode": "fixed-order",
                "status": plan.summary.status,
                "extra_bytes": min(self.extra_bytes, plan.extra_bytes),
                "seconds": round(self.clock.elapsed() - started, 3),
            }
        )
        if plan.extra_bytes < self.extra_bytes:
            self.residency, self.extra_bytes, self.improved = residency_of_plan(plan), plan.extra_bytes, True
            self.progress.update(incumbent=self.extra_bytes)

    def _window(self, mode: Mode, a: int, b: int, effort: float, deadline: float) -> None:
        """Solve one window with ``effort`` deterministic seconds (and the clock's ``deadline``); its solution
        replaces the incumbent's part when cheaper."""
        window = Window.of(self.graph, self.accelerator, self.residency, a, b, mode)
        key = (mode, a, b, window.hint)
        if self.tried.get(key, 0.0) >= effort:
            return  # this very problem was solved before, to optimality or with as much effort
        upper = window.cost(window.hint)
        if upper == 0:
            return
        self.windows_solved += 1
        m = cpsat.build(window.instance, lower=0, upper=upper, symmetry_breaking=False)
        window.fix_boundary(m)
        # a window is a CP-SAT model: the chosen backend solves it if it solves those, else CP-SAT does
        backend = cpsat_backend(solver_name(self.options))
        if self.options.dump_model is not None:
            backend.dump(m, dump_path(self.options.dump_model, f"{self.graph.name}-dc-{mode}-{a}-{b}", backend))
        # deterministic time first (the same plan on a busy machine), the clock as the safety net
        extra = {"max_deterministic_time": str(effort), **self.options.solver_params}
        time_left = deadline - self.clock.elapsed()  # the model is built: what is left is the solver's
        if time_left < 0.05:
            return
        params = SolverParams(
            time_limit=min(4 * effort, time_left), threads=self.options.threads, seed=self.options.seed, extra=extra
        )
        outcome = backend.solve(m, params, hint=window.hint)
        self.interrupted = self.interrupted or outcome.interrupted
        self.tried[key] = math.inf if outcome.status == "optimal" else effort
        if outcome.residency is None or outcome.objective is None or outcome.objective >= upper:
            return
        self.residency = stitch(self.residency, window, outcome.residency)
        self.extra_bytes -= (upper - outcome.objective) * window.instance.cost_unit
        self.improved = True
        self.windows_improved += 1
        self.progress.update(incumbent=self.extra_bytes)


def reload_steps(graph: Graph, residency: Residency) -> list[int]:
    """Sorted steps at which a stay begins with a load that is not compulsory (a reload)."""
    first: dict[str, int] = {}
    for seg in residency.segments:
        first[seg.tensor] = min(first.get(seg.tensor, seg.first), seg.first)
    return sorted(
        seg.first
        for seg in residency.segments
        if not seg.created and (seg.first > first[seg.tensor] or graph.tensor(seg.tensor).kind not in DRAM_KINDS)
    )


# ------------------------------------------------------------------------ windows
def boundary_state(residency: Residency, step: int) -> dict[str, Stay]:
    """Stays resident across the boundary before run ``step``: during run ``step - 1`` and run ``step``."""
    return {s.tensor: s for s in residency.segments if s.first <= step - 1 and s.last >= step}


@dataclass(frozen=True)
class Window:
    """Runs ``start .. end - 1`` of a residency as a graph of their own, between ``enter`` and ``exit``.

    Local step 0 is ``enter``, which produces the tensors resident at the start (``entry``, fixed
    offsets in bytes); local steps ``1 .. n`` are the window's runs; local step ``n + 1`` is
    ``exit``, which reads the tensors the rest of the plan expects resident at the end (``exit``).
    Zero-byte tokens make ``enter`` precede and ``exit`` follow every operator.
    """

    start: int
    end: int
    instance: Instance
    entry: Mapping[str, int]
    exit: Mapping[str, int]
    hint: Residency

    @classmethod
    def of(
        cls, graph: Graph, accelerator: Accelerator, residency: Residency, start: int, end: int, mode: Mode = "joint"
    ) -> Window:
        ops = residency.order[start:end]
        n = len(ops)
        entry = {t: s.offset for t, s in boundary_state(residency, start).items()} if start > 0 else {}
        exit_ = {t: s.offset for t, s in boundary_state(residency, end).items()} if end < len(residency.order) else {}
        touched = dict.fromkeys(t for o in ops for t in (*graph.op(o).inputs, *graph.op(o).outputs))
        produced_here = {t for o in ops for t in graph.op(o).outputs}
        # the incumbent's part as local stays (the hint), and the activations the rest of the plan reloads
        local: list[Stay] = []
        reloaded_outside: set[str] = set()
        for s in residency.segments:
            if not s.created and not start <= s.first < end:
                reloaded_outside.add(s.tensor)
            if s.last < start or s.first >= end:
                continue
            lo = 0 if s.first < start else s.first - start + 1
            hi = n + 1 if s.last >= end else s.last - start + 1
            inside = start <= s.first < end  # a stay begun before the window is produced by `enter`, not in place
            local.append(Stay(s.tensor, lo, hi, s.offset, not inside or s.created, s.over if inside else None))

        def kind(t: str) -> str:
            k = graph.tensor(t).kind
            produced = t in entry or t in produced_here
            if not produced:
                return "input"
            if k == "activation" and t not in reloaded_outside:
                return "activation"
            return "output"

        names = [*dict.fromkeys([*entry, *touched, *exit_])]
        start_token, done = f"{ENTER}.token", [f"{EXIT}.token.{i}" for i in range(n)]
        tensors = [Tensor(t, graph.size(t), kind(t)) for t in names]  # type: ignore[arg-type]
        tensors += [Tensor(start_token, 0, "activation")] + [Tensor(d, 0, "activation") for d in done]
        local_ops = [Operator(ENTER, "Enter", (), (*entry, start_token))]
        for i, o in enumerate(ops):
            op = graph.op(o)
            # the operator's own pairs: both tensors are in the window's graph, so the window may overwrite too
            local_ops.append(
                Operator(
                    o, op.op_type, (*op.inputs, start_token), (*op.outputs, done[i]), op.fused, op.nodes, op.inplace
                )
            )
        local_ops.append(Operator(EXIT, "Exit", (*exit_, *done), ()))
        sub = Graph.build(f"{graph.name}[{start}:{end}]", tensors, local_ops)
        order = (ENTER, *ops, EXIT)
        hint = Residency(order, tuple(local))
        offsets = [*entry.values(), *exit_.values(), *(s.offset for s in local)]
        instance = _rescaled(Instance.build(sub, accelerator, mode, order), offsets)
        return cls(start, end, instance, entry, exit_, hint)

    def fix_boundary(self, m: cpsat.CpSatModel) -> None:
        """The entry and exit tensors sit at their fixed offsets."""
        unit = self.instance.unit
        for t, offset in self.entry.items():
            if (t, ENTER) in m.addr:
                m.model.add(m.addr[t, ENTER] == offset // unit)
        for t, offset in self.exit.items():
            if (t, EXIT) in m.addr:
                m.model.add(m.addr[t, EXIT] == offset // unit)

    def cost(self, residency: Residency) -> int:
        """The model's objective (cost units) of a local residency: a reload per extra stay, a store per spill."""
        stays: dict[str, int] = defaultdict(int)
        for s in residency.segments:
            stays[s.tensor] += 1
        inst = self.instance
        total = 0
        for t in inst.tensors:
            breaks = max(0, stays[t] - 1)
            total += breaks * inst.reload_cost(t) + (inst.spill_cost(t) if breaks else 0)
        return total


def _rescaled(instance: Instance, offsets: Sequence[int]) -> Instance:
    """``instance`` with an address unit that also divides ``offsets`` (fixed boundary addresses, hint)."""
    a = instance.accelerator.alignment
    g = instance.unit // a
    g2 = reduce(math.gcd, (o // a for o in offsets), g) or 1
    if g2 == g:
        return instance
    capacity_bytes = instance.accelerator.scratchpad_bytes
    graph = instance.graph
    footprint = {t: -(-graph.size(t) // a) // g2 for t in instance.tensors}
    top = {t: max(-1, (capacity_bytes - graph.size(t)) // a) // g2 for t in instance.tensors}
    return replace(instance, unit=a * g2, capacity=-(-capacity_bytes // a) // g2, footprint=footprint, top=top)


# ------------------------------------------------------------------------ stitch
def stitch(residency: Residency, window: Window, local: Residency) -> Residency:
    """``residency`` with runs ``window.start .. window.end - 1`` replaced by a window's solution ``local``.

    Stays crossing a window boundary are joined: a local stay from ``enter`` continues the stay
    resident at the start, one reaching ``exit`` continues into the stay resident at the end (both
    at the fixed offsets); a local stay at ``exit`` alone is a load just before the run after the window.
    """
    a, b = window.start, window.end
    n = b - a
    order = (*residency.order[:a], *(o for o in local.order if o not in (ENTER, EXIT)), *residency.order[b:])
    kept: list[Stay] = []
    pre: dict[str, Stay] = {}
    post: dict[str, Stay] = {}
    for s in residency.segments:
        if s.last < a or s.first >= b:
            kept.append(s)
            continue
        if s.first < a:
            pre[s.tensor] = s
        if s.last >= b:
            post[s.tensor] = s
    out = list(kept)
    joined_pre: set[str] = set()
    joined_post: set[str] = set()
    for ls in local.segments:
        t = ls.tensor
        first = a + ls.first - 1
        last = a + ls.last - 1
        if ls.first == 0:  # continues the stay resident at the start
            p = pre[t]
            joined_pre.add(t)
            # the stay begun before the window keeps its start: its creation and what it was written over
            if ls.last == n + 1:
                q = post[t]
                joined_post.add(t)
                out.append(replace(p, last=q.last))
            elif ls.last >= 1:
                out.append(replace(p, last=last))
            else:
                out.append(replace(p, last=a - 1))
            continue
        if ls.last == n + 1:  # reaches into the stay resident at the end
            q = post[t]
            joined_post.add(t)
            if ls.first == n + 1:
                out.append(Stay(t, b, q.last, q.offset, False))
            else:
                out.append(Stay(t, first, q.last, q.offset, ls.created, ls.over))
            continue
        out.append(Stay(t, first, last, ls.offset, ls.created, ls.over))
    missing = (set(pre) - joined_pre) | (set(post) - joined_post)
    if missing:
        raise AssertionError(f"window [{a}, {b}) lost the boundary stays of {sorted(missing)}")
    return Residency(tuple(order), tuple(sorted(out, key=lambda s: (s.first, s.tensor))))


# -------------------------------------------------------------------------- cuts
def crossing(graph: Graph, order: Sequence[str]) -> list[int]:
    """Per boundary ``b`` (before run ``b``, ``0 <= b <= len(order)``): tensors with a use on either side."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for s, name in enumerate(order):
        o = graph.op(name)
        for t in (*o.inputs, *o.outputs):
            if graph.size(t) == 0:
                continue
            first.setdefault(t, s)
            last[t] = s
    delta = [0] * (len(order) + 2)
    for t, f in first.items():
        if last[t] > f:
            delta[f + 1] += 1
            delta[last[t] + 1] -= 1
    out, running = [], 0
    for d in delta[: len(order) + 1]:
        running += d
        out.append(running)
    return out


def choose_cuts(graph: Graph, order: Sequence[str], segment_ops: int, avoid: Sequence[int] = ()) -> list[int]:
    """Boundaries splitting ``order`` into windows of ``segment_ops // 2 .. segment_ops`` operators.

    Each window ends at the boundary, in that range, crossed by the fewest tensors (the latest on
    ties), skipping boundaries within a quarter window of ``avoid`` (the previous pass's cuts) so that
    consecutive passes cut in different places.
    """
    n = len(order)
    cross = crossing(graph, order)
    near: set[int] = set()
    margin = max(1, segment_ops // 4) if avoid else 0
    for c in avoid:
        near.update(range(c - margin + 1, c + margin))
    cuts: list[int] = []
    a = 0
    while n - a > segment_ops:
        lo, hi = a + max(1, segment_ops // 2), a + segment_ops
        candidates = [b for b in range(lo, hi + 1) if b not in near] or list(range(lo, hi + 1))
        b = min(candidates, key=lambda b: (cross[b], -b))
        cuts.append(b)
        a = b
    return cuts
