"""One way to run independent tasks: serially, on a local process pool, or on Ray.

:func:`run_tasks` maps a function over tasks on one of three backends that give the same answers
in the same (task) order; only the order in which ``on_result`` sees them depends on the backend.
``cosma sweep`` runs its points with it, and the benchmark harness (``benchmarks/``) its solves.

- ``serial``: in this process, one after another. Ctrl-C stops at once.
- ``process``: a pool of ``jobs`` fresh worker processes (forkserver where the platform has it).
  ``fn`` and the tasks must be picklable and ``fn`` importable by name. With ``on_crash``, a task
  whose worker died gets ``on_crash``'s answer and the tasks not finished yet rerun on a fresh pool;
  without it the crash propagates. With one job or one task the pool is skipped.
- ``ray``: Ray tasks of ``cpus_per_task`` CPUs each, on a local Ray instance of ``jobs`` CPUs or on
  the cluster at ``ray_address``; a Ray instance this process is already connected to is used as it
  is (see :func:`ray_session`, which a caller also uses to put shared data in the object store first).

Example:
    >>> run_tasks(abs, [-3, 1, -2])
    [3, 1, 2]
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

from cosma.errors import OptionError

T = TypeVar("T")
R = TypeVar("R")

Backend = Literal["serial", "process", "ray"]
BACKENDS: tuple[str, ...] = ("serial", "process", "ray")


def run_tasks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    backend: str = "serial",
    jobs: int = 1,
    on_result: Callable[[T, R], None] | None = None,
    on_crash: Callable[[T, BaseException], R] | None = None,
    ray_address: str | None = None,
    cpus_per_task: int = 1,
) -> list[R]:
    """``[fn(t) for t in tasks]`` on ``backend`` with ``jobs`` workers; ``on_result`` sees each as it finishes."""
    if backend not in BACKENDS:
        raise OptionError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if jobs < 1:
        raise OptionError(f"jobs is {jobs}; give at least 1")
    if backend == "ray":
        return _run_ray(fn, tasks, jobs, ray_address, cpus_per_task, on_result)
    if backend == "process" and jobs > 1 and len(tasks) > 1:
        return _run_pool(fn, tasks, jobs, on_result, on_crash)
    return _run_serial(fn, tasks, on_result)


def _run_serial(fn: Callable[[T], R], tasks: Sequence[T], on_result: Callable[[T, R], None] | None) -> list[R]:
    results = []
    for task in tasks:
        results.append(fn(task))
        if on_result is not None:
            on_result(task, results[-1])
    return results


def _run_pool(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    jobs: int,
    on_result: Callable[[T, R], None] | None,
    on_crash: Callable[[T, BaseException], R] | None,
) -> list[R]:
    # forkserver: workers start from a clean process, not a fork of one that may run solver threads
    start = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(start)
    results: dict[int, R] = {}
    pending = list(range(len(tasks)))
    while pending:
        with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=context) as pool:
            futures: dict[Future[R], int] = {pool.submit(fn, tasks[i]): i for i in pending}
            broken = False
            for future in as_completed(futures):
                i = futures[future]
                try:
                    results[i] = future.result()
                except BrokenProcessPool as e:
                    if on_crash is None:
                        raise
                    # the first task to report the broken pool is blamed; the others rerun on a fresh one
                    if not broken:
                        results[i] = on_crash(tasks[i], e)
                        broken = True
                    continue
                if on_result is not None:
                    on_result(tasks[i], results[i])
        pending = [i for i in pending if i not in results]
    return [results[i] for i in range(len(tasks))]


@contextmanager
def ray_session(jobs: int, address: str | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected: to ``address``, else to the instance this process already uses, else to
    a new local instance of ``jobs`` CPUs, shut down on exit (only if this call started it)."""
    try:
        import ray
    except ImportError:
        raise OptionError("--ray needs Ray: pip install 'cosma[ray]'") from None
    started = not ray.is_initialized()
    if started:
        try:
            if address and address != "local":
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
        except (ValueError, ConnectionError, RuntimeError) as e:
            # Ray's message names the fix (pip install "ray[client]" for a ray:// address); keep its first line
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise OptionError(f"--ray {address or 'local'}: cannot connect: {first}") from None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _run_ray(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    jobs: int,
    address: str | None,
    cpus_per_task: int,
    on_result: Callable[[T, R], None] | None,
) -> list[R]:
    with ray_session(jobs, address) as ray:
        remote = ray.remote(num_cpus=cpus_per_task)(fn)
        pending = {remote.remote(task): i for i, task in enumerate(tasks)}
        results: dict[int, R] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                results[i] = ray.get(ref)
                if on_result is not None:
                    on_result(tasks[i], results[i])
        return [results[i] for i in range(len(tasks))]
