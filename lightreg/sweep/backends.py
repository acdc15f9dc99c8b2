"""Where a sweep's runs execute. Every backend has the same contract: ``run(jobs, on_done)``.

- :class:`LocalBackend`: one run after another in this process, or ``parallel`` worker processes
  (spawned; each sets torch to ``cores // parallel`` threads).
- :class:`RayBackend`: one Ray Tune trial per run, on the Ray instance this process is connected
  to (a local one is started when none is).

A run that raises becomes a failed :class:`JobResult`; the other runs go on. Ctrl-C raises
:class:`SweepInterrupted` once the runs in flight have stopped.

Example:
    >>> backend = LocalBackend(parallel=2)
    >>> results = backend.run(jobs, on_done=print)  # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from lightreg.recipe import Recipe


class BackendError(Exception):
    """A backend that cannot be used here; the message says what to do.

    Example:
        >>> str(BackendError("install lightreg[ray]"))
        'install lightreg[ray]'
    """


class SweepInterrupted(Exception):
    """The user stopped the sweep (Ctrl-C); it can be resumed.

    Example:
        >>> isinstance(SweepInterrupted(), Exception)
        True
    """


@dataclass(frozen=True)
class Job:
    """One run to do: a configuration's recipe, and the run folder to continue, if any.

    ``test=False`` trains without scoring the test split (``lightreg autofit`` scores it once,
    at the end, for the run it selects).

    Example:
        >>> Job("none", Recipe(name="mlp-none")).resume is None
        True
    """

    slug: str
    recipe: Recipe
    resume: Path | None = None
    test: bool = True


@dataclass(frozen=True)
class JobResult:
    """How a run ended: its folder, or the one-line reason it failed.

    Example:
        >>> JobResult("none", None, "DataError: no such file").ok
        False
    """

    slug: str
    run_dir: Path | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the run finished.

        Example:
            >>> JobResult("none", Path("runs/mlp-none/version_0")).ok
            True
        """
        return self.error is None


OnDone = Callable[[JobResult], None]


class Backend(Protocol):
    """What every backend does: run the jobs, call ``on_done`` as each ends, return all results.

    Example:
        >>> class Failing:  # any object with this `run` is a backend
        ...     def run(self, jobs, on_done):
        ...         results = [JobResult(job.slug, None, "not run") for job in jobs]
        ...         for result in results:
        ...             on_done(result)
        ...         return results
        >>> [r.ok for r in Failing().run([Job("none", Recipe(name="x"))], on_done=lambda r: None)]
        [False]
    """

    def run(self, jobs: Sequence[Job], on_done: OnDone) -> list[JobResult]:
        """Run ``jobs``; ``on_done`` is called in this process, once per job, as each ends.

        Example:
            >>> LocalBackend().run([], on_done=print)
            []
        """
        ...


def _one_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def run_job(job: Job, threads: int | None = None) -> JobResult:
    """Fit one job in this process with ``lightreg.runner.fit``; an exception becomes an error.

    Raises:
        SweepInterrupted: when the user pressed Ctrl-C during the run.

    Example:
        >>> run_job(Job("none", recipe)).run_dir  # doctest: +SKIP
        PosixPath('runs/mlp-none/version_0')
    """
    from lightreg.runner import RunInterrupted, fit

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    try:
        result = fit(job.recipe, resume=job.resume, test=job.test)
    except RunInterrupted:
        raise SweepInterrupted() from None
    except Exception as exc:
        return JobResult(job.slug, None, _one_line(exc))
    if result is None:
        return JobResult(job.slug, None, "the run returned no result on this rank")
    return JobResult(job.slug, result.run_dir)


def threads_per_run(parallel: int) -> int:
    """Torch threads for each of ``parallel`` concurrent runs: the cores shared out, at least 1.

    Example:
        >>> threads_per_run(os.cpu_count() or 1)
        1
    """
    return max(1, (os.cpu_count() or 1) // parallel)


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _watch_parent(parent: int, every: float = 0.5) -> None:
    """Poll until this process's parent is no longer ``parent`` (it died), then exit at once."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """End this worker process when ``parent`` (the sweep that started it) ends, even by SIGKILL.

    On Linux the kernel sends SIGKILL at once (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon
    thread checks every half second whether the worker was orphaned. Without it, a killed sweep's
    workers would train on and then wait forever for work.

    Example:
        >>> die_with_parent(os.getppid())  # in a worker: the pool's initializer  # doctest: +SKIP
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


@dataclass(frozen=True)
class LocalBackend:
    """Runs on this machine: in this process (``parallel=1``) or in ``parallel`` processes.

    Attributes:
        parallel: runs at a time.
        run_one: what each run does, given its job and torch thread count: :func:`run_job`
            (fit the job's recipe). With ``parallel > 1`` it runs in spawned worker processes,
            so it must be a module-level function.

    Example:
        >>> def dry_run(job, threads):  # a stand-in that fails every job instead of training it
        ...     return JobResult(job.slug, None, "dry run")
        >>> [r.error for r in LocalBackend(run_one=dry_run).run([Job("none", Recipe(name="x"))], print)]
        JobResult(slug='none', run_dir=None, error='dry run')
        ['dry run']
    """

    parallel: int = 1
    run_one: Callable[[Job, int | None], JobResult] = run_job

    def __post_init__(self) -> None:
        if self.parallel < 1:
            raise BackendError(f"--parallel must be at least 1, got {self.parallel}")

    def run(self, jobs: Sequence[Job], on_done: OnDone) -> list[JobResult]:
        """Run ``jobs``; see :class:`Backend`.

        Example:
            >>> LocalBackend(parallel=2).run([], on_done=print)  # nothing to do
            []
        """
        if self.parallel == 1 or len(jobs) <= 1:
            return [self._report(self.run_one(job, None), on_done) for job in jobs]
        workers = min(self.parallel, len(jobs))
        threads = threads_per_run(workers)
        results: list[JobResult] = []
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        try:
            futures = {pool.submit(self.run_one, job, threads): job for job in jobs}
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    result = JobResult(futures[future].slug, None, _one_line(exc))
                results.append(self._report(result, on_done))
        except KeyboardInterrupt:
            raise SweepInterrupted() from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results

    @staticmethod
    def _report(result: JobResult, on_done: OnDone) -> JobResult:
        on_done(result)
        return result


def ray_available() -> bool:
    """Whether Ray Tune can be imported (the ``lightreg[ray]`` extra).

    Example:
        >>> isinstance(ray_available(), bool)
        True
    """
    return all(importlib.util.find_spec(name) is not None for name in ("ray", "pandas"))


def _trial_class(tune: Any) -> type:
    """A Tune class trainable: its ``step`` runs on the actor's main thread, as ``fit`` needs
    (signal handlers can only be set there; function trainables run on a side thread)."""

    class SweepTrial(tune.Trainable):
        """One Tune trial: fit the job named by ``config["slug"]``, report where it landed."""

        def setup(
            self, config: dict[str, Any], jobs: dict[str, Job], cwd: str, threads: int
        ) -> None:
            """Receive the trial's job from Ray Tune."""
            self.job, self.cwd, self.threads = jobs[config["slug"]], cwd, threads

        def step(self) -> dict[str, Any]:
            """Run the job's training once and report its result to Tune."""
            os.chdir(self.cwd)  # Tune starts trials in their own folder; recipe paths mean ours
            result = run_job(self.job, self.threads)
            run_dir = "" if result.run_dir is None else str(result.run_dir)
            return {
                "slug": result.slug,
                "run_dir": run_dir,
                "error": result.error or "",
                "done": True,
            }

    return SweepTrial


def _from_metrics(metrics: dict[str, Any]) -> JobResult:
    run_dir = metrics.get("run_dir") or None
    return JobResult(
        metrics["slug"], Path(run_dir) if run_dir else None, metrics.get("error") or None
    )


@dataclass(frozen=True)
class RayBackend:
    """Runs each job as a Ray Tune trial, at most ``parallel`` at a time, one CPU each.

    Tune's own files go to ``storage``; runs land where their recipes say, so with a
    multi-node Ray cluster ``logging.dir`` must be on storage every node shares.

    Raises:
        BackendError: when Ray Tune is not installed.

    Example:
        >>> RayBackend(Path("runs/mlp-sweep/ray"), parallel=2)  # doctest: +SKIP
    """

    storage: Path
    parallel: int = 1

    def __post_init__(self) -> None:
        if not ray_available():
            raise BackendError("--backend ray needs Ray Tune: pip install 'lightreg[ray]'")
        if self.parallel < 1:
            raise BackendError(f"--parallel must be at least 1, got {self.parallel}")

    def run(self, jobs: Sequence[Job], on_done: OnDone) -> list[JobResult]:
        """Run ``jobs`` as Tune trials; see :class:`Backend`.

        Example:
            >>> RayBackend(Path("runs/mlp-sweep/ray")).run(jobs, on_done=print)  # doctest: +SKIP
        """
        if not jobs:
            return []
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no Tune event files
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # verbose=0 silences Tune's tables
        import ray
        from ray import tune

        started = not ray.is_initialized()
        if started:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        reported: dict[str, JobResult] = {}
        try:
            grid = self._tuner(tune, jobs, reported, on_done).fit()
        finally:
            if started:
                ray.shutdown()
        for result in grid:
            slug = result.config["slug"]
            if slug not in reported and result.error is not None:
                reported[slug] = JobResult(slug, None, _one_line(result.error))
                on_done(reported[slug])
        if len(reported) < len(jobs):
            raise SweepInterrupted()
        return [reported[job.slug] for job in jobs]

    def _tuner(
        self, tune: Any, jobs: Sequence[Job], reported: dict[str, JobResult], on_done: OnDone
    ) -> Any:
        def listener(metrics: dict[str, Any]) -> None:
            result = _from_metrics(metrics)
            reported[result.slug] = result
            on_done(result)

        class Progress(tune.Callback):
            """Hands each trial's report to ``listener``, in this process."""

            def __init__(self, listener: Callable[[dict[str, Any]], None] | None) -> None:
                self.listener = listener

            def on_trial_result(
                self, iteration: int, trials: list, trial: Any, result: dict
            ) -> None:
                """Advance the sweep's progress line when a trial reports."""
                if self.listener is not None:
                    self.listener(result)

            def __getstate__(self) -> dict[str, Any]:  # Tune pickles its callbacks; not ours
                return {"listener": None}

        trainable = tune.with_parameters(
            _trial_class(tune),
            jobs={job.slug: job for job in jobs},
            cwd=os.getcwd(),
            threads=threads_per_run(self.parallel),
        )
        return tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"slug": tune.grid_search([job.slug for job in jobs])},
            tune_config=tune.TuneConfig(max_concurrent_trials=self.parallel),
            run_config=tune.RunConfig(
                name="trials",
                storage_path=str(self.storage.resolve()),
                verbose=0,
                checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
                callbacks=[Progress(listener)],
            ),
        )
