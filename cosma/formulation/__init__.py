"""Exact formulations of the joint scheduling, allocation and replacement problem (docs/formulation.md).

- :mod:`~cosma.formulation.instance`: the data every formulation shares (scaled sizes, windows, uses);
- :mod:`~cosma.formulation.cpsat`: the CP-SAT model (residency rectangles in step x address);
- :mod:`~cosma.formulation.milp`: the MILP faithful to COSMA, built with PuLP;
- :mod:`~cosma.formulation.bounds`: cheap lower bounds;
- :mod:`~cosma.formulation.residency`: the solver-neutral solution and its plan steps.

Models only: the solvers are :mod:`cosma.backends`, and :mod:`cosma.methods.exact` drives both. OR-Tools is
imported first on purpose: it bundles a HiGHS library under
the same shared-object name as highspy's, and whichever loads second cannot link; PuLP imports highspy
when it can, so PuLP must come after OR-Tools. HiGHS itself runs in a process of its own
(:mod:`cosma.backends.highs_worker`).
"""

from ortools.sat.python import cp_model as _cp_model  # noqa: F401  (must load before pulp; see above)
