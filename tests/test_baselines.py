"""The four baselines: hand-made eviction cases with a known right answer, allocators, budgets, zoo plans.

Every plan is replayed by cosma's validator when it is built; the zoo plans are also checked by
the independent ``../shared/tools/checkplan.py``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner
from graphs import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_schedule import dags

import cosma
from cosma.budgets import BUDGET_NAMES, budgets, graph_budgets, resolve_budget
from cosma.cli import main
from cosma.contract import Free, Load, Run, Store
from cosma.errors import OptionError
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.methods import METHODS
from cosma.methods.baselines import BASELINES, best_baseline, solve_baseline
from cosma.options import Options
from cosma.plan import Plan

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
SHARED = ROOT.parent / "shared"


def evicted(plan: Plan, before_op: str) -> list[str]:
    """Tensors evicted (freed, and loaded again later) between the previous run and the run of ``before_op``."""
    steps = list(plan.steps)
    frees: list[tuple[int, str]] = []
    for i, step in enumerate(steps):
        if isinstance(step, Run):
            if step.op == before_op:
                return [t for j, t in frees if any(isinstance(s, Load) and s.tensor == t for s in steps[j:])]
            frees = []
        elif isinstance(step, Free):
            frees.append((i, step.tensor))
    raise AssertionError(f"{before_op} never runs")


def stored(plan: Plan) -> set[str]:
    return {s.tensor for s in plan.steps if isinstance(s, Store)}


def fragmenting() -> Graph:
    """g splits x into a, b, c (4 B each, at 4, 8, 12 under first-fit); h needs 8 B for d.

    At 20 B, after x2 is loaded at 0 the free ranges are [16, 20): 4 B. Next uses: c (step 2),
    a (3), b (4).
    - Belady evicts b (furthest), which leaves [8, 12) and [16, 20): still no 8 B; then a:
      [4, 12) fits. Two activations without copies: (4 + 4) * 2 = 16 extra bytes.
    - Greedy looks at every 8 B window: [4, 12) a+b costs 16, [8, 16) b+c 16, [12, 20) c alone
      8: it evicts c only, 8 extra bytes.
    """
    t = [Tensor("x", 4, "input"), Tensor("x2", 4, "input"), Tensor("d", 8, "output")]
    t += [Tensor(n, 4, "activation") for n in "abc"] + [Tensor(f"y{i}", 1, "output") for i in (1, 2, 3)]
    ops = [
        Operator("g", "Split", ("x",), ("a", "b", "c")),
        Operator("h", "Conv", ("x2",), ("d",)),
        Operator("i", "Relu", ("c",), ("y1",)),
        Operator("j", "Relu", ("a",), ("y2",)),
        Operator("k", "Relu", ("b",), ("y3",)),
    ]
    return Graph.build("fragmenting", t, ops)


def copies_or_not() -> Graph:
    """Two small weights with DRAM copies beside one large activation without one.

    op0 reads w1 (2 B), w2 (2 B), x (8 B) and writes big (8 B): first-fit puts w1 at 0, w2 at 2,
    x at 4, big at 12; x is dropped, leaving [4, 12) and, at 25 B, [20, 25). op1 writes z (12 B):
    something must go. Next uses: w1, w2 at op2, big at op3.
    - Belady evicts big (furthest next use): a store and a reload, 16 extra bytes.
    - Greedy evicts the window [0, 12) holding w1 and w2: two reloads, 4 extra bytes, no store.
    """
    t = [
        Tensor("w1", 2, "weight"),
        Tensor("w2", 2, "weight"),
        Tensor("x", 8, "input"),
        Tensor("big", 8, "activation"),
        Tensor("z", 12, "activation"),
        Tensor("y1", 1, "output"),
        Tensor("y2", 1, "output"),
    ]
    ops = [
        Operator("op0", "Conv", ("w1", "w2", "x"), ("big",)),
        Operator("op1", "Gen", (), ("z",)),
        Operator("op2", "Conv", ("w1", "w2", "z"), ("y1",)),
        Operator("op3", "Relu", ("big",), ("y2",)),
    ]
    return Graph.build("copies_or_not", t, ops)


def plan(graph: Graph, capacity: int, name: str, allocator: str = "first-fit", alignment: int = 1) -> Plan:
    return METHODS[name](graph, Accelerator(capacity, alignment), Options(allocator=allocator))


# --------------------------------------------------------------- hand-made evictions
@pytest.mark.parametrize("allocator", ["first-fit", "best-fit"])
def test_belady_repeats_furthest_next_use_until_a_range_fits(allocator: str) -> None:
    p = plan(fragmenting(), 20, "default+belady", allocator)
    assert evicted(p, "h") == ["b", "a"]
    assert {"a", "b"} <= stored(p) and "c" not in stored(p)
    assert p.extra_bytes == 16


@pytest.mark.parametrize("allocator", ["first-fit", "best-fit"])
def test_greedy_clears_the_cheapest_window(allocator: str) -> None:
    p = plan(fragmenting(), 20, "default+greedy", allocator)
    assert evicted(p, "h") == ["c"]
    assert p.extra_bytes == 8


def test_greedy_prefers_small_tensors_with_copies_to_a_large_one_without() -> None:
    g = copies_or_not()
    belady, greedy = plan(g, 25, "default+belady"), plan(g, 25, "default+greedy")
    assert evicted(belady, "op1") == ["big"] and "big" in stored(belady)
    assert belady.extra_bytes == 16
    assert evicted(greedy, "op1") == ["w1", "w2"] and "big" not in stored(greedy)
    assert greedy.extra_bytes == 4


def test_greedy_is_only_locally_optimal() -> None:
    """At 20 B the weights come back at op2 and push big out anyway: greedy pays 4 + 16, Belady 16."""
    g = copies_or_not()
    assert plan(g, 20, "default+greedy").extra_bytes == 20
    assert plan(g, 20, "default+belady").extra_bytes == 16


def test_belady_ties_prefer_the_tensor_with_a_copy() -> None:
    """w (weight, at 4) and u (activation, at 8) are both next read by c; b needs 8 B, free are [0, 4), [12, 17).

    Evicting either opens 8 B; w costs a reload (4), u a store and a reload (8): Belady's tie-break
    takes w.
    """
    t = [
        Tensor("x", 4, "input"),
        Tensor("w", 4, "weight"),
        Tensor("u", 4, "activation"),
        Tensor("v", 8, "activation"),
        Tensor("y", 1, "output"),
        Tensor("y2", 1, "output"),
    ]
    ops = [
        Operator("a", "Conv", ("x", "w"), ("u",)),
        Operator("b", "Gen", (), ("v",)),
        Operator("c", "Add", ("u", "w"), ("y",)),
        Operator("d", "Relu", ("v",), ("y2",)),
    ]
    p = plan(Graph.build("tie", t, ops), 17, "default+belady")
    assert evicted(p, "b") == ["w"]
    assert p.extra_bytes == 4


def test_first_fit_and_best_fit_place_differently() -> None:
    """After x leaves, the free ranges are [0, 4) and [16, 19); d (3 B) goes to the lowest or the tightest."""
    t = [Tensor("x", 4, "input"), Tensor("d", 3, "activation"), Tensor("y", 1, "output")]
    t += [Tensor(n, 4, "activation") for n in "abc"]
    ops = [
        Operator("g", "Split", ("x",), ("a", "b", "c")),
        Operator("h", "Relu", ("b",), ("d",)),
        Operator("i", "Add", ("a", "c", "d"), ("y",)),
    ]
    g = Graph.build("gaps", t, ops)
    offsets = {}
    for allocator in ("first-fit", "best-fit"):
        p = plan(g, 19, "default+belady", allocator)
        offsets[allocator] = next(dict(s.outputs)["d"] for s in p.steps if isinstance(s, Run) and s.op == "h")
        assert p.extra_bytes == 0
    assert offsets == {"first-fit": 0, "best-fit": 16}


@pytest.mark.parametrize("name", BASELINES)
def test_pinned_input_that_fragments_is_moved(name: str) -> None:
    """x (12 B) at 0, s (32 B) at 12; x leaves; d (16 B) fits in neither [0, 12) nor [44, 48).

    Only s, the operator's own input, is in the way: it is stored, dropped and reloaded at 0
    (2 * 32 extra bytes), and d goes to 32. Nothing else is evicted.
    """
    t = [
        Tensor("x", 12, "input"),
        Tensor("s", 32, "activation"),
        Tensor("d", 16, "activation"),
        Tensor("y", 4, "output"),
    ]
    ops = [
        Operator("stem", "Conv", ("x",), ("s",)),
        Operator("down", "Conv", ("s",), ("d",)),
        Operator("head", "Gemm", ("d",), ("y",)),
    ]
    p = plan(Graph.build("stem", t, ops), 48, name)
    assert evicted(p, "down") == ["s"] and stored(p) == {"s", "y"}
    assert p.extra_bytes == 64
    run = next(s for s in p.steps if isinstance(s, Run) and s.op == "down")
    assert dict(run.outputs) == {"d": 32}


# ---------------------------------------------------------------------- orders
def test_minpeak_methods_run_the_min_peak_order() -> None:
    fx = FIXTURES["two_branches"]()  # default order a, c, b, d, e holds both 20 B tensors: peak 42
    for policy in ("belady", "greedy"):
        p = plan(fx.graph, fx.min_peak, f"minpeak+{policy}")
        assert fx.graph.peak(p.order) == fx.min_peak
        assert p.summary.details["order_peak_proven"] and p.summary.details["order_method"] == "exact"
        d = plan(fx.graph, fx.min_peak, f"default+{policy}")
        assert d.order == fx.graph.default_order and d.extra_bytes > p.extra_bytes


def test_registry_and_unknown_names() -> None:
    assert set(BASELINES) <= set(METHODS)
    g = FIXTURES["chain"]().graph
    with pytest.raises(OptionError):
        solve_baseline(g, Accelerator(40), Options(), order="random", policy="belady")
    with pytest.raises(OptionError):
        solve_baseline(g, Accelerator(40), Options(), order="default", policy="lru")


def test_best_baseline_takes_the_least_extra_bytes() -> None:
    g = fragmenting()
    best = best_baseline(g, Accelerator(20), Options())
    extras = best.summary.details["baselines"]
    assert set(extras) == set(BASELINES)
    assert best.extra_bytes == min(extras.values())
    assert best.summary.method == min(BASELINES, key=lambda n: (extras[n], BASELINES.index(n)))
    # in the default order Belady pays 16 and greedy 8; the min-peak order runs i, j, k before h: no eviction
    assert extras == {"default+belady": 16, "minpeak+belady": 0, "default+greedy": 8, "minpeak+greedy": 0}
    assert best.summary.method == "minpeak+belady"  # the tie goes to the earlier baseline


@given(dags(), st.sampled_from(["first-fit", "best-fit"]), st.sampled_from([1, 4]), st.sampled_from(BUDGET_NAMES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_baseline_is_valid_at_every_budget(graph: Graph, allocator: str, alignment: int, budget: str) -> None:
    capacity = max(1, resolve_budget(graph, budget, alignment=alignment))  # 0 when every tensor is empty
    assert graph.working_set(graph.largest_op(alignment).name, alignment) <= capacity
    options = Options(allocator=allocator)
    plans = [METHODS[name](graph, Accelerator(capacity, alignment), options) for name in BASELINES]
    for p in plans:  # Plan.from_steps replayed each plan; the order and the alignment are checked here
        assert graph.is_topological(p.order)
        assert all(s.offset % alignment == 0 for s in p.steps if isinstance(s, Load))
        assert p.summary.peak_resident_bytes <= capacity
    best = best_baseline(graph, Accelerator(capacity, alignment), options)
    assert best.extra_bytes == min(p.extra_bytes for p in plans)


# ---------------------------------------------------------------------- budgets
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_budgets_of_fixtures(name: str) -> None:
    fx = FIXTURES[name]()
    b = graph_budgets(fx.graph)
    assert (b.m_r, b.m_p, b.m_h) == (fx.min_scratchpad, fx.min_peak, (fx.min_scratchpad + fx.min_peak) // 2)
    assert b.m_p_proven and b.m_p_bound == b.m_p
    assert [resolve_budget(fx.graph, n) for n in BUDGET_NAMES] == [b.m_r, b.m_h, b.m_p]


def test_six_budgets_with_and_without_weights() -> None:
    g = FIXTURES["multi_output"]().graph  # M_R 19 with weights (a reads x 5 and w 7), 12 without
    six = dict(budgets(g).items())
    assert list(six) == ["M_R", "M_H", "M_P", "M_R/no-weights", "M_H/no-weights", "M_P/no-weights"]
    assert six["M_R"] == 19 and six["M_R/no-weights"] == 12
    assert six["M_P"] == 19 and six["M_P/no-weights"] == 12
    no_weights = FIXTURES["skip"]().graph
    assert budgets(no_weights).with_weights == budgets(no_weights).without_weights


def test_budget_names_at_an_alignment() -> None:
    g = FIXTURES["skip"]().graph  # sizes 2, 6, 10, 3, 1; b's working set s + u = 6 + 10
    assert resolve_budget(g, "M_R", alignment=8) == 8 + 16
    assert resolve_budget(g, "m_p", alignment=8) >= resolve_budget(g, "M_R", alignment=8)
    with pytest.raises(OptionError, match="unknown budget"):
        resolve_budget(g, "M_Q")


# ------------------------------------------------------------------------- CLI
def test_cli_budgets_prints_six_numbers() -> None:
    model = MODELS / "tiny_cnn.onnx"
    result = CliRunner().invoke(main, ["budgets", str(model), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    graph = cosma.load_onnx(model)
    assert data["with_weights"]["m_r"] == graph.min_scratchpad
    assert data["without_weights"]["m_r"] == graph.without_weights().min_scratchpad
    table = CliRunner().invoke(main, ["budgets", str(model)])
    assert table.exit_code == 0 and "M_H" in table.output and "without weights" in table.output


def test_cli_compile_accepts_budget_names(tmp_path: Path) -> None:
    model = MODELS / "tiny_cnn.onnx"
    for budget in BUDGET_NAMES:
        out = tmp_path / f"{budget}.json"
        args = ["compile", str(model), "-s", budget, "--method", "minpeak+greedy", "--alignment", "16", "-o", str(out)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["summary"]["method"] == "minpeak+greedy"


# ------------------------------------------------------------------------------ zoo
def shared_checker() -> ModuleType:
    path = SHARED / "tools" / "checkplan.py"
    assert path.is_file(), f"the independent checker {path} is missing"
    spec = importlib.util.spec_from_file_location("checkplan", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", ["tiny_cnn", "resnet50"])
def test_zoo_every_baseline_at_six_budgets_passes_checkplan(model: str) -> None:
    checker = shared_checker()
    graph = cosma.load_onnx(MODELS / f"{model}.onnx")
    for variant in (graph, graph.without_weights()):
        b = graph_budgets(variant)
        for budget in (b.m_r, b.m_h, b.m_p):
            for name in BASELINES:
                p = METHODS[name](variant, Accelerator(budget), Options())
                result = checker.replay(p.to_dict())
                assert result["extra_bytes"] == p.extra_bytes
                assert result["peak_resident_bytes"] <= budget


def test_public_api() -> None:
    from cosma.schedule import min_peak_order

    assert cosma.min_peak_order is min_peak_order and cosma.best_baseline is best_baseline
    assert cosma.resolve_budget is resolve_budget and {"Budgets", "ScheduleResult"} <= set(cosma.__all__)
