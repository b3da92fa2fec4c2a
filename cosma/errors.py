"""Typed errors. Each :class:`CosmaError` is a problem with the user's input, stated in one line
that names the problem and the fix; the CLI prints it and exits with status 2."""

from __future__ import annotations


class CosmaError(Exception):
    """Bad input: one line naming the problem and the fix."""


class ModelError(CosmaError):
    """The model cannot be read or lowered (unreadable file, unknown shapes, control flow)."""


class BudgetError(CosmaError):
    """The scratchpad cannot run the graph: some operator's working set does not fit."""

    def __init__(self, op: str, working_set: int, scratchpad: int) -> None:
        self.op = op
        self.working_set = working_set
        self.scratchpad = scratchpad
        super().__init__(
            f"scratchpad of {scratchpad} B is below M_R = {working_set} B: operator {op!r} needs "
            f"{working_set} B for its inputs and outputs at once; use --scratchpad {working_set} or more"
        )


class OptionError(CosmaError):
    """An option value that is not understood."""
