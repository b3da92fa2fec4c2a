"""Where a plan came from: enough, in the plan file itself, to make the same plan again.

A front end stamps the graph it builds (:func:`stamp_source`): the model file's name (never its
folder, so that a plan file names no machine's paths), the file's sha256, its format and every load
option that changes the graph. :func:`cosma.compile` adds the cosma version, the budget and every
planning option that changes the result (:func:`plan_provenance`) and the plan file carries it all
as its top-level ``provenance`` object; :func:`cosma.reproduce.reproduce` reads it back.

The graph carries its part in ``Graph.metadata`` (string values, so load options are JSON text)
because the graph is what travels from the front end to :func:`cosma.compile`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cosma.graph import Graph
from cosma.hardware import Accelerator
from cosma.options import Options

#: Graph.metadata keys a front end sets for the provenance.
MODEL_FILE_KEY = "model_file"
MODEL_SHA256_KEY = "model_sha256"
MODEL_FORMAT_KEY = "model_format"
LOAD_OPTIONS_KEY = "load_options"

#: Options that change how a plan is reported or where side files go, never which plan is found.
_NOT_RESULT_OPTIONS = frozenset({"quiet", "dump_model"})


def cosma_version() -> str:
    try:
        return version("cosma")
    except PackageNotFoundError:
        return "unknown"


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """``value`` as JSON data: mappings become objects, other sequences lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def stamp_source(
    graph: Graph, *, file_name: str | None, sha256: str, model_format: str, load_options: Mapping[str, Any]
) -> Graph:
    """``graph`` with its source recorded in its metadata; ``source`` becomes the bare file name too."""
    metadata = dict(graph.metadata)
    if file_name is not None:
        metadata[MODEL_FILE_KEY] = file_name
        metadata["source"] = file_name  # the front end put the path as given there, maybe absolute
    metadata[MODEL_SHA256_KEY] = sha256
    metadata[MODEL_FORMAT_KEY] = model_format
    metadata[LOAD_OPTIONS_KEY] = json.dumps(_plain(load_options), sort_keys=True)
    return Graph.build(graph.name, graph.tensors, graph.ops, metadata)


def plan_provenance(graph: Graph, accelerator: Accelerator, method: str, resolved: str, options: Options) -> dict:
    """The ``provenance`` object of a plan made by :func:`cosma.compile` from ``graph``."""
    meta = graph.metadata
    model: dict[str, Any] = {
        "file": meta.get(MODEL_FILE_KEY),
        "sha256": meta.get(MODEL_SHA256_KEY),
        "format": meta.get(MODEL_FORMAT_KEY),
        "graph": graph.name,
        "input_shapes": {t.name: list(t.shape) for t in graph.tensors if t.kind == "input"},
    }
    load = json.loads(meta[LOAD_OPTIONS_KEY]) if LOAD_OPTIONS_KEY in meta else None
    planning = {f.name: _plain(getattr(options, f.name)) for f in fields(options) if f.name not in _NOT_RESULT_OPTIONS}
    return {
        "cosma": cosma_version(),
        "model": model,
        "load": load,
        "compile": {
            "scratchpad_bytes": accelerator.scratchpad_bytes,
            "alignment": accelerator.alignment,
            "method": method,
            "resolved_method": resolved,
            "options": planning,
        },
    }


def model_path_for(plan_path: str | os.PathLike[str], provenance: Mapping[str, Any]) -> Path | None:
    """Where the model is by default: its recorded file name, next to the plan file."""
    name = (provenance.get("model") or {}).get("file")
    return Path(plan_path).parent / name if name else None
