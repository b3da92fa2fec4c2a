"""Fixed-order planning with on-demand eviction: the baselines' common engine.

Given an operator order, an allocator (``first-fit`` / ``best-fit``) and a replacement
policy, :func:`plan_fixed_order` walks the order and emits the steps a runtime follows:

1. for each input of the next operator that is not resident, find a free range and load it;
2. find a free range for each of its outputs and run it;
3. store every ``output`` tensor right after it is produced (compulsory, and it makes a later
   eviction free), and free every tensor the order never reads again.

When no free range fits, the policy names resident tensors to evict; an evicted activation
with a later use and no DRAM copy is stored first (one extra store), and every later use of
an evicted tensor reloads it (extra loads). Tensors of the running operator are pinned.

The policy is looked up by name in :mod:`cosma.replace.registry`; the shipped ones are one module
each in :mod:`cosma.replace.policies` (``belady``: furthest next use first; ``greedy``: the cheapest
contiguous window), and ``--method ORDER+POLICY`` runs one.

In-place pairs (``Operator.inplace``, plan-format.md "In-place operators") are used as a runtime's
arena planner would: an output whose declared input is read by no later operator always takes
that input's range; one whose input is read later takes it only when no free range fits and
overwriting is cheaper than the evictions the policy would make instead (the overwritten input is
stored first when it is an activation without a DRAM copy, and reloaded at its next use). The run
itself overwrites the input, so no ``free`` is emitted for it.

Should pinned tensors fragment the scratchpad so that even an empty rest cannot hold the next
tensor, the operator's resident inputs are evicted too (stored first when they have no DRAM
copy) and the working set is placed again, the policy now free to evict any other tensor. If
the reloaded inputs fragment it once more, everything is evicted and the working set is packed
from offset 0, every pair in place; it fits whenever the scratchpad holds the aligned working
set (:meth:`~cosma.graph.Graph.working_set`, which counts an overwritten input once).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cosma.alloc.online import ALLOCATORS, Arena
from cosma.contract import Free, Load, Run, Store
from cosma.errors import OptionError
from cosma.graph import DRAM_KINDS, Graph, Operator, round_up
from cosma.hardware import Accelerator, check_budget
from cosma.plan import Plan
from cosma.replace.registry import ChooseVictims, get_policy
from cosma.replace.state import WalkState


class _Repack(Exception):
    """Pinned tensors fragment the scratchpad; the operator's working set must be re-packed."""


def _room_without_unpinned(arena: Arena, size: int, pinned: set[str]) -> bool:
    """Whether an aligned range of ``size`` bytes would be free if every unpinned tensor left."""
    cursor = 0
    for start, end, name in arena.occupants():
        if name not in pinned:
            continue
        if start - round_up(cursor, arena.alignment) >= size:
            return True
        cursor = max(cursor, end)
    return arena.capacity - round_up(cursor, arena.alignment) >= size


def _make_room(state: WalkState, size: int, pinned: set[str], allocator: str, choose: ChooseVictims) -> int:
    while True:
        offset = state.arena.find(size, allocator)
        if offset is not None:
            return offset
        if not _room_without_unpinned(state.arena, size, pinned):
            raise _Repack  # no eviction the policy may make can help: do not make useless ones
        victims = choose(state, size, pinned)
        if not victims:
            raise _Repack
        for t in victims:
            state.evict(t)


def _eviction_cost(state: WalkState, size: int, pinned: set[str], allocator: str, choose: ChooseVictims) -> int | None:
    """Extra bytes the evictions :func:`_make_room` would make for ``size`` bytes cost (None: it cannot make room),
    tried on a copy of the arena."""
    trial = replace(state, arena=state.arena.copy(), has_copy=set(state.has_copy), steps=[])
    cost = 0
    while trial.arena.find(size, allocator) is None:
        if not _room_without_unpinned(trial.arena, size, pinned):
            return None
        victims = choose(trial, size, pinned)
        if not victims:
            return None
        for t in victims:
            cost += trial.eviction_cost(t)
            trial.evict(t)
    return cost


def plan_fixed_order(
    graph: Graph,
    accelerator: Accelerator,
    order: Sequence[str] | None = None,
    *,
    allocator: str = "first-fit",
    policy: str = "belady",
    method: str | None = None,
) -> Plan:
    """Plan ``order`` (default: the ONNX order) with on-demand eviction; see the module docstring."""
    if allocator not in ALLOCATORS:
        raise OptionError(f"unknown allocator {allocator!r}; choose one of {', '.join(ALLOCATORS)}")
    choose = get_policy(policy).choose
    order = graph.default_order if order is None else tuple(order)
    if not graph.is_topological(order):
        raise ValueError("the order is not a topological order of the graph's operators")
    check_budget(graph, accelerator)

    uses: dict[str, list[int]] = {}
    for position, name in enumerate(order):
        for t in graph.op(name).inputs:
            uses.setdefault(t, []).append(position)
    state = WalkState(
        graph=graph,
        arena=Arena(accelerator.scratchpad_bytes, accelerator.alignment),
        uses=uses,
        has_copy={t.name for t in graph.tensors if t.kind in DRAM_KINDS},
    )
    for position, name in enumerate(order):
        state.now = position
        op = graph.op(name)
        pinned = set(op.inputs) | set(op.outputs)
        try:
            placed = _place_working_set(state, op, pinned, allocator, choose)
        except _Repack:
            # the operator's own inputs block every range: move them (evict, reload) and let the
            # policy make room again, now free to choose among every other resident tensor
            for t in [t for t in op.inputs if t in state.arena]:
                state.evict(t)
            try:
                placed = _place_working_set(state, op, pinned, allocator, choose)
            except _Repack:  # the reloaded inputs fragment it again: start from an empty scratchpad
                for t in [t for t in op.inputs if t in state.arena]:
                    state.evict(t)
                for _, _, other in list(state.arena.occupants()):
                    state.evict(other)
                placed = _place_working_set(state, op, pinned, allocator, choose, force_inplace=True)
        state.steps.append(Run(name, tuple(placed)))
        for t in op.outputs:
            if graph.tensor(t).kind == "output":
                state.steps.append(Store(t))
                state.has_copy.add(t)
        state.now = position + 1
        for t in dict.fromkeys((*op.inputs, *op.outputs)):
            if state.next_use(t) == math.inf and t in state.arena:
                state.steps.append(Free(t))
                state.arena.remove(t)

    return Plan.from_steps(
        graph,
        accelerator,
        state.steps,
        method=method or f"fixed+{policy}",
        details={"allocator": allocator, "policy": policy},
    )


@dataclass
class _Outputs:
    """Where one run's outputs go, until the run is committed (a repack takes it all back)."""

    offsets: dict[str, int] = field(default_factory=dict)
    overwritten: dict[str, int] = field(default_factory=dict)  # input -> its offset, now an output's
    spills: list[str] = field(default_factory=list)  # overwritten inputs to store first

    def overwrite(self, state: WalkState, out: str, inp: str) -> None:
        offset = state.arena.offset(inp)
        if state.later_use(inp) != math.inf and inp not in state.has_copy:
            self.spills.append(inp)
        state.arena.remove(inp)
        state.arena.place(out, offset, state.graph.size(out))
        self.offsets[out] = offset
        self.overwritten[inp] = offset

    def undo(self, state: WalkState) -> None:
        for t in self.offsets:
            state.arena.remove(t)
        for inp, offset in self.overwritten.items():
            state.arena.place(inp, offset, state.graph.size(inp))


def _place_working_set(
    state: WalkState,
    op: Operator,
    pinned: set[str],
    allocator: str,
    choose: ChooseVictims,
    *,
    force_inplace: bool = False,
) -> list[tuple[str, int]]:
    graph = state.graph
    for t in op.inputs:
        if t not in state.arena:
            offset = _make_room(state, graph.size(t), pinned, allocator, choose)
            state.arena.place(t, offset, graph.size(t))
            state.steps.append(Load(t, offset))
    over = dict(op.inplace)
    out = _Outputs()

    def free_input(t: str) -> str | None:
        """The input ``t`` may overwrite in this run, if any."""
        inp = over.get(t)
        if inp is None or inp in out.overwritten or inp not in state.arena or graph.size(t) == 0:
            return None  # an empty output overwrites nothing (the replay's rule): it goes anywhere
        return inp

    try:
        # overwrites that cost nothing first (an input no later operator reads), or every pair when
        # packing from empty
        for t in op.outputs:
            inp = free_input(t)
            if inp is not None and (force_inplace or state.later_use(inp) == math.inf):
                out.overwrite(state, t, inp)
        for t in op.outputs:
            if t in out.offsets:
                continue
            size = graph.size(t)
            inp = free_input(t)
            if inp is not None and state.arena.find(size, allocator) is None:
                alternative = _eviction_cost(state, size, pinned, allocator, choose)
                if alternative is None or state.overwrite_cost(inp) < alternative:
                    out.overwrite(state, t, inp)
                    continue
            offset = _make_room(state, size, pinned, allocator, choose)
            state.arena.place(t, offset, size)
            out.offsets[t] = offset
    except _Repack:
        out.undo(state)  # not produced yet: take the reservations back, no step
        raise
    for inp in out.spills:  # still resident until the run overwrites it
        state.steps.append(Store(inp))
        state.has_copy.add(inp)
    return [(t, out.offsets[t]) for t in op.outputs]
