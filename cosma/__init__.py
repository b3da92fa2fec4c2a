"""cosma: joint operator scheduling, scratchpad allocation and tensor replacement for DNN accelerators.

Public API::

    import cosma
    graph = cosma.load_onnx("model.onnx")
    plan = cosma.compile(graph, 512 * 1024)
    plan.save("plan.json")
"""

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
