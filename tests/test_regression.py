"""Regression guard: a fast subset of the benchmark against solvers/reference.json.

The subset plans a few small zoo models at two budgets, with and without weights, by every
method of the protocol that is registered (baselines always; the exact methods once they exist),
and fails when a plan is invalid, a run fails, or a plan's extra traffic is above the reference
for its method (equal where the reference is proven optimal). The tests of the test substitute a
deliberately worse method and a lying one and check that the comparison catches both.

Refresh the reference after a deliberate improvement with ``python benchmarks/bench.py --update-reference``.
"""

from __future__ import annotations

import dataclasses

import harness as bench
import pytest
from harness import BenchConfig, Reference, compare_to_reference, method_available

from cosma.contract import Free, Load, Run, Store
from cosma.methods import METHODS
from cosma.plan import Plan

#: The subset: small graphs on which the exact methods finish well inside the time limit.
CI_MODELS: tuple[str, ...] = ("r2plus1d_18", "mobilenet_v2", "resnet50", "densenet121")
CI_BUDGETS: tuple[str, ...] = ("M_R", "M_P")
CI_TIME_LIMIT = 30.0
SUBSTITUTED = "default+belady"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference() -> Reference:
    path = bench.repo_root() / "solvers" / "reference.json"
    assert path.exists(), f"{path} is missing; make it with python benchmarks/bench.py --update-reference"
    return Reference.load(path)


@pytest.fixture(scope="module")
def zoo():
    return bench.load_zoo()


@pytest.fixture(scope="module")
def subset(zoo):
    methods = tuple(m for m in bench.PROTOCOL_METHODS if method_available(m))
    config = BenchConfig(models=CI_MODELS, methods=methods, budgets=CI_BUDGETS, time_limit=CI_TIME_LIMIT)
    return bench.run_bench(config, zoo)


def test_reference_is_consistent(reference):
    assert reference.entries
    for key, e in reference.entries.items():
        assert key == bench.instance_key(e.model, e.weights, e.budget)
        assert 0 <= e.lower_bound <= e.best_extra_bytes, key
        assert e.methods.get(e.best_method) == e.best_extra_bytes == min(e.methods.values()), key


def test_reference_covers_the_subset(subset, reference):
    assert bench.uncovered(subset.rows, reference) == []


def test_subset_is_no_worse_than_the_reference(subset, reference):
    assert all(r.planned for r in subset.rows), [r for r in subset.rows if not r.planned]
    violations = compare_to_reference(subset.rows, reference)
    assert violations == [], "\n".join(map(str, violations))


# ------------------------------------------------------------------- tests of the test
def needless_reload(graph, accelerator, options) -> Plan:
    """The substituted method's plan plus a needless store and reload of the first activation it produces."""
    plan = METHODS[SUBSTITUTED](graph, accelerator, options)
    steps = list(plan.steps)
    for i, step in enumerate(steps):
        if isinstance(step, Run):
            kinds = {t.name: t.kind for t in graph.tensors}
            name, offset = next((t, a) for t, a in step.outputs if kinds[t] == "activation")
            steps[i + 1 : i + 1] = [Store(name), Free(name), Load(name, offset)]
            break
    return Plan.from_steps(graph, accelerator, steps, method=SUBSTITUTED)


def lying(graph, accelerator, options) -> Plan:
    """The substituted method's plan with a summary claiming one byte less traffic than it causes."""
    plan = METHODS[SUBSTITUTED](graph, accelerator, options)
    return plan.with_summary(extra_bytes=plan.extra_bytes - 1, offchip_bytes=plan.summary.offchip_bytes - 1)


def _run_substituted(zoo, planner, method=SUBSTITUTED):
    config = BenchConfig(models=CI_MODELS, methods=(method,), budgets=CI_BUDGETS, time_limit=CI_TIME_LIMIT)
    return bench.run_bench(config, zoo, planners={method: planner}).rows


def test_a_worse_method_is_caught(zoo, reference):
    rows = _run_substituted(zoo, needless_reload)
    assert all(r.planned for r in rows)  # valid plans, only worse ones
    violations = compare_to_reference(rows, reference)
    assert sorted({v.key for v in violations if v.kind == "worse"}) == sorted({r.key for r in rows})


@pytest.mark.skipif(not method_available("auto"), reason="no exact method registered yet")
def test_a_baseline_in_place_of_the_exact_method_is_caught(zoo, reference):
    rows = _run_substituted(zoo, METHODS[SUBSTITUTED], method="auto")
    beaten = {
        k
        for k, e in reference.entries.items()
        if e.model in CI_MODELS and e.budget in CI_BUDGETS and e.methods["auto"] < e.methods[SUBSTITUTED]
    }
    assert beaten, "the exact method beats the baseline nowhere in the subset: choose a harder subset"
    violations = compare_to_reference(rows, reference)
    assert {v.key for v in violations if v.kind == "worse"} == beaten


def test_a_plan_that_misstates_its_traffic_is_caught(zoo, reference):
    rows = _run_substituted(zoo, lying)
    violations = compare_to_reference(rows, reference)
    assert {v.kind for v in violations} == {"invalid"} and len(violations) == len(rows)


def test_a_proven_optimum_must_be_matched_exactly(reference):
    proven = [e for e in reference.entries.values() if e.proven_optimal]
    assert proven, "the reference proves no instance optimal"
    e = proven[0]
    at = bench.BenchRow(
        e.model,
        "",
        e.weights,
        e.budget,
        e.scratchpad_bytes,
        e.best_method,
        e.best_method,
        "optimal",
        True,
        e.best_extra_bytes,
        0,
        e.lower_bound,
        0.0,
        0.0,
        0.0,
    )
    assert compare_to_reference([at], reference) == []
    above = dataclasses.replace(at, extra_bytes=e.best_extra_bytes + 1, status="feasible", bound=None)
    below = dataclasses.replace(at, extra_bytes=e.best_extra_bytes - 1, bound=None) if e.best_extra_bytes else None
    assert [v.kind for v in compare_to_reference([above], reference)] == ["worse"]
    if below is not None:
        assert [v.kind for v in compare_to_reference([below], reference)] == ["below-bound"]
