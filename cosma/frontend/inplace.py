"""In-place pairs: which outputs may be written over which inputs (plan-format.md, "In-place operators").

The rule. An operator ``o`` may write output ``OUT`` over input ``IN`` when

1. ``o`` computes every output element from the input elements at the same position only, reading
   them before it writes that position: its type is elementwise (:data:`ELEMENTWISE_TYPES`:
   activations, unary math, binary and variadic arithmetic, comparisons and logic, ``Where``,
   BatchNormalization at inference, equal-size quantize/dequantize and casts) or a reinterpretation
   of the bytes that the lowering did not fold into a view (:data:`REINTERPRET_TYPES`); every
   epilogue fused into ``o`` (``Operator.fused``) is elementwise too, so the fused group as a whole
   is elementwise on its operands;
2. ``IN`` has as many elements as ``OUT`` (an operand broadcast onto the output, such as a bias,
   does not qualify; the same-size operand of a broadcasting Add does) and exactly as many bytes
   (an int8 -> float32 Dequantize does not qualify, it does at one byte per element);
3. no other output of ``o`` overwrites ``IN``, and ``OUT`` overwrites one input.

``IN`` may be of any kind. Overwriting an ``input`` or a ``weight`` is sound: it keeps its DRAM copy,
and a later reader loads it again; an activation read later must be stored first (the contract's
rule), and the analyses only count the saving where that costs nothing (:mod:`cosma.graph`).

Among the qualifying inputs of an output, the pass prefers one that every order lets it overwrite
for free: an activation that ``o`` alone reads (it dies at ``o`` in every order), then any other
produced tensor, then inputs, then weights.

Example:
    >>> from cosma.graph import Graph, Operator, Tensor
    >>> g = Graph.build("skip", [Tensor("x", 8, "input", (8,)), Tensor("b", 8, "weight", (8,)),
    ...     Tensor("y", 8, "activation", (8,)), Tensor("z", 8, "output", (8,))],
    ...     [Operator("conv", "Conv", ("x",), ("y",)), Operator("add", "Add", ("x", "y", "b"), ("z",))])
    >>> [o.inplace for o in declare_inplace(g).ops]
    [(), (('z', 'y'),)]
"""

from __future__ import annotations

from dataclasses import replace
from math import prod

from cosma.graph import Graph, Operator

#: Operator types (ONNX and TFLite names, and TFLite's fused activations) that are elementwise.
ELEMENTWISE_TYPES: frozenset[str] = frozenset(
    {
        # ONNX activations and BatchNormalization at inference (per-channel scale and shift)
        *("Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "PRelu", "Tanh", "Elu", "Selu"),
        *("Celu", "ThresholdedRelu", "Softplus", "Softsign", "Gelu", "Mish", "Swish", "Shrink"),
        "BatchNormalization",
        # ONNX unary math
        *("Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Erf", "Not"),
        *("Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh"),
        *("IsNaN", "IsInf", "BitwiseNot", "Cast", "CastLike", "QuantizeLinear", "DequantizeLinear"),
        # ONNX binary, variadic and selection
        *("Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Mean", "Sum", "And", "Or", "Xor"),
        *("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "BitShift", "Where"),
        *("BitwiseAnd", "BitwiseOr", "BitwiseXor"),
        # TFLite builtins
        *("ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "POW", "FLOOR_DIV"),
        *("FLOOR_MOD", "ADD_N", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LOGISTIC", "TANH"),
        *("HARD_SWISH", "LEAKY_RELU", "PRELU", "GELU", "ELU", "ABS", "NEG", "EXP", "LOG", "SQRT", "RSQRT"),
        *("SQUARE", "SIN", "COS", "FLOOR", "CEIL", "ROUND", "SIGN", "QUANTIZE", "DEQUANTIZE", "CAST"),
        *("LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", "EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER"),
        *("GREATER_EQUAL", "SELECT", "SELECT_V2"),
        # TFLite fused activation recorded in Operator.fused
        "SIGN_BIT",
    }
)
#: Reinterpretations of the input's bytes in the same order, when the lowering kept them as operators.
REINTERPRET_TYPES: frozenset[str] = frozenset(
    {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "RESHAPE", "SQUEEZE", "EXPAND_DIMS"}
)
_QUALIFYING = ELEMENTWISE_TYPES | REINTERPRET_TYPES


def qualifies(op: Operator) -> bool:
    """Whether ``op`` (with its fused epilogues) is elementwise or a reinterpretation (rule 1)."""
    return op.op_type in _QUALIFYING and all(f in ELEMENTWISE_TYPES for f in op.fused)


def _preference(graph: Graph, op: Operator, name: str) -> int:
    kind = graph.tensor(name).kind
    if kind == "activation" and graph.consumers(name) == (op.name,):
        return 0
    return {"activation": 1, "output": 1, "input": 2}.get(kind, 3)


def pairs_of(graph: Graph, op: Operator) -> tuple[tuple[str, str], ...]:
    """The in-place pairs the rule gives ``op`` in ``graph`` (empty when it does not qualify)."""
    if not qualifies(op):
        return ()
    taken: set[str] = set()
    pairs: list[tuple[str, str]] = []
    for out in op.outputs:
        o = graph.tensor(out)
        fits = [
            i
            for i in op.inputs
            if i not in taken and graph.tensor(i).bytes == o.bytes > 0 and prod(graph.tensor(i).shape) == prod(o.shape)
        ]
        if fits:
            best = min(fits, key=lambda i: _preference(graph, op, i))
            taken.add(best)
            pairs.append((out, best))
    return tuple(pairs)


def declare_inplace(graph: Graph) -> Graph:
    """``graph`` with every operator's in-place pairs declared by the rule (module docstring)."""
    ops = [replace(o, inplace=pairs_of(graph, o)) for o in graph.ops]
    if all(new.inplace == old.inplace for new, old in zip(ops, graph.ops)):
        return graph
    return Graph.build(graph.name, graph.tensors, ops, graph.metadata)
