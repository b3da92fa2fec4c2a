"""ONNX front end: an ONNX file or ModelProto lowered to a :class:`~cosma.graph.Graph`."""

from cosma.frontend.fuse import EPILOGUE_TYPES, fuse_epilogues
from cosma.frontend.lower import STRIPPED_WEIGHTS_KEY, VIEW_TYPES, load_onnx

__all__ = ["EPILOGUE_TYPES", "STRIPPED_WEIGHTS_KEY", "VIEW_TYPES", "fuse_epilogues", "load_onnx"]
