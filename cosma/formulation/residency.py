"""A solver-neutral solution: the order and every residency segment, and its steps.

Every formulation decodes into a :class:`Residency`; :meth:`Residency.steps` turns it into the
plan's load / run / store / free steps, which :meth:`cosma.plan.Plan.from_steps` replays. A
baseline plan is read back into a Residency (:func:`residency_of_plan`) to give a solver its
warm start.

A :class:`Stay` is one stay of a tensor in the scratchpad: resident at one ``offset`` (bytes)
during the runs of steps ``first .. last`` (inclusive). It begins with the tensor's production
(``created``) or with a load just before step ``first``, and ends with a free just after step
``last``. Between steps ``s`` and ``s + 1`` the steps are, in this order: stores (outputs, and
activations that will be loaded again), frees of segments ending at ``s``, loads of segments
beginning at ``s + 1``. So everything resident at any moment is resident during run ``s`` or
run ``s + 1``, and a plan is valid when each run's residents are disjoint.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from cosma.contract import Free, Load, Run, Step, Store
from cosma.graph import Graph
from cosma.hardware import Accelerator
from cosma.plan import Plan


@dataclass(frozen=True)
class Stay:
    tensor: str
    first: int
    last: int
    offset: int
    created: bool
    #: a created stay of an in-place output written over this input of its operator (plan-format.md,
    #: "In-place operators"): the input's stay ends at this step, at this offset, without a free
    over: str | None = None


@dataclass(frozen=True)
class Residency:
    """An operator order and the segments of every tensor of positive size.

    Tensors of size 0 need no segment: :meth:`steps` loads them at offset 0 on first use and
    never frees them (they occupy nothing).
    """

    order: tuple[str, ...]
    segments: tuple[Stay, ...]

    def steps(self, graph: Graph) -> list[Step]:
        """The plan's steps (see the module docstring for their order between runs)."""
        starting: dict[int, list[Stay]] = defaultdict(list)
        ending: dict[int, list[Stay]] = defaultdict(list)
        for seg in self.segments:
            starting[seg.first].append(seg)
            ending[seg.last].append(seg)
        reloaded = {seg.tensor for seg in self.segments if not seg.created}
        resident_empty: set[str] = set()
        steps: list[Step] = []
        for s, name in enumerate(self.order):
            op = graph.op(name)
            for seg in starting[s]:
                if not seg.created:
                    steps.append(Load(seg.tensor, seg.offset))
            for t in op.inputs:
                if graph.size(t) == 0 and t not in resident_empty:
                    steps.append(Load(t, 0))
                    resident_empty.add(t)
            created = {seg.tensor: seg.offset for seg in starting[s] if seg.created}
            outputs = tuple((t, created[t] if graph.size(t) else 0) for t in op.outputs)
            resident_empty.update(t for t in op.outputs if graph.size(t) == 0)
            steps.append(Run(name, outputs))
            overwritten = _overwritten(op.inplace, dict(outputs), starting[s], ending[s])
            for t in op.outputs:
                kind = graph.tensor(t).kind
                if kind == "output" or (kind == "activation" and t in reloaded):
                    steps.append(Store(t))
            steps.extend(Free(seg.tensor) for seg in ending[s] if seg.tensor not in overwritten)
        return steps

    def to_plan(self, graph: Graph, accelerator: Accelerator, **summary: Any) -> Plan:
        return Plan.from_steps(graph, accelerator, self.steps(graph), **summary)


def _overwritten(
    pairs: tuple[tuple[str, str], ...], placed: dict[str, int], starting: list[Stay], ending: list[Stay]
) -> set[str]:
    """Inputs a run overwrites in place: an output placed exactly where its declared input's stay ends.

    The replay decides it by offsets alone, so the steps must agree with it whatever ``Stay.over`` says.
    """
    created = {seg.tensor for seg in starting if seg.created}
    ends_at = {seg.tensor: seg.offset for seg in ending}
    out: set[str] = set()
    for t, inp in pairs:
        if t in created and inp in ends_at and placed[t] == ends_at[inp] and inp not in out:
            out.add(inp)
    return out


def residency_of_plan(plan: Plan) -> Residency:
    """The segments a (valid) plan's steps describe, as seen by the runs.

    A tensor loaded and freed again between two runs never serves a run and gives no segment.
    """
    open_: dict[str, tuple[int, int, bool, str | None]] = {}  # tensor -> (first step, offset, created, over)
    segments: list[Stay] = []
    step = 0
    graph = plan.graph

    def close(t: str, last: int) -> None:
        first, offset, created, over = open_.pop(t)
        if first <= last and graph.size(t) > 0:
            segments.append(Stay(t, first, last, offset, created, over))

    for st in plan.steps:
        if isinstance(st, Load):
            open_[st.tensor] = (step, st.offset, False, None)
        elif isinstance(st, Free):
            close(st.tensor, step - 1)
        elif isinstance(st, Run):
            over: dict[str, str] = {}
            for t, inp in graph.op(st.op).inplace:  # the replay's rule: an output exactly where its input is
                if inp in open_ and inp not in over.values() and dict(st.outputs)[t] == open_[inp][1] and graph.size(t):
                    over[t] = inp
            for inp in over.values():  # overwritten: its stay ends with this run
                close(inp, step)
            for t, offset in st.outputs:
                open_[t] = (step, offset, True, over.get(t))
            step += 1
    for t in list(open_):
        first, offset, created, over_ = open_[t]
        if graph.size(t) > 0 and _last_use(plan, t) >= first:
            segments.append(Stay(t, first, _last_use(plan, t), offset, created, over_))
        open_.pop(t)
    return Residency(plan.order, tuple(segments))


def _last_use(plan: Plan, t: str) -> int:
    last = -1
    for s, name in enumerate(plan.order):
        op = plan.graph.op(name)
        if t in op.inputs or t in op.outputs:
            last = s
    return last
