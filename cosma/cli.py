"""The ``cosma`` command line: parse, call the Python API, print. No planning logic lives here.

Every command ends through one error path (:meth:`_Cli.invoke`) with a status of :class:`~cosma.errors.ExitCode`:
bad input is one line on stderr naming the problem and the fix, and exit status 2; a bug is one line
naming the exception and the log file holding its traceback, and exit status 70.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cosma.errors import CosmaError, ExitCode, OptionError
from cosma.options import MINPEAK_TIME_LIMIT
from cosma.units import format_size

# Solvers, rich, ONNX and matplotlib load inside the commands that use them, so `cosma --help` starts in well
# under half a second (`python -X importtime -c "import cosma.cli"` shows what loads).

if TYPE_CHECKING:
    from rich.console import Console


def _console() -> Console:
    """Rich output on stdout; piped, tables keep their natural width instead of being cut to 80 columns."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 100_000)


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _verbosity() -> int:
    """-1 with -q, 0 by default, 1 or more with -v (the group's options, before the command)."""
    ctx = click.get_current_context(silent=True)
    return 0 if ctx is None else int(ctx.find_root().meta.get("cosma.verbosity", 0))


def _examples(*lines: str) -> str:
    """A command's epilog: its examples, kept as written by click's formatter."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


EXIT_STATUS_HELP = "\b\nExit status, the same for every command:\n" + "\n".join(
    f"  {code.value:>3}  {code.meaning}" for code in ExitCode
)


def _exit(code: ExitCode, line: str) -> NoReturn:
    click.echo(line, err=True)
    sys.exit(int(code))


def _fail(message: str) -> NoReturn:
    _exit(ExitCode.BAD_INPUT, f"error: {message}")


class _BackendChoice(click.Choice):
    """``auto`` and the registered solver backends, read from the registry whenever asked (so a backend
    registered after this module loaded is a choice too)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from cosma.backends import backend_names

        return ("auto", *backend_names())

    @choices.setter
    def choices(self, value: object) -> None:
        pass  # click.Choice.__init__ assigns it; the registry is the one list


class _SolverOption(click.Option):
    """--solver, whose help names each backend: written when the help is shown, so that start-up does not
    import every solver."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from cosma.backends import DEFAULT_BACKEND, backend_names, get_backend

        names = [f"auto = {DEFAULT_BACKEND}", *(f"{n}: {get_backend(n).summary}" for n in backend_names())]
        self.help = "Backend of the exact methods: " + "; ".join(names) + "."
        return super().get_help_record(ctx)


def _crash_log(error: BaseException) -> Path:
    """Write the command line and ``error``'s traceback to cosma-crash-<pid>.log in the temp folder."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("cosma")
    except PackageNotFoundError:
        release = "unknown"
    path = Path(tempfile.gettempdir()) / f"cosma-crash-{os.getpid()}.log"
    path.write_text(
        f"cosma {release}, Python {sys.version.split()[0]}\ncommand: {' '.join(sys.argv)}\n\n"
        + "".join(traceback.format_exception(type(error), error, error.__traceback__))
    )
    return path


def _internal_error(error: Exception) -> NoReturn:
    """One line naming the bug and where its traceback went, exit 70 (never 1: that is an answer)."""
    name = f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    try:
        log = _crash_log(error)
    except OSError as e:  # no log: the traceback goes to stderr after the line, rather than nowhere
        click.echo(f"internal error: {name} (cannot write a crash log: {e.strerror or e}; traceback follows)", err=True)
        click.echo("".join(traceback.format_exception(type(error), error, error.__traceback__)), err=True)
        sys.exit(int(ExitCode.INTERNAL))
    _exit(ExitCode.INTERNAL, f"internal error: {name} (a bug in cosma; traceback in {log}, please report it)")


def _output_closed() -> NoReturn:
    """The reader of stdout went away (``cosma check ... | head``): stop quietly, like an interrupt."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # not a real file under a test runner
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not raise again
    _exit(ExitCode.INTERRUPTED, "interrupted: the output was closed")


@contextlib.contextmanager
def _usage_errors_in_one_line() -> Iterator[None]:
    """Click's usage errors (unknown option, bad value) as one line on stderr and exit 2, without the usage block."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # a bare `cosma` prints the help
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "cosma"
        _fail(f"{e.format_message()} (see '{where} --help')")


class _Cli(click.Group):
    """The command group; parsing happens in make_context and, for subcommands, in invoke.

    :meth:`invoke` is the one error path of every command: a command returns an :class:`ExitCode`
    (or None for done) or raises; the exception's kind decides the status.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with _usage_errors_in_one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _usage_errors_in_one_line():
                status = super().invoke(ctx)
        except click.exceptions.Exit:
            raise  # --help, --version, ctx.exit(): click's own way out, with its status
        except (KeyboardInterrupt, click.exceptions.Abort):
            _exit(ExitCode.INTERRUPTED, "interrupted before a result was written")
        except CosmaError as e:
            _exit(e.exit_code, f"error: {e}" if e.exit_code == ExitCode.BAD_INPUT else str(e))
        except click.ClickException as e:  # raised by click helpers inside a command: about the input
            _fail(e.format_message())
        except BrokenPipeError:
            _output_closed()
        except Exception as e:
            _internal_error(e)
        if status is not None and status != ExitCode.DONE:
            sys.exit(int(status))
        return status


def _check_writable(path: Path, what: str, option: str) -> None:
    """Refuse an output in a missing or read-only folder before the work, not after it."""
    folder = path.parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise CosmaError(f"cannot write {what} to {path}: {folder} {problem}; choose another {option}")
    if not os.access(folder, os.W_OK):
        raise CosmaError(f"cannot write {what} to {path}: {folder} is read-only; choose another {option}")
    try:  # os.access says yes to root on a read-only mount or /proc: create a file to be sure
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as e:
        raise CosmaError(f"cannot write {what} to {path}: {e.strerror or e}; choose another {option}") from None
    os.close(fd)
    os.unlink(probe)


@contextlib.contextmanager
def _writing(path: Path, what: str, option: str) -> Iterator[None]:
    """An OSError while writing ``path`` as one line naming ``path`` (not the hidden temporary file beside it)."""
    try:
        yield
    except OSError as e:
        raise CosmaError(f"cannot write {what} to {path}: {e.strerror or e}; choose another {option}") from None


def _parse_input_shapes(values: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for v in values:
        name, sep, dims = v.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            shapes[name] = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            raise click.BadParameter(f"{v!r}: write NAME=1x3x224x224", param_hint="--input-shape") from None
    return shapes


def _remember_fold(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # Kept in the context, not in every command's signature: only _load reads the fold switches.
    ctx.meta[f"cosma.{param.name}"] = value


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options that shape how an ONNX file is lowered to a graph (shared by every model command)."""
    options = [
        click.argument("model", type=click.Path(dir_okay=False, path_type=Path)),
        click.option(
            "--input-shape",
            "input_shapes",
            multiple=True,
            metavar="NAME=DxDxD",
            help="Fix a symbolic input shape, e.g. input=1x3x224x224 (repeatable).",
        ),
        click.option(
            "--element-bytes",
            type=click.IntRange(min=1),
            default=None,
            help="Bytes per element for every tensor (int8 accelerator: 1); default: the ONNX dtype's.",
        ),
        click.option(
            "--weights/--no-weights",
            default=True,
            show_default=True,
            help="Whether weights occupy the scratchpad (--no-weights: activation-only study).",
        ),
        click.option(
            "--fuse/--no-fuse",
            default=True,
            show_default=True,
            help="Fold elementwise epilogues (BatchNorm, Relu, bias Add...) into their producer.",
        ),
        click.option(
            "--no-fold-bn",
            is_flag=True,
            expose_value=False,
            callback=_remember_fold,
            help="Keep BatchNorm (and constant Mul/Add) after Conv/Gemm instead of folding it in.",
        ),
        click.option(
            "--no-fold-if",
            is_flag=True,
            expose_value=False,
            callback=_remember_fold,
            help="Keep If nodes with a constant condition (then refused as control flow).",
        ),
        click.option(
            "--no-inplace",
            is_flag=True,
            expose_value=False,
            callback=_remember_fold,
            help="Let no operator write its output over an input (COSMA's figures, before in-place operators).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _load(model: Path, input_shapes: tuple[str, ...], element_bytes: int | None, weights: bool, fuse: bool):
    from cosma.frontend import load_model

    meta = click.get_current_context().meta
    return load_model(
        model,
        input_shapes=_parse_input_shapes(input_shapes),
        element_bytes=element_bytes,
        weights=weights,
        fuse=fuse,
        fold_batchnorm=not meta.get("cosma.no_fold_bn", False),
        fold_if=not meta.get("cosma.no_fold_if", False),
        inplace=not meta.get("cosma.no_inplace", False),
    )


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value:
        level = ctx.meta.get("cosma.verbosity", 0)
        ctx.meta["cosma.verbosity"] = level + value if param.name == "verbose" else -1


@click.group(
    cls=_Cli,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_examples(
        "cosma inspect models/tiny_cnn.onnx",
        "cosma compile models/tiny_cnn.onnx -s M_R -o plan.json",
        "cosma -q compile models/tiny_cnn.onnx -s 64KiB --json > summary.json",
    )
    + "\n\n"
    + EXIT_STATUS_HELP,
)
@click.version_option(package_name="cosma")
@click.option(
    "--verbose",
    "-v",
    count=True,
    expose_value=False,
    callback=_set_verbosity,
    help="Say more on stderr: the phases of a solve (compile), every point (sweep).",
)
@click.option(
    "--quiet",
    "-q",
    count=True,
    expose_value=False,
    callback=_set_verbosity,
    help="Say nothing on stderr but errors: no live line, no progress bar, no notes.",
)
def main() -> None:
    """cosma: plan operator order, scratchpad addresses and evictions for a DNN accelerator."""


@main.command(
    epilog=_examples(
        "cosma inspect models/resnet50.onnx --element-bytes 1 --top 5",
        "cosma inspect models/tiny_cnn.onnx --json | python -m json.tool",
    )
)
@model_options
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True, help="Largest operators to list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout (every operator, not only --top).")
def inspect(model: Path, input_shapes, element_bytes, weights, fuse, top: int, as_json: bool) -> None:
    """Show a model's operators, tensors, sizes, M_R and the default order's peak."""
    from rich.table import Table

    graph = _load(model, input_shapes, element_bytes, weights, fuse)
    if as_json:
        click.echo(json.dumps(_inspect_json(graph)))
        return
    table = Table(title=f"{graph.name}: {len(graph.ops)} operators, {len(graph.tensors)} tensors", show_header=False)
    table.add_row("weights", format_size(graph.bytes_of_kind("weight")))
    table.add_row("activations + outputs", format_size(graph.bytes_of_kind("activation", "output")))
    table.add_row("inputs", format_size(graph.bytes_of_kind("input")))
    if graph.ops:
        largest = graph.largest_op()
        table.add_row("M_R (largest working set)", f"{graph.min_scratchpad} B ({largest.name})")
        table.add_row("peak of the default order", f"{graph.peak()} B")
    _console().print(table)
    if top and graph.ops:
        ops = Table(title=f"largest {min(top, len(graph.ops))} operators by working set")
        for column in ("operator", "type", "working set", "inputs", "outputs"):
            ops.add_column(column)
        for o in sorted(graph.ops, key=lambda o: -graph.working_set(o.name))[:top]:
            ops.add_row(
                o.name,
                "+".join((o.op_type, *o.fused)),
                str(graph.working_set(o.name)),
                str(len(o.inputs)),
                str(len(o.outputs)),
            )
        _console().print(ops)


def _inspect_json(graph: Any) -> dict[str, Any]:
    largest = graph.largest_op() if graph.ops else None
    return {
        "model": graph.name,
        "ops": len(graph.ops),
        "tensors": len(graph.tensors),
        "weight_bytes": graph.bytes_of_kind("weight"),
        "activation_bytes": graph.bytes_of_kind("activation", "output"),
        "input_bytes": graph.bytes_of_kind("input"),
        "min_scratchpad": graph.min_scratchpad if graph.ops else 0,
        "largest_op": None if largest is None else largest.name,
        "default_order_peak": graph.peak() if graph.ops else 0,
        "operators": [
            {
                "name": o.name,
                "type": "+".join((o.op_type, *o.fused)),
                "working_set": graph.working_set(o.name),
                "inputs": list(o.inputs),
                "outputs": list(o.outputs),
            }
            for o in graph.ops
        ],
    }


class _MethodChoice(click.Choice):
    """``--method``'s choices: ``auto`` and the registered methods, read from the registry when parsed or
    shown (importing it at start-up is slow, and a method registered at run time is a choice too)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from cosma.methods import method_names

        return method_names()

    @choices.setter
    def choices(self, _: object) -> None:
        pass  # Choice.__init__ stores its argument; the registry is the one source instead

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        return f"unknown method {value!r}; choose one of: {', '.join(self.choices)}"


def placement_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--allocator`` and ``--alignment``, the same for every command that plans."""
    func = click.option(
        "--alignment",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Every offset is a multiple of this many bytes.",
    )(func)
    return click.option(
        "--allocator",
        type=click.Choice(["first-fit", "best-fit"]),
        default="first-fit",
        show_default=True,
        help="Address allocator of the baselines (and of the warm start of the exact methods).",
    )(func)


@main.command(
    name="compile",
    epilog=_examples(
        "cosma compile models/tiny_cnn.onnx -s M_R -o plan.json",
        "cosma compile models/resnet50.onnx --element-bytes 1 -s 3MiB --time-limit 30 -o plan.json",
        "cosma compile models/tiny_cnn.onnx -s M_H --method default+belady --json",
    ),
)
@model_options
@click.option(
    "--scratchpad",
    "-s",
    required=True,
    metavar="SIZE",
    help="Scratchpad size: bytes, or with a unit (512KiB, 1MiB, 2MB), or a budget name (M_R, M_H, M_P).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the plan JSON (written atomically, after validation). Without it no plan is written "
    "and a note on stderr says so; the summary is still printed.",
)
@click.option(
    "--method", type=_MethodChoice(), default="auto", show_default=True, help="Planning method (see `cosma methods`)."
)
@placement_options
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds for the whole search; the best plan found by then is written.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="OS threads for the solver (CP-SAT, HiGHS). CP-SAT runs its portfolio interleaved: the plan is the same for "
    "any count from 2 on (1 may differ); --solver-param interleave_search=false races them (not reproducible).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Solver random seed: the same seed, threads and limits give the same plan.",
)
@click.option(
    "--solver",
    type=_BackendChoice(),
    cls=_SolverOption,
    default="auto",
    show_default=True,
    help="Backend of the exact methods.",
)
@click.option(
    "--solver-param",
    "solver_params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A backend parameter passed through by name, e.g. log_search_progress=true (repeatable).",
)
@click.option(
    "--segment-ops",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Divide and conquer with windows of N operators (implies --method dc when the method is auto).",
)
@click.option(
    "--dump-model",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Also write every solver model built to DIR, in its backend's format (CP-SAT .pb.txt, MILP .mps).",
)
@click.option("--quiet", "-q", is_flag=True, help="No live line (as `cosma -q`).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="The summary as one JSON object on stdout (plan file, summary, model); nothing else on stdout.",
)
def compile_cmd(
    model: Path,
    input_shapes,
    element_bytes,
    weights,
    fuse,
    scratchpad: str,
    output: Path | None,
    method: str,
    allocator: str,
    alignment: int,
    time_limit: float,
    threads: int,
    seed: int,
    solver: str,
    solver_params: tuple[str, ...],
    segment_ops: int | None,
    dump_model: Path | None,
    quiet: bool,
    as_json: bool,
) -> ExitCode:
    """Plan MODEL for a scratchpad of SIZE and write the plan JSON."""
    from cosma.backends.base import parse_solver_params
    from cosma.methods import compile as compile_graph
    from cosma.units import parse_size

    quiet = quiet or _verbosity() < 0
    if output is not None:
        _check_writable(output, "the plan", "--output")
    if dump_model is not None:
        try:
            dump_model.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OptionError(f"--dump-model {dump_model}: {e.strerror}; give a folder that can be written") from None
    if scratchpad.strip().upper() not in ("M_R", "M_H", "M_P") and parse_size(scratchpad) <= 0:
        raise OptionError(f"--scratchpad {scratchpad} is 0 B; give a positive size such as 512KiB, or M_R")
    graph = _load(model, input_shapes, element_bytes, weights, fuse)
    plan = compile_graph(
        graph,
        scratchpad,  # compile resolves budget names within the time limit
        method=method,
        alignment=alignment,
        allocator=allocator,
        time_limit=time_limit,
        threads=threads,
        seed=seed,
        quiet=quiet,
        solver=solver,
        solver_params=parse_solver_params(solver_params),
        segment_ops=segment_ops or None,
        dump_model=None if dump_model is None else str(dump_model),
    )
    if output is not None:
        with _writing(output, "the plan", "--output"):
            plan.save(output)
    s = plan.summary
    # the search caught Ctrl-C and returned its best plan, written above: say so, and exit 130
    interrupted = bool(s.details.get("interrupted"))
    if _verbosity() > 0:
        for phase in s.details.get("phases", []):
            click.echo("  " + ", ".join(f"{k} {v}" for k, v in phase.items() if v not in (None, [], {})), err=True)
    if output is None and not quiet:
        click.echo("note: the plan was not written; give -o PLAN.json to keep it", err=True)
    if as_json:
        record = {"model": graph.name, "ops": len(graph.ops), "plan": None if output is None else str(output)}
        click.echo(json.dumps({**record, "interrupted": interrupted, "summary": s.to_dict()}))
        return ExitCode.INTERRUPTED if interrupted else ExitCode.DONE
    bound = "no bound" if s.bound is None else f"bound {s.bound} B"
    gap = "n/a" if s.gap is None else f"{100 * s.gap:.1f}%"
    click.echo(
        f"{graph.name}: {len(graph.ops)} ops, scratchpad {plan.accelerator.scratchpad_bytes} B, method {s.method}: "
        f"offchip {s.offchip_bytes} B (compulsory {s.compulsory_bytes}, extra {s.extra_bytes}), "
        f"{bound}, gap {gap}, {s.status}{', interrupted' if interrupted else ''}, {s.total_seconds:.2f} s"
        + (f" -> {output}" if output is not None else "")
    )
    return ExitCode.INTERRUPTED if interrupted else ExitCode.DONE


@main.command(
    epilog=_examples("cosma check plan.json", "cosma check --json plans/*.json | jq .extra_bytes"),
)
@click.argument("plans", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per plan on stdout (one a line), invalid and unreadable ones too.",
)
def check(plans: tuple[Path, ...], as_json: bool) -> ExitCode:
    """Replay plan files against the machine model: exit 0 valid, 1 invalid, 2 unreadable."""
    from dataclasses import asdict

    from cosma.contract import replay
    from cosma.errors import PlanInvalid

    worst = ExitCode.DONE
    for path in plans:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            click.echo(f"{path}: unreadable: {e}", err=True)
            if as_json:
                click.echo(json.dumps({"plan": str(path), "valid": False, "unreadable": str(e)}))
            worst = max(worst, ExitCode.BAD_INPUT)
            continue
        try:
            result = replay(data)
        except PlanInvalid as e:
            if as_json:
                click.echo(json.dumps({"plan": str(path), "valid": False, "error": str(e), "step": e.step}))
            else:
                click.echo(f"{path}: INVALID: {e}")
            worst = max(worst, ExitCode.NEGATIVE)
            continue
        if as_json:
            click.echo(json.dumps({"plan": str(path), "valid": True, **asdict(result)}))
        else:
            click.echo(
                f"{path}: valid: {result.ops} ops, {result.tensors} tensors, offchip {result.offchip_bytes} B "
                f"(compulsory {result.compulsory_bytes}, extra {result.extra_bytes}), "
                f"peak resident {result.peak_resident_bytes} of {result.scratchpad_bytes}"
            )
    return worst


@main.command(
    name="budgets",
    epilog=_examples(
        "cosma budgets models/resnet50.onnx --element-bytes 1", "cosma budgets models/tiny_cnn.onnx --json"
    ),
)
@model_options
@click.option(
    "--alignment",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Count every tensor at its size rounded up to this many bytes.",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0),
    default=MINPEAK_TIME_LIMIT,
    show_default=True,
    help="Seconds for each minimum-peak search (it stops on a work budget for that many seconds).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def budgets_cmd(
    model: Path, input_shapes, element_bytes, weights, fuse, alignment: int, time_limit: float, as_json: bool
) -> None:
    """Print MODEL's scratchpad budgets M_R, M_H and M_P, with and without weights (--no-weights: without only)."""
    from dataclasses import asdict

    from rich.table import Table

    from cosma.budgets import budgets, graph_budgets

    graph = _load(model, input_shapes, element_bytes, weights, fuse)
    if weights:
        both = budgets(graph, alignment=alignment, time_limit=time_limit)
        columns = {"with weights": both.with_weights, "without weights": both.without_weights}
    else:
        columns = {"without weights": graph_budgets(graph, alignment=alignment, time_limit=time_limit)}
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": graph.name,
                    "ops": len(graph.ops),
                    "alignment": alignment,
                    **{k.replace(" ", "_"): asdict(v) for k, v in columns.items()},
                }
            )
        )
        return
    table = Table(title=f"{graph.name}: {len(graph.ops)} operators, alignment {alignment}")
    table.add_column("budget")
    for name in columns:
        table.add_column(name, justify="right")
    rows = [("M_R", "largest working set"), ("M_H", "(M_R+M_P)/2"), ("M_P", "minimum peak")]
    for key, meaning in rows:
        table.add_row(f"{key}  ({meaning})", *(f"{b.get(key)} B ({format_size(b.get(key))})" for b in columns.values()))
    table.add_row(
        "M_P proven minimal", *("yes" if b.m_p_proven else f"no (>= {b.m_p_bound} B)" for b in columns.values())
    )
    _console().print(table)


@main.command(epilog=_examples("cosma methods", "cosma compile models/tiny_cnn.onnx -s M_R --method minpeak+belady"))
def methods() -> None:
    """List the planning methods that --method accepts, each with what it does."""
    from cosma.methods import AUTO, AUTO_DESCRIPTION, METHODS, method_spec

    rows = [(AUTO, AUTO_DESCRIPTION)] + [(name, method_spec(name).description) for name in METHODS]
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        click.echo(f"{name:<{width}}  {description}")


@main.command(name="reproduce", epilog=_examples("cosma reproduce plan.json --model models/tiny_cnn.onnx"))
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The model file (default: the file name PLAN records, beside PLAN).",
)
def reproduce_command(plan: Path, model: Path | None) -> None:
    """Plan again from PLAN's provenance; exit 1 when the new plan differs (a time-limited solve may)."""
    from cosma.reproduce import reproduce

    result = reproduce(plan, model)
    difference = result.first_difference
    if difference is not None:
        _exit(ExitCode.NEGATIVE, f"{plan}: not reproduced: {difference}")
    click.echo(f"{plan}: reproduced, {len(result.again.steps)} steps, extra {result.again.summary.extra_bytes} B")


def _parse_window(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    start, sep, end = text.partition(":")
    try:
        window = (float(start), float(end))
        if not sep or window[1] <= window[0]:
            raise ValueError
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: write START:END with START < END, e.g. 100:200", param_hint="--window"
        ) from None
    return window


@main.command(
    epilog=_examples(
        "cosma show plan.json -o timeline.svg --window 100:200",
        "cosma show plan.json --text            # a memory map in the terminal",
    )
)
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Picture to write: .png, .svg or .pdf (default: PLAN's name with .png).",
)
@click.option(
    "--text",
    is_flag=True,
    help="Print a text memory map instead (one line per operator, tensors as letters); no picture.",
)
@click.option(
    "--time",
    "time_axis",
    type=click.Choice(["op", "step"]),
    default="op",
    show_default=True,
    help="Time axis: one unit per operator run, or one per step.",
)
@click.option("--window", metavar="START:END", default=None, help="Draw only this part of the time axis, e.g. 100:200.")
@click.option(
    "--width",
    type=click.FloatRange(min=4, max=300),
    default=None,
    help="Picture width in inches (default: grows with the plan, 10 to 80).",
)
@click.option("--labels/--no-labels", default=True, show_default=True, help="Write tensor names where they fit.")
def show(
    plan: Path,
    output: Path | None,
    text: bool,
    time_axis: str,
    window: str | None,
    width: float | None,
    labels: bool,
) -> None:
    """Draw PLAN's scratchpad over time: one rectangle per resident tensor, spills and reloads marked.

    The plan is replayed first; one that fails the replay is refused (exit 1), and every number drawn is the
    replay's."""
    from cosma.viz import load_plan, save_timeline

    if text:
        from cosma.memmap import memory_map

        columns = int(width) if width is not None else max(20, min(100, _console().width - 40))
        for line in memory_map(load_plan(plan), width=columns):
            click.echo(line)
        return
    output = output or plan.with_suffix(".png")
    _check_writable(output, "the picture", "--output")
    loaded = load_plan(plan)
    with _writing(output, "the picture", "--output"):
        path = save_timeline(
            loaded, output, time_axis=time_axis, window=_parse_window(window), width=width, labels=labels
        )
    click.echo(f"{plan} -> {path}")


@main.command(epilog=_examples("cosma report plan.json -o report.html"))
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML page to write (default: PLAN's name with .html).",
)
def report(plan: Path, output: Path | None) -> None:
    """Write one self-contained HTML page about PLAN: summary, timeline, traffic by tensor, steps."""
    from cosma.report import write_report
    from cosma.viz import load_plan

    output = output or plan.with_suffix(".html")
    _check_writable(output, "the page", "--output")
    loaded = load_plan(plan)
    with _writing(output, "the page", "--output"):
        path = write_report(loaded, output)
    click.echo(f"{plan} -> {path}")


def _load_options_only(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of :func:`model_options` without its MODEL argument (for commands taking several models)."""
    probe = model_options(lambda: None)
    params = getattr(func, "__click_params__", [])
    params.extend(p for p in getattr(probe, "__click_params__", []) if not isinstance(p, click.Argument))
    func.__click_params__ = params  # type: ignore[attr-defined]
    return func


@main.command(
    name="sweep",
    epilog=_examples(
        "cosma sweep models/tiny_cnn.onnx --points 5 -o sweep.csv",
        "cosma sweep models/resnet50.onnx --method default+belady --method auto --ray",
    ),
)
@click.argument("models", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))  # none: sweep() says so
@_load_options_only
@click.option(
    "--from",
    "start",
    default="M_R",
    show_default=True,
    metavar="SIZE",
    help="Smallest scratchpad: a size (512KiB) or a budget name (M_R, M_H, M_P), for each model.",
)
@click.option("--to", "stop", default="M_P", show_default=True, metavar="SIZE", help="Largest scratchpad.")
@click.option(
    "--points",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Scratchpad sizes per model, evenly spaced from --from to --to.",
)
@click.option(
    "--method",
    "methods",
    type=_MethodChoice(),
    multiple=True,
    default=("auto",),
    show_default=True,
    help="Planning method (repeatable: one curve each; see `cosma methods`).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("sweep.csv"),
    show_default=True,
    help="CSV of the points (written atomically).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Picture of the curves, .png/.svg/.pdf (default: the CSV's name with .png).",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), default=None, help="Points planned at once (default: one per CPU)."
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Run the points as Ray tasks, on a local Ray instance or on the cluster at ADDRESS "
    "(pip install 'cosma[ray]').",
)
@placement_options
@click.option(
    "--time-limit", type=click.FloatRange(min=0), default=60.0, show_default=True, help="Seconds for each point."
)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Solver threads per point.")
@click.option("--seed", type=int, default=0, show_default=True, help="Solver random seed of every point.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (as `cosma -q`).")
def sweep_cmd(
    models: tuple[Path, ...],
    input_shapes,
    element_bytes,
    weights,
    fuse,
    start: str,
    stop: str,
    points: int,
    methods: tuple[str, ...],
    output: Path,
    plot: Path | None,
    jobs: int | None,
    ray_address: str | None,
    allocator: str,
    alignment: int,
    time_limit: float,
    threads: int,
    seed: int,
    quiet: bool,
) -> None:
    """Extra traffic against scratchpad size for one or more MODELS: a CSV and a plot of the curves.

    The CSV is rewritten (atomically) as each point finishes; Ctrl-C keeps the finished points and exits 130."""
    from rich.progress import Progress
    from rich.table import Table

    from cosma.sweep import LoadOptions, SweepResult, sweep

    plot = plot or output.with_suffix(".png")
    if plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise OptionError(f"--plot {plot}: name a .png, .svg or .pdf file")
    _check_writable(output, "the CSV", "--output")
    _check_writable(plot, "the plot", "--plot")
    if ray_address is not None and ray_address.endswith(".onnx"):  # `--ray model.onnx`: a model, not an address
        models, ray_address = (*models, Path(ray_address)), "local"
    quiet = quiet or _verbosity() < 0
    done: list[Any] = []
    bar = Progress(console=_stderr_console(), transient=True, disable=quiet or not sys.stderr.isatty())
    task = bar.add_task("sweep", total=None)

    def started(total: int) -> None:
        bar.update(task, total=total)

    def progress(p: Any) -> None:
        done.append(p)
        with _writing(output, "the CSV", "--output"):
            SweepResult(tuple(done), (), tuple(methods), "partial").save_csv(output)
        bar.update(task, advance=1, description=f"{p.model} {p.method} {format_size(p.scratchpad_bytes)}")
        if _verbosity() > 0:
            extra = "-" if p.extra_bytes is None else f"{p.extra_bytes} B"
            bar.console.print(f"  {p.model} {p.method} {p.scratchpad_bytes} B: extra {extra}, {p.status}")

    try:
        with bar:
            result = sweep(
                models,
                start=start,
                stop=stop,
                points=points,
                methods=methods,
                load=LoadOptions(
                    tuple(_parse_input_shapes(input_shapes).items()),
                    element_bytes,
                    weights,
                    fuse,
                    fold_batchnorm=not click.get_current_context().meta.get("cosma.no_fold_bn", False),
                    fold_if=not click.get_current_context().meta.get("cosma.no_fold_if", False),
                    inplace=not click.get_current_context().meta.get("cosma.no_inplace", False),
                ),
                alignment=alignment,
                allocator=allocator,
                time_limit=time_limit,
                threads=threads,
                seed=seed,
                backend="process" if ray_address is None else "ray",
                jobs=jobs,
                ray_address=ray_address,
                progress=progress,
                on_start=started,
            )
    except KeyboardInterrupt:
        if not done:
            raise  # nothing finished, nothing written: the common line
        _exit(ExitCode.INTERRUPTED, f"interrupted: {len(done)} finished points kept in {output}")
    with _writing(output, "the CSV", "--output"):
        csv_path = result.save_csv(output)
    with _writing(plot, "the plot", "--plot"):
        plot_path = result.save_plot(plot)
    table = Table(title=f"extra off-chip traffic ({result.backend} backend)")
    for column in ("model", "method", "scratchpad", "extra", "status"):
        table.add_column(column, justify="right" if column in ("scratchpad", "extra") else "left")
    for p in result.points:
        table.add_row(
            p.model,
            p.method,
            f"{p.scratchpad_bytes} B",
            "-" if p.extra_bytes is None else f"{p.extra_bytes} B",
            p.status,
        )
    _console().print(table)
    click.echo(f"{len(result.points)} points -> {csv_path}, {plot_path}")


@main.command(name="alloc", epilog=_examples("cosma alloc buffers.csv --capacity 1MiB -o placed.csv"))
@click.argument("buffers", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--capacity",
    "-c",
    metavar="SIZE",
    default=None,
    help="Fit within SIZE bytes (or 512KiB, 1MiB...); omitted: find the least height.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the buffers with an offset column (written atomically, only if they fit).",
)
@click.option("--time-limit", type=click.FloatRange(min=0), default=60.0, show_default=True, help="Seconds.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="CP-SAT workers.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--engine",
    type=click.Choice(["auto", "search", "cp-sat"]),
    default="auto",
    show_default=True,
    help="auto: canonical search, then CP-SAT if it is undecided; or one of them alone.",
)
def alloc_cmd(
    buffers: Path, capacity: str | None, output: Path | None, time_limit: float, threads: int, seed: int, engine: str
) -> ExitCode:
    """Assign an offset to every buffer of a MiniMalloc CSV (id,lower,upper,size; upper exclusive).

    Exit status: 0 packed, 1 proven not to fit the capacity, 2 bad input, 3 undecided in time."""
    from cosma.alloc.command import alloc_command

    if output is not None:
        _check_writable(output, "the packing", "--output")
    return alloc_command(
        buffers, capacity, output, time_limit=time_limit, seed=seed, threads=threads, echo=click.echo, engine=engine
    )


@main.command(name="run", epilog=_examples("cosma run models/tiny_cnn.onnx plan.json --seed 1"))
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--inputs",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="An .npz of input arrays by name; inputs not given are random from --seed.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of random inputs and of the weights of weights-stripped models.",
)
def run_cmd(model: Path, plan: Path, inputs: Path | None, seed: int) -> None:
    """Execute PLAN byte for byte on a simulated scratchpad and DRAM and compare with ONNX Runtime.

    Exit status: 0 every output matches, 1 a mismatch or a step the machine cannot follow, 2 bad input."""
    from cosma.execute import execute, load_inputs, load_plan

    plan_data = load_plan(plan)
    arrays = load_inputs(inputs) if inputs is not None else None
    result = execute(model, plan_data, arrays, seed=seed)
    for line in result.describe():
        click.echo(line)
    if not result.ok:
        # ctx.exit: click's own way out, so the status survives whichever error path the group uses.
        click.get_current_context().exit(1)


if __name__ == "__main__":
    main()
