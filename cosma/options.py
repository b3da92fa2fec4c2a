"""Planning options: every knob a named, typed field, kept apart from the hardware (:mod:`cosma.hardware`).

The same :class:`Options` goes to every method (``solve_x(graph, accelerator, options) -> Plan``); a
method reads the fields it needs and ignores the rest. Change one with :func:`dataclasses.replace` or
as keyword arguments of :func:`cosma.compile`.

Example:
    >>> from dataclasses import replace
    >>> options = replace(Options(), time_limit=5, segment_ops=24)
    >>> options.time_limit, options.segment_ops, options.solver
    (5, 24, 'auto')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

#: Seconds of the min-peak order search that baselines, budgets and exact methods share (see
#: :func:`cosma.methods.baselines.minpeak_time_limit`); its work budget follows from it.
MINPEAK_TIME_LIMIT = 20.0  # the same as cosma.schedule.minpeak.DEFAULT_TIME_LIMIT (why 20: see there)


@dataclass(frozen=True)
class Options:
    """How to plan. Hardware (capacity, alignment) is not here: it is the :class:`~cosma.hardware.Accelerator`."""

    # -- every method
    #: online allocator of the baselines and of decoding: ``first-fit`` or ``best-fit``
    allocator: str = "first-fit"
    #: wall-clock seconds for the whole method, every phase included
    time_limit: float = 60.0
    #: OS threads of the solver: CP-SAT runs its interleaved portfolio on them (the same plan for any count from 2
    #: on, see :func:`cosma.backends.cpsat.configure`), HiGHS its threads
    threads: int = 1
    #: the solvers' random seed: same inputs and seed give the same plan
    seed: int = 0
    #: the backend of exact methods: ``auto`` or a name in :data:`cosma.backends.BACKENDS`
    solver: str = "auto"
    #: no live progress line on the terminal
    quiet: bool = True
    #: backend parameters by name (``--solver-param NAME=VALUE``), typed by the backend
    solver_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: seconds of the min-peak order search (capped by ``time_limit``)
    minpeak_time_limit: float = MINPEAK_TIME_LIMIT

    # -- exact methods (joint, fixed-order, min-peak)
    #: fixed-order's order: ``minpeak``, ``default`` (the model's) or the operator names in order
    order: str | Sequence[str] = "minpeak"
    #: joint: prove a bound on neighbourhoods of large tensors before the full model
    neighbourhood_bound: bool = True
    #: CP-SAT: solve the full model at once, without the relaxation and allocation phases
    single_phase: bool = False
    #: write each solver model built to this folder (for users who run it elsewhere), or None
    dump_model: str | None = None

    # -- divide and conquer
    #: operators per window; None: the measured default (and ``auto`` picks dc only on large graphs)
    segment_ops: int | None = None
    #: dc's stages: None (all), or one stage's name to run it alone (for measurements)
    dc_mode: str | None = None
