"""The replacement policies, each registered once by its own module in :mod:`cosma.replace.policies`.

A policy is a name, a one-line description and a function that names the resident tensors to
evict when no free range fits. Every module of ``cosma/replace/policies/`` is found with
:mod:`pkgutil` and imported on the first look-up, and registers its policy with
:func:`replacement_policy`; so a new policy is one new file there (plus its test), and it becomes
a baseline of every operator order (``--method default+NAME``), part of
:func:`cosma.methods.baselines.best_baseline` and of ``cosma methods`` without further wiring.

Example:
    >>> [p.name for p in policies()]
    ['belady', 'greedy']
    >>> get_policy("greedy").description
    'evict the cheapest contiguous window of the size needed (locally optimal)'
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import Protocol

from cosma.errors import OptionError
from cosma.replace.state import WalkState

#: The package whose modules are the shipped policies.
POLICY_PACKAGE = "cosma.replace.policies"
#: Rank of a policy that names none: after the shipped ones, so that on a tie between baselines the
#: shipped policies keep winning and adding a policy changes a result only where it is strictly better.
DEFAULT_RANK = 100


class ChooseVictims(Protocol):
    """``choose(state, size, pinned)``: resident tensors to evict so that ``size`` bytes may fit.

    Never a name in ``pinned`` (the running operator's tensors). The engine evicts them, tries to
    place again and asks again if still nothing fits; an empty list means the policy can do nothing
    more (the engine then moves the operator's own inputs, see :mod:`cosma.replace.engine`).
    """

    def __call__(self, state: WalkState, size: int, pinned: Set[str]) -> list[str]: ...


@dataclass(frozen=True)
class Policy:
    """A replacement policy: ``name`` (no ``+``: it follows the order in a baseline's name), a one-line
    ``description``, the ``choose`` function, and ``rank``, its place in the tie-break between baselines
    (lower first; the shipped ``belady`` 0 and ``greedy`` 1)."""

    name: str
    description: str
    choose: ChooseVictims
    rank: int = DEFAULT_RANK

    def __post_init__(self) -> None:
        if not self.name or "+" in self.name or self.name != self.name.strip():
            raise ValueError(f"policy name {self.name!r}: give a non-empty name without '+' or spaces around it")


_REGISTERED: dict[str, Policy] = {}


def register_policy(policy: Policy) -> Policy:
    """Add ``policy``; registering the same policy again is a no-op, another one under a taken name an error."""
    known = _REGISTERED.get(policy.name)
    if known is not None and known != policy:
        raise ValueError(f"a replacement policy named {policy.name!r} is registered already")
    _REGISTERED[policy.name] = policy
    return policy


def replacement_policy(
    name: str, description: str, *, rank: int = DEFAULT_RANK
) -> Callable[[ChooseVictims], ChooseVictims]:
    """Decorator registering the decorated function as the ``choose`` of policy ``name``."""

    def register(choose: ChooseVictims) -> ChooseVictims:
        register_policy(Policy(name, description, choose, rank))
        return choose

    return register


def unregister_policy(name: str) -> None:
    """Remove policy ``name`` (a policy registered at run time, e.g. by a test); unknown names are ignored."""
    _REGISTERED.pop(name, None)


@functools.cache
def _discover() -> None:
    package = importlib.import_module(POLICY_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{POLICY_PACKAGE}.{module.name}")


def policies() -> tuple[Policy, ...]:
    """Every registered policy, by rank then name: the order of the baselines and of their tie-break."""
    _discover()
    return tuple(sorted(_REGISTERED.values(), key=lambda p: (p.rank, p.name)))


def policy_names() -> tuple[str, ...]:
    """The names of :func:`policies`, in their order."""
    return tuple(p.name for p in policies())


def get_policy(name: str) -> Policy:
    """The policy called ``name``; an unknown name is bad input, named with the choices."""
    _discover()
    if name not in _REGISTERED:
        raise OptionError(f"unknown replacement policy {name!r}; choose one of {', '.join(policy_names())}")
    return _REGISTERED[name]
