#!/usr/bin/env python3
"""The COSMA protocol on the model zoo, and the regression guard (the successor of ``cosma bench``).

    python benchmarks/bench.py --out bench-out                    # the whole protocol (about an hour on two cores)
    python benchmarks/bench.py --models human -j 2 --time-limit 30 --out /tmp/bench
    python benchmarks/bench.py -j 2 --check --update-reference --update-docs   # refresh the tracked results

Every zoo model (``models/zoo.py``), with its weights in the scratchpad and without, is planned at its
budgets M_R, M_H and M_P by every method of the protocol (:mod:`harness.protocol`); each plan is replayed.
The run writes ``BENCHMARKS.md``, ``benchmarks.csv`` and ``img/bench_*.png`` into ``--out`` (default
``./bench-out``) and compares its rows with ``solvers/reference.json``. It writes into the source tree
only when asked: ``--update-docs`` also writes the report into ``docs/``, ``--update-reference`` merges
the run into the reference (improvements only, unless ``--force``). Exit status: 0; 1 with ``--check``
when the run violates the reference; 2 on bad input.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from harness.outputs import write_outputs
from harness.protocol import (
    COMMAND,
    COSMA_METHODS,
    DEFAULT_TIME_LIMIT,
    ERROR,
    GROUP_METHODS,
    INVALID,
    PROTOCOL_BUDGETS,
    PROTOCOL_METHODS,
    SOURCE_ROOT,
    WEIGHT_VARIANTS,
    BenchConfig,
    variant_label,
)
from harness.reference import Reference, compare_to_reference, merge_reference
from harness.run import run_bench
from harness.stats import DC_GROUPS, dc_instances, dc_summary, instances, reductions
from harness.zoo import load_zoo

from cosma.errors import OptionError
from cosma.methods import METHODS

#: Where a run writes unless told otherwise: a folder of the current directory, never the source tree.
DEFAULT_OUT = Path("bench-out")
DOCS = SOURCE_ROOT / "docs"
REFERENCE = SOURCE_ROOT / "solvers" / "reference.json"


def split_list(values: Iterable[str]) -> tuple[str, ...]:
    """Repeated and comma-separated option values as one tuple: ``("a,b", "c")`` -> ``("a", "b", "c")``."""
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def bench_command(
    *,
    out_dir: str | Path = DEFAULT_OUT,
    models: Sequence[str] = (),
    methods: Sequence[str] = (),
    budgets: Sequence[str] = (),
    weights: str = "both",
    time_limit: float = DEFAULT_TIME_LIMIT,
    jobs: int = 1,
    seed: int = 0,
    zoo_dir: str | Path | None = None,
    reference_path: str | Path = REFERENCE,
    update_reference: bool = False,
    force: bool = False,
    update_docs: bool = False,
    docs_dir: str | Path = DOCS,
    check: bool = False,
    inplace: bool = False,
    plans_dir: str | Path = "",
    command: str = "",
    echo: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Run, write the report into ``out_dir`` (and ``docs_dir`` with ``update_docs``), compare with the
    reference (and merge into it with ``update_reference``).

    Returns the exit status: 1 when ``check`` is set and the run violates the reference, else 0.
    """
    variants = {"both": WEIGHT_VARIANTS, "with": (True,), "without": (False,)}
    if weights not in variants:
        raise OptionError(f"--weights {weights!r}: choose both, with or without")
    # named methods run exactly as named, on every model; the protocol adds its group methods
    config = BenchConfig(
        models=tuple(models),
        methods=tuple(methods) or PROTOCOL_METHODS,
        group_methods={} if methods else dict(GROUP_METHODS),
        budgets=tuple(b.upper() for b in budgets) or PROTOCOL_BUDGETS,
        weights=variants[weights],
        time_limit=time_limit,
        jobs=jobs,
        seed=seed,
        inplace=inplace,
        plans_dir=str(plans_dir),
    )
    if inplace and update_reference:
        raise OptionError(
            "--update-reference with --inplace: the reference is COSMA's protocol without in-place; drop one"
        )
    known = {*METHODS, *PROTOCOL_METHODS, *COSMA_METHODS}  # protocol names not registered yet run as `missing`
    unknown = [m for m in config.methods if m not in known]
    if unknown:
        raise OptionError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}, auto")
    zoo = load_zoo(zoo_dir)
    ref_path = Path(reference_path)
    reference = Reference.load(ref_path)
    result = run_bench(config, zoo, command=command, progress=progress)
    written = []
    for folder in (Path(out_dir), *([Path(docs_dir)] if update_docs else [])):
        written += write_outputs(
            result, folder, reference=None if inplace else reference, reference_path=_display_path(ref_path)
        )

    for red in reductions(result.rows):
        if red.average is not None:
            echo(
                f"{red.group} ({variant_label(red.weights)}): average reduction at M_R {100 * red.average:.1f}% "
                f"over {len(red.per_model)} models"
                + (
                    ""
                    if red.average_with_traffic is None
                    else f", {100 * red.average_with_traffic:.1f}% over the {len(red.with_traffic)} with traffic"
                )
            )
    found = dc_instances(result)
    if found:
        dc = dc_summary(found)
        best = dc.changes["best"][0]
        echo(
            f"dc on {', '.join(DC_GROUPS)}: {dc.valid} of {dc.runs} valid, longest {dc.longest_seconds:.1f} s, "
            + ("-" if best is None else f"{100 * best:+.1f}%")
            + " against the best baseline"
        )
    summaries = [s for s in instances(result.rows) if s.best_extra_bytes is not None]
    echo(
        f"{sum(s.proven for s in summaries)} of {len(summaries)} instances proven optimal; "
        f"{sum(r.status in (ERROR, INVALID) for r in result.rows)} failed runs; "
        + (f"missing methods: {', '.join(result.missing_methods)}; " if result.missing_methods else "")
        + (f"{result.seconds:.0f} s" if result.seconds < 120 else f"{result.seconds / 60:.1f} min")
    )
    # with pairs the budgets themselves shrink: the reference's bytes and traffic are not comparable
    violations = [] if inplace else compare_to_reference(result.rows, reference)
    echo(
        f"in-place run: not compared with {_display_path(ref_path)} (its budgets are without in-place)"
        if inplace
        else f"{len(violations)} violation(s) of {_display_path(ref_path)}"
    )
    for v in violations[:20]:
        echo(f"  {v}")
    if update_reference:
        merged = merge_reference(reference, result.rows, force=force)
        merged.reference.save(ref_path)
        echo(f"reference: {len(merged.changes)} change(s) -> {_display_path(ref_path)}")
        for c in merged.changes[:20]:
            echo(f"  {c}")
        if merged.refused:
            echo(f"kept {len(merged.refused)} better reference value(s) (--force replaces them):")
            for c in merged.refused[:20]:
                echo(f"  {c}")
    echo("wrote " + ", ".join(_display_path(p) for p in written))
    return 1 if check and violations else 0


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=COMMAND,
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for BENCHMARKS.md, benchmarks.csv and img/bench_*.png",
    )
    p.add_argument(
        "--models",
        action="append",
        default=[],
        metavar="NAMES",
        help="zoo models or groups, comma-separated (default: every human, nas, random and everyday model)",
    )
    p.add_argument(
        "--methods",
        action="append",
        default=[],
        metavar="NAMES",
        help="methods, comma-separated (default: the protocol's: four baselines, fixed-order, auto; "
        "dc too on the nas and random models)",
    )
    p.add_argument(
        "--budgets", action="append", default=[], metavar="NAMES", help="budgets, comma-separated (default: all)"
    )
    p.add_argument("--weights", choices=("both", "with", "without"), default="both", help="weights in the scratchpad")
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT, help="seconds per solve")
    p.add_argument("--jobs", "-j", type=int, default=1, help="solves at a time (a process pool)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--zoo-dir", type=Path, default=None, help="folder with zoo.py and the .onnx files (default: models/)"
    )
    p.add_argument("--reference", type=Path, default=REFERENCE, help="reference results to compare with")
    p.add_argument("--check", action="store_true", help="exit 1 when the run violates the reference")
    p.add_argument(
        "--update-reference", action="store_true", help="merge this run into the reference (only improvements)"
    )
    p.add_argument("--force", action="store_true", help="with --update-reference: also replace better values")
    p.add_argument("--update-docs", action="store_true", help="also write the report into docs/ of the source tree")
    p.add_argument(
        "--inplace",
        action="store_true",
        help="load the zoo with the front end's in-place pairs (off: COSMA's protocol, as solvers/reference.json)",
    )
    p.add_argument("--save-plans", type=Path, default=None, help="folder where every plan is saved as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no line per finished solve")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    typed = list(sys.argv[1:] if argv is None else argv)
    try:
        return bench_command(
            out_dir=args.out,
            models=split_list(args.models),
            methods=split_list(args.methods),
            budgets=split_list(args.budgets),
            weights=args.weights,
            time_limit=args.time_limit,
            jobs=args.jobs,
            seed=args.seed,
            zoo_dir=args.zoo_dir,
            reference_path=args.reference,
            update_reference=args.update_reference,
            force=args.force,
            update_docs=args.update_docs,
            check=args.check,
            inplace=args.inplace,
            plans_dir=args.save_plans or "",
            command=" ".join([COMMAND, *(shlex.quote(a) for a in typed)]),
            progress=None if args.quiet else (lambda line: print(f"  {line}", file=sys.stderr, flush=True)),
        )
    except OptionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
