"""``fit(recipe)``: train, evaluate the best weights once, and report what happened.

Each run lands in a new ``<logging.dir>/<name>/version_N/`` holding ``metrics.csv``,
``hparams.yaml``, the resolved ``recipe.yaml``, ``best.ckpt`` and ``last.ckpt``. ``resume``
continues an interrupted run in its own directory from ``last.ckpt``; nothing already written
is deleted.

Example:
    >>> from lightreg.recipe import load_recipe
    >>> result = fit(load_recipe("mlp", ["trainer.max_epochs=2"]))  # doctest: +SKIP
    >>> result.epochs_run  # doctest: +SKIP
    2
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import signal
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lightreg.assemble import build_callbacks, build_datamodule, build_module, build_trainer
from lightreg.recipe import Recipe, recipe_to_yaml
from lightreg.run_files import LAST_CHECKPOINT, RECIPE_FILE

VERSION_ENV = "LIGHTREG_RUN_VERSION"


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


@dataclass
class FitResult:
    """What a finished run reports. Metrics are floats; absent ones are NaN.

    Example:
        >>> FitResult(Path("r"), 3, 30, 1, True).gap_loss
        nan
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

    def metric(self, name: str) -> float:
        """A final (best-weights) metric such as ``test_acc`` or ``train_eval_loss``."""
        return self.final.get(name, math.nan)

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


def _next_version(root: Path) -> int:
    taken = [
        int(p.name.split("_", 1)[1])
        for p in root.glob("version_*")
        if p.is_dir() and p.name.split("_", 1)[1].isdigit()
    ]
    return max(taken, default=-1) + 1


def _is_launcher_process() -> bool:
    return "LOCAL_RANK" not in os.environ and "RANK" not in os.environ


def _run_location(recipe: Recipe, resume: Path | None) -> tuple[Path, str, int | str]:
    if resume is not None:
        number = resume.name.removeprefix("version_")
        return (
            resume.parent.parent,
            resume.parent.name,
            int(number) if number.isdigit() else resume.name,
        )
    root = recipe.logging.dir / recipe.name
    if _is_launcher_process() or VERSION_ENV not in os.environ:
        os.environ[VERSION_ENV] = str(_next_version(root))
    return recipe.logging.dir, recipe.name, int(os.environ[VERSION_ENV])


def _quiet_lightning() -> None:
    """Silence Lightning's start-up chatter and warnings that do not apply to lightreg's runs."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in (
        r"Checkpoint directory .* exists and is not empty",
        r"The number of training batches .* is smaller than the logging interval",
        r".*LeafSpec.*",
        r".*does not have many workers which may be a bottleneck.*",
        r"torch.distributed.nn.functional.all_gather is deprecated.*",
        r"Using `DistributedSampler` with the dataloaders. During `trainer.test\(\)`.*",
    ):
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


def _best_weights(trainer: pl.Trainer) -> tuple[str | None, int | None]:
    """Where the best weights are: in the model (EarlyStopping restored them) or best.ckpt.

    Returns the checkpoint path for ``trainer.test`` (None = the model as it is) and the
    restored epoch, if EarlyStopping restored one.
    """
    from lightreg.callbacks import EarlyStopping

    for callback in trainer.callbacks:
        restored = isinstance(callback, EarlyStopping) and callback.restore_best_weights
        if restored and callback.best_epoch is not None:
            return None, callback.best_epoch
    checkpoint = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint))
    return checkpoint.best_model_path or None, None


def fit(
    recipe: Recipe,
    *,
    resume: str | Path | None = None,
    extra_callbacks: Sequence[Callback] = (),
) -> FitResult | None:
    """Train ``recipe``, then evaluate the best weights on the train (clean) and test splits.

    Args:
        recipe: the validated recipe.
        resume: a run's version directory to continue from its ``last.ckpt``.
        extra_callbacks: more Lightning callbacks for the Trainer.

    Returns:
        The result on global rank zero; None on other ranks.

    Raises:
        ResumeError: when ``resume`` has no ``last.ckpt``.
        RunInterrupted: when the user pressed Ctrl-C (the run can be resumed).
    """
    resume_dir = Path(resume) if resume is not None else None
    ckpt_path = None
    if resume_dir is not None:
        ckpt_path = resume_dir / LAST_CHECKPOINT
        if not ckpt_path.is_file():
            raise ResumeError(f"{resume_dir}: no last.ckpt to resume from")
    _quiet_lightning()
    pl.seed_everything(recipe.seed, workers=True, verbose=False)
    save_dir, name, version = _run_location(recipe, resume_dir)
    csv_logger = CSVLogger(save_dir=str(save_dir), name=name, version=version)
    run_dir = Path(csv_logger.log_dir)
    loggers: list = [csv_logger]
    if recipe.logging.tensorboard:
        loggers.append(TensorBoardLogger(save_dir=str(save_dir), name=name, version=version))

    datamodule = build_datamodule(recipe)
    model = build_module(recipe, datamodule)
    callbacks = [*build_callbacks(recipe, run_dir), *extra_callbacks]
    trainer = build_trainer(recipe, loggers, callbacks, run_dir)
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        if ckpt_path is not None:
            _keep_previous_metrics(csv_logger, _checkpoint_epoch(ckpt_path))
        else:
            _ = csv_logger.experiment  # creates the empty run directory before anything is written
            (run_dir / RECIPE_FILE).write_text(recipe_to_yaml(recipe), encoding="utf-8")
    sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit:
        if trainer.interrupted:
            raise RunInterrupted(run_dir) from None
        raise
    finally:  # Lightning ignores SIGINT after a Ctrl-C; give the caller its handler back
        signal.signal(signal.SIGINT, sigint)
    digest, identical = _compare_replicas(trainer, model)
    best, restored_epoch = _best_weights(trainer)
    final: dict[str, float] = {}
    for prefix, loader in (("train_eval", datamodule.train_eval_dataloader()), ("test", None)):
        model.test_prefix = prefix
        kwargs = {"dataloaders": loader} if loader is not None else {"datamodule": datamodule}
        results = trainer.test(model, ckpt_path=best, verbose=False, weights_only=True, **kwargs)
        final.update({k: float(v) for k, v in (results[0] if results else {}).items()})
    if not trainer.is_global_zero:
        return None
    history = epoch_history(run_dir)
    fit_epochs = {e: m for e, m in history.items() if "val_loss" in m or "train_loss" in m}
    monitor = recipe.early_stopping.monitor
    scored = {e: m[monitor] for e, m in fit_epochs.items() if monitor in m}
    pick = min if recipe.early_stopping.mode == "min" else max
    best_epoch = restored_epoch
    if best_epoch is None and scored:
        best_epoch = pick(scored, key=scored.__getitem__)
    if best_epoch in fit_epochs:
        for key in ("val_loss", "val_acc", "val_ece"):
            final.setdefault(key, fit_epochs[best_epoch].get(key, math.nan))
    epochs_run = trainer.current_epoch
    return FitResult(
        replicas=trainer.world_size,
        replicas_identical=identical,
        weights_digest=digest,
        run_dir=run_dir,
        epochs_run=epochs_run,
        max_epochs=recipe.trainer.max_epochs,
        best_epoch=best_epoch,
        stopped_early=epochs_run < recipe.trainer.max_epochs,
        history=fit_epochs,
        final=final,
    )
