"""L1, L2 and elastic-net weight penalties, added to the gradients instead of the loss.

Keras ``kernel_regularizer=l1_l2(l1, l2)`` for an unmodified LightningModule: the penalty
``l1 * sum|w| + l2 * sum w^2`` has gradient ``l1 * sign(w) + 2 * l2 * w``, which is added to
the selected parameters' gradients right before each optimizer step, with ``torch._foreach``
kernels (no autograd graph through the penalty, no change to ``training_step``).

Example:
    >>> from lightning.pytorch import Trainer
    >>> trainer = Trainer(callbacks=[WeightPenalty(l1=1e-5, l2=1e-4)])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback
from torch.optim import Optimizer
from typing_extensions import override

from lightreg.callbacks._select import ModuleTypes, check_selection, select_weights

__all__ = ["WeightPenalty"]


class WeightPenalty(Callback):
    """Add ``l1 * sum|w| + l2 * sum w^2`` to the training objective, through the gradients.

    In ``on_before_optimizer_step`` (after AMP unscaling, once per optimizer step) the callback
    adds ``l1 * sign(w) + 2 * l2 * w`` to the gradient of every selected parameter held by the
    optimizer being stepped. This is exactly the gradient of the penalty added to the loss:

    * **Gradient accumulation.** Lightning divides each micro-batch loss by
      ``accumulate_grad_batches = N`` before ``backward``, so a penalty written into
      ``training_step`` contributes ``N * grad(penalty) / N = grad(penalty)`` per optimizer
      step. The hook runs only at the accumulation boundary, so adding ``grad(penalty)`` once
      gives the same scale.
    * **Several optimizers.** Only the parameters of the optimizer being stepped are touched.
    * **DDP.** Gradients are already all-reduced and the weights are identical on every rank,
      so the same local addition happens everywhere.
    * **Gradient clipping** runs after this hook, so it sees the penalized gradient, as it
      would with the penalty in the loss.

    By default the penalty acts on weights only: parameters with two or more dimensions, except
    those of normalization layers (biases, norm gains/shifts and other vectors are excluded).

    When the Trainer has a logger, the penalty values ``reg/l1`` and ``reg/l2`` are logged at
    step level every ``trainer.log_every_n_steps`` optimizer steps (they cost one extra
    ``_foreach_norm`` each, so they are only computed when the logger would write them).

    Args:
        l1: L1 coefficient ``>= 0`` (lasso; drives weights to exactly zero).
        l2: L2 coefficient ``>= 0`` (ridge). ``l2 = wd / 2`` matches SGD's coupled
            ``weight_decay = wd``; with Adam use AdamW's decoupled decay instead.
        modules: restrict the penalty to the weights of these module types, e.g.
            ``[torch.nn.Linear]``.
        param_names: penalize exactly the parameters whose qualified name matches one of
            these ``fnmatch`` patterns, e.g. ``["head.*.weight"]`` (any shape).
        log: log ``reg/l1`` and ``reg/l2``.

    Raises:
        ValueError: when ``l1`` or ``l2`` is negative or not finite, when both are zero, or
            when both ``modules`` and ``param_names`` are given.

    Example:
        >>> import torch
        >>> from lightning.pytorch import Trainer
        >>> penalty = WeightPenalty(l2=1e-4, modules=[torch.nn.Linear, torch.nn.Conv2d])
        >>> trainer = Trainer(callbacks=[penalty], max_epochs=1)
    """

    def __init__(
        self,
        l1: float = 0.0,
        l2: float = 0.0,
        *,
        modules: ModuleTypes | None = None,
        param_names: Sequence[str] | None = None,
        log: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("l1", l1), ("l2", l2)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"`{name}` must be a finite number >= 0, got {value}")
        if l1 == 0 and l2 == 0:
            raise ValueError("at least one of `l1`, `l2` must be > 0, got l1=0 and l2=0")
        check_selection(modules, param_names)
        self.l1 = float(l1)
        self.l2 = float(l2)
        self.modules = tuple(modules) if modules is not None else None
        self.param_names = list(param_names) if param_names is not None else None
        self.log = log
        self._params: dict[Optimizer, list[torch.nn.Parameter]] = {}

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Forget the per-optimizer weight lists: each fit builds new optimizers."""
        self._params = {}

    @override
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        """Add ``l1 * sign(w) + 2 * l2 * w`` to the gradients of this optimizer's weights."""
        params = self._params.get(optimizer)
        if params is None:
            params = self._params[optimizer] = self.optimizer_params(optimizer, pl_module)
        with_grad = [p for p in params if p.grad is not None]
        if not with_grad:
            return
        self.add_penalty_grad(with_grad)
        if self.log and _logger_writes_this_step(trainer):
            l1, l2 = self.penalty(with_grad)
            if self.l1:
                pl_module.log("reg/l1", l1, on_step=True, on_epoch=False)
            if self.l2:
                pl_module.log("reg/l2", l2, on_step=True, on_epoch=False)

    def optimizer_params(
        self, optimizer: Optimizer, pl_module: torch.nn.Module
    ) -> list[torch.nn.Parameter]:
        """The selected parameters of ``pl_module`` that ``optimizer`` updates.

        Example:
            >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
            >>> optimizer = torch.optim.SGD(model[1].parameters(), lr=0.1)  # updates the last layer only
            >>> [p.shape for p in WeightPenalty(l2=1e-4).optimizer_params(optimizer, model)]
            [torch.Size([2, 3])]
        """
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        chosen = select_weights(pl_module, self.modules, self.param_names)
        return [p for _, p in chosen if id(p) in held]

    @torch.no_grad()
    def add_penalty_grad(self, params: Sequence[torch.Tensor]) -> None:
        """``p.grad += l1 * sign(p) + 2 * l2 * p`` for every ``p`` (all with a gradient).

        Example:
            >>> p = torch.nn.Parameter(torch.tensor([[-2.0, 0.0, 3.0]]))
            >>> p.grad = torch.zeros_like(p)
            >>> WeightPenalty(l1=0.5, l2=0.25).add_penalty_grad([p])
            >>> p.grad
            tensor([[-1.5000,  0.0000,  2.0000]])
        """
        grads = [p.grad for p in params]
        if self.l1:
            torch._foreach_add_(grads, torch._foreach_sign(params), alpha=self.l1)
        if self.l2:
            torch._foreach_add_(grads, params, alpha=2.0 * self.l2)

    @torch.no_grad()
    def penalty(self, params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The penalty terms ``(l1 * sum|w|, l2 * sum w^2)`` over ``params``.

        Example:
            >>> WeightPenalty(l1=0.5, l2=0.25).penalty([torch.tensor([[-2.0, 0.0, 3.0]])])
            (tensor(2.5000), tensor(3.2500))
        """
        l1 = torch.stack(torch._foreach_norm(params, 1)).sum() * self.l1
        l2 = torch.stack(torch._foreach_norm(params, 2)).square().sum() * self.l2
        return l1, l2


def _logger_writes_this_step(trainer: pl.Trainer) -> bool:
    # Lightning writes step metrics when (optimizer steps taken, this one included) % n == 0;
    # `global_step` does not count this step yet.
    every = trainer.log_every_n_steps
    return bool(trainer.loggers) and every > 0 and (trainer.global_step + 1) % every == 0
