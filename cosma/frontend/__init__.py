"""Front ends: an ONNX or TFLite model lowered to a :class:`~cosma.graph.Graph`.

:func:`load_model` is the one entry the command line uses: a file with the TFLite flatbuffer
identifier (or the ``.tflite`` suffix) goes to :func:`load_tflite`, anything else to :func:`load_onnx`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cosma.frontend.fuse import EPILOGUE_TYPES, fuse_epilogues
from cosma.frontend.lower import STRIPPED_WEIGHTS_KEY, VIEW_TYPES, load_onnx
from cosma.frontend.tflite import TFLITE_VIEW_TYPES, is_tflite, load_tflite
from cosma.graph import Graph

#: Options of :func:`load_onnx` that :func:`load_tflite` shares; the rest (ONNX folding switches)
#: have nothing to act on in a TFLite file, whose converter already folded constants and BatchNorm.
_TFLITE_OPTIONS = frozenset({"input_shapes", "element_bytes", "weights", "fuse", "name"})


def load_model(model: Any, **options: Any) -> Graph:
    """Lower an ONNX or TFLite model to a :class:`Graph`, chosen by the file's identifier or suffix.

    ``options`` are :func:`load_onnx`'s; a TFLite file takes the shared ones and ignores ONNX-only ones.
    """
    if isinstance(model, (str, os.PathLike)) and (Path(model).suffix.lower() == ".tflite" or is_tflite(model)):
        return load_tflite(model, **{k: v for k, v in options.items() if k in _TFLITE_OPTIONS})
    return load_onnx(model, **options)


__all__ = [
    "EPILOGUE_TYPES",
    "STRIPPED_WEIGHTS_KEY",
    "TFLITE_VIEW_TYPES",
    "VIEW_TYPES",
    "fuse_epilogues",
    "is_tflite",
    "load_model",
    "load_onnx",
    "load_tflite",
]
