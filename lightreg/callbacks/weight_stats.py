"""Per-epoch weight statistics: a cheap signal of over- (or under-) regularization.

Example:
    >>> import torch
    >>> weight_stats([torch.tensor([[3.0, 0.0], [0.0, 4.0]])])
    {'weights/l2_norm': 5.0, 'weights/mean_abs': 1.75, 'weights/frac_near_zero': 0.5}
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback
from typing_extensions import override

from lightreg.callbacks._select import ModuleTypes, check_selection, select_weights

__all__ = ["WeightStats", "weight_stats"]


@torch.no_grad()
def weight_stats(weights: Sequence[torch.Tensor], near_zero: float = 1e-6) -> dict[str, float]:
    """Global L2 norm, mean ``|w|`` and fraction of ``|w| < near_zero`` over all ``weights``.

    Raises:
        ValueError: when ``weights`` is empty.

    Example:
        >>> weight_stats([torch.zeros(2, 2)])["weights/frac_near_zero"]
        1.0
    """
    if not weights:
        raise ValueError("`weights` must hold at least one tensor, got none")
    count = sum(w.numel() for w in weights)
    l1 = torch.stack(torch._foreach_norm(weights, 1)).sum()
    l2 = torch.stack(torch._foreach_norm(weights, 2)).square().sum().sqrt()
    small = sum(torch.count_nonzero(w.abs() < near_zero) for w in weights)
    return {
        "weights/l2_norm": float(l2),
        "weights/mean_abs": float(l1) / count,
        "weights/frac_near_zero": float(small) / count,
    }


class WeightStats(Callback):
    """Log ``weights/l2_norm``, ``weights/mean_abs`` and ``weights/frac_near_zero`` per epoch.

    Computed at the end of every training epoch over the same weights that
    :class:`~lightreg.callbacks.WeightPenalty` penalizes by default (tensors with two or more
    dimensions, outside normalization layers). A shrinking norm with a growing near-zero
    fraction under L1 or heavy L2 says the penalty dominates the data term; weights are identical
    on every DDP rank, so so are the values.

    Args:
        near_zero: a weight with ``|w| < near_zero`` counts as (near) zero.
        modules: only the weights of these module types.
        param_names: exactly the parameters matching these ``fnmatch`` patterns.

    Raises:
        ValueError: when ``near_zero`` is not a finite number > 0, or when both ``modules`` and
            ``param_names`` are given.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(callbacks=[WeightStats(near_zero=1e-4)])
    """

    def __init__(
        self,
        near_zero: float = 1e-6,
        *,
        modules: ModuleTypes | None = None,
        param_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if not (math.isfinite(near_zero) and near_zero > 0):
            raise ValueError(f"`near_zero` must be a finite number > 0, got {near_zero}")
        check_selection(modules, param_names)
        self.near_zero = near_zero
        self.modules = tuple(modules) if modules is not None else None
        self.param_names = list(param_names) if param_names is not None else None

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Log the weight norm, mean ``|w|`` and the near-zero fraction."""
        weights = [p for _, p in select_weights(pl_module, self.modules, self.param_names)]
        if not weights:
            return
        for name, value in weight_stats(weights, self.near_zero).items():
            # DDP replicas hold identical weights; sync_dist keeps Lightning's epoch-level contract
            pl_module.log(
                name, value, on_step=False, on_epoch=True, sync_dist=trainer.world_size > 1
            )
