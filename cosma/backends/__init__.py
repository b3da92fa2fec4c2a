"""Solver backends: one module each, registered by name (:mod:`cosma.backends.base` has the protocol).

Every module of this package is imported here, and each backend module registers its backend when imported,
so adding a backend is adding one file (see docs/formulation.md, "Backends"). Modules whose names start with
``_``, the shared :mod:`~cosma.backends.base` and the HiGHS worker script (run in a process of its own, never
imported) are not backends.

Example:
    >>> from cosma.backends import backend_names, get_backend
    >>> backend_names()
    ('cbc', 'cpsat', 'highs')
    >>> get_backend("highs").formulation
    'milp'
"""

from __future__ import annotations

import importlib
import pkgutil

# base imports cosma.formulation first, which loads OR-Tools before any backend loads PuLP (its docstring says why)
from cosma.backends.base import Backend, backend_names, get_backend, register_backend, unregister_backend

#: Modules of this package that hold no backend.
NOT_BACKENDS = frozenset({"base", "highs_worker"})

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name not in NOT_BACKENDS:
        importlib.import_module(f"{__name__}.{_module.name}")

#: The backend ``--solver auto`` (and ``Options.solver="auto"``) stands for.
DEFAULT_BACKEND = "cpsat"

__all__ = ["DEFAULT_BACKEND", "Backend", "backend_names", "get_backend", "register_backend", "unregister_backend"]
