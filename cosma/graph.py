"""The intermediate representation: an operator DAG over sized tensors, and its analyses.

A :class:`Graph` is what every method schedules. It is immutable once built and knows
nothing about ONNX: the front end lowers a model into it (folding constants, aliasing
views, fusing epilogues), and tests build small ones by hand.

Analyses, for an operator order ``order`` (a topological order of the operators):

- working set of operator ``o``: ``sum(bytes(t) for t in inputs(o) | outputs(o))``; no order
  can run ``o`` in less scratchpad than that.
- ``M_R = max_o working_set(o)``: the smallest scratchpad that can run the model at all.
- lifetime of tensor ``t``: the closed step interval ``[first, last]`` over which a plan that
  never evicts keeps ``t`` resident: from its producer (or, for inputs and weights, from its
  first reader) to its last reader (or its producer when nothing reads it).
- peak of an order: ``max_i sum(bytes(t) for t live at step i)``: the scratchpad that the order
  needs with no eviction at all.

In-place pairs. An operator may declare ``inplace`` pairs ``(OUT, IN)``: its output ``OUT`` (of
``IN``'s bytes) may be written over its input ``IN`` (plan-format.md, "In-place operators"). The
memory analyses honour them:

- a working set counts each declared ``IN`` once for itself and its ``OUT``: ``IN`` can always be
  overwritten (stored first when a later reader needs it, then reloaded), so ``M_R`` drops;
- the live bytes of an order (no eviction, so nothing is ever reloaded) save ``bytes(IN)`` at the
  step of ``o`` only when ``o`` is the last operator of the order to touch ``IN``: ``IN`` then ends
  where ``OUT`` begins.

One input is overwritten by at most one output, so an ``IN`` declared by two outputs saves once.
A graph without pairs (``load_onnx(..., inplace=False)``) gives the figures of a runtime that never
writes in place.

Example:
    >>> g = Graph.build("chain", [Tensor("x", 4, "input"), Tensor("y", 8, "activation"),
    ...                           Tensor("z", 2, "output")],
    ...                 [Operator("a", "Relu", ("x",), ("y",)), Operator("b", "Relu", ("y",), ("z",))])
    >>> g.min_scratchpad, g.peak(g.default_order)
    (12, 12)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Literal

import networkx as nx

from cosma.errors import GraphError

TensorKind = Literal["input", "weight", "activation", "output"]
TENSOR_KINDS: tuple[str, ...] = ("input", "weight", "activation", "output")
#: Kinds that start in DRAM (loading them is compulsory once, free to drop).
DRAM_KINDS: frozenset[str] = frozenset({"input", "weight"})
#: Kinds that an operator produces in the scratchpad.
PRODUCED_KINDS: frozenset[str] = frozenset({"activation", "output"})


def round_up(value: int, alignment: int) -> int:
    """Smallest multiple of ``alignment`` that is at least ``value``."""
    return -(-value // alignment) * alignment


@dataclass(frozen=True)
class Tensor:
    """A tensor the scratchpad may hold: ``bytes`` of one ``kind`` (see plan-format.md)."""

    name: str
    bytes: int
    kind: TensorKind
    shape: tuple[int, ...] = ()
    dtype: str = ""


@dataclass(frozen=True)
class Operator:
    """One schedulable operator. ``fused`` lists the op types folded into it by the front end.

    ``nodes`` is provenance for executing a plan (:mod:`cosma.execute`): the labels of the ONNX
    nodes the operator covers, its own first, then its fused epilogues in order (empty for graphs
    built by hand). It takes no part in equality or the repr, so graphs compare as before.
    """

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    fused: tuple[str, ...] = ()
    nodes: tuple[str, ...] = field(default=(), compare=False, repr=False)
    #: ``(OUT, IN)`` pairs: output ``OUT`` may overwrite input ``IN`` (equal bytes; one ``IN`` per ``OUT``).
    #: Left out of the repr so that graphs print as before; it takes part in equality and hashing.
    inplace: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def overwritable(self) -> tuple[str, ...]:
        """The distinct inputs some output of this operator may overwrite, in declaration order."""
        return tuple(dict.fromkeys(i for _, i in self.inplace))


@dataclass(frozen=True)
class Lifetime:
    """Closed step interval ``[first, last]`` over which a tensor is live under an order."""

    first: int
    last: int


@dataclass(frozen=True)
class Graph:
    """Operator DAG over tensors; ``ops`` is kept in the default (ONNX node) order.

    Build one with :meth:`Graph.build`, which checks the invariants: unique names, every
    activation and output produced by exactly one operator, inputs and weights produced by
    none, no tensor both read and written by one operator, and ``ops`` a topological order.
    """

    name: str
    tensors: tuple[Tensor, ...]
    ops: tuple[Operator, ...]
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)  # a proxy: unhashable

    @classmethod
    def build(
        cls,
        name: str,
        tensors: Iterable[Tensor],
        ops: Iterable[Operator],
        metadata: Mapping[str, str] | None = None,
    ) -> Graph:
        graph = cls(name, tuple(tensors), tuple(ops), MappingProxyType(dict(metadata or {})))
        graph._check()
        return graph

    # ----------------------------------------------------------------- lookups
    @cached_property
    def tensor_by_name(self) -> Mapping[str, Tensor]:
        return MappingProxyType({t.name: t for t in self.tensors})

    @cached_property
    def op_by_name(self) -> Mapping[str, Operator]:
        return MappingProxyType({o.name: o for o in self.ops})

    @cached_property
    def _producer(self) -> Mapping[str, str]:
        return MappingProxyType({t: o.name for o in self.ops for t in o.outputs})

    @cached_property
    def _consumers(self) -> Mapping[str, tuple[str, ...]]:
        readers: dict[str, list[str]] = {t.name: [] for t in self.tensors}
        for o in self.ops:
            for t in o.inputs:
                readers[t].append(o.name)
        return MappingProxyType({t: tuple(v) for t, v in readers.items()})

    def tensor(self, name: str) -> Tensor:
        return self.tensor_by_name[name]

    def op(self, name: str) -> Operator:
        return self.op_by_name[name]

    def size(self, name: str) -> int:
        return self.tensor_by_name[name].bytes

    def producer(self, tensor: str) -> str | None:
        """Name of the operator producing ``tensor``, or None for inputs and weights."""
        return self._producer.get(tensor)

    def consumers(self, tensor: str) -> tuple[str, ...]:
        """Operators reading ``tensor``, in default order."""
        return self._consumers[tensor]

    # --------------------------------------------------------------- structure
    @cached_property
    def dag(self) -> nx.DiGraph:
        """Frozen networkx DAG over operator names; edge attribute ``tensors`` lists what flows."""
        g = nx.DiGraph()
        g.add_nodes_from(o.name for o in self.ops)
        for o in self.ops:
            for t in o.inputs:
                p = self._producer.get(t)
                if p is None:
                    continue
                if g.has_edge(p, o.name):
                    g[p][o.name]["tensors"].append(t)
                else:
                    g.add_edge(p, o.name, tensors=[t])
        return nx.freeze(g)

    @property
    def default_order(self) -> tuple[str, ...]:
        """The ONNX node order, which the front end keeps topological."""
        return tuple(o.name for o in self.ops)

    def is_topological(self, order: Sequence[str]) -> bool:
        if len(order) != len(self.ops) or set(order) != set(self.op_by_name):
            return False
        pos = {o: i for i, o in enumerate(order)}
        return all(pos[u] < pos[v] for u, v in self.dag.edges)

    # ---------------------------------------------------------------- budgets
    def working_set(self, op: str, alignment: int = 1) -> int:
        """Bytes operator ``op`` needs resident at once: its inputs and outputs, an in-place output
        sharing the bytes of the input it overwrites."""
        o = self.op_by_name[op]
        total = sum(round_up(self.size(t), alignment) for t in set(o.inputs) | set(o.outputs))
        return total - sum(round_up(self.size(t), alignment) for t in o.overwritable)

    def largest_op(self, alignment: int = 1) -> Operator:
        """The operator with the largest working set (first in default order on ties)."""
        return max(self.ops, key=lambda o: self.working_set(o.name, alignment))

    @cached_property
    def min_scratchpad(self) -> int:
        """M_R: the largest working set, the smallest scratchpad that can run the graph."""
        return max((self.working_set(o.name) for o in self.ops), default=0)

    def bytes_of_kind(self, *kinds: str) -> int:
        return sum(t.bytes for t in self.tensors if t.kind in kinds)

    @cached_property
    def compulsory_bytes(self) -> int:
        """Traffic no plan avoids: every read input/weight loaded once, every output stored once."""
        read = {t for o in self.ops for t in o.inputs}
        return sum(t.bytes for t in self.tensors if (t.kind in DRAM_KINDS and t.name in read)) + sum(
            t.bytes for t in self.tensors if t.kind == "output"
        )

    # ----------------------------------------------------------- under an order
    def lifetimes(self, order: Sequence[str] | None = None) -> dict[str, Lifetime]:
        """Closed live interval of every tensor that some operator touches, under ``order``."""
        order = self.default_order if order is None else tuple(order)
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for step, name in enumerate(order):
            o = self.op_by_name[name]
            for t in (*o.inputs, *o.outputs):
                first.setdefault(t, step)
                last[t] = step
        return {t: Lifetime(first[t], last[t]) for t in first}

    def live_bytes(self, order: Sequence[str] | None = None) -> list[int]:
        """Resident bytes at each step of ``order`` when nothing is ever evicted."""
        order = self.default_order if order is None else tuple(order)
        delta = [0] * (len(order) + 1)
        lifetimes = self.lifetimes(order)
        for t, life in lifetimes.items():
            delta[life.first] += self.size(t)
            delta[life.last + 1] -= self.size(t)
        for step, name in enumerate(order):
            for t in self.op_by_name[name].overwritable:
                if lifetimes[t].last == step:  # read by no later operator: its output takes its bytes
                    delta[step] -= self.size(t)
                    delta[step + 1] += self.size(t)
        out, running = [], 0
        for d in delta[:-1]:
            running += d
            out.append(running)
        return out

    def peak(self, order: Sequence[str] | None = None) -> int:
        """Peak resident bytes of ``order`` with no eviction.

        The order matters: finishing one branch before starting the other keeps its large
        intermediate ``A`` from being live together with ``B``.

        >>> g = Graph.build("branches", [Tensor("x", 4, "input"), Tensor("A", 16, "activation"),
        ...     Tensor("a", 1, "activation"), Tensor("B", 16, "activation"), Tensor("b", 1, "activation"),
        ...     Tensor("z", 1, "output")], [Operator("a1", "Conv", ("x",), ("A",)),
        ...     Operator("b1", "Conv", ("x",), ("B",)), Operator("a2", "MaxPool", ("A",), ("a",)),
        ...     Operator("b2", "MaxPool", ("B",), ("b",)), Operator("join", "Add", ("a", "b"), ("z",))])
        >>> g.default_order
        ('a1', 'b1', 'a2', 'b2', 'join')
        >>> g.live_bytes(), g.peak()
        ([20, 36, 33, 18, 3], 36)
        >>> depth_first = ["a1", "a2", "b1", "b2", "join"]
        >>> g.live_bytes(depth_first), g.peak(depth_first), g.lifetimes(depth_first)["A"]
        ([20, 21, 21, 18, 3], 21, Lifetime(first=0, last=1))
        >>> g.min_scratchpad  # M_R: b1 holds x and B; no order needs less
        20
        """
        return max(self.live_bytes(order), default=0)

    # ---------------------------------------------------------------- variants
    def without_weights(self) -> Graph:
        """The activation-only graph: weights leave ``tensors`` and every operator's inputs."""
        weights = {t.name for t in self.tensors if t.kind == "weight"}
        ops = [
            Operator(
                o.name,
                o.op_type,
                tuple(t for t in o.inputs if t not in weights),
                o.outputs,
                o.fused,
                o.nodes,
                tuple(p for p in o.inplace if p[1] not in weights),
            )
            for o in self.ops
        ]
        return Graph.build(self.name, (t for t in self.tensors if t.name not in weights), ops, self.metadata)

    def with_element_bytes(self, element_bytes: int) -> Graph:
        """Every tensor resized to ``element_bytes`` per element (an int8 accelerator: 1)."""

        def resized(t: Tensor) -> Tensor:
            elements = 1
            for d in t.shape:
                elements *= d
            return Tensor(t.name, elements * element_bytes, t.kind, t.shape, t.dtype)

        sizes = {t.name: resized(t).bytes for t in self.tensors}
        # a pair whose tensors differ in element size no longer has equal bytes: it is dropped
        ops = [
            o
            if all(sizes[a] == sizes[b] for a, b in o.inplace)
            else replace(o, inplace=tuple(p for p in o.inplace if sizes[p[0]] == sizes[p[1]]))
            for o in self.ops
        ]
        return Graph.build(self.name, map(resized, self.tensors), ops, self.metadata)

    def without_inplace(self) -> Graph:
        """The graph with no in-place pairs: the figures of a runtime that never writes in place."""
        if not any(o.inplace for o in self.ops):
            return self
        return Graph.build(self.name, self.tensors, (replace(o, inplace=()) for o in self.ops), self.metadata)

    # ------------------------------------------------------------------ checks
    def _check_inplace(self, o: Operator) -> None:
        outs: set[str] = set()
        for out, inp in o.inplace:
            if out not in o.outputs or inp not in o.inputs:
                raise GraphError(
                    f"operator {o.name!r} declares in-place pair ({out!r}, {inp!r}) outside its outputs/inputs"
                )
            if out in outs:
                raise GraphError(f"operator {o.name!r} declares output {out!r} in place over two inputs")
            outs.add(out)
            if self.tensor_by_name[out].bytes != self.tensor_by_name[inp].bytes:
                raise GraphError(f"operator {o.name!r} declares {out!r} in place over {inp!r}, of other bytes")

    def _check(self) -> None:
        seen: set[str] = set()
        for t in self.tensors:
            if t.name in seen:
                raise GraphError(f"tensor name {t.name!r} is repeated")
            if t.kind not in TENSOR_KINDS:
                raise GraphError(f"tensor {t.name!r} has kind {t.kind!r}, not one of {TENSOR_KINDS}")
            if t.bytes < 0:
                raise GraphError(f"tensor {t.name!r} has negative size {t.bytes}")
            seen.add(t.name)
        names: set[str] = set()
        producer: dict[str, str] = {}
        for pos, o in enumerate(self.ops):
            if o.name in names:
                raise GraphError(f"operator name {o.name!r} is repeated")
            names.add(o.name)
            for name in (*o.inputs, *o.outputs):
                if name not in seen:
                    raise GraphError(f"operator {o.name!r} uses unknown tensor {name!r}")
            if set(o.inputs) & set(o.outputs):
                raise GraphError(f"operator {o.name!r} reads and writes the same tensor")
            if len(set(o.inputs)) != len(o.inputs) or len(set(o.outputs)) != len(o.outputs):
                raise GraphError(f"operator {o.name!r} lists a tensor twice")
            self._check_inplace(o)
            for name in o.inputs:
                kind = self.tensor_by_name[name].kind
                if kind in PRODUCED_KINDS and name not in producer:
                    raise GraphError(
                        f"operator {o.name!r} (position {pos}) reads {name!r} before it is produced: "
                        "ops must be in topological order"
                    )
            for name in o.outputs:
                kind = self.tensor_by_name[name].kind
                if kind in DRAM_KINDS:
                    raise GraphError(f"operator {o.name!r} produces {name!r}, which is of kind {kind}")
                if name in producer:
                    raise GraphError(f"tensor {name!r} is produced by both {producer[name]!r} and {o.name!r}")
                producer[name] = o.name
        for t in self.tensors:
            if t.kind in PRODUCED_KINDS and t.name not in producer:
                raise GraphError(f"tensor {t.name!r} of kind {t.kind} has no producing operator")


def stable_topological_order(preds: Sequence[Iterable[int]]) -> list[int] | int:
    """Indices ``0..n-1`` ordered so that every ``p`` in ``preds[i]`` comes before ``i``, the smallest
    index first among those ready (a file's own order is kept wherever it is topological); or, when
    the edges close a cycle, the smallest index on one.

    >>> stable_topological_order([{2}, set(), {1}])
    [1, 2, 0]
    >>> stable_topological_order([{1}, {0}])
    0
    """
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(preds)))
    dag.add_edges_from((p, i) for i, ps in enumerate(preds) for p in ps)
    try:
        return list(nx.lexicographical_topological_sort(dag))
    except nx.NetworkXUnfeasible:
        return min(u for u, _ in nx.find_cycle(dag))
