"""Running a bench: plan and replay every task on :func:`cosma.runner.run_tasks`, and collect the rows.

The phases of :func:`run_bench`: read the zoo selection, resolve the budgets of every (model, weights)
variant, plan every instance with every method (a process pool when ``jobs > 1``; budgets that coincide
in bytes are planned once), collect the rows in protocol order. One run is one :func:`cosma.compile`;
its plan is replayed by :func:`cosma.contract.replay`, and the run becomes one :class:`BenchRow`. A run
that raises becomes an ``error`` row, and a method the registry does not have yet a ``missing`` row:
nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

from cosma.contract import replay
from cosma.errors import OptionError, PlanInvalid
from cosma.hardware import Accelerator
from cosma.methods import compile as compile_graph
from cosma.runner import run_tasks
from harness.machine import machine_info
from harness.protocol import ERROR, INVALID, MISSING, BenchConfig, Planner, method_available, one_line, variant_label
from harness.records import BenchResult, BenchRow, BenchTask, TaskOutcome
from harness.tasks import budgets_job, cost_estimate, load_graph, plan_tasks, protocol_options, solve_options
from harness.zoo import ZooModel, select_models


def run_task(task: BenchTask, planners: Mapping[str, Planner] = MappingProxyType({})) -> TaskOutcome:
    """Plan one task and replay its plan; never raises (a failure is an ``error`` outcome).

    ``planners`` replace the registry's methods of their names (the regression test substitutes a
    deliberately worse one this way).
    """
    planner = planners.get(task.method)
    started = time.perf_counter()
    try:
        graph = load_graph(task.model.path, task.weights, task.inplace)
        started = time.perf_counter()  # total: the protocol's order search and the method, not the file's loading
        options = protocol_options(
            task, graph, Accelerator(task.scratchpad_bytes), solve_options(task.time_limit, task.seed)
        )
        if planner is None:
            plan = compile_graph(graph, task.scratchpad_bytes, method=task.method, options=options)
        else:
            plan = planner(graph, Accelerator(task.scratchpad_bytes), options)
        plan = plan.with_summary(total_seconds=time.perf_counter() - started)
        if task.plans_dir:
            plan.save(Path(task.plans_dir) / plan_file_name(task))
    except Exception as e:  # recorded as an error row: one failing run must not end the bench
        seconds = time.perf_counter() - started
        return TaskOutcome(task.method, ERROR, None, None, None, None, None, 0.0, seconds, one_line(e))
    s = plan.summary
    try:
        checked = replay(plan.to_dict())
        valid, message = True, ""
        if plan.accelerator.scratchpad_bytes != task.scratchpad_bytes:
            valid, message = False, f"plan is for {plan.accelerator.scratchpad_bytes} B, not {task.scratchpad_bytes} B"
        elif checked.extra_bytes != s.extra_bytes:
            valid, message = False, f"replay gives {checked.extra_bytes} extra bytes, the plan claims {s.extra_bytes}"
    except PlanInvalid as e:
        valid, message = False, f"replay: {e}"
    return TaskOutcome(
        s.method or task.method,
        s.status if valid else INVALID,
        valid,
        s.extra_bytes,
        s.compulsory_bytes,
        s.bound,
        s.gap,
        s.solve_seconds,
        s.total_seconds,
        message,
    )


def plan_file_name(task: BenchTask) -> str:
    """The saved plan's file name: one per (model, weights, bytes, method), as the tasks are keyed."""
    return f"{task.model.name}_{'w' if task.weights else 'a'}_{task.scratchpad_bytes}_{task.method}.json"


def run_bench(
    config: BenchConfig,
    zoo: Mapping[str, ZooModel],
    *,
    command: str = "",
    progress: Callable[[str], None] | None = None,
    planners: Mapping[str, Planner] | None = None,
) -> BenchResult:
    """Run the protocol over ``config``'s selection of ``zoo`` (phases in the module docstring).

    ``planners`` substitutes methods by name (tests only; it forces a serial run, since a
    substitute need not be picklable). ``progress`` receives one line per finished solve.
    """
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    planners = dict(planners or {})
    if config.plans_dir:
        Path(config.plans_dir).mkdir(parents=True, exist_ok=True)
    models = select_models(zoo, config.models)
    if not models:
        raise OptionError("the selection holds no model; name zoo models or groups with --models")
    used = dict.fromkeys(method for m in models for method in config.methods_for(m.group))
    missing = tuple(m for m in used if m not in planners and not method_available(m))
    jobs = 1 if planners else config.jobs

    variants = [(m, w) for m in models for w in config.weights]
    backend = "serial" if planners else "process"  # a substitute planner need not be picklable
    budget_list = run_tasks(budgets_job, [(m, w, config) for m, w in variants], backend=backend, jobs=jobs)
    budgets = {(b.model, b.weights): b for b in budget_list}
    tasks = plan_tasks(config, variants, budgets, missing, planners)

    def report(task: BenchTask, outcome: TaskOutcome) -> None:
        if progress is not None:
            extra = "-" if outcome.extra_bytes is None else f"{outcome.extra_bytes} B"
            progress(
                f"{task.model.name} {variant_label(task.weights)} {task.scratchpad_bytes} B {task.method}: "
                f"extra {extra}, {outcome.status}, {outcome.total_seconds:.1f} s"
            )

    def crashed(task: BenchTask, error: BaseException) -> TaskOutcome:
        message = f"worker process died: {one_line(error)}"
        return TaskOutcome(task.method, ERROR, None, None, None, None, None, 0.0, 0.0, message)

    ordered = sorted({t.index: t for t in tasks.values()}.values(), key=cost_estimate(budgets))
    done = run_tasks(
        functools.partial(run_task, planners=planners) if planners else run_task,
        ordered,
        backend=backend,
        jobs=jobs,
        on_result=report,
        on_crash=crashed,
    )
    outcomes = {t.index: o for t, o in zip(ordered, done)}

    rows = []
    for m, w in variants:
        mb = budgets[(m.name, w)]
        for name in config.budgets:
            size = 0 if mb.budgets is None else mb.budgets.get(name)
            for method in config.methods_for(m.group):
                if mb.budgets is None:
                    rows.append(
                        BenchRow(
                            m.name,
                            m.group,
                            w,
                            name,
                            0,
                            method,
                            method,
                            ERROR,
                            None,
                            None,
                            None,
                            None,
                            None,
                            0.0,
                            0.0,
                            f"budgets: {mb.error}",
                        )
                    )
                elif method in missing:
                    rows.append(
                        BenchRow(
                            m.name,
                            m.group,
                            w,
                            name,
                            size,
                            method,
                            method,
                            MISSING,
                            None,
                            None,
                            None,
                            None,
                            None,
                            0.0,
                            0.0,
                            "not registered in cosma.methods.METHODS",
                        )
                    )
                else:
                    task = tasks[(m.name, w, size, method)]
                    o = outcomes[task.index]
                    if task.method != method and not o.message:  # a shared run says so in the CSV
                        o = dataclasses.replace(o, message=f"the run of {task.method}, which resolved to {method}")
                    rows.append(BenchRow(m.name, m.group, w, name, size, method, *dataclasses.astuple(o)))
    return BenchResult(
        config,
        tuple(models),
        tuple(budgets[(m.name, w)] for m, w in variants),
        tuple(rows),
        missing,
        machine_info(),
        command,
        started_at,
        time.perf_counter() - started,
        (load_before, os.getloadavg()[0]),
    )
