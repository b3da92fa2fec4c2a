"""Write ``.tflite`` flatbuffers without TensorFlow, with the builder functions the ``tflite`` package generates.

A development tool for the corpus and the tests, not part of cosma. :class:`TfliteNet` records
tensors and operators in NHWC order, computing each output shape as the TFLite kernels do
(``SAME`` padding: ``ceil(size / stride)``), and :meth:`TfliteNet.to_bytes` serialises them into
one subgraph. Weights are stripped: every constant tensor points to an empty buffer, which the
reader takes as a weight because no operator produces it and it is not an input (a real
converter's file differs only in the bytes of those buffers). ``data=`` gives a tensor real bytes.

Example:
    >>> net = TfliteNet("tiny", "INT8")
    >>> x = net.input("x", (1, 8, 8, 3))
    >>> y = net.conv(x, 4, 3, 1, "RELU")
    >>> net.output(net.softmax(net.fully_connected(net.reshape(y, (1, -1)), 10)))
    >>> net.to_bytes()[4:8]
    b'TFL3'
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import flatbuffers
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME


def _module(name: str):
    """The generated module ``tflite.NAME`` (the package rebinds ``tflite.NAME`` to the class)."""
    return importlib.import_module(f"tflite.{name}")


_OPCODES = {v: k for k, v in BUILTIN_OPCODE2NAME.items()}
_ACTIVATION = {None: 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}
#: Options tables that carry a fused activation: op -> (BuiltinOptions member, module prefix).
_OPTIONS = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "ADD": "AddOptions",
    "MUL": "MulOptions",
    "SUB": "SubOptions",
    "CONCATENATION": "ConcatenationOptions",
}


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: bytes = b""


@dataclass
class _Op:
    code: str  # builtin name, or a custom code when custom is True
    inputs: list[int]
    outputs: list[int]
    activation: str | None = None
    custom: bool = False


@dataclass
class TfliteNet:
    """A one-subgraph TFLite model under construction; ``dtype`` is the activations' and weights' type."""

    name: str
    dtype: str = "FLOAT32"
    tensors: list[_Tensor] = field(default_factory=list)
    ops: list[_Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    # ------------------------------------------------------------ primitives
    def tensor(self, shape: Sequence[int], dtype: str | None = None, name: str | None = None, data: bytes = b"") -> int:
        self.tensors.append(
            _Tensor(name or f"t{len(self.tensors)}", tuple(int(d) for d in shape), dtype or self.dtype, data)
        )
        return len(self.tensors) - 1

    def shape(self, t: int) -> tuple[int, ...]:
        return self.tensors[t].shape

    def input(self, name: str, shape: Sequence[int], dtype: str | None = None) -> int:
        t = self.tensor(shape, dtype, name)
        self.inputs.append(t)
        return t

    def output(self, t: int) -> None:
        self.outputs.append(t)

    def op(
        self,
        code: str,
        inputs: Sequence[int],
        out_shapes: Sequence[Sequence[int]],
        activation: str | None = None,
        custom: bool = False,
        out_dtype: str | None = None,
    ) -> list[int]:
        outs = [self.tensor(s, out_dtype) for s in out_shapes]
        self.ops.append(_Op(code, list(inputs), outs, activation, custom))
        return outs

    def weight(self, shape: Sequence[int], dtype: str | None = None) -> int:
        return self.tensor(shape, dtype)

    def _bias(self, channels: int) -> int:
        # Quantized kernels take int32 biases; float kernels take the activations' type.
        return self.weight((channels,), "INT32" if self.dtype in ("INT8", "UINT8", "INT16") else self.dtype)

    # ---------------------------------------------------------------- layers
    def conv(self, x: int, cout: int, k: int, stride: int = 1, activation: str | None = "RELU") -> int:
        n, h, w, cin = self.shape(x)
        shape = (n, math.ceil(h / stride), math.ceil(w / stride), cout)
        return self.op("CONV_2D", [x, self.weight((cout, k, k, cin)), self._bias(cout)], [shape], activation)[0]

    def dwconv(self, x: int, k: int, stride: int = 1, activation: str | None = "RELU") -> int:
        n, h, w, c = self.shape(x)
        shape = (n, math.ceil(h / stride), math.ceil(w / stride), c)
        return self.op("DEPTHWISE_CONV_2D", [x, self.weight((1, k, k, c)), self._bias(c)], [shape], activation)[0]

    def pool(self, x: int, k: int, stride: int, kind: str = "AVERAGE_POOL_2D") -> int:
        n, h, w, c = self.shape(x)
        shape = (n, max(1, (h - k) // stride + 1), max(1, (w - k) // stride + 1), c)
        return self.op(kind, [x], [shape])[0]

    def global_pool(self, x: int) -> int:
        n, _h, _w, c = self.shape(x)
        return self.op("AVERAGE_POOL_2D", [x], [(n, 1, 1, c)])[0]

    def mean(self, x: int) -> int:
        n, _, _, c = self.shape(x)
        return self.op("MEAN", [x, self.weight((2,), "INT32")], [(n, c)])[0]

    def fully_connected(self, x: int, units: int, activation: str | None = None) -> int:
        shape = self.shape(x)
        return self.op(
            "FULLY_CONNECTED",
            [x, self.weight((units, shape[-1])), self._bias(units)],
            [(*shape[:-1], units)],
            activation,
        )[0]

    def add(self, a: int, b: int, activation: str | None = None) -> int:
        return self.op("ADD", [a, b], [self.shape(a)], activation)[0]

    def mul(self, a: int, b: int) -> int:
        return self.op("MUL", [a, b], [self.shape(a)])[0]

    def concat(self, parts: Sequence[int]) -> int:
        shape = list(self.shape(parts[0]))
        shape[-1] = sum(self.shape(p)[-1] for p in parts)
        return self.op("CONCATENATION", list(parts), [shape])[0]

    def unary(self, code: str, x: int) -> int:
        return self.op(code, [x], [self.shape(x)])[0]

    def reshape(self, x: int, shape: Sequence[int]) -> int:
        total = math.prod(self.shape(x))
        known = math.prod(d for d in shape if d != -1)
        dims = tuple(total // known if d == -1 else d for d in shape)
        return self.op("RESHAPE", [x, self.weight((len(dims),), "INT32")], [dims])[0]

    def softmax(self, x: int) -> int:
        return self.op("SOFTMAX", [x], [self.shape(x)])[0]

    def quantize(self, x: int, dtype: str) -> int:
        return self.op("QUANTIZE", [x], [self.shape(x)], out_dtype=dtype)[0]

    def dequantize(self, x: int) -> int:
        return self.op("DEQUANTIZE", [x], [self.shape(x)], out_dtype="FLOAT32")[0]

    # ----------------------------------------------------------- serialise
    def to_bytes(self, extra_subgraphs: int = 0) -> bytes:
        """The flatbuffer; ``extra_subgraphs`` adds empty subgraphs (as control-flow models carry)."""
        b = flatbuffers.Builder(1024)
        codes = list(dict.fromkeys((o.code, o.custom) for o in self.ops))
        buffers = [self._buffer(b, b"")] + [self._buffer(b, t.data) for t in self.tensors if t.data]
        buffer_of: dict[int, int] = {}
        next_buffer = 1
        for i, t in enumerate(self.tensors):
            if t.data:
                buffer_of[i] = next_buffer
                next_buffer += 1
        tensors = [self._tensor(b, t, buffer_of.get(i, 0)) for i, t in enumerate(self.tensors)]
        ops = [self._operator(b, o, codes.index((o.code, o.custom))) for o in self.ops]
        subgraphs = [self._subgraph(b, tensors, ops, self.inputs, self.outputs)]
        subgraphs += [self._subgraph(b, [], [], [], []) for _ in range(extra_subgraphs)]
        opcodes = [self._opcode(b, code, custom) for code, custom in codes]
        description = b.CreateString(f"{self.name}: written by models/corpus/tflite_writer.py, weights stripped")
        opcodes_vec = self._vector(b, _module("Model").ModelStartOperatorCodesVector, opcodes)
        subgraphs_vec = self._vector(b, _module("Model").ModelStartSubgraphsVector, subgraphs)
        buffers_vec = self._vector(b, _module("Model").ModelStartBuffersVector, buffers)
        _module("Model").ModelStart(b)
        _module("Model").ModelAddVersion(b, 3)
        _module("Model").ModelAddOperatorCodes(b, opcodes_vec)
        _module("Model").ModelAddSubgraphs(b, subgraphs_vec)
        _module("Model").ModelAddDescription(b, description)
        _module("Model").ModelAddBuffers(b, buffers_vec)
        b.Finish(_module("Model").ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _vector(b: flatbuffers.Builder, start, offsets: Sequence[int]) -> int:
        start(b, len(offsets))
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    @staticmethod
    def _ints(b: flatbuffers.Builder, start, values: Sequence[int]) -> int:
        start(b, len(values))
        for v in reversed(values):
            b.PrependInt32(v)
        return b.EndVector()

    @staticmethod
    def _buffer(b: flatbuffers.Builder, data: bytes) -> int:
        vec = b.CreateByteVector(data) if data else None
        _module("Buffer").BufferStart(b)
        if vec is not None:
            _module("Buffer").BufferAddData(b, vec)
        return _module("Buffer").BufferEnd(b)

    def _tensor(self, b: flatbuffers.Builder, t: _Tensor, buffer: int) -> int:
        name = b.CreateString(t.name)
        shape = self._ints(b, _module("Tensor").TensorStartShapeVector, t.shape)
        _module("Tensor").TensorStart(b)
        _module("Tensor").TensorAddShape(b, shape)
        _module("Tensor").TensorAddType(b, getattr(tflite.TensorType, t.dtype))
        _module("Tensor").TensorAddBuffer(b, buffer)
        _module("Tensor").TensorAddName(b, name)
        return _module("Tensor").TensorEnd(b)

    def _operator(self, b: flatbuffers.Builder, o: _Op, opcode: int) -> int:
        inputs = self._ints(b, _module("Operator").OperatorStartInputsVector, o.inputs)
        outputs = self._ints(b, _module("Operator").OperatorStartOutputsVector, o.outputs)
        options_name = None if o.custom else _OPTIONS.get(o.code)
        options = None
        if options_name is not None:
            module = _module(options_name)
            getattr(module, f"{options_name}Start")(b)
            getattr(module, f"{options_name}AddFusedActivationFunction")(b, _ACTIVATION[o.activation])
            options = getattr(module, f"{options_name}End")(b)
        _module("Operator").OperatorStart(b)
        _module("Operator").OperatorAddOpcodeIndex(b, opcode)
        _module("Operator").OperatorAddInputs(b, inputs)
        _module("Operator").OperatorAddOutputs(b, outputs)
        if options is not None:
            _module("Operator").OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, options_name))
            _module("Operator").OperatorAddBuiltinOptions(b, options)
        return _module("Operator").OperatorEnd(b)

    def _subgraph(
        self,
        b: flatbuffers.Builder,
        tensors: Sequence[int],
        ops: Sequence[int],
        inputs: Sequence[int],
        outputs: Sequence[int],
    ) -> int:
        tensors_vec = self._vector(b, _module("SubGraph").SubGraphStartTensorsVector, tensors)
        ops_vec = self._vector(b, _module("SubGraph").SubGraphStartOperatorsVector, ops)
        inputs_vec = self._ints(b, _module("SubGraph").SubGraphStartInputsVector, inputs)
        outputs_vec = self._ints(b, _module("SubGraph").SubGraphStartOutputsVector, outputs)
        name = b.CreateString(self.name)
        _module("SubGraph").SubGraphStart(b)
        _module("SubGraph").SubGraphAddTensors(b, tensors_vec)
        _module("SubGraph").SubGraphAddInputs(b, inputs_vec)
        _module("SubGraph").SubGraphAddOutputs(b, outputs_vec)
        _module("SubGraph").SubGraphAddOperators(b, ops_vec)
        _module("SubGraph").SubGraphAddName(b, name)
        return _module("SubGraph").SubGraphEnd(b)

    @staticmethod
    def _opcode(b: flatbuffers.Builder, code: str, custom: bool) -> int:
        custom_name = b.CreateString(code) if custom else None
        builtin = _OPCODES["CUSTOM"] if custom else _OPCODES[code]
        _module("OperatorCode").OperatorCodeStart(b)
        _module("OperatorCode").OperatorCodeAddDeprecatedBuiltinCode(b, min(builtin, 127))
        _module("OperatorCode").OperatorCodeAddBuiltinCode(b, builtin)
        if custom_name is not None:
            _module("OperatorCode").OperatorCodeAddCustomCode(b, custom_name)
        _module("OperatorCode").OperatorCodeAddVersion(b, 1)
        return _module("OperatorCode").OperatorCodeEnd(b)


# ====================================================================== architectures
def mobilenet_v1(
    name: str, alpha: float = 1.0, size: int = 224, dtype: str = "INT8", classes: int = 1000, channels: int = 3
) -> TfliteNet:
    """MobileNetV1 (Howard et al. 2017) at width multiplier ``alpha``; the TFLite Micro person detector is
    ``alpha=0.25, size=96, channels=1, classes=2``."""
    net = TfliteNet(name, dtype)
    x = net.input("input", (1, size, size, channels))
    x = net.conv(x, max(8, int(32 * alpha)), 3, 2, "RELU6")
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for c, s in plan:
        x = net.dwconv(x, 3, s, "RELU6")
        x = net.conv(x, max(8, int(c * alpha)), 1, 1, "RELU6")
    x = net.global_pool(x)
    x = net.conv(x, classes, 1, 1, None)
    net.output(net.softmax(net.reshape(x, (1, classes))))
    return net


def mobilenet_v2(name: str, alpha: float = 1.0, size: int = 224, dtype: str = "INT8", classes: int = 1000) -> TfliteNet:
    """MobileNetV2 (Sandler et al. 2018): inverted residuals with linear bottlenecks."""
    net = TfliteNet(name, dtype)
    x = net.input("input", (1, size, size, 3))
    x = net.conv(x, max(8, int(32 * alpha)), 3, 2, "RELU6")
    cin = max(8, int(32 * alpha))
    for t, c, n, s in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        cout = max(8, int(c * alpha))
        for i in range(n):
            stride = s if i == 0 else 1
            y = net.conv(x, cin * t, 1, 1, "RELU6") if t != 1 else x
            y = net.dwconv(y, 3, stride, "RELU6")
            y = net.conv(y, cout, 1, 1, None)
            x = net.add(x, y) if stride == 1 and cin == cout else y
            cin = cout
    x = net.conv(x, 1280 if alpha <= 1.0 else int(1280 * alpha), 1, 1, "RELU6")
    x = net.mean(x)
    net.output(net.softmax(net.fully_connected(x, classes)))
    return net


def ds_cnn(name: str, filters: int, blocks: int, dtype: str = "INT8") -> TfliteNet:
    """DS-CNN keyword spotting (Zhang et al., Hello Edge, 2017) on 49x10 MFCC features."""
    net = TfliteNet(name, dtype)
    x = net.input("input", (1, 49, 10, 1))
    x = net.conv(x, filters, 3, 2, "RELU")
    for _ in range(blocks):
        x = net.dwconv(x, 3, 1, "RELU")
        x = net.conv(x, filters, 1, 1, "RELU")
    x = net.global_pool(x)
    x = net.reshape(x, (1, filters))
    net.output(net.softmax(net.fully_connected(x, 12)))
    return net


def resnet_cifar(name: str, stacks: int = 3, blocks: int = 1, width: int = 16, dtype: str = "INT8") -> TfliteNet:
    """CIFAR-10 ResNet (He et al. 2016); ``stacks=3, blocks=1`` is MLPerf Tiny's ResNet-8."""
    net = TfliteNet(name, dtype)
    x = net.input("input", (1, 32, 32, 3))
    x = net.conv(x, width, 3, 1, "RELU")
    c = width
    for stack in range(stacks):
        for block in range(blocks):
            stride = 2 if stack > 0 and block == 0 else 1
            cout = width * 2**stack
            y = net.conv(x, cout, 3, stride, "RELU")
            y = net.conv(y, cout, 3, 1, None)
            if stride != 1 or c != cout:
                x = net.conv(x, cout, 1, stride, None)
            x = net.add(x, y, "RELU")
            c = cout
    x = net.global_pool(x)
    x = net.reshape(x, (1, c))
    net.output(net.softmax(net.fully_connected(x, 10)))
    return net


def autoencoder(
    name: str, inputs: int = 640, hidden: int = 128, bottleneck: int = 8, layers: int = 4, dtype: str = "INT8"
) -> TfliteNet:
    """The DCASE 2020 fully connected autoencoder (MLPerf Tiny anomaly detection) at other widths."""
    net = TfliteNet(name, dtype)
    x = net.input("input", (1, inputs))
    for _ in range(layers):
        x = net.fully_connected(x, hidden, "RELU")
    x = net.fully_connected(x, bottleneck, "RELU")
    for _ in range(layers):
        x = net.fully_connected(x, hidden, "RELU")
    net.output(net.fully_connected(x, inputs))
    return net
