"""In-place operators: the front end's pairs, the memory analyses that honour them, the contract's replay.

Every figure is derived by hand in the test's docstring; ``inplace=False`` (or a graph without pairs)
must give exactly the figures of before.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner
from onnx_builders import conv_bn_relu, fan_out_relu, model, node, value, zeros

from cosma.budgets import graph_budgets
from cosma.cli import main
from cosma.contract import Free, Load, Run, Store, replay
from cosma.errors import GraphError, PlanInvalid
from cosma.frontend import declare_inplace, load_onnx
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.plan import Plan
from cosma.schedule import min_peak_order
from cosma.schedule.segments import build_segment
from cosma.viz import trace

MODELS = Path(__file__).resolve().parent.parent / "models"


def t(name: str, size: int, kind: str = "activation", shape: tuple[int, ...] | None = None) -> Tensor:
    return Tensor(name, size, kind, shape if shape is not None else (size,))  # type: ignore[arg-type]


def relu_chain() -> Graph:
    """x(10) -Relu-> a -Relu-> b -Relu-> y: each step holds its input and its output, 20 B."""
    tensors = [t("x", 10, "input"), t("a", 10), t("b", 10), t("y", 10, "output")]
    ops = [
        Operator("r1", "Relu", ("x",), ("a",)),
        Operator("r2", "Relu", ("a",), ("b",)),
        Operator("r3", "Relu", ("b",), ("y",)),
    ]
    return Graph.build("relu_chain", tensors, ops)


def skip_add() -> Graph:
    """x -Conv-> s -Conv-> u; Add(s, u) -> y, 8 B each: the Add holds s, u and y, 24 B."""
    tensors = [t("x", 8, "input"), t("s", 8), t("u", 8), t("y", 8, "output")]
    ops = [
        Operator("c1", "Conv", ("x",), ("s",)),
        Operator("c2", "Conv", ("s",), ("u",)),
        Operator("add", "Add", ("s", "u"), ("y",)),
    ]
    return Graph.build("skip_add", tensors, ops)


def broadcast_add() -> Graph:
    """x[4,8] -Conv-> h[4,8]; Add(h, b[8]) -> y[4,8] (1 B per element): the Add holds 32 + 8 + 32 B."""
    tensors = [
        t("x", 32, "input", (4, 8)),
        t("b", 8, "weight", (8,)),
        t("h", 32, "activation", (4, 8)),
        t("y", 32, "output", (4, 8)),
    ]
    ops = [Operator("conv", "Conv", ("x",), ("h",)), Operator("add", "Add", ("h", "b"), ("y",))]
    return Graph.build("broadcast_add", tensors, ops)


def read_later() -> Graph:
    """x -Relu-> a -Relu-> b; Add(a, b) -> y, 10 B each: a is read again after r2."""
    tensors = [t("x", 10, "input"), t("a", 10), t("b", 10), t("y", 10, "output")]
    ops = [
        Operator("r1", "Relu", ("x",), ("a",)),
        Operator("r2", "Relu", ("a",), ("b",)),
        Operator("add", "Add", ("a", "b"), ("y",)),
    ]
    return Graph.build("read_later", tensors, ops)


# ------------------------------------------------------------------------------- front end pass
def test_pairs_declared_for_elementwise_operators_only() -> None:
    assert [o.inplace for o in declare_inplace(relu_chain()).ops] == [(("a", "x"),), (("b", "a"),), (("y", "b"),)]
    # the Add prefers u, which it alone reads (dead after it in every order), over the skip s
    assert [o.inplace for o in declare_inplace(skip_add()).ops] == [(), (), (("y", "u"),)]
    # a broadcast operand (the bias) never qualifies; the same-size operand does
    assert [o.inplace for o in declare_inplace(broadcast_add()).ops] == [(), (("y", "h"),)]


def test_fused_group_keeps_a_pair_only_when_elementwise() -> None:
    """Conv+BN+Relu fused is a Conv: no pair. Relu feeding an Add with its own input: Relu and Add both pair."""
    g = load_onnx(conv_bn_relu())
    assert "Relu" in g.ops[0].fused and g.ops[0].inplace == ()
    g = load_onnx(fan_out_relu())
    pairs = {o.op_type: o.inplace for o in g.ops}
    assert pairs["Conv"] == () and pairs["Relu"] == (("r", "c"),) and pairs["Add"] == (("y", "r"),)
    add_relu = model(
        [node("Conv", ["x", "w"], ["c"], "conv"), node("Add", ["c", "x"], ["s"], "add"), node("Relu", ["s"], ["y"])],
        [value("x", [1, 4, 8, 8])],
        [value("y", [1, 4, 8, 8])],
        [zeros("w", (4, 4, 1, 1))],
    )
    g = load_onnx(add_relu)
    add = g.op("add")
    assert add.fused == ("Relu",) and add.inplace == (("y", "c"),)


def test_no_inplace_gives_a_graph_without_pairs() -> None:
    g = load_onnx(fan_out_relu(), inplace=False)
    assert all(o.inplace == () for o in g.ops)
    stripped = load_onnx(fan_out_relu()).without_inplace()
    assert (g.tensors, g.ops) == (stripped.tensors, stripped.ops)


def test_graph_refuses_unsound_pairs() -> None:
    tensors = [t("x", 10, "input"), t("y", 12, "output")]
    with pytest.raises(GraphError, match="of other bytes"):
        Graph.build("g", tensors, [Operator("r", "Relu", ("x",), ("y",), inplace=(("y", "x"),))])
    with pytest.raises(GraphError, match="outside its outputs/inputs"):
        Graph.build("g", tensors, [Operator("r", "Relu", ("x",), ("y",), inplace=(("x", "y"),))])


def test_variants_keep_or_drop_pairs() -> None:
    g = declare_inplace(broadcast_add())
    assert g.without_weights().op("add").inplace == (("y", "h"),)
    same = Graph.build("w", [t("w", 8, "weight"), t("y", 8, "output")], [Operator("n", "Neg", ("w",), ("y",))])
    assert declare_inplace(same).without_weights().op("n").inplace == ()
    # float32 -> int8: not equal bytes, no pair; at one byte per element they are
    q = Graph.build(
        "q",
        [Tensor("x", 16, "input", (4,), "float32"), Tensor("y", 4, "output", (4,), "int8")],
        [Operator("q", "QuantizeLinear", ("x",), ("y",))],
    )
    assert declare_inplace(q).op("q").inplace == ()
    assert declare_inplace(q.with_element_bytes(1)).op("q").inplace == (("y", "x"),)
    assert declare_inplace(relu_chain()).with_element_bytes(2).op("r2").inplace == (("b", "a"),)


# ------------------------------------------------------------------------------------ analyses
@pytest.mark.parametrize(
    ("make", "before", "after"),
    [
        # (M_R, live bytes of the default order) without pairs, then with them
        (relu_chain, (20, [20, 20, 20]), (10, [10, 10, 10])),
        (skip_add, (24, [16, 16, 24]), (16, [16, 16, 16])),
        (broadcast_add, (72, [64, 72]), (64, [64, 40])),
        # r2 cannot overwrite a in a plan that never evicts (the Add reads a later): 20 there, not 10;
        # a working set can (store a, overwrite it, reload it), so M_R is the Add's 30 - 10
        (read_later, (30, [20, 20, 30]), (20, [10, 20, 20])),
    ],
)
def test_hand_derived_drop(make, before: tuple[int, list[int]], after: tuple[int, list[int]]) -> None:
    plain = make()
    paired = declare_inplace(plain)
    assert (plain.min_scratchpad, plain.live_bytes()) == before
    assert (paired.min_scratchpad, paired.live_bytes()) == after
    assert graph_budgets(plain).m_r == before[0] and graph_budgets(paired).m_r == after[0]
    assert graph_budgets(paired).m_p == min_peak_order(paired).peak == max(after[1])


def random_graph(seed: int) -> Graph:
    """A random small DAG of elementwise and non-elementwise operators with equal-size tensors."""
    rng = random.Random(seed)
    n = rng.randint(4, 7)
    tensors = [t("x", rng.choice((4, 8)), "input")]
    ops = []
    for i in range(n):
        size = rng.choice((4, 8))
        k = rng.randint(1, min(2, len(tensors)))
        ins = tuple(rng.sample([x.name for x in tensors], k))
        tensors.append(t(f"t{i}", size, "output" if i == n - 1 else "activation"))
        ops.append(Operator(f"o{i}", rng.choice(("Add", "Relu", "Conv")), ins, (f"t{i}",)))
    return declare_inplace(Graph.build(f"random{seed}", tensors, ops))


@pytest.mark.parametrize("seed", range(12))
def test_min_peak_and_floors_agree_with_every_order(seed: int) -> None:
    """The min-peak search's per-operator costs (segments) give Graph.peak's figure and its exact minimum."""
    g = random_graph(seed)
    orders = list(nx.all_topological_sorts(g.dag))
    result = min_peak_order(g)
    assert result.peak == g.peak(result.order) == min(g.peak(o) for o in orders)
    whole = build_segment(g, g.default_order, 0, lambda _: False, lambda _: False)
    floor = dict(zip(whole.ops, whole.op_floor))
    for order in orders:
        local = [whole.ops.index(name) for name in order]
        assert whole.peak(local) == g.peak(order)
        for step, name in enumerate(order):
            assert floor[name] <= g.live_bytes(order)[step]


# ------------------------------------------------------------------------------------- contract
def test_plan_using_a_pair_replays_and_misuse_is_rejected() -> None:
    g = declare_inplace(read_later())
    acc = Accelerator(20)
    # r1 overwrites x; r2 cannot overwrite a (the Add reads it); the Add overwrites b
    steps = [
        Load("x", 0),
        Run("r1", (("a", 0),)),
        Run("r2", (("b", 10),)),
        Run("add", (("y", 10),)),
        Store("y"),
        Free("a"),
        Free("y"),
    ]
    plan = Plan.from_steps(g, acc, steps, method="hand")
    data = plan.to_dict()
    assert data["ops"][0]["inplace"] == {"a": "x"}
    assert replay(data).peak_resident_bytes == 20
    assert Plan.from_dict(data).graph.op("add").inplace == (("y", "b"),)
    # r2 over a, then the Add reads a: overwritten, no DRAM copy to reload it from
    misuse = [Load("x", 0), Run("r1", (("a", 0),)), Run("r2", (("b", 0),)), Run("add", (("y", 10),))]
    with pytest.raises(PlanInvalid, match="inputs not resident"):
        Plan.from_steps(g, acc, misuse, method="hand")
    with pytest.raises(PlanInvalid, match="no valid DRAM copy"):
        Plan.from_steps(g, acc, [*misuse[:3], Load("a", 10)], method="hand")
    # the same graph without pairs: the plan's overwrite is an overlap
    with pytest.raises(PlanInvalid, match="overlaps resident x"):
        Plan.from_steps(read_later(), acc, steps, method="hand")


# ------------------------------------------------------------------------------------------- CLI
def test_budgets_command_with_and_without_inplace() -> None:
    path = MODELS / "resnet50.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    runner = CliRunner()
    args = ["budgets", str(path), "--element-bytes", "1", "--no-weights", "--json", "--time-limit", "5"]
    on = json.loads(runner.invoke(main, args).stdout)["without_weights"]
    off = json.loads(runner.invoke(main, [*args, "--no-inplace"]).stdout)["without_weights"]
    assert off["m_p"] == 2_408_448 and off["m_r"] == 2_408_448  # COSMA's figures, as before
    assert on["m_p"] <= 1_806_336 and on["m_r"] < off["m_r"]  # HMCOS's peak of ResNet-50


def test_timeline_ends_an_overwritten_input_where_its_output_begins() -> None:
    g = declare_inplace(relu_chain())
    steps = [Load("x", 0), Run("r1", (("a", 0),)), Run("r2", (("b", 0),)), Run("r3", (("y", 0),)), Store("y")]
    plan = Plan.from_steps(g, Accelerator(10), [*steps, Free("y")], method="hand")
    spans = {p.tensor: (p.start, p.end) for p in trace(plan).residencies}
    assert spans == {"x": (0.0, 0.0), "a": (0.0, 1.0), "b": (1.0, 2.0), "y": (2.0, 3.0)}
