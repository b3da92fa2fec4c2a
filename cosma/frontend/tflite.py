"""TFLite front end: a ``.tflite`` flatbuffer lowered to the same :class:`~cosma.graph.Graph` as ONNX gives.

The file is read with the ``tflite`` package (the flatbuffer schema's generated Python reader);
no interpreter runs. The main subgraph (subgraph 0) is walked in the file's operator order, which
the TFLite converter keeps topological (it is sorted here when it is not):

- an operator whose inputs are all constants (a ``DEQUANTIZE`` of float16 weights, say) is a
  *folded constant*: its outputs are weights, as the ONNX front end folds constant subgraphs;
- a view (:data:`TFLITE_VIEW_TYPES`: ``RESHAPE``, ``SQUEEZE``, ``EXPAND_DIMS``) aliases its
  output to its data input's root tensor, which operators then read;
- every other operator becomes one :class:`~cosma.graph.Operator` named ``f"{OP}_{index}"``
  with its builtin op name (``CONV_2D``, ``FULLY_CONNECTED``; a custom operator by its custom
  code). A fused activation the converter recorded in the operator's options (``RELU``,
  ``RELU6``...) is listed in ``Operator.fused``, as ONNX epilogue fusion lists folded types.

Kinds follow plan-format.md as in the ONNX front end: ``input`` (a subgraph input), ``weight``
(a tensor no operator produces that is not an input: constant buffers, including weight-stripped
files whose buffers are empty, and variable state), ``output`` (the root of a subgraph output) and
``activation``. Bytes are elements times the TFLite type's size (int8 tensors count one byte per
element, int4 half), or times ``element_bytes`` when given. Quantization parameters live in the
tensor's metadata, not in tensors of their own, and occupy no scratchpad here (TFLite Micro turns
them into per-channel multipliers at preparation time). Tensor shapes are the file's: TFLite
stores every intermediate shape, so there is nothing to infer; ``input_shapes`` may only restate
them.

Separate activation operators (``RELU``, ``LOGISTIC``, ``HARD_SWISH``...) and constant-operand
``ADD``/``MUL``/``SUB``/``DIV`` fold into their producer with ``fuse=True`` under the ONNX rule
(:mod:`cosma.frontend.fuse`). Control flow (``WHILE``, ``IF``, ``CALL_ONCE``) is refused naming
the operator. Every problem is a :class:`~cosma.errors.ModelError` in one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from math import prod
from pathlib import Path
from types import MappingProxyType

from cosma.errors import ModelError
from cosma.frontend.finish import check_element_bytes, finish
from cosma.frontend.fuse import fuse_epilogues
from cosma.graph import Graph, Operator, Tensor, TensorKind, stable_topological_order

#: The flatbuffer file identifier of TFLite models, at bytes 4 to 8.
TFLITE_MAGIC = b"TFL3"
#: Builtin operators whose output re-interprets their first input's bytes.
TFLITE_VIEW_TYPES: frozenset[str] = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})
#: Elementwise TFLite operators that may fold into the operator they follow, each with a distinct
#: stand-in from :data:`cosma.frontend.fuse.EPILOGUE_TYPES` (the rule looks only at membership, and
#: distinct stand-ins map back one to one).
TFLITE_EPILOGUES: Mapping[str, str] = MappingProxyType(
    {
        "RELU": "Relu",
        "RELU6": "Clip",
        "RELU_N1_TO_1": "Celu",
        "RELU_0_TO_1": "ThresholdedRelu",
        "LOGISTIC": "Sigmoid",
        "TANH": "Tanh",
        "HARD_SWISH": "HardSwish",
        "LEAKY_RELU": "LeakyRelu",
        "PRELU": "PRelu",
        "GELU": "Gelu",
        "ELU": "Elu",
        "ADD": "Add",
        "SUB": "Sub",
        "MUL": "Mul",
        "DIV": "Div",
    }
)
_CONTROL_FLOW = frozenset({"WHILE", "IF", "CALL_ONCE", "CALL"})
#: Bits per element of each TensorType (by its enum name); STRING, RESOURCE and VARIANT have none.
_TYPE_BITS = {
    "FLOAT32": 32,
    "FLOAT16": 16,
    "BFLOAT16": 16,
    "FLOAT64": 64,
    "INT32": 32,
    "UINT32": 32,
    "INT64": 64,
    "UINT64": 64,
    "INT16": 16,
    "UINT16": 16,
    "INT8": 8,
    "UINT8": 8,
    "BOOL": 8,
    "INT4": 4,
    "COMPLEX64": 64,
    "COMPLEX128": 128,
}
#: TFLite activation names as Operator.fused records them (NONE is left out).
_ACTIVATIONS = {1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def is_tflite(path: str | os.PathLike[str]) -> bool:
    """True when the file carries the TFLite flatbuffer identifier (whatever its suffix)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == TFLITE_MAGIC


def load_tflite(
    model: str | os.PathLike[str],
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    element_bytes: int | None = None,
    weights: bool = True,
    fuse: bool = True,
    name: str | None = None,
    inplace: bool = True,
) -> Graph:
    """Lower a ``.tflite`` file to a :class:`Graph` (rules in the module docstring).

    ``inplace`` declares in-place pairs (:mod:`cosma.frontend.inplace`); False gives a graph without any.
    """
    check_element_bytes(element_bytes)
    path = Path(model)
    source = str(path)
    root = _read(path)
    walked = _walk(root, source)
    _check_input_shapes(walked, input_shapes or {}, source)
    graph = _build(name or path.stem, walked, source, element_bytes)
    return finish(graph, fuse=_fuse if fuse else None, weights=weights, inplace=inplace)


def _fuse(graph: Graph) -> Graph:
    """ONNX epilogue fusion on TFLite op types: run under stand-in ONNX types, then give the TFLite names back."""
    ops = [replace(o, op_type=TFLITE_EPILOGUES.get(o.op_type, o.op_type)) for o in graph.ops]
    fused = fuse_epilogues(Graph.build(graph.name, graph.tensors, ops, graph.metadata))
    back = {v: k for k, v in TFLITE_EPILOGUES.items()}
    original = graph.op_by_name
    return Graph.build(
        graph.name,
        fused.tensors,
        [
            replace(
                o,
                op_type=original[o.name].op_type,
                fused=(*original[o.name].fused, *(back.get(f, f) for f in o.fused[len(original[o.name].fused) :])),
            )
            for o in fused.ops
        ],
        graph.metadata,
    )


# ===================================================================== read
def _read(path: Path):
    import tflite

    if not path.exists():
        raise ModelError(f"{path}: no such file; give the path of a .tflite model")
    if not path.is_file():
        raise ModelError(f"{path}: not a file; give the path of a .tflite model")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"{path}: cannot read it ({e.strerror or e})") from None
    if len(data) < 8 or data[4:8] != TFLITE_MAGIC:
        raise ModelError(
            f"{path}: not a TFLite model (no 'TFL3' flatbuffer identifier); give a .tflite file "
            "written by the TFLite converter"
        )
    try:
        root = tflite.Model.GetRootAs(data, 0)
        if root.SubgraphsLength() < 1:
            raise ModelError(f"{path}: the TFLite model has no subgraph; give a converted model")
    except ModelError:
        raise
    except Exception as e:  # a truncated or corrupt flatbuffer raises from the generated accessors
        raise ModelError(
            f"{path}: a corrupt or truncated TFLite file ({type(e).__name__}: {e}); convert the model again"
        ) from None
    return root


# ===================================================================== walk
@dataclass
class _TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_name: str
    signature: tuple[int, ...] | None


@dataclass
class _Walked:
    tensors: list[_TensorInfo]
    inputs: list[int]
    outputs: list[int]  # roots of the subgraph outputs
    ops: list[tuple[str, str, tuple[int, ...], tuple[int, ...], tuple[str, ...]]]  # name, type, ins, outs, fused
    constants: set[int]
    folded: int
    views: int
    version: int
    description: str


def _enum_names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def _op_type(root, op, source: str) -> str:
    import tflite
    from tflite.utils import BUILTIN_OPCODE2NAME

    index = op.OpcodeIndex()
    if index >= root.OperatorCodesLength():
        raise ModelError(
            f"{source}: an operator names opcode {index}, beyond the model's "
            f"{root.OperatorCodesLength()} opcodes; convert the model again"
        )
    code = root.OperatorCodes(index)
    # Schema 3a moved builtin codes past 127 to BuiltinCode; older files fill only the deprecated field.
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        custom = code.CustomCode()
        return custom.decode("utf-8", "replace") if custom else "CUSTOM"
    return BUILTIN_OPCODE2NAME.get(builtin, f"BUILTIN_{builtin}")


def _fused_activation(op) -> tuple[str, ...]:
    """The activation the converter fused into ``op`` (from its builtin options), if any."""
    import tflite

    kind = op.BuiltinOptionsType()
    table = op.BuiltinOptions()
    if not kind or table is None:
        return ()
    cls = getattr(tflite, _enum_names(tflite.BuiltinOptions).get(kind, ""), None)
    if cls is None or not hasattr(cls, "FusedActivationFunction"):
        return ()
    options = cls()
    options.Init(table.Bytes, table.Pos)
    activation = _ACTIVATIONS.get(options.FusedActivationFunction())
    return (activation,) if activation else ()


def _tensor_info(sg, index: int, type_names: Mapping[int, str], names: set[str]) -> _TensorInfo:
    t = sg.Tensors(index)
    raw = t.Name()
    base = raw.decode("utf-8", "replace") if raw else f"tensor_{index}"
    name, k = base, 0
    while name in names:  # TFLite does not require unique names; the Graph does
        k += 1
        name = f"{base}_{k}"
    names.add(name)
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if not t.ShapeIsNone() else ()
    signature = tuple(int(d) for d in t.ShapeSignatureAsNumpy()) if not t.ShapeSignatureIsNone() else None
    return _TensorInfo(name, shape, type_names.get(t.Type(), f"TYPE_{t.Type()}"), signature)


def _ordered(ops: list, produced_by: Mapping[int, int], source: str) -> list[int]:
    """Operator indices in a topological order, the file's wherever it is one already."""
    order = stable_topological_order([{produced_by[x] for x in ins if x in produced_by} for _, _, ins, _, _ in ops])
    if isinstance(order, int):
        raise ModelError(
            f"{source}: the operators form a cycle through {ops[order][0]!r}; a TFLite subgraph must be acyclic"
        )
    return order


def _walk(root, source: str) -> _Walked:
    import tflite

    sg = root.Subgraphs(0)
    type_names = _enum_names(tflite.TensorType)
    names: set[str] = set()
    try:
        infos = [_tensor_info(sg, i, type_names, names) for i in range(sg.TensorsLength())]
        inputs = [int(i) for i in sg.InputsAsNumpy()] if not sg.InputsIsNone() else []
        outputs = [int(i) for i in sg.OutputsAsNumpy()] if not sg.OutputsIsNone() else []
        raw_ops = []
        for index in range(sg.OperatorsLength()):
            op = sg.Operators(index)
            op_type = _op_type(root, op, source)
            ins = tuple(int(i) for i in op.InputsAsNumpy()) if not op.InputsIsNone() else ()
            outs = tuple(int(i) for i in op.OutputsAsNumpy()) if not op.OutputsIsNone() else ()
            raw_ops.append((f"{op_type}_{index}", op_type, ins, outs, _fused_activation(op)))
        version = root.Version()
        description = (root.Description() or b"").decode("utf-8", "replace")
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(
            f"{source}: a corrupt or truncated TFLite file ({type(e).__name__}: {e}); convert the model again"
        ) from None

    count = len(infos)
    for label, op_type, ins, outs, _ in raw_ops:
        if op_type in _CONTROL_FLOW:
            raise ModelError(
                f"{source}: operator {label!r} ({op_type}) is control flow, which cosma cannot "
                "schedule; convert the model with loops unrolled and branches resolved"
            )
        bad = [i for i in (*ins, *outs) if i >= count or (i < 0 and i in outs)]
        if bad:
            raise ModelError(
                f"{source}: operator {label!r} names tensor {bad[0]}, which the subgraph "
                f"does not have ({count} tensors); convert the model again"
            )
        both = set(ins) & set(outs)
        if both:
            clash = infos[next(iter(both))].name
            raise ModelError(
                f"{source}: operator {label!r} ({op_type}) updates tensor {clash!r} in place "
                "(variable state), which cosma cannot schedule; convert a stateless model"
            )
    for i in (*inputs, *outputs):
        if not 0 <= i < count:
            raise ModelError(
                f"{source}: the subgraph lists tensor {i} as an input or output, but has "
                f"{count} tensors; convert the model again"
            )

    produced_by: dict[int, int] = {}
    for k, (label, _, _, outs, _) in enumerate(raw_ops):
        for t in outs:
            if t in produced_by:
                raise ModelError(
                    f"{source}: tensor {infos[t].name!r} is written by two operators, "
                    f"{raw_ops[produced_by[t]][0]!r} and {label!r}; convert the model again"
                )
            produced_by[t] = k
    input_set = set(inputs)
    constants = {i for i in range(count) if i not in produced_by and i not in input_set}

    alias: dict[int, int] = {}
    ops: list[tuple[str, str, tuple[int, ...], tuple[int, ...], tuple[str, ...]]] = []
    folded = views = 0
    for k in _ordered(raw_ops, produced_by, source):
        label, op_type, ins, outs, fused = raw_ops[k]
        present = [i for i in ins if i >= 0]  # -1 marks an omitted optional input
        if present and all(alias.get(i, i) in constants for i in present):
            constants.update(outs)
            folded += 1
        elif op_type in TFLITE_VIEW_TYPES and present and len(outs) == 1:
            alias[outs[0]] = alias.get(present[0], present[0])
            views += 1
        else:
            roots = tuple(dict.fromkeys(alias.get(i, i) for i in present))
            ops.append((label, op_type, roots, outs, fused))

    roots_out: list[int] = []
    for out in outputs:
        r = alias.get(out, out)
        through = "" if r == out else f" (through views, {infos[r].name!r})"
        if r in constants:
            raise ModelError(
                f"{source}: subgraph output {infos[out].name!r} is a constant{through}, computed by "
                "no operator; remove it from the outputs"
            )
        if r in input_set:
            raise ModelError(
                f"{source}: subgraph output {infos[out].name!r} is the input {infos[r].name!r}"
                f"{through}, computed by no operator; remove it from the outputs"
            )
        if r not in roots_out:
            roots_out.append(r)
    if not roots_out:
        raise ModelError(f"{source}: the TFLite subgraph has no outputs; convert the model with its outputs")
    return _Walked(infos, inputs, roots_out, ops, constants, folded, views, version, description)


def _check_input_shapes(walked: _Walked, input_shapes: Mapping[str, Sequence[int]], source: str) -> None:
    """TFLite stores every tensor's shape; a given input shape must restate the stored one."""
    by_name = {walked.tensors[i].name: walked.tensors[i] for i in walked.inputs}
    for name, dims in input_shapes.items():
        given = "x".join(str(int(d)) for d in dims) or "scalar"
        if name not in by_name:
            raise ModelError(
                f"--input-shape {name}={given}: {source} has no input {name!r}; "
                f"its inputs are {', '.join(by_name) or 'none'}"
            )
        stored = by_name[name].shape
        if tuple(int(d) for d in dims) != stored:
            raise ModelError(
                f"--input-shape {name}={given}: {source} is a TFLite model, whose tensor shapes are "
                f"fixed at conversion ({name} is {'x'.join(map(str, stored)) or 'scalar'}); "
                "convert the model again with the input shape you need"
            )


# ===================================================================== build
def _bytes(info: _TensorInfo, element_bytes: int | None, source: str) -> int:
    elements = prod(info.shape)
    if element_bytes:
        return elements * element_bytes
    bits = _TYPE_BITS.get(info.type_name)
    if bits is None:
        raise ModelError(
            f"{source}: tensor {info.name!r} is of type {info.type_name}, which has no fixed size; "
            "cosma needs numeric tensors"
        )
    return -(-elements * bits // 8)


def _build(name: str, walked: _Walked, source: str, element_bytes: int | None) -> Graph:
    live = set(walked.outputs)
    kept = []
    for op in reversed(walked.ops):
        if any(t in live for t in op[3]):
            kept.append(op)
            live.update(op[2])
    kept.reverse()

    produced = {t for op in kept for t in op[3]}
    outputs = set(walked.outputs)
    indices = list(dict.fromkeys(t for op in kept for t in (*op[2], *op[3])))
    tensors = []
    for i in indices:
        info = walked.tensors[i]
        kind: TensorKind
        if i in outputs:
            kind = "output"
        elif i in produced:
            kind = "activation"
        elif i in walked.constants:
            kind = "weight"
        else:
            kind = "input"
        tensors.append(
            Tensor(
                info.name,
                _bytes(info, element_bytes, source),
                kind,
                info.shape,
                info.type_name.lower(),
            )
        )
    ops = [
        Operator(
            label,
            op_type,
            tuple(walked.tensors[i].name for i in ins),
            tuple(walked.tensors[i].name for i in outs),
            fused,
        )
        for label, op_type, ins, outs, fused in kept
    ]
    metadata = {
        "source": source,
        "producer": f"TFLite schema v{walked.version}" + (f" ({walked.description})" if walked.description else ""),
        "format": "tflite",
        "folded_nodes": str(walked.folded),
        "view_nodes": str(walked.views),
        "dead_operators": str(len(walked.ops) - len(kept)),
    }
    return Graph.build(name, tensors, ops, metadata)
