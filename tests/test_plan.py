"""Plans: building from steps, JSON round trip, atomic writes, summary and status semantics."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from graphs import FIXTURES, diamond, skip

from cosma.contract import Free, Load, Run, Store, replay, step_from_dict, step_to_dict
from cosma.errors import OptionError, PlanInvalid
from cosma.fileio import atomic_write_bytes, atomic_write_text
from cosma.graph import Graph, Operator, Tensor
from cosma.hardware import Accelerator
from cosma.plan import Plan, Summary
from cosma.replace.engine import plan_fixed_order


def witness_plans() -> list[Plan]:
    plans = []
    for make in FIXTURES.values():
        fx = make()
        for budget, steps in fx.witnesses.items():
            plans.append(Plan.from_steps(fx.graph, Accelerator(budget), steps, method="witness"))
    return plans


def test_from_steps_fills_the_summary_from_the_replay() -> None:
    fx = skip()
    plan = Plan.from_steps(fx.graph, Accelerator(16), fx.witnesses[16], method="hand")
    s = plan.summary
    assert (s.offchip_bytes, s.compulsory_bytes, s.extra_bytes, s.peak_resident_bytes) == (15, 3, 12, 16)
    assert (s.method, s.model, s.status, s.bound) == ("hand", "skip", "heuristic", None)
    assert plan.extra_bytes == 12
    assert plan.order == ("a", "b", "c", "d")


def test_from_steps_rejects_invalid_steps() -> None:
    fx = skip()
    with pytest.raises(PlanInvalid, match=r"step 0: operator a runs with inputs not resident: \['x'\]"):
        Plan.from_steps(fx.graph, Accelerator(16), [Run("a", (("s", 0),))], method="hand")
    with pytest.raises(PlanInvalid, match="beyond the scratchpad of 15"):
        Plan.from_steps(fx.graph, Accelerator(15), fx.witnesses[16], method="hand")


@pytest.mark.parametrize("plan", witness_plans(), ids=lambda p: f"{p.graph.name}@{p.accelerator.scratchpad_bytes}")
def test_json_round_trip(plan: Plan, tmp_path: Path) -> None:
    plan = Plan.from_steps(
        plan.graph,
        plan.accelerator,
        plan.steps,
        method="hand",
        bound=plan.extra_bytes // 2,
        solve_seconds=1.5,
        total_seconds=2.25,
        details={"note": "witness", "nodes": 3},
    )
    path = tmp_path / "plan.json"
    plan.save(path)
    back = Plan.load(path)
    assert back.steps == plan.steps
    assert back.summary == plan.summary
    assert back.graph == plan.graph
    assert back.accelerator == plan.accelerator
    assert back == plan
    assert json.loads(path.read_text()) == plan.to_dict()
    replay(json.loads(path.read_text()))


def test_round_trip_keeps_metadata_shapes_types_and_fused_ops(tmp_path: Path) -> None:
    g = Graph.build(
        "m",
        [Tensor("x", 12, "input", (1, 3), "float32"), Tensor("y", 6, "output", (1, 3), "float16")],
        [Operator("conv", "Conv", ("x",), ("y",), ("BatchNormalization", "Relu"))],
        {"source": "m.onnx", "opset": "17"},
    )
    plan = plan_fixed_order(g, Accelerator(18, 2))
    plan.save(tmp_path / "p.json")
    back = Plan.load(tmp_path / "p.json")
    assert back.graph == g
    assert dict(back.graph.metadata) == {"source": "m.onnx", "opset": "17"}
    assert back.graph.op("conv").fused == ("BatchNormalization", "Relu")
    assert back.graph.tensor("x").shape == (1, 3) and back.graph.tensor("y").dtype == "float16"
    assert back.accelerator == Accelerator(18, 2)


def test_load_accepts_a_minimal_file_with_ops_in_any_order(tmp_path: Path) -> None:
    """A plan file from another tool: no shapes, types or extra summary keys, ops listed readers first."""
    data = Plan.from_steps(diamond().graph, Accelerator(28), diamond().witnesses[28], method="w").to_dict()
    for t in data["tensors"]:
        del t["shape"], t["dtype"]
    for o in data["ops"]:
        del o["type"]
    data["ops"].reverse()
    data["summary"] = {k: data["summary"][k] for k in ("offchip_bytes", "compulsory_bytes", "extra_bytes")}
    (tmp_path / "p.json").write_text(json.dumps(data))
    back = Plan.load(tmp_path / "p.json")
    assert back.graph.default_order == ("a", "c", "b", "d")  # a topological order, readers after producers
    assert back.extra_bytes == 8 and back.summary.peak_resident_bytes == 0  # not in the file
    assert len(back.steps) == len(data["steps"])


def test_from_dict_rejects_other_formats_and_cycles() -> None:
    data = witness_plans()[0].to_dict()
    with pytest.raises(ValueError, match="format"):
        Plan.from_dict({**data, "format": "cosma.plan/0"})
    cyclic = {
        **data,
        "tensors": [{"name": "p", "bytes": 1, "kind": "activation"}, {"name": "q", "bytes": 1, "kind": "activation"}],
        "ops": [{"name": "a", "inputs": ["q"], "outputs": ["p"]}, {"name": "b", "inputs": ["p"], "outputs": ["q"]}],
    }
    with pytest.raises(ValueError, match="cycle"):
        Plan.from_dict(cyclic)


@pytest.mark.parametrize("step", [Load("x", 8), Store("y"), Free("x"), Run("a", (("h", 0), ("g", 4))), Run("z", ())])
def test_step_dict_round_trip(step: Load | Store | Free | Run) -> None:
    assert step_from_dict(json.loads(json.dumps(step_to_dict(step)))) == step


def test_unknown_step_action() -> None:
    with pytest.raises(ValueError, match="unknown action 'spill'"):
        step_from_dict({"action": "spill", "tensor": "x"})


# ------------------------------------------------------------------------ atomic writes
def test_saving_an_invalid_plan_raises_and_writes_nothing(tmp_path: Path) -> None:
    plan = witness_plans()[0]
    lying = plan.with_summary(extra_bytes=plan.extra_bytes + 1)
    with pytest.raises(PlanInvalid, match="summary extra_bytes"):
        lying.save(tmp_path / "plan.json")
    assert list(tmp_path.iterdir()) == []


def test_saving_an_invalid_plan_keeps_the_old_file(tmp_path: Path) -> None:
    plan = witness_plans()[0]
    path = tmp_path / "plan.json"
    plan.save(path)
    before = path.read_bytes()
    broken = Plan(plan.graph, plan.accelerator, plan.steps[1:], plan.summary)  # drops the first load
    with pytest.raises(PlanInvalid):
        broken.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # a directory: the final rename fails after the data was written
    with pytest.raises(OSError):
        atomic_write_text(target, "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(tmp_path / "bad.txt", "\ud800")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_atomic_write_replaces_and_respects_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    atomic_write_text(tmp_path / "t.txt", "é")
    assert (tmp_path / "t.txt").read_bytes() == "é".encode()
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "t.txt"]


# ------------------------------------------------------------------- summary and status
@pytest.mark.parametrize(
    ("extra", "bound", "gap"),
    [(100, None, None), (0, None, None), (0, 0, 0.0), (100, 100, 0.0), (100, 75, 0.25), (100, 0, 1.0)],
)
def test_summary_gap(extra: int, bound: int | None, gap: float | None) -> None:
    s = Summary(offchip_bytes=extra + 10, compulsory_bytes=10, extra_bytes=extra, peak_resident_bytes=0, bound=bound)
    assert s.gap == gap
    assert s.to_dict()["gap"] == gap


def test_summary_dict_round_trip() -> None:
    s = Summary(
        30,
        10,
        20,
        16,
        method="m",
        status="time-limit",
        bound=5,
        solve_seconds=0.5,
        total_seconds=0.75,
        model="g",
        details={"nodes": 12},
    )
    d = s.to_dict()
    assert {k: d[k] for k in ("offchip_bytes", "compulsory_bytes", "extra_bytes", "gap")} == {
        "offchip_bytes": 30,
        "compulsory_bytes": 10,
        "extra_bytes": 20,
        "gap": 0.75,
    }
    assert Summary.from_dict(json.loads(json.dumps(d))) == s


def _status(budget: int, **kwargs: object) -> tuple[str, int | None]:
    fx = skip()
    plan = Plan.from_steps(fx.graph, Accelerator(budget), fx.witnesses[budget], method="hand", **kwargs)
    return plan.summary.status, plan.summary.bound


def test_status_follows_the_bound() -> None:
    assert _status(16) == ("heuristic", None)
    assert _status(16, bound=12) == ("optimal", 12)  # the bound matches: proven
    assert _status(16, bound=11, status="feasible") == ("feasible", 11)
    assert _status(16, bound=11, status="time-limit") == ("time-limit", 11)
    assert _status(19, bound=0) == ("optimal", 0)
    assert _status(16, bound=12, status="infeasible") == ("infeasible", 12)


def test_optimal_needs_a_matching_bound() -> None:
    assert _status(16, status="optimal") == ("feasible", None)
    assert _status(16, bound=4, status="optimal") == ("feasible", 4)
    assert _status(16, bound=12, status="optimal") == ("optimal", 12)


def test_accelerator_validates() -> None:
    assert Accelerator(1) == Accelerator(1, 1)
    with pytest.raises(OptionError, match="scratchpad must be a positive number of bytes"):
        Accelerator(0)
    with pytest.raises(OptionError, match="alignment must be at least 1"):
        Accelerator(16, 0)
