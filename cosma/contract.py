"""The project's own plan validator, written from ``shared/docs/plan-format.md``.

:func:`replay` runs a plan dict step by step against the machine model and either
returns the traffic it causes or raises :class:`PlanInvalid` naming the first broken
rule. Every plan cosma writes goes through it; ``cosma check`` exposes it.

Rules, in the order they are checked:

header
    ``format`` is ``cosma.plan/1``; ``scratchpad_bytes`` a positive integer; ``alignment`` a
    positive integer.
graph
    tensor names unique with a known kind and non-negative integer bytes; operator names
    unique; operators reference known tensors, list no output twice, do not read what they
    write, produce only activations and outputs, and every activation/output has exactly one
    producer. An operator's optional ``inplace`` maps some of its outputs each to one of its
    inputs of the same bytes.
steps
    ``load``: known tensor, not resident, has a DRAM copy, aligned, in bounds, free range.
    ``store``/``free``: the tensor is resident. ``run``: known operator, not run before, all
    inputs resident, outputs given exactly once each, aligned, in bounds, free and disjoint.
    In-place: a non-empty output placed at exactly the offset where its declared input is resident
    overwrites that input, which stops being resident (no ``free``; the ranges may coincide);
    one input is overwritten by at most one output of a run. A later reader of the overwritten
    input must load it again, which needs a DRAM copy. An output placed elsewhere follows the
    ordinary rule.
end
    every operator ran; every output has a DRAM copy; the summary's ``offchip_bytes``,
    ``compulsory_bytes`` and ``extra_bytes`` equal the replay's.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from cosma.errors import PlanInvalid

FORMAT = "cosma.plan/1"
_KINDS = ("input", "weight", "activation", "output")


@dataclass(frozen=True)
class Load:
    tensor: str
    offset: int


@dataclass(frozen=True)
class Store:
    tensor: str


@dataclass(frozen=True)
class Free:
    tensor: str


@dataclass(frozen=True)
class Run:
    op: str
    outputs: tuple[tuple[str, int], ...]  # (tensor, offset) in the operator's output order


Step = Load | Store | Free | Run


def step_to_dict(step: Step) -> dict[str, Any]:
    if isinstance(step, Load):
        return {"action": "load", "tensor": step.tensor, "offset": step.offset}
    if isinstance(step, Store):
        return {"action": "store", "tensor": step.tensor}
    if isinstance(step, Free):
        return {"action": "free", "tensor": step.tensor}
    return {"action": "run", "op": step.op, "outputs": dict(step.outputs)}


def step_from_dict(d: Mapping[str, Any]) -> Step:
    action = d["action"]
    if action == "load":
        return Load(d["tensor"], d["offset"])
    if action == "store":
        return Store(d["tensor"])
    if action == "free":
        return Free(d["tensor"])
    if action == "run":
        return Run(d["op"], tuple(d["outputs"].items()))
    raise ValueError(f"unknown action {action!r}")


@dataclass(frozen=True)
class ReplayResult:
    ops: int
    tensors: int
    loads: int
    stores: int
    offchip_bytes: int
    compulsory_bytes: int
    extra_bytes: int
    peak_resident_bytes: int
    scratchpad_bytes: int


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PlanInvalid(message)


def _is_int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


class _Occupancy:
    """Disjoint occupied ranges ``[start, end)`` of the scratchpad, sorted by start."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._owners: list[str] = []

    def claim(self, owner: str, start: int, size: int, alignment: int) -> None:
        _require(_is_int(start) and start >= 0, f"{owner}: offset {start!r} is not a non-negative integer")
        _require(start % alignment == 0, f"{owner}: offset {start} is not a multiple of alignment {alignment}")
        end = start + size
        _require(end <= self.capacity, f"{owner}: [{start}, {end}) lies beyond the scratchpad of {self.capacity} B")
        if size == 0:
            return  # an empty range overlaps nothing
        i = bisect.bisect_left(self._starts, start)
        for j in (i - 1, i):
            if 0 <= j < len(self._starts) and self._starts[j] < end and start < self._ends[j]:
                raise PlanInvalid(
                    f"{owner}: [{start}, {end}) overlaps resident {self._owners[j]} "
                    f"at [{self._starts[j]}, {self._ends[j]})"
                )
        self._starts.insert(i, start)
        self._ends.insert(i, end)
        self._owners.insert(i, owner)

    def release(self, owner: str, start: int, size: int) -> None:
        if size == 0:
            return
        i = bisect.bisect_left(self._starts, start)
        assert self._owners[i] == owner
        del self._starts[i], self._ends[i], self._owners[i]


def replay(plan: Mapping[str, Any], *, check_summary: bool = True) -> ReplayResult:
    """Replay ``plan`` (a dict in ``cosma.plan/1`` form); raise :class:`PlanInvalid` on the first broken rule."""
    try:
        return _replay(plan, check_summary)
    except PlanInvalid:
        raise
    except (AttributeError, TypeError, KeyError, ValueError) as e:
        raise PlanInvalid(f"malformed plan ({e.__class__.__name__}: {e})") from None


def _replay(plan: Mapping[str, Any], check_summary: bool) -> ReplayResult:
    # header
    _require(plan.get("format") == FORMAT, f"format is {plan.get('format')!r}, expected {FORMAT!r}")
    capacity = plan.get("scratchpad_bytes")
    if not (_is_int(capacity) and capacity > 0):
        raise PlanInvalid(f"scratchpad_bytes {capacity!r} is not a positive integer")
    alignment = plan.get("alignment", 1)
    _require(_is_int(alignment) and alignment >= 1, f"alignment {alignment!r} is not a positive integer")

    # graph
    size: dict[str, int] = {}
    kind: dict[str, str] = {}
    for t in plan.get("tensors", []):
        name = t.get("name")
        _require(isinstance(name, str), f"tensor without a string name: {t!r}")
        _require(name not in size, f"tensor {name} is listed twice")
        _require(_is_int(t.get("bytes")) and t["bytes"] >= 0, f"tensor {name}: bytes {t.get('bytes')!r} is invalid")
        _require(t.get("kind") in _KINDS, f"tensor {name}: kind {t.get('kind')!r} is not one of {_KINDS}")
        size[name] = t["bytes"]
        kind[name] = t["kind"]

    op_io: dict[str, tuple[list[str], list[str]]] = {}
    overwrites: dict[str, dict[str, str]] = {}  # operator -> its in-place declarations, output -> input
    producer: dict[str, str] = {}
    read: set[str] = set()
    for o in plan.get("ops", []):
        name = o.get("name")
        _require(isinstance(name, str), f"operator without a string name: {o!r}")
        _require(name not in op_io, f"operator {name} is listed twice")
        inputs, outputs = list(o.get("inputs", [])), list(o.get("outputs", []))
        for t in inputs + outputs:
            _require(t in size, f"operator {name} uses unknown tensor {t!r}")
        _require(len(set(outputs)) == len(outputs), f"operator {name} lists an output twice")
        _require(not set(inputs) & set(outputs), f"operator {name} reads a tensor it writes")
        for t in outputs:
            _require(kind[t] in ("activation", "output"), f"operator {name} produces {t}, a tensor of kind {kind[t]}")
            _require(t not in producer, f"tensor {t} has two producers, {producer.get(t)} and {name}")
            producer[t] = name
        read.update(inputs)
        op_io[name] = (inputs, outputs)
        declared = o.get("inplace", {})
        _require(isinstance(declared, Mapping), f"operator {name}: inplace must map an output to an input")
        for out, inp in declared.items():
            _require(out in outputs, f"operator {name}: inplace output {out!r} is not one of its outputs")
            _require(inp in inputs, f"operator {name}: inplace input {inp!r} is not one of its inputs")
            _require(
                size[out] == size[inp], f"operator {name}: inplace {out} ({size[out]} B) over {inp} ({size[inp]} B)"
            )
        if declared:
            overwrites[name] = dict(declared)
    for t, k in kind.items():
        _require(k not in ("activation", "output") or t in producer, f"{k} tensor {t} has no producer")

    # steps
    space = _Occupancy(capacity)
    resident: dict[str, int] = {}
    has_copy = {t for t, k in kind.items() if k in ("input", "weight")}
    ran: set[str] = set()
    loads = stores = traffic = live = peak = 0
    for index, step in enumerate(plan.get("steps", [])):
        try:
            action = step.get("action")
            if action == "load":
                t, offset = step.get("tensor"), step.get("offset")
                _require(t in size, f"load of unknown tensor {t!r}")
                _require(t not in resident, f"load of {t}, which is already resident")
                _require(t in has_copy, f"load of {t}, which has no valid DRAM copy")
                space.claim(t, offset, size[t], alignment)
                resident[t] = offset
                loads += 1
                traffic += size[t]
                live += size[t]
            elif action == "store":
                t = step.get("tensor")
                _require(t in resident, f"store of {t!r}, which is not resident")
                has_copy.add(t)
                stores += 1
                traffic += size[t]
            elif action == "free":
                t = step.get("tensor")
                _require(t in resident, f"free of {t!r}, which is not resident")
                space.release(t, resident.pop(t), size[t])
                live -= size[t]
            elif action == "run":
                o = step.get("op")
                _require(o in op_io, f"run of unknown operator {o!r}")
                _require(o not in ran, f"operator {o} runs a second time")
                inputs, outputs = op_io[o]
                absent = [t for t in inputs if t not in resident]
                _require(not absent, f"operator {o} runs with inputs not resident: {absent[:5]}")
                placed = step.get("outputs")
                _require(isinstance(placed, Mapping), f"operator {o}: outputs must map tensor to offset")
                _require(
                    set(placed) == set(outputs),
                    f"operator {o}: outputs {sorted(placed)} given, {sorted(outputs)} expected",
                )
                overwritten: dict[str, str] = {}  # input -> the output written over it
                for t, inp in overwrites.get(o, {}).items():
                    if placed[t] == resident[inp] and size[t] > 0:  # an empty output takes no input's bytes
                        _require(
                            inp not in overwritten,
                            f"operator {o}: {overwritten.get(inp)} and {t} both overwrite {inp} in place",
                        )
                        overwritten[inp] = t
                for inp in overwritten:  # it stops being resident; its DRAM copy, if any, stays valid
                    space.release(inp, resident.pop(inp), size[inp])
                    live -= size[inp]
                for t in outputs:
                    space.claim(t, placed[t], size[t], alignment)
                    resident[t] = placed[t]
                    live += size[t]
                ran.add(o)
            else:
                raise PlanInvalid(f"unknown action {action!r}")
        except PlanInvalid as e:
            raise PlanInvalid(e.rule, index) from None
        peak = max(peak, live)

    never = [o for o in op_io if o not in ran]
    _require(not never, f"{len(never)} operators never run, e.g. {never[:5]}")
    unstored = [t for t, k in kind.items() if k == "output" and t not in has_copy]
    _require(not unstored, f"outputs never stored to DRAM: {unstored[:5]}")

    compulsory = sum(size[t] for t, k in kind.items() if k in ("input", "weight") and t in read)
    compulsory += sum(size[t] for t, k in kind.items() if k == "output")
    result = ReplayResult(
        ops=len(op_io),
        tensors=len(size),
        loads=loads,
        stores=stores,
        offchip_bytes=traffic,
        compulsory_bytes=compulsory,
        extra_bytes=traffic - compulsory,
        peak_resident_bytes=peak,
        scratchpad_bytes=capacity,
    )
    if check_summary:
        summary = plan.get("summary")
        if not isinstance(summary, Mapping):
            raise PlanInvalid("plan has no summary")
        for key in ("offchip_bytes", "compulsory_bytes", "extra_bytes"):
            claimed, actual = summary.get(key), getattr(result, key)
            _require(claimed == actual, f"summary {key} is {claimed!r}, the replay gives {actual}")
    return result
