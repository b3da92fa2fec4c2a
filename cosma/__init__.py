"""cosma: joint operator scheduling, scratchpad allocation and tensor replacement for DNN accelerators.

Public API::

    import cosma
    graph = cosma.load_onnx("model.onnx")
    plan = cosma.compile(graph, 512 * 1024)
    plan.save("plan.json")
"""

from cosma.check import PlanInvalid, replay
from cosma.errors import BudgetError, CosmaError, ModelError, OptionError
from cosma.frontend import load_onnx
from cosma.graph import Graph, Lifetime, Operator, Tensor
from cosma.methods import METHODS, Options, compile
from cosma.plan import Accelerator, Free, Load, Plan, Run, Store, Summary
from cosma.units import parse_size

__all__ = [
    "METHODS",
    "Accelerator",
    "BudgetError",
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
    "Store",
    "Summary",
    "Tensor",
    "compile",
    "load_onnx",
    "parse_size",
    "replay",
]
__version__ = "0.1.0"
