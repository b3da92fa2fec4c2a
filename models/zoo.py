"""The model zoo: weights-stripped ONNX files of real networks, and where to find them.

This module needs only the standard library, so benchmarks and tests can iterate over the
zoo without torch. The files themselves are made by ``models/generate.py`` (which does need
torch, torchvision and timm) and summarised in ``models/README.md`` by ``models/stats.py``.

A zoo file is an ordinary ONNX model (opset 17, every shape static, shapes of every tensor
recorded in ``value_info``) whose weight initializers were replaced by graph inputs of the
same name, shape and dtype; the JSON list of those input names is the ``metadata_props``
entry ``stripped_weight_inputs``. Initializers that are not weights (integer shape and
index constants, one-element scalars, scale factors of ``Resize``) stay in the file.

Example:
    >>> entry = ZOO["resnet50"]
    >>> entry.path.name, entry.group, entry.inputs[0].shape
    ('resnet50.onnx', 'human', (1, 3, 224, 224))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

#: Metadata key listing the graph inputs that stand for stripped weights (JSON list of names).
STRIPPED_KEY = "stripped_weight_inputs"

#: Groups, in the order the README lists them. "human": the human-designed DNNs the COSMA
#: paper evaluates; "nas": its NAS-generated networks; "random": randomly wired networks;
#: "everyday": models users commonly bring; "large": a graph of about 3,000 operators for the
#: scale target of divide and conquer (benchmarks/dc_large.py; not part of the benchmark
#: protocol); "test": fixtures for the test suite only.
GROUPS: tuple[str, ...] = ("human", "nas", "random", "everyday", "large", "test")


def models_dir() -> Path:
    """The directory holding the zoo's ``.onnx`` files (the one this module lives in)."""
    return Path(__file__).resolve().parent


@dataclass(frozen=True)
class ZooInput:
    """One real (non-weight) graph input of a zoo model."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: its file, display name, group, real inputs and where it comes from."""

    name: str
    display: str
    group: str
    inputs: tuple[ZooInput, ...]
    source: str
    notes: str = ""
    stripped: bool = True

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"

    @property
    def path(self) -> Path:
        return models_dir() / self.file


def _image(size: int = 224) -> tuple[ZooInput, ...]:
    return (ZooInput("input", (1, 3, size, size)),)


def _video() -> tuple[ZooInput, ...]:
    return (ZooInput("input", (1, 3, 16, 224, 224)),)


_ENTRIES: tuple[ZooEntry, ...] = (
    # -- the human-designed DNNs of the COSMA evaluation
    ZooEntry("resnet50", "ResNet-50", "human", _image(), "torchvision.models.resnet50"),
    ZooEntry("densenet121", "DenseNet-121", "human", _image(), "torchvision.models.densenet121"),
    ZooEntry("resnext50_32x4d", "ResNeXt-50 (32x4d)", "human", _image(), "torchvision.models.resnext50_32x4d"),
    ZooEntry("r2plus1d_18", "R(2+1)D-18", "human", _video(), "torchvision.models.video.r2plus1d_18"),
    ZooEntry("s3d", "S3D", "human", _video(), "torchvision.models.video.s3d"),
    ZooEntry(
        "fcn_resnet50",
        "FCN-ResNet50",
        "human",
        _image(),
        "torchvision.models.segmentation.fcn_resnet50",
        notes="21 classes, no auxiliary head; output upsampled to the input size",
    ),
    ZooEntry(
        "lraspp_mobilenet_v3",
        "LR-ASPP-MobileNetV3",
        "human",
        _image(),
        "torchvision.models.segmentation.lraspp_mobilenet_v3_large",
        notes="21 classes",
    ),
    ZooEntry(
        "deeplabv3_resnet50",
        "DeepLabV3-ResNet50",
        "human",
        _image(),
        "torchvision.models.segmentation.deeplabv3_resnet50",
        notes="21 classes, no auxiliary head",
    ),
    ZooEntry(
        "transformer",
        "Transformer",
        "human",
        (ZooInput("src", (32, 1, 512)), ZooInput("tgt", (32, 1, 512))),
        "torch.nn.Transformer",
        notes="defaults (d_model 512, 8 heads, 6+6 layers, FFN 2048); source and target length 32, batch 1, "
        "causal target mask",
    ),
    ZooEntry("vit_b_16", "ViT-B/16", "human", _image(), "torchvision.models.vit_b_16"),
    # -- the NAS-generated networks of the COSMA evaluation
    ZooEntry(
        "nasnet_a",
        "NASNet-A (large)",
        "nas",
        _image(331),
        "timm nasnetalarge",
        notes="ImageNet configuration of timm: 331x331 input",
    ),
    ZooEntry(
        "pnasnet5",
        "PNASNet-5 (large)",
        "nas",
        _image(331),
        "timm pnasnet5large",
        notes="ImageNet configuration of timm: 331x331 input",
    ),
    ZooEntry(
        "amoebanet",
        "AmoebaNet-A",
        "nas",
        _image(),
        "models/generate.py (published AmoebaNet-A genotype)",
        notes="AmoebaNet-A cells on the DARTS ImageNet skeleton: 48 channels, 14 cells",
    ),
    ZooEntry(
        "darts",
        "DARTS (V2)",
        "nas",
        _image(),
        "models/generate.py (published DARTS-V2 genotype)",
        notes="DARTS ImageNet network: 48 channels, 14 cells",
    ),
    # -- randomly wired networks (Xie et al. 2019), small regime: C=78, N=32 nodes per stage
    ZooEntry(
        "randwire_ws",
        "RandWire-WS",
        "random",
        _image(),
        "models/generate.py (networkx watts_strogatz_graph)",
        notes="WS(K=4, P=0.75), small regime C=78, N=32",
    ),
    ZooEntry(
        "randwire_er",
        "RandWire-ER",
        "random",
        _image(),
        "models/generate.py (networkx erdos_renyi_graph)",
        notes="ER(P=0.2), small regime C=78, N=32",
    ),
    ZooEntry(
        "randwire_ba",
        "RandWire-BA",
        "random",
        _image(),
        "models/generate.py (networkx barabasi_albert_graph)",
        notes="BA(M=5), small regime C=78, N=32",
    ),
    # -- everyday models
    ZooEntry("mobilenet_v2", "MobileNetV2", "everyday", _image(), "torchvision.models.mobilenet_v2"),
    ZooEntry("efficientnet_b0", "EfficientNet-B0", "everyday", _image(), "torchvision.models.efficientnet_b0"),
    ZooEntry(
        "inception_v3",
        "Inception-v3",
        "everyday",
        _image(299),
        "torchvision.models.inception_v3",
        notes="its ImageNet configuration: 299x299 input, no auxiliary head",
    ),
    ZooEntry(
        "bert_base",
        "BERT-base",
        "everyday",
        (
            ZooInput("input_ids", (1, 128), "int64"),
            ZooInput("token_type_ids", (1, 128), "int64"),
            ZooInput("attention_mask", (1, 128), "int64"),
        ),
        "models/generate.py (BERT-base encoder in plain torch)",
        notes="12 layers, hidden 768, 12 heads, FFN 3072, vocabulary 30522, sequence 128, with pooler",
    ),
    # -- large: RandWire with bigger random graphs, about 3,000 operators after cosma's front end
    ZooEntry(
        "randwire_large",
        "RandWire-BA (N=95)",
        "large",
        _image(),
        "models/generate.py (networkx barabasi_albert_graph, N=95)",
        notes="BA(M=5), C=78, N=95 nodes per stage (the small regime's stages with larger graphs): "
        "about 3,000 operators, the scale target of divide and conquer",
    ),
    # -- test fixtures: one small network exported without and with its weights
    ZooEntry("tiny_cnn", "tiny CNN", "test", _image(32), "models/generate.py", notes="test fixture"),
    ZooEntry(
        "tiny_cnn_weights",
        "tiny CNN (with weights)",
        "test",
        _image(32),
        "models/generate.py",
        notes="the same export as tiny_cnn, weights kept",
        stripped=False,
    ),
)

#: Every zoo model by name, in README order.
ZOO: MappingProxyType[str, ZooEntry] = MappingProxyType({e.name: e for e in _ENTRIES})


def entries(*groups: str) -> Iterator[ZooEntry]:
    """Zoo entries of the given groups (all groups but "test" when none are given)."""
    wanted = set(groups) if groups else set(GROUPS) - {"test"}
    unknown = wanted - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown zoo group(s) {sorted(unknown)}; choose from {', '.join(GROUPS)}")
    return (e for e in _ENTRIES if e.group in wanted)


def path(name: str) -> Path:
    """Path of the zoo file for ``name`` (e.g. ``"resnet50"``)."""
    if name not in ZOO:
        raise KeyError(f"no zoo model {name!r}; known: {', '.join(ZOO)}")
    return ZOO[name].path
