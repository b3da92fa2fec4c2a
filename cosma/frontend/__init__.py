"""Front ends: an ONNX or TFLite model lowered to a :class:`~cosma.graph.Graph`.

:func:`load_model` is the one entry the command line uses: a file with the TFLite flatbuffer
identifier (or the ``.tflite`` suffix) goes to :func:`load_tflite`, anything else to :func:`load_onnx`.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import onnx

from cosma.frontend import lower as onnx_front
from cosma.frontend import tflite as tflite_front
from cosma.frontend.fuse import EPILOGUE_TYPES, fuse_epilogues
from cosma.frontend.inplace import ELEMENTWISE_TYPES, declare_inplace
from cosma.frontend.lower import STRIPPED_WEIGHTS_KEY, VIEW_TYPES
from cosma.frontend.tflite import TFLITE_VIEW_TYPES, is_tflite
from cosma.graph import Graph
from cosma.provenance import file_sha256, stamp_source

#: Options of :func:`load_onnx` that :func:`load_tflite` shares; the rest (ONNX folding switches)
#: have nothing to act on in a TFLite file, whose converter already folded constants and BatchNorm.
_TFLITE_OPTIONS = frozenset({"input_shapes", "element_bytes", "weights", "fuse", "name", "inplace"})


def _defaults(loader: Callable[..., Graph]) -> dict[str, Any]:
    return {p.name: p.default for p in inspect.signature(loader).parameters.values() if p.kind is p.KEYWORD_ONLY}


def _stamped(graph: Graph, model: Any, model_format: str, loader: Callable[..., Graph], options: Mapping) -> Graph:
    """``graph`` with its source and every load option (defaults included) in its metadata, for provenance."""
    recorded = {**_defaults(loader), **options}
    if recorded.get("name") is None:
        recorded.pop("name", None)
    if isinstance(model, onnx.ModelProto):
        sha256, file_name = hashlib.sha256(model.SerializeToString()).hexdigest(), None
    else:
        sha256, file_name = file_sha256(model), Path(model).name
    return stamp_source(graph, file_name=file_name, sha256=sha256, model_format=model_format, load_options=recorded)


def load_onnx(model: str | os.PathLike[str] | onnx.ModelProto, **options: Any) -> Graph:
    """:func:`cosma.frontend.lower.load_onnx` (same options), the graph stamped with its source for provenance."""
    return _stamped(onnx_front.load_onnx(model, **options), model, "onnx", onnx_front.load_onnx, options)


def load_tflite(model: str | os.PathLike[str], **options: Any) -> Graph:
    """:func:`cosma.frontend.tflite.load_tflite` (same options), stamped with its source for provenance."""
    return _stamped(tflite_front.load_tflite(model, **options), model, "tflite", tflite_front.load_tflite, options)


def load_model(model: Any, **options: Any) -> Graph:
    """Lower an ONNX or TFLite model to a :class:`Graph`, chosen by the file's identifier or suffix.

    ``options`` are :func:`load_onnx`'s; a TFLite file takes the shared ones and ignores ONNX-only ones.
    """
    if isinstance(model, (str, os.PathLike)) and (Path(model).suffix.lower() == ".tflite" or is_tflite(model)):
        return load_tflite(model, **{k: v for k, v in options.items() if k in _TFLITE_OPTIONS})
    return load_onnx(model, **options)


__all__ = [
    "ELEMENTWISE_TYPES",
    "EPILOGUE_TYPES",
    "STRIPPED_WEIGHTS_KEY",
    "TFLITE_VIEW_TYPES",
    "VIEW_TYPES",
    "declare_inplace",
    "fuse_epilogues",
    "is_tflite",
    "load_model",
    "load_onnx",
    "load_tflite",
]
