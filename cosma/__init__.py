"""cosma: joint operator scheduling, scratchpad allocation and tensor replacement for DNN accelerators.

Public API::

    import cosma
    graph = cosma.load_onnx("model.onnx")
    plan = cosma.compile(graph, 512 * 1024)
    plan.save("plan.json")
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below load on first use (module __getattr__): `cosma --help` stays fast
    from cosma.budgets import Budgets, resolve_budget
    from cosma.contract import Free, Load, Run, Store, replay
    from cosma.errors import BudgetError, CosmaError, ModelError, OptionError, PlanInvalid
    from cosma.execute import execute
    from cosma.frontend import load_model, load_onnx, load_tflite
    from cosma.graph import Graph, Lifetime, Operator, Tensor
    from cosma.hardware import Accelerator
    from cosma.methods import METHODS, compile
    from cosma.methods.baselines import best_baseline
    from cosma.options import Options
    from cosma.plan import Plan, Summary
    from cosma.schedule import ScheduleResult, min_peak_order
    from cosma.units import parse_size

#: Where each public name lives.
_HOMES = {
    "Budgets": "cosma.budgets",
    "resolve_budget": "cosma.budgets",
    "Free": "cosma.contract",
    "Load": "cosma.contract",
    "Run": "cosma.contract",
    "Store": "cosma.contract",
    "replay": "cosma.contract",
    "BudgetError": "cosma.errors",
    "CosmaError": "cosma.errors",
    "ModelError": "cosma.errors",
    "OptionError": "cosma.errors",
    "PlanInvalid": "cosma.errors",
    "execute": "cosma.execute",
    "load_model": "cosma.frontend",
    "load_onnx": "cosma.frontend",
    "load_tflite": "cosma.frontend",
    "Graph": "cosma.graph",
    "Lifetime": "cosma.graph",
    "Operator": "cosma.graph",
    "Tensor": "cosma.graph",
    "Accelerator": "cosma.hardware",
    "METHODS": "cosma.methods",
    "compile": "cosma.methods",
    "best_baseline": "cosma.methods.baselines",
    "Options": "cosma.options",
    "Plan": "cosma.plan",
    "Summary": "cosma.plan",
    "ScheduleResult": "cosma.schedule",
    "min_peak_order": "cosma.schedule",
    "parse_size": "cosma.units",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cosma' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # Importing the submodule cosma.execute binds it here; the public name is the function of that name.
        if name in _HOMES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "METHODS",
    "Accelerator",
    "BudgetError",
    "Budgets",
    "CosmaError",
    "Free",
    "Graph",
    "Lifetime",
    "Load",
    "ModelError",
    "Operator",
    "OptionError",
    "Options",
    "Plan",
    "PlanInvalid",
    "Run",
    "ScheduleResult",
    "Store",
    "Summary",
    "Tensor",
    "best_baseline",
    "compile",
    "execute",
    "load_model",
    "load_onnx",
    "load_tflite",
    "min_peak_order",
    "parse_size",
    "replay",
    "resolve_budget",
]
__version__ = "0.1.0"
