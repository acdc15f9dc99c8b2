"""Exponential moving average (EMA) of the weights, swapped in for evaluation and checkpoints.

Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control
Optim. 1992, https://doi.org/10.1137/0330046; the form used by modern recipes (timm's
``ModelEmaV3``, Composer's ``EMA``). The averaging is PyTorch's own:
:class:`torch.optim.swa_utils.AveragedModel` with
:func:`torch.optim.swa_utils.get_ema_multi_avg_fn`.

Example:
    >>> from lightning.pytorch import Trainer
    >>> trainer = Trainer(callbacks=[EMA(decay=0.999)])
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, Strategy
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from typing_extensions import override

from lightreg.callbacks._sync import mean_over_ranks

__all__ = ["EMA"]


class EMA(Callback):
    """Keep an exponential moving average of the weights; validate, test and save it.

    After every ``every_n_steps``-th optimizer step, counting from ``start_step``, the average
    moves towards the live weights: ``ema = decay * ema + (1 - decay) * w`` (the first update
    copies ``w``). It spans about ``1 / (1 - decay)`` steps.

    The module holds the **averaged** weights from the start of each validation (and test) and
    from the end of each training epoch until the next training batch, when the **live**
    weights are put back, in place, so the optimizer keeps updating the live weights. So
    validation metrics, :class:`~lightreg.callbacks.EarlyStopping` (which judges and restores
    the validated weights), ``ModelCheckpoint`` and the weights left after ``fit`` all see the
    average. A checkpoint saved while the module holds the live weights (e.g. every N training
    steps) gets the average in its ``state_dict`` too; a ``save_weights_only`` one saved then
    does not (Lightning calls no callback for it). This callback's own state holds the averaged
    model and the live weights, so a run resumed from any checkpoint continues exactly. Before
    the first update there is no average and the live weights are used everywhere.

    Buffers are averaged with the weights (``use_buffers=True``): BatchNorm's running mean and
    variance follow the same EMA, so they match the averaged weights without an extra pass
    over the data (integer buffers such as ``num_batches_tracked`` are averaged and truncated,
    which only matters for BatchNorm with ``momentum=None``).

    Under DDP every rank holds identical live weights, so every rank computes the identical
    average of the weights with no communication. BatchNorm statistics are each rank's own
    (from its own batches), so each time the average is put in or saved the averaged buffers
    are replaced by their mean over ranks (as timm's ``distribute_bn`` does): all ranks then
    validate and keep identical weights. Sharded strategies (FSDP, DeepSpeed) are refused.

    Args:
        decay: weight of the old average at each update, ``0 < decay < 1`` (e.g. 0.999).
        every_n_steps: update after every this many optimizer steps.
        start_step: first optimizer step (``trainer.global_step``) that updates the average.

    Attributes:
        average: the :class:`~torch.optim.swa_utils.AveragedModel` (``None`` before ``fit``).

    Raises:
        ValueError: when ``decay`` is outside (0, 1), ``every_n_steps < 1`` or
            ``start_step < 0``; at ``fit``, for a sharded strategy.

    Example:
        >>> ema = EMA(decay=0.99, every_n_steps=2, start_step=100)
        >>> [step for step in range(98, 106) if ema.updates_at(step)]
        [100, 102, 104]
    """

    def __init__(self, decay: float, every_n_steps: int = 1, start_step: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"`decay` must be between 0 and 1 (exclusive), got {decay}")
        if every_n_steps < 1:
            raise ValueError(f"`every_n_steps` must be >= 1, got {every_n_steps}")
        if start_step < 0:
            raise ValueError(f"`start_step` must be >= 0, got {start_step}")
        self.decay = decay
        self.every_n_steps = every_n_steps
        self.start_step = start_step
        self.average: AveragedModel | None = None
        self._flat: _Flat | None = None  # the module's live tensors, as one flat module
        self._live: list[torch.Tensor] | None = None  # the live weights while the average is in
        self._updated_at = -1  # global step of the last update
        self._loaded: dict[str, Any] | None = None

    def updates_at(self, step: int) -> bool:
        """Whether the average is updated once ``trainer.global_step`` reaches ``step``.

        Example:
            >>> EMA(0.9).updates_at(1), EMA(0.9, start_step=5).updates_at(4)
            (True, False)
        """
        return step >= self.start_step and (step - self.start_step) % self.every_n_steps == 0

    @property
    def has_average(self) -> bool:
        """Whether the average has been updated at least once.

        Example:
            >>> EMA(0.9).has_average
            False
        """
        return self.average is not None and int(self.average.n_averaged) > 0

    def average_state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged parameters and buffers, named as in the module (empty before ``fit``).

        Example:
            >>> EMA(0.9).average_state_dict()
            {}
        """
        if self.average is None or self._flat is None:
            return {}
        return dict(zip(self._flat.names, _tensors(self.average.module), strict=True))

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Refuse sharded strategies: the average needs whole weights."""
        if isinstance(trainer.strategy, (FSDPStrategy, DeepSpeedStrategy)):
            raise ValueError(
                f"EMA needs whole weights; strategy {type(trainer.strategy).__name__} shards them"
            )

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Create the averaged model on the module's device; apply a resumed state."""
        self._flat = _Flat(pl_module)
        if self.average is None:
            self.average = AveragedModel(
                self._flat, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True
            )
        if self._loaded is not None:
            self._resume(self._loaded)
            self._loaded = None

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Look the module's tensors up again (a callback may have replaced a buffer)."""
        self._flat = _Flat(pl_module)

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Put the live weights back before training on the batch."""
        self._use_live()

    @override
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Update the average after an optimizer step it is due at (once per step)."""
        step = trainer.global_step
        if step != self._updated_at and self.updates_at(step) and self.average is not None:
            self.average.update_parameters(self._flat)
            self._updated_at = step

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Put the average in, for epoch-end checks, checkpoints and the end of ``fit``."""
        self._use_average(trainer)

    @override
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Validate the average."""
        self._use_average(trainer)

    @override
    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Test the average."""
        self._use_average(trainer)

    @override
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Save the average as the checkpoint's ``state_dict`` (the live weights are in ours)."""
        if self.has_average and self._live is None:
            self._agree_on_buffers(trainer.strategy)
            average = self.average_state_dict()
            state = checkpoint["state_dict"]
            checkpoint["state_dict"] = {
                key: average.get(key, value) for key, value in state.items()
            }

    @override
    def state_dict(self) -> dict[str, Any]:
        """The averaged model, the step of its last update, and the live weights.

        ``live`` is ``None`` while there is no average (the checkpoint's weights are the live
        ones then).

        Example:
            >>> EMA(0.9).state_dict()
            {'average': None, 'updated_at': -1, 'live': None}
        """
        live = None
        if self.has_average and self._flat is not None:
            tensors = self._live or [t.detach().clone() for t in _tensors(self._flat)]
            live = dict(zip(self._flat.names, tensors, strict=True))
        return {
            "average": None if self.average is None else self.average.state_dict(),
            "updated_at": self._updated_at,
            "live": live,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep ``state_dict`` for the start of training, when the averaged model exists.

        Example:
            >>> ema = EMA(0.9)
            >>> ema.load_state_dict({"average": None, "updated_at": 7, "live": None})
            >>> ema._updated_at
            7
        """
        self._loaded = state_dict
        self._updated_at = state_dict.get("updated_at", -1)

    def _resume(self, state: dict[str, Any]) -> None:
        """Load the saved average; the module holds the checkpoint's (averaged) weights."""
        assert self.average is not None and self._flat is not None
        if state.get("average") is not None:
            self.average.load_state_dict(state["average"])
        live = state.get("live")
        if live is not None:
            named = zip(self._flat.names, _tensors(self._flat), strict=True)
            self._live = [live[name].to(t.device) for name, t in named]

    @torch.no_grad()
    def _agree_on_buffers(self, strategy: Strategy) -> None:
        """Replace the averaged floating-point buffers by their mean over ranks."""
        assert self.average is not None
        if strategy.world_size <= 1:
            return
        for buffer in self.average.module.buffers():
            if buffer.is_floating_point():
                buffer.copy_(mean_over_ranks(strategy, buffer))

    @torch.no_grad()
    def _use_average(self, trainer: pl.Trainer) -> None:
        if self._live is not None or not self.has_average or self._flat is None:
            return
        assert self.average is not None
        self._agree_on_buffers(trainer.strategy)
        live = _tensors(self._flat)
        self._live = [t.detach().clone() for t in live]
        for target, source in zip(live, _tensors(self.average.module), strict=True):
            target.copy_(source)

    @torch.no_grad()
    def _use_live(self) -> None:
        if self._live is None or self._flat is None:
            return
        for target, source in zip(_tensors(self._flat), self._live, strict=True):
            target.copy_(source)
        self._live = None


class _Flat(nn.Module):
    """A module's parameters and buffers (shared, not copied) as one module without children.

    ``AveragedModel`` walks its modules' trees on every update; a LightningModule's tree (with
    its torchmetrics, whose hashing is slow) made that cost 0.5 ms a step on the MLP.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.names: list[str] = []
        for i, (name, parameter) in enumerate(module.named_parameters()):
            self.register_parameter(f"p{i}", parameter)
            self.names.append(name)
        for i, (name, buffer) in enumerate(module.named_buffers()):
            self.register_buffer(f"b{i}", buffer)
            self.names.append(name)


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    """Parameters then buffers, in ``AveragedModel``'s order."""
    return [*module.parameters(), *module.buffers()]
