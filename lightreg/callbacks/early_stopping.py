"""Lightning's EarlyStopping plus Keras' ``restore_best_weights`` and ``start_from_epoch``.

Example:
    >>> from lightning.pytorch import Trainer
    >>> stop = EarlyStopping("val_loss", patience=5, restore_best_weights=True)
    >>> trainer = Trainer(callbacks=[stop])
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping as _LightningEarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from typing_extensions import override

from lightreg.callbacks._sync import mean_over_ranks

__all__ = ["EarlyStopping"]


class EarlyStopping(_LightningEarlyStopping):
    """Stop when ``monitor`` stops improving, then put back the best epoch's weights.

    A drop-in subclass of :class:`lightning.pytorch.callbacks.EarlyStopping` (same arguments,
    same stopping logic). Each time the monitored metric improves, a CPU copy of the module's
    ``state_dict`` (parameters and buffers) is taken; when training ends, by patience, by a
    threshold or at ``max_epochs``, that copy is loaded back, so ``trainer.test`` or
    ``trainer.save_checkpoint`` after ``fit`` use the best weights.

    Under DDP the monitored value is averaged over ranks before the comparison (whether or not
    it was logged with ``sync_dist=True``), so every rank improves, snapshots and restores at
    the same epoch, and all ranks end with identical weights.

    The best weights travel in this callback's checkpoint state, so a run resumed with
    ``ckpt_path`` still restores the best epoch seen before the interruption (this makes each
    checkpoint carry a second copy of the weights).

    Args:
        monitor: the metric to watch, as logged (e.g. ``"val_loss"``).
        min_delta: smallest change that counts as an improvement.
        patience: checks without improvement before stopping.
        verbose: log improvements, the stop and the restore (rank zero).
        mode: ``"min"`` or ``"max"``.
        strict: raise when ``monitor`` is missing from the logged metrics.
        check_finite: stop when the metric becomes NaN or infinite.
        stopping_threshold: stop as soon as the metric is better than this.
        divergence_threshold: stop as soon as the metric is worse than this.
        check_on_train_epoch_end: check at train epoch end (``None``: Lightning decides).
        log_rank_zero_only: log the status on rank zero only.
        restore_best_weights: keep and restore the best epoch's weights.
        start_from_epoch: ignore the checks of epochs before this one (no best score, no
            patience, no snapshot), e.g. while a learning-rate warm-up settles.

    Attributes:
        best_epoch: the epoch (0-based) of the best score, ``None`` before the first check.

    Raises:
        MisconfigurationException: when ``mode`` is neither ``"min"`` nor ``"max"``.
        ValueError: when ``start_from_epoch`` or ``patience`` is negative.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> stop = EarlyStopping("val_acc", mode="max", patience=3, start_from_epoch=5)
        >>> trainer = Trainer(callbacks=[stop], max_epochs=50)
    """

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
        restore_best_weights: bool = True,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(
            monitor=monitor,
            min_delta=min_delta,
            patience=patience,
            verbose=verbose,
            mode=mode,
            strict=strict,
            check_finite=check_finite,
            stopping_threshold=stopping_threshold,
            divergence_threshold=divergence_threshold,
            check_on_train_epoch_end=check_on_train_epoch_end,
            log_rank_zero_only=log_rank_zero_only,
        )
        if patience < 0:
            raise ValueError(f"`patience` must be >= 0, got {patience}")
        if start_from_epoch < 0:
            raise ValueError(f"`start_from_epoch` must be >= 0, got {start_from_epoch}")
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.best_epoch: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._strategy: Any = None
        self._improved = False

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Remember the strategy, to average the monitored value over ranks."""
        super().setup(trainer, pl_module, stage)
        self._strategy = trainer.strategy

    @override
    def state_dict(self) -> dict[str, Any]:
        """Lightning's early-stopping state plus ``best_epoch`` (and the best weights, if kept).

        Example:
            >>> stop = EarlyStopping(monitor="val_loss")
            >>> stop.best_epoch = 4
            >>> stop.state_dict()["best_epoch"]
            4
        """
        state = super().state_dict()
        state["best_epoch"] = self.best_epoch
        if self.restore_best_weights and self.best_weights is not None:
            state["best_weights"] = self.best_weights
        return state

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (resuming from a checkpoint).

        Example:
            >>> source = EarlyStopping(monitor="val_loss")
            >>> source.best_epoch = 4
            >>> restored = EarlyStopping(monitor="val_loss")
            >>> restored.load_state_dict(source.state_dict())
            >>> restored.best_epoch
            4
        """
        super().load_state_dict(state_dict)
        self.best_epoch = state_dict.get("best_epoch")
        self.best_weights = state_dict.get("best_weights")

    @override
    def _run_early_stopping_check(self, trainer: pl.Trainer) -> None:
        if trainer.current_epoch < self.start_from_epoch:
            return
        self._improved = False
        super()._run_early_stopping_check(trainer)
        if self._improved:
            self.best_epoch = trainer.current_epoch
            if self.restore_best_weights:
                self.best_weights = _cpu_copy(trainer.lightning_module.state_dict())

    @override
    def _evaluate_stopping_criteria(self, current: torch.Tensor) -> tuple[bool, str | None]:
        current = self._synced(current)
        previous_best = self.best_score
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        # The parent replaces `best_score` only on improvement; reaching `stopping_threshold`
        # is an improvement too (the metric is better than any earlier one, or it would have
        # stopped then), though the parent stops without recording it.
        if should_stop and self.stopping_reason is EarlyStoppingReason.STOPPING_THRESHOLD:
            self.best_score = current
        self._improved = self.best_score is not previous_best
        return should_stop, reason

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Load the best epoch's weights back (every rank loads the same epoch)."""
        if not self.restore_best_weights:
            return
        if self.best_weights is None:
            rank_zero_warn(
                f"EarlyStopping: no best weights to restore (`{self.monitor}` never improved"
                f" after epoch {self.start_from_epoch}); keeping the final weights."
            )
            return
        pl_module.load_state_dict(self.best_weights)
        if self.verbose:
            rank_zero_info(
                f"EarlyStopping: restored the weights of epoch {self.best_epoch}"
                f" ({self.monitor} = {float(self.best_score):.6g})."
            )

    def _synced(self, current: torch.Tensor) -> torch.Tensor:
        """The mean of ``current`` over ranks, so that every rank takes the same decision."""
        return current if self._strategy is None else mean_over_ranks(self._strategy, current)


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}
