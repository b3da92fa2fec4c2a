"""The benchmark harness (benchmarks/): rows, the headline arithmetic, the reference guard and merge, the report
files, the script and where it writes."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from pathlib import Path

import bench as script
import harness as bench
import pytest
from harness import (
    ERROR,
    INVALID,
    MISSING,
    BenchConfig,
    BenchRow,
    Reference,
    ReferenceEntry,
    compare_to_reference,
    merge_reference,
    reduction,
    reductions,
)

from cosma.errors import OptionError
from cosma.methods import METHODS

BASELINE = "default+belady"


def row(
    model="m",
    method=BASELINE,
    extra=40,
    *,
    budget="M_R",
    size=100,
    bound=None,
    status="heuristic",
    weights=True,
    group="human",
    valid=True,
) -> BenchRow:
    """A run; ``auto`` resolves to ``joint``, as cosma compile does."""
    resolved = "joint" if method == "auto" else method
    return BenchRow(
        model, group, weights, budget, size, method, resolved, status, valid, extra, 10, bound, None, 0.1, 0.2
    )


def entry(best=40, *, methods=None, bound=0, size=100, best_method=BASELINE) -> ReferenceEntry:
    return ReferenceEntry(
        "m",
        True,
        "M_R",
        size,
        best,
        best_method,
        bound,
        "auto" if bound else "",
        methods if methods is not None else {BASELINE: best},
    )


# ------------------------------------------------------------------------ headline
def test_reduction_is_relative_and_zero_when_nothing_to_reduce():
    assert reduction(100, 16) == pytest.approx(0.84)
    assert reduction(0, 0) == 0.0
    assert reduction(50, 50) == 0.0


def test_reductions_average_per_group_and_variant_and_name_what_is_left_out():
    rows = [
        row("a", BASELINE, 100),
        row("a", "default+greedy", 80),
        row("a", "auto", 20),  # 1 - 20/80 = 0.75
        row("b", BASELINE, 0),
        row("b", "auto", 0),  # 0/0: 0 by definition
        row("c", BASELINE, 10),  # no COSMA plan: left out
        row("d", BASELINE, 50),
        dataclasses.replace(row("d", "auto", 5), valid=False),  # invalid: not counted
        row("e", BASELINE, 10, budget="M_P"),
        row("e", "auto", 0, budget="M_P"),  # not at M_R
        row("n", BASELINE, 10, group="nas"),
        row("n", "fixed-order", 5, group="nas"),
    ]
    human, nas = reductions(rows)
    assert (human.group, human.weights, nas.group) == ("human", True, "nas")
    assert [m for m, *_ in human.per_model] == ["a", "b"]
    assert human.average == pytest.approx((0.75 + 0.0) / 2)
    assert human.zero_baseline == 1
    assert human.excluded == ("c", "d")
    assert nas.average == pytest.approx(0.5)


def test_instances_take_best_plan_and_highest_instance_bound_across_methods():
    rows = [
        row(method=BASELINE, extra=40, bound=0),
        row(method="auto", extra=30, bound=30, status="optimal"),
        row(method="fixed-order", extra=35, bound=35, status="optimal"),
    ]
    (s,) = bench.instances(rows)
    assert (s.best_extra_bytes, s.best_method, s.bound, s.bound_method, s.proven) == (30, "auto", 30, "auto", True)


def test_a_fixed_order_bound_proves_nothing_about_the_instance():
    # optimal for its order only: the joint optimum may lie below it
    rows = [row(method=BASELINE, extra=40), row(method="fixed-order", extra=35, bound=35, status="optimal")]
    (s,) = bench.instances(rows)
    assert (s.bound, s.proven) == (None, False)
    assert merge_reference(Reference(), rows).reference.entries["m/M_R"].lower_bound == 0
    assert bench.instances([row(extra=0)])[0].proven  # no extra traffic: optimal by itself


# ----------------------------------------------------------------------- reference
def test_compare_accepts_equal_and_better_runs():
    ref = Reference({"m/M_R": entry(40)})
    assert compare_to_reference([row(extra=40), row(extra=39)], ref) == []


@pytest.mark.parametrize(
    ("changed", "kind"),
    [
        ({"extra_bytes": 41}, "worse"),
        ({"valid": False, "status": INVALID}, "invalid"),
        ({"valid": None, "status": ERROR, "extra_bytes": None}, "error"),
        ({"scratchpad_bytes": 101}, "budget-changed"),
        ({"method": "joint", "resolved_method": "joint", "bound": 41, "extra_bytes": 41}, "bound-above-plan"),
    ],
)
def test_compare_reports_each_kind_of_violation(changed, kind):
    ref = Reference({"m/M_R": entry(40)})
    violations = compare_to_reference([dataclasses.replace(row(), **changed)], ref)
    assert [v.kind for v in violations] == [kind]


def test_compare_requires_the_proven_optimum_exactly_and_rejects_plans_below_the_bound():
    ref = Reference({"m/M_R": entry(30, methods={"auto": 30, BASELINE: 40}, bound=30, best_method="auto")})
    assert ref.entries["m/M_R"].proven_optimal
    assert compare_to_reference([row(method="auto", extra=30, bound=30, status="optimal")], ref) == []
    assert [v.kind for v in compare_to_reference([row(method="auto", extra=31)], ref)] == ["worse"]
    assert [v.kind for v in compare_to_reference([row(method="auto", extra=29)], ref)] == ["below-bound"]
    # a baseline need only stay at or under its own reference value
    assert compare_to_reference([row(method=BASELINE, extra=40)], ref) == []
    # fixed-order may be optimal for its order above the instance's optimum; joint may not
    assert compare_to_reference([row(method="fixed-order", extra=35, bound=35, status="optimal")], ref) == []
    false_claim = row(method="joint", extra=35, bound=35, status="optimal")
    assert {v.kind for v in compare_to_reference([false_claim], ref)} == {"false-optimal", "bound-above-plan"}


def test_missing_methods_and_unknown_instances_are_not_violations_but_are_listed():
    rows = [dataclasses.replace(row(method="auto"), status=MISSING, valid=None, extra_bytes=None), row(model="new")]
    ref = Reference({"m/M_R": entry(40)})
    assert compare_to_reference(rows, ref) == []
    assert bench.uncovered(rows, ref) == [("new/M_R", BASELINE)]


def test_merge_only_improves_unless_forced():
    ref = Reference({"m/M_R": entry(40, methods={BASELINE: 40, "auto": 35}, bound=10, best_method="auto")})
    ref = dataclasses.replace(ref, entries={"m/M_R": dataclasses.replace(ref.entries["m/M_R"], best_extra_bytes=35)})
    run = [row(method=BASELINE, extra=45), row(method="auto", extra=30, bound=20)]
    merged = merge_reference(ref, run)
    e = merged.reference.entries["m/M_R"]
    assert (e.best_extra_bytes, e.best_method, e.lower_bound, e.bound_method) == (30, "auto", 20, "auto")
    assert e.methods == {BASELINE: 40, "auto": 30}
    assert any(BASELINE in r for r in merged.refused)
    forced = merge_reference(ref, run, force=True).reference.entries["m/M_R"]
    assert forced.methods == {BASELINE: 45, "auto": 30} and forced.lower_bound == 20


def test_merge_refuses_a_changed_budget_and_a_bound_above_a_plan_without_force():
    ref = Reference({"m/M_R": entry(40)})
    merged = merge_reference(ref, [row(size=99, extra=1)])
    assert merged.reference == ref and merged.changes == () and "budget" in merged.refused[0]
    assert merge_reference(ref, [row(size=99, extra=1)], force=True).reference.entries["m/M_R"].scratchpad_bytes == 99
    # a bound above a known plan is never taken in
    merged = merge_reference(ref, [row(method="auto", extra=50, bound=45)])
    assert merged.reference.entries["m/M_R"].lower_bound == 0 and merged.refused


def test_reference_file_is_sorted_stable_and_round_trips(tmp_path):
    merged = merge_reference(
        Reference(), [row(model="b", extra=3), row(model="a", extra=1, bound=1, status="optimal", method="auto")]
    )
    path = tmp_path / "reference.json"
    merged.reference.save(path)
    text = path.read_text()
    assert list(json.loads(text)["instances"]) == ["a/M_R", "b/M_R"]
    again = Reference.load(path)
    assert again == merged.reference and again.to_json() == text
    assert json.loads(text)["instances"]["a/M_R"]["proven_optimal"] is True
    assert Reference.load(tmp_path / "none.json") == Reference()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(OptionError, match="cannot read the reference"):
        Reference.load(tmp_path / "bad.json")


# ----------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def zoo():
    return bench.load_zoo()


def test_load_zoo_finds_the_registry_and_a_wrong_dir_is_one_line(zoo, tmp_path):
    assert zoo["resnet50"].group == "human" and zoo["resnet50"].path.endswith("resnet50.onnx")
    assert {m.group for m in bench.select_models(zoo)} == set(bench.PROTOCOL_GROUPS)
    assert [m.name for m in bench.select_models(zoo, ["tiny_cnn", "nas"])] == [
        "nasnet_a",
        "pnasnet5",
        "amoebanet",
        "darts",
        "tiny_cnn",
    ]
    with pytest.raises(OptionError, match="no zoo registry") as e:
        bench.load_zoo(tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(OptionError, match="unknown model"):
        bench.select_models(zoo, ["nope"])


def _lying(graph, accelerator, options):
    """A planner whose plan claims less traffic than it causes."""
    plan = METHODS[BASELINE](graph, accelerator, options)
    return plan.with_summary(extra_bytes=plan.extra_bytes - 1, offchip_bytes=plan.summary.offchip_bytes - 1)


def _raising(graph, accelerator, options):
    raise RuntimeError("solver exploded\nwith two lines")


def test_run_bench_rows_cover_every_budget_variant_and_method_in_order(zoo):
    config = BenchConfig(models=("tiny_cnn",), methods=(BASELINE, "minpeak+greedy", "not-registered"), time_limit=5)
    result = bench.run_bench(config, zoo)
    assert result.missing_methods == ("not-registered",)
    assert [(r.weights, r.budget, r.method) for r in result.rows] == [
        (w, b, m) for w in (True, False) for b in ("M_R", "M_H", "M_P") for m in config.methods
    ]
    for r in result.rows:
        if r.method == "not-registered":
            assert (r.status, r.valid, r.extra_bytes) == (MISSING, None, None)
        else:
            assert r.valid is True and r.extra_bytes >= 0 and r.status in ("heuristic", "optimal")
    mb = {b.weights: b.budgets for b in result.budgets}
    assert [r.scratchpad_bytes for r in result.rows if r.weights and r.method == BASELINE] == [
        mb[True].m_r,
        mb[True].m_h,
        mb[True].m_p,
    ]
    # the same instance with a method gives the same plan as cosma compile
    import cosma

    graph = cosma.load_onnx(zoo["tiny_cnn"].path, element_bytes=1, weights=False)
    plan = cosma.compile(graph, mb[False].m_r, method=BASELINE)
    first = next(r for r in result.rows if not r.weights and r.method == BASELINE)
    assert first.extra_bytes == plan.extra_bytes and first.compulsory_bytes == plan.summary.compulsory_bytes


def test_a_raising_method_is_an_error_row_and_a_lying_plan_is_invalid(zoo):
    config = BenchConfig(models=("tiny_cnn",), methods=(BASELINE, "minpeak+belady"), budgets=("M_R",), weights=(False,))
    result = bench.run_bench(config, zoo, planners={BASELINE: _raising, "minpeak+belady": _lying})
    raised, lied = result.rows
    assert raised.status == ERROR and raised.message == "RuntimeError: solver exploded with two lines"
    assert lied.status == INVALID and lied.valid is False and "replay" in lied.message
    assert {v.kind for v in compare_to_reference(result.rows, Reference())} == {"error", "invalid"}


def test_process_pool_gives_the_serial_rows(zoo):
    config = BenchConfig(models=("tiny_cnn",), methods=(BASELINE, "default+greedy"), budgets=("M_R", "M_P"))
    serial = bench.run_bench(config, zoo)
    pooled = bench.run_bench(dataclasses.replace(config, jobs=2), zoo)

    def outcome(r: BenchRow) -> tuple:
        return tuple(getattr(r, f.name) for f in dataclasses.fields(r) if not f.name.endswith("seconds"))

    assert [outcome(r) for r in pooled.rows] == [outcome(r) for r in serial.rows]


def test_write_outputs_makes_report_csv_and_plots(zoo, tmp_path):
    config = BenchConfig(models=("tiny_cnn",), methods=(BASELINE, "minpeak+belady", "auto-missing"))
    result = bench.run_bench(config, zoo, command="cosma bench --models tiny_cnn")
    reference = merge_reference(Reference(), result.rows).reference
    written = bench.write_outputs(result, tmp_path, reference=reference, reference_path="ref.json")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "BENCHMARKS.md",
        "benchmarks.csv",
        "img/bench_no_weights.png",
        "img/bench_weights.png",
    ]
    md = (tmp_path / "BENCHMARKS.md").read_text()
    for needle in (
        "cosma bench --models tiny_cnn",
        "## Machine",
        "## Proven optimal",
        "## Solve times",
        "**0 violation(s)**",
        "auto-missing",
        "### tiny CNN",
        "img/bench_weights.png",
        "MiniMalloc",
    ):
        assert needle in md
    assert "do not edit by hand" in md
    table = list(csv.DictReader(io.StringIO((tmp_path / "benchmarks.csv").read_text())))
    assert len(table) == len(result.rows) == 18
    assert {r["status"] for r in table if r["method"] == "auto-missing"} == {MISSING}
    assert (tmp_path / "img/bench_weights.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------- script
def run_script(capsys, *args) -> tuple[int, str]:
    """``python benchmarks/bench.py ARGS``, in this process: the exit status and everything it printed."""
    status = script.main([str(a) for a in args])
    printed = capsys.readouterr()
    return status, printed.out + printed.err


def test_script_writes_updates_and_checks_the_reference(tmp_path, capsys):
    ref = tmp_path / "reference.json"
    args = [
        "--models",
        "tiny_cnn",
        "--methods",
        f"{BASELINE},default+greedy",
        "--budgets",
        "M_R",
        "--weights",
        "without",
        "--out",
        tmp_path / "out",
        "--reference",
        ref,
        "-q",
    ]
    status, output = run_script(capsys, *args, "--update-reference", "--check")
    assert status == 0, output
    assert "reference: 1 change(s)" in output and (tmp_path / "out" / "BENCHMARKS.md").exists()
    data = json.loads(ref.read_text())
    key = "tiny_cnn/M_R/no-weights"
    # pretend the reference knows a better plan for this method: the run now violates it
    data["instances"][key]["methods"][BASELINE] -= 1
    ref.write_text(json.dumps(data))
    status, output = run_script(capsys, *args, "--check")
    assert status == 1 and "1 violation(s)" in output and "worse" in output
    # an update does not give the better value away; --force does
    run_script(capsys, *args, "--update-reference")
    assert (
        json.loads(ref.read_text())["instances"][key]["methods"][BASELINE]
        == data["instances"][key]["methods"][BASELINE]
    )
    run_script(capsys, *args, "--update-reference", "--force")
    assert run_script(capsys, *args, "--check")[0] == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--zoo-dir", "/nonexistent"], "no zoo registry"),
        (["--models", "nope"], "unknown model"),
        (["--budgets", "M_X"], "unknown budget"),
        (["--methods", "nope"], "unknown method"),
    ],
)
def test_script_bad_input_is_one_line_exit_2(extra, message, tmp_path, capsys):
    status, output = run_script(capsys, "--out", tmp_path, *extra)
    assert status == 2
    assert message in output and output.count("\n") == 1


def _digests(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder``: modification time and content hash, by relative path."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_script_writes_only_into_its_out_folder(tmp_path, capsys, monkeypatch):
    """Unless asked (--update-docs, --update-reference), a run leaves docs/, solvers/ and models/ as they are,
    and writes nothing into the folder it runs from but what --out names."""
    watched = {name: _digests(bench.SOURCE_ROOT / name) for name in ("docs", "solvers", "models")}
    monkeypatch.chdir(tmp_path)
    status, output = run_script(
        capsys, "--models", "tiny_cnn", "--methods", BASELINE, "--budgets", "M_R", "--out", "here", "-q"
    )
    assert status == 0, output
    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()} == {
        "here/BENCHMARKS.md",
        "here/benchmarks.csv",
        "here/img/bench_weights.png",
        "here/img/bench_no_weights.png",
    }
    assert {name: _digests(bench.SOURCE_ROOT / name) for name in watched} == watched
    # without --out: ./bench-out, still not the source tree
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    status, output = run_script(capsys, "--models", "tiny_cnn", "--methods", BASELINE, "--budgets", "M_R", "-q")
    assert status == 0 and (tmp_path / "elsewhere" / "bench-out" / "BENCHMARKS.md").exists(), output
    assert {name: _digests(bench.SOURCE_ROOT / name) for name in watched} == watched


def test_update_docs_writes_the_docs_folder_too(tmp_path):
    status = script.bench_command(
        out_dir=tmp_path / "out",
        docs_dir=tmp_path / "docs",
        update_docs=True,
        models=("tiny_cnn",),
        methods=(BASELINE,),
        budgets=("M_R",),
        weights="without",
        reference_path=tmp_path / "ref.json",
        echo=lambda line: None,
    )
    assert status == 0
    for folder in ("out", "docs"):
        assert (tmp_path / folder / "BENCHMARKS.md").read_text().startswith("# Benchmarks")
    assert not (tmp_path / "ref.json").exists()  # read, never written without --update-reference


# ------------------------------------------------------------------- group methods
GROUPED_ZOO = """
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    display: str
    group: str
    file: str


ZOO = {e.name: e for e in (Entry("small_human", "small human", "human", "tiny_cnn.onnx"),
                           Entry("small_nas", "small NAS", "nas", "tiny_cnn.onnx"),
                           Entry("small_random", "small random", "random", "tiny_cnn.onnx"))}
"""


@pytest.fixture(scope="module")
def grouped_zoo(tmp_path_factory, zoo):
    """tiny_cnn three times, as a human, a NAS and a randomly wired model."""
    directory = tmp_path_factory.mktemp("zoo")
    (directory / "tiny_cnn.onnx").symlink_to(zoo["tiny_cnn"].path)
    (directory / "zoo.py").write_text(GROUPED_ZOO)
    return directory


def test_the_protocol_adds_dc_for_nas_and_random_models_only(grouped_zoo):
    config = BenchConfig(methods=(BASELINE,), budgets=("M_R",), weights=(False,), time_limit=5, budget_time_limit=2)
    assert config.methods_for("nas") == config.methods_for("random") == (BASELINE, "dc")
    assert config.methods_for("human") == (BASELINE,) and config.all_methods == (BASELINE, "dc")
    result = bench.run_bench(config, bench.load_zoo(grouped_zoo))
    assert [(r.model, r.method) for r in result.rows] == [
        ("small_human", BASELINE),
        ("small_nas", BASELINE),
        ("small_nas", "dc"),
        ("small_random", BASELINE),
        ("small_random", "dc"),
    ]
    assert all(r.planned for r in result.rows) and result.methods == (BASELINE, "dc")
    dc = next(r for r in result.rows if r.method == "dc")
    assert dc.resolved_method == "dc" and dc.bound is not None
    # the per-model tables give dc a column where it ran only
    md = bench.render_markdown(result)
    human, nas = md.split("### small human")[1].split("### small NAS")
    assert "| dc |" not in human.split("\n\n")[1] and f"| {BASELINE} | dc | bound |" in nas


def test_named_methods_run_exactly_as_named(grouped_zoo, tmp_path, capsys):
    args = [
        "--zoo-dir",
        str(grouped_zoo),
        "--models",
        "small_human,small_nas",
        "--methods",
        BASELINE,
        "--budgets",
        "M_R",
        "--weights",
        "without",
        "--out",
        str(tmp_path),
        "--reference",
        str(tmp_path / "ref.json"),
        "-q",
    ]
    status, output = run_script(capsys, *args)
    assert status == 0, output
    table = list(csv.DictReader(io.StringIO((tmp_path / "benchmarks.csv").read_text())))
    assert [(r["model"], r["method"]) for r in table] == [("small_human", BASELINE), ("small_nas", BASELINE)]
    assert bench.DC_HEADING not in (tmp_path / "BENCHMARKS.md").read_text()


def test_dc_shares_the_run_of_auto_where_auto_resolves_to_dc(grouped_zoo, monkeypatch):
    from cosma.methods import dc as driver

    monkeypatch.setattr(driver, "DC_THRESHOLD_OPS", 0)  # auto now resolves to dc on tiny_cnn (serial run)
    config = BenchConfig(
        models=("small_nas",), methods=("auto",), budgets=("M_R",), weights=(False,), time_limit=5, budget_time_limit=2
    )
    solves: list[str] = []
    result = bench.run_bench(config, bench.load_zoo(grouped_zoo), progress=solves.append)
    auto, dc = result.rows
    assert (auto.method, dc.method, auto.resolved_method, dc.resolved_method) == ("auto", "dc", "dc", "dc")
    assert len(solves) == 1 and dc.extra_bytes == auto.extra_bytes and "the run of auto" in dc.message
    # without auto in the run, dc runs by itself
    alone = bench.run_bench(dataclasses.replace(config, methods=(BASELINE,)), bench.load_zoo(grouped_zoo))
    assert [r.method for r in alone.rows] == [BASELINE, "dc"] and alone.rows[1].message == ""


def _result(rows, *, methods=bench.PROTOCOL_METHODS, ops=500) -> bench.BenchResult:
    """A hand-made run of ``rows`` (every model of the rows at their budgets)."""
    models = tuple(
        bench.ZooModel(m, m.upper(), g, f"{m}.onnx") for m, g in dict.fromkeys((r.model, r.group) for r in rows)
    )
    budgets = tuple(bench.ModelBudgets(m.name, w, None, ops) for m in models for w in (True, False))
    return bench.BenchResult(
        BenchConfig(methods=methods),
        models,
        budgets,
        tuple(rows),
        (),
        {"cores": "2"},
        "cosma bench",
        "2026-01-01T00:00:00+00:00",
        60.0,
        (1.0, 1.0),
    )


def test_dc_section_renders_rows_and_summary():
    b1, b2, b3, b4 = bench.BASELINES

    def nas(method, extra, budget="M_R", **kw):
        return row("n", method, extra, budget=budget, group="nas", **kw)

    rows = [
        # M_R: dc at half the best baseline; its own bound 40
        nas(b1, 400),
        nas(b2, 200),
        nas(b3, 100),
        nas(b4, 100),
        nas("auto", 50),
        dataclasses.replace(nas("dc", 50, bound=40, status="time-limit"), total_seconds=12.5),
        # M_P: nothing to reduce
        nas(b1, 0, budget="M_P"),
        nas(b2, 0, budget="M_P"),
        nas(b3, 0, budget="M_P"),
        nas(b4, 0, budget="M_P"),
        nas("dc", 0, budget="M_P", bound=0, status="optimal"),
        row("h", b1, 10),
        row("h", "auto", 5),  # a human model: no dc, not in the section
    ]
    md = bench.render_markdown(_result(rows))
    assert md.index("## Headline") < md.index(bench.DC_HEADING) < md.index("## Proven optimal")
    section = md.split(bench.DC_HEADING)[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("| n |")]
    assert len(table) == 2 and "| h |" not in section
    cells = [c.strip() for c in table[0].strip("|").split("|")]
    # model ops weights budget bytes b1..b4 dc vs-best mean bound gap status seconds valid
    assert cells == [
        "n",
        "500",
        "weights",
        "M_R",
        "100",
        "400",
        "200",
        "100",
        "100",
        "50",
        "-50.0%",
        f"{100 * ((50 / 400 + 50 / 200 + 0.5 + 0.5) / 4 - 1):+.1f}%",
        "40",
        "20.0%",
        "time-limit",
        "12.5",
        "yes",
    ]
    cells = [c.strip() for c in table[1].strip("|").split("|")]
    assert cells[9:] == ["0", "-", "-", "0", "-", "optimal", "0.2", "yes"]
    summary = next(line for line in section.splitlines() if line.startswith("**2 runs"))
    assert "**2 runs, 2 valid plans, longest 12.5 s.**" in summary
    assert f"{b1} -87.5% (1)" in summary and "against the best baseline: **-50.0%** (1)" in summary
    assert "-85%" in summary
    found = bench.dc_instances(_result(rows))
    s = bench.dc_summary(found)
    assert (s.runs, s.valid, s.longest_seconds, s.changes["best"]) == (2, 2, 12.5, (-0.5, 1))
    # dc failed: the row says so, nothing is averaged
    failed = [*rows[:5], dataclasses.replace(rows[5], status=ERROR, valid=None, extra_bytes=None, bound=None)]
    (i,) = bench.dc_instances(_result(failed))
    assert (i.change_to(i.best_baseline), i.mean_change, i.gap) == (None, None, None)
    assert bench.dc_summary([i]).valid == 0 and "| error |" in bench.render_markdown(_result(failed))
    # no dc run in those groups: no section
    assert bench.DC_HEADING not in bench.render_markdown(_result(rows[-2:]))


def test_headline_averages_all_models_and_those_with_traffic():
    rows = [
        row("a", BASELINE, 100),
        row("a", "auto", 20),  # 80%
        row("b", BASELINE, 0),
        row("b", "auto", 0),  # nothing to reduce: 0% in the plain average
        row("c", BASELINE, 10),
        row("c", "auto", 5),
    ]  # 50%
    (human,) = reductions(rows)
    assert human.average == pytest.approx((0.8 + 0 + 0.5) / 3)
    assert human.average_with_traffic == pytest.approx(0.65) and [m for m, *_ in human.with_traffic] == ["a", "c"]
    assert reductions(rows[2:4])[0].average_with_traffic is None
    md = bench.render_markdown(_result(rows))
    assert "average over models with traffic to reduce" in md
    assert "| human | weights | 3 | **43.3%** | 65.0% (2) |" in md
