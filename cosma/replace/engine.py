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

Should pinned tensors fragment the scratchpad so that even an empty rest cannot hold the next
tensor, the operator's resident inputs are evicted too (stored first when they have no DRAM
copy) and the working set is placed again, the policy now free to evict any other tensor. If
the reloaded inputs fragment it once more, everything is evicted and the working set is packed
from offset 0; it fits whenever the scratchpad holds the aligned working set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cosma.alloc.online import ALLOCATORS, Arena
from cosma.contract import Free, Load, Run, Store
from cosma.errors import OptionError
from cosma.graph import DRAM_KINDS, Graph, round_up
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
            placed = _place_working_set(state, op.inputs, op.outputs, pinned, allocator, choose)
        except _Repack:
            # the operator's own inputs block every range: move them (evict, reload) and let the
            # policy make room again, now free to choose among every other resident tensor
            for t in [t for t in op.inputs if t in state.arena]:
                state.evict(t)
            try:
                placed = _place_working_set(state, op.inputs, op.outputs, pinned, allocator, choose)
            except _Repack:  # the reloaded inputs fragment it again: start from an empty scratchpad
                for t in [t for t in op.inputs if t in state.arena]:
                    state.evict(t)
                for _, _, other in list(state.arena.occupants()):
                    state.evict(other)
                placed = _place_working_set(state, op.inputs, op.outputs, pinned, allocator, choose)
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
        bound=0,  # trivially valid; it proves optimality only when no extra traffic is needed
        details={"allocator": allocator, "policy": policy},
    )


def _place_working_set(
    state: WalkState,
    inputs: Sequence[str],
    outputs: Sequence[str],
    pinned: set[str],
    allocator: str,
    choose: ChooseVictims,
) -> list[tuple[str, int]]:
    for t in inputs:
        if t not in state.arena:
            offset = _make_room(state, state.graph.size(t), pinned, allocator, choose)
            state.arena.place(t, offset, state.graph.size(t))
            state.steps.append(Load(t, offset))
    placed: list[tuple[str, int]] = []
    try:
        for t in outputs:
            offset = _make_room(state, state.graph.size(t), pinned, allocator, choose)
            state.arena.place(t, offset, state.graph.size(t))
            placed.append((t, offset))
    except _Repack:
        for t, _ in placed:  # not produced yet: take the reservation back, no step
            state.arena.remove(t)
        raise
    return placed
