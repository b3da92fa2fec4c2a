"""The COSMA evaluation protocol: what a bench run covers (methods, budgets, weights variants, groups).

Change the protocol here and only here; every other module of the harness reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from cosma.budgets import BUDGET_NAMES
from cosma.errors import OptionError
from cosma.methods import METHODS
from cosma.methods.baselines import BASELINES
from cosma.options import MINPEAK_TIME_LIMIT
from cosma.plan import Plan

#: The methods of the protocol, in table order: change the protocol here and only here.
#: ``fixed-order`` is the exact solver on the minimum-peak order; ``auto`` is what ``cosma compile``
#: chooses (the joint formulation, or divide and conquer on large graphs).
PROTOCOL_METHODS: tuple[str, ...] = (*BASELINES, "fixed-order", "auto")
#: Methods the protocol adds for the models of one zoo group, after :data:`PROTOCOL_METHODS`: divide and
#: conquer by name on the NAS-generated and randomly wired graphs it was built for (``auto`` picks it there
#: too on large graphs; the run is then shared, see :func:`shared_task_method`).
GROUP_METHODS: Mapping[str, tuple[str, ...]] = MappingProxyType({"nas": ("dc",), "random": ("dc",)})
#: Methods whose plans count as COSMA's in the headline (all others present count as baselines).
COSMA_METHODS: tuple[str, ...] = ("fixed-order", "joint", "dc", "auto")
#: Exact methods: ``auto`` is taken as available only once one of them is registered, since before
#: that :func:`cosma.compile` would answer ``auto`` with a baseline.
EXACT_METHODS: tuple[str, ...] = ("joint", "dc")
#: Methods (as a plan's summary names them) whose proven bound holds for every plan of the instance.
#: A ``fixed-order`` bound holds only for plans of its order, so it proves nothing about the instance.
GLOBAL_BOUND_METHODS: tuple[str, ...] = ("joint", "dc")
PROTOCOL_BUDGETS: tuple[str, ...] = BUDGET_NAMES
#: Weights in the scratchpad (True) and activation-only (False).
WEIGHT_VARIANTS: tuple[bool, ...] = (True, False)
#: Bytes per element of every tensor (an int8 accelerator, as in the COSMA evaluation).
ELEMENT_BYTES = 1
#: Zoo groups the protocol runs by default, and the groups the headline averages over.
PROTOCOL_GROUPS: tuple[str, ...] = ("human", "nas", "random", "everyday")
HEADLINE_GROUPS: tuple[str, ...] = ("human", "nas")
#: The COSMA paper's average reductions at M_R against the best baseline, for comparison.
PAPER_REDUCTION = {"human": 0.84, "nas": 0.85}
#: Seconds per solve in a default run (a full run then fits in an hour on two cores).
DEFAULT_TIME_LIMIT = 30.0
#: Seconds for each minimum-peak search behind M_P; fixed, so that a run's budgets do not depend
#: on the per-solve time limit, and the same as the baselines' share (``cosma.options.MINPEAK_TIME_LIMIT``),
#: so that budgets, baselines and fixed-order run one order. The search stops on its work budget
#: (``WORK_PER_SECOND`` units per second of this limit) and the clock is its safety net: 20 M units
#: take 0-2.8 s here. With 10 s (10 M units since commit e3f9003) RandWire-BA without weights stopped at
#: M_P = 1,589,952 B instead of the reference's 1,467,648 B; at 20 M units every M_P of the zoo is the reference's.
BUDGET_TIME_LIMIT = MINPEAK_TIME_LIMIT
#: Models drawn in the plots when they are part of the run (graphs whose three budgets differ).
PLOT_MODELS: tuple[str, ...] = ("densenet121", "vit_b_16", "nasnet_a", "pnasnet5", "r2plus1d_18", "transformer")

MISSING = "missing"  # the method is not registered (yet)
ERROR = "error"  # the run raised
INVALID = "invalid"  # the plan failed the replay

#: The bench's command line, as the report and the messages name it.
COMMAND = "python benchmarks/bench.py"

Planner = Callable[..., Plan]  # (graph, accelerator, options) -> Plan, as in cosma.methods.METHODS

#: The source tree around ``benchmarks/`` (holding ``models/``, ``docs/``, ``solvers/``): read from, and
#: written to only when a run is asked to (``--update-docs``, ``--update-reference``).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def repo_root() -> Path:
    """The source tree around ``benchmarks/`` (see :data:`SOURCE_ROOT`)."""
    return SOURCE_ROOT


def method_available(method: str) -> bool:
    """Whether ``method`` can run now (``auto`` needs an exact method behind it)."""
    if method == "auto":
        return "auto" in METHODS or any(m in METHODS for m in EXACT_METHODS)
    return method in METHODS


def variant_label(weights: bool) -> str:
    return "weights" if weights else "no-weights"


def instance_key(model: str, weights: bool, budget: str) -> str:
    """``resnet50/M_R`` (weights in the scratchpad) or ``resnet50/M_R/no-weights``."""
    return f"{model}/{budget}" + ("" if weights else "/no-weights")


@dataclass(frozen=True)
class BenchConfig:
    """What one bench run covers and how long each solve may take.

    A model of group ``g`` runs ``methods`` and then ``group_methods[g]`` (:meth:`methods_for`); the
    protocol's :data:`GROUP_METHODS` by default, none when the methods are named explicitly
    (``benchmarks/bench.py`` clears it for ``--methods``).
    """

    models: tuple[str, ...] = ()  # names or groups; empty: the protocol's groups
    methods: tuple[str, ...] = PROTOCOL_METHODS
    group_methods: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(GROUP_METHODS), hash=False)
    budgets: tuple[str, ...] = PROTOCOL_BUDGETS
    weights: tuple[bool, ...] = WEIGHT_VARIANTS
    time_limit: float = DEFAULT_TIME_LIMIT
    budget_time_limit: float = BUDGET_TIME_LIMIT
    jobs: int = 1
    seed: int = 0
    # off: COSMA's protocol (the budgets and solvers/reference.json are without in-place operators)
    inplace: bool = False
    plans_dir: str = ""  # where every plan is saved as JSON; empty: nowhere

    def __post_init__(self) -> None:
        bad = [b for b in self.budgets if b not in BUDGET_NAMES]
        if bad or not self.budgets:
            raise OptionError(f"unknown budget(s) {', '.join(bad) or '(none)'}; choose from {', '.join(BUDGET_NAMES)}")
        if not self.methods:
            raise OptionError("no method to run; name one or more (see `cosma methods`)")
        if not self.weights:
            raise OptionError("no weights variant to run; choose with weights, without, or both")
        if self.jobs < 1:
            raise OptionError(f"--jobs is {self.jobs}; give at least 1")

    def methods_for(self, group: str) -> tuple[str, ...]:
        """The methods a model of ``group`` runs, in table order."""
        return tuple(dict.fromkeys((*self.methods, *self.group_methods.get(group, ()))))

    @property
    def all_methods(self) -> tuple[str, ...]:
        """Every method some group runs, in table order."""
        return tuple(dict.fromkeys((*self.methods, *(m for ms in self.group_methods.values() for m in ms))))


def one_line(error: BaseException) -> str:
    """An exception as one line of at most 300 characters, for a row's message."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300]
