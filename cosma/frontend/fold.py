"""Inference-time folding on the ONNX model, before lowering (each fold has a switch in ``load_onnx``).

- :func:`fold_constant_ifs` (``fold_if``): an ``If`` whose condition is a constant (an
  initializer, a ``Constant``, or a subgraph of constants evaluated by onnx's reference
  evaluator) is replaced by the nodes of the branch it takes. Names the branch defines get the
  prefix ``"<If name>/"`` so they cannot collide with the outer graph's; each branch output is
  passed to the ``If`` output by an ``Identity`` (a view, so it costs nothing).
- :func:`fold_batchnorm` (``fold_batchnorm``): a ``BatchNormalization`` at inference whose data
  input is the only use of a ``Conv`` or ``Gemm`` output is folded into that operator's weights:
  with ``s = scale / sqrt(var + eps)``, ``W' = W * s`` along the output-channel axis and
  ``b' = (b - mean) * s + bias``; a following ``Mul`` / ``Add`` by a per-output-channel constant
  folds the same way (``W' = W * m, b' = b * m`` and ``b' = b + a``). The folded node keeps its
  name and writes the folded node's output, so operators downstream are unchanged. When the
  weights are not in the file (stripped or external) the fold is structural: the same rewrite
  with the new bias as a weight of the right shape and no value (a stripped input when the
  model is a stripped one, so lowering counts it as a weight).

Both return the number of nodes they removed, so ``load_onnx`` can record them in the Graph
metadata.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

#: Metadata key of weights-stripped files (the same key ``lower`` reads).
STRIPPED_WEIGHTS_KEY = "stripped_weight_inputs"
_DEFAULT_DOMAINS = frozenset({"", "ai.onnx"})


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _known_tensors(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Constant tensors whose values are in the file: initializers and ``Constant(value=...)`` outputs."""
    known = {t.name: t for t in graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL}
    for n in graph.node:
        if n.op_type == "Constant" and n.domain in _DEFAULT_DOMAINS and n.output:
            value = _attr(n, "value", None)
            if isinstance(value, onnx.TensorProto) and value.data_location != onnx.TensorProto.EXTERNAL:
                known[n.output[0]] = value
    return known


# ===================================================================== If
def _constant_value(
    name: str,
    proto: onnx.ModelProto,
    producers: Mapping[str, onnx.NodeProto],
    known: Mapping[str, onnx.TensorProto],
    memo: dict[str, np.ndarray | None],
    depth: int = 0,
) -> np.ndarray | None:
    """The value of ``name`` when only constants lead to it (a small subgraph), else None."""
    if name in memo:
        return memo[name]
    memo[name] = None  # guards against revisiting while this one is being worked out
    if name in known:
        memo[name] = numpy_helper.to_array(known[name])
        return memo[name]
    node = producers.get(name)
    if node is None or depth > 64 or node.domain not in _DEFAULT_DOMAINS or node.op_type in ("If", "Loop", "Scan"):
        return None
    feeds: dict[str, np.ndarray] = {}
    for x in node.input:
        if x and x not in feeds:
            v = _constant_value(x, proto, producers, known, memo, depth + 1)
            if v is None or v.size > 1 << 16:  # a condition comes from small tensors; never materialise weights
                return None
            feeds[x] = v
    inputs = [
        helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for x, v in feeds.items()
    ]
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
    one = helper.make_model(
        helper.make_graph([node], "fold", inputs, outputs),
        opset_imports=list(proto.opset_import),
        ir_version=proto.ir_version,
    )
    try:
        results = ReferenceEvaluator(one).run(None, feeds)
    except Exception:  # not evaluable here: the If stays and is refused by name later
        return None
    for o, v in zip((o for o in node.output if o), results):
        memo[o] = np.asarray(v)
    return memo.get(name)


def _inline_branch(
    node: onnx.NodeProto, label: str, branch: onnx.GraphProto
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The branch's nodes and initializers with its own names prefixed, then Identity to the If outputs."""
    local = {t.name for t in branch.initializer} | {o for n in branch.node for o in n.output if o}
    prefix = f"{label}/"

    def rename(x: str) -> str:
        return prefix + x if x in local else x

    nodes = []
    for i, n in enumerate(branch.node):
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.name = prefix + (n.name or f"{n.op_type}_{i}")
        copy.input[:] = [rename(x) if x else x for x in n.input]
        copy.output[:] = [rename(o) if o else o for o in n.output]
        nodes.append(copy)
    inits = []
    for t in branch.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        copy.name = prefix + t.name
        inits.append(copy)
    for out, target in zip(branch.output, node.output):
        if target:
            nodes.append(helper.make_node("Identity", [rename(out.name)], [target], name=f"{prefix}{target}"))
    return nodes, inits


def fold_constant_ifs(proto: onnx.ModelProto) -> int:
    """Replace, in place, every ``If`` with a constant condition by its branch; the number replaced."""
    replaced = 0
    for _ in range(32):  # a taken branch may hold another constant If: go again, a bounded number of times
        graph = proto.graph
        producers = {o: n for n in graph.node for o in n.output if o}
        known = _known_tensors(graph)
        memo: dict[str, np.ndarray | None] = {}
        nodes: list[onnx.NodeProto] = []
        inits: list[onnx.TensorProto] = []
        changed = False
        for i, n in enumerate(graph.node):
            if n.op_type == "If" and n.domain in _DEFAULT_DOMAINS:
                cond = _constant_value(n.input[0], proto, producers, known, memo)
                if cond is not None and cond.size == 1:
                    branch = _attr(n, "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch", None)
                    if isinstance(branch, onnx.GraphProto):
                        more, extra = _inline_branch(n, n.name or f"If_{i}", branch)
                        nodes.extend(more)
                        inits.extend(extra)
                        replaced += 1
                        changed = True
                        continue
            nodes.append(n)
        if not changed:
            break
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(inits)
    return replaced


# ================================================================ BatchNorm
def _stripped(proto: onnx.ModelProto) -> list[str] | None:
    for entry in proto.metadata_props:
        if entry.key == STRIPPED_WEIGHTS_KEY:
            try:
                names = json.loads(entry.value)
            except ValueError:
                return None
            return names if isinstance(names, list) else None
    return None


class _Weights:
    """Constant tensors of the graph: their shapes always, their values when the file has them."""

    def __init__(self, proto: onnx.ModelProto) -> None:
        g = proto.graph
        self.proto = proto
        self.known = _known_tensors(g)
        self.stripped = _stripped(proto)
        self.shapes: dict[str, tuple[int, ...]] = {t.name: tuple(t.dims) for t in g.initializer}
        self.shapes.update({name: tuple(t.dims) for name, t in self.known.items()})
        for i in g.input:
            if self.stripped is not None and i.name in self.stripped:
                dims = i.type.tensor_type.shape.dim
                if all(d.HasField("dim_value") for d in dims):
                    self.shapes[i.name] = tuple(d.dim_value for d in dims)
        self.elem: dict[str, int] = {t.name: t.data_type for t in g.initializer}
        self.elem.update({name: t.data_type for name, t in self.known.items()})
        for i in g.input:
            self.elem.setdefault(i.name, i.type.tensor_type.elem_type)
        self.fresh = 0

    def is_weight(self, name: str) -> bool:
        return name in self.shapes

    def value(self, name: str) -> np.ndarray | None:
        t = self.known.get(name)
        return None if t is None else numpy_helper.to_array(t).astype(np.float64)

    def add(self, name: str, value: np.ndarray | None, shape: tuple[int, ...], elem: int) -> str:
        """A new weight: an initializer holding ``value``, or a value-less stripped input."""
        self.fresh += 1
        g = self.proto.graph
        if value is not None:
            tensor = numpy_helper.from_array(value.astype(helper.tensor_dtype_to_np_dtype(elem)), name)
            g.initializer.append(tensor)
            self.known[name] = tensor
        else:
            g.input.append(helper.make_tensor_value_info(name, elem, list(shape)))
            if self.stripped is None:
                self.stripped = []
            self.stripped.append(name)
        self.shapes[name] = shape
        self.elem[name] = elem
        return name

    def replace(self, name: str, value: np.ndarray) -> str:
        """A new initializer with ``value`` standing for ``name`` (which other nodes may still read)."""
        new = f"{name}__folded{self.fresh}"
        return self.add(new, value, tuple(value.shape), self.elem[name])

    def save_stripped(self) -> None:
        if self.stripped is None:
            return
        for entry in self.proto.metadata_props:
            if entry.key == STRIPPED_WEIGHTS_KEY:
                entry.value = json.dumps(self.stripped)
                return
        entry = self.proto.metadata_props.add()
        entry.key, entry.value = STRIPPED_WEIGHTS_KEY, json.dumps(self.stripped)


def _channel_axis(producer: onnx.NodeProto) -> tuple[int, int]:
    """(axis of the output channels in the weight, axis of the channels in the output)."""
    if producer.op_type == "Conv":
        return 0, 1
    return (0 if int(_attr(producer, "transB", 0)) else 1), 1  # type: ignore[call-overload]


def _per_channel(shape: tuple[int, ...], out_rank: int, channels: int, out_axis: int) -> bool:
    """Whether a constant of ``shape`` broadcast against the output varies only along its channel axis."""
    if len(shape) > out_rank:
        return False
    full = (1,) * (out_rank - len(shape)) + tuple(shape)
    return all(d == 1 for i, d in enumerate(full) if i != out_axis) and full[out_axis] in (1, channels)


def _fold_into(
    producer: onnx.NodeProto,
    weights: _Weights,
    mult: np.ndarray | None,
    shift: np.ndarray | None,
    structural: bool,
    channels: int,
    label: str,
) -> None:
    """Rewrite ``producer``'s weight and bias inputs to ``W * mult`` and ``b * mult + shift``."""
    w_axis, _ = _channel_axis(producer)
    w = producer.input[1]
    b_index = 2
    has_bias = len(producer.input) > b_index and producer.input[b_index] != ""
    elem = weights.elem.get(w, onnx.TensorProto.FLOAT)
    if structural:
        if not has_bias:
            bias = weights.add(f"{label}__folded_bias", None, (channels,), elem)
            while len(producer.input) <= b_index:
                producer.input.append("")
            producer.input[b_index] = bias
        return
    wv = weights.value(w)
    assert wv is not None and mult is not None and shift is not None
    shape = [1] * wv.ndim
    shape[w_axis] = channels
    producer.input[1] = weights.replace(w, wv * mult.reshape(shape))
    if has_bias:
        bv = weights.value(producer.input[b_index])
        assert bv is not None
        if producer.op_type == "Gemm":
            bv = bv * float(_attr(producer, "beta", 1.0))  # type: ignore[arg-type]
        b = np.broadcast_to(bv.reshape(-1) if bv.size == channels else bv, (channels,))
    else:
        b = np.zeros(channels)
        while len(producer.input) <= b_index:
            producer.input.append("")
    if producer.op_type == "Gemm":
        _set_attr(producer, "beta", 1.0)
    new_b = b * mult + shift
    name = f"{label}__folded_bias"
    weights.add(name, new_b, (channels,), elem)
    producer.input[b_index] = name


def _set_attr(node: onnx.NodeProto, name: str, value: float) -> None:
    for a in node.attribute:
        if a.name == name:
            node.attribute.remove(a)
            break
    node.attribute.append(helper.make_attribute(name, value))


def _foldable_producer(
    x: str, producers: Mapping[str, onnx.NodeProto], readers: Mapping[str, int], outputs: set[str], weights: _Weights
) -> onnx.NodeProto | None:
    p = producers.get(x)
    if p is None or p.domain not in _DEFAULT_DOMAINS or p.op_type not in ("Conv", "Gemm"):
        return None
    if readers.get(x, 0) != 1 or x in outputs or len(p.input) < 2 or not weights.is_weight(p.input[1]):
        return None
    if len(weights.shapes[p.input[1]]) < 2:
        return None
    if len(p.input) > 2 and p.input[2] and not weights.is_weight(p.input[2]):
        return None
    return p


def fold_batchnorm(proto: onnx.ModelProto) -> int:
    """Fold, in place, BatchNormalization and per-channel constant Mul/Add into Conv/Gemm; the number folded."""
    g = proto.graph
    weights = _Weights(proto)
    outputs = {o.name for o in g.output}
    producers = {o: n for n in g.node for o in n.output if o}
    readers: dict[str, int] = {}
    for n in g.node:
        for x in dict.fromkeys(n.input):
            if x:
                readers[x] = readers.get(x, 0) + 1
    for o in outputs:
        readers[o] = readers.get(o, 0) + 1
    removed: set[int] = set()
    for index, n in enumerate(g.node):
        if n.domain not in _DEFAULT_DOMAINS or n.op_type not in ("BatchNormalization", "Mul", "Add"):
            continue
        if n.op_type == "BatchNormalization":
            if len(n.output) > 1 and any(o and readers.get(o, 0) for o in n.output[1:]):
                continue  # training mode: the running statistics are used
            x, params = n.input[0], list(n.input[1:5])
        else:
            if len(n.input) != 2:
                continue
            x, c = (n.input[0], n.input[1]) if weights.is_weight(n.input[1]) else (n.input[1], n.input[0])
            params = [c]
        if not all(weights.is_weight(p) for p in params):
            continue
        p = _foldable_producer(x, producers, readers, outputs, weights)
        if p is None:
            continue
        w_shape = weights.shapes[p.input[1]]
        w_axis, out_axis = _channel_axis(p)
        channels = w_shape[w_axis]
        out_rank = 2 if p.op_type == "Gemm" else len(w_shape)
        if n.op_type == "BatchNormalization":
            if any(weights.shapes[q] != (channels,) for q in params):
                continue
        elif not _per_channel(weights.shapes[params[0]], out_rank, channels, out_axis):
            continue
        values = [weights.value(q) for q in (p.input[1], *(q for q in p.input[2:3] if q), *params)]
        structural = any(v is None for v in values)
        if structural and n.op_type != "BatchNormalization":
            continue  # a Mul/Add without values stays: its constant may not even be per channel at run time
        mult = shift = None
        if not structural:
            if n.op_type == "BatchNormalization":
                scale, bias, mean, var = (weights.value(q) for q in params)
                eps = float(_attr(n, "epsilon", 1e-5))  # type: ignore[arg-type]
                mult = scale / np.sqrt(var + eps)  # type: ignore[operator]
                shift = bias - mean * mult  # type: ignore[operator]
            else:
                c = np.broadcast_to(weights.value(params[0]).reshape(-1), (channels,))  # type: ignore[union-attr]
                mult, shift = (c, np.zeros(channels)) if n.op_type == "Mul" else (np.ones(channels), c)
        _fold_into(p, weights, mult, shift, structural, channels, n.name or f"{n.op_type}_{index}")
        old_out = p.output[0]
        p.output[0] = n.output[0]
        producers[n.output[0]] = p
        producers.pop(old_out, None)
        readers[x] = 0
        removed.add(index)
    if removed:
        kept = [n for i, n in enumerate(g.node) if i not in removed]
        del g.node[:]
        g.node.extend(kept)
        _drop_unused_initializers(g)
        weights.save_stripped()
    return len(removed)


def _drop_unused_initializers(g: onnx.GraphProto) -> None:
    used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
    kept = [t for t in g.initializer if t.name in used]
    if len(kept) != len(g.initializer):
        declared = {i.name for i in g.input}
        dropped = {t.name for t in g.initializer} - used
        del g.initializer[:]
        g.initializer.extend(kept)
        if declared & dropped:  # old IR versions list initializers as inputs too
            inputs = [i for i in g.input if i.name not in dropped]
            del g.input[:]
            g.input.extend(inputs)


# ================================================================ constants
#: A constant subgraph's result larger than this stays a node (lowering still treats it as a constant).
_MAX_CONSTANT_ELEMENTS = 1 << 22
_RANDOM_OPS = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
)


def fold_constants(proto: onnx.ModelProto) -> int:
    """Turn, in place, every node computed from constants whose values are in the file into an initializer.

    ``Identity`` of a constant becomes a constant of its output's name (exporters route shared
    weights through it), so a folding pattern sees the weight. Values come from onnx's reference evaluator,
    one node at a time; a node it cannot evaluate stays. The number of nodes removed.
    """
    g = proto.graph
    known = _known_tensors(g)
    outputs = {o.name for o in g.output}
    shapes = _static_shapes(proto)
    kept: list[onnx.NodeProto] = []
    removed = 0
    for n in g.node:
        present = [x for x in n.input if x]
        if n.domain not in _DEFAULT_DOMAINS or n.op_type in _RANDOM_OPS or n.op_type in ("If", "Loop", "Scan"):
            kept.append(n)
            continue
        if n.op_type == "Constant":
            if n.output and n.output[0] in known and n.output[0] not in outputs:
                g.initializer.append(known[n.output[0]])
                g.initializer[-1].name = n.output[0]
                removed += 1
            else:
                kept.append(n)
            continue
        if (
            n.op_type in ("Shape", "Size")
            and present
            and shapes.get(present[0]) is not None
            and n.output[0] not in outputs
        ):
            value = _shape_value(n, shapes[present[0]])
            known[n.output[0]] = numpy_helper.from_array(value, n.output[0])
            g.initializer.append(known[n.output[0]])
            removed += 1
            continue
        if not present or not all(x in known for x in present):
            kept.append(n)
            continue
        if n.op_type == "Identity" and n.output[0] not in outputs:
            # The consumer keeps the name it reads (exporters name the weight there: conv.weight).
            copy = onnx.TensorProto()
            copy.CopyFrom(known[n.input[0]])
            copy.name = n.output[0]
            g.initializer.append(copy)
            known[n.output[0]] = copy
            removed += 1
            continue
        memo: dict[str, np.ndarray | None] = {}
        values = [_evaluate_one(n, proto, known, memo)]
        if values[0] is None or any(o in outputs for o in n.output):
            kept.append(n)
            continue
        for o in n.output:
            if o:
                tensor = numpy_helper.from_array(np.asarray(memo[o]), o)
                g.initializer.append(tensor)
                known[o] = tensor
        removed += 1
    if removed:
        del g.node[:]
        g.node.extend(kept)
        _drop_unused_initializers(g)
    return removed


def _evaluate_one(
    n: onnx.NodeProto, proto: onnx.ModelProto, known: Mapping[str, onnx.TensorProto], memo: dict[str, np.ndarray | None]
) -> np.ndarray | None:
    feeds: dict[str, np.ndarray] = {}
    for x in n.input:
        if x and x not in feeds:
            feeds[x] = numpy_helper.to_array(known[x])
    inputs = [
        helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for x, v in feeds.items()
    ]
    outs = [o for o in n.output if o]
    one = helper.make_model(
        helper.make_graph([n], "fold", inputs, [helper.make_empty_tensor_value_info(o) for o in outs]),
        opset_imports=list(proto.opset_import),
        ir_version=proto.ir_version,
    )
    try:
        results = ReferenceEvaluator(one).run(None, feeds)
    except Exception:  # the node stays; lowering treats it as a constant all the same
        return None
    if any(np.asarray(r).size > _MAX_CONSTANT_ELEMENTS for r in results):
        return None
    for o, v in zip(outs, results):
        memo[o] = np.asarray(v)
    return memo[outs[0]]


def _static_shapes(proto: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Fully static shapes that ONNX shape inference finds (nothing when it fails: folding is a best effort)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
    except Exception:
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        if v.type.WhichOneof("value") != "tensor_type" or not v.type.tensor_type.HasField("shape"):
            continue
        dims = v.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[v.name] = tuple(d.dim_value for d in dims)
    return shapes


def _shape_value(n: onnx.NodeProto, shape: tuple[int, ...]) -> np.ndarray:
    if n.op_type == "Size":
        return np.array(int(np.prod(shape)), dtype=np.int64)
    start = int(_attr(n, "start", 0))  # type: ignore[call-overload]
    end = _attr(n, "end", None)
    return np.array(shape[start : None if end is None else int(end)], dtype=np.int64)  # type: ignore[call-overload]
