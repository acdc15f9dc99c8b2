"""Prechelt's live overfitting criteria (GL, PQ, UP), logged each epoch and optionally enforced.

Lutz Prechelt, "Early Stopping - But When?" (1998), https://doi.org/10.1007/3-540-49430-8_3.
The formulas live in :mod:`lightreg.criteria`, shared with ``lightreg diagnose``.

Example:
    >>> from lightning.pytorch import Trainer
    >>> trainer = Trainer(callbacks=[OverfittingMonitor("GL", threshold=5.0)])
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from typing_extensions import override

from lightreg.callbacks._sync import mean_over_ranks
from lightreg.criteria import generalization_loss, progress_quotient, up_count

__all__ = ["OverfittingMonitor"]

CRITERIA = ("GL", "PQ", "UP")


class OverfittingMonitor(Callback):
    """Log Prechelt's GL, PQ and UP each epoch; warn once (or stop) when the criterion fires.

    After every training epoch that ran a validation, the validation and training losses are
    appended to a history, from which it logs (as epoch metrics, so they reach every logger):

    * ``overfit/gl``: generalization loss ``100 * (E_va / min E_va - 1)``, every epoch;
    * ``overfit/pq``: ``GL / P_k``, training progress over the last ``strip`` epochs, at strip
      ends (needs ``train_monitor``);
    * ``overfit/up``: how many successive strips saw the validation loss rise, at strip ends.

    The chosen criterion fires when ``GL > threshold``, when ``PQ > threshold`` at a strip end,
    or, for ``UP``, when the count reaches ``int(threshold)``. The first time, a single-line
    warning is issued on rank zero (on stderr, or the ``lightreg`` logger when logging is
    configured); with ``stop=True`` training stops, on all ranks together.
    Under DDP the losses are averaged over ranks first, so every rank holds the same history.
    The sanity-check validation and ``trainer.validate`` runs are ignored.

    Args:
        criterion: ``"GL"``, ``"PQ"`` or ``"UP"``.
        threshold: GL in percent (Prechelt: 1-5), PQ (0.5-2) or the number of rising strips
            for UP (2-4).
        strip: strip length ``k`` in epochs for PQ and UP (Prechelt: 5).
        monitor: validation loss metric.
        train_monitor: training loss metric, logged per epoch (``on_epoch=True``) in
            ``training_step``; required for PQ, optional otherwise.
        stop: stop training when the criterion fires.

    Raises:
        ValueError: for an unknown ``criterion``, a ``threshold`` that is not > 0 (or < 1 for
            UP), or ``strip < 1``.
        RuntimeError: during training, when ``monitor`` (or, for PQ, ``train_monitor``) is not
            logged.

    Example:
        >>> monitor = OverfittingMonitor("UP", threshold=3, strip=5, stop=True)
        >>> monitor.history["val"] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.7, 0.8, 0.8, 0.9, 0.9]
        >>> monitor.evaluate()
        ({'overfit/gl': 50.0, 'overfit/up': 1}, False)
    """

    def __init__(
        self,
        criterion: str = "GL",
        threshold: float = 5.0,
        strip: int = 5,
        monitor: str = "val_loss",
        train_monitor: str = "train_loss",
        stop: bool = False,
    ) -> None:
        super().__init__()
        if criterion not in CRITERIA:
            raise ValueError(f"`criterion` can be {', '.join(CRITERIA)}, got {criterion!r}")
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"`threshold` must be a finite number > 0, got {threshold}")
        if criterion == "UP" and int(threshold) < 1:
            raise ValueError(f"`threshold` for UP is a count of strips >= 1, got {threshold}")
        if strip < 1:
            raise ValueError(f"`strip` must be >= 1, got {strip}")
        self.criterion = criterion
        self.threshold = threshold
        self.strip = strip
        self.monitor = monitor
        self.train_monitor = train_monitor
        self.stop = stop
        self.history: dict[str, list[float]] = {"val": [], "train": []}
        self.fired_epoch: int | None = None
        self._pending_val: float | None = None

    @property
    @override
    def state_key(self) -> str:
        """The checkpoint key: one per criterion and monitored metric.

        Example:
            >>> OverfittingMonitor("PQ").state_key
            "OverfittingMonitor{'criterion': 'PQ', 'monitor': 'val_loss'}"
        """
        return self._generate_state_key(criterion=self.criterion, monitor=self.monitor)

    @override
    def state_dict(self) -> dict[str, Any]:
        """The loss history and the epoch the criterion fired, for checkpoints.

        Example:
            >>> monitor = OverfittingMonitor()
            >>> monitor.history["val"] = [1.0, 0.9]
            >>> monitor.state_dict()
            {'val': [1.0, 0.9], 'train': [], 'fired_epoch': None}
        """
        return {
            "val": list(self.history["val"]),
            "train": list(self.history["train"]),
            "fired_epoch": self.fired_epoch,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (resuming from a checkpoint).

        Example:
            >>> monitor = OverfittingMonitor()
            >>> monitor.load_state_dict({"val": [1.0, 1.2], "train": [0.9, 0.8], "fired_epoch": 1})
            >>> monitor.history, monitor.fired_epoch
            ({'val': [1.0, 1.2], 'train': [0.9, 0.8]}, 1)
        """
        self.history = {
            "val": list(state_dict.get("val", [])),
            "train": list(state_dict.get("train", [])),
        }
        self.fired_epoch = state_dict.get("fired_epoch")

    def evaluate(self) -> tuple[dict[str, float], bool]:
        """The metrics for the current history and whether the criterion fires now.

        Example:
            >>> monitor = OverfittingMonitor("GL", threshold=5.0)
            >>> monitor.history["val"] = [1.0, 0.5, 0.75]
            >>> monitor.evaluate()
            ({'overfit/gl': 50.0}, True)
        """
        val, train = self.history["val"], self.history["train"]
        metrics: dict[str, float] = {"overfit/gl": generalization_loss(val)}
        fired = self.criterion == "GL" and metrics["overfit/gl"] > self.threshold
        if len(val) % self.strip == 0:
            if len(train) == len(val):
                metrics["overfit/pq"] = progress_quotient(val, train, self.strip)
                fired |= self.criterion == "PQ" and metrics["overfit/pq"] > self.threshold
            metrics["overfit/up"] = up_count(val, self.strip)
            fired |= self.criterion == "UP" and metrics["overfit/up"] >= int(self.threshold)
        return metrics, fired

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Keep the epoch's synced validation loss until the training epoch ends."""
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._pending_val = self._metric(trainer, self.monitor, required=True)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Update GL/PQ/UP, log them, warn once, and stop (all ranks) if asked."""
        if self._pending_val is None:
            return
        train = self._metric(trainer, self.train_monitor, required=self.criterion == "PQ")
        self.history["val"].append(self._pending_val)
        if train is not None:
            self.history["train"].append(train)
        self._pending_val = None
        metrics, fired = self.evaluate()
        distributed = trainer.world_size > 1
        for name, value in metrics.items():
            # every rank computes the same value from synced losses; sync_dist only says so
            pl_module.log(name, float(value), on_step=False, on_epoch=True, sync_dist=distributed)
        if fired and self.fired_epoch is None:
            self.fired_epoch = trainer.current_epoch
            shown = ", ".join(f"{k.split('/')[1].upper()}={v:.4g}" for k, v in metrics.items())
            _rank_zero_warning(
                f"OverfittingMonitor: {self.criterion} crossed {self.threshold:g} at epoch"
                f" {trainer.current_epoch} ({shown}); validation loss is rising while"
                f" training loss falls{', stopping' if self.stop else ''}."
            )
        if self.stop:
            should_stop = trainer.strategy.reduce_boolean_decision(fired, all=False)
            trainer.should_stop = trainer.should_stop or should_stop

    def _metric(self, trainer: pl.Trainer, name: str, required: bool) -> float | None:
        value = trainer.callback_metrics.get(name)
        if value is None:
            if required:
                raise RuntimeError(
                    f"OverfittingMonitor needs the metric `{name}`, which is not logged; logged"
                    f" metrics: {', '.join(trainer.callback_metrics) or 'none'}"
                )
            return None
        return float(mean_over_ranks(trainer.strategy, value))


_log = logging.getLogger(__name__)


@rank_zero_only
def _rank_zero_warning(message: str) -> None:
    """One warning line: on the ``lightreg`` logger when logging is configured (the CLI renders
    it), else printed on stderr."""
    if _log.hasHandlers():
        _log.warning(message)
        return
    print(f"Warning: {message}", file=sys.stderr)
