"""The benchmark harness: the COSMA evaluation protocol on the model zoo, and the regression guard.

It lives outside the installed package (``benchmarks/``): it reads the zoo from ``models/`` of the
source tree and writes only where it is told (``benchmarks/bench.py --out DIR``). One concern per module:

- :mod:`harness.protocol`: what a run covers (methods, budgets, weights variants, groups), its config;
- :mod:`harness.zoo`: the model registry ``models/zoo.py`` and the selection of models;
- :mod:`harness.records`: tasks, rows, budgets and the result of a run;
- :mod:`harness.tasks`: the budgets of each variant, the per-method options, the solves a run needs;
- :mod:`harness.run`: planning and replaying the tasks on :func:`cosma.runner.run_tasks`, the rows;
- :mod:`harness.machine`: where a run happened;
- :mod:`harness.stats`: the headline reductions, instance summaries, times, divide and conquer;
- :mod:`harness.reference`: ``solvers/reference.json``, the comparison and the merge;
- :mod:`harness.plots`, :mod:`harness.report`, :mod:`harness.outputs`: the figures, the markdown,
  and the files of a run.

This module gathers their public names, for scripts and tests that want the whole harness.

Example:
    >>> row = BenchRow("m", "human", True, "M_R", 100, "default+belady", "default+belady", "heuristic",
    ...                True, 40, 10, None, None, 0.1, 0.1)
    >>> ref = merge_reference(Reference(), [row]).reference
    >>> ref.entries["m/M_R"].best_extra_bytes, compare_to_reference([row], ref)
    (40, [])
    >>> worse = dataclasses.replace(row, extra_bytes=50)
    >>> [v.kind for v in compare_to_reference([worse], ref)]
    ['worse']
"""

from __future__ import annotations

import dataclasses  # noqa: F401  (the docstring example uses it)

from harness.machine import machine_info
from harness.outputs import CSV_COLUMNS, to_csv, write_outputs
from harness.plots import plot_figures
from harness.protocol import (
    BASELINES,
    BUDGET_TIME_LIMIT,
    COMMAND,
    COSMA_METHODS,
    DEFAULT_TIME_LIMIT,
    ELEMENT_BYTES,
    ERROR,
    GLOBAL_BOUND_METHODS,
    GROUP_METHODS,
    HEADLINE_GROUPS,
    INVALID,
    MISSING,
    PROTOCOL_BUDGETS,
    PROTOCOL_GROUPS,
    PROTOCOL_METHODS,
    SOURCE_ROOT,
    WEIGHT_VARIANTS,
    BenchConfig,
    Planner,
    instance_key,
    method_available,
    repo_root,
    variant_label,
)
from harness.records import BenchResult, BenchRow, BenchTask, ModelBudgets, TaskOutcome
from harness.reference import (
    Merge,
    Reference,
    ReferenceEntry,
    Violation,
    compare_to_reference,
    merge_reference,
    uncovered,
)
from harness.report import render_markdown
from harness.run import run_bench, run_task
from harness.stats import (
    DC_GROUPS,
    DC_HEADING,
    DcInstance,
    DcSummary,
    InstanceSummary,
    Reduction,
    change,
    dc_instances,
    dc_summary,
    instances,
    reduction,
    reductions,
    time_stats,
)
from harness.tasks import plan_tasks, protocol_options, shared_task_method, solve_options
from harness.zoo import ZooModel, load_zoo, select_models

__all__ = [
    "BASELINES",
    "BUDGET_TIME_LIMIT",
    "COMMAND",
    "COSMA_METHODS",
    "CSV_COLUMNS",
    "DC_GROUPS",
    "DC_HEADING",
    "DEFAULT_TIME_LIMIT",
    "ELEMENT_BYTES",
    "ERROR",
    "GLOBAL_BOUND_METHODS",
    "GROUP_METHODS",
    "HEADLINE_GROUPS",
    "INVALID",
    "MISSING",
    "PROTOCOL_BUDGETS",
    "PROTOCOL_GROUPS",
    "PROTOCOL_METHODS",
    "SOURCE_ROOT",
    "WEIGHT_VARIANTS",
    "BenchConfig",
    "BenchResult",
    "BenchRow",
    "BenchTask",
    "DcInstance",
    "DcSummary",
    "InstanceSummary",
    "Merge",
    "ModelBudgets",
    "Planner",
    "Reduction",
    "Reference",
    "ReferenceEntry",
    "TaskOutcome",
    "Violation",
    "ZooModel",
    "change",
    "compare_to_reference",
    "dc_instances",
    "dc_summary",
    "instance_key",
    "instances",
    "load_zoo",
    "machine_info",
    "merge_reference",
    "method_available",
    "plan_tasks",
    "plot_figures",
    "protocol_options",
    "reduction",
    "reductions",
    "render_markdown",
    "repo_root",
    "run_bench",
    "run_task",
    "select_models",
    "shared_task_method",
    "solve_options",
    "time_stats",
    "to_csv",
    "uncovered",
    "variant_label",
    "write_outputs",
]
