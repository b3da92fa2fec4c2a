#!/usr/bin/env python3
"""Regenerate the model zoo: build each network with random weights, export it to ONNX, strip the weights.

    python models/generate.py                 # every model in models/zoo.py
    python models/generate.py resnet50 darts  # just these
    python models/generate.py --list

A development tool, not a runtime dependency of cosma. It needs ``torch==2.13.0`` (the CPU
build), ``torchvision==0.28.0`` and ``timm`` (both installed with ``--no-deps``), and
``networkx``. Nothing is downloaded: every weight is random.

Pipeline for one model, each step a function below:

1. build: the architecture with seeded random weights; BatchNorm statistics and every
   parameter perturbed so that no two initializers are equal (the legacy exporter otherwise
   merges equal constants and leaves ``Identity`` nodes behind);
2. export: ``torch.onnx.export(..., dynamo=False, opset_version=17, do_constant_folding=True)``
   with static input shapes;
3. normalize: ``Constant`` nodes become initializers, ``Identity`` nodes are bypassed, shape
   arithmetic on static shapes is folded (``Shape`` of a known shape, and any node whose inputs
   are all small constants, evaluated with ``onnx.reference``), dead nodes are dropped, and
   shape inference must then give a static shape to every tensor;
4. strip: every weight initializer (floating point, more than one element, not a shape or scale
   parameter) becomes a graph input of the same name, shape and dtype, listed in the
   ``metadata_props`` entry ``stripped_weight_inputs``;
5. write, refusing any file of 1 MB or more.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import networkx as nx
import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo import STRIPPED_KEY, ZOO, ZooEntry, models_dir

OPSET = 17
MAX_FILE_BYTES = 1_000_000
#: A constant-only node is folded when every input has at most this many elements: shape
#: arithmetic, never weight transformations (the exporter already folded those).
FOLD_MAX_ELEMENTS = 4096

#: Input slots that carry shapes, axes, indices or scales rather than data. An initializer read
#: through one of them is a parameter of the operator, not a weight, and is never stripped.
SHAPE_SLOTS: dict[str, frozenset[int]] = {
    "Reshape": frozenset({1}),
    "Expand": frozenset({1}),
    "Tile": frozenset({1}),
    "Slice": frozenset({1, 2, 3, 4}),
    "Squeeze": frozenset({1}),
    "Unsqueeze": frozenset({1}),
    "Pad": frozenset({1, 2, 3}),
    "Resize": frozenset({1, 2, 3}),
    "Upsample": frozenset({1}),
    "ConstantOfShape": frozenset({0}),
    "Range": frozenset({0, 1, 2}),
    "TopK": frozenset({1}),
    "Split": frozenset({1}),
    "OneHot": frozenset({1, 2}),
    "CumSum": frozenset({1}),
    "ReduceSum": frozenset({1}),
    "Clip": frozenset({1, 2}),
}

_FLOAT_TYPES = frozenset(
    {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
)


class Spec(NamedTuple):
    """What to export: a module, example inputs and the graph's input and output names."""

    module: object  # torch.nn.Module; typed loosely so this file imports without torch for --list
    inputs: tuple
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]


# =============================================================================== torch setup
def _import_torch():
    """Import torch, make torchvision's model definitions importable, and return torch.

    torchvision's compiled operators do not load against this torch build; its Python side
    only needs the schemas of ``torchvision::nms`` and ``torchvision::qnms`` to exist (it
    registers fake kernels for them at import). None of the zoo's models calls them.
    """
    import torch

    if not hasattr(torch.ops.torchvision, "nms"):
        # Kept alive on the torch module: a Library drops its definitions when collected.
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        torch._cosma_zoo_torchvision_lib = lib
    return torch


def _perturb_(module, seed: int) -> None:
    """Make every parameter and BatchNorm statistic distinct, deterministically."""
    torch = _import_torch()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
        for p in module.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _image(size: int = 224):
    torch = _import_torch()
    return torch.randn(1, 3, size, size)


# ================================================================== hand-written architectures
def _tiny_cnn():
    """A small residual CNN for tests: conv-bn-relu, a strided block with a skip, a classifier."""
    nn = _import_torch().nn

    class TinyCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
            self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16))
            self.body = nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(16, 16, 3, padding=1, bias=False),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.Conv2d(16, 16, 3, padding=1, bias=False),
                nn.BatchNorm2d(16),
            )
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            x = self.down(self.stem(x))
            x = (x + self.body(x)).relu()
            return self.head(x.mean(dim=(2, 3)))

    return TinyCNN()


class Genotype(NamedTuple):
    """A DARTS-style cell description: (operation, input state) pairs, two per node."""

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]


#: DARTS (second order), Liu, Simonyan and Yang, ICLR 2019.
DARTS_V2 = Genotype(
    normal=(
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ),
    normal_concat=(2, 3, 4, 5),
    reduce=(
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ),
    reduce_concat=(2, 3, 4, 5),
)

#: AmoebaNet-A, Real et al., AAAI 2019, in the genotype notation of the DARTS paper.
AMOEBANET_A = Genotype(
    normal=(
        ("avg_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_5x5", 2),
        ("sep_conv_3x3", 0),
        ("avg_pool_3x3", 3),
        ("sep_conv_3x3", 1),
        ("skip_connect", 1),
        ("skip_connect", 0),
        ("avg_pool_3x3", 1),
    ),
    normal_concat=(4, 5, 6),
    reduce=(
        ("avg_pool_3x3", 0),
        ("sep_conv_3x3", 1),
        ("max_pool_3x3", 0),
        ("sep_conv_7x7", 2),
        ("sep_conv_7x7", 0),
        ("avg_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("conv_7x1_1x7", 0),
        ("sep_conv_3x3", 5),
    ),
    reduce_concat=(3, 4, 6),
)


def _cell_network(genotype: Genotype, channels: int = 48, cells: int = 14, classes: int = 1000):
    """The DARTS ImageNet network: a stride-8 stem, ``cells`` cells with reductions at 1/3 and 2/3."""
    nn = _import_torch().nn
    torch = _import_torch()

    def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        return nn.Sequential(
            nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out)
        )

    class FactorizedReduce(nn.Module):
        """Halve the resolution with two offset stride-2 1x1 convolutions, concatenated."""

        def __init__(self, c_in: int, c_out: int) -> None:
            super().__init__()
            self.relu = nn.ReLU()
            self.even = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
            self.odd = nn.Conv2d(c_in, c_out - c_out // 2, 1, 2, bias=False)
            self.bn = nn.BatchNorm2d(c_out)

        def forward(self, x):
            x = self.relu(x)
            return self.bn(torch.cat([self.even(x), self.odd(x[:, :, 1:, 1:])], dim=1))

    def sep_conv(c: int, kernel: int, stride: int):
        pad = kernel // 2
        return nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, c, kernel, 1, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def dil_conv(c: int, kernel: int, stride: int):
        return nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c, c, kernel, stride, kernel - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def operation(name: str, c: int, stride: int):
        if name == "skip_connect":
            return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
        if name == "max_pool_3x3":
            return nn.MaxPool2d(3, stride, 1)
        if name == "avg_pool_3x3":
            return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        if name.startswith("sep_conv_"):
            return sep_conv(c, int(name[-1]), stride)
        if name.startswith("dil_conv_"):
            return dil_conv(c, int(name[-1]), stride)
        if name == "conv_7x1_1x7":
            return nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(c, c, (1, 7), (1, stride), (0, 3), bias=False),
                nn.Conv2d(c, c, (7, 1), (stride, 1), (3, 0), bias=False),
                nn.BatchNorm2d(c),
            )
        raise ValueError(f"unknown cell operation {name!r}")

    class Cell(nn.Module):
        def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
            super().__init__()
            self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else relu_conv_bn(c_pp, c, 1, 1, 0)
            self.pre1 = relu_conv_bn(c_p, c, 1, 1, 0)
            pairs = genotype.reduce if reduction else genotype.normal
            self.concat = genotype.reduce_concat if reduction else genotype.normal_concat
            self.sources = [index for _, index in pairs]
            # In a reduction cell the operations reading the two cell inputs have stride 2.
            self.ops = nn.ModuleList(operation(name, c, 2 if reduction and index < 2 else 1) for name, index in pairs)

        def forward(self, s0, s1):
            states = [self.pre0(s0), self.pre1(s1)]
            for i in range(0, len(self.ops), 2):
                a, b = self.sources[i], self.sources[i + 1]
                states.append(self.ops[i](states[a]) + self.ops[i + 1](states[b]))
            return torch.cat([states[i] for i in self.concat], dim=1)

    class CellNetwork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = channels
            self.stem0 = nn.Sequential(
                nn.Conv2d(3, c // 2, 3, 2, 1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(),
                nn.Conv2d(c // 2, c, 3, 2, 1, bias=False),
                nn.BatchNorm2d(c),
            )
            self.stem1 = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c))
            c_pp, c_p, c_cur, reduction_prev = c, c, c, True
            self.cells = nn.ModuleList()
            for i in range(cells):
                reduction = i in (cells // 3, 2 * cells // 3)
                if reduction:
                    c_cur *= 2
                self.cells.append(Cell(c_pp, c_p, c_cur, reduction, reduction_prev))
                concat = genotype.reduce_concat if reduction else genotype.normal_concat
                c_pp, c_p, reduction_prev = c_p, len(concat) * c_cur, reduction
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c_p, classes)

        def forward(self, x):
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
            for cell in self.cells:
                s0, s1 = s1, cell(s0, s1)
            return self.classifier(torch.flatten(self.pool(s1), 1))

    return CellNetwork()


def _randwire(generator: Callable[[int], nx.Graph], channels: int = 78, nodes: int = 32, classes: int = 1000):
    """RandWire, small regime (Xie et al. 2019, Table 1): conv1, conv2, three random stages, classifier.

    Each stage is one random graph from ``generator(stage)``, made a DAG by orienting every edge
    from the lower to the higher node index. A node sums its inputs with sigmoid-positive learned
    weights and applies ReLU, a 3x3 separable convolution and BatchNorm; nodes without
    predecessors read the stage input with stride 2, and the stage output averages the nodes
    without successors.
    """
    torch = _import_torch()
    nn = torch.nn

    class Node(nn.Module):
        def __init__(self, fan_in: int, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.weights = nn.Parameter(torch.zeros(fan_in)) if fan_in > 1 else None
            self.conv = nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
                nn.Conv2d(c_in, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
            )

        def forward(self, inputs):
            if self.weights is None:
                x = inputs[0]
            else:
                w = torch.sigmoid(self.weights)
                x = inputs[0] * w[0]
                for i in range(1, len(inputs)):
                    x = x + inputs[i] * w[i]
            return self.conv(x)

    class Stage(nn.Module):
        def __init__(self, graph: nx.Graph, c_in: int, c_out: int) -> None:
            super().__init__()
            dag = nx.DiGraph()
            dag.add_nodes_from(range(graph.number_of_nodes()))
            dag.add_edges_from((min(u, v), max(u, v)) for u, v in graph.edges)
            self.preds = [sorted(dag.predecessors(n)) for n in range(dag.number_of_nodes())]
            self.sinks = [n for n in dag.nodes if dag.out_degree(n) == 0]
            self.nodes = nn.ModuleList(
                Node(len(p), c_out, c_out, 1) if p else Node(1, c_in, c_out, 2) for p in self.preds
            )

        def forward(self, x):
            out = []
            for node, preds in zip(self.nodes, self.preds):
                out.append(node([out[p] for p in preds] if preds else [x]))
            y = out[self.sinks[0]]
            for s in self.sinks[1:]:
                y = y + out[s]
            return y / len(self.sinks)

    class RandWire(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = channels
            self.conv1 = nn.Sequential(nn.Conv2d(3, c // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(c // 2))
            self.conv2 = nn.Sequential(nn.ReLU(), nn.Conv2d(c // 2, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c))
            self.conv3 = Stage(generator(0), c, c)
            self.conv4 = Stage(generator(1), c, 2 * c)
            self.conv5 = Stage(generator(2), 2 * c, 4 * c)
            self.head = nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(4 * c, 1280, 1, bias=False),
                nn.BatchNorm2d(1280),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(1280, classes),
            )

        def forward(self, x):
            return self.head(self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x))))))

    return RandWire()


def _bert_base(
    layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    ffn: int = 3072,
    vocab: int = 30522,
    max_positions: int = 512,
    type_vocab: int = 2,
):
    """The BERT-base encoder (Devlin et al. 2019) with its pooler, written in plain torch."""
    torch = _import_torch()
    nn = torch.nn
    head_dim = hidden // heads

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.value = nn.Linear(hidden, hidden)

        def split(self, x):
            b, s, _ = x.shape
            return x.view(b, s, heads, head_dim).transpose(1, 2)

        def forward(self, x, mask):
            q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / (head_dim**0.5) + mask
            context = torch.matmul(torch.softmax(scores, dim=-1), v)
            b, _, s, _ = context.shape
            return context.transpose(1, 2).reshape(b, s, hidden)

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = SelfAttention()
            self.attention_out = nn.Linear(hidden, hidden)
            self.attention_norm = nn.LayerNorm(hidden, eps=1e-12)
            self.intermediate = nn.Linear(hidden, ffn)
            self.output = nn.Linear(ffn, hidden)
            self.output_norm = nn.LayerNorm(hidden, eps=1e-12)

        def forward(self, x, mask):
            x = self.attention_norm(x + self.attention_out(self.attention(x, mask)))
            return self.output_norm(x + self.output(nn.functional.gelu(self.intermediate(x))))

    class Bert(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.word = nn.Embedding(vocab, hidden)
            self.position = nn.Embedding(max_positions, hidden)
            self.token_type = nn.Embedding(type_vocab, hidden)
            self.embedding_norm = nn.LayerNorm(hidden, eps=1e-12)
            self.layers = nn.ModuleList(Layer() for _ in range(layers))
            self.pooler = nn.Linear(hidden, hidden)
            self.register_buffer("position_ids", torch.arange(max_positions).unsqueeze(0), persistent=False)

        def forward(self, input_ids, token_type_ids, attention_mask):
            s = input_ids.shape[1]
            x = self.word(input_ids) + self.position(self.position_ids[:, :s]) + self.token_type(token_type_ids)
            x = self.embedding_norm(x)
            # Padding positions get a large negative score before the softmax.
            mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            for layer in self.layers:
                x = layer(x, mask)
            return x, torch.tanh(self.pooler(x[:, 0]))

    return Bert()


# ===================================================================================== builders
def _torchvision(factory: str, **kwargs):
    _import_torch()
    import torchvision

    module = torchvision.models
    for part in factory.split("."):
        module = getattr(module, part)
    return module(weights=None, **kwargs)


def _segmentation(factory: str):
    torch = _import_torch()
    net = _torchvision(f"segmentation.{factory}", weights_backbone=None, num_classes=21)

    class OutOnly(torch.nn.Module):
        """Segmentation models return a dict; export its ``out`` entry."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)["out"]

    return OutOnly()


def _timm(name: str):
    _import_torch()
    import timm

    return timm.create_model(name, pretrained=False)


def _transformer(length: int = 32):
    torch = _import_torch()

    class Seq2Seq(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Transformer()
            self.register_buffer("tgt_mask", torch.nn.Transformer.generate_square_subsequent_mask(length))

        def forward(self, src, tgt):
            return self.net(src, tgt, tgt_mask=self.tgt_mask)

    return Seq2Seq()


def _randwire_graph(kind: str, nodes: int = 32, seed: int = 2019) -> Callable[[int], nx.Graph]:
    def make(stage: int) -> nx.Graph:
        s = seed + stage
        if kind == "ws":
            return nx.connected_watts_strogatz_graph(nodes, 4, 0.75, seed=s)
        if kind == "er":
            return nx.erdos_renyi_graph(nodes, 0.2, seed=s)
        return nx.barabasi_albert_graph(nodes, 5, seed=s)

    return make


def _image_spec(module, size: int = 224) -> Spec:
    return Spec(module, (_image(size),), ("input",), ("output",))


def _video_spec(module) -> Spec:
    torch = _import_torch()
    return Spec(module, (torch.randn(1, 3, 16, 224, 224),), ("input",), ("output",))


def _bert_spec() -> Spec:
    torch = _import_torch()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 30522, (1, 128), generator=gen)
    types = torch.zeros(1, 128, dtype=torch.int64)
    mask = torch.ones(1, 128, dtype=torch.int64)
    return Spec(
        _bert_base(),
        (ids, types, mask),
        ("input_ids", "token_type_ids", "attention_mask"),
        ("last_hidden_state", "pooler_output"),
    )


def _transformer_spec() -> Spec:
    torch = _import_torch()
    return Spec(_transformer(), (torch.randn(32, 1, 512), torch.randn(32, 1, 512)), ("src", "tgt"), ("output",))


BUILDERS: dict[str, Callable[[], Spec]] = {
    "resnet50": lambda: _image_spec(_torchvision("resnet50")),
    "densenet121": lambda: _image_spec(_torchvision("densenet121")),
    "resnext50_32x4d": lambda: _image_spec(_torchvision("resnext50_32x4d")),
    "r2plus1d_18": lambda: _video_spec(_torchvision("video.r2plus1d_18")),
    "s3d": lambda: _video_spec(_torchvision("video.s3d")),
    "fcn_resnet50": lambda: _image_spec(_segmentation("fcn_resnet50")),
    "lraspp_mobilenet_v3": lambda: _image_spec(_segmentation("lraspp_mobilenet_v3_large")),
    "deeplabv3_resnet50": lambda: _image_spec(_segmentation("deeplabv3_resnet50")),
    "transformer": _transformer_spec,
    "vit_b_16": lambda: _image_spec(_torchvision("vit_b_16")),
    "nasnet_a": lambda: _image_spec(_timm("nasnetalarge"), 331),
    "pnasnet5": lambda: _image_spec(_timm("pnasnet5large"), 331),
    "amoebanet": lambda: _image_spec(_cell_network(AMOEBANET_A)),
    "darts": lambda: _image_spec(_cell_network(DARTS_V2)),
    "randwire_ws": lambda: _image_spec(_randwire(_randwire_graph("ws"))),
    "randwire_er": lambda: _image_spec(_randwire(_randwire_graph("er"))),
    "randwire_ba": lambda: _image_spec(_randwire(_randwire_graph("ba"))),
    # About 3,000 operators for the divide-and-conquer scale target: BA(M=5) graphs of 95 nodes.
    "randwire_large": lambda: _image_spec(_randwire(_randwire_graph("ba", nodes=95))),
    "mobilenet_v2": lambda: _image_spec(_torchvision("mobilenet_v2")),
    "efficientnet_b0": lambda: _image_spec(_torchvision("efficientnet_b0")),
    "inception_v3": lambda: _image_spec(_torchvision("inception_v3", aux_logits=False, init_weights=True), 299),
    "bert_base": _bert_spec,
    "tiny_cnn": lambda: _image_spec(_tiny_cnn(), 32),
}
#: Entries that reuse another entry's export (with the weights kept).
SAME_EXPORT: dict[str, str] = {"tiny_cnn_weights": "tiny_cnn"}


# ======================================================================================= export
def export(spec: Spec, seed: int = 0) -> onnx.ModelProto:
    """Export ``spec`` with the legacy TorchScript exporter at opset 17, constants folded."""
    torch = _import_torch()
    module = spec.module.eval()
    _perturb_(module, seed)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            spec.inputs,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=list(spec.input_names),
            output_names=list(spec.output_names),
        )
    return onnx.load_from_string(buffer.getvalue())


# ==================================================================================== normalize
def _static_shape(value: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims = tensor.shape.dim
    if any(not d.HasField("dim_value") for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...] | None]:
    g = model.graph
    return {v.name: _static_shape(v) for v in (*g.input, *g.value_info, *g.output)}


def _evaluate(model: onnx.ModelProto, node: onnx.NodeProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``node`` alone on ``feeds`` as a one-node model, so the model's opset versions apply."""
    inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for n, v in feeds.items()
    ]
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
    one = helper.make_model(
        helper.make_graph([node], "fold", inputs, outputs),
        opset_imports=list(model.opset_import),
        ir_version=model.ir_version,
    )
    return [np.asarray(v) for v in ReferenceEvaluator(one).run(None, feeds)]


def _constants_to_initializers(model: onnx.ModelProto) -> None:
    graph = model.graph
    keep = []
    for node in graph.node:
        if node.op_type == "Constant":
            value = _evaluate(model, node, {})[0]
            graph.initializer.append(numpy_helper.from_array(np.asarray(value), node.output[0]))
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


def _bypass_identities(graph: onnx.GraphProto) -> None:
    outputs = {o.name for o in graph.output}
    rename: dict[str, str] = {}
    keep = []
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
        if node.op_type == "Identity" and node.output[0] not in outputs:
            rename[node.output[0]] = node.input[0]
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


def _fold_constants(model: onnx.ModelProto) -> bool:
    """Fold shape arithmetic once over the graph; True when some node was folded."""
    graph = model.graph
    shapes = _shapes(model)
    const = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    keep, folded = [], False
    for node in graph.node:
        value: list[np.ndarray] | None = None
        if node.op_type == "Shape" and shapes.get(node.input[0]) is not None:
            dims = np.array(shapes[node.input[0]], dtype=np.int64)
            start = next((a.i for a in node.attribute if a.name == "start"), 0)
            end = next((a.i for a in node.attribute if a.name == "end"), len(dims))
            value = [dims[start:end]]
        elif (
            node.input
            and all(not n or n in const for n in node.input)
            and all(const[n].size <= FOLD_MAX_ELEMENTS for n in node.input if n)
        ):
            feeds = {n: const[n] for n in node.input if n}
            value = _evaluate(model, node, feeds)
        if value is None:
            keep.append(node)
            continue
        folded = True
        for name, v in zip(node.output, value):
            const[name] = np.asarray(v)
            graph.initializer.append(numpy_helper.from_array(np.asarray(v), name))
    del graph.node[:]
    graph.node.extend(keep)
    return folded


def _drop_dead(graph: onnx.GraphProto) -> None:
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(n for n in node.input if n)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    used = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)


def normalize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constants as initializers, no Identity, static shape arithmetic folded, every shape static."""
    graph = model.graph
    _constants_to_initializers(model)
    _bypass_identities(graph)
    while True:
        del graph.value_info[:]
        model = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        graph = model.graph
        if not _fold_constants(model):
            break
        _drop_dead(graph)
    _drop_dead(graph)
    del graph.value_info[:]
    model = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    shapes = _shapes(model)
    unknown = [o for node in model.graph.node for o in node.output if shapes.get(o) is None]
    if unknown:
        raise RuntimeError(f"{len(unknown)} tensors have no static shape after folding, e.g. {unknown[:5]}")
    return model


# ======================================================================================== strip
def weight_initializers(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    """Initializers that are weights: floating point, more than one element, read as data only."""
    parameter = {
        name
        for node in graph.node
        for i, name in enumerate(node.input)
        if i in SHAPE_SLOTS.get(node.op_type, frozenset())
    }
    outputs = {o.name for o in graph.output}
    weights = []
    for init in graph.initializer:
        elements = int(np.prod(init.dims)) if init.dims else 1
        if init.data_type in _FLOAT_TYPES and elements > 1 and init.name not in parameter | outputs:
            weights.append(init)
    return weights


def strip_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every weight initializer by a graph input of the same name, shape and dtype."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    graph = stripped.graph
    weights = weight_initializers(graph)
    names = [w.name for w in weights]
    graph.input.extend(helper.make_tensor_value_info(w.name, w.data_type, list(w.dims)) for w in weights)
    kept = [i for i in graph.initializer if i.name not in set(names)]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    _set_metadata(stripped, STRIPPED_KEY, json.dumps(names))
    return stripped


def _set_metadata(model: onnx.ModelProto, key: str, value: str) -> None:
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))


# ======================================================================================== write
@dataclass(frozen=True)
class Written:
    name: str
    file_bytes: int
    nodes: int
    weights: int
    seconds: float


def finish(model: onnx.ModelProto, entry: ZooEntry) -> onnx.ModelProto:
    model.graph.name = entry.name
    model.graph.doc_string = f"{entry.display}, from {entry.source}; random weights; made by models/generate.py"
    _set_metadata(model, "zoo_name", entry.name)
    _set_metadata(model, "zoo_source", entry.source)
    if entry.stripped:
        model = strip_weights(model)
    onnx.checker.check_model(model, full_check=True)
    return model


def write(model: onnx.ModelProto, path: Path) -> int:
    data = model.SerializeToString()
    if len(data) >= MAX_FILE_BYTES:
        raise RuntimeError(f"{path.name} would be {len(data)} bytes, not under {MAX_FILE_BYTES}")
    tmp = path.with_suffix(".onnx.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)


def generate(names: Sequence[str], out: Path, seed: int = 0) -> list[Written]:
    done: list[Written] = []
    exported: dict[str, onnx.ModelProto] = {}
    for name in names:
        entry = ZOO[name]
        started = time.perf_counter()
        base = SAME_EXPORT.get(name, name)
        if base not in exported:
            _import_torch().manual_seed(seed)
            exported[base] = normalize(export(BUILDERS[base](), seed))
        model = onnx.ModelProto()
        model.CopyFrom(exported[base])
        model = finish(model, entry)
        size = write(model, out / entry.file)
        weights = len(json.loads(next((p.value for p in model.metadata_props if p.key == STRIPPED_KEY), "[]")))
        seconds = time.perf_counter() - started
        done.append(Written(name, size, len(model.graph.node), weights, seconds))
        print(
            f"{name:22s} {size / 1e3:8.1f} kB {len(model.graph.node):6d} nodes {weights:5d} weights {seconds:7.1f} s",
            flush=True,
        )
        if base not in SAME_EXPORT.values() or base != name:
            exported.pop(base, None)  # keep only exports another entry will reuse
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="zoo models to build (default: all)")
    parser.add_argument("--out", type=Path, default=models_dir(), help="output directory (default: models/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="list the zoo and exit")
    args = parser.parse_args(argv)
    if args.list:
        for e in ZOO.values():
            print(f"{e.name:22s} {e.group:9s} {e.display}")
        return 0
    unknown = [n for n in args.names if n not in ZOO]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; see --list")
    names = args.names or list(ZOO)
    started = time.perf_counter()
    done = generate(names, args.out, args.seed)
    total = time.perf_counter() - started
    print(f"{len(done)} files, {sum(w.file_bytes for w in done) / 1e6:.2f} MB, {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
