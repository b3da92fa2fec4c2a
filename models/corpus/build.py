#!/usr/bin/env python3
"""Regenerate the public-model corpus of issue 15: ``python models/corpus/build.py [NAME...]``.

Sources, each entry a public architecture or file:

- ``torchvision`` and ``timm`` architectures with random weights, exported as a user would
  (``torch.onnx.export(..., dynamo=False, opset_version=17)``, static input shape), *not* normalised:
  the exporter's ``Shape``/``Gather``/``Concat`` shape arithmetic stays for cosma's front end to fold;
- the ``light_*`` models that the ``onnx`` package ships in ``onnx/backend/test/data/light``;
- ``.tflite`` architectures written by :mod:`tflite_writer` (MobileNetV1/V2, DS-CNN, ResNet-8, the
  anomaly-detection autoencoder), and MLPerf Tiny's files from ``../shared/models/tflite`` (referenced,
  not copied).

Weights are stripped as models/generate.py strips the zoo's (graph inputs listed in the
``stripped_weight_inputs`` metadata entry); the .tflite files have empty buffers. Needs
``torch==2.13.0``, ``torchvision==0.28.0`` and ``timm`` (``--no-deps``) for the torch entries;
an entry that fails to build is reported and left out. ``manifest.json`` lists what was built.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import onnx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "models"))

import tflite_writer as tw  # noqa: E402

ONNX_DIR = HERE / "onnx"
TFLITE_DIR = HERE / "tflite"
MANIFEST = HERE / "manifest.json"
MLPERF = ROOT.parent / "shared" / "models" / "tflite"
MAX_FILE_BYTES = 1_000_000

TORCHVISION = [
    "alexnet",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "squeezenet1_0",
    "squeezenet1_1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "googlenet",
    "inception_v3",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_v2_s",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_x_1_6gf",
    "regnet_x_3_2gf",
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_y_1_6gf",
    "regnet_y_3_2gf",
    "convnext_tiny",
    "convnext_small",
    "vit_b_16",
    "vit_b_32",
    "swin_t",
    "swin_v2_t",
    "maxvit_t",
]
TORCHVISION_SEGMENTATION = [
    "fcn_resnet50",
    "deeplabv3_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
]
TORCHVISION_VIDEO = ["r3d_18", "mc3_18", "r2plus1d_18"]
TIMM = [
    "resnet10t",
    "resnet14t",
    "resnet26",
    "resnet26d",
    "resnet50d",
    "seresnet18",
    "seresnext26d_32x4d",
    "ecaresnet26t",
    "skresnet18",
    "res2net50_14w_8s",
    "res2next50",
    "resnest14d",
    "dla34",
    "dla46_c",
    "dpn68",
    "cspresnet50",
    "cspdarknet53",
    "darknet17",
    "hrnet_w18_small",
    "rexnet_100",
    "ghostnet_100",
    "mixnet_s",
    "mixnet_m",
    "mnasnet_100",
    "semnasnet_100",
    "spnasnet_100",
    "fbnetc_100",
    "tinynet_a",
    "tinynet_e",
    "lcnet_050",
    "lcnet_100",
    "mobilenetv3_small_050",
    "mobilenetv3_large_100",
    "efficientnet_lite0",
    "efficientnet_lite2",
    "tf_efficientnet_b0",
    "efficientnet_es",
    "regnetx_002",
    "regnety_002",
    "selecsls42b",
    "vovnet39a",
    "ese_vovnet19b_dw",
    "xception41",
    "inception_v4",
    "nasnetalarge",
    "pnasnet5large",
    "deit_tiny_patch16_224",
    "levit_128s",
    "convmixer_768_32",
    "pit_ti_224",
    "coat_lite_tiny",
    "mobilevit_xxs",
    "efficientformer_l1",
    "poolformer_s12",
    "convnext_atto",
    "edgenext_xx_small",
]
LIGHT = [
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
]


def _tflite_specs() -> dict[str, Callable[[], tw.TfliteNet]]:
    specs: dict[str, Callable[[], tw.TfliteNet]] = {}
    for alpha in (0.25, 0.5, 1.0):
        for size in (96, 128, 224):
            name = f"mobilenet_v1_{alpha}_{size}_int8"
            specs[name] = lambda n=name, a=alpha, s=size: tw.mobilenet_v1(n, a, s, "INT8")
    specs["person_detect_int8"] = lambda: tw.mobilenet_v1("person_detect_int8", 0.25, 96, "INT8", 2, 1)
    specs["mobilenet_v1_0.25_128_float"] = lambda: tw.mobilenet_v1("mobilenet_v1_0.25_128_float", 0.25, 128, "FLOAT32")
    for alpha in (0.35, 1.0):
        name = f"mobilenet_v2_{alpha}_224_int8"
        specs[name] = lambda n=name, a=alpha: tw.mobilenet_v2(n, a, 224, "INT8")
    specs["mobilenet_v2_0.35_96_int8"] = lambda: tw.mobilenet_v2("mobilenet_v2_0.35_96_int8", 0.35, 96, "INT8")
    for label, filters, blocks in (("s", 64, 4), ("m", 172, 4), ("l", 276, 5)):
        name = f"ds_cnn_{label}_int8"
        specs[name] = lambda n=name, f=filters, b=blocks: tw.ds_cnn(n, f, b, "INT8")
    specs["resnet8_int8"] = lambda: tw.resnet_cifar("resnet8_int8", 3, 1, 16, "INT8")
    specs["resnet20_int8"] = lambda: tw.resnet_cifar("resnet20_int8", 3, 3, 16, "INT8")
    specs["resnet32_float"] = lambda: tw.resnet_cifar("resnet32_float", 3, 5, 16, "FLOAT32")
    specs["autoencoder_int8"] = lambda: tw.autoencoder("autoencoder_int8", 640, 128, 8, 4, "INT8")
    return specs


def _torch_module(source: str, name: str):
    import generate  # models/generate.py: its torch setup (torchvision's op schemas) and weight perturbation

    torch = generate._import_torch()
    torch.manual_seed(0)
    if source == "timm":
        import timm

        model = timm.create_model(name, pretrained=False)
        size = model.default_cfg.get("input_size", (3, 224, 224))
        return model, torch.randn(1, *size)
    import torchvision

    if source == "torchvision-segmentation":
        factory = getattr(torchvision.models.segmentation, name)
        inner = factory(weights=None, weights_backbone=None, aux_loss=False)

        class Out(torch.nn.Module):  # the dict output as one tensor
            def __init__(self) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x)["out"]

        return Out(), torch.randn(1, 3, 224, 224)
    if source == "torchvision-video":
        return getattr(torchvision.models.video, name)(weights=None), torch.randn(1, 3, 16, 112, 112)
    kwargs = {"aux_logits": False, "init_weights": True} if name in ("inception_v3", "googlenet") else {}
    size = 299 if name == "inception_v3" else 224
    return getattr(torchvision.models, name)(weights=None, **kwargs), torch.randn(1, 3, size, size)


def _export(source: str, name: str) -> onnx.ModelProto:
    import generate

    torch = generate._import_torch()
    module, example = _torch_module(source, name)
    module = module.eval()
    generate._perturb_(module, 0)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            opset_version=17,
            do_constant_folding=True,
            input_names=["input"],
            output_names=["output"],
        )
    return onnx.load_from_string(buffer.getvalue())


def _entries() -> list[tuple[str, str, str]]:
    """(name, source, format) of every corpus entry, in table order."""
    out = [(f"tv_{n}", "torchvision", "onnx") for n in TORCHVISION]
    out += [(f"tv_{n}", "torchvision-segmentation", "onnx") for n in TORCHVISION_SEGMENTATION]
    out += [(f"tv_{n}", "torchvision-video", "onnx") for n in TORCHVISION_VIDEO]
    out += [(f"timm_{n}", "timm", "onnx") for n in TIMM]
    out += [(f"onnx_light_{n}", "onnx package test data", "onnx") for n in LIGHT]
    out += [(n, "tflite_writer (public architecture)", "tflite") for n in _tflite_specs()]
    out += [(f"mlperf_{p.stem}", "MLPerf Tiny (../shared)", "tflite") for p in sorted(MLPERF.glob("*.tflite"))]
    return out


def build_one(name: str, source: str) -> Path:
    """Build (or locate) one entry's file; returns its path."""
    if source.startswith("MLPerf"):
        return MLPERF / f"{name.removeprefix('mlperf_')}.tflite"
    if source.startswith("tflite_writer"):
        TFLITE_DIR.mkdir(exist_ok=True)
        path = TFLITE_DIR / f"{name}.tflite"
        path.write_bytes(_tflite_specs()[name]().to_bytes())
        return path
    ONNX_DIR.mkdir(exist_ok=True)
    path = ONNX_DIR / f"{name}.onnx"
    if source.startswith("onnx package"):
        light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
        shutil.copyfile(light / f"light_{name.removeprefix('onnx_light_')}.onnx", path)
        return path
    import generate

    bare = name.split("_", 1)[1]
    model = generate.strip_weights(_export(source, bare))
    model.graph.doc_string = f"{bare} from {source}; random weights, stripped; made by models/corpus/build.py"
    data = model.SerializeToString()
    if len(data) >= MAX_FILE_BYTES:
        raise RuntimeError(f"{len(data)} bytes after stripping, not under {MAX_FILE_BYTES}")
    path.write_bytes(data)
    return path


def relative(path: Path) -> str:
    """A path as the manifest stores it: relative to the repository root (MLPerf's through ../shared)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(Path("..") / path.relative_to(ROOT.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="entries to rebuild (default: all)")
    parser.add_argument("--keep", action="store_true", help="skip entries whose file exists already")
    args = parser.parse_args(argv)
    entries = _entries()
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    failed: dict[str, str] = {}
    for name, source, fmt in entries:
        if args.names and name not in args.names:
            continue
        existing = manifest.get(name)
        if args.keep and existing and (ROOT / existing["file"]).exists():
            continue
        started = time.perf_counter()
        try:
            path = build_one(name, source)
        except Exception as e:  # a model that does not build is left out and named
            failed[name] = " ".join(str(e).split())[:200] or type(e).__name__
            print(f"{name:40s} FAILED {failed[name]}", flush=True)
            manifest.pop(name, None)
            continue
        manifest[name] = {"file": relative(path), "source": source, "format": fmt}
        print(f"{name:40s} {path.stat().st_size / 1e3:8.1f} kB {time.perf_counter() - started:6.1f} s", flush=True)
        MANIFEST.write_text(
            json.dumps(dict(sorted(manifest.items(), key=lambda kv: _order(entries, kv[0]))), indent=1) + "\n"
        )
    print(f"{len(manifest)} entries in {MANIFEST.name}; {len(failed)} failed to build: {sorted(failed)}")
    return 0


def _order(entries: list[tuple[str, str, str]], name: str) -> int:
    names = [e[0] for e in entries]
    return names.index(name) if name in names else len(names)


if __name__ == "__main__":
    sys.exit(main())
