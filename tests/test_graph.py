"""Graph analyses on the named fixture graphs (hand-derived numbers) and Graph.build's checks."""

from __future__ import annotations

import networkx as nx
import pytest
from graphs import FIXTURES, Fixture, chain, multi_output, skip, two_branches

from cosma.graph import Graph, GraphError, Lifetime, Operator, Tensor, round_up


@pytest.fixture(params=sorted(FIXTURES))
def fx(request: pytest.FixtureRequest) -> Fixture:
    return FIXTURES[request.param]()


def test_working_set_and_min_scratchpad(fx: Fixture) -> None:
    g = fx.graph
    assert {o.name: g.working_set(o.name) for o in g.ops} == fx.working_set
    assert g.min_scratchpad == fx.min_scratchpad
    assert g.working_set(g.largest_op().name) == fx.min_scratchpad


def test_compulsory_bytes(fx: Fixture) -> None:
    assert fx.graph.compulsory_bytes == fx.compulsory_bytes


def test_lifetimes_under_default_order(fx: Fixture) -> None:
    lifetimes = fx.graph.lifetimes()
    assert lifetimes == {t: Lifetime(*span) for t, span in fx.lifetimes.items()}
    assert fx.graph.lifetimes(fx.graph.default_order) == lifetimes


def test_live_bytes_and_peak_per_order(fx: Fixture) -> None:
    g = fx.graph
    for order, live in fx.live_bytes.items():
        assert g.is_topological(order)
        assert tuple(g.live_bytes(order)) == live
        assert g.peak(order) == max(live)


def test_min_peak_is_least_peak_over_all_orders(fx: Fixture) -> None:
    """Exhaustive search over every topological order confirms the hand-derived M_P."""
    g = fx.graph
    orders = list(nx.all_topological_sorts(g.dag))
    assert all(g.is_topological(o) for o in orders)
    assert min(g.peak(o) for o in orders) == fx.min_peak
    assert fx.min_peak >= fx.min_scratchpad


def test_without_weights_drops_weights_everywhere() -> None:
    g = chain().graph.without_weights()
    assert [t.name for t in g.tensors] == ["x", "t1", "t2", "out"]
    assert g.op("a").inputs == ("x",) and g.op("b").inputs == ("t1",)
    assert {o.name: g.working_set(o.name) for o in g.ops} == {"a": 30, "b": 26, "c": 10}
    assert g.min_scratchpad == 30
    assert g.compulsory_bytes == 14  # x + out
    m = multi_output().graph.without_weights()
    assert (m.min_scratchpad, m.compulsory_bytes) == (12, 16)


def test_with_element_bytes_scales_by_elements(fx: Fixture) -> None:
    g2 = fx.graph.with_element_bytes(2)
    assert [t.bytes for t in g2.tensors] == [2 * t.bytes for t in fx.graph.tensors]
    assert g2.min_scratchpad == 2 * fx.min_scratchpad
    assert g2.compulsory_bytes == 2 * fx.compulsory_bytes
    assert g2.peak() == 2 * fx.graph.peak()
    assert fx.graph.with_element_bytes(1) == fx.graph


def test_working_set_rounds_each_tensor_up_to_alignment() -> None:
    g = skip().graph  # b reads s(6) and writes u(10)
    assert g.working_set("b", alignment=4) == 8 + 12
    assert g.working_set("c", alignment=8) == 16 + 8
    assert g.largest_op(alignment=8).name == "b"  # 16 + 16 = 32 > c's 24
    assert round_up(0, 8) == 0 and round_up(1, 8) == 8 and round_up(16, 8) == 16


def test_largest_op_takes_first_on_ties() -> None:
    g = two_branches().graph  # a and c both need 22; a comes first
    assert g.largest_op().name == "a"


def test_dag_and_topological_orders() -> None:
    g = two_branches().graph
    assert set(g.dag.edges) == {("a", "b"), ("c", "d"), ("b", "e"), ("d", "e")}
    assert g.dag["b"]["e"]["tensors"] == ["s1"]
    assert g.is_topological(("c", "d", "a", "b", "e"))
    assert not g.is_topological(("b", "a", "c", "d", "e"))  # b before its producer
    assert not g.is_topological(("a", "b", "c", "d"))  # missing e
    assert not g.is_topological(("a", "b", "c", "d", "d"))  # repeats d
    assert nx.is_frozen(g.dag)


def test_producer_and_consumers() -> None:
    g = skip().graph
    assert g.producer("s") == "a" and g.producer("x") is None
    assert g.consumers("s") == ("b", "d") and g.consumers("y") == ()


def test_empty_graph_has_zero_budgets() -> None:
    g = Graph.build("empty", [Tensor("x", 3, "input")], [])
    assert (g.min_scratchpad, g.peak(), g.compulsory_bytes, g.live_bytes()) == (0, 0, 0, [])


def test_unread_input_is_not_compulsory() -> None:
    g = Graph.build(
        "unread",
        [Tensor("x", 3, "input"), Tensor("unused", 100, "weight"), Tensor("y", 2, "output")],
        [Operator("a", "Relu", ("x",), ("y",))],
    )
    assert g.compulsory_bytes == 5
    assert "unused" not in g.lifetimes()


X = Tensor("x", 4, "input")
Y = Tensor("y", 4, "output")
A = Tensor("h", 4, "activation")


@pytest.mark.parametrize(
    ("tensors", "ops", "message"),
    [
        ([X, X, Y], [Operator("a", "", ("x",), ("y",))], "tensor name 'x' is repeated"),
        ([X, Tensor("y", 4, "temp")], [], "kind 'temp'"),  # type: ignore[arg-type]
        ([X, Tensor("y", -1, "output")], [Operator("a", "", ("x",), ("y",))], "negative size"),
        ([X, Y, A], [Operator("a", "", ("x",), ("y",)), Operator("a", "", ("x",), ("h",))], "operator name 'a'"),
        ([X, Y], [Operator("a", "", ("x", "nope"), ("y",))], "unknown tensor 'nope'"),
        ([X, Y], [Operator("a", "", ("x",), ("y", "nope"))], "unknown tensor 'nope'"),
        ([X, Y], [Operator("a", "", ("x", "y"), ("y",))], "reads and writes the same tensor"),
        ([X, Y], [Operator("a", "", ("x", "x"), ("y",))], "lists a tensor twice"),
        ([X, Y], [Operator("a", "", ("x",), ("y", "y"))], "lists a tensor twice"),
        ([X, Y, A], [Operator("b", "", ("h",), ("y",)), Operator("a", "", ("x",), ("h",))], "topological order"),
        ([X, Y], [Operator("a", "", (), ("x", "y"))], "produces 'x', which is of kind input"),
        ([X, Y, Tensor("w", 1, "weight")], [Operator("a", "", ("x",), ("y", "w"))], "which is of kind weight"),
        ([X, Y], [Operator("a", "", ("x",), ("y",)), Operator("b", "", ("x",), ("y",))], "produced by both"),
        ([X, Y, A], [Operator("a", "", ("x",), ("y",))], "tensor 'h' of kind activation has no producing"),
        ([X, Y], [], "tensor 'y' of kind output has no producing"),
    ],
)
def test_build_rejects_broken_graphs(tensors: list[Tensor], ops: list[Operator], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        Graph.build("broken", tensors, ops)


def test_graph_is_immutable_and_hashable() -> None:
    g = chain().graph
    assert hash(g) == hash(chain().graph) and len({g, chain().graph, skip().graph}) == 2
    with pytest.raises(AttributeError):
        g.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        g.tensor_by_name["x"] = Tensor("x", 1, "input")  # type: ignore[index]
