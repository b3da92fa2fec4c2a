"""Lower bounds from sub-problems: a proven bound on a few operators bounds the whole graph.

The *restriction* of a graph to a set ``S`` of operators keeps ``S``'s operators and the tensors
they touch, with kinds relaxed: a tensor produced outside ``S`` becomes an ``input`` (its first load
is free), one produced in ``S`` and read outside it (or a graph output) an ``output`` (its store is
free); the others keep their kind. Edges that pass through operators outside ``S`` are dropped.

Every plan of the whole graph *projects* onto a plan of the restriction: ``S``'s operators in the
plan's order, each tensor resident at their steps where the plan had it (a stay of the projection
starts with a load only where the plan loaded the tensor in between). On each tensor the projection
moves at most the bytes the plan moved beyond the compulsory ones, so

    optimum(whole) >= optimum(restriction to S) >= any proven lower bound of it,

and the bounds of restrictions that touch no common tensor add up (their traffic is on disjoint
tensors). The neighbourhoods tried are the ones that make NAS cells expensive: a large tensor, its
producer, its readers and their readers (on NASNet-A's stem a 15-operator restriction proves 10.4 MB
in about a second, where the cover and peak bounds give 1.2 MB). Each restriction is solved by the
exact joint method (:func:`cosma.methods.exact.solve_exact`) under a small time limit; its bound counts
whether or not it is proven optimal.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cosma.graph import Graph, Tensor
from cosma.hardware import Accelerator
from cosma.methods.exact import solve_exact
from cosma.options import Options
from cosma.plan import Plan

#: Neighbourhoods larger than this are not solved (their joint models stop proving quickly).
MAX_OPS = 40
#: Tensors tried, the largest first.
MAX_TENSORS = 30
#: Seconds per restriction's solve at most.
SOLVE_LIMIT = 2.0


def restrict(graph: Graph, ops: Iterable[str]) -> Graph:
    """The restriction of ``graph`` to the operators ``ops`` (module docstring)."""
    chosen = set(ops)
    order = [o for o in graph.default_order if o in chosen]
    touched = dict.fromkeys(t for o in order for t in (*graph.op(o).inputs, *graph.op(o).outputs))
    tensors = []
    for name in touched:
        t = graph.tensor(name)
        producer = graph.producer(name)
        if producer is None:
            kind = t.kind
        elif producer not in chosen:
            kind = "input"
        elif t.kind == "output" or any(r not in chosen for r in graph.consumers(name)):
            kind = "output"
        else:
            kind = t.kind
        tensors.append(Tensor(name, t.bytes, kind))
    return Graph.build(f"{graph.name}|{len(order)}", tensors, [graph.op(o) for o in order])


def neighbourhoods(graph: Graph, *, max_ops: int = MAX_OPS, max_tensors: int = MAX_TENSORS) -> list[frozenset[str]]:
    """Operator sets around the largest tensors read more than once: producer, readers, readers' readers."""
    candidates = [t for t in graph.tensors if graph.producer(t.name) is not None and len(graph.consumers(t.name)) > 1]
    candidates.sort(key=lambda t: (-t.bytes, t.name))
    found: dict[frozenset[str], None] = {}
    for t in candidates[:max_tensors]:
        readers = graph.consumers(t.name)
        ops = {graph.producer(t.name), *readers}
        for r in readers:
            for out in graph.op(r).outputs:
                ops.update(graph.consumers(out))
        if len(ops) <= max_ops:
            found.setdefault(frozenset(o for o in ops if o is not None))
    return list(found)


@dataclass(frozen=True)
class Piece:
    """One restriction's proven bound (bytes) and the tensors it touches."""

    ops: frozenset[str]
    tensors: frozenset[str]
    bound: int
    proven: bool
    interrupted: bool = False


def solve_piece(
    graph: Graph, accelerator: Accelerator, ops: frozenset[str], options: Options, time_limit: float
) -> Piece:
    """The exact joint method on the restriction to ``ops``; its bound holds for ``graph``."""
    sub = restrict(graph, ops)
    # the restriction's own neighbourhoods are not searched: they are restrictions of the graph too
    quick = replace(options, time_limit=time_limit, quiet=True, neighbourhood_bound=False)
    plan = solve_exact(sub, accelerator, quick, mode="joint")
    tensors = frozenset(t.name for t in sub.tensors)
    bound = plan.summary.bound or 0
    return Piece(ops, tensors, bound, bound == plan.extra_bytes, bool(plan.summary.details.get("interrupted")))


def neighbourhood_bound(
    graph: Graph, accelerator: Accelerator, options: Options, time_limit: float
) -> tuple[int, dict[str, Any]]:
    """A lower bound on the extra traffic of every plan of ``graph`` from its neighbourhoods, within
    ``time_limit`` seconds, and how it was found.

    Pieces with a positive bound that share a tensor are merged and solved together (if small
    enough): the merged bound is at least each part's. The bound is the sum over the resulting
    groups, which share no tensor.
    """
    started = time.perf_counter()
    deadline = started + time_limit
    pieces: list[Piece] = []
    interrupted = False
    for ops in neighbourhoods(graph):
        left = deadline - time.perf_counter()
        if left < 0.05:
            break
        piece = solve_piece(graph, accelerator, ops, options, min(SOLVE_LIMIT, left))
        if piece.bound > 0:
            pieces.append(piece)
        if piece.interrupted:  # the piece's search caught Ctrl-C: stop, and say so, so the caller stops too
            interrupted = True
            break
    # an interrupted bound merges nothing (merging solves again); the pieces' bounds hold alone
    groups = _merge(graph, accelerator, options, pieces, time.perf_counter() if interrupted else deadline)
    total = sum(p.bound for p in groups)
    details = {
        "pieces": len(pieces),
        "groups": [{"ops": len(p.ops), "bound": p.bound, "proven": p.proven} for p in groups],
        "seconds": round(time.perf_counter() - started, 3),
        "interrupted": interrupted,
    }
    return total, details


def _merge(
    graph: Graph, accelerator: Accelerator, options: Options, pieces: list[Piece], deadline: float
) -> list[Piece]:
    """Tensor-disjoint groups of ``pieces``: overlapping ones are joined, a joined group re-solved when it fits."""
    groups: list[list[Piece]] = []
    for piece in pieces:
        touching = [g for g in groups if any(p.tensors & piece.tensors for p in g)]
        merged = [piece, *(p for g in touching for p in g)]
        groups = [g for g in groups if g not in touching] + [merged]
    out = []
    for members in groups:
        best = max(members, key=lambda p: p.bound)
        union = frozenset(o for p in members for o in p.ops)
        left = deadline - time.perf_counter()
        if len(members) > 1 and len(union) <= 2 * MAX_OPS and left > 0.05:
            joined = solve_piece(graph, accelerator, union, options, min(2 * SOLVE_LIMIT, left))
            tensors = frozenset(t for p in members for t in p.tensors)
            best = max(best, replace(joined, tensors=tensors), key=lambda p: p.bound)
        # the group's bound is paid on its members' tensors, which no other group touches
        out.append(replace(best, tensors=frozenset(t for p in members for t in p.tensors)))
    return out


def lifted_order(graph: Graph, order: Sequence[str], sub_order: Sequence[str]) -> list[str]:
    """A topological order of ``graph`` close to ``order`` in which the operators of ``sub_order`` (a restriction's
    plan) run in ``sub_order``'s sequence, in the steps ``order`` gave them (issue 19: a restriction solved with
    its boundary free may reorder a whole NAS stem, which windows with the incumbent's boundary cannot).

    Ties go by those steps, so the order is ``order`` wherever ``sub_order`` allows it."""
    rank = {o: k for k, o in enumerate(order)}
    for o, step in zip(sub_order, sorted(rank[o] for o in sub_order)):
        rank[o] = step
    waiting = {o.name: len({p for t in o.inputs if (p := graph.producer(t)) is not None}) for o in graph.ops}
    readers = {o.name: {r for t in o.outputs for r in graph.consumers(t)} for o in graph.ops}
    ready = [(rank[o], o) for o, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, o = heapq.heappop(ready)
        out.append(o)
        for r in readers[o]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, (rank[r], r))
    return out


def solve_joint(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """Order, addresses and evictions together, minimising extra off-chip traffic; the neighbourhood
    bound joins the cover and peak bounds."""
    return solve_exact(graph, accelerator, options, mode="joint", extra_bound=neighbourhood_bound)
