"""The CP-SAT model: residency segments as rectangles in step x address (docs/formulation.md, "CP-SAT").

Variables (indexed names, so an exported model reads by hand):

- ``pos[o]``: the step of operator ``o`` (a constant in fixed-order mode);
- ``next[t,u,v]``: ``v`` is the use of tensor ``t`` that follows use ``u`` (constant when forced);
- ``keep[t,u,v]``: ``t`` stays resident, at one address, from use ``u`` to its next use ``v``;
- ``spill[t]``: activation ``t`` is stored once (it is reloaded at least once);
- ``addr[t,u]``: the address (units) of ``t`` while operator ``u`` runs;
- ``inplace[o,OUT,IN]``: output ``OUT`` of ``o`` is written over its input ``IN`` (a declared in-place pair):
  same address, ``IN``'s stay ends at ``o``, and ``IN``'s rectangle at ``o`` is absent (``OUT``'s covers it);
- ``extent``: the highest address in use (min-peak mode only).

Each use is a rectangle ``[pos[u], pos[u] + 1) x [addr[t,u], addr[t,u] + F_t)``; each kept
succession adds the bridge ``[pos[u] + 1, pos[v]) x [addr[t,u], ...)``. One NoOverlap2D over all
rectangles makes every run's residents disjoint; a redundant capacity constraint (per-step sums
when the order is fixed, a cumulative otherwise) gives the LP its knapsack structure.

Size: ``N`` order variables, ``sum_t |U_t|`` addresses and use rectangles, and one keep variable and
bridge per possible succession (``|U_t| - 1`` per tensor when the order is fixed).

``build(instance, addresses=False)`` drops the addresses and the NoOverlap2D: the capacity-only
relaxation, whose optimum is a lower bound for the full model. ``allocate(instance, residency)`` is the
feasibility model that places a residency's segments. :func:`read_solution` turns any of them back into a
residency; the solver runs in :mod:`cosma.backends.cpsat`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ortools.sat.python import cp_model

from cosma.formulation.instance import Instance
from cosma.formulation.residency import Residency, Stay

Succession = tuple[str, str, str]  # (tensor, use, next use)


@dataclass
class CpSatModel:
    """A built CP-SAT model and the handles needed to hint, solve and decode it."""

    instance: Instance
    addresses: bool
    model: cp_model.CpModel = field(default_factory=cp_model.CpModel)
    pos: dict[str, Any] = field(default_factory=dict)
    op_interval: dict[str, Any] = field(default_factory=dict)
    nexts: dict[Succession, Any] = field(default_factory=dict)
    keep: dict[Succession, Any] = field(default_factory=dict)
    breaks: dict[Succession, Any] = field(default_factory=dict)
    spill: dict[str, Any] = field(default_factory=dict)
    addr: dict[tuple[str, str], Any] = field(default_factory=dict)
    boxes: list[tuple[Any, Any]] = field(default_factory=list)  # (x interval, y interval)
    demands: list[tuple[Any, int]] = field(default_factory=list)  # (x interval, footprint) for the cumulative
    bridges: dict[Succession, tuple[Any, Any]] = field(default_factory=dict)  # x interval, presence
    extent: Any = None
    cost: Any = 0  # extra traffic in cost units
    #: in-place decisions ``(o, OUT, IN) -> literal``, and per ``(IN, o)`` the literal "IN is overwritten at o"
    over: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    overwritten: dict[tuple[str, str], Any] = field(default_factory=dict)
    use_intervals: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: an :func:`allocate` model: the residency whose segments it places (None for the planning models)
    placing: Residency | None = None

    @property
    def min_peak(self) -> bool:
        return self.instance.mode == "min-peak"


def build(
    instance: Instance,
    *,
    addresses: bool = True,
    lower: int = 0,
    upper: int | None = None,
    symmetry_breaking: bool = True,
) -> CpSatModel:
    """The CP-SAT model of ``instance``; ``lower``/``upper`` bound the objective (cost units, or extent).

    ``symmetry_breaking=False`` leaves out :func:`add_symmetry_breaking`, for callers that fix some
    addresses afterwards (the ``dc`` driver's window boundaries): the mirror image of such a plan is not one.
    """
    m = CpSatModel(instance, addresses)
    add_order(m)
    add_successions(m)
    add_keeps(m)
    add_spills(m)
    add_inplace(m)
    if addresses:
        add_addresses(m)
        add_inplace_addresses(m)
        add_non_overlap(m)
        if symmetry_breaking:
            add_symmetry_breaking(m)
    add_capacity(m)
    add_objective(m, lower, upper)
    return m


# ---------------------------------------------------------------------- families
def add_order(m: CpSatModel) -> None:
    """Every operator takes one step of its window, no two the same step, producers before consumers."""
    inst, model = m.instance, m.model
    for o in inst.order:
        lo, hi = inst.earliest[o], inst.latest[o]
        m.pos[o] = lo if lo == hi else model.new_int_var(lo, hi, f"pos[{o}]")
        m.op_interval[o] = model.new_fixed_size_interval_var(m.pos[o], 1, f"run[{o}]")
    if inst.fixed:
        return
    model.add_all_different(m.pos[o] for o in inst.order)
    for u, v in inst.graph.dag.edges:
        if not isinstance(m.pos[u], int) or not isinstance(m.pos[v], int):
            model.add(m.pos[u] + 1 <= m.pos[v])


def add_successions(m: CpSatModel) -> None:
    """The uses of each tensor form one path in step order: ``next[t,u,v]`` iff ``v`` follows ``u`` directly."""
    inst, model = m.instance, m.model
    for t in inst.tensors:
        uses = inst.uses[t]
        if len(uses) < 2:
            continue
        pairs = inst.successions(t)
        if all(inst.forced_before(a, b) or inst.forced_before(b, a) for a in uses for b in uses if a < b):
            # every two uses are ordered in every allowed order: the path is fixed
            for u, v in pairs:
                m.nexts[t, u, v] = 1
            continue
        node = {u: i + 1 for i, u in enumerate(uses)}  # node 0 closes the path
        arcs = []
        for u, v in pairs:
            lit = model.new_bool_var(f"next[{t},{u},{v}]")
            m.nexts[t, u, v] = lit
            arcs.append((node[u], node[v], lit))
            model.add(m.pos[u] + 1 <= m.pos[v]).only_enforce_if(lit)
        for u in uses:
            if inst.may_be_first(t, u):
                arcs.append((0, node[u], model.new_bool_var(f"first[{t},{u}]")))
            if inst.may_be_last(t, u):
                arcs.append((node[u], 0, model.new_bool_var(f"last[{t},{u}]")))
        model.add_circuit(arcs)


def add_keeps(m: CpSatModel) -> None:
    """A tensor can only be kept from a use to the use that follows it; with no eviction, it always is."""
    model = m.model
    for (t, u, v), nxt in m.nexts.items():
        if m.min_peak:
            m.keep[t, u, v] = nxt
            continue
        m.keep[t, u, v] = model.new_bool_var(f"keep[{t},{u},{v}]")
        if not isinstance(nxt, int):
            model.add_implication(m.keep[t, u, v], nxt)


def add_spills(m: CpSatModel) -> None:
    """An activation broken between two consecutive uses is stored once (a DRAM copy stays valid)."""
    inst, model = m.instance, m.model
    for (t, u, v), nxt in m.nexts.items():
        if inst.spill_cost(t) == 0 or m.min_peak:
            continue
        if t not in m.spill:
            m.spill[t] = model.new_bool_var(f"spill[{t}]")
        # a succession taken but not kept is a reload, which needs the one store
        model.add(m.spill[t] >= nxt - m.keep[t, u, v])


def add_inplace(m: CpSatModel) -> None:
    """An in-place output may be written over its declared input at the operator's step, which ends the input's stay.

    The input is then not kept from that step to its next use (a later reader pays a reload, and the store it
    needs), and at most one output overwrites it. Graphs without pairs add nothing.
    """
    inst, model = m.instance, m.model
    for o in inst.order:
        per_input: dict[str, list[Any]] = defaultdict(list)
        for out, inp in inst.graph.op(o).inplace:
            if out not in inst.footprint:  # empty tensors occupy nothing: nothing to share
                continue
            kept_after = [m.keep[inp, o, v] for v in inst.uses[inp] if (inp, o, v) in m.keep]
            # the input always stays on after o (min-peak on a fixed path): it cannot be overwritten
            if any(isinstance(k, int) and k == 1 for k in kept_after):
                continue
            w = model.new_bool_var(f"inplace[{o},{out},{inp}]")
            m.over[o, out, inp] = w
            per_input[inp].append(w)
            for k in kept_after:
                if not isinstance(k, int):
                    model.add_bool_or([w.Not(), k.Not()])
        for inp, ws in per_input.items():
            if len(ws) == 1:
                m.overwritten[inp, o] = ws[0]
                continue
            lit = model.new_bool_var(f"overwritten[{inp},{o}]")
            model.add(sum(ws) == lit)  # one input is overwritten by at most one output of a run
            m.overwritten[inp, o] = lit


def add_inplace_addresses(m: CpSatModel) -> None:
    """An output written over its input takes the input's address at that step."""
    for (o, out, inp), w in m.over.items():
        m.model.add(m.addr[out, o] == m.addr[inp, o]).only_enforce_if(w)


def _use_interval(m: CpSatModel, t: str, u: str, gone: Any) -> Any:
    """The step of use ``u`` of ``t``, present unless ``t`` is overwritten in place there.

    Both sides of such a box are optional: with only its address side optional, CP-SAT 9.15's presolve
    was seen to cut off feasible solutions (a random graph's fixed-order optimum 6 B reported as 12 B).
    """
    if (t, u) not in m.use_intervals:
        m.use_intervals[t, u] = m.model.new_optional_fixed_size_interval_var(m.pos[u], 1, gone.Not(), f"use[{t},{u}]")
    return m.use_intervals[t, u]


def _bridge(m: CpSatModel, t: str, u: str, v: str) -> tuple[Any, Any] | None:
    """The step interval ``[pos[u] + 1, pos[v])`` of a kept succession, present iff kept (None if always empty)."""
    key = (t, u, v)
    if key in m.bridges:
        return m.bridges[key]
    inst, model = m.instance, m.model
    keep = m.keep[key]
    pu, pv = m.pos[u], m.pos[v]
    if isinstance(pu, int) and isinstance(pv, int):
        if pv - pu - 1 <= 0:
            m.bridges[key] = None  # type: ignore[assignment]
            return None
        x = model.new_optional_fixed_size_interval_var(pu + 1, pv - pu - 1, keep, f"bridge[{t},{u},{v}]")
    else:
        if inst.latest[v] - inst.earliest[u] - 1 <= 0:
            m.bridges[key] = None  # type: ignore[assignment]
            return None
        length = model.new_int_var(0, inst.latest[v] - inst.earliest[u] - 1, f"gap[{t},{u},{v}]")
        x = model.new_optional_interval_var(pu + 1, length, pv, keep, f"bridge[{t},{u},{v}]")
    m.bridges[key] = (x, keep)
    return m.bridges[key]


def add_addresses(m: CpSatModel) -> None:
    """Each use has an address inside the scratchpad; a kept tensor keeps its address to the next use."""
    inst, model = m.instance, m.model
    for t in inst.tensors:
        for u in inst.uses[t]:
            m.addr[t, u] = model.new_int_var(0, inst.top[t], f"addr[{t},{u}]")
    for (t, u, v), keep in m.keep.items():
        model.add(m.addr[t, u] == m.addr[t, v]).only_enforce_if(keep)


def add_non_overlap(m: CpSatModel) -> None:
    """No two residents of one step overlap: use rectangles and kept bridges in one NoOverlap2D."""
    inst, model = m.instance, m.model
    for t in inst.tensors:
        f = inst.footprint[t]
        for u in inst.uses[t]:
            gone = m.overwritten.get((t, u))
            if gone is None:
                x = m.op_interval[u]
                y = model.new_fixed_size_interval_var(m.addr[t, u], f, f"at[{t},{u}]")
            else:  # overwritten in place: the output's rectangle, at the same address, stands for both
                x = _use_interval(m, t, u, gone)
                y = model.new_optional_fixed_size_interval_var(m.addr[t, u], f, gone.Not(), f"at[{t},{u}]")
            m.boxes.append((x, y))
    for (t, u, v), keep in m.keep.items():
        bridge = _bridge(m, t, u, v)
        if bridge is None:
            continue
        y = model.new_optional_fixed_size_interval_var(m.addr[t, u], inst.footprint[t], keep, f"over[{t},{u},{v}]")
        m.boxes.append((bridge[0], y))
    model.add_no_overlap_2d([b[0] for b in m.boxes], [b[1] for b in m.boxes])


def add_symmetry_breaking(m: CpSatModel) -> None:
    """(Solver help.) Mirroring every address is a bijection of plans; keep the largest use in the lower half."""
    inst = m.instance
    if not inst.tensors or m.min_peak:
        return
    if any(inst.top[t] != inst.capacity - inst.footprint[t] for t in inst.tensors):
        return  # alignment leaves an uneven top: the mirror image may not fit
    t = max(inst.tensors, key=lambda t: (inst.footprint[t], -inst.tensors.index(t)))
    u = inst.uses[t][0]
    m.model.add(2 * m.addr[t, u] <= inst.capacity - inst.footprint[t])


def add_capacity(m: CpSatModel) -> None:
    """(Redundant with the addresses, the whole bound without them.) Residents of a step fit the capacity."""
    inst, model = m.instance, m.model
    limit = inst.capacity
    if m.min_peak:
        m.extent = model.new_int_var(0, inst.capacity, "extent")
        limit = m.extent
        if m.addresses:
            for (t, _u), a in m.addr.items():
                model.add(a + inst.footprint[t] <= m.extent)
    if inst.fixed:
        per_step: dict[int, list[Any]] = defaultdict(list)
        for s, o in enumerate(inst.order):
            op = inst.graph.op(o)
            per_step[s].append(sum(inst.footprint.get(t, 0) for t in set(op.inputs) | set(op.outputs)))
            # the shared bytes of an input overwritten in place count once
            per_step[s].extend(-inst.footprint[t] * lit for (t, u), lit in m.overwritten.items() if u == o)
        for (t, u, v), keep in m.keep.items():
            for s in range(m.pos[u] + 1, m.pos[v]):
                per_step[s].append(inst.footprint[t] * keep)
        for s in sorted(per_step):
            model.add(sum(per_step[s]) <= limit)
        return
    intervals, demands = [], []
    for t in inst.tensors:
        for u in inst.uses[t]:
            gone = m.overwritten.get((t, u))
            if gone is None:
                intervals.append(m.op_interval[u])
            else:  # the shared bytes of an input overwritten in place count once
                intervals.append(_use_interval(m, t, u, gone))
            demands.append(inst.footprint[t])
    for t, u, v in m.keep:
        bridge = _bridge(m, t, u, v)
        if bridge is not None:
            intervals.append(bridge[0])
            demands.append(inst.footprint[t])
    model.add_cumulative(intervals, demands, limit)


def add_objective(m: CpSatModel, lower: int = 0, upper: int | None = None) -> None:
    """Minimise extra traffic: a reload per broken succession, one store per spilled activation.

    In min-peak mode, minimise the extent instead (no succession is ever broken).
    """
    inst, model = m.instance, m.model
    if m.min_peak:
        model.add(m.extent >= lower)
        if upper is not None:
            model.add(m.extent <= upper)
        model.minimize(m.extent)
        return
    terms = []
    breaks_of: dict[str, list[Any]] = defaultdict(list)
    for (t, u, v), keep in m.keep.items():
        # a break: the succession is taken but t is not kept; as a boolean, the objective is a positive sum
        brk = model.new_bool_var(f"break[{t},{u},{v}]")
        model.add(brk + keep == m.nexts[t, u, v])
        m.breaks[t, u, v] = brk
        breaks_of[t].append(brk)
        terms.append(inst.reload_cost(t) * brk)
    for t, s in m.spill.items():
        # a store only with a reload: otherwise a solution that is not optimal (a repaired hint, a search cut
        # short) may pay for a store its plan never makes, and the objective would exceed the replay
        model.add_bool_or(breaks_of[t]).only_enforce_if(s)
    terms.extend(inst.spill_cost(t) * s for t, s in m.spill.items())
    m.cost = sum(terms)
    if lower > 0:
        model.add(m.cost >= lower)
    if upper is not None:
        model.add(m.cost <= upper)
    model.minimize(m.cost)


# ------------------------------------------------------------------------- hints
def add_hint(m: CpSatModel, residency: Residency) -> None:
    """Hint every variable from a solution (a baseline plan's residency); unrepresentable parts are skipped."""
    inst, model = m.instance, m.model
    step = {o: s for s, o in enumerate(residency.order)}
    for o, p in m.pos.items():
        if not isinstance(p, int):
            model.add_hint(p, step[o])
    where = _segment_at(residency)
    broken: set[str] = set()
    for (t, u, v), nxt in m.nexts.items():
        nxt_value = _is_next(inst, step, t, u, v)
        if not isinstance(nxt, int):
            model.add_hint(nxt, nxt_value)
        seg_u, seg_v = where.get((t, step[u])), where.get((t, step[v]))
        kept = nxt_value and seg_u is not None and seg_u is seg_v
        if not m.min_peak:
            model.add_hint(m.keep[t, u, v], kept)
            model.add_hint(m.breaks[t, u, v], nxt_value and not kept)
            if nxt_value and not kept:
                broken.add(t)
    for t, s in m.spill.items():
        model.add_hint(s, t in broken)  # the store goes with the hinted breaks, as the model requires
    taken: dict[tuple[str, str], bool] = {}
    for (o, out, inp), w in m.over.items():
        seg_out, seg_in = where.get((out, step[o])), where.get((inp, step[o]))
        hit = (
            seg_out is not None
            and seg_in is not None
            and seg_out.created
            and seg_in.last == step[o]
            and seg_out.offset == seg_in.offset
            and not taken.get((inp, o), False)
        )
        taken[inp, o] = taken.get((inp, o), False) or hit
        model.add_hint(w, hit)
    for (inp, o), lit in m.overwritten.items():
        if not any(lit is w for w in m.over.values()):  # a literal of its own: two outputs may overwrite it
            model.add_hint(lit, taken.get((inp, o), False))
    for (t, use), a in m.addr.items():
        seg = where.get((t, step[use]))
        if seg is not None and seg.offset % inst.unit == 0 and seg.offset // inst.unit <= inst.top[t]:
            model.add_hint(a, seg.offset // inst.unit)


def _segment_at(residency: Residency) -> dict[tuple[str, int], Stay]:
    out = {}
    for seg in residency.segments:
        for s in range(seg.first, seg.last + 1):
            out[seg.tensor, s] = seg
    return out


def _is_next(inst: Instance, step: Mapping[str, int], t: str, u: str, v: str) -> bool:
    if step[u] >= step[v]:
        return False
    return not any(step[u] < step[w] < step[v] for w in inst.uses[t])


# ------------------------------------------------------------------------ decode
def decode(m: CpSatModel, value: Callable[[Any], int]) -> Residency:
    """The residency of a solution; ``value`` reads a variable (a solver's or a callback's ``Value``).

    Without addresses every offset is 0 (a residency to place, not a plan).
    """
    inst = m.instance

    def val(x: Any) -> int:
        return x if isinstance(x, int) else int(value(x))

    step = {o: val(p) for o, p in m.pos.items()}
    order = tuple(sorted(inst.order, key=step.__getitem__))
    over = {out: inp for (_o, out, inp), w in m.over.items() if val(w)}
    segments = []
    for t in inst.tensors:
        uses = sorted(inst.uses[t], key=step.__getitem__)
        group = [uses[0]]
        for u, v in zip(uses, [*uses[1:], None]):
            if v is not None and val(m.keep[t, u, v]):
                group.append(v)
                continue
            first = group[0]
            offset = val(m.addr[t, first]) * inst.unit if m.addresses else 0
            created = inst.produced(t) and first == inst.uses[t][0]
            written_over = over.get(t) if created else None
            segments.append(Stay(t, step[first], step[group[-1]], offset, created, written_over))
            group = [v] if v is not None else []
    return Residency(order, tuple(segments))


def allocate(instance: Instance, residency: Residency) -> CpSatModel:
    """A feasibility model placing the given segments: the allocation half of the two-phase path."""
    m = CpSatModel(instance, True, placing=residency)
    model = m.model
    ending = {(seg.tensor, seg.last): i for i, seg in enumerate(residency.segments)}
    # an input overwritten in place shares its last step with its output, at the output's address
    shares = {
        ending[seg.over, seg.first]: i
        for i, seg in enumerate(residency.segments)
        if seg.over is not None and (seg.over, seg.first) in ending
    }
    xs, ys = [], []
    for i, seg in enumerate(residency.segments):
        f = instance.footprint[seg.tensor]
        a = model.new_int_var(0, instance.top[seg.tensor], f"addr[{seg.tensor},{i}]")
        m.addr[seg.tensor, str(i)] = a
        length = seg.last - seg.first + (0 if i in shares else 1)
        if length > 0:
            xs.append(model.new_fixed_size_interval_var(seg.first, length, f"live[{seg.tensor},{i}]"))
            ys.append(model.new_fixed_size_interval_var(a, f, f"at[{seg.tensor},{i}]"))
    for i, j in shares.items():
        model.add(m.addr[residency.segments[i].tensor, str(i)] == m.addr[residency.segments[j].tensor, str(j)])
    model.add_no_overlap_2d(xs, ys)
    return m


def placed(m: CpSatModel, residency: Residency, value: Callable[[Any], int]) -> Residency:
    """``residency`` with the offsets an :func:`allocate` solution chose."""
    segs = tuple(
        Stay(
            seg.tensor,
            seg.first,
            seg.last,
            int(value(m.addr[seg.tensor, str(i)])) * m.instance.unit,
            seg.created,
            seg.over,
        )
        for i, seg in enumerate(residency.segments)
    )
    return Residency(residency.order, segs)


def read_solution(m: CpSatModel, value: Callable[[Any], int]) -> Residency:
    """The residency of any model's solution: the placed residency of an :func:`allocate` model, else :func:`decode`."""
    return decode(m, value) if m.placing is None else placed(m, m.placing, value)
