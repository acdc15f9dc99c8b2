"""Build the DataModule, model, callbacks and Trainer that a :class:`Recipe` describes.

The seams for new pieces: a model type registers in ``lightreg.models.registry``; a
regularization knob maps to a library callback in :func:`build_callbacks`.

Example:
    >>> from lightreg.recipe import Recipe
    >>> recipe = Recipe(name="x", regularization={"l1": 1e-5, "max_norm": 3.0})
    >>> [type(c).__name__ for c in build_callbacks(recipe, "runs/x/version_0")][:4]
    ['RunCheckpoint', 'RunCheckpoint', 'EarlyStopping', 'WeightPenalty']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import (
    Callback,
    ModelCheckpoint,
    RichProgressBar,
    StochasticWeightAveraging,
)
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from lightreg.data.datamodule import SampleDataModule
from lightreg.models.base import ClassifierModule
from lightreg.models.registry import build_model, layout_for
from lightreg.recipe.schema import Recipe
from lightreg.run_files import BEST_CHECKPOINT, LAST_CHECKPOINT


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to ``<path>.tmp`` beside it, then rename it over ``path``.

    A write that fails half-way (a full disk, a kill) leaves the previous checkpoint whole and
    removes the partial file; a reader never sees a truncated checkpoint under the real name.
    Lightning's own writer stages the file in the system temporary folder and then copies it
    across file systems, which is not atomic. Local paths only.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "last.ckpt"
        >>> AtomicCheckpointIO().save_checkpoint({"epoch": 3}, path)
        >>> [p.name for p in path.parent.iterdir()]
        ['last.ckpt']
    """

    @override
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        """Save ``checkpoint`` at ``path`` whole, or leave ``path`` as it was and raise."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        target = Path(path)
        partial = target.with_name(target.name + ".tmp")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with partial.open("wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise


class RunCheckpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` whose state follows its run directory when the directory moves.

    Lightning forgets ``best_model_score`` when a checkpoint is loaded into a callback whose
    ``dirpath`` differs from the saved one, and then the first resumed epoch overwrites the best
    checkpoint however bad it is. This class moves the saved paths into its own ``dirpath``
    first, so a resumed run compares against the best score it had.

    Example:
        >>> best = RunCheckpoint(dirpath="/runs/b", filename="best", monitor="val_loss")
        >>> best.load_state_dict({"dirpath": "/old/a", "best_model_path": "/old/a/best.ckpt",
        ...                       "best_model_score": 0.5, "best_k_models": {}})
        >>> best.best_model_path, best.best_model_score
        ('/runs/b/best.ckpt', 0.5)
    """

    @property
    @override
    def state_key(self) -> str:
        """A plain ``ModelCheckpoint``'s key, so checkpoints it wrote resume into this class."""
        return ModelCheckpoint.__qualname__ + super().state_key.removeprefix(
            type(self).__qualname__
        )

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load ``state_dict``, its paths first moved from its ``dirpath`` into this one's."""
        saved = state_dict.get("dirpath")
        if saved and self.dirpath and saved != self.dirpath:
            state_dict = _moved(state_dict, str(saved), str(self.dirpath))
        super().load_state_dict(state_dict)


def _moved(state: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    def move(path: Any) -> Any:
        if isinstance(path, str) and path and os.path.dirname(path) == old:
            return os.path.join(new, os.path.basename(path))
        return path

    moved = {**state, "dirpath": new}
    for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
        if key in moved:
            moved[key] = move(moved[key])
    if isinstance(moved.get("best_k_models"), dict):
        moved["best_k_models"] = {move(k): v for k, v in moved["best_k_models"].items()}
    return moved


def build_datamodule(recipe: Recipe) -> SampleDataModule:
    """The DataModule for ``recipe.data``, augmented per ``recipe.regularization.augment``.

    Example:
        >>> from lightreg.recipe import Recipe
        >>> dm = build_datamodule(Recipe(name="x", data={"dataset": "wine"}))
        >>> dm.num_classes, dm.input_shape
        (3, (13,))
    """
    data = recipe.data
    return SampleDataModule(
        data.dataset,
        str(data.path) if data.path else None,
        layout=layout_for(recipe.model.type),
        label_column=data.label_column,
        resize=data.image_size,
        color_channels=data.channels,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        train_fraction=data.train_fraction,
        batch_size=data.batch_size,
        num_workers=data.num_workers,
        augment=recipe.regularization.augment,
        seed=recipe.seed,
    )


def build_module(recipe: Recipe, datamodule: SampleDataModule) -> ClassifierModule:
    """The LightningModule, sized to the data.

    Example:
        >>> from lightreg.recipe import Recipe
        >>> recipe = Recipe(name="x", data={"dataset": "wine"})
        >>> module = build_module(recipe, build_datamodule(recipe))
        >>> type(module).__name__, module.num_classes
        ('MLPClassifier', 3)
    """
    return build_model(recipe, datamodule.input_shape, datamodule.num_classes)


def build_callbacks(recipe: Recipe, run_dir: str | Path) -> list[Callback]:
    """Checkpointing plus one library callback per regularization knob the recipe turns on.

    Two checkpoints: ``best.ckpt``, rewritten when the monitored metric improves, and
    ``last.ckpt``, rewritten every epoch after it (so it holds the best checkpoint's state).

    Example:
        >>> from lightreg.recipe import Recipe
        >>> recipe = Recipe(name="x", trainer={"enable_progress_bar": False})
        >>> [type(c).__name__ for c in build_callbacks(recipe, "runs/x/version_0")]
        ['RunCheckpoint', 'RunCheckpoint', 'EarlyStopping', 'OverfittingMonitor', 'WeightStats']
    """
    from lightreg import callbacks as reg

    stop, rules = recipe.early_stopping, recipe.regularization
    result: list[Callback] = [
        RunCheckpoint(
            dirpath=str(run_dir),
            filename=Path(BEST_CHECKPOINT).stem,
            monitor=stop.monitor,
            mode=stop.mode,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
        RunCheckpoint(  # no monitor: saved every epoch; listed second, so saved after best
            dirpath=str(run_dir),
            filename=Path(LAST_CHECKPOINT).stem,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
    ]
    if rules.ema_decay is not None:
        result.append(reg.EMA(decay=rules.ema_decay))
    if rules.swa is not None:  # before EarlyStopping: its restore, when any, comes last
        swa = StochasticWeightAveraging(
            swa_lrs=rules.swa.lrs, swa_epoch_start=rules.swa.epoch_start
        )
        result.append(swa)
    if stop.enabled:
        result.append(
            reg.EarlyStopping(
                monitor=stop.monitor,
                patience=stop.patience,
                mode=stop.mode,
                min_delta=stop.min_delta,
                restore_best_weights=stop.restore_best_weights,
                start_from_epoch=stop.start_from_epoch,
            )
        )
    if rules.l1 or rules.l2:
        result.append(reg.WeightPenalty(l1=rules.l1, l2=rules.l2))
    if rules.max_norm is not None:
        result.append(reg.MaxNorm(max_value=rules.max_norm))
    mixing = _mixing_callback(recipe)
    if mixing is not None:
        result.append(mixing)
    monitor = rules.overfitting_monitor
    if monitor.enabled:
        result.append(
            reg.OverfittingMonitor(
                criterion=monitor.criterion,
                threshold=monitor.threshold,
                strip=monitor.strip,
                stop=monitor.stop,
            )
        )
    if rules.weight_stats:
        result.append(reg.WeightStats())
    if recipe.trainer.enable_progress_bar:
        result.append(RichProgressBar(leave=True))
    return result


def _mixing_callback(recipe: Recipe) -> Callback | None:
    from lightreg import callbacks as reg

    rules = recipe.regularization
    if rules.mixup_alpha > 0 and rules.cutmix_alpha > 0:
        return reg.MixUpCutMix(mixup_alpha=rules.mixup_alpha, cutmix_alpha=rules.cutmix_alpha)
    if rules.mixup_alpha > 0:
        return reg.MixUp(alpha=rules.mixup_alpha)
    if rules.cutmix_alpha > 0:
        return reg.CutMix(alpha=rules.cutmix_alpha)
    return None


def build_trainer(
    recipe: Recipe, loggers: list[Any], callbacks: list[Callback], run_dir: str | Path
) -> pl.Trainer:
    """The Lightning Trainer for ``recipe.trainer``, writing checkpoints atomically.

    Example:
        >>> from lightreg.recipe import resolve_recipe
        >>> recipe = resolve_recipe(
        ...     {"name": "x", "trainer": {"max_epochs": 1, "enable_progress_bar": False}}
        ... )
        >>> trainer = build_trainer(recipe, loggers=[], callbacks=[], run_dir="runs/x/version_0")
        >>> trainer.max_epochs
        1
    """
    cfg = recipe.trainer
    return pl.Trainer(
        max_epochs=cfg.max_epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=cfg.precision,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        gradient_clip_val=cfg.gradient_clip_val,
        sync_batchnorm=cfg.sync_batchnorm,
        deterministic=cfg.deterministic,
        limit_train_batches=cfg.limit_train_batches,
        log_every_n_steps=cfg.log_every_n_steps,
        enable_progress_bar=cfg.enable_progress_bar,
        enable_model_summary=False,
        logger=loggers,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(run_dir),
    )
