"""The offline allocation engine: exactness against exhaustive search, the independent checker,
pinned offsets, alignment, gaps, the CSV format and ``cosma alloc``."""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cosma.alloc import AllocError, Buffer, BufferFileError, max_load, packing_errors, read_csv, solve, write_csv
from cosma.alloc.buffers import Gap, parse_csv
from cosma.alloc.cpsat import solve_cpsat
from cosma.alloc.greedy import ORDERS, POLICIES, order_of, place_in_order
from cosma.alloc.problem import make_instance, split_components, unit_of
from cosma.alloc.search import search
from cosma.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "input.12.csv"
CHALLENGE_C = Path(__file__).resolve().parent / "data" / "minimalloc" / "C.1048576.csv"


# ---- the oracle: try every offset of every buffer ------------------------------------------------


Clash = Callable[[Buffer, int, Buffer, int], bool]


def _overlaps(b: Buffer, ob: int, c: Buffer, oc: int) -> bool:
    """Buffers live at the same time whose address ranges intersect."""
    return b.conflicts(c) and ob < oc + c.size and oc < ob + b.size


def _fits_everything(buffers: list[Buffer], height: int, clash: Clash = _overlaps) -> bool:
    order = sorted(buffers, key=lambda b: (b.offset is None, -b.size))
    placed: list[tuple[Buffer, int]] = []

    def extend(k: int) -> bool:
        if k == len(order):
            return True
        b = order[k]
        choices = [b.offset] if b.offset is not None else range(0, height - b.size + 1, b.alignment)
        for o in choices:
            if o + b.size > height:
                continue
            if not any(clash(b, o, c, oc) for c, oc in placed):
                placed.append((b, o))
                if extend(k + 1):
                    return True
                placed.pop()
        return False

    return extend(0)


def least_height(buffers: list[Buffer], clash: Clash = _overlaps) -> int:
    """The optimum by exhaustive enumeration of offsets (tiny instances only)."""
    height = max([max(b.size for b in buffers)] + [b.offset + b.size for b in buffers if b.offset is not None])
    if clash is _overlaps:
        height = max(height, max_load(buffers))  # a valid start only when overlap is all that clashes
    while not _fits_everything(buffers, height, clash):
        height += 1
    return height


def random_buffers(rng: random.Random, n: int, horizon: int = 7, sizes=(1, 1, 2, 2, 3, 4, 5)) -> list[Buffer]:
    out = []
    for i in range(n):
        lower = rng.randrange(horizon)
        out.append(Buffer(f"b{i}", lower, rng.randint(lower + 1, horizon), rng.choice(sizes)))
    return out


# ---- the example and the checker ------------------------------------------------------------------


def test_minimalloc_example_packs_at_height_12():
    buffers = read_csv(EXAMPLE)
    packing = solve(buffers)
    assert packing.height == 12 and packing.lower_bound == 12 and packing.status == "optimal"
    assert packing_errors(buffers, packing.offsets, capacity=12) == []


def test_checker_finds_each_kind_of_violation():
    a = Buffer("a", 0, 4, 4)
    b = Buffer("b", 3, 6, 2, alignment=2)
    c = Buffer("c", 4, 8, 3, offset=6)
    assert packing_errors([a, b, c], {"a": 0, "b": 4, "c": 6}, capacity=9) == []
    assert "overlap" in packing_errors([a, b, c], {"a": 0, "b": 2, "c": 6})[0]
    assert "alignment" in packing_errors([a, b, c], {"a": 0, "b": 5, "c": 6})[0]
    assert "pinned" in packing_errors([a, b, c], {"a": 0, "b": 4, "c": 7})[0]
    assert "capacity" in packing_errors([a, b, c], {"a": 0, "b": 4, "c": 6}, capacity=8)[0]
    assert "no offset" in packing_errors([a, b, c], {"a": 0, "b": 4})[0]
    # half-open lifetimes: a ends at 4 where c starts, so they may share addresses
    assert packing_errors([a, c], {"a": 6, "c": 6}) == []


# ---- exactness ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_least_height_matches_exhaustive_search(seed):
    rng = random.Random(seed)
    buffers = random_buffers(rng, rng.randint(2, 6))
    best = least_height(buffers)
    packing = solve(buffers, time_limit=20)
    assert packing_errors(buffers, packing.offsets) == []
    assert packing.height == best
    assert packing.status == "optimal" and packing.lower_bound == best


@pytest.mark.parametrize("seed", range(25))
def test_canonical_search_alone_is_complete(seed):
    """Without CP-SAT: it finds a packing at the optimum and proves that one unit less fails."""
    rng = random.Random(1000 + seed)
    buffers = random_buffers(rng, rng.randint(3, 7), horizon=8)
    best = least_height(buffers)
    unit = unit_of(buffers)
    deadline = time.monotonic() + 20
    for group in split_components(buffers):
        inst = make_instance(group, unit)
        found = search(inst, best // unit, deadline)
        assert found.offsets is not None
        assert packing_errors(list(inst.buffers), inst.to_bytes(found.offsets), capacity=best) == []
    assert any(search(make_instance(g, unit), best // unit - 1, deadline).infeasible for g in split_components(buffers))


@pytest.mark.parametrize("seed", range(10))
def test_cpsat_model_alone_agrees(seed):
    rng = random.Random(2000 + seed)
    buffers = random_buffers(rng, rng.randint(3, 7), horizon=8)
    best = least_height(buffers)
    unit = unit_of(buffers)
    inst = make_instance([b for b in buffers if b.size], unit)
    assert solve_cpsat(inst, best // unit, 20).offsets is not None
    assert solve_cpsat(inst, best // unit - 1, 20).infeasible
    assert solve_cpsat(inst, 3 * best // unit, 20, minimise=True).bound == best // unit


@pytest.mark.parametrize("seed", range(15))
def test_alignment_and_pins_match_exhaustive_search(seed):
    rng = random.Random(3000 + seed)
    buffers = random_buffers(rng, rng.randint(2, 5), sizes=(1, 2, 3, 4))
    buffers = [Buffer(b.id, b.lower, b.upper, b.size, alignment=rng.choice((1, 1, 2, 4))) for b in buffers]
    pinned = buffers[0]
    buffers[0] = Buffer(
        pinned.id,
        pinned.lower,
        pinned.upper,
        pinned.size,
        pinned.alignment,
        offset=pinned.alignment * rng.randint(0, 3),
    )
    best = least_height(buffers)
    packing = solve(buffers, time_limit=20)
    assert packing_errors(buffers, packing.offsets) == []
    assert packing.offsets[pinned.id] == buffers[0].offset
    assert all(packing.offsets[b.id] % b.alignment == 0 for b in buffers)
    assert packing.height == best and packing.status == "optimal"


def test_a_gap_below_a_pinned_buffer_is_used():
    buffers = [Buffer("pin", 0, 10, 4, offset=6), Buffer("a", 0, 5, 6), Buffer("b", 5, 10, 6)]
    packing = solve(buffers)
    assert packing.height == 10 and packing.offsets["a"] == 0 and packing.offsets["b"] == 0


def test_decision_mode_proves_infeasibility_and_raises_the_bound():
    rng = random.Random(7)
    buffers = random_buffers(rng, 6)
    best = least_height(buffers)
    fit = solve(buffers, capacity=best)
    assert fit.fits and fit.status in ("optimal", "feasible")
    assert packing_errors(buffers, fit.offsets, capacity=best) == []
    short = solve(buffers, capacity=best - 1)
    assert short.status == "infeasible" and short.proven and short.lower_bound == best


def test_a_time_limit_of_zero_still_returns_a_valid_packing():
    buffers = random_buffers(random.Random(3), 30, horizon=20)
    packing = solve(buffers, capacity=max_load(buffers), time_limit=0)
    assert packing_errors(buffers, packing.offsets) == []
    assert packing.status in ("optimal", "feasible", "unknown")


def test_same_input_same_packing():
    buffers = random_buffers(random.Random(11), 25, horizon=15)
    assert solve(buffers, time_limit=30).offsets == solve(buffers, time_limit=30).offsets


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 8), st.integers(0, 9)), min_size=1, max_size=25))
def test_every_packing_is_valid_and_bounded(rows):
    buffers = [Buffer(f"t{i}", lo, lo + d, s) for i, (lo, d, s) in enumerate(rows)]
    packing = solve(buffers, time_limit=5)
    assert packing_errors(buffers, packing.offsets) == []
    assert max_load(buffers) <= packing.lower_bound <= packing.height
    assert (packing.status == "optimal") == (packing.height == packing.lower_bound)


def test_greedy_heuristics_give_valid_packings():
    buffers = random_buffers(random.Random(5), 40, horizon=30)
    inst = make_instance(buffers, unit_of(buffers))
    for name in ORDERS:
        for policy in POLICIES:
            offsets = place_in_order(inst, order_of(inst, name), policy)
            assert packing_errors(list(inst.buffers), inst.to_bytes(offsets)) == []


def test_challenging_instance_c_by_search_and_by_cpsat():
    buffers = read_csv(CHALLENGE_C)
    unit = unit_of(buffers)
    (group,) = split_components(buffers)
    inst = make_instance(group, unit)
    for offsets in (
        search(inst, 1048576 // unit, time.monotonic() + 60).offsets,
        solve_cpsat(inst, 1048576 // unit, 60).offsets,
    ):
        assert offsets is not None
        assert packing_errors(buffers, inst.to_bytes(offsets), capacity=1048576) == []


# ---- input errors and the CSV format ---------------------------------------------------------------


def test_pinned_overlap_is_an_input_error():
    with pytest.raises(AllocError, match="overlap"):
        solve([Buffer("a", 0, 3, 4, offset=0), Buffer("b", 2, 5, 4, offset=2)])


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("id,lower,size\n", "lacks column"),
        ("id,lower,upper,size\na,0,2\n", "fields"),
        ("id,lower,upper,size\na,0,x,2\n", "integers"),
        ("id,lower,upper,size\na,3,3,2\n", "empty"),
        ("id,lower,upper,size\na,0,2,2\na,1,2,2\n", "twice"),
        ("id,lower,upper,size,alignment,offset\na,0,2,2,4,6\n", "multiple"),
    ],
)
def test_bad_csv_is_one_clear_error(text, message):
    with pytest.raises(BufferFileError, match=message):
        parse_csv(text, "x.csv")


def test_inclusive_end_column_is_converted():
    (b,) = parse_csv("buffer,start,end,size\nx,2,5,7\n")
    assert (b.id, b.lower, b.upper, b.size) == ("x", 2, 6, 7)


def test_csv_round_trip(tmp_path):
    buffers = [Buffer("a", 0, 3, 8, alignment=4), Buffer("b", 1, 2, 3, offset=8)]
    packing = solve(buffers)
    out = tmp_path / "out.csv"
    write_csv(out, buffers, packing.offsets)
    again = read_csv(out)
    assert [(b.id, b.lower, b.upper, b.size, b.alignment) for b in again] == [
        (b.id, b.lower, b.upper, b.size, b.alignment) for b in buffers
    ]
    assert {b.id: b.offset for b in again} == packing.offsets


# ---- the command line -----------------------------------------------------------------------------


def test_cli_round_trip(tmp_path):
    source = tmp_path / "in.csv"
    shutil.copy(EXAMPLE, source)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["alloc", str(source), "--capacity", "12", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "height 12 B (optimal)" in result.output
    buffers = read_csv(out)
    assert packing_errors(buffers, {b.id: b.offset for b in buffers}, capacity=12) == []


def test_cli_exit_status_for_infeasible_and_bad_input(tmp_path):
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["alloc", str(EXAMPLE), "-c", "11", "-o", str(out)])
    assert result.exit_code == 1 and "INFEASIBLE" in result.output and not out.exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("id,lower,upper,size\nq,5,1,3\n")
    result = CliRunner().invoke(main, ["alloc", str(bad)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "bad.csv:2" in result.output and "Traceback" not in result.output


# ---- scale: structures linear in the instance, every phase bounded -------------------------------


def test_instance_structures_grow_with_the_conflicts_not_the_square():
    from cosma.alloc.generate import guillotine_buffers

    buffers = guillotine_buffers(4_000, seed=1)
    inst = make_instance(buffers, unit_of(buffers))
    ptr, idx = inst.conflict_csr
    assert len(ptr) == inst.n + 1 and len(idx) == ptr[-1]
    assert len(idx) < inst.n * inst.n / 20  # far from dense: each buffer meets a few dozen others
    assert len(inst.load) == inst.sections and inst.sections > 1_000
    assert inst.cover(np.arange(3), 0, 5).shape == (3, 5)  # the cover exists only as windows
    # the sparse conflicts are exactly the pairs whose lifetimes meet
    sample = np.random.default_rng(0).choice(inst.n, 50, replace=False)
    for i in sample.tolist():
        expect = [j for j in range(inst.n) if j != i and inst.lo[i] < inst.hi[j] and inst.lo[j] < inst.hi[i]]
        assert inst.conflicts[i].tolist() == expect


def test_sparse_and_dense_slack_agree():
    from cosma.alloc import search as search_module
    from cosma.alloc.generate import guillotine_buffers

    buffers = guillotine_buffers(300, seed=2)
    inst = make_instance(buffers, unit_of(buffers))
    s = search_module._Search(inst, 1 << 20, deadline=float("inf"))
    rng = np.random.default_rng(1)
    cand = rng.integers(0, 200, inst.n)
    U = np.arange(inst.n)
    dense, sparse = np.zeros(inst.sections, np.int64), np.zeros(inst.sections, np.int64)
    s._update_slack(U, cand, dense, 0, inst.sections)
    order = U[np.argsort(-cand, kind="stable")]
    sparse[:] = s.capacity - search_module._makespan_sparse(
        inst.lo[order], inst.hi[order], inst.size[order], cand[order], 0, inst.sections
    )
    assert (dense == sparse).all()


def test_maximal_sections_match_their_definition():
    from cosma.alloc.cpsat import maximal_sections

    for seed in range(5):
        buffers = random_buffers(random.Random(seed), 30, horizon=25)
        for group in split_components(buffers):
            inst = make_instance(group, unit_of(group))
            live = [np.flatnonzero((inst.lo <= s) & (s < inst.hi)) for s in range(inst.sections)]
            expect = [
                h
                for s, h in enumerate(live)
                if not (s > 0 and np.isin(h, live[s - 1]).all())
                and not (s + 1 < len(live) and np.isin(h, live[s + 1]).all() and len(live[s + 1]) > len(h))
            ]
            assert [m.tolist() for m in maximal_sections(inst)] == [e.tolist() for e in expect]


def test_greedy_out_of_time_still_places_every_buffer():
    from cosma.alloc.generate import guillotine_buffers

    buffers = guillotine_buffers(500, seed=3)
    inst = make_instance(buffers, unit_of(buffers))
    offsets = place_in_order(inst, order_of(inst, "size"), deadline=0.0)  # a deadline long past
    packing = inst.to_bytes(offsets)
    assert packing_errors(buffers, packing) == []


def test_a_large_instance_out_of_time_is_undecided_with_a_valid_packing():
    from cosma.alloc.generate import guillotine_buffers

    buffers = guillotine_buffers(3_000, seed=4)
    packing = solve(buffers, capacity=1 << 20, time_limit=0)
    assert packing.status == "unknown" and packing.nodes == 0  # no phase started after the deadline
    assert packing_errors(buffers, packing.offsets) == []


# ---- gaps: MiniMalloc's ``gaps`` column ------------------------------------------------------------


def _occupied(b: Buffer) -> list[tuple[int, int, int, int]]:
    """The oracle's own reading of gaps: (time lo, time hi, byte lo, byte hi) relative to the offset."""
    marks = [(b.lower, 0, b.size)]
    for g in b.gaps:
        marks += [(g.lower, *(g.window or (0, 0))), (g.upper, 0, b.size)]
    marks.append((b.upper, 0, 0))
    return [(t, marks[k + 1][0], w0, w1) for k, (t, w0, w1) in enumerate(marks[:-1]) if w0 < w1 and t < marks[k + 1][0]]


def _clash(b: Buffer, ob: int, c: Buffer, oc: int) -> bool:
    return any(
        p[0] < q[1] and q[0] < p[1] and ob + p[2] < oc + q[3] and oc + q[2] < ob + p[3]
        for p in _occupied(b)
        for q in _occupied(c)
    )


def least_height_with_gaps(buffers: list[Buffer]) -> int:
    """The optimum by trying every offset of every buffer, gaps read independently of the engine."""
    return least_height(buffers, clash=_clash)


@st.composite
def gapped_buffers(draw, max_n: int = 4) -> list[Buffer]:
    out = []
    for i in range(draw(st.integers(1, max_n))):
        lower = draw(st.integers(0, 6))
        upper = draw(st.integers(lower + 1, 8))
        size = draw(st.integers(1, 4))
        points = sorted(draw(st.sets(st.integers(lower, upper), max_size=4)))
        gaps = []
        for lo, hi in zip(points[::2], points[1::2]):
            if draw(st.booleans()):
                w0 = draw(st.integers(0, size))
                gaps.append(Gap(lo, hi, (w0, draw(st.integers(w0, size)))))
            else:
                gaps.append(Gap(lo, hi))
        out.append(Buffer(f"g{i}", lower, upper, size, alignment=draw(st.sampled_from((1, 1, 2))), gaps=tuple(gaps)))
    return out


@pytest.mark.parametrize(
    "header, row, expect",
    [
        ("id,lower,upper,size", "x,2,5,7", (2, 5)),
        ("buffer,start,end,size", "x,2,5,7", (2, 6)),
        ("buffer_id,begin,end,size", "x,2,5,7", (2, 6)),
        ("Buffer_Id,Begin,Upper,Size", "x,2,5,7", (2, 5)),
    ],
)
def test_header_aliases(header, row, expect):
    (b,) = parse_csv(f"{header}\n{row}\n")
    assert (b.id, b.lower, b.upper, b.size) == ("x", *expect, 7)


def test_gaps_are_read_with_windows_and_end_inclusivity():
    (b,) = parse_csv("id,lower,upper,size,gaps\nx,0,10,8,2-4 5-7@2:6\n")
    assert b.gaps == (Gap(2, 4), Gap(5, 7, (2, 6)))
    (c,) = parse_csv("buffer,begin,end,size,gaps\nx,0,9,8,2-3 5-6@2:6\n")  # inclusive ends, gaps too
    assert c.upper == 10 and c.gaps == b.gaps
    (d,) = parse_csv("id,lower,upper,size,gaps\nx,0,10,8,\n")
    assert d.gaps == ()


@pytest.mark.parametrize(
    "row, message",
    [
        ("x,0,10,8,2-x", r"x.csv:2: gaps item '2-x' is not LO-HI"),
        ("x,0,10,8,2-4@1", r"x.csv:2: gaps item '2-4@1' is not LO-HI"),
        ("x,0,10,8,2-4@3:9", r"x.csv:2: .*window \[3, 9\) outside \[0, 8\)"),
        ("x,0,10,8,8-12", r"x.csv:2: .*inside its lifetime"),
        ("x,0,10,8,2-5 4-6", r"x.csv:2: .*overlaps"),
        ("x,0,10,eight,", r"x.csv:2: size is 'eight'; fields must be integers"),
    ],
)
def test_bad_gaps_are_one_clear_line(row, message):
    with pytest.raises(BufferFileError, match=message) as e:
        parse_csv(f"id,lower,upper,size,gaps\n{row}\n", "x.csv")
    assert "\n" not in str(e.value)


def test_a_column_named_twice_through_an_alias_is_refused():
    with pytest.raises(BufferFileError, match="column lower twice"):
        parse_csv("id,lower,begin,upper,size\nx,0,0,2,2\n", "x.csv")


def test_a_gap_lets_two_buffers_share_space():
    long = Buffer("long", 0, 10, 4)
    mid = Buffer("mid", 3, 7, 4)
    assert solve([long, mid]).height == 8
    plain = Buffer("long", 0, 10, 4, gaps=(Gap(3, 7),))
    windowed = Buffer("long", 0, 10, 4, gaps=(Gap(3, 7, (0, 2)),))
    assert solve([plain, mid]).height == 4
    packing = solve([windowed, mid])
    assert packing.height == 6 and packing.status == "optimal"
    assert packing_errors([windowed, mid], packing.offsets) == []
    # inside the windowed gap the buffer still holds bytes [0, 2): mid at 1 overlaps it, at 2 does not
    assert packing_errors([windowed, mid], {"long": 0, "mid": 2}) == []
    (error,) = packing_errors([windowed, mid], {"long": 0, "mid": 1})
    assert error == "long [0, 2) and mid [1, 5) overlap while both live in [3, 7)"
    # a window high in the range lets another buffer go under it
    high = Buffer("high", 0, 10, 6, gaps=(Gap(3, 7, (4, 6)),))
    assert packing_errors([high, mid], {"high": 2, "mid": 0}) == []
    assert solve([high, Buffer("low", 3, 7, 4, offset=0)]).height == 6


def test_each_engine_uses_a_gap():
    # mid fits only under long's window: height 6 (without the gap: 10)
    buffers = [Buffer("long", 0, 10, 6, gaps=(Gap(3, 7, (4, 6)),)), Buffer("mid", 3, 7, 4), Buffer("end", 0, 2, 1)]
    inst = make_instance(buffers, unit_of(buffers))
    assert inst.unit == 1 and inst.gapped
    found = search(inst, 7, time.monotonic() + 20).offsets
    assert found is not None and packing_errors(buffers, inst.to_bytes(found), capacity=7) == []
    assert search(inst, 6, time.monotonic() + 20).infeasible  # end sits on long: 7 at least
    cp = solve_cpsat(inst, 7, 20)
    assert cp.offsets is not None and packing_errors(buffers, inst.to_bytes(cp.offsets), capacity=7) == []
    assert solve_cpsat(inst, 6, 20).infeasible
    for name in ORDERS:
        offsets = place_in_order(inst, order_of(inst, name), "first-fit")
        assert packing_errors(buffers, inst.to_bytes(offsets)) == []


def test_gaps_round_trip_through_the_csv(tmp_path):
    buffers = [Buffer("a", 0, 10, 4, gaps=(Gap(2, 4), Gap(5, 7, (0, 2)))), Buffer("b", 3, 6, 2)]
    packing = solve(buffers)
    out = tmp_path / "out.csv"
    write_csv(out, buffers, packing.offsets)
    assert out.read_text().splitlines()[0] == "id,lower,upper,size,gaps,offset"
    again = read_csv(out)
    assert [b.gaps for b in again] == [b.gaps for b in buffers]
    assert packing_errors(again, {b.id: b.offset for b in again}) == []


def test_cli_reads_and_writes_gaps(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("buffer,start,end,size,gaps\nlong,0,9,4,3-6\nmid,3,6,4,\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["alloc", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "height 4 B (optimal)" in result.output
    assert out.read_text().splitlines()[1] == "long,0,10,4,3-7,0"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,lower,upper,size,gaps\nq,0,5,3,1-2@0:7\n")
    result = CliRunner().invoke(main, ["alloc", str(bad)])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "bad.csv:2" in result.output


@settings(max_examples=60, deadline=None)
@given(gapped_buffers())
def test_gapped_packings_are_valid_and_optimal_for_every_engine(buffers):
    best = least_height_with_gaps(buffers)
    for engine in ("auto", "search", "cp-sat"):
        packing = solve(buffers, time_limit=20, engine=engine)
        assert packing_errors(buffers, packing.offsets) == []
        assert packing.height == best and packing.status == "optimal"
    unit = unit_of(buffers)
    deadline = time.monotonic() + 20
    groups = [make_instance(g, unit) for g in split_components(buffers)]
    for inst in groups:
        found = search(inst, best // unit, deadline).offsets
        assert found is not None and packing_errors(list(inst.buffers), inst.to_bytes(found), best) == []
        cp = solve_cpsat(inst, best // unit, 20)
        assert cp.offsets is not None and packing_errors(list(inst.buffers), inst.to_bytes(cp.offsets), best) == []
        for name in ORDERS:
            for policy in POLICIES:
                offsets = place_in_order(inst, order_of(inst, name), policy)
                assert packing_errors(list(inst.buffers), inst.to_bytes(offsets)) == []
    if best > 1:  # one unit less: some component is proven not to fit, by each engine
        below = (best - 1) // unit
        assert any(search(inst, below, deadline).infeasible for inst in groups)
        assert any(solve_cpsat(inst, below, 20).infeasible for inst in groups)
