"""Optimizer parameter groups for decoupled weight decay, and sharpness-aware minimization.

Ilya Loshchilov, Frank Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
https://arxiv.org/abs/1711.05101. With Adam, an L2 penalty in the loss is rescaled by the
adaptive step (weights with large gradients are barely regularized); AdamW shrinks every weight by
``lr * weight_decay`` directly. Decay is meant for weight matrices and kernels: shrinking biases,
normalization gains/shifts or a learned dropout rate towards 0 only hurts.

``SAM`` (Foret et al. 2021) wraps any optimizer so that each step descends with the gradient
at the worst nearby weights; it is defined in ``lightreg._sam`` and loaded on first use.

``OPTIMIZER_NAMES`` is the one list of optimizers that models and recipes accept; the module
imports torch only for type checking (and when ``SAM`` is used), so that the recipe schema can
read it without torch.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    >>> optimizer = torch.optim.AdamW(param_groups(model, 1e-2), lr=1e-3)
    >>> [g["weight_decay"] for g in optimizer.param_groups]
    [0.01, 0.0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from lightreg._sam import SAM

__all__ = ["OPTIMIZER_NAMES", "SAM", "param_groups"]

OPTIMIZER_NAMES = ("adamw", "adam", "sgd", "rmsprop")
"""The optimizers ``ClassifierModule`` builds and recipes name (``optim.name``)."""


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split ``model``'s trainable parameters into a decayed and a non-decayed group.

    Parameters with two or more dimensions (Linear/Conv weights, embeddings, LSTM matrices) get
    ``weight_decay``; parameters with fewer (biases, BatchNorm/LayerNorm gains and shifts,
    ConcreteDropout's ``p_logit``, any other scalar or vector) get ``0.0``. Parameters with
    ``requires_grad=False`` are left out; empty groups are omitted.

    Args:
        model: the module whose parameters to group.
        weight_decay: decoupled decay for the weights, ``>= 0``.

    Raises:
        ValueError: when ``weight_decay`` is negative (or NaN).

    Example:
        >>> import torch
        >>> groups = param_groups(torch.nn.Linear(3, 2), weight_decay=0.05)
        >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
        [(1, 0.05), (1, 0.0)]
    """
    if not weight_decay >= 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}")
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def __getattr__(name: str) -> Any:
    """``SAM``, imported on first use (it needs torch; the optimizer names do not).

    Example:
        >>> from lightreg.optim import SAM
        >>> SAM.__name__
        'SAM'
    """
    if name == "SAM":
        from lightreg._sam import SAM

        return SAM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
