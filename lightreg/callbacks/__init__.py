"""Regularization callbacks for any Lightning project: add them to an unmodified Trainer.

Example:
    >>> from lightning.pytorch import Trainer
    >>> from lightreg.callbacks import EarlyStopping, MaxNorm, WeightPenalty
    >>> trainer = Trainer(
    ...     callbacks=[WeightPenalty(l2=1e-4), MaxNorm(3.0), EarlyStopping("val_loss", patience=5)]
    ... )
"""

from lightreg.callbacks.early_stopping import EarlyStopping
from lightreg.callbacks.ema import EMA
from lightreg.callbacks.max_norm import MaxNorm, max_norm_
from lightreg.callbacks.mixup import (
    CutMix,
    MixUp,
    MixUpCutMix,
    cutmix,
    cutmix_box,
    mixup,
    soft_targets,
)
from lightreg.callbacks.overfitting import OverfittingMonitor
from lightreg.callbacks.penalty import WeightPenalty
from lightreg.callbacks.weight_stats import WeightStats, weight_stats

__all__ = [
    "CutMix",
    "EMA",
    "EarlyStopping",
    "MaxNorm",
    "MixUp",
    "MixUpCutMix",
    "OverfittingMonitor",
    "WeightPenalty",
    "WeightStats",
    "cutmix",
    "cutmix_box",
    "max_norm_",
    "mixup",
    "soft_targets",
    "weight_stats",
]
