"""Lightning's EarlyStopping plus Keras' ``restore_best_weights`` and ``start_from_epoch``.

Built on Lightning's public callback hooks only; the decision lives in :meth:`EarlyStopping.decide`,
a pure method.

Example:
    >>> from lightning.pytorch import Trainer
    >>> stop = EarlyStopping("val_loss", patience=5, restore_best_weights=True)
    >>> trainer = Trainer(callbacks=[stop])
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping as _LightningEarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import (
    rank_prefixed_message,
    rank_zero_info,
    rank_zero_warn,
)
from typing_extensions import override

from lightreg.callbacks._sync import mean_over_ranks

__all__ = ["Decision", "EarlyStopping"]

log = logging.getLogger(__name__)


class Decision(NamedTuple):
    """What one check of the monitored value decides.

    Attributes:
        improved: the value is the new best score.
        should_stop: this check asks the trainer to stop.
        reason: why it stops (``NOT_STOPPED`` when it does not).
        message: the line to log (``None`` when nothing is worth saying).
        wait_count: checks without improvement, counting this one.

    Example:
        >>> Decision(True, False, EarlyStoppingReason.NOT_STOPPED, None, 0).improved
        True
    """

    improved: bool
    should_stop: bool
    reason: EarlyStoppingReason
    message: str | None
    wait_count: int


class EarlyStopping(_LightningEarlyStopping):
    """Stop when ``monitor`` stops improving, then put back the best epoch's weights.

    A drop-in subclass of :class:`lightning.pytorch.callbacks.EarlyStopping` (same arguments,
    same stopping rules, same ``state_key``; the trainer treats it as its early-stopping
    callback). Each time the monitored metric improves, a CPU copy of the module's
    ``state_dict`` (parameters and buffers) is taken; when training ends, by patience, by a
    threshold or at ``max_epochs``, that copy is loaded back, so ``trainer.test`` or
    ``trainer.save_checkpoint`` after ``fit`` use the best weights. Reaching
    ``stopping_threshold`` counts as an improvement (it is better than every earlier check).

    Under DDP the monitored value is averaged over ranks before the comparison (whether or not
    it was logged with ``sync_dist=True``), so every rank improves, snapshots and restores at
    the same epoch, and all ranks end with identical weights.

    The best weights travel in this callback's checkpoint state, so a run resumed with
    ``ckpt_path`` still restores the best epoch seen before the interruption (this makes each
    checkpoint carry a second copy of the weights).

    Args:
        monitor: the metric to watch, as logged (e.g. ``"val_loss"``).
        min_delta: smallest change that counts as an improvement; must be >= 0 (Lightning
            would read a negative one as "worse values improve", so it is refused).
        patience: checks without improvement before stopping.
        verbose: log improvements, the stop and the restore.
        mode: ``"min"`` or ``"max"``.
        strict: raise when ``monitor`` is missing from the logged metrics.
        check_finite: stop when the metric becomes NaN or infinite.
        stopping_threshold: stop as soon as the metric is better than this.
        divergence_threshold: stop as soon as the metric is worse than this.
        check_on_train_epoch_end: check at train epoch end (``None``: at train epoch end
            when validation runs once per epoch, else after each validation).
        log_rank_zero_only: log the status on rank zero only.
        restore_best_weights: keep and restore the best epoch's weights.
        start_from_epoch: ignore the checks of epochs before this one (no best score, no
            patience, no snapshot), e.g. while a learning-rate warm-up settles.

    Attributes:
        best_epoch: the epoch (0-based) of the best score, ``None`` before the first check.

    Raises:
        MisconfigurationException: when ``mode`` is neither ``"min"`` nor ``"max"``.
        ValueError: when ``min_delta``, ``patience`` or ``start_from_epoch`` is negative.

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
        for name, value in [
            ("min_delta", min_delta),
            ("patience", patience),
            ("start_from_epoch", start_from_epoch),
        ]:
            if value < 0:
                raise ValueError(f"`{name}` must be >= 0, got {value}")
        # Lightning's sign convention: `current - min_delta` must beat the best score.
        self.min_delta = min_delta if mode == "max" else -min_delta
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.best_epoch: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._check_at_train_epoch_end = check_on_train_epoch_end

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Check at train epoch end unless validation runs other than once per epoch."""
        super().setup(trainer, pl_module, stage)
        if self._check_at_train_epoch_end is None:
            self._check_at_train_epoch_end = (
                trainer.val_check_interval == 1.0 and trainer.check_val_every_n_epoch == 1
            )

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Check the monitored value, when checking at train epoch end."""
        if self._check_at_train_epoch_end and self._checks_now(trainer):
            self._check(trainer)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Check the monitored value, when checking after each validation."""
        if not self._check_at_train_epoch_end and self._checks_now(trainer):
            self._check(trainer)

    def decide(self, current: torch.Tensor) -> Decision:
        """What a check of ``current`` decides, given the best score and wait count so far.

        Pure: changes nothing; the callback applies the decision.

        Example:
            >>> stop = EarlyStopping("val_loss", patience=2)
            >>> stop.best_score, stop.wait_count = torch.tensor(0.5), 1
            >>> stop.decide(torch.tensor(0.4)).improved
            True
            >>> stop.decide(torch.tensor(0.6))[1:3]
            (True, <EarlyStoppingReason.PATIENCE_EXHAUSTED: 3>)
        """
        best = self.best_score.to(current.device)
        if self.check_finite and not torch.isfinite(current):
            return Decision(
                False,
                True,
                EarlyStoppingReason.NON_FINITE_METRIC,
                f"Monitored metric {self.monitor} = {current} is not finite."
                f" Previous best value was {best:.3f}. Signaling Trainer to stop.",
                self.wait_count,
            )
        order = self.order_dict[self.mode]
        if self.stopping_threshold is not None and self.monitor_op(
            current, self.stopping_threshold
        ):
            return Decision(
                True,
                True,
                EarlyStoppingReason.STOPPING_THRESHOLD,
                f"Stopping threshold reached: {self.monitor} = {current} {order}"
                f" {self.stopping_threshold}. Signaling Trainer to stop.",
                0,
            )
        if self.divergence_threshold is not None and self.monitor_op(
            -current, -self.divergence_threshold
        ):
            return Decision(
                False,
                True,
                EarlyStoppingReason.DIVERGENCE_THRESHOLD,
                f"Divergence threshold reached: {self.monitor} = {current} {order}"
                f" {self.divergence_threshold}. Signaling Trainer to stop.",
                self.wait_count,
            )
        if self.monitor_op(current - self.min_delta, best):
            gain = f" by {abs(best - current):.3f} >= min_delta = {abs(self.min_delta)}"
            message = (
                f"Metric {self.monitor} improved{gain if torch.isfinite(best) else ''}."
                f" New best score: {current:.3f}"
            )
            return Decision(True, False, EarlyStoppingReason.NOT_STOPPED, message, 0)
        wait_count = self.wait_count + 1
        if wait_count < self.patience:
            return Decision(False, False, EarlyStoppingReason.NOT_STOPPED, None, wait_count)
        return Decision(
            False,
            True,
            EarlyStoppingReason.PATIENCE_EXHAUSTED,
            f"Monitored metric {self.monitor} did not improve in the last {wait_count} records."
            f" Best score: {best:.3f}. Signaling Trainer to stop.",
            wait_count,
        )

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

    def _checks_now(self, trainer: pl.Trainer) -> bool:
        return (
            trainer.state.fn == TrainerFn.FITTING
            and not trainer.sanity_checking
            and trainer.current_epoch >= self.start_from_epoch
        )

    def _check(self, trainer: pl.Trainer) -> None:
        """Decide on the rank-mean of the monitored value, apply it, tell the trainer."""
        if trainer.fast_dev_run:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            self._report_missing(trainer)
            return
        current = mean_over_ranks(trainer.strategy, value.squeeze())
        decision = self.decide(current)
        self.wait_count = decision.wait_count
        if decision.improved:
            self.best_score = current
            self.best_epoch = trainer.current_epoch
            if self.restore_best_weights:
                self.best_weights = _cpu_copy(trainer.lightning_module.state_dict())
        if decision.should_stop:
            self.stopping_reason = decision.reason
        # every rank sees the same mean; stop all of them if any one asks (as Lightning does)
        should_stop = trainer.strategy.reduce_boolean_decision(decision.should_stop, all=False)
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = decision.message
        if decision.message and self.verbose:
            rank = trainer.global_rank if trainer.world_size > 1 else None
            if rank is None or not self.log_rank_zero_only or rank == 0:
                log.info(rank_prefixed_message(decision.message, rank))

    def _report_missing(self, trainer: pl.Trainer) -> None:
        """Raise (``strict``) or warn (``verbose``) that ``monitor`` was not logged."""
        message = (
            f"Early stopping conditioned on metric `{self.monitor}` which is not available."
            " Pass in or modify your `EarlyStopping` callback to use any of the following:"
            f" `{'`, `'.join(trainer.callback_metrics)}`"
        )
        if self.strict:
            raise RuntimeError(message)
        if self.verbose:
            rank_zero_warn(message, category=RuntimeWarning)


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}
