"""The planning methods, each registered once with a name and a one-line description.

A method is ``solve(graph, accelerator, options) -> Plan``. A module of :mod:`cosma.methods`
registers its method with the :func:`register_method` decorator (or :func:`add_method`); every
module of the package is found with :mod:`pkgutil` and imported on the first look-up, so a new
method is one new file (plus its test), and it reaches :func:`cosma.methods.compile`, the CLI's
``--method`` choices, ``cosma methods`` and the benchmark without further wiring.

A *family* is a set of methods generated at each look-up (:func:`register_family`): the baselines
are every operator order with every replacement policy registered at that moment
(:mod:`cosma.methods.baselines`), so a policy added later is a method at once.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cosma.graph import Graph
from cosma.hardware import Accelerator
from cosma.options import Options
from cosma.plan import Plan

Method = Callable[[Graph, Accelerator, Options], Plan]
#: The methods of a family, computed afresh at each look-up.
Family = Callable[[], Iterable["MethodSpec"]]

#: The package whose modules are searched for methods.
METHOD_PACKAGE = "cosma.methods"
#: Not a method: the name :func:`cosma.methods.compile` resolves to a registered one.
AUTO = "auto"


@dataclass(frozen=True)
class MethodSpec:
    """A planning method: its ``--method`` name, a one-line description and the function."""

    name: str
    description: str
    solve: Method

    def __post_init__(self) -> None:
        if not self.name or self.name == AUTO or self.name != self.name.strip():
            raise ValueError(f"method name {self.name!r}: give a non-empty name other than {AUTO!r}, without spaces")


_METHODS: dict[str, MethodSpec] = {}
_FAMILIES: dict[str, Family] = {}


def add_method(spec: MethodSpec) -> MethodSpec:
    """Register ``spec``; the same spec again is a no-op, another one under a taken name an error."""
    known = _METHODS.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"a planning method named {spec.name!r} is registered already")
    _METHODS[spec.name] = spec
    return spec


def register_method(name: str, description: str) -> Callable[[Method], Method]:
    """Decorator registering the decorated ``solve(graph, accelerator, options)`` as method ``name``."""

    def register(solve: Method) -> Method:
        add_method(MethodSpec(name, description, solve))
        return solve

    return register


def unregister_method(name: str) -> None:
    """Remove method ``name`` (one registered at run time, e.g. by a test); unknown names are ignored."""
    _METHODS.pop(name, None)


def register_family(key: str, family: Family) -> None:
    """Register ``family`` under ``key`` (registering a key again replaces its family)."""
    _FAMILIES[key] = family


@functools.cache
def _discover() -> None:
    package = importlib.import_module(METHOD_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{METHOD_PACKAGE}.{module.name}")


def methods() -> dict[str, MethodSpec]:
    """Every method by name: the families' first (in registration order), then the single methods."""
    _discover()
    found: dict[str, MethodSpec] = {}
    for family in _FAMILIES.values():
        for spec in family():
            found.setdefault(spec.name, spec)
    for name, spec in _METHODS.items():
        if name in found:
            raise ValueError(f"method {name!r} is registered twice: as a single method and by a family")
        found[name] = spec
    return found
