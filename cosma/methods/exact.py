"""Exact planning: the ``joint``, ``fixed-order`` and ``min-peak`` methods.

Each is a short driver of named phases (docs/formulation.md, "Solving"):

1. warm start: the best baseline (so the result is never worse than any of them); for min-peak, a
   plan without eviction on a minimum-peak order, when one fits;
2. instance: scale, index and window the graph (:class:`~cosma.formulation.instance.Instance`);
3. bound: the cheap cover and peak bounds (:mod:`cosma.formulation.bounds`), in joint mode also the
   neighbourhood bound (:mod:`cosma.methods.neighbourhood`); a warm start that meets
   them is optimal and no solver runs;
4. solve with the backend ``options.solver`` names (:mod:`cosma.backends`), with the warm start as hint,
   the best bound as floor and the best plan as ceiling:

   - a backend of the CP-SAT model (``cpsat``, the default): the capacity-only relaxation (its optimum is a
     bound), an allocation of the relaxation's residency (a plan that meets the bound ends the solve), then
     the full model;
   - a backend of the MILP (``highs``, ``cbc``): the COSMA MILP;

5. decode and validate: every residency becomes steps, replayed by :meth:`~cosma.plan.Plan.from_steps`;
6. finish: the best plan so far with the best proven bound, status and times.

The time limit covers all phases. Ctrl-C stops the running phase like the time limit does and the
best plan so far is returned. The summary carries status (``optimal`` / ``feasible`` / ``time-limit``),
the bound, the gap and the times; ``details`` lists the phases with their own status and bound.
With ``options.dump_model`` set, every model is also written to that folder in its backend's format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cosma.backends import DEFAULT_BACKEND, get_backend
from cosma.backends.base import Backend, Clock, Progress, SolveResult, SolverParams, dump_path
from cosma.contract import Load, Run
from cosma.errors import CosmaError, OptionError, PlanInvalid, ProvenNegative, Undecided
from cosma.formulation import bounds, cpsat, milp
from cosma.formulation.instance import Instance, Mode
from cosma.formulation.residency import Residency, residency_of_plan
from cosma.graph import Graph
from cosma.hardware import Accelerator, check_budget
from cosma.methods.baselines import baseline_order, best_baseline
from cosma.methods.peak_bound import peak_traffic
from cosma.methods.place import place
from cosma.options import Options
from cosma.plan import Plan
from cosma.progress import progress_line
from cosma.replace.engine import plan_fixed_order

#: Share of the time left that the relaxation, then the allocation, may take before the full model.
PHASE_SHARE = 0.3
#: Share of the time left that the neighbourhood bound may take in joint mode (usually well under a second).
NEIGHBOURHOOD_SHARE = 0.1
#: Share of the time left for the fixed-order problem on the warm start's order (joint mode, CP-SAT).
FIXED_ORDER_SHARE = 0.2


#: A lower bound on the extra bytes of every plan: ``(graph, accelerator, options, seconds) -> (bytes, details)``.
ExtraBound = Callable[[Graph, Accelerator, Options, float], tuple[int, dict[str, Any]]]


class NoEvictionFreePlan(CosmaError):
    """Min-peak mode: no plan runs the graph in the scratchpad without eviction."""


class NoEvictionFreePlanExists(NoEvictionFreePlan, ProvenNegative):
    """Min-peak mode: proven that every plan in this scratchpad evicts (``cosma compile`` exits 1)."""


class NoEvictionFreePlanFound(NoEvictionFreePlan, Undecided):
    """Min-peak mode: none found within the time limit, none ruled out (``cosma compile`` exits 3)."""


# ----------------------------------------------------------------------- methods
def solve_fixed_order(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """COSMA's FS mode: addresses and evictions for a given order.

    ``options.order``: ``"minpeak"`` (default: a minimum-peak order), ``"default"`` (the ONNX
    order) or a sequence of operator names.
    """
    return solve_exact(graph, accelerator, options, mode="fixed-order", order=fixed_order(graph, accelerator, options))


def solve_min_peak(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """No eviction at all: an order and addresses of least extent; fails if none fits the scratchpad."""
    return solve_exact(graph, accelerator, options, mode="min-peak")


def fixed_order(graph: Graph, accelerator: Accelerator, options: Options) -> tuple[str, ...]:
    choice = options.order
    if choice == "default":
        return graph.default_order
    if choice == "minpeak":
        return baseline_order(graph, accelerator, "minpeak", options).order
    if isinstance(choice, str):
        raise OptionError(f"unknown order {choice!r} for fixed-order; use minpeak, default or a list of operators")
    order = tuple(choice)
    if not graph.is_topological(order):
        raise OptionError("the given order is not a topological order of the graph's operators")
    return order


# ------------------------------------------------------------------------ search
@dataclass
class ExactSearch:
    """The state the phases share: the best plan, the best proven bound (model units), what happened."""

    instance: Instance
    solver: str
    clock: Clock
    best: Plan | None
    lower: int = 0
    progress: Any = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    timed_out: bool = False
    #: the folder every model built is written to (``options.dump_model``), or None
    dump_to: str | None = None

    @property
    def backend(self) -> Backend:
        return get_backend(self.solver)

    @property
    def min_peak(self) -> bool:
        return self.instance.mode == "min-peak"

    @property
    def scale(self) -> int:
        """Bytes per model unit of the objective."""
        return self.instance.unit if self.min_peak else self.instance.cost_unit

    def value(self, plan: Plan) -> int:
        """A plan's objective in model units: extra traffic, or (min-peak) its extent."""
        if self.min_peak:
            return -(-extent(plan) // self.instance.unit)
        return plan.extra_bytes // self.instance.cost_unit

    @property
    def upper(self) -> int | None:
        return None if self.best is None else self.value(self.best)

    def finished(self) -> bool:
        return self.interrupted or self.clock.left() <= 0.01 or (self.upper is not None and self.upper <= self.lower)

    def params(self, options: Options, share: float | None = None) -> SolverParams:
        left = self.clock.left() if share is None else min(self.clock.left(), max(1.0, share * self.clock.left()))
        return SolverParams(
            time_limit=max(left, 0.01), threads=options.threads, seed=options.seed, extra=dict(options.solver_params)
        )

    def solve(
        self,
        phase: str,
        model: Any,
        params: SolverParams,
        progress: Progress | None = None,
        *,
        hinted: bool = True,
    ) -> SolveResult:
        """Solve a phase's model with the search's backend, hinted from the best plan so far (when ``hinted``);
        first write the model out when asked to."""
        backend = self.backend
        if self.dump_to is not None:
            inst = self.instance
            backend.dump(model, dump_path(self.dump_to, f"{inst.graph.name}-{inst.mode}-{phase}", backend))
        hint = residency_of_plan(self.best) if hinted and self.best is not None else None
        return backend.solve(model, params, progress, hint)

    def offer(self, plan: Plan | None) -> None:
        if plan is None or (self.min_peak and plan.extra_bytes != 0):
            return
        if self.best is None or self.value(plan) < self.value(self.best):
            self.best = plan
            self.progress.update(incumbent=self.value(plan))

    def prove(self, bound: int | None) -> None:
        if bound is not None and bound > self.lower:
            self.lower = bound
            self.progress.update(bound=bound)

    def record(
        self, name: str, outcome: SolveResult, *, objective: bool = True, expect: int | None = None
    ) -> Plan | None:
        """Log a phase; decode, validate and offer its plan; keep its bound if the replay agrees with it.

        ``objective``: the outcome's objective and bound are the problem's (not an allocation's feasibility);
        ``expect``: the objective its plan must replay to (an allocation of a relaxation's residency).
        """
        self.interrupted |= outcome.interrupted
        self.timed_out |= outcome.status == "time-limit"
        entry: dict[str, Any] = {
            "phase": name,
            "status": outcome.status,
            "seconds": round(outcome.seconds, 3),
            **dict(outcome.details),
        }
        if objective:
            entry["objective"] = None if outcome.objective is None else outcome.objective * self.scale
            entry["bound"] = None if outcome.bound is None else outcome.bound * self.scale
        plan = decode(self.instance, outcome.residency, self.solver) if outcome.residency is not None else None
        trusted = True
        claimed = outcome.objective if objective else expect
        if plan is not None and claimed is not None and self.value(plan) != claimed:
            # the model disagrees with the replay: a bug (the tests assert it never happens); drop its bound
            entry["mismatch"] = {"model": claimed * self.scale, "replay": self.value(plan) * self.scale}
            trusted = False
        self.phases.append(entry)
        self.offer(plan)
        if objective and trusted:
            self.prove(outcome.bound)
        return plan


# ------------------------------------------------------------------------ driver
def solve_exact(
    graph: Graph,
    accelerator: Accelerator,
    options: Options,
    *,
    mode: Mode,
    order: Sequence[str] | None = None,
    extra_bound: ExtraBound | None = None,
) -> Plan:
    """The exact method in ``mode``; see the module docstring for the phases.

    ``extra_bound``: a further lower bound on the extra bytes of every plan, computed after the cover and
    peak bounds (the joint method passes the neighbourhood bound, which itself solves exact models).
    """
    clock = Clock(options.time_limit)
    solver = solver_name(options)
    check_budget(graph, accelerator)

    warm = warm_start(graph, accelerator, options, mode, order)
    warm_seconds = clock.elapsed()
    instance = Instance.build(graph, accelerator, mode, order)
    search = ExactSearch(instance, solver, clock, warm, dump_to=options.dump_model)
    search.lower = bounds.extent_bound(instance) if mode == "min-peak" else bounds.lower_bound(instance)
    if mode == "joint":  # the peak floor in whole tensors at their reload and store prices (issue 19)
        search.lower = max(search.lower, -(-peak_traffic(graph, accelerator, max_states=0)[0] // search.scale))
    search.phases.append(
        {
            "phase": "warm start",
            "seconds": round(warm_seconds, 3),
            "objective": None if warm is None else search.value(warm) * search.scale,
        }
    )
    search.phases.append(
        {
            "phase": "extent bound" if mode == "min-peak" else "cover and peak bounds",
            "bound": search.lower * search.scale,
            "seconds": round(clock.elapsed() - warm_seconds, 3),
        }
    )
    if extra_bound is not None and options.neighbourhood_bound and not search.finished():
        started = clock.elapsed()
        found, details = extra_bound(graph, accelerator, options, NEIGHBOURHOOD_SHARE * clock.left())
        search.lower = max(search.lower, -(-found // search.scale))  # traffic is a multiple of the cost unit
        search.phases.append(
            {"phase": "neighbourhood bound", "bound": found, **details, "seconds": round(clock.elapsed() - started, 3)}
        )
        search.interrupted |= bool(details.get("interrupted"))  # Ctrl-C during the bound: stop with the warm start
    live = progress_line(f"{graph.name}: {mode}/{solver}", options.quiet, options.time_limit, clock.started)
    with live as progress:
        search.progress = progress
        progress.set_phase(solver, search.scale)
        progress.update(incumbent=search.upper, bound=search.lower)
        try:
            if not search.finished():
                if search.backend.formulation == "cpsat" and not options.single_phase:
                    run_cpsat_phases(search, options)
                else:
                    run_single_model(search, options)
        except KeyboardInterrupt:  # between two solver calls: the best plan so far still stands
            search.interrupted = True
    return finish(search, options, warm)


def run_cpsat_phases(search: ExactSearch, options: Options) -> None:
    """Relaxation, allocation, full model; each starts from the best plan and bound of the ones before.

    In joint mode the fixed-order problem on the warm start's order comes first (:func:`improve_order`).
    """
    inst = search.instance
    if inst.mode == "joint":
        improve_order(search, options)
    if not search.min_peak and not search.finished():
        search.progress.set_phase("relaxation", search.scale)
        relaxed_model = cpsat.build(inst, addresses=False, lower=search.lower, upper=search.upper)
        relaxed = search.solve("relaxation", relaxed_model, search.params(options, PHASE_SHARE), search.progress)
        search.record("relaxation", replace(relaxed, residency=None))
        if relaxed.residency is not None and not search.finished():
            search.progress.set_phase("allocation", search.scale)
            placed = place(inst, relaxed.residency, search.params(options, PHASE_SHARE))
            if placed.status == "unknown" and not search.finished():  # the engine ran out of time: CP-SAT tries
                search.record("allocation: dsa", placed, objective=False)
                placing = cpsat.allocate(inst, relaxed.residency)
                placed = search.solve("allocation", placing, search.params(options, PHASE_SHARE), hinted=False)
            search.record("allocation", placed, objective=False, expect=relaxed.objective)
    if search.finished():
        return
    search.progress.set_phase(search.solver, search.scale)
    model = cpsat.build(inst, lower=search.lower, upper=search.upper)
    search.record(search.solver, search.solve(search.solver, model, search.params(options), search.progress))


class _IncumbentsOnly:
    """Passes a sub-problem's incumbents to the progress line, not its bounds (they bound another problem)."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress

    def set_phase(self, phase: str, scale: int) -> None:
        self.progress.set_phase(f"fixed order: {phase}", scale)

    def update(self, incumbent: float | None = None, bound: float | None = None) -> None:
        if incumbent is not None:
            self.progress.update(incumbent=incumbent)


def improve_order(search: ExactSearch, options: Options) -> None:
    """(Joint.) Solve the fixed-order problem on the warm start's order first, within a share of the time.

    Its optimum is a joint plan, often far better than the baseline that ordered the operators the same way,
    and it is quick to find: the joint phases then start from it. Its bound holds for that order only and is
    not kept.
    """
    if search.best is None:
        return
    inst = search.instance
    fixed = Instance.build(inst.graph, inst.accelerator, "fixed-order", search.best.order)
    share = Clock(min(search.clock.left(), max(1.0, FIXED_ORDER_SHARE * search.clock.left())))
    sub = ExactSearch(
        fixed, search.solver, share, search.best, progress=_IncumbentsOnly(search.progress), dump_to=search.dump_to
    )
    sub.lower = bounds.lower_bound(fixed)
    if not sub.finished():
        run_cpsat_phases(sub, options)
    search.phases.extend({**p, "phase": f"fixed order: {p['phase']}"} for p in sub.phases)
    search.interrupted |= sub.interrupted
    search.offer(sub.best)
    search.progress.set_phase(search.solver, search.scale)


def run_single_model(search: ExactSearch, options: Options) -> None:
    """One model with one backend: the CP-SAT model without phases, or the MILP."""
    inst = search.instance
    if search.backend.formulation == "cpsat":
        model: Any = cpsat.build(inst, lower=search.lower, upper=search.upper)
    else:
        model = milp.build(inst, lower=search.lower, upper=search.upper)
    search.record(search.solver, search.solve(search.solver, model, search.params(options), search.progress))


def solver_name(options: Options) -> str:
    """The registered backend ``options.solver`` names (``auto``: the default); unknown names are refused."""
    name = DEFAULT_BACKEND if options.solver in ("auto", "", None) else options.solver
    get_backend(name)  # the one-line error listing the known backends
    return name


def cpsat_backend(name: str) -> Backend:
    """The backend for a CP-SAT model: ``name``'s when it solves that model, else the default one."""
    backend = get_backend(name)
    return backend if backend.formulation == "cpsat" else get_backend(DEFAULT_BACKEND)


def decode(instance: Instance, residency: Residency, solver: str) -> Plan | None:
    """The plan of a residency, replayed; when MILP rounding breaks a rule, its addresses are placed again."""
    graph, accelerator = instance.graph, instance.accelerator
    method = f"{instance.mode}/{solver}"
    try:
        return residency.to_plan(graph, accelerator, method=method)
    except PlanInvalid:
        pass
    placed = cpsat_backend(solver).solve(cpsat.allocate(instance, residency), SolverParams(time_limit=10.0))
    if placed.residency is None:
        return None
    try:
        return placed.residency.to_plan(graph, accelerator, method=method)
    except PlanInvalid:
        return None


def finish(search: ExactSearch, options: Options, warm: Plan | None) -> Plan:
    """The best plan with the best bound, its status and the story of the solve."""
    inst, plan = search.instance, search.best
    if plan is None:
        return _no_plan(search, options)
    if search.upper is not None and search.upper <= search.lower:
        status = "optimal"
    elif search.interrupted:
        status = "feasible"
    elif search.timed_out or search.clock.left() <= 0.01:
        status = "time-limit"
    else:
        status = "feasible"
    details: dict[str, Any] = {
        "mode": inst.mode,
        "solver": search.solver,
        "found_by": plan.summary.method,
        "baseline": warm.summary.method if warm else None,
        "baseline_extra_bytes": warm.extra_bytes if warm else None,
        "phases": search.phases,
        "interrupted": search.interrupted,
        "instance": {
            "ops": len(inst.order),
            "tensors": len(inst.tensors),
            "unit": inst.unit,
            "capacity_units": inst.capacity,
        },
    }
    bound = min(search.lower * search.scale, plan.extra_bytes)
    if search.min_peak:
        size = extent(plan)
        details.update(
            extent_bytes=size, extent_bound_bytes=min(search.lower * search.scale, size), extent_status=status
        )
        status, bound = "optimal", 0  # no plan has less than no extra traffic
    return plan.with_summary(
        method=inst.mode, status=status, bound=bound, solve_seconds=search.clock.elapsed(), details=details
    )


def _no_plan(search: ExactSearch, options: Options) -> Plan:
    inst = search.instance
    name, size = inst.graph.name, inst.accelerator.scratchpad_bytes
    if search.interrupted:  # Ctrl-C with nothing to return: the caller sees the interrupt, not "no plan"
        raise KeyboardInterrupt
    proven = not search.timed_out and any(p.get("status") == "infeasible" for p in search.phases)
    if proven:
        raise NoEvictionFreePlanExists(
            f"{name} cannot run in {size} B without eviction (proven; no-eviction plans need at least "
            f"{search.lower * search.scale} B); use --method joint, or a larger scratchpad"
        )
    raise NoEvictionFreePlanFound(
        f"no plan without eviction found for {name} in {size} B within {options.time_limit:g} s "
        f"(a lower bound is {search.lower * search.scale} B); use --method joint, a larger scratchpad "
        "or a longer --time-limit"
    )


# -------------------------------------------------------------------- warm start
def warm_start(
    graph: Graph, accelerator: Accelerator, options: Options, mode: Mode, order: Sequence[str] | None
) -> Plan | None:
    """The best baseline (joint), the better policy on the order (fixed-order), or a plan without eviction
    on a minimum-peak order (min-peak; None when that plan needs eviction)."""
    if mode == "joint":
        return best_baseline(graph, accelerator, options)
    if mode == "fixed-order":
        order = tuple(order) if order is not None else graph.default_order
        plans = [
            plan_fixed_order(graph, accelerator, order, allocator=options.allocator, policy=p, method=f"fixed+{p}")
            for p in ("belady", "greedy")
        ]
        return min(plans, key=lambda p: p.extra_bytes)
    schedule = baseline_order(graph, accelerator, "minpeak", options)
    plan = plan_fixed_order(
        graph, accelerator, schedule.order, allocator=options.allocator, policy="belady", method="minpeak+belady"
    )
    return plan if plan.extra_bytes == 0 else None


def extent(plan: Plan) -> int:
    """The highest address any step of ``plan`` uses."""
    top = 0
    for st in plan.steps:
        if isinstance(st, Load):
            top = max(top, st.offset + plan.graph.size(st.tensor))
        elif isinstance(st, Run):
            top = max([top] + [off + plan.graph.size(t) for t, off in st.outputs])
    return top
