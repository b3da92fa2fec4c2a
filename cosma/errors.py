"""Exit statuses and typed errors.

:class:`ExitCode` is the one list of the ``cosma`` command's exit statuses. Each :class:`CosmaError`
is stated in one line that names the problem and the fix; the CLI prints it and exits with the
error's :attr:`~CosmaError.exit_code`: 2 (bad input) unless a subclass says otherwise.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the ``cosma`` command's exit status means; the same for every subcommand."""

    DONE = 0  # finished: a result, optimal or not
    NEGATIVE = 1  # a proven negative answer: an invalid plan (check), proven not to fit (alloc)
    BAD_INPUT = 2  # bad input or options
    UNDECIDED = 3  # no answer within the limit: nothing found, nothing proven
    INTERNAL = 70  # a bug in cosma (EX_SOFTWARE of sysexits.h); the traceback goes to a log file
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); the best result so far is still written

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {  # short enough for one line of `cosma --help`; the README's "Exit status" says more
    ExitCode.DONE: "done (optimal or not)",
    ExitCode.NEGATIVE: "a proven negative answer: invalid plan (check), cannot fit (alloc)",
    ExitCode.BAD_INPUT: "bad input or options (one line on stderr names the fix)",
    ExitCode.UNDECIDED: "undecided within the limit: nothing found, nothing proven",
    ExitCode.INTERNAL: "internal error: a bug; the traceback goes to the log file named",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); the best result so far is still written",
}


class CosmaError(Exception):
    """Bad input: one line naming the problem and the fix."""

    #: The CLI's exit status for this error; subclasses that are answers rather than bad input change it.
    exit_code: ExitCode = ExitCode.BAD_INPUT


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


class ProvenNegative(CosmaError):
    """A proven negative answer, e.g. no plan without eviction exists in this scratchpad."""

    exit_code = ExitCode.NEGATIVE


class Undecided(CosmaError):
    """The limit ran out before an answer: nothing found and nothing proven."""

    exit_code = ExitCode.UNDECIDED


class PlanInvalid(ProvenNegative):
    """A plan breaks a rule of the contract. ``step`` is the index of the offending step, if any."""

    def __init__(self, message: str, step: int | None = None) -> None:
        self.rule = message
        self.step = step
        super().__init__(message if step is None else f"step {step}: {message}")


class SolverError(CosmaError):
    """A solver failed: it rejected the model, or its process died. Not the user's input: an internal error."""

    exit_code = ExitCode.INTERNAL


class GraphError(CosmaError, ValueError):
    """A graph breaks a rule of the IR (a tensor produced twice, a cycle, an unknown tensor)."""
