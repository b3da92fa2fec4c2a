"""Every baseline plans with in-place pairs at the budgets they lower (issue 16, part B-1).

Hand-built graphs with their pairs written out, random DAGs with pairs (hypothesis) and the zoo
(activation-only, 1-byte elements): every baseline plans at the in-place ``M_R`` (and ``M_P`` for
the zoo), each plan replays (``Plan.from_steps`` runs :func:`cosma.contract.replay`) and passes
the independent ``../shared/tools/checkplan.py``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
import test_inplace as plain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cosma
from cosma.budgets import graph_budgets
from cosma.contract import Free, Load, Run, Store, replay
from cosma.formulation.instance import Instance
from cosma.formulation.residency import residency_of_plan
from cosma.frontend import declare_inplace
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.methods import METHODS
from cosma.methods.baselines import baseline_names
from cosma.methods.exact import decode
from cosma.methods.place import place_segments
from cosma.options import Options
from cosma.plan import Plan

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
CHECKPLAN = ROOT.parent / "shared" / "tools" / "checkplan.py"


def checker() -> ModuleType:
    assert CHECKPLAN.is_file(), f"the independent checker {CHECKPLAN} is missing"
    spec = importlib.util.spec_from_file_location("checkplan", CHECKPLAN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def overwrites(plan: Plan) -> list[tuple[str, str, str]]:
    """``(op, OUT, IN)`` of every run placing a non-empty output exactly where its declared input is resident."""
    where: dict[str, int] = {}
    found = []
    for step in plan.steps:
        if isinstance(step, Load):
            where[step.tensor] = step.offset
        elif isinstance(step, Free):
            where.pop(step.tensor)
        elif isinstance(step, Run):
            placed = dict(step.outputs)
            for out, inp in plan.graph.op(step.op).inplace:
                if plan.graph.size(out) and where.get(inp) == placed[out]:
                    found.append((step.op, out, inp))
                    where.pop(inp)
            where.update(placed)
    return found


def t(name: str, size: int, kind: str = "activation") -> Tensor:
    return Tensor(name, size, kind, (size,))  # type: ignore[arg-type]


def relu_chain() -> Graph:
    """x -r1-> a -r2-> b -r3-> y, 10 B each, every Relu in place: M_R 10 (20 without pairs)."""
    return declare_inplace(plain.relu_chain())


def skip_add() -> Graph:
    """x -c1-> s -c2-> u; Add(s, u) -> y over u, 8 B each: the Add needs 16 B, M_R 16 (24 without)."""
    return declare_inplace(plain.skip_add())


def read_later() -> Graph:
    """x -r1-> a -r2-> b -r3-> y1; a -r4-> y2, 10 B each, all in place: M_R 10.

    At 10 B, r2 must overwrite a although r4 reads it later: a is stored first (10 B) and reloaded
    for r4 (10 B), 20 B of extra traffic; at 20 B b fits beside a and nothing is extra.
    """
    tensors = [t("x", 10, "input"), t("a", 10), t("b", 10), t("y1", 10, "output"), t("y2", 10, "output")]
    ops = [
        Operator("r1", "Relu", ("x",), ("a",), inplace=(("a", "x"),)),
        Operator("r2", "Relu", ("a",), ("b",), inplace=(("b", "a"),)),
        Operator("r3", "Relu", ("b",), ("y1",), inplace=(("y1", "b"),)),
        Operator("r4", "Relu", ("a",), ("y2",), inplace=(("y2", "a"),)),
    ]
    return Graph.build("read_later", tensors, ops)


@pytest.mark.parametrize(("make", "m_r", "without"), [(relu_chain, 10, 20), (skip_add, 16, 24), (read_later, 10, 20)])
@pytest.mark.parametrize("name", baseline_names())
def test_every_baseline_plans_at_the_inplace_m_r_using_a_pair(make, m_r: int, without: int, name: str) -> None:
    graph = make()
    assert (graph.min_scratchpad, graph.without_inplace().min_scratchpad) == (m_r, without)
    plan = METHODS[name](graph, Accelerator(m_r), Options())
    assert overwrites(plan), "no run writes an output over its input"
    data = plan.to_dict()
    assert replay(data).extra_bytes == plan.extra_bytes
    result = checker().replay(data)
    assert result["extra_bytes"] == plan.extra_bytes and result["peak_resident_bytes"] <= m_r


def test_an_input_read_later_is_stored_overwritten_and_reloaded() -> None:
    graph = read_later()
    plan = METHODS["default+belady"](graph, Accelerator(10), Options())
    assert plan.steps == (
        Load("x", 0),
        Run("r1", (("a", 0),)),
        Store("a"),  # r4 reads a later: its copy first
        Run("r2", (("b", 0),)),
        Run("r3", (("y1", 0),)),
        Store("y1"),
        Free("y1"),
        Load("a", 0),
        Run("r4", (("y2", 0),)),
        Store("y2"),
        Free("y2"),
    )
    assert plan.extra_bytes == 20
    # with room beside a, overwriting it would cost 20 B and a free range costs nothing
    roomy = METHODS["default+belady"](graph, Accelerator(20), Options())
    assert roomy.extra_bytes == 0 and ("r2", "b", "a") not in overwrites(roomy)


def test_overwrite_only_when_cheaper_than_evicting() -> None:
    """At 20 B, r2's output finds no free range beside a (read later by the Add) and z (an input read
    at the end): evicting z costs its 10 B reload, overwriting a its store and reload, 20 B."""
    tensors = [t("z", 10, "input"), t("x", 10, "input"), t("a", 10), t("b", 10)]
    tensors += [t("w", 10, "output"), t("y", 10, "output"), t("v", 10, "output")]
    ops = [
        Operator("p", "Conv", ("z",), ("w",)),
        Operator("r1", "Relu", ("x",), ("a",), inplace=(("a", "x"),)),
        Operator("r2", "Relu", ("a",), ("b",), inplace=(("b", "a"),)),
        Operator("add", "Add", ("a", "b"), ("y",), inplace=(("y", "b"),)),
        Operator("q", "Conv", ("z",), ("v",)),
    ]
    graph = Graph.build("cheaper", tensors, ops)
    assert graph.min_scratchpad == 20
    plan = METHODS["default+belady"](graph, Accelerator(20), Options())
    assert ("r2", "b", "a") not in overwrites(plan) and ("add", "y", "b") in overwrites(plan)
    assert plan.extra_bytes == 10


def test_plans_with_pairs_read_back_into_residencies_that_replay() -> None:
    for make in (relu_chain, skip_add, read_later):
        graph = make()
        for name in baseline_names():
            plan = METHODS[name](graph, Accelerator(graph.min_scratchpad), Options())
            again = residency_of_plan(plan).to_plan(graph, plan.accelerator, method="again")
            assert again.extra_bytes == plan.extra_bytes


# ------------------------------------------------------------------------------ random DAGs
@st.composite
def paired_dags(draw: st.DrawFn, max_ops: int = 8) -> Graph:
    """A random DAG whose operators declare in-place pairs: an output may take an input's size and overwrite it."""
    size = st.integers(0, 40)
    tensors = [t(f"in{i}", draw(size), "input") for i in range(draw(st.integers(1, 2)))]
    tensors += [t(f"w{i}", draw(size), "weight") for i in range(draw(st.integers(0, 1)))]
    bytes_of = {x.name: x.bytes for x in tensors}
    available = [x.name for x in tensors]
    ops = []
    for i in range(draw(st.integers(1, max_ops))):
        recent = available[-4:]
        pool = st.sampled_from(recent) if draw(st.booleans()) else st.sampled_from(available)
        inputs = draw(st.lists(pool, min_size=0, max_size=3, unique=True))
        outputs, pairs, free = [], [], list(inputs)
        for j in range(draw(st.integers(1, 2))):
            name = f"t{i}_{j}"
            kind = draw(st.sampled_from(["activation", "activation", "activation", "output"]))
            if free and draw(st.booleans()):
                inp = draw(st.sampled_from(free))
                free.remove(inp)
                pairs.append((name, inp))
                tensors.append(t(name, bytes_of[inp], kind))
            else:
                tensors.append(t(name, draw(size), kind))
            bytes_of[name] = tensors[-1].bytes
            outputs.append(name)
        ops.append(Operator(f"op{i}", "Op", tuple(inputs), tuple(outputs), inplace=tuple(pairs)))
        available += outputs
    return Graph.build("random", tensors, ops)


@given(paired_dags(), st.sampled_from(["first-fit", "best-fit"]), st.sampled_from([1, 4]), st.integers(0, 20))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_baseline_is_valid_at_the_inplace_m_r(graph: Graph, allocator: str, alignment: int, slack: int) -> None:
    capacity = max(1, graph.working_set(graph.largest_op(alignment).name, alignment)) + slack
    options = Options(allocator=allocator)
    for name in baseline_names():
        plan = METHODS[name](graph, Accelerator(capacity, alignment), options)  # replayed when built
        assert plan.summary.peak_resident_bytes <= capacity
        assert checker().replay(plan.to_dict())["extra_bytes"] == plan.extra_bytes
        again = residency_of_plan(plan).to_plan(graph, plan.accelerator, method="again")  # drops idle traffic
        assert again.extra_bytes <= plan.extra_bytes


# ----------------------------------------------------------------------------------------- zoo
ZOO = ["tiny_cnn", "resnet50", "mobilenet_v2"]  # models whose activation-only graph has pairs


@pytest.mark.parametrize("model", ZOO)
def test_zoo_every_baseline_at_m_r_and_m_p_with_inplace(model: str) -> None:
    path = MODELS / f"{model}.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    graph = cosma.load_onnx(path, element_bytes=1).without_weights()
    assert any(o.inplace for o in graph.ops)
    check = checker()
    b = graph_budgets(graph)
    for budget in (b.m_r, b.m_p):
        for name in baseline_names():
            plan = METHODS[name](graph, Accelerator(budget), Options())
            result = check.replay(plan.to_dict())
            assert result["extra_bytes"] == plan.extra_bytes and result["peak_resident_bytes"] <= budget
            assert overwrites(plan)


@pytest.mark.parametrize("make", [relu_chain, skip_add, read_later])
def test_placing_a_residency_keeps_its_pairs_at_one_address(make) -> None:
    """With every address forgotten, the offline allocator places an in-place stay and its input's as one buffer,
    so the residency fits the in-place M_R again."""
    graph = make()
    acc = Accelerator(graph.min_scratchpad)
    plan = METHODS["default+belady"](graph, acc, Options())
    residency = residency_of_plan(plan)
    assert any(s.over for s in residency.segments)
    blank = replace(residency, segments=tuple(replace(s, offset=0) for s in residency.segments))
    placed = place_segments(Instance.build(graph, acc, "fixed-order", plan.order), blank, time_limit=10)
    assert placed is not None
    again = placed.to_plan(graph, acc, method="placed")
    assert again.extra_bytes <= plan.extra_bytes and overwrites(again)


# ------------------------------------------------------------------- dc, decode, min-peak (issue 16, B-3)
#: the exact joint reference: limited by deterministic time (work), the wall clock only a safety net
EXACT = Options(time_limit=600.0, solver_params={"max_deterministic_time": "10"})


def dc_options(time_limit: float, segment_ops: int | None = None) -> Options:
    return Options(time_limit=time_limit, segment_ops=segment_ops, quiet=True)


@given(paired_dags(), st.integers(1, 4))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_dc_at_the_inplace_m_r_is_valid_never_worse_and_bounds_the_exact_optimum(
    graph: Graph, segment_ops: int
) -> None:
    """Windows small enough to do the work: their operators keep their pairs and their stitched solutions too."""
    acc = Accelerator(max(1, graph.min_scratchpad))
    plan = METHODS["dc"](graph, acc, dc_options(5, segment_ops))
    assert checker().replay(plan.to_dict())["extra_bytes"] == plan.extra_bytes
    assert plan.extra_bytes <= min(METHODS[name](graph, acc, Options()).extra_bytes for name in baseline_names())
    exact = METHODS["joint"](graph, acc, EXACT)
    if exact.summary.status == "optimal":
        assert plan.summary.bound is not None and plan.summary.bound <= exact.extra_bytes <= plan.extra_bytes


@pytest.mark.parametrize("model", ["nasnet_a", "randwire_ws"])
def test_zoo_dc_at_the_inplace_m_r(model: str) -> None:
    """Activation-only, 1-byte elements, a short limit: dc's plan overwrites, passes checkplan.py and is never
    worse than the best baseline (its starting point)."""
    path = MODELS / f"{model}.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    graph = cosma.load_onnx(path, element_bytes=1).without_weights()
    budget = graph_budgets(graph).m_r
    plan = METHODS["dc"](graph, Accelerator(budget), dc_options(4))
    result = checker().replay(plan.to_dict())
    assert result["extra_bytes"] == plan.extra_bytes and result["peak_resident_bytes"] <= budget
    assert plan.extra_bytes <= plan.summary.details["baseline_extra_bytes"]
    assert overwrites(plan)


@pytest.mark.parametrize("make", [relu_chain, skip_add, read_later])
def test_decode_places_a_residency_with_broken_addresses_again_keeping_its_pairs(make) -> None:
    """exact.decode's fallback (MILP rounding breaks an address): every offset 0 replays invalid at the in-place
    M_R, cpsat.allocate places each pair at one address, and the plan overwrites again."""
    graph = make()
    acc = Accelerator(graph.min_scratchpad)
    plan = METHODS["default+belady"](graph, acc, Options())
    residency = residency_of_plan(plan)
    broken = replace(residency, segments=tuple(replace(s, offset=0) for s in residency.segments))
    decoded = decode(Instance.build(graph, acc, "fixed-order", plan.order), broken, "cpsat")
    assert decoded is not None and decoded.extra_bytes == plan.extra_bytes
    assert checker().replay(decoded.to_dict())["extra_bytes"] == decoded.extra_bytes
    assert overwrites(decoded)


@pytest.mark.parametrize(("make", "peak"), [(relu_chain, 10), (skip_add, 16), (read_later, 20)])
def test_min_peak_mode_finds_the_inplace_peak(make, peak: int) -> None:
    """With room to spare, min-peak's extent is the in-place minimum peak (below the one without pairs)."""
    graph = make()
    plan = METHODS["min-peak"](graph, Accelerator(1000), Options(time_limit=30))
    assert plan.summary.details["extent_bytes"] == peak < graph.without_inplace().peak(plan.order)
    assert checker().replay(plan.to_dict())["extra_bytes"] == plan.extra_bytes == 0
    assert overwrites(plan)
