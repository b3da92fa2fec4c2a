"""Every rule of the plan validator (cosma.contract), each broken by one plan; and agreement with
the independent checker ``../shared/tools/checkplan.py``.

The agreement test (``test_shared_checker_agrees``) imports the shared checker from the folder
beside the repository. It is SKIPPED only when that ``shared`` folder is absent altogether (a
clone without it); when the folder exists but the checker is missing or broken, it fails.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from graphs import FIXTURES

from cosma.contract import ReplayResult, replay
from cosma.errors import PlanInvalid
from cosma.hardware import Accelerator
from cosma.plan import Plan
from cosma.replace.engine import plan_fixed_order

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

Mutation = Callable[[dict[str, Any]], None]


def base_plan() -> dict[str, Any]:
    """A valid plan: a: x(4) w(2) -> h(4) g(2); b: h g -> y(2, output); scratchpad 16, alignment 2.

    Resident bytes step by step: 4, 6, 12, 8, 6, 8, 8, 4, 2, 0, so the peak is 12.
    Traffic: loads x + w = 6, store y = 2: offchip 8 = compulsory 8, extra 0.
    """
    return {
        "format": "cosma.plan/1",
        "scratchpad_bytes": 16,
        "alignment": 2,
        "tensors": [
            {"name": "x", "bytes": 4, "kind": "input"},
            {"name": "w", "bytes": 2, "kind": "weight"},
            {"name": "h", "bytes": 4, "kind": "activation"},
            {"name": "g", "bytes": 2, "kind": "activation"},
            {"name": "y", "bytes": 2, "kind": "output"},
        ],
        "ops": [
            {"name": "a", "inputs": ["x", "w"], "outputs": ["h", "g"]},
            {"name": "b", "inputs": ["h", "g"], "outputs": ["y"]},
        ],
        "steps": [
            {"action": "load", "tensor": "x", "offset": 0},
            {"action": "load", "tensor": "w", "offset": 4},
            {"action": "run", "op": "a", "outputs": {"h": 8, "g": 12}},
            {"action": "free", "tensor": "x"},
            {"action": "free", "tensor": "w"},
            {"action": "run", "op": "b", "outputs": {"y": 0}},
            {"action": "store", "tensor": "y"},
            {"action": "free", "tensor": "h"},
            {"action": "free", "tensor": "g"},
            {"action": "free", "tensor": "y"},
        ],
        "summary": {"offchip_bytes": 8, "compulsory_bytes": 8, "extra_bytes": 0},
    }


# ----------------------------------------------------------------------------- mutations
def setting(*path: Any, value: Any) -> Mutation:
    def mutate(plan: dict[str, Any]) -> None:
        node = plan
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def deleting(*path: Any) -> Mutation:
    def mutate(plan: dict[str, Any]) -> None:
        node = plan
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def appending(key: str, item: dict[str, Any]) -> Mutation:
    return lambda plan: plan[key].append(item)


def steps(*new_steps: dict[str, Any], at: int = 0, drop: int = 0) -> Mutation:
    """Replace ``drop`` steps starting at ``at`` by ``new_steps``."""

    def mutate(plan: dict[str, Any]) -> None:
        plan["steps"][at : at + drop] = list(new_steps)

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(plan: dict[str, Any]) -> None:
        for m in mutations:
            m(plan)

    return mutate


def load(t: str, offset: Any) -> dict[str, Any]:
    return {"action": "load", "tensor": t, "offset": offset}


def store(t: str) -> dict[str, Any]:
    return {"action": "store", "tensor": t}


def free(t: str) -> dict[str, Any]:
    return {"action": "free", "tensor": t}


def run(op: str, **outputs: Any) -> dict[str, Any]:
    return {"action": "run", "op": op, "outputs": outputs}


def summary(offchip: int, compulsory: int = 8) -> Mutation:
    return setting(
        "summary", value={"offchip_bytes": offchip, "compulsory_bytes": compulsory, "extra_bytes": offchip - compulsory}
    )


# Each case: id -> (mutation of base_plan, the message's key words, the step it names or None).
INVALID: dict[str, tuple[Mutation, str, int | None]] = {
    # header
    "wrong format": (setting("format", value="cosma.plan/2"), "format is 'cosma.plan/2'", None),
    "no format": (deleting("format"), "format is None", None),
    "zero scratchpad": (setting("scratchpad_bytes", value=0), "scratchpad_bytes 0 is not a positive", None),
    "string scratchpad": (setting("scratchpad_bytes", value="16"), "scratchpad_bytes '16'", None),
    "no scratchpad": (deleting("scratchpad_bytes"), "scratchpad_bytes None", None),
    "boolean scratchpad": (setting("scratchpad_bytes", value=True), "scratchpad_bytes True", None),
    "zero alignment": (setting("alignment", value=0), "alignment 0 is not a positive", None),
    "fractional alignment": (setting("alignment", value=1.5), "alignment 1.5", None),
    # graph
    "duplicate tensor": (
        appending("tensors", {"name": "x", "bytes": 1, "kind": "input"}),
        "tensor x is listed twice",
        None,
    ),
    "tensor without name": (appending("tensors", {"bytes": 1, "kind": "input"}), "without a string name", None),
    "bad kind": (setting("tensors", 2, "kind", value="temporary"), "kind 'temporary'", None),
    "negative bytes": (setting("tensors", 0, "bytes", value=-4), "tensor x: bytes -4", None),
    "fractional bytes": (setting("tensors", 0, "bytes", value=4.5), "tensor x: bytes 4.5", None),
    "missing bytes": (deleting("tensors", 0, "bytes"), "tensor x: bytes None", None),
    "boolean bytes": (setting("tensors", 0, "bytes", value=True), "tensor x: bytes True", None),  # JSON true
    "duplicate op": (appending("ops", {"name": "a", "inputs": [], "outputs": []}), "operator a is listed twice", None),
    "op without name": (appending("ops", {"inputs": [], "outputs": []}), "operator without a string name", None),
    "unknown input tensor": (setting("ops", 1, "inputs", value=["h", "g", "z"]), "unknown tensor 'z'", None),
    "unknown output tensor": (setting("ops", 1, "outputs", value=["y", "z"]), "unknown tensor 'z'", None),
    "repeated output": (setting("ops", 1, "outputs", value=["y", "y"]), "lists an output twice", None),
    "reads what it writes": (setting("ops", 1, "inputs", value=["h", "g", "y"]), "reads a tensor it writes", None),
    "produces input": (setting("ops", 1, "outputs", value=["y", "x"]), "produces x, a tensor of kind input", None),
    "produces weight": (setting("ops", 1, "outputs", value=["y", "w"]), "produces w, a tensor of kind weight", None),
    "two producers": (
        appending("ops", {"name": "c", "inputs": ["x"], "outputs": ["g"]}),
        "tensor g has two producers, a and c",
        None,
    ),
    "activation without producer": (
        appending("tensors", {"name": "z", "bytes": 1, "kind": "activation"}),
        "activation tensor z has no producer",
        None,
    ),
    "output without producer": (
        appending("tensors", {"name": "z", "bytes": 1, "kind": "output"}),
        "output tensor z has no producer",
        None,
    ),
    # load
    "load unknown tensor": (steps(load("z", 0)), "load of unknown tensor 'z'", 0),
    "load resident": (steps(load("x", 8), at=1), "load of x, which is already resident", 1),
    "load without DRAM copy": (steps(free("h"), load("h", 8), at=3), "load of h, which has no valid DRAM copy", 4),
    "load misaligned": (steps(load("w", 5), at=1, drop=1), "w: offset 5 is not a multiple of alignment 2", 1),
    "load negative offset": (steps(load("w", -2), at=1, drop=1), "w: offset -2 is not a non-negative integer", 1),
    "load non-integer offset": (steps(load("w", "4"), at=1, drop=1), "w: offset '4' is not a non-negative", 1),
    "load without offset": (steps(load("w", None), at=1, drop=1), "w: offset None", 1),
    "load out of bounds": (steps(load("w", 16), at=1, drop=1), "w: [16, 18) lies beyond the scratchpad of 16", 1),
    "load straddling the end": (steps(load("x", 14), at=0, drop=1), "x: [14, 18) lies beyond", 0),
    "load overlapping": (steps(load("w", 2), at=1, drop=1), "w: [2, 4) overlaps resident x at [0, 4)", 1),
    "load overlapping from above": (
        steps(load("w", 2), load("x", 0), drop=2),
        "x: [0, 4) overlaps resident w at [2, 4)",
        1,
    ),
    # store / free
    "store not resident": (steps(store("h")), "store of 'h', which is not resident", 0),
    "store unknown": (steps(store("z")), "store of 'z', which is not resident", 0),
    "free not resident": (steps(free("x"), at=4), "free of 'x', which is not resident", 4),
    "free twice": (steps(free("y"), at=10), "free of 'y', which is not resident", 10),
    # run
    "run unknown op": (steps(run("c")), "run of unknown operator 'c'", 0),
    "run twice": (steps(run("a", h=8, g=12), at=5), "operator a runs a second time", 5),
    "run missing inputs": (
        steps(run("a", h=8, g=12), at=1, drop=2),
        "operator a runs with inputs not resident: ['w']",
        1,
    ),
    "run before producer": (steps(run("b", y=14)), "inputs not resident: ['h', 'g']", 0),
    "outputs missing one": (steps(run("a", h=8), at=2, drop=1), "outputs ['h'] given, ['g', 'h'] expected", 2),
    "outputs with an extra": (steps(run("a", h=8, g=12, y=14), at=2, drop=1), "['g', 'h', 'y'] given", 2),
    "outputs not a mapping": (
        steps({"action": "run", "op": "a", "outputs": [["h", 8], ["g", 12]]}, at=2, drop=1),
        "outputs must map tensor to offset",
        2,
    ),
    "outputs missing": (steps({"action": "run", "op": "a"}, at=2, drop=1), "outputs must map", 2),
    "output over a resident": (steps(run("a", h=2, g=12), at=2, drop=1), "h: [2, 6) overlaps resident x", 2),
    "outputs overlap each other": (steps(run("a", h=8, g=10), at=2, drop=1), "g: [10, 12) overlaps resident h", 2),
    "output out of bounds": (steps(run("a", h=8, g=16), at=2, drop=1), "g: [16, 18) lies beyond", 2),
    "output misaligned": (steps(run("a", h=9, g=14), at=2, drop=1), "h: offset 9 is not a multiple of alignment 2", 2),
    "output negative": (steps(run("a", h=-2, g=12), at=2, drop=1), "h: offset -2 is not a non-negative", 2),
    # other steps
    "unknown action": (steps({"action": "spill", "tensor": "x"}, at=1), "unknown action 'spill'", 1),
    "no action": (steps({"tensor": "x"}, at=1), "unknown action None", 1),
    # end
    "op never runs": (steps(at=5, drop=5), "1 operators never run, e.g. ['b']", None),
    "no steps": (deleting("steps"), "2 operators never run", None),
    "output never stored": (steps(at=6, drop=1), "outputs never stored to DRAM: ['y']", None),
    "summary offchip": (
        setting("summary", "offchip_bytes", value=9),
        "summary offchip_bytes is 9, the replay gives 8",
        None,
    ),
    "summary compulsory": (setting("summary", "compulsory_bytes", value=6), "summary compulsory_bytes is 6", None),
    "summary extra": (
        setting("summary", "extra_bytes", value=-1),
        "summary extra_bytes is -1, the replay gives 0",
        None,
    ),
    "summary key missing": (deleting("summary", "extra_bytes"), "summary extra_bytes is None", None),
    "summary string": (setting("summary", "offchip_bytes", value="8"), "summary offchip_bytes is '8'", None),
    "no summary": (deleting("summary"), "plan has no summary", None),
    # malformed
    "tensor not an object": (appending("tensors", "z"), "malformed plan", None),
    "step not an object": (steps("load x", at=1), "malformed plan", None),
}

VALID: dict[str, tuple[Mutation, dict[str, int]]] = {
    "base": (lambda plan: None, {"peak_resident_bytes": 12, "loads": 2, "stores": 1, "extra_bytes": 0}),
    "spill and reload": (
        both(steps(store("h"), free("h"), load("h", 8), at=5), summary(16)),
        {"peak_resident_bytes": 12, "loads": 3, "stores": 2, "offchip_bytes": 16, "extra_bytes": 8},
    ),
    "reload an input": (
        both(
            setting(
                "ops",
                value=[
                    {"name": "a", "inputs": ["x", "w"], "outputs": ["h", "g"]},
                    {"name": "b", "inputs": ["h", "g", "x"], "outputs": ["y"]},
                ],
            ),
            steps(load("x", 0), run("b", y=4), at=5, drop=1),
            summary(12),
        ),
        {"loads": 3, "offchip_bytes": 12, "extra_bytes": 4},
    ),
    "repeated store of an output": (both(steps(store("y"), at=7), summary(10)), {"stores": 2, "extra_bytes": 2}),
    "alignment defaults to 1": (both(deleting("alignment"), steps(load("w", 5), at=1, drop=1)), {"extra_bytes": 0}),
    "extra summary keys": (setting("summary", "method", value="hand"), {"extra_bytes": 0}),
    "tensor at the very end": (steps(run("a", h=8, g=14), at=2, drop=1), {"peak_resident_bytes": 12}),
    "unused input is never loaded": (
        appending("tensors", {"name": "u", "bytes": 100, "kind": "input"}),
        {"compulsory_bytes": 8, "tensors": 6},
    ),
    "ops listed after their readers": (lambda plan: plan["ops"].reverse(), {"ops": 2}),
    "empty plan": (
        both(setting("tensors", value=[]), setting("ops", value=[]), setting("steps", value=[]), summary(0, 0)),
        {"ops": 0, "peak_resident_bytes": 0},
    ),
}


# ----------------------------------------------------------------------------- in-place operators
# Base plan indices: 0 load x, 1 load w, 2 run a, 3 free x, 4 free w, 5 run b, 6 store y, 7 free h, 8 free g, 9 free y.
def declaring(op: int, **pairs: str) -> Mutation:
    """Operator ``ops[op]`` declares ``{OUT: IN}`` in-place pairs."""
    return setting("ops", op, "inplace", value=pairs)


def b_reads_x_too(plan: dict[str, Any]) -> None:
    plan["ops"][1]["inputs"].append("x")


#: b writes y over g (2 B each): no free of g, which stops being resident when b runs.
Y_OVER_G = both(declaring(1, y="g"), steps(run("b", y=12), at=5, drop=1), steps(at=8, drop=1))
#: a writes h over x (4 B each) at x's offset 0: x is overwritten, so the free of x goes.
H_OVER_X = both(declaring(0, h="x"), steps(run("a", h=0, g=12), at=2, drop=1), steps(at=3, drop=1))

INVALID.update(
    {
        "inplace not a mapping": (setting("ops", 1, "inplace", value=["y", "g"]), "inplace must map", None),
        "inplace output not an output": (declaring(1, h="g"), "inplace output 'h' is not one of its outputs", None),
        "inplace input not an input": (declaring(1, y="x"), "inplace input 'x' is not one of its inputs", None),
        "inplace of other bytes": (declaring(0, g="x"), "inplace g (2 B) over x (4 B)", None),
        "undeclared output over a resident input": (steps(run("b", y=12), at=5, drop=1), "overlaps resident g", 5),
        "overwritten input is no longer resident": (
            both(Y_OVER_G, steps(free("g"), at=8)),
            "free of 'g', which is not resident",
            8,
        ),
        "overwritten activation without a DRAM copy": (
            both(Y_OVER_G, steps(load("g", 14), at=6)),
            "load of g, which has no valid DRAM copy",
            6,
        ),
        "reader of an overwritten input without a reload": (
            both(b_reads_x_too, H_OVER_X),
            "inputs not resident: ['x']",
            4,
        ),
        "two outputs overwrite one input": (
            both(
                setting("tensors", 3, "bytes", value=4),
                declaring(0, h="x", g="x"),
                steps(run("a", h=0, g=0), at=2, drop=1),
            ),
            "both overwrite x in place",
            2,
        ),
        "in-place output placed off its input's offset": (
            both(declaring(0, h="x"), steps(run("a", h=2, g=12), at=2, drop=1)),
            "[2, 6) overlaps resident x",
            2,
        ),
    }
)
VALID.update(
    {
        "in-place output over its input": (Y_OVER_G, {"peak_resident_bytes": 12, "extra_bytes": 0}),
        "in-place declared, placed elsewhere": (declaring(1, y="g"), {"peak_resident_bytes": 12, "extra_bytes": 0}),
        "in-place over an input, reloaded for a later reader": (
            both(
                b_reads_x_too,
                H_OVER_X,
                steps(load("x", 4), run("b", y=8), at=4, drop=1),
                steps(free("x"), at=10),
                summary(12),
            ),
            {"loads": 3, "extra_bytes": 4, "peak_resident_bytes": 12},
        ),
        "in-place over an activation stored first, reloaded": (
            both(Y_OVER_G, steps(store("g"), at=5), steps(load("g", 14), at=8), steps(free("g"), at=11), summary(12)),
            {"loads": 3, "stores": 2, "extra_bytes": 4},
        ),
    }
)


def zero_size_everywhere(plan: dict[str, Any]) -> None:
    """g becomes empty and is placed inside h's range, then at the scratchpad's end."""
    plan["tensors"][3]["bytes"] = 0
    plan["tensors"].append({"name": "e", "bytes": 0, "kind": "input"})
    plan["ops"][1]["inputs"].append("e")
    plan["steps"][2]["outputs"] = {"h": 8, "g": 10}
    plan["steps"][5:5] = [load("e", 16)]
    plan["steps"].append(free("e"))


VALID["zero-size tensors overlap anything"] = (zero_size_everywhere, {"peak_resident_bytes": 10, "loads": 3})


def mutated(mutation: Mutation) -> dict[str, Any]:
    plan = base_plan()
    mutation(plan)
    return plan


@pytest.mark.parametrize("case", sorted(INVALID))
def test_each_rule_rejects_the_plan_that_breaks_it(case: str) -> None:
    mutation, message, step = INVALID[case]
    with pytest.raises(PlanInvalid) as info:
        replay(mutated(mutation))
    assert message in str(info.value)
    assert info.value.step == step
    if step is not None:
        assert str(info.value).startswith(f"step {step}: ")


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_plans_replay(case: str) -> None:
    mutation, expected = VALID[case]
    result = replay(mutated(mutation))
    assert {k: getattr(result, k) for k in expected} == expected
    assert result.extra_bytes == result.offchip_bytes - result.compulsory_bytes


def test_replay_reports_every_figure() -> None:
    assert replay(base_plan()) == ReplayResult(
        ops=2,
        tensors=5,
        loads=2,
        stores=1,
        offchip_bytes=8,
        compulsory_bytes=8,
        extra_bytes=0,
        peak_resident_bytes=12,
        scratchpad_bytes=16,
    )


def test_summary_is_only_checked_when_asked() -> None:
    plan = mutated(deleting("summary"))
    assert replay(plan, check_summary=False).offchip_bytes == 8


def test_first_broken_rule_is_reported() -> None:
    """A plan breaking a graph rule and a step rule is reported for the graph rule; of two broken steps, the first."""
    plan = mutated(both(*INVALID["duplicate op"][:1], *INVALID["load resident"][:1]))
    with pytest.raises(PlanInvalid, match="listed twice"):
        replay(plan)
    plan = mutated(both(steps(free("x"), at=10), steps(store("h"))))
    with pytest.raises(PlanInvalid) as info:
        replay(plan)
    assert info.value.step == 0


def test_replay_does_not_modify_the_plan() -> None:
    plan = base_plan()
    before = copy.deepcopy(plan)
    replay(plan)
    assert plan == before


def test_non_object_plan_is_invalid() -> None:
    with pytest.raises(PlanInvalid, match="malformed plan"):
        replay([])  # type: ignore[arg-type]


# ---------------------------------------------------------------- the independent checker
def load_shared_checker() -> ModuleType:
    """Import ``../shared/tools/checkplan.py``; fail (not skip) when shared exists but the checker does not load."""
    path = SHARED / "tools" / "checkplan.py"
    assert path.is_file(), f"{SHARED} exists but {path} does not: the independent checker is missing"
    spec = importlib.util.spec_from_file_location("checkplan", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shared_verdict(checker: ModuleType, plan: Any) -> bool:
    try:
        checker.replay(plan)
    except checker.Invalid:
        return False
    except (AttributeError, TypeError, KeyError):  # how checkplan's main() reports malformed plans
        return False
    return True


def engine_plans() -> dict[str, dict[str, Any]]:
    """Plans the engine writes for every fixture, at M_R (with evictions) and with room to spare."""
    plans = {}
    for name, make in FIXTURES.items():
        g = make().graph
        for alignment in (1, 4):
            for policy in ("belady", "greedy"):
                need = g.working_set(g.largest_op(alignment).name, alignment)  # aligned M_R
                for capacity in (need, need + 3):
                    plan = plan_fixed_order(g, Accelerator(capacity, alignment), policy=policy)
                    plans[f"{name} {policy} align {alignment} at {capacity}"] = plan.to_dict()
        for budget, witness in make().witnesses.items():
            plans[f"{name} witness at {budget}"] = Plan.from_steps(
                g, Accelerator(budget), witness, method="witness"
            ).to_dict()
    return plans


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent: cannot compare with the shared checkplan.py")
def test_shared_checker_agrees() -> None:
    """checkplan.py and cosma.contract give the same verdict on every case above and on engine plans."""
    checker = load_shared_checker()
    cases: dict[str, tuple[Any, bool]] = {}
    for name, (mutation, _, _) in INVALID.items():
        cases[f"invalid: {name}"] = (mutated(mutation), False)
    for name, (mutation, _) in VALID.items():
        cases[f"valid: {name}"] = (mutated(mutation), True)
    for name, plan in engine_plans().items():
        cases[f"engine: {name}"] = (plan, True)
    disagreements = []
    for name, (plan, expected) in cases.items():
        ours = True
        try:
            replay(plan)
        except PlanInvalid:
            ours = False
        theirs = shared_verdict(checker, plan)
        if not (ours == theirs == expected):
            disagreements.append(f"{name}: cosma.contract {ours}, checkplan {theirs}, expected {expected}")
    assert not disagreements, "\n".join(disagreements)
    assert len(cases) > 80
