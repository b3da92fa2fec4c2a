"""Exact planning: the ``joint``, ``fixed-order`` and ``min-peak`` methods.

Each is a short driver of named phases (docs/formulation.md, "Solving"):

1. warm start: the best baseline (never worse than any of them; for min-peak, a no-eviction plan);
2. instance: scale, index and window the graph (:class:`~cosma.formulation.instance.Instance`);
3. bound: the cheap forced-spanning cover (:mod:`cosma.formulation.bounds`); when the warm start meets
   it, it is optimal and no solver runs;
4. solve: the chosen backend (``cpsat`` by default; ``highs`` or ``cbc`` for the COSMA MILP) with the
   warm start as hint, the bound as a floor and the warm start's cost as a ceiling, under the time
   limit, with a live progress line; Ctrl-C stops it like the time limit does;
5. decode and validate: the residency becomes steps, replayed by :meth:`~cosma.plan.Plan.from_steps`;
6. choose: the better of the solver's plan and the warm start, with the best proven bound.

The result's summary carries status (``optimal`` / ``feasible`` / ``time-limit``), the bound, the gap
and the times; ``details`` holds the solver's own objective and bound, the phases and the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cosma.check import PlanInvalid
from cosma.errors import CosmaError, OptionError
from cosma.formulation import bounds, cpsat, milp
from cosma.formulation.instance import Instance, Mode
from cosma.formulation.progress import progress_line
from cosma.formulation.residency import Residency, residency_of_plan
from cosma.formulation.run import Clock, Outcome, SolverParams
from cosma.graph import Graph
from cosma.plan import Accelerator, Plan
from cosma.replace.engine import check_budget, plan_fixed_order

if TYPE_CHECKING:
    from cosma.methods import Options

#: Backends, the default first (docs/formulation.md, "Which formulation" gives the measurements).
SOLVERS: tuple[str, ...] = ("cpsat", "highs", "cbc")
DEFAULT_SOLVER = "cpsat"


class NoEvictionFreePlan(CosmaError):
    """Min-peak mode: no plan runs the graph in the scratchpad without eviction."""


# ----------------------------------------------------------------------- methods
def solve_joint(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """Order, addresses and evictions together, minimising extra off-chip traffic."""
    return solve_exact(graph, accelerator, options, mode="joint")


def solve_fixed_order(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """COSMA's FS mode: the order is given (``options.extra["order"]``, default the ONNX order)."""
    return solve_exact(graph, accelerator, options, mode="fixed-order", order=options.extra.get("order"))


def solve_min_peak(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """No eviction at all: an order and addresses of least extent; fails if none fits the scratchpad."""
    return solve_exact(graph, accelerator, options, mode="min-peak")


# ------------------------------------------------------------------------ driver
def solve_exact(
    graph: Graph,
    accelerator: Accelerator,
    options: Options,
    *,
    mode: Mode,
    order: Sequence[str] | None = None,
) -> Plan:
    """The exact method in ``mode``; see the module docstring for the phases."""
    clock = Clock(options.time_limit)
    solver_name = DEFAULT_SOLVER if options.solver in ("auto", "", None) else options.solver
    if solver_name not in SOLVERS:
        raise OptionError(f"unknown solver {options.solver!r}; choose one of: auto, {', '.join(SOLVERS)}")
    check_budget(graph, accelerator)
    if order is not None and not graph.is_topological(order):
        raise OptionError("the given order is not a topological order of the graph's operators")

    warm = warm_start(graph, accelerator, options, mode, order, clock)
    instance = Instance.build(graph, accelerator, mode, order)
    phases: list[dict[str, Any]] = []
    title = f"{graph.name}: {mode}/{solver_name}"
    if mode == "min-peak":
        return _min_peak(instance, options, solver_name, warm, clock, phases, title)

    lower = bounds.eviction_bound(instance)
    phases.append({"phase": "cover bound", "bound": lower * instance.cost_unit, "seconds": round(clock.elapsed(), 3)})
    assert warm is not None  # every joint / fixed-order problem that passes check_budget has a baseline
    upper = warm.extra_bytes // instance.cost_unit
    outcome: Outcome | None = None
    plan: Plan | None = None
    if upper > lower:
        with progress_line(title, options.quiet) as progress:
            progress.update(incumbent=upper, bound=lower)
            if solver_name == "cpsat" and not options.extra.get("single_phase"):
                plan, outcome = _cpsat_phases(instance, options, clock, progress, warm, lower, phases)
            else:
                progress.set_phase(solver_name, instance.cost_unit)
                outcome = _run(instance, solver_name, _params(options, clock), progress, residency_of_plan(warm),
                               lower, upper)
                phases.append(_phase(solver_name, outcome, instance.cost_unit))
                plan = _decode(instance, outcome, solver_name)
    if plan is not None and outcome is not None and plan.extra_bytes != outcome.objective * instance.cost_unit:
        # the model disagrees with the replay: its bound cannot be trusted (a bug; tests assert it never happens)
        phases.append({"phase": "model mismatch", "objective": outcome.objective * instance.cost_unit,
                       "replayed": plan.extra_bytes})
        outcome = replace(outcome, bound=None, status="feasible")
    best_bound = max([lower] + ([outcome.bound] if outcome and outcome.bound is not None else []))
    chosen = plan if plan is not None and plan.extra_bytes < warm.extra_bytes else warm
    status = "optimal" if outcome is None else _status(outcome)
    return _finish(chosen, instance, solver_name, status, best_bound * instance.cost_unit, outcome, warm, phases,
                   clock)


def _cpsat_phases(instance: Instance, options: Options, clock: Clock, progress: Any, warm: Plan, lower: int,
                  phases: list[dict[str, Any]]) -> tuple[Plan | None, Outcome]:
    """CP-SAT in three phases (docs/formulation.md, "Solving"): the capacity-only relaxation, an allocation of
    its residency (a matching plan ends the solve), then the full model from the best plan so far.

    The relaxation's bound is valid for the full model, so each phase starts where the last one left off.
    """
    scale = instance.cost_unit
    best = warm
    upper = warm.extra_bytes // scale
    progress.set_phase("relaxation", scale)
    share = max(1.0, 0.3 * clock.left())
    relaxed_model = cpsat.build(instance, addresses=False, lower=lower, upper=upper)
    cpsat.add_hint(relaxed_model, residency_of_plan(warm))
    relaxed = cpsat.solve(relaxed_model, _params(options, clock, share), progress)
    phases.append(_phase("relaxation", relaxed, scale))
    if relaxed.bound is not None:
        lower = max(lower, relaxed.bound)
    outcome = relaxed
    if relaxed.interrupted:
        return None, replace(relaxed, bound=lower)
    if relaxed.residency is not None:
        progress.set_phase("allocation", scale)
        placing = cpsat.allocate(instance, relaxed.residency)
        placed = cpsat.solve(placing, _params(options, clock, max(1.0, 0.3 * clock.left())),
                             decoder=lambda m, value: cpsat.placed(m, relaxed.residency, value))
        phases.append({**_phase("allocation", placed, scale), "objective": None, "bound": None})
        if placed.residency is not None:
            candidate = placed.residency.to_plan(instance.graph, instance.accelerator, method=f"{instance.mode}/cpsat")
            if candidate.extra_bytes < best.extra_bytes:
                best = candidate
                progress.update(incumbent=best.extra_bytes // scale)
        if placed.interrupted:
            return (best if best is not warm else None), replace(relaxed, status="feasible", bound=lower,
                                                                  interrupted=True)
    if best.extra_bytes // scale <= lower or clock.left() <= 0.01:
        status = "optimal" if best.extra_bytes // scale <= lower else "time-limit"
        return (best if best is not warm else None), replace(outcome, status=status, bound=lower,
                                                             objective=best.extra_bytes // scale)
    progress.set_phase("cpsat", scale)
    full_model = cpsat.build(instance, lower=lower, upper=best.extra_bytes // scale)
    cpsat.add_hint(full_model, residency_of_plan(best))
    full = cpsat.solve(full_model, _params(options, clock), progress)
    phases.append(_phase("cpsat", full, scale))
    full = replace(full, bound=lower if full.bound is None else max(full.bound, lower))
    plan = _decode(instance, full, "cpsat")
    if plan is None or plan.extra_bytes >= best.extra_bytes:
        plan = best if best is not warm else None
        full = replace(full, objective=best.extra_bytes // scale)
    return plan, full


def _run(instance: Instance, solver_name: str, params: SolverParams, progress: Any, hint: Residency | None,
         lower: int, upper: int | None) -> Outcome:
    if solver_name == "cpsat":
        model = cpsat.build(instance, lower=lower, upper=upper)
        if hint is not None:
            cpsat.add_hint(model, hint)
        return cpsat.solve(model, params, progress)
    model = milp.build(instance, lower=lower, upper=upper)
    return milp.solve(model, params, solver_name, progress, hint)


def _params(options: Options, clock: Clock, share: float | None = None) -> SolverParams:
    left = clock.left() if share is None else min(clock.left(), share)
    return SolverParams(time_limit=max(left, 0.01), threads=options.threads, seed=options.seed,
                        extra=dict(options.solver_params))


def _phase(name: str, outcome: Outcome, scale: int) -> dict[str, Any]:
    return {
        "phase": name,
        "status": outcome.status,
        "objective": None if outcome.objective is None else outcome.objective * scale,
        "bound": None if outcome.bound is None else outcome.bound * scale,
        "seconds": round(outcome.seconds, 3),
        **({"interrupted": True} if outcome.interrupted else {}),
        **dict(outcome.details),
    }


def _status(outcome: Outcome) -> str:
    if outcome.status == "optimal":
        return "optimal"
    if outcome.status == "time-limit":
        return "time-limit"
    return "feasible"


def _decode(instance: Instance, outcome: Outcome, solver_name: str) -> Plan | None:
    """The solver's plan, replayed; a MILP solution whose rounding breaks a rule gets its addresses re-placed."""
    if outcome.residency is None:
        return None
    graph, accelerator = instance.graph, instance.accelerator
    method = f"{instance.mode}/{solver_name}"
    try:
        return outcome.residency.to_plan(graph, accelerator, method=method)
    except PlanInvalid:
        if instance.mode == "min-peak":
            return None
    model = cpsat.allocate(instance, outcome.residency)
    placed = cpsat.solve(model, SolverParams(time_limit=10.0), decoder=lambda m, value: cpsat.placed(
        m, outcome.residency, value))
    if placed.residency is None:
        return None
    try:
        return placed.residency.to_plan(graph, accelerator, method=method)
    except PlanInvalid:
        return None


def _finish(plan: Plan, instance: Instance, solver_name: str, status: str, bound_bytes: int,
            outcome: Outcome | None, warm: Plan | None, phases: list[dict[str, Any]], clock: Clock,
            extra: dict[str, Any] | None = None) -> Plan:
    bound_bytes = min(bound_bytes, plan.extra_bytes)
    if bound_bytes == plan.extra_bytes:
        status = "optimal"
    details = {
        "mode": instance.mode,
        "solver": solver_name,
        "solver_status": outcome.status if outcome else "not run",
        "objective": plan.extra_bytes,
        "from": plan.summary.method,
        "baseline": warm.summary.method if warm else None,
        "baseline_extra_bytes": warm.extra_bytes if warm else None,
        "phases": phases,
        "interrupted": bool(outcome and outcome.interrupted),
        "instance": {"ops": len(instance.order), "tensors": len(instance.tensors), "unit": instance.unit,
                     "capacity_units": instance.capacity},
        **(extra or {}),
    }
    return plan.with_summary(
        method=instance.mode,
        status=status,
        bound=bound_bytes,
        solve_seconds=clock.elapsed(),
        details=details,
    )


# -------------------------------------------------------------------- warm start
def warm_start(graph: Graph, accelerator: Accelerator, options: Options, mode: Mode,
               order: Sequence[str] | None, clock: Clock) -> Plan | None:
    """The plan the solver starts from: the best baseline (joint), the best policy on the order (fixed-order),
    or a no-eviction plan on a minimum-peak order (min-peak; None when that order does not fit)."""
    from cosma.baselines import best_baseline

    limit = min(float(options.extra.get("minpeak_time_limit", 10.0)), max(0.1, 0.2 * options.time_limit))
    quick = replace(options, extra={**options.extra, "minpeak_time_limit": limit})
    if mode == "joint":
        return best_baseline(graph, accelerator, quick)
    if mode == "fixed-order":
        order = tuple(order) if order is not None else graph.default_order
        plans = [plan_fixed_order(graph, accelerator, order, allocator=options.allocator, policy=p,
                                  method=f"fixed+{p}") for p in ("belady", "greedy")]
        return min(plans, key=lambda p: p.extra_bytes)
    from cosma.schedule import min_peak_order

    schedule = min_peak_order(graph, time_limit=limit)
    plan = plan_fixed_order(graph, accelerator, schedule.order, allocator=options.allocator, policy="belady",
                            method="minpeak+belady")
    return plan if plan.extra_bytes == 0 else None


# ---------------------------------------------------------------------- min-peak
def _extent(plan: Plan) -> int:
    """Highest address any step of ``plan`` uses."""
    from cosma.plan import Load, Run

    top = 0
    for st in plan.steps:
        if isinstance(st, Load):
            top = max(top, st.offset + plan.graph.size(st.tensor))
        elif isinstance(st, Run):
            top = max([top] + [off + plan.graph.size(t) for t, off in st.outputs])
    return top


def _min_peak(instance: Instance, options: Options, solver_name: str, warm: Plan | None, clock: Clock,
              phases: list[dict[str, Any]], title: str) -> Plan:
    unit = instance.unit
    lower = bounds.extent_bound(instance)
    phases.append({"phase": "extent bound", "bound": lower * unit})
    upper = -(-_extent(warm) // unit) if warm is not None else None
    outcome = None
    if upper is None or upper > lower:
        params = _params(options, clock)
        with progress_line(title, options.quiet) as progress:
            progress.set_phase(solver_name, unit)
            outcome = _run(instance, solver_name, params, progress, residency_of_plan(warm) if warm else None,
                           lower, upper)
        phases.append(_phase(solver_name, outcome, unit))
    plan = _decode(instance, outcome, solver_name) if outcome else None
    candidates = [p for p in (plan, warm) if p is not None and p.extra_bytes == 0]
    graph = instance.graph
    if not candidates:
        if outcome is not None and outcome.status == "infeasible":
            raise NoEvictionFreePlan(
                f"{graph.name} cannot run in {instance.accelerator.scratchpad_bytes} B without eviction "
                f"(proven; it needs at least {lower * unit} B); use --method joint, or a larger scratchpad")
        raise NoEvictionFreePlan(
            f"no plan without eviction found for {graph.name} in {instance.accelerator.scratchpad_bytes} B "
            f"within {options.time_limit:g} s; use --method joint, a larger scratchpad or a longer --time-limit")
    chosen = min(candidates, key=_extent)
    extent = _extent(chosen)
    extent_bound = max([lower] + ([outcome.bound] if outcome and outcome.bound is not None else [])) * unit
    extent_bound = min(extent_bound, extent)
    status = "optimal" if outcome is None else _status(outcome)
    extra = {"extent_bytes": extent, "extent_bound_bytes": extent_bound,
             "extent_status": "optimal" if extent_bound >= extent or (outcome and outcome.status == "optimal")
             else status}
    return _finish(chosen, instance, solver_name, "optimal", 0, outcome, warm, phases, clock, extra)
