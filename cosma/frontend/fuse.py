"""Epilogue fusion: elementwise operators folded into the single operator they follow.

The rule. An operator ``E`` is an *epilogue* of operator ``P`` when

1. ``E``'s type is elementwise (:data:`EPILOGUE_TYPES`: BatchNormalization at inference,
   the activations Relu, Clip, Sigmoid, HardSigmoid, HardSwish, LeakyRelu, PRelu, Tanh, ...,
   and the arithmetic Add, Sub, Mul, Div) and ``E`` has one output;
2. exactly one input ``d`` of ``E`` is not a weight, and every other input of ``E`` is a weight
   (a bias, a scale, BatchNormalization's statistics, Clip's bounds, PRelu's slope);
3. ``d`` is an activation (so it is not a graph output) produced by ``P``, and ``E`` is the only
   operator reading ``d``;
4. ``E``'s output has as many elements as ``d`` (a broadcast that grows the tensor is not an
   epilogue).

Then ``E`` disappears into ``P``: the fused operator keeps ``P``'s name, position and op type,
reads ``P``'s inputs followed by ``E``'s weights, writes ``E``'s output where ``P`` wrote ``d``,
and ``d`` is no longer a tensor. ``Operator.fused`` lists the folded op types in order. Fusion
applies repeatedly in operator order, so Conv -> BatchNormalization -> Relu becomes one Conv with
``fused == ("BatchNormalization", "Relu")``. A Relu whose producer's output has a second reader
stays an operator: fusing it would keep ``d`` and its output alive at once anyway.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> g = Graph.build("g", [Tensor("x", 4, "input"), Tensor("w", 4, "weight"),
    ...                       Tensor("y", 4, "activation"), Tensor("z", 4, "output")],
    ...                 [Operator("conv", "Conv", ("x", "w"), ("y",)), Operator("relu", "Relu", ("y",), ("z",))])
    >>> fuse_epilogues(g).ops
    (Operator(name='conv', op_type='Conv', inputs=('x', 'w'), outputs=('z',), fused=('Relu',)),)
"""

from __future__ import annotations

from math import prod

from cosma.graph import Graph, Operator

#: Elementwise operator types that may fold into the operator they follow.
EPILOGUE_TYPES: frozenset[str] = frozenset(
    {
        "BatchNormalization",
        "Relu",
        "Clip",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "LeakyRelu",
        "PRelu",
        "Tanh",
        "Elu",
        "Selu",
        "Celu",
        "ThresholdedRelu",
        "Softplus",
        "Softsign",
        "Gelu",
        "Mish",
        "Add",
        "Sub",
        "Mul",
        "Div",
    }
)


def _data_input(graph: Graph, op: Operator) -> str | None:
    """The one non-weight input of ``op`` if ``op`` is an epilogue candidate, else None."""
    if op.op_type not in EPILOGUE_TYPES or len(op.outputs) != 1:
        return None
    data = [t for t in op.inputs if graph.tensor(t).kind != "weight"]
    if len(data) != 1:
        return None
    d = data[0]
    if graph.tensor(d).kind != "activation" or graph.consumers(d) != (op.name,):
        return None
    if prod(graph.tensor(op.outputs[0]).shape) != prod(graph.tensor(d).shape):
        return None
    return d


def _fold(producer: Operator, epilogue: Operator, d: str) -> Operator:
    """``producer`` with ``epilogue`` folded in: its weights read, its output written in place of ``d``."""
    inputs = tuple(dict.fromkeys((*producer.inputs, *(t for t in epilogue.inputs if t != d))))
    outputs = tuple(epilogue.outputs[0] if t == d else t for t in producer.outputs)
    return Operator(
        producer.name,
        producer.op_type,
        inputs,
        outputs,
        (*producer.fused, epilogue.op_type, *epilogue.fused),
        (*producer.nodes, *epilogue.nodes),
    )


def fuse_epilogues(graph: Graph) -> Graph:
    """``graph`` with every epilogue folded into its producer (the rule is in the module docstring)."""
    ops: list[Operator] = []
    slot: dict[str, int] = {}  # tensor -> index in ops of the (possibly fused) operator producing it
    dropped: set[str] = set()
    for op in graph.ops:
        d = _data_input(graph, op)
        if d is not None:
            i = slot[d]
            ops[i] = _fold(ops[i], op, d)
            slot[op.outputs[0]] = i
            dropped.add(d)
            continue
        for t in op.outputs:
            slot[t] = len(ops)
        ops.append(op)
    if not dropped:
        return graph
    tensors = [t for t in graph.tensors if t.name not in dropped]
    return Graph.build(graph.name, tensors, ops, graph.metadata)
