"""Make a plan again from its own file: :func:`reproduce` reads the plan's ``provenance`` object.

The model file is checked against the recorded sha256, loaded with the recorded load options and
planned with the recorded method, budget and options. Methods that are deterministic for a given
input (the baselines; the exact methods with one thread and a limit they do not reach) give the same
steps; a plan cut by a wall-clock limit may differ, which :class:`Reproduction` reports, not hides.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosma.contract import step_to_dict
from cosma.errors import ModelError, OptionError
from cosma.frontend import load_model
from cosma.methods import compile as compile_graph
from cosma.options import Options
from cosma.plan import Plan
from cosma.provenance import file_sha256, model_path_for


@dataclass(frozen=True)
class Reproduction:
    """The recorded plan, the plan made again, and whether their steps and traffic agree."""

    recorded: Plan
    again: Plan

    @property
    def same(self) -> bool:
        return self.first_difference is None

    @property
    def first_difference(self) -> str | None:
        """One line naming the first disagreement, or None when the plans agree step for step."""
        a, b = self.recorded, self.again
        if a.summary.extra_bytes != b.summary.extra_bytes:
            return f"extra traffic {a.summary.extra_bytes} B recorded, {b.summary.extra_bytes} B again"
        for i, (x, y) in enumerate(zip(a.steps, b.steps)):
            if x != y:
                return f"step {i}: {step_to_dict(x)} recorded, {step_to_dict(y)} again"
        if len(a.steps) != len(b.steps):
            return f"{len(a.steps)} steps recorded, {len(b.steps)} again"
        return None


def _options(recorded: dict[str, Any]) -> Options:
    known = {k: v for k, v in recorded.items() if k in Options.__dataclass_fields__}
    if isinstance(known.get("order"), list):
        known["order"] = tuple(known["order"])
    return Options(**known)


def reproduce(plan_path: str | os.PathLike[str], model: str | os.PathLike[str] | None = None) -> Reproduction:
    """Plan again the model ``plan_path`` was made from (default: its recorded file name beside the plan).

    Raises :class:`OptionError` when the plan has no provenance and :class:`ModelError` when the
    model file is missing or is not the one the plan was made from (its sha256 differs).
    """
    data = json.loads(Path(plan_path).read_text())
    provenance = data.get("provenance")
    if not provenance or not provenance.get("load"):
        raise OptionError(f"{plan_path}: the plan records no provenance; only plans written by cosma.compile do")
    path = Path(model) if model is not None else model_path_for(plan_path, provenance)
    if path is None:
        raise OptionError(f"{plan_path}: the plan was made from a model in memory; give the model file")
    if not path.is_file():
        raise ModelError(f"{path}: no such file; give the model the plan was made from with --model")
    want = provenance["model"].get("sha256")
    if want and file_sha256(path) != want:
        raise ModelError(
            f"{path}: its sha256 is not the recorded {want[:12]}...; give the model the plan was made from"
        )
    load = dict(provenance["load"])
    if load.get("input_shapes"):
        load["input_shapes"] = {k: tuple(v) for k, v in load["input_shapes"].items()}
    graph = load_model(path, **load)
    planned = provenance["compile"]
    again = compile_graph(
        graph,
        planned["scratchpad_bytes"],
        method=planned["method"],
        alignment=planned["alignment"],
        options=_options(planned["options"]),
    )
    return Reproduction(Plan.from_dict(data), again)
