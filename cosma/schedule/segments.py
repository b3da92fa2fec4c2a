"""Cut-point decomposition of the peak-memory problem.

An operator ``v`` is a *cut point* when every other operator is an ancestor or a descendant of
it: every topological order then runs all of ``v``'s ancestors before ``v`` and all of its
descendants after. Cut points split the default order into :class:`Segment` s (each cut point
a segment of its own, the operators between two consecutive cut points another) which every
topological order runs one after the other, in the same sequence.

The peak of an order (:meth:`cosma.graph.Graph.peak`) then separates exactly. Seen from inside
segment ``k``, a tensor ``t`` with toucher set ``U_k(t)`` (its producer and readers that lie in
``k``) is

- ``pre``  when some operator of an earlier segment touches it (it is live when ``k`` starts),
- ``post`` when some operator of a later segment touches it (it stays live after ``k`` ends),

and at the step that runs operator ``o`` after the set ``S`` of ``k``'s operators,

    live(t) = (pre(t) or U_k(t) ∩ (S ∪ {o}) ≠ ∅) and (post(t) or U_k(t) ⊄ S).

An in-place pair ``(OUT, IN)`` of ``o`` (:mod:`cosma.graph`) takes ``bytes(IN)`` off ``o``'s step
when ``IN`` closes there (not ``post`` and no other toucher of ``k`` after ``o``): ``OUT`` is
written over it, as :meth:`Graph.live_bytes <cosma.graph.Graph.live_bytes>` counts.

Tensors that are both ``pre`` and ``post`` but touched by no operator of ``k`` are live at every
step of ``k``: the segment's ``background``. Hence, writing ``peak_k`` for the peak of segment
``k``'s own order,

    peak(order) = max_k (background_k + peak_k(order_k)),

and the minimum peak over all orders is the maximum over segments of each segment's minimum:
the segments can be solved independently and exactly.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> t = [Tensor("x", 1, "input"), Tensor("y", 1, "output")]
    >>> t += [Tensor(n, 2, "activation") for n in "abcd"]
    >>> g = Graph.build("diamond", t, [Operator("s", "Split", ("x",), ("a", "b")),
    ...                                Operator("l", "Relu", ("a",), ("c",)), Operator("r", "Relu", ("b",), ("d",)),
    ...                                Operator("j", "Add", ("c", "d"), ("y",))])
    >>> [s.ops for s in segments(g)]
    [('s',), ('l', 'r'), ('j',)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from cosma.graph import Graph


@dataclass(frozen=True)
class Segment:
    """Operators that every topological order runs contiguously, with the tensors they see.

    Operators and tensors are numbered locally: operator ``i`` is ``ops[i]``; tensor ``j`` has
    ``sizes[j]`` bytes, touchers ``users[j]`` (a bit mask over local operators) and the flags
    ``pre[j]`` / ``post[j]`` of the module docstring.
    """

    ops: tuple[str, ...]
    preds: tuple[int, ...]  # per operator: bit mask of its predecessors inside the segment
    succs: tuple[tuple[int, ...], ...]  # per operator: its successors inside the segment
    touch: tuple[tuple[int, ...], ...]  # per operator: local tensors it reads or writes
    sizes: tuple[int, ...]
    users: tuple[int, ...]
    pre: tuple[bool, ...]
    post: tuple[bool, ...]
    tensor_names: tuple[str, ...]
    background: int
    #: per operator: local tensors (distinct inputs) that an in-place output of it may overwrite
    overwrites: tuple[tuple[int, ...], ...] = ()

    @property
    def full(self) -> int:
        """Bit mask of all operators."""
        return (1 << len(self.ops)) - 1

    @cached_property
    def initial_open(self) -> int:
        """Bytes live before the segment's first step (its ``pre`` tensors)."""
        return sum(s for s, p in zip(self.sizes, self.pre) if p)

    @cached_property
    def op_floor(self) -> tuple[int, ...]:
        """Per operator ``o``, bytes live at its step in every order.

        Tensor ``t`` is live at ``o``'s step whenever it is opened no later than ``o`` (``pre``,
        touched by ``o`` or by an ancestor of ``o``) and closed no earlier (``post``, touched by
        ``o`` or by a descendant of ``o``): ancestors run before ``o`` and descendants after it in
        every topological order.
        """
        n = len(self.ops)
        ancestors = [0] * n
        for i in range(n):  # operators are listed in a topological order
            for p in _bits(self.preds[i]):
                ancestors[i] |= ancestors[p] | (1 << p)
        descendants = [0] * n
        for i in reversed(range(n)):
            for s in self.succs[i]:
                descendants[i] |= descendants[s] | (1 << s)
        floor = [0] * n
        for t, users in enumerate(self.users):
            opened = self.full if self.pre[t] else users
            closed = self.full if self.post[t] else users
            for u in _bits(users):
                if not self.pre[t]:
                    opened |= descendants[u]
                if not self.post[t]:
                    closed |= ancestors[u]
            for o in _bits(opened & closed):
                floor[o] += self.sizes[t]
        for o, ins in enumerate(self.overwrites):
            for t in ins:
                # some order may make o the last toucher of t, which then lends o's output its bytes
                if not self.post[t] and not self.users[t] & descendants[o]:
                    floor[o] -= self.sizes[t]
        return tuple(floor)

    @cached_property
    def lower_bound(self) -> int:
        """A peak no order of the segment goes below (the largest operator floor)."""
        return max(self.op_floor, default=0)

    @cached_property
    def neighbours(self) -> tuple[int, ...]:
        """Per operator, bit mask of the operators that share a tensor with it (itself included)."""
        out = []
        for ts in self.touch:
            mask = 0
            for t in ts:
                mask |= self.users[t]
            out.append(mask)
        return tuple(out)

    @cached_property
    def _touch_info(self) -> tuple[tuple[tuple[int, int, bool, bool], ...], ...]:
        """Per operator, ``(users, size, pre, post)`` of each tensor it touches (the hot loop's data)."""
        return tuple(tuple((self.users[t], self.sizes[t], self.pre[t], self.post[t]) for t in ts) for ts in self.touch)

    @cached_property
    def _overwrite_info(self) -> tuple[tuple[tuple[int, int, bool], ...], ...]:
        """Per operator, ``(users, size, post)`` of each input an in-place output of it may overwrite."""
        per_op = self.overwrites or ((),) * len(self.ops)
        return tuple(tuple((self.users[t], self.sizes[t], self.post[t]) for t in ts) for ts in per_op)

    def step(self, done: int, open_bytes: int, op: int) -> tuple[int, int]:
        """``(live bytes at the step running op, live bytes after it)`` from state ``done``.

        ``open_bytes`` is what is live between steps after ``done`` (see the module docstring).
        """
        after = done | (1 << op)
        live = opened = open_bytes
        for users, size, pre, post in self._touch_info[op]:
            stays_open = post or users & ~after
            if pre or users & done:  # it was open already
                if not stays_open:
                    opened -= size
            else:
                live += size
                if stays_open:
                    opened += size
        for users, size, post in self._overwrite_info[op]:
            if not (post or users & ~after):  # closes here: the in-place output reuses its bytes
                live -= size
        return live, opened

    def peak(self, local_order: list[int] | tuple[int, ...]) -> int:
        """Peak of the segment's steps under ``local_order`` (background excluded)."""
        done, open_bytes, peak = 0, self.initial_open, 0
        for op in local_order:
            live, open_bytes = self.step(done, open_bytes, op)
            peak = max(peak, live)
            done |= 1 << op
        return peak


def _bits(mask: int) -> list[int]:
    """Positions of the set bits of ``mask``, lowest first."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def cut_points(graph: Graph) -> list[bool]:
    """Per operator in default order: whether it is a cut point (ancestor or descendant of all others)."""
    n = len(graph.ops)
    index = {o.name: i for i, o in enumerate(graph.ops)}
    preds = [[index[p] for p in graph.dag.predecessors(o.name)] for o in graph.ops]
    succs = [[index[s] for s in graph.dag.successors(o.name)] for o in graph.ops]
    ancestors = [0] * n
    for i in range(n):  # the default order is topological
        mask = 0
        for p in preds[i]:
            mask |= ancestors[p] | (1 << p)
        ancestors[i] = mask
    descendants = [0] * n
    for i in reversed(range(n)):
        mask = 0
        for s in succs[i]:
            mask |= descendants[s] | (1 << s)
        descendants[i] = mask
    return [ancestors[i].bit_count() + descendants[i].bit_count() == n - 1 for i in range(n)]


def segments(graph: Graph) -> list[Segment]:
    """The graph cut at its cut points, in the order every topological order runs them."""
    cuts = cut_points(graph)
    groups: list[list[int]] = []
    for i, is_cut in enumerate(cuts):
        if is_cut or not groups or cuts[groups[-1][-1]]:
            groups.append([i])
        else:
            groups[-1].append(i)
    group_of = {graph.ops[i].name: g for g, members in enumerate(groups) for i in members}

    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for o in graph.ops:
        g = group_of[o.name]
        for t in (*o.inputs, *o.outputs):
            first[t] = min(first.get(t, g), g)
            last[t] = max(last.get(t, g), g)
    # tensors live through a whole segment they are not touched in: background, by difference array
    through = [0] * (len(groups) + 1)
    for t, f in first.items():
        if last[t] - f >= 2:
            through[f + 1] += graph.size(t)
            through[last[t]] -= graph.size(t)

    out: list[Segment] = []
    running = 0
    for g, members in enumerate(groups):
        running += through[g]

        def before(t: str, g: int = g) -> bool:
            return first[t] < g

        def after(t: str, g: int = g) -> bool:
            return last[t] > g

        seg = build_segment(graph, [graph.ops[i].name for i in members], 0, before, after)
        inside_through = sum(graph.size(t) for t in seg.tensor_names if first[t] < g < last[t])
        out.append(replace(seg, background=running - inside_through))
    return out


def spans(graph: Graph, order: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
    """First and last position in ``order`` of an operator touching each tensor."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for position, name in enumerate(order):
        o = graph.op(name)
        for t in (*o.inputs, *o.outputs):
            first.setdefault(t, position)
            last[t] = position
    return first, last


def window(
    graph: Graph,
    order: Sequence[str],
    start: int,
    end: int,
    order_spans: tuple[dict[str, int], dict[str, int]] | None = None,
) -> Segment:
    """The operators ``order[start:end]`` as a segment, with everything else of ``order`` fixed.

    Any topological order of the window's operators spliced back into ``order`` gives a
    topological order whose steps outside the window are unchanged. ``order_spans`` is
    :func:`spans` of ``order``, when the caller has it.
    """
    first, last = order_spans or spans(graph, order)
    inside = {t for name in order[start:end] for o in (graph.op(name),) for t in (*o.inputs, *o.outputs)}
    background = sum(graph.size(t) for t in first if first[t] < start and last[t] >= end and t not in inside)
    return build_segment(graph, order[start:end], background, lambda t: first[t] < start, lambda t: last[t] >= end)


def build_segment(
    graph: Graph,
    ops: Sequence[str],
    background: int,
    pre: Callable[[str], bool],
    post: Callable[[str], bool],
) -> Segment:
    """The segment of ``ops`` (a topological order of them) whose tensors' flags ``pre`` and ``post`` give."""
    local_op = {name: k for k, name in enumerate(ops)}
    tensor_ids: dict[str, int] = {}
    touch: list[tuple[int, ...]] = []
    users: list[int] = []
    overwrites: list[tuple[int, ...]] = []
    for k, name in enumerate(ops):
        o = graph.op(name)
        ids = []
        for t in dict.fromkeys((*o.inputs, *o.outputs)):
            if t not in tensor_ids:
                tensor_ids[t] = len(tensor_ids)
                users.append(0)
            users[tensor_ids[t]] |= 1 << k
            ids.append(tensor_ids[t])
        touch.append(tuple(ids))
        overwrites.append(tuple(tensor_ids[t] for t in o.overwritable))
    names = tuple(tensor_ids)
    preds = []
    succs = []
    for name in ops:
        preds.append(sum(1 << local_op[p] for p in graph.dag.predecessors(name) if p in local_op))
        succs.append(tuple(sorted(local_op[s] for s in graph.dag.successors(name) if s in local_op)))
    return Segment(
        ops=tuple(ops),
        preds=tuple(preds),
        succs=tuple(succs),
        touch=tuple(touch),
        sizes=tuple(graph.size(t) for t in names),
        users=tuple(users),
        pre=tuple(pre(t) for t in names),
        post=tuple(post(t) for t in names),
        tensor_names=names,
        background=background,
        overwrites=tuple(overwrites) if any(overwrites) else (),
    )
