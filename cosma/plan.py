"""Execution plans: the steps an accelerator runtime follows, their JSON form and their cost.

The file format and the cost model are the contract in ``shared/docs/plan-format.md``
(format ``cosma.plan/1``). A plan is built from a :class:`~cosma.graph.Graph`, an
:class:`Accelerator` and a list of steps; :meth:`Plan.from_steps` replays the steps through
the contract's replay (:mod:`cosma.contract`) and fills the summary from the replay, so the
traffic a plan claims is always the traffic it causes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from cosma.contract import FORMAT, Run, Step, replay, step_from_dict, step_to_dict
from cosma.fileio import atomic_write_text
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator

Status = Literal["optimal", "feasible", "infeasible", "time-limit", "heuristic"]


@dataclass(frozen=True)
class Summary:
    """What a plan costs and how it was found.

    ``bound`` is a proven lower bound on ``extra_bytes`` (None when none is known);
    ``status`` is ``optimal`` only when a solver proved it or the bound matches.
    """

    offchip_bytes: int
    compulsory_bytes: int
    extra_bytes: int
    peak_resident_bytes: int
    method: str = ""
    status: Status = "heuristic"
    bound: int | None = None
    solve_seconds: float = 0.0
    total_seconds: float = 0.0
    model: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        """Relative gap between the plan's extra bytes and the bound (0 when both are 0)."""
        if self.bound is None:
            return None
        if self.extra_bytes == 0:
            return 0.0
        return (self.extra_bytes - self.bound) / self.extra_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "offchip_bytes": self.offchip_bytes,
            "compulsory_bytes": self.compulsory_bytes,
            "extra_bytes": self.extra_bytes,
            "peak_resident_bytes": self.peak_resident_bytes,
            "method": self.method,
            "status": self.status,
            "bound": self.bound,
            "gap": self.gap,
            "solve_seconds": round(self.solve_seconds, 6),
            "total_seconds": round(self.total_seconds, 6),
            "model": self.model,
            **({"details": dict(self.details)} if self.details else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Summary:
        return cls(
            offchip_bytes=d["offchip_bytes"],
            compulsory_bytes=d["compulsory_bytes"],
            extra_bytes=d["extra_bytes"],
            peak_resident_bytes=d.get("peak_resident_bytes", 0),
            method=d.get("method", ""),
            status=d.get("status", "heuristic"),
            bound=d.get("bound"),
            solve_seconds=d.get("solve_seconds", 0.0),
            total_seconds=d.get("total_seconds", 0.0),
            model=d.get("model", ""),
            details=d.get("details", {}),
        )


@dataclass(frozen=True)
class Plan:
    """A complete, validated execution plan for ``graph`` on ``accelerator``."""

    graph: Graph
    accelerator: Accelerator
    steps: tuple[Step, ...]
    summary: Summary
    #: where the plan came from (:mod:`cosma.provenance`): the file's top-level ``provenance`` object;
    #: set by :func:`cosma.compile`, empty for a plan built from steps alone
    provenance: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_steps(
        cls,
        graph: Graph,
        accelerator: Accelerator,
        steps: Iterable[Step],
        *,
        method: str,
        status: Status = "heuristic",
        bound: int | None = None,
        solve_seconds: float = 0.0,
        total_seconds: float = 0.0,
        details: Mapping[str, Any] | None = None,
    ) -> Plan:
        """Replay ``steps`` through the validator and build the plan with the replayed cost.

        Raises :class:`cosma.errors.PlanInvalid` when the steps break a rule of the contract.
        A status of ``optimal`` is kept only when the bound matches the replayed cost.
        """
        steps = tuple(steps)
        draft = {
            **_header(graph, accelerator),
            "steps": [step_to_dict(s) for s in steps],
        }
        result = replay(draft, check_summary=False)
        if bound is None and result.extra_bytes == 0:
            bound = 0  # no extra traffic is its own proof: nothing can move fewer bytes
        if bound is not None:
            if bound > result.extra_bytes:
                # A lower bound above a cost the plan achieves is a bug in whatever computed it.
                raise ValueError(f"{method}: lower bound {bound} exceeds the plan's extra traffic {result.extra_bytes}")
            if bound == result.extra_bytes and status in ("feasible", "time-limit", "heuristic"):
                status = "optimal"
        if status == "optimal" and bound != result.extra_bytes:
            status = "feasible"  # a claim of optimality needs a bound that matches the replayed cost
        summary = Summary(
            offchip_bytes=result.offchip_bytes,
            compulsory_bytes=result.compulsory_bytes,
            extra_bytes=result.extra_bytes,
            peak_resident_bytes=result.peak_resident_bytes,
            method=method,
            status=status,
            bound=bound,
            solve_seconds=solve_seconds,
            total_seconds=total_seconds,
            model=graph.name,
            details=dict(details or {}),
        )
        return cls(graph, accelerator, steps, summary)

    # ------------------------------------------------------------------ traffic
    @property
    def extra_bytes(self) -> int:
        return self.summary.extra_bytes

    @property
    def order(self) -> tuple[str, ...]:
        """The operator order the plan runs."""
        return tuple(s.op for s in self.steps if isinstance(s, Run))

    def with_summary(self, **changes: Any) -> Plan:
        return replace(self, summary=replace(self.summary, **changes))

    # --------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            **_header(self.graph, self.accelerator),
            "steps": [step_to_dict(s) for s in self.steps],
            "summary": self.summary.to_dict(),
            **({"provenance": dict(self.provenance)} if self.provenance else {}),
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """Read a plan dict; validate it first with :func:`cosma.contract.replay` if it is untrusted."""
        if d.get("format") != FORMAT:
            raise ValueError(f"format is {d.get('format')!r}, not {FORMAT!r}")
        tensors = [
            Tensor(t["name"], t["bytes"], t["kind"], tuple(t.get("shape", ())), t.get("dtype", ""))
            for t in d["tensors"]
        ]
        ops = [
            Operator(
                o["name"],
                o.get("type", ""),
                tuple(o["inputs"]),
                tuple(o["outputs"]),
                tuple(o.get("fused", ())),
                inplace=tuple(o.get("inplace", {}).items()),
            )
            for o in d["ops"]
        ]
        summary = dict(d.get("summary", {}))
        graph = Graph.build(summary.get("model", ""), tensors, _topological(ops), d.get("metadata"))
        accelerator = Accelerator(d["scratchpad_bytes"], d.get("alignment", 1))
        steps = tuple(step_from_dict(s) for s in d["steps"])
        return cls(graph, accelerator, steps, Summary.from_dict(summary), dict(d.get("provenance", {})))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Validate, then write the JSON atomically (a reader never sees half a plan)."""
        data = self.to_dict()
        replay(data)
        atomic_write_text(Path(path), json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Plan:
        with open(path) as f:
            return cls.from_dict(json.load(f))


def _header(graph: Graph, accelerator: Accelerator) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "scratchpad_bytes": accelerator.scratchpad_bytes,
        "alignment": accelerator.alignment,
        "tensors": [
            {"name": t.name, "bytes": t.bytes, "kind": t.kind, "shape": list(t.shape), "dtype": t.dtype}
            for t in graph.tensors
        ],
        "ops": [
            {
                "name": o.name,
                "type": o.op_type,
                "inputs": list(o.inputs),
                "outputs": list(o.outputs),
                **({"fused": list(o.fused)} if o.fused else {}),
                **({"inplace": dict(o.inplace)} if o.inplace else {}),
            }
            for o in graph.ops
        ],
        **({"metadata": dict(graph.metadata)} if graph.metadata else {}),
    }


def _topological(ops: list[Operator]) -> list[Operator]:
    """Ops of a plan file in a topological order (files may list them in any order)."""
    producer = {t: i for i, o in enumerate(ops) for t in o.outputs}
    indegree = [0] * len(ops)
    succ: list[list[int]] = [[] for _ in ops]
    for i, o in enumerate(ops):
        for t in set(o.inputs):
            if t in producer:
                indegree[i] += 1
                succ[producer[t]].append(i)
    ready = [i for i in range(len(ops)) if indegree[i] == 0]
    out: list[Operator] = []
    while ready:
        i = min(ready)
        ready.remove(i)
        out.append(ops[i])
        for j in succ[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                ready.append(j)
    if len(out) != len(ops):
        raise ValueError("the plan's operators form a cycle")
    return out
