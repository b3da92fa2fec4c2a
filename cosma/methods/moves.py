"""Long-range reordering moves for divide and conquer (issue 19): the ``moves`` stage of :mod:`cosma.methods.dc`.

dc's windows reorder at most a few dozen consecutive operators, so a reader hundreds of steps after
the producer of what it reads stays where it is. The moves here reach across the whole order:

- *pull* ``r`` to ``q``: ``r`` and its ancestors placed after step ``q`` run right after step ``q``
  (anchors: the producer of an input of ``r``, the previous reader of that input) - "move this reader
  next to its producer", or next to the reader before it, so the readers of a shared tensor cluster;
- *push* ``p`` to ``q``: ``p`` and its descendants placed before step ``q`` run right before step ``q``
  (anchor: the next reader of an input of ``p``).

Both keep the order topological: a pulled set holds every ancestor the move overtakes, a pushed set
every descendant. A move is scored by a proxy, the *excess area* ``sum_s max(0, live_s - C)`` of the
order with nothing evicted (bytes rounded up to the alignment, an in-place output counted over its
input as :meth:`~cosma.graph.Graph.live_bytes` does): it costs one vectorised pass over the tensors,
about 0.3 ms on 3,000 operators, while the baselines' engine takes about 0.5 s. Each round tries, for
every operator, its pulls and pushes and keeps the best one that lowers the proxy; after each round the
order is planned by the engine with every registered replacement policy, and the cheapest plan so far
is kept. The proxy and the traffic agree only roughly, so the engine decides: :func:`reorder` returns
a plan only when it has less extra traffic than ``start_extra``.

The search stops on work (``max_work`` proxy evaluations times operators, and ``max_rounds``), never
on the clock, so the same graph, budget and order give the same plan; ``deadline`` is a safety net.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cosma.graph import Graph, round_up
from cosma.hardware import Accelerator
from cosma.plan import Plan
from cosma.replace.engine import plan_fixed_order
from cosma.replace.registry import policy_names

#: Rounds of moves (each followed by the engine's plan) unless the proxy stops improving first.
MAX_ROUNDS = 4
#: Work units (operators scanned by proxy evaluations) one call may spend: about 15 rounds on 3,000 operators.
MAX_WORK = 250_000_000

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class OrderIndex:
    """A graph's operators and tensors as integer arrays, for scoring many orders of it quickly."""

    names: tuple[str, ...]
    preds: tuple[tuple[int, ...], ...]
    succs: tuple[tuple[int, ...], ...]
    readers: dict[str, tuple[int, ...]]  # non-weight tensor -> operators reading it
    producer: dict[str, int]
    user_op: IntArray  # operators touching each tensor, grouped by tensor
    starts: IntArray  # where each tensor's group starts in user_op
    group_bytes: IntArray  # each group's tensor bytes (aligned)
    group_tensor: IntArray
    pair_op: IntArray  # in-place pairs: the operator, its overwritable input, the input's bytes
    pair_tensor: IntArray
    pair_bytes: IntArray
    tensors: int

    @classmethod
    def of(cls, graph: Graph, alignment: int = 1) -> OrderIndex:
        names = tuple(o.name for o in graph.ops)
        tensor_index = {t.name: i for i, t in enumerate(graph.tensors)}
        size = np.array([round_up(graph.size(t.name), alignment) for t in graph.tensors], dtype=np.int64)
        producer: dict[str, int] = {}
        readers: dict[str, list[int]] = {}
        users: list[tuple[int, int]] = []
        pairs: list[tuple[int, int]] = []
        for i, o in enumerate(graph.ops):
            users += [(tensor_index[t], i) for t in dict.fromkeys((*o.inputs, *o.outputs))]
            producer.update((t, i) for t in o.outputs)
            for t in o.inputs:
                if graph.tensor(t).kind != "weight":
                    readers.setdefault(t, []).append(i)
            pairs += [(i, tensor_index[t]) for t in o.overwritable]
        users.sort()
        user_tensor = np.array([u[0] for u in users], dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, user_tensor[1:] != user_tensor[:-1]]) if users else np.zeros(0, np.int64)
        group_tensor = user_tensor[starts]
        preds = tuple(
            tuple(sorted({producer[t] for t in o.inputs if t in producer and producer[t] != i}))
            for i, o in enumerate(graph.ops)
        )
        succs_sets: list[set[int]] = [set() for _ in names]
        for i, ps in enumerate(preds):
            for p in ps:
                succs_sets[p].add(i)
        pair_tensor = np.array([p[1] for p in pairs], dtype=np.int64)
        return cls(
            names=names,
            preds=preds,
            succs=tuple(tuple(sorted(s)) for s in succs_sets),
            readers={t: tuple(rs) for t, rs in readers.items()},
            producer=producer,
            user_op=np.array([u[1] for u in users], dtype=np.int64),
            starts=starts.astype(np.int64),
            group_bytes=size[group_tensor],
            group_tensor=group_tensor,
            pair_op=np.array([p[0] for p in pairs], dtype=np.int64),
            pair_tensor=pair_tensor,
            pair_bytes=size[pair_tensor],
            tensors=len(size),
        )

    def positions(self, order: Sequence[int]) -> IntArray:
        pos = np.empty(len(order), dtype=np.int64)
        pos[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int64)
        return pos

    def live(self, pos: IntArray) -> IntArray:
        """Bytes resident at each step with nothing evicted (as :meth:`Graph.live_bytes`)."""
        n = len(pos)
        if len(self.starts) == 0:
            return np.zeros(n, dtype=np.int64)
        at = pos[self.user_op]
        first = np.minimum.reduceat(at, self.starts)
        last = np.maximum.reduceat(at, self.starts)
        delta = np.bincount(first, weights=self.group_bytes, minlength=n + 1)
        delta -= np.bincount(last + 1, weights=self.group_bytes, minlength=n + 1)
        if len(self.pair_op):
            last_of = np.full(self.tensors, -1, dtype=np.int64)
            last_of[self.group_tensor] = last
            step = pos[self.pair_op]
            ends = last_of[self.pair_tensor] == step  # read by no later operator: the output takes its bytes
            delta -= np.bincount(step[ends], weights=self.pair_bytes[ends], minlength=n + 1)
            delta += np.bincount(step[ends] + 1, weights=self.pair_bytes[ends], minlength=n + 1)
        return np.cumsum(delta[:-1]).astype(np.int64)

    def excess(self, pos: IntArray, capacity: int) -> int:
        """The proxy: bytes above ``capacity`` summed over the steps."""
        return int(np.maximum(0, self.live(pos) - capacity).sum())


def pull(index: OrderIndex, order: list[int], pos: IntArray, r: int, q: int) -> list[int]:
    """``r`` and its ancestors at steps ``q + 1 .. pos[r]`` moved to run right after step ``q``."""
    hi = int(pos[r])
    keep, stack = {r}, [r]
    while stack:
        for p in index.preds[stack.pop()]:
            if pos[p] > q and p not in keep:
                keep.add(p)
                stack.append(p)
    part = order[q + 1 : hi + 1]
    return [*order[: q + 1], *(x for x in part if x in keep), *(x for x in part if x not in keep), *order[hi + 1 :]]


def push(index: OrderIndex, order: list[int], pos: IntArray, p: int, q: int) -> list[int]:
    """``p`` and its descendants at steps ``pos[p] .. q - 1`` moved to run right before step ``q``."""
    lo = int(pos[p])
    keep, stack = {p}, [p]
    while stack:
        for s in index.succs[stack.pop()]:
            if pos[s] < q and s not in keep:
                keep.add(s)
                stack.append(s)
    part = order[lo:q]
    return [*order[:lo], *(x for x in part if x not in keep), *(x for x in part if x in keep), *order[q:]]


def candidates(index: OrderIndex, graph: Graph, pos: IntArray, o: int) -> list[tuple[str, int]]:
    """The moves of operator ``o``: ``("pull", q)`` or ``("push", q)``, each changing the order."""
    here = int(pos[o])
    out: list[tuple[str, int]] = []
    for t in graph.ops[o].inputs:
        users = index.readers.get(t)
        if users is None:
            continue
        if t in index.producer and pos[index.producer[t]] < here - 1:
            out.append(("pull", int(pos[index.producer[t]])))
        steps = sorted(int(pos[r]) for r in users)
        k = steps.index(here)
        if k > 0 and steps[k - 1] < here - 1:
            out.append(("pull", steps[k - 1]))
        if k + 1 < len(steps) and steps[k + 1] > here + 1:
            out.append(("push", steps[k + 1]))
    return list(dict.fromkeys(out))


@dataclass
class MovesResult:
    """The best engine plan found (None: none beat the start), and the work done."""

    plan: Plan | None
    rounds: int
    moves: int
    evaluations: int
    excess_start: int
    excess_end: int
    engine_runs: int


def improve_round(
    index: OrderIndex, graph: Graph, order: list[int], capacity: int, budget: int
) -> tuple[list[int], int, int, int]:
    """One pass over the operators, each taking its best proxy-lowering move: (order, excess, moves, evaluations)."""
    n = len(order)
    pos = index.positions(order)
    current = index.excess(pos, capacity)
    moves = evaluations = 0
    for o in range(n):
        if current == 0 or (evaluations + 1) * n > budget:
            break
        best: tuple[int, list[int] | None] = (current, None)
        for kind, q in candidates(index, graph, pos, o):
            if (evaluations + 1) * n > budget:
                break
            new = pull(index, order, pos, o, q) if kind == "pull" else push(index, order, pos, o, q)
            evaluations += 1
            score = index.excess(index.positions(new), capacity)
            if score < best[0]:
                best = (score, new)
        if best[1] is not None:
            current, order = best[0], best[1]
            pos = index.positions(order)
            moves += 1
    return order, current, moves, evaluations


def reorder(
    graph: Graph,
    accelerator: Accelerator,
    order: Sequence[str],
    start_extra: int,
    *,
    allocator: str = "first-fit",
    max_rounds: int = MAX_ROUNDS,
    max_work: int = MAX_WORK,
    deadline: float | None = None,
) -> MovesResult:
    """Rounds of long-range moves on ``order``, each round's order planned by the engine (see the module
    docstring); the plan with the least extra traffic, if below ``start_extra``."""
    index = OrderIndex.of(graph, accelerator.alignment)
    at = {name: i for i, name in enumerate(index.names)}
    current = [at[name] for name in order]
    capacity = accelerator.scratchpad_bytes
    start = index.excess(index.positions(current), capacity)
    best: Plan | None = None
    best_extra = start_extra
    rounds = moves = evaluations = runs = 0
    excess = start
    spent = 0
    while rounds < max_rounds and spent < max_work and excess > 0:
        if deadline is not None and time.perf_counter() > deadline:
            break
        current, excess_now, moved, tried = improve_round(index, graph, current, capacity, max_work - spent)
        rounds += 1
        evaluations += tried
        spent += (tried + 1) * len(current)
        if moved == 0:
            break
        moves += moved
        excess = excess_now
        names = [index.names[i] for i in current]
        for policy in policy_names():
            plan = plan_fixed_order(graph, accelerator, names, allocator=allocator, policy=policy, method="dc")
            runs += 1
            if plan.extra_bytes < best_extra:
                best, best_extra = plan, plan.extra_bytes
    return MovesResult(best, rounds, moves, evaluations, start, excess, runs)
