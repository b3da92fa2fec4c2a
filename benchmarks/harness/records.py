"""What a bench run records: its tasks, one row per run of the protocol, the budgets of each variant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cosma.budgets import GraphBudgets
from harness.protocol import GLOBAL_BOUND_METHODS, BenchConfig, instance_key
from harness.zoo import ZooModel


@dataclass(frozen=True)
class BenchTask:
    """One solve: ``model`` (its ``weights`` variant) with ``method`` for ``scratchpad_bytes``."""

    index: int
    model: ZooModel
    weights: bool
    scratchpad_bytes: int
    method: str
    time_limit: float
    seed: int = 0
    order: tuple[str, ...] = ()  # fixed-order: the variant's minimum-peak order
    inplace: bool = False  # the graph declares the front end's in-place pairs
    plans_dir: str = ""  # save the plan there (checkplan.py can then check it outside the harness)


@dataclass(frozen=True)
class BenchRow:
    """One run of the protocol. ``status`` is the plan's, or ``missing``, ``error`` or ``invalid``."""

    model: str
    group: str
    weights: bool
    budget: str
    scratchpad_bytes: int
    method: str
    resolved_method: str  # what ran: for ``auto`` the method it chose
    status: str
    valid: bool | None  # None: no plan
    extra_bytes: int | None
    compulsory_bytes: int | None
    bound: int | None
    gap: float | None
    solve_seconds: float
    total_seconds: float
    message: str = ""

    @property
    def key(self) -> str:
        return instance_key(self.model, self.weights, self.budget)

    @property
    def planned(self) -> bool:
        """A valid plan with its traffic."""
        return self.valid is True and self.extra_bytes is not None

    @property
    def instance_bound(self) -> int | None:
        """The run's bound if it holds for every plan of the instance (see :data:`GLOBAL_BOUND_METHODS`)."""
        return self.bound if self.planned and base_method(self.resolved_method) in GLOBAL_BOUND_METHODS else None


def base_method(name: str) -> str:
    """``dc`` for ``dc/window``: the method a plan's summary names, without its detail."""
    return name.split("/", 1)[0]


@dataclass(frozen=True)
class ModelBudgets:
    """The budgets of one (model, weights) variant, or why they could not be computed.

    ``order`` is the minimum-peak order whose peak is ``M_P``: the order fixed-order runs on;
    ``auto_method`` the method ``auto`` stands for on this graph under the protocol's options.
    """

    model: str
    weights: bool
    budgets: GraphBudgets | None
    ops: int = 0
    error: str = ""
    order: tuple[str, ...] = ()
    auto_method: str = ""


@dataclass(frozen=True)
class BenchResult:
    config: BenchConfig
    models: tuple[ZooModel, ...]
    budgets: tuple[ModelBudgets, ...]
    rows: tuple[BenchRow, ...]
    missing_methods: tuple[str, ...]
    machine: Mapping[str, str]
    command: str
    started: str
    seconds: float
    load_average: tuple[float, float]  # 1-minute load average at the start and at the end

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods with rows in this run (those of some model's group), in table order."""
        ran = {r.method for r in self.rows}
        return tuple(m for m in self.config.all_methods if m in ran)


@dataclass(frozen=True)
class TaskOutcome:
    """What a worker sends back for one task (the row minus what the driver knows)."""

    resolved_method: str
    status: str
    valid: bool | None
    extra_bytes: int | None
    compulsory_bytes: int | None
    bound: int | None
    gap: float | None
    solve_seconds: float
    total_seconds: float
    message: str = ""
