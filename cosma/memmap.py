"""A text memory map of a plan, one line per operator run, like TensorFlow Lite Micro's arena printout.

Each line is the scratchpad from address 0 (left) to the capacity (right) while the operator runs:
a column shows the letter of a tensor that occupies part of its address range, ``.`` where nothing
does. Letters are handed out in order of first residency (A-Z, a-z, 0-9, then again), and the legend
after the map names them.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> from cosma.contract import Load, Run, Store
    >>> from cosma.hardware import Accelerator
    >>> from cosma.plan import Plan
    >>> g = Graph.build("chain", [Tensor("x", 4, "input"), Tensor("y", 4, "output")],
    ...                 [Operator("relu", "Relu", ("x",), ("y",))])
    >>> plan = Plan.from_steps(g, Accelerator(8), [Load("x", 0), Run("relu", (("y", 4),)), Store("y")],
    ...                        method="hand")
    >>> print("\\n".join(memory_map(plan, width=8)))
    scratchpad 8 B, 1 column = 1 B
       0 relu                 |AAAABBBB|   8 B 100%
    A x (4 B)  B y (4 B)
"""

from __future__ import annotations

import itertools
import string

from cosma.contract import Free, Load, Run
from cosma.plan import Plan

LETTERS = string.ascii_uppercase + string.ascii_lowercase + string.digits


def memory_map(plan: Plan, width: int = 64, name_width: int = 20) -> list[str]:
    """The map's lines: a header, one line per operator run, the legend (see the module docstring)."""
    capacity = max(1, plan.accelerator.scratchpad_bytes)
    width = max(1, min(width, capacity))
    sizes = {t.name: t.bytes for t in plan.graph.tensors}
    letters: dict[str, str] = {}
    fresh = itertools.cycle(LETTERS)
    resident: dict[str, int] = {}  # tensor -> offset
    per_column = capacity / width
    lines = [f"scratchpad {capacity} B, 1 column = {_bytes(per_column)}"]
    for step in plan.steps:
        if isinstance(step, Load):
            resident[step.tensor] = step.offset
        elif isinstance(step, Free):
            resident.pop(step.tensor, None)
        elif isinstance(step, Run):
            for tensor, offset in step.outputs:
                end = offset + sizes[tensor]
                # an in-place output overwrites the input it shares bytes with: that input is gone
                for other, at in list(resident.items()):
                    if at < end and offset < at + sizes[other]:
                        del resident[other]
                resident[tensor] = offset
            for tensor in resident:
                letters.setdefault(tensor, next(fresh))
            bar = ["."] * width
            for tensor, at in sorted(resident.items(), key=lambda item: -sizes[item[0]]):
                first = int(at // per_column)
                last = max(first, int((at + sizes[tensor] - 1) // per_column))
                for column in range(first, min(last, width - 1) + 1):
                    bar[column] = letters[tensor]
            used = sum(sizes[t] for t in resident)
            index = len(lines) - 1
            lines.append(
                f"{index:>4} {step.op[:name_width]:<{name_width}} |{''.join(bar)}| "
                f"{used:>3} B {100 * used / capacity:.0f}%"
            )
    lines.append("  ".join(f"{letter} {tensor} ({sizes[tensor]} B)" for tensor, letter in letters.items()))
    return lines


def _bytes(value: float) -> str:
    return f"{value:.0f} B" if value == int(value) else f"{value:.1f} B"
