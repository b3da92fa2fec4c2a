"""ONNX front end: an ONNX file or ModelProto lowered to a :class:`~cosma.graph.Graph`."""

from cosma.frontend.lower import load_onnx

__all__ = ["load_onnx"]
