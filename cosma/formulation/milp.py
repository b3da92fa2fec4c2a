"""The MILP faithful to COSMA (arXiv 2311.18246, section III), built with PuLP (docs/formulation.md, "MILP").

Per operator ``o`` and step ``s`` of its window, ``x[o,s]``: ``o`` runs at step ``s``. Per tensor ``t`` and
step ``s`` of its window, the paper's decisions:

- ``C[t,s]`` created: ``x[producer(t), s]`` (an expression, not a variable);
- ``P[t,s]`` preserved: resident at ``s - 1`` and at ``s`` at the same address;
- ``L[t,s]`` retrieved: loaded from DRAM just before step ``s``;
- ``D[t,s]`` spilled: stored to DRAM after step ``s`` (activations; outputs are stored when made);
- ``a[t,s]`` the address (units) while resident; ``R[t,s] = C + P + L`` is residency;
- ``w[o,OUT,IN,s]``: for a declared in-place pair of ``o``, ``o`` runs at ``s`` and writes ``OUT`` over ``IN``.

Pairwise non-overlap uses one order binary ``z[t,u,s]`` and big-M terms, only for pairs that can be
resident together at ``s`` (windows overlap and neither is forced to die before the other is born).
The gaps a faithful port must close are closed by named families: no preserve at a tensor's first
step (``P`` is not created there), loads only for a use at that step, release after the last use (so
pruned pairs cannot meet), and integrality tolerances below ``1 / M`` (``integrality_tolerance``) so
that a big-M term cannot hide an overlap of one unit; and a spill only for a later retrieve, at most one, so
that a solution cut short pays for no store its plan does not make. Every decoded plan is replayed anyway.

Size: ``sum_o |window(o)|`` order binaries; ``O(sum_t |window(t)|)`` decisions and addresses; one
binary and two rows per coexisting pair and step.

Solved by the ``milp`` backends (:mod:`cosma.backends.highs`, :mod:`cosma.backends.cbc`); :func:`hint_values`
gives their warm start and :func:`decode` reads their solutions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulp

from cosma.formulation.instance import Instance
from cosma.formulation.residency import Residency, Stay

Expr = Any  # a PuLP expression, variable or number


@dataclass
class MilpModel:
    instance: Instance
    lp: pulp.LpProblem
    x: dict[tuple[str, int], Expr] = field(default_factory=dict)
    C: dict[tuple[str, int], Expr] = field(default_factory=dict)
    P: dict[tuple[str, int], Expr] = field(default_factory=dict)
    L: dict[tuple[str, int], Expr] = field(default_factory=dict)
    D: dict[tuple[str, int], Expr] = field(default_factory=dict)
    a: dict[tuple[str, int], Expr] = field(default_factory=dict)
    z: dict[tuple[str, str, int], Expr] = field(default_factory=dict)
    w: dict[tuple[str, str, str, int], Expr] = field(default_factory=dict)
    extent: Expr = None
    big_m: int = 1

    @property
    def min_peak(self) -> bool:
        return self.instance.mode == "min-peak"

    def steps(self, t: str) -> range:
        lo, hi = self.instance.step_window(t)
        return range(lo, hi + 1)

    def R(self, t: str, s: int) -> Expr:
        return self.C.get((t, s), 0) + self.P.get((t, s), 0) + self.L.get((t, s), 0)

    def runs(self, o: str, s: int) -> Expr:
        return self.x.get((o, s), 0)

    def done_before(self, o: str, s: int) -> Expr:
        inst = self.instance
        return pulp.lpSum(self.runs(o, r) for r in range(inst.earliest[o], min(s, inst.latest[o] + 1)))


def build(instance: Instance, *, lower: int = 0, upper: int | None = None) -> MilpModel:
    """The MILP of ``instance``; ``lower``/``upper`` bound the objective (cost units, or extent units)."""
    m = MilpModel(instance, pulp.LpProblem(f"cosma_{instance.mode.replace('-', '_')}", pulp.LpMinimize))
    add_variables(m)
    add_one_operator_per_step(m)
    add_precedence(m)
    add_resident_when_used(m)
    add_one_residency(m)
    add_preserve_after_resident(m)
    add_load_at_use(m)
    add_load_needs_copy(m)
    add_spill_needs_reload(m)
    add_release_after_last_use(m)
    if m.min_peak:
        add_no_eviction(m)
    add_inplace(m)
    add_capacity(m)
    add_address_fixed_while_preserved(m)
    add_non_overlap(m)
    add_objective(m, lower, upper)
    return m


def _binary(name: str) -> pulp.LpVariable:
    return pulp.LpVariable(name, cat=pulp.LpBinary)


def add_variables(m: MilpModel) -> None:
    inst = m.instance
    ti = {t: i for i, t in enumerate(inst.tensors)}
    for o in inst.order:
        k = inst.index[o]
        for s in range(inst.earliest[o], inst.latest[o] + 1):
            m.x[o, s] = 1 if inst.earliest[o] == inst.latest[o] else _binary(f"x_o{k}_s{s}")
    for t in inst.tensors:
        i, uses = ti[t], inst.uses[t]
        producer = uses[0] if inst.produced(t) else None
        consumers = uses[1:] if producer else uses
        steps = m.steps(t)
        for s in steps:
            if producer is not None and (producer, s) in m.x:
                m.C[t, s] = m.x[producer, s]
            if consumers and s > steps.start:
                m.P[t, s] = _binary(f"P_t{i}_s{s}")
            if any(inst.earliest[c] <= s <= inst.latest[c] for c in consumers):
                m.L[t, s] = _binary(f"L_t{i}_s{s}")
            if inst.kind(t) == "activation" and consumers and not m.min_peak:
                m.D[t, s] = _binary(f"D_t{i}_s{s}")
            m.a[t, s] = pulp.LpVariable(f"a_t{i}_s{s}", 0, inst.top[t], cat=pulp.LpInteger)


def add_one_operator_per_step(m: MilpModel) -> None:
    """Each operator runs at exactly one step and each step runs exactly one operator."""
    inst = m.instance
    if inst.fixed:
        return
    for o in inst.order:
        window = range(inst.earliest[o], inst.latest[o] + 1)
        m.lp += pulp.lpSum(m.runs(o, s) for s in window) == 1, f"once_{inst.index[o]}"
    for s in range(len(inst.order)):
        ops = [o for o in inst.order if inst.earliest[o] <= s <= inst.latest[o]]
        m.lp += pulp.lpSum(m.runs(o, s) for o in ops) == 1, f"step_{s}"


def add_precedence(m: MilpModel) -> None:
    """An operator runs only after its producers: by any step, v done implies u done one step before."""
    inst = m.instance
    if inst.fixed:
        return
    for u, v in inst.graph.dag.edges:
        for s in range(inst.earliest[v], inst.latest[v] + 1):
            if s - 1 < inst.latest[u]:
                m.lp += m.done_before(v, s + 1) <= m.done_before(u, s), f"prec_{inst.index[u]}_{inst.index[v]}_{s}"


def add_resident_when_used(m: MilpModel) -> None:
    """Every input of the operator at step s is resident at s (outputs are, by creation)."""
    inst = m.instance
    for t in inst.tensors:
        consumers = inst.uses[t][1:] if inst.produced(t) else inst.uses[t]
        for c in consumers:
            for s in range(inst.earliest[c], inst.latest[c] + 1):
                m.lp += m.R(t, s) >= m.runs(c, s)


def add_one_residency(m: MilpModel) -> None:
    """A tensor is resident at a step in one way only: created, preserved or retrieved."""
    for t in m.instance.tensors:
        for s in m.steps(t):
            if sum(1 for d in (m.C, m.P, m.L) if (t, s) in d) > 1:
                m.lp += m.R(t, s) <= 1


def add_preserve_after_resident(m: MilpModel) -> None:
    """Preserving at s needs residency at s - 1 (so nothing is preserved at a tensor's first step)."""
    for (t, s), p in m.P.items():
        m.lp += p <= m.R(t, s - 1)


def add_load_at_use(m: MilpModel) -> None:
    """A load serves an operator of that step (loading earlier only holds space longer)."""
    inst = m.instance
    for (t, s), load in m.L.items():
        consumers = inst.uses[t][1:] if inst.produced(t) else inst.uses[t]
        m.lp += load <= pulp.lpSum(m.runs(c, s) for c in consumers)


def add_load_needs_copy(m: MilpModel) -> None:
    """A retrieve needs a DRAM copy: an activation spilled at an earlier step, an output made earlier.

    A spill needs the activation resident at that step.
    """
    inst = m.instance
    for (t, s), load in m.L.items():
        kind = inst.kind(t)
        if kind == "activation":
            m.lp += load <= pulp.lpSum(d for (u, r), d in m.D.items() if u == t and r < s)
        elif kind == "output":
            m.lp += load <= m.done_before(inst.uses[t][0], s)
    for (t, s), d in m.D.items():
        m.lp += d <= m.R(t, s)


def add_spill_needs_reload(m: MilpModel) -> None:
    """An activation is spilled at most once, and only when a later step retrieves it.

    The decoded plan stores an activation once, and only if it is reloaded (one DRAM copy serves every
    reload); without these rows a solution cut short could pay for stores that its plan never makes.
    """
    ti = {t: i for i, t in enumerate(m.instance.tensors)}
    spills: dict[str, list[tuple[int, Expr]]] = {}
    loads: dict[str, list[tuple[int, Expr]]] = {}
    for (t, s), d in m.D.items():
        spills.setdefault(t, []).append((s, d))
    for (t, s), load in m.L.items():
        loads.setdefault(t, []).append((s, load))
    for t, ds in spills.items():
        m.lp += pulp.lpSum(d for _, d in ds) <= 1, f"one_spill_t{ti[t]}"
        for s, d in ds:
            later = [load for r, load in loads.get(t, []) if r > s]
            m.lp += d <= pulp.lpSum(later), f"spill_reload_t{ti[t]}_s{s}"


def add_release_after_last_use(m: MilpModel) -> None:
    """A tensor is not resident once all its consumers have run (pruned pairs rely on it)."""
    inst = m.instance
    for t in inst.tensors:
        consumers = inst.uses[t][1:] if inst.produced(t) else inst.uses[t]
        if not consumers:
            continue
        for s in m.steps(t):
            if all(inst.latest[c] < s for c in consumers):
                continue
            pending = pulp.lpSum(1 - m.done_before(c, s) for c in consumers)
            m.lp += m.R(t, s) <= pending


def add_no_eviction(m: MilpModel) -> None:
    """(Min-peak mode.) A tensor is loaded at most once and a produced one never."""
    inst = m.instance
    for t in inst.tensors:
        loads = [v for (u, _), v in m.L.items() if u == t]
        if not loads:
            continue
        m.lp += pulp.lpSum(loads) <= (1 if not inst.produced(t) else 0)


def add_inplace(m: MilpModel) -> None:
    """An in-place output may be written over its declared input at the operator's step: same address, and the
    input is neither preserved into the next step nor spilled after this one.

    At most one output overwrites an input; a later reader retrieves it (with the spill an activation needs
    before). The capacity and non-overlap rows of that step then count the shared bytes once. Graphs without
    pairs add nothing.
    """
    inst = m.instance
    ti = {t: i for i, t in enumerate(inst.tensors)}
    for o in inst.order:
        k = inst.index[o]
        by_input: dict[tuple[str, int], list[Expr]] = {}
        for out, inp in inst.graph.op(o).inplace:
            if out not in inst.footprint:  # empty tensors occupy nothing: nothing to share
                continue
            for s in range(inst.earliest[o], inst.latest[o] + 1):
                w = _binary(f"w_o{k}_t{ti[out]}_t{ti[inp]}_s{s}")
                m.w[o, out, inp, s] = w
                by_input.setdefault((inp, s), []).append(w)
                big = inst.top[inp]
                m.lp += m.a[out, s] - m.a[inp, s] <= big * (1 - w)
                m.lp += m.a[inp, s] - m.a[out, s] <= big * (1 - w)
        for (inp, s), ws in by_input.items():
            gone = pulp.lpSum(ws)
            m.lp += gone <= m.runs(o, s), f"inplace_o{k}_t{ti[inp]}_s{s}"
            if (inp, s + 1) in m.P:
                m.lp += m.P[inp, s + 1] + gone <= 1
            if (inp, s) in m.D:
                m.lp += m.D[inp, s] + gone <= 1


def add_capacity(m: MilpModel) -> None:
    """(Implied by the addresses; the LP's knapsack rows.) Residents of a step fit the capacity."""
    inst = m.instance
    limit: Expr = inst.capacity
    if m.min_peak:
        m.extent = pulp.LpVariable("extent", 0, inst.capacity, cat=pulp.LpInteger)
        limit = m.extent
    by_step: dict[int, list[Expr]] = {}
    for t in inst.tensors:
        for s in m.steps(t):
            by_step.setdefault(s, []).append(inst.footprint[t] * m.R(t, s))
    for (_o, _out, inp, s), w in m.w.items():  # an input written over in place shares its output's bytes
        by_step[s].append(-inst.footprint[inp] * w)
    for s, terms in sorted(by_step.items()):
        m.lp += pulp.lpSum(terms) <= limit, f"capacity_{s}"


def add_address_fixed_while_preserved(m: MilpModel) -> None:
    """A preserved tensor keeps its address: |a[t,s] - a[t,s-1]| <= top * (1 - P[t,s])."""
    inst = m.instance
    for (t, s), p in m.P.items():
        big = inst.top[t]
        m.lp += m.a[t, s] - m.a[t, s - 1] <= big * (1 - p)
        m.lp += m.a[t, s - 1] - m.a[t, s] <= big * (1 - p)
    if m.min_peak:
        for (t, s), a in m.a.items():
            m.lp += a + inst.footprint[t] * m.R(t, s) <= m.extent


def coexisting_pairs(m: MilpModel) -> Iterator[tuple[str, str, int]]:
    inst = m.instance
    by_step: dict[int, list[str]] = {}
    for t in inst.tensors:
        for s in m.steps(t):
            by_step.setdefault(s, []).append(t)
    for s, ts in sorted(by_step.items()):
        for i, t in enumerate(ts):
            for u in ts[i + 1 :]:
                if inst.may_coexist(t, u):
                    yield t, u, s


def add_non_overlap(m: MilpModel) -> None:
    """Two tensors resident at one step do not overlap: z[t,u,s] = 1 puts t below u (big-M, both resident)."""
    inst = m.instance
    ti = {t: i for i, t in enumerate(inst.tensors)}
    shared: dict[tuple[str, str, int], list[Expr]] = {}  # an output and the input it may overwrite in place
    for (_o, out, inp, s), w in m.w.items():
        shared.setdefault((out, inp, s), []).append(w)
        shared.setdefault((inp, out, s), []).append(w)
    for t, u, s in coexisting_pairs(m):
        z = _binary(f"z_t{ti[t]}_t{ti[u]}_s{s}")
        m.z[t, u, s] = z
        absent = 2 - m.R(t, s) - m.R(u, s) + pulp.lpSum(shared.get((t, u, s), []))
        mt = inst.top[t] + inst.footprint[t]
        mu = inst.top[u] + inst.footprint[u]
        m.big_m = max(m.big_m, mt, mu)
        m.lp += m.a[t, s] + inst.footprint[t] <= m.a[u, s] + mt * (1 - z) + mt * absent
        m.lp += m.a[u, s] + inst.footprint[u] <= m.a[t, s] + mu * z + mu * absent


def add_objective(m: MilpModel, lower: int = 0, upper: int | None = None) -> None:
    """Minimise every retrieve (less the one compulsory load of each input and weight) and every spill."""
    inst = m.instance
    if m.min_peak:
        m.lp += m.extent
        m.lp += m.extent >= lower
        if upper is not None:
            m.lp += m.extent <= upper
        return
    compulsory = sum(inst.reload_cost(t) for t in inst.tensors if not inst.produced(t))
    cost = (
        pulp.lpSum(inst.reload_cost(t) * v for (t, _), v in m.L.items())
        + pulp.lpSum(inst.spill_cost(t) * v for (t, _), v in m.D.items())
        - compulsory
    )
    m.lp += cost
    if lower > 0:
        m.lp += cost >= lower
    if upper is not None:
        m.lp += cost <= upper


# ------------------------------------------------------------------------- hints
def hint_values(m: MilpModel, residency: Residency) -> dict[str, float]:
    """Values of every variable for a solution (a baseline plan's residency), by variable name."""
    inst = m.instance
    step = {o: s for s, o in enumerate(residency.order)}
    at: dict[tuple[str, int], Stay] = {}
    for seg in residency.segments:
        for s in range(seg.first, seg.last + 1):
            at[seg.tensor, s] = seg
    values: dict[str, float] = {}

    def put(var: Expr, value: float) -> None:
        if isinstance(var, pulp.LpVariable):
            values[var.name] = value

    for (o, s), v in m.x.items():
        put(v, float(step[o] == s))
    for t in inst.tensors:
        for s in m.steps(t):
            held = at.get((t, s))
            resident = held is not None
            starts = held is not None and held.first == s
            put(m.P.get((t, s)), float(resident and not starts))
            put(m.L.get((t, s)), float(held is not None and held.first == s and not held.created))
            put(m.a[t, s], held.offset // inst.unit if held is not None else 0)
            if (t, s) in m.D:
                spilled = any(g.tensor == t and not g.created for g in residency.segments)
                produced_at = step[inst.uses[t][0]]
                put(m.D[t, s], float(spilled and s == produced_at))
    taken: set[tuple[str, int]] = set()
    for (o, out, inp, s), w in m.w.items():
        so, si = at.get((out, s)), at.get((inp, s))
        hit = (
            step[o] == s
            and so is not None
            and si is not None
            and so.created
            and si.last == s
            and so.offset == si.offset
            and (inp, s) not in taken
        )
        if hit:
            taken.add((inp, s))
        put(w, float(hit))
    for (t, u, s), z in m.z.items():
        st, su = at.get((t, s)), at.get((u, s))
        put(z, float(st is not None and su is not None and st.offset < su.offset))
    if m.extent is not None:
        put(
            m.extent,
            max((seg.offset // inst.unit + inst.footprint[seg.tensor] for seg in residency.segments), default=0),
        )
    return values


# ------------------------------------------------------------------------ decode
def decode(m: MilpModel, value: Callable[[Expr], float]) -> Residency:
    """The residency of a solution; values are rounded (the plan is replayed afterwards)."""
    inst = m.instance

    def val(e: Expr) -> int:
        if isinstance(e, (int, float)):
            return round(e)
        if isinstance(e, pulp.LpVariable):
            return round(value(e))
        return round(sum(c * value(v) for v, c in e.items()) + e.constant)

    step = {}
    for (o, s), v in m.x.items():
        if val(v) == 1:
            step[o] = s
    order = tuple(sorted(inst.order, key=lambda o: step.get(o, inst.earliest[o])))
    over = {out: inp for (_o, out, inp, _s), w in m.w.items() if val(w) == 1}
    segments: list[Stay] = []
    for t in inst.tensors:
        open_: tuple[int, int, bool] | None = None
        for s in m.steps(t):
            resident = val(m.R(t, s)) >= 1
            preserved = (t, s) in m.P and val(m.P[t, s]) == 1
            if open_ is not None and not (resident and preserved):
                segments.append(Stay(t, open_[0], s - 1, open_[1], open_[2], over.get(t) if open_[2] else None))
                open_ = None
            if resident and open_ is None:
                created = (t, s) in m.C and val(m.C[t, s]) == 1
                open_ = (s, val(m.a[t, s]) * inst.unit, created)
        if open_ is not None:
            segments.append(Stay(t, open_[0], m.steps(t)[-1], open_[1], open_[2], over.get(t) if open_[2] else None))
    return Residency(order, tuple(segments))


# ----------------------------------------------------------------------- solvers
def integrality_tolerance(m: MilpModel) -> float:
    """Small enough that ``M * tolerance < 1/2``: a fractional order binary cannot hide an overlap."""
    return min(1e-6, 0.25 / max(m.big_m, 1))


def export(m: MilpModel, path: Path) -> None:
    """The model as a file any MILP solver reads: LP format when ``path`` ends in ``.lp``, free MPS otherwise.

    Variables and rows keep their indexed names (``x_o3_s2``, ``capacity_5``); the objective's constant (the
    compulsory loads it subtracts) is not part of either format, so a solver reading the file reports the
    objective plus that constant (:attr:`MilpModel.lp` ``.objective.constant`` gives it back).
    """
    if path.suffix.lower() == ".lp":
        m.lp.writeLP(str(path))
    else:
        m.lp.writeMPS(str(path))
