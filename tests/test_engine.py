"""The fixed-order engine (cosma.replace.engine.plan_fixed_order) and the online arena it uses.

Properties on random DAGs: every plan replays valid, runs the given order, pays the
compulsory traffic, fits the scratchpad, and needs no extra traffic once the scratchpad holds
every tensor at once (aligned). With less room, first-fit fragmentation may force evictions
even at capacity >= peak, so nothing stronger is asserted there.
"""

from __future__ import annotations

import pytest
from graphs import FIXTURES, Fixture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosma.alloc.online import ALLOCATORS, Arena
from cosma.contract import Free, Load, Run, Store, replay
from cosma.errors import BudgetError, OptionError
from cosma.graph import Graph, Operator, Tensor, round_up
from cosma.hardware import Accelerator, check_budget
from cosma.replace.engine import plan_fixed_order
from cosma.replace.registry import policy_names


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    """A random operator DAG: 1..3 inputs, 0..3 weights, 1..8 operators with 1..2 outputs each, sizes 0..48."""
    size = st.integers(0, 48)
    tensors = [Tensor(f"in{i}", draw(size), "input") for i in range(draw(st.integers(1, 3)))]
    tensors += [Tensor(f"w{i}", draw(size), "weight") for i in range(draw(st.integers(0, 3)))]
    available = [t.name for t in tensors]
    ops = []
    for i in range(draw(st.integers(1, 8))):
        inputs = draw(st.lists(st.sampled_from(available), min_size=0, max_size=3, unique=True))
        outputs = []
        for j in range(draw(st.integers(1, 2))):
            kind = draw(st.sampled_from(["activation", "activation", "output"]))
            tensors.append(Tensor(f"t{i}_{j}", draw(size), kind))
            outputs.append(tensors[-1].name)
        ops.append(Operator(f"op{i}", "Op", tuple(inputs), tuple(outputs)))
        available += outputs
    return Graph.build("random", tensors, ops)


@st.composite
def topological_orders(draw: st.DrawFn, graph: Graph) -> tuple[str, ...]:
    """A random topological order: repeatedly run one of the ready operators."""
    pending = {o.name: {graph.producer(t) for t in o.inputs} - {None} for o in graph.ops}
    done: list[str] = []
    while pending:
        ready = sorted(o for o, preds in pending.items() if preds <= set(done))
        chosen = draw(st.sampled_from(ready))
        done.append(chosen)
        del pending[chosen]
    return tuple(done)


def aligned_sum(graph: Graph, alignment: int) -> int:
    return sum(round_up(t.bytes, alignment) for t in graph.tensors)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Graph, tuple[str, ...], Accelerator, str, str]:
    graph = draw(dags())
    order = draw(topological_orders(graph))
    alignment = draw(st.integers(1, 8))
    need = max(1, graph.working_set(graph.largest_op(alignment).name, alignment))
    top = max(need, graph.peak(order), aligned_sum(graph, alignment)) + 8
    capacity = draw(st.one_of(st.just(need), st.integers(need, top)))
    return (
        graph,
        order,
        Accelerator(capacity, alignment),
        draw(st.sampled_from(ALLOCATORS)),
        draw(st.sampled_from(policy_names())),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_engine_plans_are_valid_on_random_dags(case: tuple[Graph, tuple[str, ...], Accelerator, str, str]) -> None:
    graph, order, accelerator, allocator, policy = case
    plan = plan_fixed_order(graph, accelerator, order, allocator=allocator, policy=policy)
    result = replay(plan.to_dict())  # the summary claimed is the one the replay gives
    assert plan.order == order
    assert result.compulsory_bytes == graph.compulsory_bytes
    assert result.extra_bytes >= 0
    assert result.peak_resident_bytes <= accelerator.scratchpad_bytes
    if accelerator.scratchpad_bytes >= aligned_sum(graph, accelerator.alignment):
        assert plan.extra_bytes == 0
    # the engine passes bound 0: it proves optimality exactly when no extra traffic was needed
    assert (plan.summary.status == "optimal") == (plan.extra_bytes == 0)
    assert plan.summary.details == {"allocator": allocator, "policy": policy}


@settings(max_examples=100, deadline=None)
@given(dags(), st.integers(1, 8))
def test_budget_below_aligned_mr_names_the_operator(graph: Graph, alignment: int) -> None:
    op = graph.largest_op(alignment)
    need = graph.working_set(op.name, alignment)
    if need < 2:
        return  # no positive scratchpad below it
    with pytest.raises(BudgetError) as info:
        plan_fixed_order(graph, Accelerator(need - 1, alignment))
    assert info.value.op == op.name and info.value.working_set == need
    assert repr(op.name) in str(info.value) and f"--scratchpad {need}" in str(info.value)
    plan_fixed_order(graph, Accelerator(need, alignment))  # and at exactly M_R it plans


@pytest.fixture(params=sorted(FIXTURES))
def fx(request: pytest.FixtureRequest) -> Fixture:
    return FIXTURES[request.param]()


@pytest.mark.parametrize("policy", policy_names())
@pytest.mark.parametrize("allocator", ALLOCATORS)
def test_fixtures_never_beat_the_hand_derived_optimum(fx: Fixture, allocator: str, policy: str) -> None:
    for budget, optimum in fx.optimal_extra.items():
        for order in fx.live_bytes:
            plan = plan_fixed_order(fx.graph, Accelerator(budget), order, allocator=allocator, policy=policy)
            assert plan.extra_bytes >= optimum
        room = aligned_sum(fx.graph, 1)
        assert plan_fixed_order(fx.graph, Accelerator(room), allocator=allocator, policy=policy).extra_bytes == 0


def test_budget_error_on_fixtures(fx: Fixture) -> None:
    with pytest.raises(BudgetError, match=f"operator '{fx.graph.largest_op().name}' needs {fx.min_scratchpad} B"):
        plan_fixed_order(fx.graph, Accelerator(fx.min_scratchpad - 1))
    check_budget(fx.graph, Accelerator(fx.min_scratchpad))


def test_skip_connection_at_m_r_spills_the_skip_tensor() -> None:
    """At 16 bytes s must leave while c runs; whatever else happens, s is stored before it is freed."""
    fx = FIXTURES["skip"]()
    plan = plan_fixed_order(fx.graph, Accelerator(16))
    assert plan.extra_bytes >= 12
    steps = list(plan.steps)
    first_free = steps.index(Free("s"))
    assert Store("s") in steps[:first_free]
    assert any(isinstance(s, Load) and s.tensor == "s" for s in steps[first_free:])


def test_engine_rejects_bad_arguments() -> None:
    g = FIXTURES["diamond"]().graph
    with pytest.raises(OptionError, match="unknown allocator 'next-fit'"):
        plan_fixed_order(g, Accelerator(64), allocator="next-fit")
    with pytest.raises(OptionError, match="unknown replacement policy 'lru'"):
        plan_fixed_order(g, Accelerator(64), policy="lru")
    with pytest.raises(ValueError, match="not a topological order"):
        plan_fixed_order(g, Accelerator(64), ("b", "a", "c", "d"))


def test_method_name_and_outputs_stored_once() -> None:
    fx = FIXTURES["fan_out"]()
    plan = plan_fixed_order(fx.graph, Accelerator(64), method="mine")
    assert plan.summary.method == "mine"
    assert [s.tensor for s in plan.steps if isinstance(s, Store)] == ["o1", "o2", "o3"]
    assert plan_fixed_order(fx.graph, Accelerator(64), policy="greedy").summary.method == "fixed+greedy"


def test_empty_graph_plans_nothing() -> None:
    g = Graph.build("empty", [Tensor("x", 3, "input")], [])
    plan = plan_fixed_order(g, Accelerator(1))
    assert plan.steps == () and plan.extra_bytes == 0


# ------------------------------------------------------------------------------- arena
def test_arena_first_fit_and_best_fit() -> None:
    arena = Arena(32, alignment=4)
    arena.place("a", 0, 6)  # [0, 6), next aligned start 8
    arena.place("b", 12, 4)  # gap [8, 12)
    arena.place("c", 24, 2)  # gap [16, 24), then [28, 32)
    assert list(arena.gaps()) == [(8, 12), (16, 24), (28, 32)]
    assert arena.find(4, "first-fit") == 8
    assert arena.find(4, "best-fit") == 8  # smallest gap, lowest address on ties
    assert arena.find(5, "first-fit") == 16
    assert arena.find(3, "best-fit") == 8
    assert arena.find(9) is None
    assert arena.find(0) == 0
    assert arena.used == 12 and "b" in arena and arena.offset("b") == 12
    assert list(arena.occupants()) == [(0, 6, "a"), (12, 16, "b"), (24, 26, "c")]
    arena.remove("b")
    assert list(arena.gaps()) == [(8, 24), (28, 32)]
    with pytest.raises(ValueError, match="unknown allocator"):
        arena.find(1, "worst-fit")


def test_best_fit_prefers_the_tightest_gap() -> None:
    arena = Arena(20)
    arena.place("a", 4, 2)  # gap [0, 4)
    arena.place("b", 9, 1)  # gap [6, 9) is the tightest for 3 bytes
    assert arena.find(3, "first-fit") == 0
    assert arena.find(3, "best-fit") == 6


@pytest.mark.parametrize(
    ("offset", "size", "message"),
    [(2, 4, "overlaps"), (6, 4, "overlaps"), (30, 4, "out of bounds"), (9, 2, "misaligned"), (4, 1, "already")],
)
def test_arena_rejects_bad_placements(offset: int, size: int, message: str) -> None:
    arena = Arena(32, alignment=2)
    arena.place("x", 4, 4)
    name = "x" if message == "already" else "y"
    with pytest.raises(ValueError, match=message):
        arena.place(name, offset, size)
    assert list(arena.occupants()) == [(4, 8, "x")]
    assert name == "x" or name not in arena


def test_arena_zero_size_tensors_take_no_room() -> None:
    arena = Arena(8)
    arena.place("x", 0, 8)
    arena.place("e", 3, 0)
    assert "e" in arena and list(arena.occupants()) == [(0, 8, "x")]
    arena.remove("e")
    assert "e" not in arena


def test_engine_plan_on_witness_order_is_valid() -> None:
    for make in FIXTURES.values():
        fx = make()
        for steps in fx.witnesses.values():
            order = tuple(s.op for s in steps if isinstance(s, Run))
            plan = plan_fixed_order(fx.graph, Accelerator(fx.min_scratchpad), order)
            assert plan.order == order
