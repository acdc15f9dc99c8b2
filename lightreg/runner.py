"""``fit(recipe)``: train, evaluate the best weights once, and report what happened.

Each run claims a new ``<logging.dir>/<name>/version_N/`` (atomically: concurrent runs never
share one) holding ``metrics.csv``, ``hparams.yaml``, the resolved ``recipe.yaml``,
``best.ckpt`` (the best epoch so far) and ``last.ckpt`` (the last finished epoch), both written
atomically. ``resume`` continues an interrupted run in its own directory from ``last.ckpt``;
nothing already written is deleted.

``fit`` seeds the global random generators (``recipe.seed``) and otherwise gives the process
back as it found it: environment variables, warning filters, logging levels and torch's
determinism flags are restored when it returns.

Example:
    >>> from lightreg.recipe import load_recipe
    >>> result = fit(load_recipe("mlp", ["trainer.max_epochs=2"]))  # doctest: +SKIP
    >>> result.epochs_run  # doctest: +SKIP
    2
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import logging
import math
import os
import signal
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from lightreg.assemble import build_callbacks, build_datamodule, build_module, build_trainer
from lightreg.data.datamodule import SampleDataModule
from lightreg.models.base import ClassifierModule
from lightreg.recipe import Recipe, recipe_to_yaml
from lightreg.run_files import BEST_CHECKPOINT, LAST_CHECKPOINT, RECIPE_FILE, claim_next_dir

VERSION_ENV = "LIGHTREG_RUN_VERSION"
"""Carries the claimed ``version_N`` number to the DDP ranks that Lightning starts."""

_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
_CHATTY_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
_IGNORED_WARNINGS = (
    r"Checkpoint directory .* exists and is not empty",
    r"The number of training batches .* is smaller than the logging interval",
    r".*LeafSpec.*",
    r".*does not have many workers which may be a bottleneck.*",
    r"torch.distributed.nn.functional.all_gather is deprecated.*",
    r"Using `DistributedSampler` with the dataloaders. During `trainer.test\(\)`.*",
)


class RunInterrupted(Exception):
    """Training stopped by the user (Ctrl-C); ``run_dir`` can be resumed.

    Example:
        >>> RunInterrupted(Path("runs/x/version_0")).run_dir
        PosixPath('runs/x/version_0')
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        super().__init__(f"interrupted; resume with: lightreg fit --resume {run_dir}")


class ResumeError(Exception):
    """A ``--resume`` directory that cannot be resumed; the message says why.

    Example:
        >>> str(ResumeError("runs/x/version_0: no last.ckpt"))
        'runs/x/version_0: no last.ckpt'
    """


class RunDirError(Exception):
    """The run directory cannot be created or written (a bad ``logging.dir``, a full disk).

    Example:
        >>> str(RunDirError("logging.dir /proc/x: cannot create runs there"))
        'logging.dir /proc/x: cannot create runs there'
    """


@dataclass
class FitResult:
    """What a finished run reports. Metrics are floats; absent ones are NaN.

    ``best_epoch`` is the epoch of the weights that ``final`` scores (None when no epoch had a
    finite monitored value); ``diverged_epoch`` the first epoch whose loss was NaN or infinite.

    Example:
        >>> FitResult(Path("r"), 3, 30, 1, True).gap_loss
        nan
        >>> FitResult(Path("r"), 3, 30, 1, True, diverged_epoch=2).diverged
        True
    """

    run_dir: Path
    epochs_run: int
    max_epochs: int
    best_epoch: int | None
    stopped_early: bool
    history: dict[int, dict[str, float]] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    replicas: int = 1
    replicas_identical: bool = True
    weights_digest: str = ""
    diverged_epoch: int | None = None

    def metric(self, name: str) -> float:
        """A final (best-weights) metric such as ``test_acc`` or ``train_eval_loss``."""
        return self.final.get(name, math.nan)

    @property
    def diverged(self) -> bool:
        """Whether a training or validation loss became NaN or infinite."""
        return self.diverged_epoch is not None

    @property
    def gap_loss(self) -> float:
        """Validation minus training loss, both measured with the best weights, no augmentation."""
        return self.metric("val_loss") - self.metric("train_eval_loss")

    @property
    def gap_acc(self) -> float:
        """Training minus validation accuracy with the best weights."""
        return self.metric("train_eval_acc") - self.metric("val_acc")

    @property
    def final_epoch_gap(self) -> float:
        """Validation minus training loss as logged in the last epoch."""
        last = self.history.get(max(self.history, default=-1), {})
        return last.get("val_loss", math.nan) - last.get("train_loss", math.nan)


def epoch_history(run_dir: Path) -> dict[int, dict[str, float]]:
    """Epoch -> metric -> value from a run's ``metrics.csv``, read by the diagnose reader.

    Example:
        >>> epoch_history(Path("no/such/run"))
        {}
    """
    from lightreg.diagnose.readers import read_runs

    runs, _ = read_runs([run_dir / "metrics.csv"])
    table: dict[int, dict[str, float]] = {}
    for run in runs:
        for metric, points in run.series.items():
            for epoch, value in points.items():
                table.setdefault(epoch, {})[metric] = value
    return table


def claim_run_dir(recipe: Recipe) -> Path:
    """Create this run's ``<logging.dir>/<name>/version_N``; a DDP rank gets its launcher's.

    The folder is claimed with an atomic ``mkdir`` (see
    :func:`lightreg.run_files.claim_next_dir`), so runs started together never share one. A
    process that a DDP launcher started as a rank (``LOCAL_RANK`` or ``RANK`` set) claims
    nothing: it reuses the number its launcher put in ``LIGHTREG_RUN_VERSION``.

    Raises:
        RunDirError: when ``logging.dir`` cannot hold runs (read-only, a file, ...), or a rank
            was started without ``LIGHTREG_RUN_VERSION``.

    Example:
        >>> import tempfile
        >>> from lightreg.recipe import Recipe
        >>> recipe = Recipe(name="x", logging={"dir": tempfile.mkdtemp()})
        >>> [claim_run_dir(recipe).name for _ in range(2)]
        ['version_0', 'version_1']
    """
    parent = recipe.logging.dir / recipe.name
    if _is_rank_process():
        version = os.environ.get(VERSION_ENV)
        if version is None:
            raise RunDirError(
                f"started as a DDP rank without {VERSION_ENV}: start the run with `lightreg fit`"
                f" (Lightning starts the ranks), or give every rank the same {VERSION_ENV}=N"
            )
        return parent / f"version_{version}"
    try:
        return claim_next_dir(parent, "version_")
    except OSError as exc:
        raise RunDirError(
            f"logging.dir {recipe.logging.dir}: cannot create a run folder under {parent}"
            f" ({exc.strerror or exc})"
        ) from None


def _is_rank_process() -> bool:
    return "LOCAL_RANK" in os.environ or "RANK" in os.environ


@dataclass(frozen=True)
class _ResumePoint:
    run_dir: Path
    checkpoint: Path
    epochs_done: int


def _resume_point(run_dir: Path) -> _ResumePoint:
    """Where ``--resume`` starts: ``last.ckpt``, checked to be whole before anything runs."""
    if run_dir.name in ("", ".", ".."):
        run_dir = run_dir.resolve()
    last = run_dir / LAST_CHECKPOINT
    if not last.is_file():
        raise ResumeError(f"{run_dir}: no {LAST_CHECKPOINT} to resume from")
    try:
        epochs_done = _checkpoint_epoch(last)
    except Exception:  # torch names no one error type for a cut-short or foreign file
        raise ResumeError(_unreadable_last(last)) from None
    return _ResumePoint(run_dir, last, epochs_done)


def _unreadable_last(last: Path) -> str:
    best = last.with_name(BEST_CHECKPOINT)
    problem = f"{last}: cannot be read (cut short or corrupt)"
    try:
        _checkpoint_epoch(best)
    except Exception:
        return f"{problem}, and {best.name} is missing or unreadable too: start a new run"
    return f"{problem}; {best} holds the best epoch: to continue from it, cp {best} {last}"


@contextlib.contextmanager
def _process_state_kept() -> Iterator[None]:
    """Give back ``os.environ``, warning filters, logging levels and torch's flags as found."""
    environ = dict(os.environ)
    levels = {name: logging.getLogger(name).level for name in _CHATTY_LOGGERS}
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    benchmark = torch.backends.cudnn.benchmark
    with warnings.catch_warnings():
        try:
            yield
        finally:
            for key in set(os.environ) - set(environ):
                del os.environ[key]
            os.environ.update({k: v for k, v in environ.items() if os.environ.get(k) != v})
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
            torch.backends.cudnn.benchmark = benchmark


def _quiet_lightning() -> None:
    """Silence Lightning's start-up chatter and warnings that do not apply to lightreg's runs.

    Only inside :func:`_process_state_kept`, which puts the levels and filters back.
    """
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in _IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def _keep_previous_metrics(logger: CSVLogger, epochs_done: int) -> None:
    """Lightning's CSV writer deletes an existing metrics.csv; carry its finished epochs over."""
    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = [row for row in reader if _finished_row(row, epochs_done)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists")
        writer = logger.experiment  # deletes metrics.csv
    with path.open("w", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=header)
        out.writeheader()
        out.writerows(rows)
    writer.metrics_keys = header


def _finished_row(row: dict[str, str | None], epochs_done: int) -> bool:
    """A whole row (not cut short by a kill) from an epoch that the checkpoint completed."""
    if None in row or None in row.values():  # too many or too few cells: written half-way
        return False
    epoch = row.get("epoch") or ""
    if not epoch:
        return True  # a callback's own row (e.g. a learning-rate monitor) with no epoch
    try:
        return int(float(epoch)) < epochs_done
    except ValueError:
        return False


def _checkpoint_epoch(ckpt: Path) -> int:
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    return int(state.get("epoch", -1)) + 1


def weights_digest(model: pl.LightningModule) -> str:
    """SHA-256 over the model's parameters and buffers, in ``state_dict`` order.

    Example:
        >>> from torch import nn
        >>> len(weights_digest(nn.Linear(2, 2)))
        64
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _compare_replicas(trainer: pl.Trainer, model: pl.LightningModule) -> tuple[str, bool]:
    """This rank's weights digest, and whether every rank holds the same weights."""
    import torch

    digest = weights_digest(model)
    if trainer.world_size == 1:
        return digest, True
    local = torch.tensor(list(bytes.fromhex(digest)[:16]), dtype=torch.int64)
    gathered = trainer.strategy.all_gather(local.to(model.device)).reshape(trainer.world_size, -1)
    return digest, bool((gathered == gathered[0]).all())


@dataclass
class _Run:
    """The pieces of one run, built once and passed from step to step."""

    recipe: Recipe
    run_dir: Path
    csv_logger: CSVLogger
    datamodule: SampleDataModule
    model: ClassifierModule
    trainer: pl.Trainer


@dataclass(frozen=True)
class _Best:
    """The best weights: their epoch, and the checkpoint holding them (None: the model does)."""

    epoch: int | None
    checkpoint: str | None


def fit(
    recipe: Recipe,
    *,
    resume: str | Path | None = None,
    extra_callbacks: Sequence[Callback] = (),
    test: bool = True,
) -> FitResult | None:
    """Train ``recipe``, then evaluate the best weights on the train (clean) and test splits.

    Args:
        recipe: the validated recipe.
        resume: a run's version directory to continue from its ``last.ckpt``.
        extra_callbacks: more Lightning callbacks for the Trainer.
        test: score the test split too. ``False`` leaves it untouched (nothing ``test_*`` in the
            result or ``metrics.csv``), for callers that choose among runs on validation scores
            and call :func:`evaluate_test` once, on the chosen run (``lightreg autofit``).

    Returns:
        The result on global rank zero; None on other ranks.

    Raises:
        ResumeError: when ``resume`` has no readable ``last.ckpt``.
        RunDirError: when the run directory cannot be created or written (a full disk).
        RunInterrupted: when the user pressed Ctrl-C (the run can be resumed).
    """
    start = _resume_point(Path(resume)) if resume is not None else None
    with _process_state_kept():
        _quiet_lightning()
        run_dir = start.run_dir if start is not None else claim_run_dir(recipe)
        claimed_here = start is None and not _is_rank_process()
        if claimed_here:  # the DDP ranks that Lightning starts inherit the environment
            os.environ[VERSION_ENV] = run_dir.name.removeprefix("version_")
        try:
            run, best, final = _steps(recipe, run_dir, start, extra_callbacks, test)
        except BaseException:
            if claimed_here:
                with contextlib.suppress(OSError):
                    run_dir.rmdir()  # only when nothing was written in it
            raise
        digest, identical = _compare_replicas(run.trainer, run.model)
    if not run.trainer.is_global_zero:
        return None
    return _summarize(run, best, final, digest, identical)


def _steps(
    recipe: Recipe,
    run_dir: Path,
    start: _ResumePoint | None,
    extra_callbacks: Sequence[Callback],
    test: bool,
) -> tuple[_Run, _Best, dict[str, float]]:
    """Build, write the run files, train, find the best weights, evaluate them."""
    try:
        run = _build(recipe, run_dir, extra_callbacks)
        _write_run_files(run, start)
        _train(run, start)
        best = _best_weights(run.trainer)
        return run, best, _evaluate(run, best, test)
    except OSError as exc:
        if not _is_storage_error(exc, run_dir):
            raise
        raise RunDirError(_storage_message(exc, run_dir)) from None


def _build(recipe: Recipe, run_dir: Path, extra_callbacks: Sequence[Callback]) -> _Run:
    pl.seed_everything(recipe.seed, workers=True, verbose=False)
    where = {"save_dir": str(run_dir.parent.parent), "name": run_dir.parent.name}
    csv_logger = CSVLogger(**where, version=run_dir.name)
    loggers: list[Logger] = [csv_logger]
    if recipe.logging.tensorboard:
        loggers.append(TensorBoardLogger(**where, version=run_dir.name))
    datamodule = build_datamodule(recipe)
    model = build_module(recipe, datamodule)
    callbacks = [*build_callbacks(recipe, run_dir), *extra_callbacks]
    trainer = build_trainer(recipe, loggers, callbacks, run_dir)
    return _Run(recipe, run_dir, csv_logger, datamodule, model, trainer)


def _write_run_files(run: _Run, start: _ResumePoint | None) -> None:
    """A new run's ``recipe.yaml``; a resumed run's finished metrics rows (global rank zero)."""
    if not run.trainer.is_global_zero:
        return
    if start is not None:
        _keep_previous_metrics(run.csv_logger, start.epochs_done)
        return
    _ = run.csv_logger.experiment  # opens metrics.csv in the claimed directory
    (run.run_dir / RECIPE_FILE).write_text(recipe_to_yaml(run.recipe), encoding="utf-8")


def _train(run: _Run, start: _ResumePoint | None) -> None:
    sigint = signal.getsignal(signal.SIGINT)
    ckpt_path = start.checkpoint if start is not None else None
    try:
        run.trainer.fit(
            run.model, datamodule=run.datamodule, ckpt_path=ckpt_path, weights_only=True
        )
    except SystemExit:
        if run.trainer.interrupted:
            raise RunInterrupted(run.run_dir) from None
        raise
    finally:  # Lightning ignores SIGINT after a Ctrl-C; give the caller its handler back
        signal.signal(signal.SIGINT, sigint)


def _best_weights(trainer: pl.Trainer) -> _Best:
    """The one place that decides which weights are the best, and of which epoch.

    EarlyStopping's restored weights when it restored some; otherwise ``best.ckpt``, whose
    epoch is read from the file, if its score is finite; otherwise none (the final weights
    are scored).
    """
    from lightreg.callbacks import EarlyStopping

    for callback in trainer.callbacks:
        restored = isinstance(callback, EarlyStopping) and callback.restore_best_weights
        if restored and callback.best_epoch is not None:
            return _Best(callback.best_epoch, None)
    checkpoint = _best_checkpoint(trainer)
    score = checkpoint.best_model_score
    if not checkpoint.best_model_path or score is None or not math.isfinite(float(score)):
        return _Best(None, None)
    path = checkpoint.best_model_path
    return _Best(_checkpoint_epoch(Path(path)) - 1, path)


def _best_checkpoint(trainer: pl.Trainer) -> ModelCheckpoint:
    stem = Path(BEST_CHECKPOINT).stem
    return next(c for c in trainer.checkpoint_callbacks if getattr(c, "filename", None) == stem)


def _evaluate(run: _Run, best: _Best, test: bool) -> dict[str, float]:
    """Score the best weights on the training split (no augmentation) and, if asked, the test split."""
    final: dict[str, float] = {}
    splits = [("train_eval", run.datamodule.train_eval_dataloader()), ("test", None)]
    for prefix, loader in splits if test else splits[:1]:
        run.model.test_prefix = prefix
        data = {"dataloaders": loader} if loader is not None else {"datamodule": run.datamodule}
        results = run.trainer.test(
            run.model, ckpt_path=best.checkpoint, verbose=False, weights_only=True, **data
        )
        final.update({k: float(v) for k, v in (results[0] if results else {}).items()})
    return final


def evaluate_test(run_dir: Path) -> dict[str, float]:
    """Score a finished run's best weights on the test split; for a run fit with ``test=False``.

    The weights are those of ``best.ckpt`` (the best epoch by ``early_stopping.monitor``, the
    weights ``fit`` scores), or of ``last.ckpt`` when the run never saved a best one. The run is
    rebuilt from its ``recipe.yaml`` on one device; nothing is written into ``run_dir``.

    Raises:
        ResumeError: when ``run_dir`` holds no checkpoint or no ``recipe.yaml``.

    Example:
        >>> evaluate_test(Path("runs/mlp/version_0"))["test_acc"]  # doctest: +SKIP
        0.93
    """
    from lightreg.recipe import load_recipe

    checkpoint = next(
        (
            run_dir / name
            for name in (BEST_CHECKPOINT, LAST_CHECKPOINT)
            if (run_dir / name).is_file()
        ),
        None,
    )
    if checkpoint is None or not (run_dir / RECIPE_FILE).is_file():
        raise ResumeError(f"{run_dir}: no checkpoint and recipe.yaml of a finished run to score")
    recipe = load_recipe(run_dir / RECIPE_FILE)
    one_device = recipe.trainer.model_copy(
        update={"devices": 1, "num_nodes": 1, "strategy": "auto", "enable_progress_bar": False}
    )
    recipe = recipe.model_copy(update={"trainer": one_device})
    with _process_state_kept():
        _quiet_lightning()
        pl.seed_everything(recipe.seed, workers=True, verbose=False)
        datamodule = build_datamodule(recipe)
        model = build_module(recipe, datamodule)
        trainer = build_trainer(recipe, [], build_callbacks(recipe, run_dir), run_dir)
        results = trainer.test(
            model,
            datamodule=datamodule,
            ckpt_path=str(checkpoint),
            verbose=False,
            weights_only=True,
        )
    return {key: float(value) for key, value in (results[0] if results else {}).items()}


def _summarize(
    run: _Run, best: _Best, final: dict[str, float], digest: str, identical: bool
) -> FitResult:
    """The result: the metrics history read once, the best epoch's validation scores from it."""
    history = epoch_history(run.run_dir)
    fit_epochs = {e: m for e, m in history.items() if "val_loss" in m or "train_loss" in m}
    if best.epoch in fit_epochs:
        for key in ("val_loss", "val_acc", "val_ece"):
            final.setdefault(key, fit_epochs[best.epoch].get(key, math.nan))
    epochs_run = run.trainer.current_epoch
    max_epochs = run.recipe.trainer.max_epochs
    return FitResult(
        replicas=run.trainer.world_size,
        replicas_identical=identical,
        weights_digest=digest,
        run_dir=run.run_dir,
        epochs_run=epochs_run,
        max_epochs=max_epochs,
        best_epoch=best.epoch,
        stopped_early=epochs_run < max_epochs,
        history=fit_epochs,
        final=final,
        diverged_epoch=diverged_epoch(fit_epochs, run.recipe.early_stopping.monitor),
    )


def diverged_epoch(history: dict[int, dict[str, float]], monitor: str) -> int | None:
    """The first epoch whose training or validation loss (or ``monitor``) is NaN or infinite.

    Example:
        >>> diverged_epoch({0: {"train_loss": 0.9}, 1: {"train_loss": float("nan")}}, "val_loss")
        1
    """
    for epoch in sorted(history):
        values = (history[epoch].get(key) for key in ("train_loss", "val_loss", monitor))
        if any(value is not None and not math.isfinite(value) for value in values):
            return epoch
    return None


def _is_storage_error(exc: OSError, run_dir: Path) -> bool:
    """A full disk anywhere, or any failure to write inside the run directory."""
    if exc.errno in _DISK_ERRNOS:
        return True
    if not isinstance(exc.filename, str | bytes | os.PathLike):
        return False
    return Path(os.fsdecode(exc.filename)).absolute().is_relative_to(run_dir.absolute())


def _storage_message(exc: OSError, run_dir: Path) -> str:
    reason = exc.strerror or str(exc)
    kept = f"{run_dir}: cannot write the run ({reason}); the files written before are kept"
    if (run_dir / LAST_CHECKPOINT).is_file():
        return f"{kept}; once there is room, resume with: lightreg fit --resume {run_dir}"
    return kept
