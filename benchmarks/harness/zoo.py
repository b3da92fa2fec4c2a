"""The model zoo as the bench sees it: ``models/zoo.py`` of the source tree (or a folder given), by name."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cosma.errors import OptionError
from harness.protocol import PROTOCOL_GROUPS, SOURCE_ROOT


# ------------------------------------------------------------------------------- zoo
@dataclass(frozen=True)
class ZooModel:
    """One zoo model as the bench needs it: name, display name, group, file."""

    name: str
    display: str
    group: str
    path: str


def load_zoo(zoo_dir: str | os.PathLike[str] | None = None) -> dict[str, ZooModel]:
    """The zoo registry (``zoo.py`` in ``zoo_dir``, default ``models/`` of the source tree), by name."""
    directory = Path(zoo_dir) if zoo_dir is not None else SOURCE_ROOT / "models"
    registry = directory / "zoo.py"
    if not registry.is_file():
        raise OptionError(f"no zoo registry at {registry}; give --zoo-dir the models/ folder of a cosma checkout")
    spec = importlib.util.spec_from_file_location("cosma_bench_zoo", registry)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        return {
            e.name: ZooModel(e.name, e.display, e.group, str(directory.resolve() / e.file)) for e in module.ZOO.values()
        }
    except Exception as e:  # a broken registry is bad input, named in one line
        raise OptionError(f"cannot read the zoo registry {registry}: {type(e).__name__}: {e}") from None


def select_models(zoo: Mapping[str, ZooModel], names: Sequence[str] = ()) -> list[ZooModel]:
    """The named models (zoo order), or every model of :data:`PROTOCOL_GROUPS` when none are named.

    A name may also be a group (``human``, ``nas``...).
    """
    if not names:
        return [m for m in zoo.values() if m.group in PROTOCOL_GROUPS]
    groups = {m.group for m in zoo.values()}
    unknown = [n for n in names if n not in zoo and n not in groups]
    if unknown:
        raise OptionError(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(zoo)} "
            f"or a group ({', '.join(sorted(groups))})"
        )
    wanted = set(names)
    return [m for m in zoo.values() if m.name in wanted or m.group in wanted]
