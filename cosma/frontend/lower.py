"""Lowering an ONNX model to the scheduling IR (:class:`~cosma.graph.Graph`).

``load_onnx`` runs named phases, each a function below:

1. **read**: the ModelProto, without external weight data (only shapes are needed);
2. **prepare**: inline model-local functions, sort the nodes topologically (stably: the ONNX
   order is kept when it already is one), run ``onnx.checker``, refuse control flow and
   sequences, fix symbolic input dims from ``input_shapes``, and run ONNX shape inference
   with data propagation;
3. **walk** the nodes in order; each becomes exactly one of
   - a *folded constant*: every input is a constant (an initializer, a weight-stripped input, or
     the output of another folded node), or it is ``Shape``/``Size`` of a statically shaped
     tensor. It never becomes an operator. Its value is computed, by onnx's reference
     evaluator on a one-node model, only when a shape depends on it, so a weight faked by
     ``ConstantOfShape`` is never materialised;
   - a *view* (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout at inference): its
     output becomes an alias of its data input's root tensor, which operators then read;
   - an *operator*, reading the roots of its non-empty inputs (each listed once).
   Shapes come from shape inference; a node whose outputs it left unknown is inferred again
   alone with its constant inputs' values, and a constant is evaluated as a last resort;
4. **build** the tensors operators touch, after dropping operators no graph output depends on.
   Kinds follow plan-format.md: ``input`` (a graph input), ``weight`` (a constant some
   operator reads: initializers, folded constants, graph inputs listed in the metadata entry
   ``stripped_weight_inputs``), ``output`` (the root of a graph output, also through a view)
   and ``activation`` (everything an operator produces otherwise). Bytes are elements times
   the ONNX element size, or times ``element_bytes`` when given;
5. **fuse** elementwise epilogues into the single operator they follow (``fuse=True``). The
   rule, in :mod:`cosma.frontend.fuse`: an elementwise operator (BatchNormalization, Relu,
   Clip, Sigmoid, HardSwish, LeakyRelu, Tanh, bias Add, scaling Mul, ...) whose only
   non-weight input is an activation read by nothing else folds into that activation's
   producer, which keeps its name and op type, reads the epilogue's weights, writes the
   epilogue's output and lists the folded types in ``Operator.fused``;
6. drop the weights when ``weights=False`` (:meth:`Graph.without_weights`);
7. declare in-place pairs (``inplace=True``; the rule is in :mod:`cosma.frontend.inplace`):
   an elementwise operator's output may overwrite a same-size input. ``inplace=False`` gives
   a graph without pairs, whose every figure is that of a runtime that never writes in place.

Every problem with the model is a :class:`~cosma.errors.ModelError` in one line that names
the file, the node or tensor, and the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from cosma.errors import ModelError
from cosma.frontend.finish import check_element_bytes, finish
from cosma.frontend.fold import fold_batchnorm, fold_constant_ifs, fold_constants
from cosma.frontend.fuse import fuse_epilogues
from cosma.graph import Graph, Operator, Tensor, stable_topological_order

#: Operators whose output is a re-interpretation of their first input's bytes.
VIEW_TYPES: frozenset[str] = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
#: Metadata key of weights-stripped files: a JSON list of graph inputs that stand for weights.
STRIPPED_WEIGHTS_KEY = "stripped_weight_inputs"

_CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
_SEQUENCE_OPS = frozenset(
    {
        "SequenceConstruct",
        "SequenceEmpty",
        "SequenceAt",
        "SequenceInsert",
        "SequenceErase",
        "SequenceLength",
        "SequenceMap",
        "SplitToSequence",
        "ConcatFromSequence",
        "Optional",
        "OptionalGetElement",
        "OptionalHasElement",
    }
)
#: Constant-input operators that must not be folded: their value changes from run to run.
_RANDOM_OPS = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
_DEFAULT_DOMAINS = frozenset({"", "ai.onnx"})
#: Constants up to this many elements are handed to shape inference as values (shape tensors).
_DATA_ELEMENTS = 1 << 16
#: No constant larger than this is ever materialised to learn a shape.
_MAX_FOLD_ELEMENTS = 1 << 24
_SUB_BYTE_BITS = {"INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2}


def load_onnx(
    model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    element_bytes: int | None = None,
    weights: bool = True,
    fuse: bool = True,
    fold_batchnorm: bool = True,
    fold_if: bool = True,
    name: str | None = None,
    inplace: bool = True,
) -> Graph:
    """Lower an ONNX model (a path or a ModelProto) to a :class:`Graph` (phases in the module docstring).

    Example:
        >>> from onnx import TensorProto, helper
        >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
        >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])
        >>> m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y]))
        >>> g = load_onnx(m, input_shapes={"x": (2, 8)})
        >>> [(t.name, t.kind, t.bytes) for t in g.tensors], g.ops[0].name
        ([('x', 'input', 64), ('y', 'output', 64)], 'Relu_0')
    """
    check_element_bytes(element_bytes)
    proto, source, default_name = _read(model)
    folds: dict[str, int] = {}
    proto = _prepare(proto, source, input_shapes or {}, _Folds(fold_batchnorm, fold_if), folds)
    walked = _walk(proto, source)
    graph = _build(name or default_name, walked, source, element_bytes, folds)
    return finish(graph, fuse=fuse_epilogues if fuse else None, weights=weights, inplace=inplace)


# ===================================================================== read
def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _read(model: str | os.PathLike[str] | onnx.ModelProto) -> tuple[onnx.ModelProto, str, str]:
    """The model (a private copy), how to name it in messages, and the default graph name."""
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        return proto, f"model {model.graph.name or '(unnamed)'}", model.graph.name or "model"
    if not isinstance(model, (str, os.PathLike)):
        raise ModelError(f"cannot read a model from a {type(model).__name__}; give a path or an onnx.ModelProto")
    path = Path(model)
    if not path.exists():
        raise ModelError(f"{path}: no such file; give the path of an .onnx model")
    if not path.is_file():
        raise ModelError(f"{path}: not a file; give the path of an .onnx model")
    try:
        proto = onnx.load(path, load_external_data=False)
    except OSError as e:
        raise ModelError(f"{path}: cannot read it ({e.strerror or _one_line(e)})") from None
    except Exception as e:  # protobuf raises DecodeError and friends on bytes that are not ONNX
        raise ModelError(f"{path}: not an ONNX model ({_one_line(e) or type(e).__name__})") from None
    return proto, str(path), path.stem


# ================================================================== prepare
@dataclass(frozen=True)
class _Folds:
    """Which inference-time folds of :mod:`cosma.frontend.fold` run."""

    batchnorm: bool = True
    constant_if: bool = True


def _prepare(
    proto: onnx.ModelProto,
    source: str,
    input_shapes: Mapping[str, Sequence[int]],
    folds: _Folds,
    counts: dict[str, int],
) -> onnx.ModelProto:
    if proto.functions:
        try:
            proto = onnx.inliner.inline_local_functions(proto)
        except Exception as e:
            raise ModelError(f"{source}: cannot inline the model's local functions ({_one_line(e)})") from None
    _sort_nodes(proto.graph, source)
    _check(proto, source)
    if folds.constant_if:
        counts["folded_if"] = fold_constant_ifs(proto)
    _refuse_unsupported(proto, source)
    _fix_input_shapes(proto.graph, input_shapes, source)
    if folds.batchnorm:
        # Folding sees weights only once constant subgraphs (Identity, Expand, CastLike...) are values.
        counts["folded_constants"] = fold_constants(proto)
        counts["folded_batchnorm"] = fold_batchnorm(proto)
    try:
        return onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
    except Exception as e:
        raise ModelError(f"{source}: ONNX shape inference failed ({_one_line(e)})") from None


def node_names(nodes: Sequence[onnx.NodeProto]) -> list[str]:
    """Unique operator names: the node's own, or ``f"{op_type}_{index}"`` when it has none."""
    given = {n.name for n in nodes if n.name}
    seen: set[str] = set()
    names: list[str] = []
    for index, node in enumerate(nodes):
        base = node.name or f"{node.op_type}_{index}"
        candidate, k = base, 0
        while candidate in seen or (candidate != node.name and candidate in given):
            k += 1
            candidate = f"{base}_{k}"
        seen.add(candidate)
        names.append(candidate)
    return names


def _sort_nodes(graph: onnx.GraphProto, source: str) -> None:
    """Reorder ``graph.node`` topologically, keeping the file's order wherever it allows."""
    nodes = list(graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    order = stable_topological_order([{producer[x] for x in n.input if x in producer} for n in nodes])
    if isinstance(order, int):
        raise ModelError(
            f"{source}: the graph has a cycle through node {node_names(nodes)[order]!r}; an ONNX graph must be acyclic"
        )
    if order != list(range(len(nodes))):
        del graph.node[:]
        graph.node.extend(nodes[i] for i in order)


def _check(proto: onnx.ModelProto, source: str) -> None:
    """onnx.checker on the model, with external initializers stood in for by graph inputs."""
    external = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    checkable = proto
    if external:
        checkable = onnx.ModelProto()
        checkable.CopyFrom(proto)
        names = {t.name for t in external}
        declared = {i.name for i in checkable.graph.input}
        kept = [t for t in checkable.graph.initializer if t.name not in names]
        del checkable.graph.initializer[:]
        checkable.graph.initializer.extend(kept)
        checkable.graph.input.extend(
            helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in external if t.name not in declared
        )
    try:
        onnx.checker.check_model(checkable)
    except Exception as e:
        raise ModelError(f"{source}: not a valid ONNX model: {_one_line(e)}") from None


def _refuse_unsupported(proto: onnx.ModelProto, source: str) -> None:
    """Control flow, sequences and functions left un-inlined are not straight-line operator graphs."""
    functions = {(f.domain, f.name) for f in proto.functions}
    graph_attrs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    for label, node in zip(node_names(proto.graph.node), proto.graph.node):
        what = f"{source}: node {label!r} ({node.op_type})"
        if node.op_type in _CONTROL_FLOW or any(a.type in graph_attrs for a in node.attribute):
            raise ModelError(
                f"{what} is control flow, which cosma cannot schedule; export the model "
                "with loops unrolled and branches resolved"
            )
        if node.op_type in _SEQUENCE_OPS and node.domain in _DEFAULT_DOMAINS:
            raise ModelError(
                f"{what} works on sequences or optionals, which cosma cannot schedule; "
                "export the model with plain tensors"
            )
        if (node.domain, node.op_type) in functions:
            raise ModelError(f"{what} calls a model-local function that could not be inlined")
    for value in (*proto.graph.input, *proto.graph.output):
        if value.type.WhichOneof("value") not in (None, "tensor_type"):
            raise ModelError(
                f"{source}: graph input/output {value.name!r} is a "
                f"{value.type.WhichOneof('value')}, which cosma cannot schedule; use plain tensors"
            )


def _dims_text(dims: Iterable[object]) -> str:
    return "x".join(str(d) for d in dims) or "scalar"


def _declared(value: onnx.ValueInfoProto) -> str:
    """A value's declared shape as text, symbolic dims by name: ``Nx3x224x224``."""
    dims = value.type.tensor_type.shape.dim
    return _dims_text(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)


def _fix_input_shapes(graph: onnx.GraphProto, input_shapes: Mapping[str, Sequence[int]], source: str) -> None:
    """Replace the declared (possibly symbolic) shapes of the named graph inputs by the given ones."""
    inputs = {i.name: i for i in graph.input}
    for name, dims in input_shapes.items():
        given = _dims_text(dims)
        if name not in inputs:
            raise ModelError(
                f"--input-shape {name}={given}: {source} has no input {name!r}; "
                f"its inputs are {', '.join(inputs) or 'none'}"
            )
        if any(int(d) < 0 for d in dims):
            raise ModelError(f"--input-shape {name}={given}: dimensions must be non-negative")
        tensor_type = inputs[name].type.tensor_type
        if tensor_type.HasField("shape"):
            declared = list(tensor_type.shape.dim)
            clash = len(declared) != len(dims) or any(
                d.HasField("dim_value") and d.dim_value != int(v) for d, v in zip(declared, dims)
            )
            if clash:
                raise ModelError(
                    f"--input-shape {name}={given} does not fit input {name!r} of {source}, "
                    f"declared {_declared(inputs[name])}; give a shape of that form"
                )
        del tensor_type.shape.dim[:]
        for d in dims:
            tensor_type.shape.dim.add().dim_value = int(d)
    if input_shapes:
        # Shapes recorded in the file were derived from the old input dims: infer them afresh.
        del graph.value_info[:]
        for out in graph.output:
            if out.type.WhichOneof("value") == "tensor_type":
                out.type.tensor_type.ClearField("shape")


# ===================================================================== types
def static_shape(tp: onnx.TypeProto | None) -> tuple[int, ...] | None:
    """The shape of a tensor type when every dim is a known number, else None."""
    if tp is None or tp.WhichOneof("value") != "tensor_type" or not tp.tensor_type.HasField("shape"):
        return None
    dims = tp.tensor_type.shape.dim
    if not all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


class _Types:
    """The best type known for each value name: a fully static shape beats a partial one."""

    def __init__(self) -> None:
        self._types: dict[str, onnx.TypeProto] = {}

    def offer(self, name: str, tp: onnx.TypeProto) -> None:
        old = self._types.get(name)
        better = (
            old is None
            or (static_shape(tp) is not None and static_shape(old) is None)
            or (
                old.WhichOneof("value") == "tensor_type"
                and not old.tensor_type.elem_type
                and tp.WhichOneof("value") == "tensor_type"
                and tp.tensor_type.elem_type
            )
        )
        if better:
            self._types[name] = tp

    def set(self, name: str, elem_type: int, shape: Sequence[int]) -> None:
        self._types[name] = helper.make_tensor_type_proto(elem_type, list(shape))

    def get(self, name: str) -> onnx.TypeProto | None:
        return self._types.get(name)

    def shape(self, name: str) -> tuple[int, ...] | None:
        return static_shape(self._types.get(name))

    def elem_type(self, name: str) -> int:
        tp = self._types.get(name)
        return tp.tensor_type.elem_type if tp is not None and tp.WhichOneof("value") == "tensor_type" else 0

    def elements(self, name: str) -> int | None:
        shape = self.shape(name)
        return None if shape is None else prod(shape)


# ================================================================= constants
class _Constants:
    """The model's constant tensors; values are computed only when a shape depends on them.

    A constant is an initializer (its value is in the file unless it is external data), a
    weight-stripped graph input (no value), a value set directly (Shape of a static tensor), or
    the output of a folded node, evaluated on demand with onnx's reference evaluator.
    """

    def __init__(self, proto: onnx.ModelProto, elements: Callable[[str], int | None]) -> None:
        self._opsets = list(proto.opset_import)
        self._ir_version = proto.ir_version
        self._elements = elements
        self._values: dict[str, np.ndarray] = {}
        self._tensors: dict[str, onnx.TensorProto] = {}
        self._recipes: dict[str, onnx.NodeProto] = {}
        self.opaque: dict[str, str] = {}  # name -> why its value cannot be known

    def __contains__(self, name: str) -> bool:
        return name in self._values or name in self._tensors or name in self._recipes or name in self.opaque

    def add_initializer(self, tensor: onnx.TensorProto) -> None:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            self.opaque[tensor.name] = "its data is external"
        else:
            self._tensors[tensor.name] = tensor

    def add_opaque(self, name: str, why: str) -> None:
        self.opaque[name] = why

    def add_value(self, name: str, value: np.ndarray) -> None:
        self._values[name] = value

    def add_node(self, node: onnx.NodeProto) -> None:
        for o in node.output:
            if o:
                self._recipes[o] = node

    def value(self, name: str) -> np.ndarray | None:
        """The constant's value, or None when it is opaque or too large to materialise."""
        if name in self._values:
            return self._values[name]
        if name in self.opaque or name not in self:
            return None
        elements = self._elements(name)
        if elements is not None and elements > _MAX_FOLD_ELEMENTS:
            return None
        if name in self._tensors:
            self._values[name] = numpy_helper.to_array(self._tensors.pop(name))
            return self._values[name]
        node = self._recipes[name]
        feeds: dict[str, np.ndarray] = {}
        for x in node.input:
            if x and x not in feeds:
                v = self.value(x)
                if v is None:
                    self._give_up(node, f"input {x!r} has no known value")
                    return None
                feeds[x] = v
        try:
            results = self._evaluate(node, feeds)
        except Exception as e:
            self._give_up(node, f"the reference evaluator failed: {_one_line(e)}")
            return None
        for o, v in zip((o for o in node.output if o), results):
            self._values[o] = np.asarray(v)
            self._recipes.pop(o, None)
        return self._values.get(name)

    def _give_up(self, node: onnx.NodeProto, why: str) -> None:
        for o in node.output:
            if o:
                self._recipes.pop(o, None)
                self.opaque[o] = why

    def _evaluate(self, node: onnx.NodeProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run ``node`` alone on ``feeds`` (a one-node model, so the model's opset versions apply)."""
        inputs = [
            helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for x, v in feeds.items()
        ]
        outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
        one = helper.make_model(
            helper.make_graph([node], "fold", inputs, outputs), opset_imports=self._opsets, ir_version=self._ir_version
        )
        return list(ReferenceEvaluator(one).run(None, dict(feeds)))


# ====================================================================== walk
@dataclass
class _Walked:
    """What the walk found: operators over root tensors, and everything needed to build tensors."""

    proto: onnx.ModelProto
    types: _Types
    constants: _Constants
    inputs: list[str]
    ops: list[Operator]
    outputs: list[str]
    unknown: dict[str, str] = field(default_factory=dict)  # tensor -> node that left its shape unknown
    folded: int = 0
    views: int = 0


def _attribute(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _shape_constant(node: onnx.NodeProto, types: _Types) -> np.ndarray | None:
    """The value of ``Shape``/``Size`` of a statically shaped tensor, else None."""
    if node.domain not in _DEFAULT_DOMAINS or node.op_type not in ("Shape", "Size"):
        return None
    shape = types.shape(node.input[0])
    if shape is None:
        return None
    if node.op_type == "Size":
        return np.array(prod(shape), dtype=np.int64)
    start = int(_attribute(node, "start", 0))  # type: ignore[call-overload]
    end = _attribute(node, "end", None)
    # ONNX clamps start and end into [-rank, rank] like Python slicing does.
    return np.array(shape[start : None if end is None else int(end)], dtype=np.int64)  # type: ignore[call-overload]


def _stripped_weights(proto: onnx.ModelProto, source: str) -> set[str]:
    for entry in proto.metadata_props:
        if entry.key == STRIPPED_WEIGHTS_KEY:
            try:
                names = json.loads(entry.value)
            except ValueError:
                names = None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ModelError(
                    f"{source}: metadata {STRIPPED_WEIGHTS_KEY!r} must be a JSON list of input names, "
                    f"not {entry.value[:60]!r}"
                )
            inputs = {i.name for i in proto.graph.input}
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ModelError(
                    f"{source}: metadata {STRIPPED_WEIGHTS_KEY!r} names {missing[0]!r}, which is not a graph input"
                )
            return set(names)
    return set()


def _infer_node(node: onnx.NodeProto, walked: _Walked) -> dict[str, onnx.TypeProto]:
    """Output types of ``node`` from ONNX's per-node inference, given small constants' values."""
    proto, types, constants = walked.proto, walked.types, walked.constants
    domain = "" if node.domain in _DEFAULT_DOMAINS else node.domain
    version = next((o.version for o in proto.opset_import if (o.domain or "") == domain), 1)
    try:
        schema = onnx.defs.get_schema(node.op_type, version, domain)
    except Exception:  # an op without a schema (a custom domain): nothing to infer from
        return {}
    input_types: dict[str, onnx.TypeProto] = {}
    data: dict[str, onnx.TensorProto] = {}
    for x in node.input:
        if not x or x in input_types:
            continue
        tp = types.get(x)
        if tp is None:
            return {}
        input_types[x] = tp
        elements = types.elements(x)
        if x in constants and (elements is None or elements <= _DATA_ELEMENTS):
            value = constants.value(x)
            if value is not None:
                data[x] = numpy_helper.from_array(value, x)
    try:
        return onnx.shape_inference.infer_node_outputs(
            schema, node, input_types, data, opset_imports=list(proto.opset_import), ir_version=proto.ir_version
        )
    except Exception:  # inference is a best effort here; an unknown shape is reported later
        return {}


def _settle_types(node: onnx.NodeProto, label: str, walked: _Walked, source: str) -> None:
    """Make every output's shape static if at all possible, or record it as unknown."""
    outputs = [o for o in node.output if o]
    types = walked.types
    if any(types.shape(o) is None for o in outputs):
        for o, inferred in _infer_node(node, walked).items():
            types.offer(o, inferred)
    for o in outputs:
        tp = types.get(o)
        if tp is not None and tp.WhichOneof("value") not in (None, "tensor_type"):
            raise ModelError(
                f"{source}: node {label!r} ({node.op_type}) produces {o!r}, a "
                f"{tp.WhichOneof('value')}, which cosma cannot schedule; use plain tensors"
            )
        if types.shape(o) is None and o in walked.constants:
            value = walked.constants.value(o)
            if value is not None:
                elem = types.elem_type(o) or helper.np_dtype_to_tensor_dtype(value.dtype)
                types.set(o, elem, value.shape)
        if types.shape(o) is None or not types.elem_type(o):
            why = walked.constants.opaque.get(o)
            walked.unknown.setdefault(
                o,
                f"output of node {label!r} ({node.op_type})"
                + (f", a constant not computed because {why}" if why else ""),
            )


def _is_view(node: onnx.NodeProto, read: set[str]) -> bool:
    if node.domain not in _DEFAULT_DOMAINS or node.op_type not in VIEW_TYPES or not node.input or not node.input[0]:
        return False
    # Dropout's optional mask is real data: with the mask in use, Dropout stays an operator.
    return not any(o and o in read for o in node.output[1:])


def _walk(proto: onnx.ModelProto, source: str) -> _Walked:
    g = proto.graph
    types = _Types()
    constants = _Constants(proto, types.elements)
    for value in (*g.input, *g.output, *g.value_info):
        types.offer(value.name, value.type)
    for t in g.initializer:
        types.offer(t.name, helper.make_tensor_type_proto(t.data_type, list(t.dims)))
        constants.add_initializer(t)
    for s in g.sparse_initializer:
        types.offer(s.values.name, helper.make_tensor_type_proto(s.values.data_type, list(s.dims)))
        constants.add_opaque(s.values.name, "it is a sparse initializer")
    stripped = _stripped_weights(proto, source)
    inputs = []
    for i in g.input:
        if i.name in stripped:
            constants.add_opaque(i.name, "its weights were stripped")
        elif i.name not in constants:
            inputs.append(i.name)
    walked = _Walked(proto, types, constants, inputs, [], [])

    read = {x for n in g.node for x in n.input if x} | {o.name for o in g.output}
    alias: dict[str, str] = {}
    sources: dict[str, tuple[str, ...]] = {}  # dequantized constant -> the quantized tensors it is made of
    for label, node in zip(node_names(g.node), g.node):
        present = [x for x in node.input if x]
        shape_value = _shape_constant(node, types)
        if shape_value is not None:
            constants.add_value(node.output[0], shape_value)
            types.set(node.output[0], onnx.TensorProto.INT64, shape_value.shape)
            walked.folded += 1
            continue
        foldable = (
            node.domain in _DEFAULT_DOMAINS and node.op_type not in _RANDOM_OPS and all(x in constants for x in present)
        )
        if foldable:
            constants.add_node(node)
            _settle_types(node, label, walked, source)
            walked.folded += 1
            if node.op_type == "DequantizeLinear":
                # A dequantized weight is stored quantized: its readers load the int8 data and its scale.
                sources[node.output[0]] = tuple(dict.fromkeys(alias.get(x, x) for x in present))
        elif _is_view(node, read):
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
            walked.views += 1
            # A view's own shape is needed by shape-computing nodes downstream (Shape of a Reshape).
            _settle_types(node, label, walked, source)
        else:
            ins = tuple(dict.fromkeys(s for x in present for s in sources.get(alias.get(x, x), (alias.get(x, x),))))
            walked.ops.append(Operator(label, node.op_type, ins, tuple(o for o in node.output if o), nodes=(label,)))
            _settle_types(node, label, walked, source)

    for out in g.output:
        root = alias.get(out.name, out.name)
        through = "" if root == out.name else f" (through views, {root!r})"
        if root in constants:
            raise ModelError(
                f"{source}: graph output {out.name!r} is a constant{through}, computed by no operator; "
                "remove it from the outputs"
            )
        if root in inputs:
            raise ModelError(
                f"{source}: graph output {out.name!r} is the graph input {root!r}{through}, "
                "computed by no operator; remove it from the outputs"
            )
        if root not in walked.outputs:
            walked.outputs.append(root)
    return walked


# ===================================================================== build
def _element_bits(elem_type: int, tensor: str, source: str) -> int:
    kind = onnx.TensorProto.DataType.Name(elem_type)
    if kind in _SUB_BYTE_BITS:
        return _SUB_BYTE_BITS[kind]
    if kind == "STRING":
        raise ModelError(f"{source}: tensor {tensor!r} holds strings, which have no fixed size; cosma needs numbers")
    return 8 * np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize


def _dtype_name(elem_type: int) -> str:
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
    except Exception:
        return onnx.TensorProto.DataType.Name(elem_type).lower()


def _unknown_shape(tensor: str, where: str, walked: _Walked, source: str) -> ModelError:
    symbolic = [
        f"{i.name}[{_declared(i)}]"
        for i in walked.proto.graph.input
        if i.name in walked.inputs and static_shape(i.type) is None
    ]
    hint = f" (symbolic inputs: {', '.join(symbolic)})" if symbolic else ""
    if not symbolic:
        return ModelError(
            f"{source}: the shape of tensor {tensor!r} ({where}) is unknown although every input is "
            "static: it depends on values at run time; export the model with static shapes there"
        )
    first = next(i for i in walked.proto.graph.input if i.name in walked.inputs and static_shape(i.type) is None)
    # The example keeps the input's real rank and its static dims, with 1 for each symbolic one.
    dims = [d.dim_value if d.HasField("dim_value") else 1 for d in first.type.tensor_type.shape.dim]
    return ModelError(
        f"{source}: the shape of tensor {tensor!r} ({where}) is unknown; fix the symbolic input dims "
        f"with --input-shape {first.name}={_dims_text(dims) if dims else '1'}{hint}"
    )


def _build(name: str, walked: _Walked, source: str, element_bytes: int | None, folds: Mapping[str, int]) -> Graph:
    """The Graph over the tensors that operators touch, with operators no output depends on dropped."""
    live = set(walked.outputs)
    kept: list[Operator] = []
    for op in reversed(walked.ops):
        if any(t in live for t in op.outputs):
            kept.append(op)
            live.update(op.inputs)
    kept.reverse()

    produced = {t for op in kept for t in op.outputs}
    outputs = set(walked.outputs)
    names = list(dict.fromkeys(t for op in kept for t in (*op.inputs, *op.outputs)))
    tensors = []
    for t in names:
        shape = walked.types.shape(t)
        elem = walked.types.elem_type(t)
        if shape is None or not elem:
            where = walked.unknown.get(t) or ("a graph input" if t in walked.inputs else "a constant")
            raise _unknown_shape(t, where, walked, source)
        elements = prod(shape)
        size = elements * element_bytes if element_bytes else -(-elements * _element_bits(elem, t, source) // 8)
        if t in outputs:
            kind = "output"
        elif t in produced:
            kind = "activation"
        elif t in walked.constants:
            kind = "weight"
        else:
            kind = "input"
        tensors.append(Tensor(t, size, kind, shape, _dtype_name(elem)))  # type: ignore[arg-type]

    opset = next((o.version for o in walked.proto.opset_import if (o.domain or "") == ""), 0)
    metadata = {
        "source": source,
        "producer": f"{walked.proto.producer_name} {walked.proto.producer_version}".strip(),
        "opset": str(opset),
        "folded_nodes": str(walked.folded),
        "view_nodes": str(walked.views),
        "dead_operators": str(len(walked.ops) - len(kept)),
        **{key: str(n) for key, n in folds.items()},
    }
    return Graph.build(name, tensors, kept, metadata)
