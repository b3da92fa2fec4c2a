"""The data every exact formulation shares: scaled sizes, use lists, step windows, possible successions.

An :class:`Instance` is built once from a graph, an accelerator and a mode, and read by the
CP-SAT model (:mod:`cosma.formulation.cpsat`), the MILP (:mod:`cosma.formulation.milp`) and the
bounds (:mod:`cosma.formulation.bounds`). It holds no solver object.

Scaling (docs/formulation.md, "Units"). Addresses are counted in units of
``unit = alignment * G`` bytes, where ``G`` is the gcd of the aligned footprints
``ceil(bytes / alignment)`` of the modelled tensors. A tensor occupies ``footprint`` units and
may start at any unit ``0 .. top``, with ``top = floor(floor((C - bytes) / alignment) / G)``; at
most ``capacity = floor(ceil(C / alignment) / G)`` units are resident at once. No optimum is lost:
pushing every residency down as far as it goes (gravity) leaves each offset at 0 or at the end
of another residency, a sum of footprints, hence a multiple of ``G`` aligned units.

Uses. The uses of tensor ``t`` are its producer (if any) followed by its consumers. Between two
uses that are consecutive in the order, ``t`` is either kept (resident throughout, at one
address) or broken (freed after the first, loaded again just before the second). An optimal
plan needs nothing else (docs/formulation.md, "Normal form").

Windows. ``earliest[o] .. latest[o]`` are the steps operator ``o`` may take: in joint and
min-peak mode ``|ancestors(o)| .. N - 1 - |descendants(o)|``, in fixed-order mode its position.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, reduce
from types import MappingProxyType
from typing import Literal

from cosma.graph import DRAM_KINDS, Graph
from cosma.hardware import Accelerator

Mode = Literal["joint", "fixed-order", "min-peak"]
MODES: tuple[str, ...] = ("joint", "fixed-order", "min-peak")


def _frozen(d: dict) -> Mapping:
    return MappingProxyType(d)


@dataclass(frozen=True)
class Instance:
    """One exact problem: ``graph`` on ``accelerator`` in ``mode`` (``order`` fixed in fixed-order mode).

    Sizes (``footprint``, ``top``, ``capacity``) are in address units of ``unit`` bytes; costs
    (``reload_cost``, ``spill_cost``) are in units of ``cost_unit`` bytes.
    """

    graph: Graph
    accelerator: Accelerator
    mode: Mode
    order: tuple[str, ...]
    unit: int
    capacity: int
    cost_unit: int
    tensors: tuple[str, ...]
    footprint: Mapping[str, int]
    top: Mapping[str, int]
    uses: Mapping[str, tuple[str, ...]]
    earliest: Mapping[str, int]
    latest: Mapping[str, int]
    ancestors: Mapping[str, int]  # bitset over op indices (index in ``order``)
    descendants: Mapping[str, int]
    index: Mapping[str, int]

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls, graph: Graph, accelerator: Accelerator, mode: Mode = "joint", order: Sequence[str] | None = None
    ) -> Instance:
        """Scale, index and window ``graph`` for ``mode``; ``order`` defaults to the ONNX order."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
        order = graph.default_order if order is None else tuple(order)
        if not graph.is_topological(order):
            raise ValueError("the order is not a topological order of the graph's operators")
        a, capacity_bytes = accelerator.alignment, accelerator.scratchpad_bytes
        touched = {t for o in graph.ops for t in (*o.inputs, *o.outputs)}
        tensors = tuple(t.name for t in graph.tensors if t.name in touched and t.bytes > 0)
        aligned = {t: -(-graph.size(t) // a) for t in tensors}
        g = reduce(math.gcd, aligned.values(), 0) or 1
        footprint = {t: aligned[t] // g for t in tensors}
        top = {t: max(-1, (capacity_bytes - graph.size(t)) // a) // g for t in tensors}
        capacity = -(-capacity_bytes // a) // g
        cost_unit = reduce(math.gcd, (graph.size(t) for t in tensors), 0) or 1

        index = {o: i for i, o in enumerate(order)}
        ancestors: dict[str, int] = {}
        for o in order:  # a topological order: every predecessor is done first
            bits = 0
            for p in graph.dag.predecessors(o):
                bits |= ancestors[p] | (1 << index[p])
            ancestors[o] = bits
        n = len(order)
        descendants = {o: 0 for o in order}
        for o in reversed(order):
            for s in graph.dag.successors(o):
                descendants[o] |= descendants[s] | (1 << index[s])
        if mode == "fixed-order":
            earliest = dict(index)
            latest = dict(index)
        else:
            earliest = {o: ancestors[o].bit_count() for o in order}
            latest = {o: n - 1 - descendants[o].bit_count() for o in order}

        uses = {}
        for t in tensors:
            producer = graph.producer(t)
            consumers = sorted(graph.consumers(t), key=index.__getitem__)
            uses[t] = ((producer,) if producer is not None else ()) + tuple(consumers)
        return cls(
            graph=graph,
            accelerator=accelerator,
            mode=mode,
            order=order,
            unit=a * g,
            capacity=capacity,
            cost_unit=cost_unit,
            tensors=tensors,
            footprint=_frozen(footprint),
            top=_frozen(top),
            uses=_frozen(uses),
            earliest=_frozen(earliest),
            latest=_frozen(latest),
            ancestors=_frozen(ancestors),
            descendants=_frozen(descendants),
            index=_frozen(index),
        )

    # ------------------------------------------------------------------- tensors
    def kind(self, t: str) -> str:
        return self.graph.tensor(t).kind

    def produced(self, t: str) -> bool:
        return self.kind(t) not in DRAM_KINDS

    def reload_cost(self, t: str) -> int:
        """Cost of one more load of ``t`` (in ``cost_unit`` bytes)."""
        return self.graph.size(t) // self.cost_unit

    def spill_cost(self, t: str) -> int:
        """Cost of the one store an activation needs before its first reload; outputs and DRAM kinds: 0."""
        return self.graph.size(t) // self.cost_unit if self.kind(t) == "activation" else 0

    @cached_property
    def fixed(self) -> bool:
        """Whether every operator's step is known (fixed-order mode, or windows that pin every op)."""
        return all(self.earliest[o] == self.latest[o] for o in self.order)

    # ------------------------------------------------------------------- order
    def forced_before(self, u: str, v: str) -> bool:
        """Whether ``u`` runs before ``v`` in every order this instance allows."""
        if self.mode == "fixed-order":
            return self.index[u] < self.index[v]
        return bool(self.ancestors[v] >> self.index[u] & 1) or self.latest[u] < self.earliest[v]

    def after_mask(self, u: str) -> int:
        """Bitset of the operators that run after ``u`` in every allowed order."""
        k, n = self.index[u], len(self.order)
        if self.mode == "fixed-order":
            return ((1 << n) - 1) & ~((1 << (k + 1)) - 1)
        return self.descendants[u] | self._starting_after(self.latest[u])

    def before_mask(self, u: str) -> int:
        """Bitset of the operators that run before ``u`` in every allowed order."""
        k = self.index[u]
        if self.mode == "fixed-order":
            return (1 << k) - 1
        return self.ancestors[u] | self._ending_before(self.earliest[u])

    def _starting_after(self, step: int) -> int:
        return self._window_masks[0][step + 1] if step + 1 < len(self.order) else 0

    def _ending_before(self, step: int) -> int:
        return self._window_masks[1][step - 1] if step >= 1 else 0

    @cached_property
    def _window_masks(self) -> tuple[list[int], list[int]]:
        """[s]: bitset of ops whose earliest step is >= s; and of ops whose latest step is <= s."""
        n = len(self.order)
        by_earliest, by_latest = [0] * (n + 1), [0] * n
        for o in self.order:
            by_earliest[self.earliest[o]] |= 1 << self.index[o]
            by_latest[self.latest[o]] |= 1 << self.index[o]
        for s in range(n - 1, -1, -1):
            by_earliest[s] |= by_earliest[s + 1]
        for s in range(1, n):
            by_latest[s] |= by_latest[s - 1]
        return by_earliest, by_latest

    def may_precede(self, u: str, v: str) -> bool:
        """Whether some allowed order runs ``u`` before ``v``."""
        return u != v and not self.forced_before(v, u)

    def may_follow_directly(self, t: str, u: str, v: str) -> bool:
        """Whether ``v`` may be the next use of ``t`` after ``u``: no other use is forced in between."""
        if not self.may_precede(u, v):
            return False
        return not any(self.forced_before(u, w) and self.forced_before(w, v) for w in self.uses[t] if w not in (u, v))

    def may_be_first(self, t: str, u: str) -> bool:
        return not any(self.forced_before(w, u) for w in self.uses[t] if w != u)

    def may_be_last(self, t: str, u: str) -> bool:
        return not any(self.forced_before(u, w) for w in self.uses[t] if w != u)

    def successions(self, t: str) -> tuple[tuple[str, str], ...]:
        """Pairs ``(u, v)`` of uses of ``t`` that may be consecutive in some allowed order."""
        us = self.uses[t]
        return tuple((u, v) for u in us for v in us if self.may_follow_directly(t, u, v))

    def step_window(self, t: str) -> tuple[int, int]:
        """Steps at which ``t`` may be resident: from its earliest first use to its latest last use."""
        us = self.uses[t]
        return min(self.earliest[u] for u in us), max(self.latest[u] for u in us)

    def may_coexist(self, t: str, u: str) -> bool:
        """Whether ``t`` and ``u`` can be resident at one step (each lives between its first and last use)."""
        if not _overlap(self.step_window(t), self.step_window(u)):
            return False
        ut, uu = self.uses[t], self.uses[u]
        t_first = all(self.forced_before(a, b) for a in ut for b in uu)
        u_first = all(self.forced_before(b, a) for a in ut for b in uu)
        return not (t_first or u_first)


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]
