"""The offline allocation engine: exactness against exhaustive search, the independent checker,
pinned offsets, alignment, the CSV format and ``cosma alloc``."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cosma.alloc import AllocError, Buffer, BufferFileError, max_load, packing_errors, read_csv, solve, write_csv
from cosma.alloc.buffers import parse_csv
from cosma.alloc.cpsat import solve_cpsat
from cosma.alloc.greedy import ORDERS, POLICIES, order_of, place_in_order
from cosma.alloc.problem import make_instance, split_components, unit_of
from cosma.alloc.search import search
from cosma.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "input.12.csv"
CHALLENGE_C = Path(__file__).resolve().parent / "data" / "minimalloc" / "C.1048576.csv"


# ---- the oracle: try every offset of every buffer ------------------------------------------------


def _fits_everything(buffers: list[Buffer], height: int) -> bool:
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
            if all(not b.conflicts(c) or o + b.size <= oc or oc + c.size <= o for c, oc in placed):
                placed.append((b, o))
                if extend(k + 1):
                    return True
                placed.pop()
        return False

    return extend(0)


def least_height(buffers: list[Buffer]) -> int:
    """The optimum by exhaustive enumeration of offsets (tiny instances only)."""
    height = max([max_load(buffers)] + [b.offset + b.size for b in buffers if b.offset is not None])
    while not _fits_everything(buffers, height):
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
    sparse[:] = s.capacity - s._makespan_sparse(order, cand, 0, inst.sections)
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
