"""The method and replacement-policy registries: what is registered, and that one registration is enough.

A toy policy registered here at run time becomes a baseline of every order (a method of ``compile``,
a ``--method`` choice, a line of ``cosma methods``, a candidate of ``best_baseline``) with no other
change; a toy method likewise reaches ``compile``. Each is unregistered when its test ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from pathlib import Path

import pytest
from click.testing import CliRunner

import cosma
from cosma.cli import main
from cosma.contract import replay
from cosma.errors import OptionError
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.methods import METHODS, MethodSpec, add_method, method_names, unregister_method
from cosma.methods.baselines import BASELINES, baseline_names, best_baseline
from cosma.options import Options
from cosma.plan import Plan
from cosma.replace import Policy, WalkState, get_policy, policy_names, register_policy, unregister_policy
from tests.graphs import FIXTURES

TODAY_BASELINES = ("default+belady", "minpeak+belady", "default+greedy", "minpeak+greedy")


def evict_largest(state: WalkState, size: int, pinned: Set[str]) -> list[str]:
    """The toy policy: the largest unpinned resident first (ties: the lower address)."""
    candidates = [(start - end, start, name) for start, end, name in state.arena.occupants() if name not in pinned]
    return [min(candidates)[2]] if candidates else []


@pytest.fixture
def largest() -> Iterator[Policy]:
    policy = register_policy(Policy("largest", "evict the largest resident first", evict_largest))
    yield policy
    unregister_policy("largest")


def test_the_registries_list_exactly_todays_names() -> None:
    assert policy_names() == ("belady", "greedy")
    assert baseline_names() == BASELINES == TODAY_BASELINES
    assert list(METHODS) == [*TODAY_BASELINES, "joint", "fixed-order", "min-peak", "dc"]
    assert method_names() == ("auto", *METHODS)


def test_a_registered_policy_is_a_baseline_of_every_order(largest: Policy) -> None:
    assert policy_names() == ("belady", "greedy", "largest")  # after the shipped ones: their ties stay theirs
    assert baseline_names() == (*TODAY_BASELINES, "default+largest", "minpeak+largest")
    assert {"default+largest", "minpeak+largest"} <= set(METHODS)
    assert BASELINES == TODAY_BASELINES  # the snapshot of the shipped policies


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
@pytest.mark.parametrize("order", ["default", "minpeak"])
def test_the_toy_policys_plans_replay(largest: Policy, fixture: str, order: str) -> None:
    f = FIXTURES[fixture]()
    for budget in sorted({f.min_scratchpad, *f.optimal_extra}):
        plan = cosma.compile(f.graph, budget, method=f"{order}+largest")
        result = replay(plan.to_dict())
        assert plan.summary.method == f"{order}+largest" and plan.summary.details["policy"] == "largest"
        assert result.extra_bytes == plan.extra_bytes >= f.optimal_extra.get(budget, 0)


def test_best_baseline_runs_the_registered_policy(largest: Policy) -> None:
    f = FIXTURES["skip"]()
    best = best_baseline(f.graph, Accelerator(f.min_scratchpad), Options())
    assert list(best.summary.details["baselines"]) == list(baseline_names())
    assert best.summary.method == "default+belady"  # every baseline pays 12 B here: the tie stays the shipped one's


def test_a_preferred_policy_wins_the_ties_of_best_baseline() -> None:
    belady = get_policy("belady")
    register_policy(Policy("first", "Belady's choice, ranked first", belady.choose, rank=-1))
    try:
        f = FIXTURES["skip"]()
        best = best_baseline(f.graph, Accelerator(f.min_scratchpad), Options())
        assert baseline_names()[:2] == ("default+first", "minpeak+first")
        assert best.summary.method == "default+first"
        assert best.extra_bytes == best.summary.details["baselines"]["default+belady"]
    finally:
        unregister_policy("first")


def test_the_cli_offers_and_describes_the_registered_policy(largest: Policy, tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["methods"])
    assert out.exit_code == 0
    lines = {line.split()[0]: line for line in out.stdout.splitlines()}
    assert list(lines) == ["auto", *METHODS]
    assert "evict the largest resident first" in lines["minpeak+largest"]
    # --method takes it: the command gets past parsing to the missing model
    out = CliRunner().invoke(
        main, ["compile", str(tmp_path / "nope.onnx"), "-s", "1MiB", "--method", "default+largest"]
    )
    assert out.exit_code == 2 and "no such file" in out.stderr and "unknown method" not in out.stderr


def test_registration_rejects_bad_and_taken_names(largest: Policy) -> None:
    with pytest.raises(ValueError, match="'a\\+b'"):
        Policy("a+b", "a name with the order separator", evict_largest)
    with pytest.raises(ValueError, match="registered already"):
        register_policy(Policy("largest", "another one", get_policy("belady").choose))
    register_policy(largest)  # the same one again is fine
    with pytest.raises(OptionError, match="unknown replacement policy 'lru'; choose one of belady, greedy, largest"):
        get_policy("lru")


def _toy_method(graph: Graph, accelerator: Accelerator, options: Options) -> Plan:
    """The toy method: the default order with Belady, under a name of its own."""
    plan = METHODS["default+belady"](graph, accelerator, options)
    return plan.with_summary(method="toy")


def test_a_registered_method_is_callable_through_compile() -> None:
    g = Graph.build(
        "g",
        [Tensor("x", 4, "input"), Tensor("y", 4, "output")],
        [Operator("relu", "Relu", ("x",), ("y",))],
    )
    add_method(MethodSpec("toy", "a test's method", _toy_method))
    try:
        assert "toy" in METHODS and method_names()[-1] == "toy"
        plan = cosma.compile(g, 8, method="toy")
        assert plan.summary.method == "toy" and replay(plan.to_dict()).extra_bytes == 0
        out = CliRunner().invoke(main, ["methods"])
        assert "a test's method" in out.stdout
    finally:
        unregister_method("toy")
    with pytest.raises(OptionError, match="unknown method 'toy'"):
        cosma.compile(g, 8, method="toy")
