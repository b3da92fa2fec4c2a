"""Executing a plan byte for byte on a simulated accelerator, checked against ONNX Runtime.

The replay (:mod:`cosma.contract`) proves the bookkeeping of a plan; this module proves the bytes.
The machine is two numpy byte arrays: a scratchpad of the plan's size and a DRAM holding one
region per tensor. Inputs and weights start in DRAM; every other byte of both arrays starts as
``0xFF`` (a NaN in every float format), so reading a range nothing wrote shows up as a wrong
number rather than as a lucky zero. Steps are followed literally:

- ``load T at A``: the bytes of T's DRAM region are copied to ``[A, A + bytes)``, whatever they
  hold (a store that never happened leaves the ``0xFF`` fill there);
- ``store T``: T's scratchpad range is copied to its DRAM region;
- ``free T``: the machine forgets where T lives; the bytes stay;
- ``run O``: each input is read from the range where it was last placed, the operator computes,
  and each output is written at the plan's offset. Nothing stops a write from landing on
  another tensor's bytes: that tensor is then simply wrong when it is next read. When an output
  range overlaps a range the operator reads (a declared in-place pair, or a plan error), the
  operator runs as a streaming machine would: the output is written in ``STREAM_CHUNKS`` pieces
  in address order, each computed from the scratchpad as it is at that moment, so only an
  operator that reads each element before writing the same position (an elementwise one) gets
  the right answer.

An operator runs on ONNX Runtime as a sub-model of exactly the ONNX nodes the front end folded
into it (:attr:`cosma.graph.Operator.nodes`: the node, then its fused epilogues). An input that
the model reads through a view (Reshape and the like, which the front end turned into an alias)
is the root tensor's bytes reinterpreted with the view's shape; a folded constant is a weight
like any other. The reference is ONNX Runtime running the whole model on the same inputs and
weights, with every intermediate value kept so that the first operator reading a wrong input can
be named. Both sides run with graph optimisations off and one thread, so the same kernels run on
both sides and float results agree bit for bit in practice (the tolerance below is a margin).

Weights-stripped models (``stripped_weight_inputs`` in the model's metadata, see
``models/generate.py``) get deterministic random weights from the seed, the same on both sides.

Sizes: a plan made with true dtypes executes directly. A plan made with ``--element-bytes N``
executes with every address and size scaled by ``itemsize / N`` when all its tensors share one
dtype; otherwise :class:`ExecutionInputError` says why not.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from math import prod
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from cosma.contract import replay
from cosma.errors import CosmaError, ModelError, PlanInvalid
from cosma.frontend.lower import (
    VIEW_TYPES,
    _Folds,
    _prepare,
    _read,
    _stripped_weights,
    load_onnx,
    node_names,
)
from cosma.graph import Graph

#: Pieces an output is written in when it overlaps what its operator reads (see the module docstring).
STREAM_CHUNKS = 8
#: Float outputs match when ``max_abs <= ATOL + RTOL * max|reference|``; integer and bool ones must be equal.
RTOL = 1e-5
ATOL = 1e-6
_FILL = 0xFF


class ExecutionInputError(CosmaError):
    """The model, plan or inputs cannot be executed together (exit 2)."""


@dataclass(frozen=True)
class OutputComparison:
    """One graph output: the executed value against the reference."""

    name: str
    max_abs: float
    max_rel: float  # max_abs / max|reference| (0 when both are 0)
    ok: bool


@dataclass(frozen=True)
class ExecutionResult:
    """What executing a plan gave. ``ok`` when the plan executed and every value it computed matched."""

    outputs: tuple[OutputComparison, ...]
    replay_error: str | None  # the replay's verdict (cosma check), None when it accepts the plan
    fault: str | None  # the machine could not follow a step (an input not resident, out of bounds)
    first_bad_op: str | None  # first operator that read an input differing from the reference run
    first_bad_detail: str = ""
    address_scale: Fraction = Fraction(1)
    steps: int = 0
    ops_run: int = 0
    # First operator that read right inputs and left a wrong output: it overwrote what it was still
    # reading (a false in-place pair, an output range over its own input) or its outputs overlap.
    first_wrong_op: str | None = None
    first_wrong_detail: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.fault is None
            and self.replay_error is None
            and self.first_wrong_op is None
            and self.first_bad_op is None
            and all(o.ok for o in self.outputs)
        )

    def describe(self) -> list[str]:
        """Lines for a terminal: outputs, verdict, and where things first went wrong."""
        lines = [
            f"{o.name}: max abs error {o.max_abs:.3g}, max rel error {o.max_rel:.3g}, {'match' if o.ok else 'MISMATCH'}"
            for o in self.outputs
        ]
        if self.address_scale != 1:
            lines.append(f"addresses scaled by {self.address_scale} (plan made with another element size)")
        if self.replay_error:
            lines.append(f"replay: {self.replay_error}")
        if self.fault:
            lines.append(f"execution fault: {self.fault}")
        if self.first_wrong_op:
            lines.append(
                f"first operator computing a wrong output from right inputs: {self.first_wrong_op} "
                f"({self.first_wrong_detail})"
            )
        if self.first_bad_op:
            lines.append(f"first operator reading a wrong input: {self.first_bad_op} ({self.first_bad_detail})")
        lines.append("verdict: " + ("the plan computes the model" if self.ok else "FAILED"))
        return lines


# ================================================================ the model side
def _random_array(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...], weight: bool) -> np.ndarray:
    """Deterministic values that keep a deep random network finite: fan-in scaled, positive 1-D parameters."""
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        # Small non-negative integers are valid token ids and indices for any table of two or more rows.
        return rng.integers(0, 2, size=shape).astype(dtype)
    if weight and len(shape) <= 1:
        # Biases, BatchNorm/LayerNorm scales and variances: positive keeps sqrt(var) real.
        return rng.uniform(0.5, 1.5, size=shape).astype(dtype)
    if weight:
        fan_in = max(1, prod(shape[1:]))
        bound = float(np.sqrt(3.0 / fan_in))
        return rng.uniform(-bound, bound, size=shape).astype(dtype)
    return rng.standard_normal(size=shape).astype(dtype)


def _elem_dtype(elem_type: int) -> np.dtype:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def _value_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value for d in dims)


def _session(model: onnx.ModelProto, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExecutionInputError(
            'executing a plan needs ONNX Runtime; install it with pip install "cosma[run]"'
        ) from None
    options = ort.SessionOptions()
    # Same kernels on both sides: no graph rewrites, the same thread count.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # A weight is an initializer in the whole model but a fed input of an operator's sub-model: without
    # pre-packing, Conv and Gemm take the same kernel path for both.
    options.add_session_config_entry("session.disable_prepacking", "1")
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Folds:
    """The front end's inference-time folds a plan was made with (``load_onnx``'s switches of the same names)."""

    fold_batchnorm: bool = True
    fold_if: bool = True

    @classmethod
    def of_plan(cls, plan: Mapping[str, Any]) -> Folds:
        """The folds recorded in the plan's provenance; the front end's defaults when it has none."""
        load = (plan.get("provenance") or {}).get("load") or {}
        return cls(bool(load.get("fold_batchnorm", True)), bool(load.get("fold_if", True)))


def _plan_input_shapes(plan: Mapping[str, Any]) -> dict[str, list[int]]:
    # The shapes the plan's author gave (not the resolved ones): a plan of another model stays "not this model".
    shapes = ((plan.get("provenance") or {}).get("load") or {}).get("input_shapes") or {}
    return {str(k): [int(d) for d in v] for k, v in shapes.items()} if isinstance(shapes, Mapping) else {}


@dataclass
class Model:
    """A model made ready for execution: its reference run and every value it computes.

    The ONNX model is prepared exactly as the front end prepares it before lowering (inlining,
    topological order, constant ``If`` and BatchNormalization folding per ``folds``), so the
    executor runs the nodes and weights the Graph was lowered from: a BatchNormalization folded
    into a Conv is the Conv with folded weights on both sides, never the raw BN. Build it once
    with :meth:`Model.prepare` and execute many plans of the model with :meth:`execute`;
    sub-model sessions are cached across plans.
    """

    path: str | os.PathLike[str] | onnx.ModelProto
    proto: onnx.ModelProto  # as prepared by the front end: the nodes operators were lowered from
    input_shapes: Mapping[str, Sequence[int]]
    folds: Folds
    threads: int
    feeds: dict[str, np.ndarray]  # graph inputs and stripped weights, as fed to the reference
    constants: dict[str, np.ndarray]  # initializers and stripped weights by name
    reference: dict[str, np.ndarray]  # every value the whole-model reference run computed, and the constants
    node_by_label: dict[str, onnx.NodeProto]
    producer: dict[str, onnx.NodeProto]
    graph_outputs: tuple[str, ...]
    _graphs: dict[tuple[bool, bool], Graph] = field(default_factory=dict)
    _sessions: dict[tuple[str, ...], Any] = field(default_factory=dict)

    @classmethod
    def prepare(
        cls,
        model: str | os.PathLike[str] | onnx.ModelProto,
        inputs: Mapping[str, np.ndarray] | None = None,
        *,
        seed: int = 0,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        folds: Folds = Folds(),
        threads: int = 1,
    ) -> Model:
        """Prepare ``model``; ``threads`` is ONNX Runtime's intra-op thread count on both sides."""
        if not isinstance(model, onnx.ModelProto) and Path(model).suffix.lower() == ".tflite":
            raise ExecutionInputError(
                f"{model}: executing TFLite models is not supported (ONNX Runtime runs ONNX only); "
                "convert the model to ONNX and plan that file"
            )
        if threads < 1:
            raise ExecutionInputError(f"threads must be 1 or more, not {threads}")
        raw, source, _ = _read(model)
        try:
            proto = _prepare(raw, source, input_shapes or {}, _Folds(folds.fold_batchnorm, folds.fold_if), {})
        except ModelError as e:
            raise ExecutionInputError(str(e)) from None
        g = proto.graph
        stripped = _stripped_weights(proto, source)
        constants = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        # Graph inputs first, weights from their own stream: inputs do not depend on what the folds added.
        input_rng, weight_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        feeds: dict[str, np.ndarray] = {}
        given = dict(inputs or {})
        for value in g.input:
            if value.name in constants:
                continue
            dtype = _elem_dtype(value.type.tensor_type.elem_type)
            shape = _value_shape(value)
            if value.name in stripped:
                feeds[value.name] = _random_array(weight_rng, dtype, shape, weight=True)
                constants[value.name] = feeds[value.name]
            elif value.name in given:
                array = np.asarray(given.pop(value.name))
                if tuple(array.shape) != shape or array.dtype != dtype:
                    raise ExecutionInputError(
                        f"input {value.name!r} is {array.dtype}{list(array.shape)}, the model "
                        f"wants {dtype}{list(shape)}; give an array of that type and shape"
                    )
                feeds[value.name] = array
            else:
                feeds[value.name] = _random_array(input_rng, dtype, shape, weight=False)
        if given:
            raise ExecutionInputError(
                f"the inputs name {sorted(given)[0]!r}, which is not an input of {source}; "
                f"its inputs are {', '.join(v.name for v in g.input if v.name not in constants)}"
            )

        # The reference keeps every intermediate value: extra graph outputs.
        whole = onnx.ModelProto()
        whole.CopyFrom(proto)
        present = {o.name for o in whole.graph.output}
        for node in whole.graph.node:
            for o in node.output:
                if o and o not in present:
                    whole.graph.output.append(helper.make_empty_tensor_value_info(o))
                    present.add(o)
        session = _session(whole, threads)
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, feeds)
        reference = dict(constants)
        reference.update({k: v for k, v in feeds.items()})
        reference.update({n: np.asarray(v) for n, v in zip(names, values)})

        labels = node_names(g.node)
        return cls(
            path=model,
            proto=proto,
            input_shapes=dict(input_shapes or {}),
            folds=folds,
            threads=threads,
            feeds=feeds,
            constants=constants,
            reference=reference,
            node_by_label=dict(zip(labels, g.node)),
            producer={o: n for n in g.node for o in n.output if o},
            graph_outputs=tuple(o.name for o in g.output),
        )

    # -------------------------------------------------------------- graphs
    def graph(self, weights: bool, fuse: bool) -> Graph:
        key = (weights, fuse)
        if key not in self._graphs:
            # From the original model with the same folds: the labels are those of ``self.proto``'s nodes.
            self._graphs[key] = load_onnx(
                self.path,
                input_shapes=self.input_shapes,
                weights=weights,
                fuse=fuse,
                fold_batchnorm=self.folds.fold_batchnorm,
                fold_if=self.folds.fold_if,
            )
        return self._graphs[key]

    def root(self, value: str, tensors: Mapping[str, Any]) -> str | None:
        """The Graph tensor whose bytes ``value`` is (itself, or through views), or None for a constant."""
        while value not in tensors:
            node = self.producer.get(value)
            if node is None or node.op_type not in VIEW_TYPES or value != node.output[0]:
                return None
            value = node.input[0]
        return value

    def execute(self, plan: Mapping[str, Any]) -> ExecutionResult:
        folds = Folds.of_plan(plan)
        if folds != self.folds:
            raise ExecutionInputError(
                f"the plan was made with {folds}, the model prepared with {self.folds}; "
                "prepare the model with the plan's folds (cosma.execute does)"
            )
        return _Machine(self, plan).run()


# ================================================================ the machine
def _decode(buffer: np.ndarray, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    # A view, not a copy: ONNX Runtime finishes reading it before anything writes the scratchpad again.
    return buffer.view(dtype).reshape(shape) if buffer.size else np.zeros(shape, dtype)


def _bits(array: np.ndarray) -> bytes:
    return array.tobytes()  # memcpy and memcmp: far cheaper than an elementwise array_equal on large tensors


def compare(got: np.ndarray, want: np.ndarray) -> tuple[float, float, bool]:
    """max abs error, max rel error and whether ``got`` matches ``want`` (NaN matches NaN)."""
    if got.shape != want.shape:
        return float("inf"), float("inf"), False
    if got.dtype == want.dtype and _bits(got) == _bits(want):
        return 0.0, 0.0, True  # the common case, without float64 copies of large tensors
    if not np.issubdtype(want.dtype, np.floating):
        diff = got.astype(np.float64) - want.astype(np.float64)
        worst = float(np.max(np.abs(diff))) if diff.size else 0.0
        scale = float(np.max(np.abs(want.astype(np.float64)))) if want.size else 0.0
        return worst, (worst / scale if scale else float(worst > 0) * float("inf")), bool(np.array_equal(got, want))
    a, b = got.astype(np.float64), want.astype(np.float64)
    same_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(same_nan, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    worst = float(np.max(diff)) if diff.size else 0.0
    finite = np.abs(b[np.isfinite(b)])
    scale = float(np.max(finite)) if finite.size else 0.0
    rel = worst / scale if scale else (0.0 if worst == 0 else float("inf"))
    return worst, rel, worst <= ATOL + RTOL * scale


@dataclass(frozen=True)
class _Layout:
    graph: Graph
    scale: Fraction
    dram_offset: dict[str, int]
    dram_bytes: int


class _Fault(Exception):
    pass


class _Machine:
    def __init__(self, model: Model, plan: Mapping[str, Any]) -> None:
        self.model = model
        self.plan = plan
        self.layout = self._layout()
        graph = self.layout.graph
        self.inplace: dict[str, dict[str, str]] = {o["name"]: dict(o.get("inplace") or {}) for o in plan["ops"]}
        capacity = self._scaled(int(plan["scratchpad_bytes"]), "the scratchpad size")
        self.scratch = np.full(capacity, _FILL, dtype=np.uint8)
        self.dram = np.full(self.layout.dram_bytes, _FILL, dtype=np.uint8)
        for t in graph.tensors:
            if t.kind in ("input", "weight"):
                self._dram_region(t.name)[:] = self._encode(t.name, model.reference[t.name])
        self.resident: dict[str, int] = {}
        self.first_bad: tuple[str, str] | None = None
        self.first_wrong: tuple[str, str] | None = None
        self._ran: set[str] = set()

    # ------------------------------------------------------------ layout
    def _layout(self) -> _Layout:
        plan = self.plan
        if not isinstance(plan.get("tensors"), list) or not isinstance(plan.get("ops"), list):
            raise ExecutionInputError("the plan has no tensors or ops list; give a cosma.plan/1 file")
        has_weights = any(t.get("kind") == "weight" for t in plan["tensors"])
        plan_ops = {o["name"] for o in plan["ops"]}
        plan_tensors = {t["name"]: t for t in plan["tensors"]}
        graph = None
        for fuse in (True, False):
            candidate = self.model.graph(has_weights, fuse)
            if {o.name for o in candidate.ops} == plan_ops and set(candidate.tensor_by_name) == set(plan_tensors):
                graph = candidate
                break
        if graph is None:
            candidate = self.model.graph(has_weights, True)
            missing = sorted(plan_ops - {o.name for o in candidate.ops}) or sorted(
                set(plan_tensors) ^ set(candidate.tensor_by_name)
            )
            raise ExecutionInputError(
                f"the plan was not made from this model (operator or tensor "
                f"{(missing or ['?'])[0]!r} does not match); give the plan's model"
            )
        for o in plan["ops"]:
            op = graph.op(o["name"])
            if set(o.get("inputs", [])) != set(op.inputs) or set(o.get("outputs", [])) != set(op.outputs):
                raise ExecutionInputError(
                    f"operator {op.name!r} reads or writes other tensors in the plan than in the "
                    "model; give the model the plan was made from"
                )
        ratios = {
            Fraction(t.bytes, plan_tensors[t.name]["bytes"])
            for t in graph.tensors
            if plan_tensors[t.name]["bytes"] and t.bytes
        }
        scale = Fraction(1)
        if ratios - {Fraction(1)}:
            dtypes = sorted({t.dtype for t in graph.tensors})
            if len(dtypes) > 1:
                raise ExecutionInputError(
                    f"the plan's sizes are not the model's ({', '.join(dtypes)} tensors): a plan "
                    "made with --element-bytes executes only when every tensor has one dtype; "
                    "compile the plan without --element-bytes"
                )
            if len(ratios) > 1:
                raise ExecutionInputError(
                    "the plan's tensor sizes are not one multiple of the model's; give the model the plan was made from"
                )
            scale = ratios.pop()
        offsets: dict[str, int] = {}
        end = 0
        for t in graph.tensors:
            offsets[t.name] = end
            end += t.bytes
        return _Layout(graph, scale, offsets, end)

    def _scaled(self, value: int, what: str) -> int:
        scaled = value * self.layout.scale
        if scaled.denominator != 1:
            raise ExecutionInputError(
                f"{what} ({value}) times the size ratio {self.layout.scale} is not a whole "
                "number of bytes; compile the plan without --element-bytes"
            )
        return int(scaled)

    # ------------------------------------------------------------ bytes
    def _encode(self, tensor: str, array: np.ndarray) -> np.ndarray:
        t = self.layout.graph.tensor(tensor)
        data = np.ascontiguousarray(np.asarray(array, dtype=np.dtype(t.dtype))).reshape(-1).view(np.uint8)
        if data.size != t.bytes:
            raise RuntimeError(f"tensor {tensor}: {data.size} bytes of data for {t.bytes} bytes")
        return data

    def _dram_region(self, tensor: str) -> np.ndarray:
        start = self.layout.dram_offset[tensor]
        return self.dram[start : start + self.layout.graph.size(tensor)]

    def _range(self, tensor: str, offset: int, where: str) -> tuple[int, int]:
        size = self.layout.graph.size(tensor)
        if offset < 0 or offset + size > self.scratch.size:
            raise _Fault(
                f"{where}: {tensor} at [{offset}, {offset + size}) is outside the scratchpad of {self.scratch.size} B"
            )
        return offset, offset + size

    def _read(self, tensor: str, where: str) -> np.ndarray:
        if tensor not in self.resident:
            raise _Fault(f"{where}: input {tensor} is not resident")
        return self._decode_at(tensor, self._range(tensor, self.resident[tensor], where))

    def _decode_at(self, tensor: str, span: tuple[int, int]) -> np.ndarray:
        t = self.layout.graph.tensor(tensor)
        return _decode(self.scratch[span[0] : span[1]], np.dtype(t.dtype), t.shape)

    # ------------------------------------------------------------ steps
    def run(self) -> ExecutionResult:
        replay_error: str | None = None
        try:
            replay(self.plan, check_summary=False)
        except PlanInvalid as e:
            replay_error = f"{e}{self._op_near(e.step)}"
        fault = None
        steps = self.plan.get("steps", [])
        ran = 0
        for index, step in enumerate(steps):
            try:
                ran += self._step(index, step)
            except _Fault as e:
                fault = f"step {index}: {e}"
                break
        never = [o.name for o in self.layout.graph.ops if o.name not in self._ran] if fault is None else []
        if never:
            fault = f"operator {never[0]} never ran"
        outputs = tuple(self._compare_output(name) for name in self.model.graph_outputs)
        bad_op, detail = self.first_bad or (None, "")
        wrong_op, wrong_detail = self.first_wrong or (None, "")
        return ExecutionResult(
            outputs,
            replay_error,
            fault,
            bad_op,
            detail,
            self.layout.scale,
            len(steps),
            ran,
            wrong_op,
            wrong_detail,
        )

    def _op_near(self, step: int | None) -> str:
        """`` (operator X)``: the operator a failing step belongs to, so every error names one."""
        if step is None:
            return ""
        steps = self.plan.get("steps", [])
        for s in steps[step:]:
            if s.get("action") == "run":
                return f" (before operator {s.get('op')})"
        return ""

    def _step(self, index: int, step: Mapping[str, Any]) -> int:
        action = step.get("action")
        graph = self.layout.graph
        if action == "load":
            t = step["tensor"]
            offset = self._scaled(int(step["offset"]), f"the offset of {t}")
            lo, hi = self._range(t, offset, f"load {t}")
            self.scratch[lo:hi] = self._dram_region(t)
            self.resident[t] = offset
        elif action == "store":
            t = step["tensor"]
            if t not in self.resident:
                raise _Fault(f"store of {t}, which is not resident")
            lo, hi = self._range(t, self.resident[t], f"store {t}")
            self._dram_region(t)[:] = self.scratch[lo:hi]
        elif action == "free":
            t = step["tensor"]
            if self.resident.pop(t, None) is None:
                raise _Fault(f"free of {t}, which is not resident")
        elif action == "run":
            name = step["op"]
            if name not in graph.op_by_name:
                raise _Fault(f"run of unknown operator {name}")
            if name in self._ran:
                raise _Fault(f"operator {name} runs a second time")
            placed = {t: self._scaled(int(a), f"the offset of {t}") for t, a in dict(step["outputs"]).items()}
            self._run(name, placed)
            self._ran.add(name)
            return 1
        else:
            raise _Fault(f"unknown action {action!r}")
        return 0

    def _run(self, name: str, placed: Mapping[str, int]) -> None:
        op = self.layout.graph.op(name)
        where = f"operator {name}"
        if set(placed) != set(op.outputs):
            raise _Fault(f"{where}: outputs {sorted(placed)} given, {sorted(op.outputs)} expected")
        session, feeds_from = self._sub_model(name)
        ranges = {t: self._range(t, placed[t], where) for t in op.outputs}
        read_ranges = [self._range(t, self.resident[t], where) for t in op.inputs if t in self.resident]
        overlaps = any(lo < rhi and rlo < hi for lo, hi in ranges.values() for rlo, rhi in read_ranges)

        inputs_ok = True

        def compute(check: bool) -> dict[str, np.ndarray]:
            nonlocal inputs_ok
            feeds = {}
            for value, (root, shape) in feeds_from.items():
                if root is None:
                    feeds[value] = self.model.reference[value]  # a folded constant: its value, never the plan's
                else:
                    feeds[value] = self._read(root, where).reshape(shape)
                    if check:
                        worst, _, same = compare(feeds[value], self.model.reference[value])
                        inputs_ok = inputs_ok and same
                        if not same and self.first_bad is None:
                            self.first_bad = (name, f"input {root} differs from the reference run by up to {worst:.3g}")
            results = session.run(list(op.outputs), feeds)
            return {t: self._encode(t, r) for t, r in zip(op.outputs, results)}

        if not overlaps:
            for t, data in compute(True).items():
                lo, hi = ranges[t]
                self.scratch[lo:hi] = data
        else:
            for k in range(STREAM_CHUNKS):
                for t, data in compute(k == 0).items():
                    lo, hi = ranges[t]
                    itemsize = np.dtype(self.layout.graph.tensor(t).dtype).itemsize
                    elements = data.size // itemsize
                    a = elements * k // STREAM_CHUNKS * itemsize
                    b = elements * (k + 1) // STREAM_CHUNKS * itemsize
                    self.scratch[lo + a : lo + b] = data[a:b]
        if inputs_ok and self.first_wrong is None:
            for t in op.outputs:
                got = self._decode_at(t, ranges[t])
                worst, _, same = compare(got, self.model.reference[t])
                if not same:
                    how = "streamed over its own input" if overlaps else "outputs overlap"
                    self.first_wrong = (name, f"output {t} ({how}) differs from the reference run by up to {worst:.3g}")
                    break
        for t, offset in placed.items():
            src = self.inplace.get(name, {}).get(t)
            if src is not None and self.resident.get(src) == offset:
                del self.resident[src]  # overwritten in place: no longer resident (plan-format.md)
            self.resident[t] = offset

    def _sub_model(self, name: str) -> tuple[Any, dict[str, tuple[str | None, tuple[int, ...]]]]:
        """The session running operator ``name``'s ONNX nodes, and where each of its inputs comes from."""
        op = self.layout.graph.op(name)
        model = self.model
        nodes = [model.node_by_label[label] for label in op.nodes]
        if not nodes:
            raise RuntimeError(f"operator {name} has no ONNX node provenance")
        full = model.graph(True, True).tensor_by_name
        tensors = self.layout.graph.tensor_by_name
        produced = {o for n in nodes for o in n.output if o}
        external = list(dict.fromkeys(x for n in nodes for x in n.input if x and x not in produced))
        feeds_from: dict[str, tuple[str | None, tuple[int, ...]]] = {}
        extra_nodes: list[onnx.NodeProto] = []
        initializers: list[onnx.TensorProto] = []
        inputs: list[onnx.ValueInfoProto] = []
        for value in external:
            shape = tuple(model.reference[value].shape)
            root = model.root(value, tensors)
            if root is None:
                inner = model.root(value, {t: None for t in produced})
                if inner is not None:
                    # A view of a value the fused group computes itself: the same bytes, reshaped.
                    shape_name = f"__cosma_shape_{value}"
                    initializers.append(numpy_helper.from_array(np.array(shape, dtype=np.int64), shape_name))
                    extra_nodes.append(helper.make_node("Reshape", [inner, shape_name], [value]))
                    continue
                if model.root(value, full) != value:
                    raise RuntimeError(f"operator {name}: input {value} is neither a tensor nor a constant")
                feeds_from[value] = (None, shape)
            else:
                if root not in op.inputs:
                    raise RuntimeError(f"operator {name}: input {value} maps to {root}, which it does not read")
                feeds_from[value] = (root, shape)
            dtype = model.reference[value].dtype
            inputs.append(helper.make_tensor_value_info(value, helper.np_dtype_to_tensor_dtype(dtype), shape))
        key = (*op.nodes, *(f"{v}:{r}" for v, (r, _) in feeds_from.items()))
        if key not in model._sessions:
            all_nodes = list(nodes)
            for extra in extra_nodes:  # a view node goes right after the node producing its input
                at = next(i for i, n in enumerate(all_nodes) if extra.input[0] in n.output)
                all_nodes.insert(at + 1, extra)
            outputs = [helper.make_empty_tensor_value_info(t) for t in op.outputs]
            sub = helper.make_model(
                helper.make_graph(all_nodes, name, inputs, outputs, initializers),
                opset_imports=list(model.proto.opset_import),
                ir_version=model.proto.ir_version,
            )
            model._sessions[key] = _session(sub, model.threads)
        return model._sessions[key], feeds_from

    def _compare_output(self, name: str) -> OutputComparison:
        want = self.model.reference[name]
        root = self.model.root(name, self.layout.graph.tensor_by_name)
        if root is None:
            return OutputComparison(name, float("inf"), float("inf"), False)
        t = self.layout.graph.tensor(root)
        got = _decode(self._dram_region(root).copy(), np.dtype(t.dtype), t.shape).reshape(want.shape)
        worst, rel, ok = compare(got, want)
        return OutputComparison(name, worst, rel, ok)


# ================================================================ entry points
def load_plan(plan: Any) -> dict[str, Any]:
    """A plan dict from a :class:`~cosma.plan.Plan`, a dict or a path."""
    if isinstance(plan, Mapping):
        return dict(plan)
    if hasattr(plan, "to_dict"):
        return plan.to_dict()
    path = Path(plan)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ExecutionInputError(f"{path}: cannot read the plan ({e.strerror}); give a cosma plan") from None
    except ValueError:
        raise ExecutionInputError(f"{path}: not JSON; give a plan written by cosma compile") from None
    if not isinstance(data, dict) or data.get("format") != "cosma.plan/1":
        raise ExecutionInputError(f"{path}: not a cosma.plan/1 file; give a plan written by cosma compile")
    return data


def load_inputs(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Arrays by input name from an ``.npz`` file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise ExecutionInputError(f"{path}: cannot read it as .npz ({e}); save the inputs with numpy.savez") from None


def execute(
    model: str | os.PathLike[str] | onnx.ModelProto | Model,
    plan: Any,
    inputs: Mapping[str, np.ndarray] | None = None,
    *,
    seed: int = 0,
    threads: int = 1,
) -> ExecutionResult:
    """Execute ``plan`` (a Plan, dict or path) for ``model`` and compare with ONNX Runtime on the whole model.

    ``inputs`` maps graph input names to arrays (random from ``seed`` where missing); stripped
    weights are random from ``seed`` as well. The model is prepared with the folds and input
    shapes recorded in the plan's provenance. Raises :class:`ExecutionInputError` when the plan
    and the model do not belong together.
    """
    data = load_plan(plan)
    if isinstance(model, Model):
        return model.execute(data)
    prepared = Model.prepare(
        model, inputs, seed=seed, input_shapes=_plan_input_shapes(data), folds=Folds.of_plan(data), threads=threads
    )
    return prepared.execute(data)
