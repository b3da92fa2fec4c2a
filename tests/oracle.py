"""Exhaustive search: the least extra traffic of any plan, by Dijkstra over scratchpad states.

The oracle the formulations are tested against; written from the contract
(shared/docs/plan-format.md), independently of cosma.formulation. Only for tiny graphs.

A state is what the scratchpad holds while one operator runs: the operators done, every
resident tensor with its offset, and the activations that have a DRAM copy. A move picks any
ready operator (or the next of a fixed order) and any new content: each resident tensor that is
still needed is kept at its offset or dropped; each input of the operator that is not kept is
loaded at any free aligned offset, each of its outputs is placed at any free aligned offset, and,
with ``prefetch``, any other still-needed tensor with a DRAM copy may be loaded too. Between two
runs a plan frees before it loads, so only the run's content must be disjoint and in bounds.

In-place pairs (plan-format.md, "In-place operators"): an output of the operator may instead take
the offset of an input it declares, resident in the run (kept or loaded); that input then leaves
the scratchpad with the run (one output per input), and a later reader loads it again.

Costs: every load costs its bytes; an activation's first load also pays the store that made its
DRAM copy (storing at any other time costs the same and is never needed earlier); outputs are
stored when produced (compulsory). The answer is ``loads + stores - compulsory``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence

from cosma.graph import Graph


class _Tables:
    def __init__(self, graph: Graph, capacity: int, alignment: int) -> None:
        self.graph = graph
        self.capacity = capacity
        self.alignment = alignment
        self.tensors = [t.name for t in graph.tensors]
        self.idx = {t: i for i, t in enumerate(self.tensors)}
        self.size = [graph.size(t) for t in self.tensors]
        self.kind = [graph.tensor(t).kind for t in self.tensors]
        self.ops = list(graph.default_order)
        self.op_idx = {o: i for i, o in enumerate(self.ops)}
        self.inputs = [tuple(self.idx[t] for t in graph.op(o).inputs) for o in self.ops]
        self.outputs = [tuple(self.idx[t] for t in graph.op(o).outputs) for o in self.ops]
        # per op and output: the inputs it may overwrite in place
        self.over: list[dict[int, tuple[int, ...]]] = []
        for k, o in enumerate(self.ops):
            pairs = graph.op(o).inplace
            self.over.append({t: tuple(self.idx[i] for out, i in pairs if self.idx[out] == t) for t in self.outputs[k]})
        self.consumers = [0] * len(self.tensors)  # bitmask of consumer ops
        for k, ins in enumerate(self.inputs):
            for t in ins:
                self.consumers[t] |= 1 << k
        self.producer = [-1] * len(self.tensors)
        for k, outs in enumerate(self.outputs):
            for t in outs:
                self.producer[t] = k
        self.preds = [0] * len(self.ops)
        for k, ins in enumerate(self.inputs):
            for t in ins:
                if self.producer[t] >= 0:
                    self.preds[k] |= 1 << self.producer[t]

    def mask(self, t: int, offset: int) -> int:
        return ((1 << self.size[t]) - 1) << offset

    def canonical(self, content: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        """A content and its mirror image (offset -> capacity - offset - size) have the same futures."""
        if self.alignment != 1:
            return content
        mirror = tuple(sorted((t, self.capacity - off - self.size[t] if self.size[t] else 0) for t, off in content))
        return min(content, mirror)

    def offsets(self, t: int) -> range:
        if self.size[t] == 0:
            return range(1)  # an empty tensor overlaps nothing: one offset stands for all
        return range(0, self.capacity - self.size[t] + 1, self.alignment)


def _placements(tb: _Tables, todo: Sequence[int], used: int) -> Iterator[tuple[tuple[int, int], ...]]:
    """Every way to give each tensor of ``todo`` a free aligned offset, disjoint from ``used`` and each other."""
    if not todo:
        yield ()
        return
    t, rest = todo[0], todo[1:]
    for off in tb.offsets(t):
        m = tb.mask(t, off)
        if m & used:
            continue
        for tail in _placements(tb, rest, used | m):
            yield ((t, off), *tail)


def _outputs_placed(
    tb: _Tables, op: int, outs: Sequence[int], used: int, inputs_at: dict[int, int], taken: frozenset[int]
) -> Iterator[tuple[tuple[tuple[int, int], ...], frozenset[int]]]:
    """Every placement of ``outs``: a free offset, or (in place) the offset of a declared input in
    ``inputs_at`` that no other output took; with the set of inputs overwritten."""
    if not outs:
        yield (), taken
        return
    t, rest = outs[0], outs[1:]
    for i in tb.over[op].get(t, ()):
        if i in inputs_at and i not in taken:
            for tail, gone in _outputs_placed(tb, op, rest, used, inputs_at, taken | {i}):
                yield ((t, inputs_at[i]), *tail), gone
    for off in tb.offsets(t):
        m = tb.mask(t, off)
        if m & used:
            continue
        for tail, gone in _outputs_placed(tb, op, rest, used | m, inputs_at, taken):
            yield ((t, off), *tail), gone


def _moves(
    tb: _Tables, done: int, config: tuple[tuple[int, int], ...], stored: frozenset[int], op: int, prefetch: bool
) -> Iterator[tuple[int, tuple[tuple[int, int], ...], frozenset[int]]]:
    after = done | (1 << op)
    needed = {t for t in range(len(tb.tensors)) if tb.consumers[t] & ~done}  # still read by op or later
    ins, outs = set(tb.inputs[op]), tb.outputs[op]
    resident = [(t, off) for t, off in config if t in needed]
    for keep_bits in range(1 << len(resident)):
        kept = [resident[i] for i in range(len(resident)) if keep_bits >> i & 1]
        kept_names = {t for t, _ in kept}
        used = 0
        for t, off in kept:
            used |= tb.mask(t, off)
        must = sorted(ins - kept_names)
        optional = []
        if prefetch:
            for t in sorted(needed - kept_names - ins):
                has_copy = (
                    tb.kind[t] in ("input", "weight")
                    or t in stored
                    or (tb.kind[t] == "output" and tb.producer[t] >= 0 and done >> tb.producer[t] & 1)
                )
                if has_copy and tb.consumers[t] & ~after:
                    optional.append(t)
        for r in range(len(optional) + 1):
            for extra in itertools.combinations(optional, r):
                loads = [*must, *extra]
                cost, new_stored = 0, set(stored)
                for t in loads:
                    cost += tb.size[t]
                    if tb.kind[t] == "activation" and t not in new_stored:
                        cost += tb.size[t]  # the store that made its DRAM copy
                        new_stored.add(t)
                if not any(tb.over[op].values()):
                    for placed in _placements(tb, [*loads, *outs], used):
                        content = tuple(sorted([*kept, *placed]))
                        yield cost, content, frozenset(new_stored)
                    continue
                for loaded in _placements(tb, loads, used):
                    at = {t: off for t, off in [*kept, *loaded] if t in ins}
                    busy = used
                    for t, off in loaded:
                        busy |= tb.mask(t, off)
                    for placed, gone in _outputs_placed(tb, op, outs, busy, at, frozenset()):
                        content = tuple(sorted(c for c in [*kept, *loaded, *placed] if c[0] not in gone))
                        yield cost, content, frozenset(new_stored)


def optimum(
    graph: Graph,
    capacity: int,
    *,
    alignment: int = 1,
    order: Sequence[str] | None = None,
    prefetch: bool = False,
    max_states: int = 2_000_000,
) -> int | None:
    """Least extra bytes of any plan (``None`` when none exists); ``order`` fixes the operator order."""
    tb = _Tables(graph, capacity, alignment)
    n = len(tb.ops)
    fixed = [tb.op_idx[o] for o in order] if order is not None else None
    compulsory = graph.compulsory_bytes - sum(t.bytes for t in graph.tensors if t.kind == "output")
    start = (0, (), frozenset())
    best = {start: 0}
    heap = [(0, 0, 0, start)]
    tie = itertools.count(1)
    while heap:
        cost, _, _, state = heapq.heappop(heap)
        if best.get(state, cost) < cost:
            continue
        done, config, stored = state
        step = done.bit_count()
        if step == n:
            return cost - compulsory
        if len(best) > max_states:
            raise RuntimeError("oracle state limit reached; use a smaller instance")
        ready = (
            [fixed[step]]
            if fixed is not None
            else [k for k in range(n) if not done >> k & 1 and tb.preds[k] & ~done == 0]
        )
        for op in ready:
            later = done | 1 << op
            for add, content, new_stored in _moves(tb, done, config, stored, op, prefetch):
                # a copy of an activation nobody reads again changes nothing: forget it
                nxt = (later, tb.canonical(content), frozenset(t for t in new_stored if tb.consumers[t] & ~later))
                c = cost + add
                if c < best.get(nxt, c + 1):
                    best[nxt] = c
                    # among equally cheap states, the deepest first: a plan is found without a sweep
                    heapq.heappush(heap, (c, -step, next(tie), nxt))
    return None


def min_peak(graph: Graph, *, alignment: int = 1, upper: int | None = None) -> int:
    """Smallest scratchpad in which some plan has no extra traffic (every tensor loaded or made once)."""
    capacity = max(graph.min_scratchpad, 1)
    upper = upper if upper is not None else sum(t.bytes for t in graph.tensors)
    while capacity <= upper:
        if optimum(graph, capacity, alignment=alignment) == 0:
            return capacity
        capacity += 1
    raise RuntimeError("no capacity up to the total size runs without eviction")


# ------------------------------------------------------------------------------------------------
# A faster oracle for graphs of up to about seven operators: enumerate orders and evictions in the
# normal form of docs/formulation.md (between two consecutive uses a tensor is kept at one address,
# or freed after the first and loaded just before the second), cheapest first, and decide each by an
# exhaustive placement search. ``optimum`` above, which assumes no normal form, checks it on tiny
# graphs (tests/test_formulation.py::test_oracles_agree).


def topological_orders(graph: Graph) -> Iterator[tuple[str, ...]]:
    preds = {o: set(graph.dag.predecessors(o)) for o in graph.default_order}

    def extend(prefix: list[str], done: set[str]) -> Iterator[tuple[str, ...]]:
        if len(prefix) == len(preds):
            yield tuple(prefix)
            return
        for o in graph.default_order:
            if o not in done and preds[o] <= done:
                prefix.append(o)
                done.add(o)
                yield from extend(prefix, done)
                done.remove(o)
                prefix.pop()

    yield from extend([], set())


def _packs(segments: Sequence[tuple[int, int, int]], capacity: int, alignment: int) -> bool:
    """Whether segments ``(first, last, size)`` get aligned offsets in ``[0, capacity)`` such that no two
    time-overlapping ones overlap: a step-by-step search over every offset, remembering dead ends."""
    segs = sorted(segments)
    starting: dict[int, list[int]] = {}
    for i, (first, _, _) in enumerate(segs):
        starting.setdefault(first, []).append(i)
    steps = sorted(starting)
    dead: set[tuple[int, frozenset[tuple[int, int]]]] = set()

    def at_step(k: int, carried: frozenset[tuple[int, int]]) -> bool:
        if k == len(steps):
            return True
        s = steps[k]
        alive = frozenset((i, off) for i, off in carried if segs[i][1] >= s)
        if (k, alive) in dead:
            return False
        used = 0
        for i, off in alive:
            used |= ((1 << segs[i][2]) - 1) << off
        if place(k, starting[s], 0, used, alive):
            return True
        dead.add((k, alive))
        return False

    def place(k: int, todo: list[int], j: int, used: int, alive: frozenset[tuple[int, int]]) -> bool:
        if j == len(todo):
            return at_step(k + 1, alive)
        i = todo[j]
        size = segs[i][2]
        for off in range(0, capacity - size + 1, alignment):
            mask = ((1 << size) - 1) << off
            if not mask & used and place(k, todo, j + 1, used | mask, alive | {(i, off)}):
                return True
        return False

    return at_step(0, frozenset())


def optimum_by_segments(
    graph: Graph, capacity: int, *, alignment: int = 1, order: Sequence[str] | None = None
) -> int | None:
    """Least extra bytes over all orders (or ``order``) and all keep/break choices, or None."""
    candidates: list[tuple[int, tuple[tuple[int, int, int], ...]]] = []
    orders = [tuple(order)] if order is not None else list(topological_orders(graph))
    for ord_ in orders:
        uses: dict[str, list[int]] = {}
        for s, name in enumerate(ord_):
            op = graph.op(name)
            for t in (*op.outputs, *op.inputs):
                uses.setdefault(t, []).append(s)
        names = [t for t in uses if graph.size(t) > 0]
        for t in names:
            uses[t].sort()
        choices = []
        for t in names:
            per = []
            gaps = len(uses[t]) - 1
            for breaks in range(1 << gaps):
                segs, start = [], uses[t][0]
                for i in range(gaps):
                    if breaks >> i & 1:
                        segs.append((start, uses[t][i], graph.size(t)))
                        start = uses[t][i + 1]
                segs.append((start, uses[t][-1], graph.size(t)))
                n_breaks = bin(breaks).count("1")
                kind = graph.tensor(t).kind
                cost = graph.size(t) * (n_breaks + (1 if kind == "activation" and n_breaks else 0))
                per.append((cost, segs))
            choices.append(per)
        position = {t: i for i, t in enumerate(names)}
        pairs = [
            (position[out], position[inp], s)
            for s, name in enumerate(ord_)
            for out, inp in graph.op(name).inplace
            if out in position
        ]
        for combo in itertools.product(*choices):
            cost = sum(c for c, _ in combo)
            for segs in _overwrites(combo, pairs):
                load = [0] * len(ord_)
                for first, last, size in segs:
                    for s in range(first, last + 1):
                        load[s] += -(-size // alignment) * alignment
                if max(load, default=0) > -(-capacity // alignment) * alignment:
                    continue
                candidates.append((cost, tuple(segs)))
    for cost, segments in sorted(candidates):
        if _packs(segments, capacity, alignment):
            return cost
    return None


def _root(parent: dict[tuple[int, int], tuple[int, int]], key: tuple[int, int]) -> tuple[int, int]:
    while parent[key] != key:
        key = parent[key]
    return key


def _overwrites(
    combo: Sequence[tuple[int, list[tuple[int, int, int]]]], pairs: Sequence[tuple[int, int, int]]
) -> Iterator[list[tuple[int, int, int]]]:
    """The segments of ``combo`` for every choice of in-place overwrites among ``pairs`` ``(OUT, IN, step)``.

    ``OUT`` may overwrite ``IN`` where ``IN``'s segment ends at that step (kept no further): the two are then
    one segment at one offset, from ``IN``'s first step to ``OUT``'s last. One output per input and step.
    """
    valid = [
        (out, inp, s)
        for out, inp, s in pairs
        if any(first <= s == last for first, last, _ in combo[inp][1]) and combo[out][1][0][0] == s
    ]
    for r in range(len(valid) + 1):
        for chosen in itertools.combinations(valid, r):
            if len({(inp, s) for _, inp, s in chosen}) < r:
                continue  # one input is overwritten by at most one output of a run
            segs = {(i, k): seg for i, (_, ss) in enumerate(combo) for k, seg in enumerate(ss)}
            parent = {key: key for key in segs}
            for out, inp, s in chosen:
                k_in = next(k for k, (first, last, _) in enumerate(combo[inp][1]) if first <= s == last)
                parent[_root(parent, (out, 0))] = _root(parent, (inp, k_in))
            merged: dict[tuple[int, int], tuple[int, int, int]] = {}
            for key, (first, last, size) in segs.items():
                top = _root(parent, key)
                have = merged.get(top)
                merged[top] = (first, last, size) if have is None else (min(have[0], first), max(have[1], last), size)
            yield list(merged.values())


def min_peak_by_segments(graph: Graph, *, alignment: int = 1) -> int:
    """Smallest scratchpad in which some plan has no extra traffic, by :func:`optimum_by_segments`."""
    capacity = graph.min_scratchpad
    while optimum_by_segments(graph, capacity, alignment=alignment) != 0:
        capacity += 1
    return capacity
