"""Label smoothing for cross-entropy, on hard or soft targets (torch's ``F.cross_entropy``).

Christian Szegedy, Vincent Vanhoucke, Sergey Ioffe, Jon Shlens, Zbigniew Wojna, "Rethinking the
Inception Architecture for Computer Vision", CVPR 2016, https://arxiv.org/abs/1512.00567
(section 7). The target distribution is mixed with the uniform one::

    y_smooth = (1 - eps) * y + eps / K

so with ``K = 4`` and ``eps = 0.1`` the hard label ``[0, 0, 1, 0]`` becomes
``[0.025, 0.025, 0.925, 0.025]``. This is the convention of ``F.cross_entropy(label_smoothing=)``
(the uniform share also lands on the true class), not the ``eps / (K - 1)`` variant.

Example:
    >>> import torch
    >>> smooth_targets(torch.tensor([2]), num_classes=4, smoothing=0.1)
    tensor([[0.0250, 0.0250, 0.9250, 0.0250]])
    >>> loss = LabelSmoothingCrossEntropy(0.1)(torch.randn(8, 4), torch.randint(0, 4, (8,)))
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["smooth_targets", "label_smoothing_cross_entropy", "LabelSmoothingCrossEntropy"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_smoothing(smoothing: float) -> None:
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"`smoothing` must be in [0, 1], got {smoothing}")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"`reduction` can be {', '.join(_REDUCTIONS)}, got {reduction!r}")


def smooth_targets(target: Tensor, num_classes: int, smoothing: float) -> Tensor:
    """``(1 - smoothing) * y + smoothing / num_classes`` as a ``[..., num_classes]`` float tensor.

    The smoothed distribution itself, for code that hands targets to any loss (MixUp's soft
    targets); the losses below leave the smoothing to ``F.cross_entropy``.

    Args:
        target: hard class indices (integer tensor, any shape ``[...]``) or soft targets
            (floating tensor ``[..., num_classes]``, e.g. MixUp/CutMix mixtures); soft targets are
            smoothed too.
        num_classes: ``K >= 1``.
        smoothing: ``eps`` in ``[0, 1]``.

    Raises:
        ValueError: when ``smoothing`` or ``num_classes`` is out of range, or soft targets do not
            end in ``num_classes``.

    Example:
        >>> import torch
        >>> smooth_targets(torch.tensor([[0.5, 0.5]]), num_classes=2, smoothing=0.2)
        tensor([[0.5000, 0.5000]])
    """
    _check_smoothing(smoothing)
    if num_classes < 1:
        raise ValueError(f"`num_classes` must be >= 1, got {num_classes}")
    if target.is_floating_point():
        if target.shape[-1:] != (num_classes,):
            raise ValueError(
                f"soft `target` must have shape [..., {num_classes}], got {tuple(target.shape)}"
            )
        y = target
    else:
        y = F.one_hot(target.long(), num_classes).float()
    return y * (1.0 - smoothing) + smoothing / num_classes


def label_smoothing_cross_entropy(
    logits: Tensor, target: Tensor, smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy of ``logits`` against the smoothed ``target`` distribution.

    ``F.cross_entropy(logits, target, label_smoothing=smoothing)``, with the arguments checked
    first (torch smooths probability targets too).

    Args:
        logits: ``[B, K]`` unnormalized scores.
        target: ``[B]`` class indices or ``[B, K]`` probabilities (see :func:`smooth_targets`).
        smoothing: ``eps`` in ``[0, 1]``; 0 is plain cross-entropy.
        reduction: ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (per sample ``[B]``).

    Raises:
        ValueError: on a bad ``smoothing``, ``reduction`` or ``logits`` shape.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 0.0, 0.0]])
        >>> a = label_smoothing_cross_entropy(logits, torch.tensor([0]), smoothing=0.1)
        >>> b = F.cross_entropy(logits, torch.tensor([0]), label_smoothing=0.1)
        >>> bool(torch.isclose(a, b))
        True
    """
    _check_reduction(reduction)
    if logits.dim() != 2:
        raise ValueError(f"`logits` must be [B, K], got shape {tuple(logits.shape)}")
    _check_smoothing(smoothing)
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(
                f"soft `target` must have the shape of `logits` {tuple(logits.shape)},"
                f" got {tuple(target.shape)}"
            )
        target = target.to(logits.dtype)
    return F.cross_entropy(logits, target, label_smoothing=smoothing, reduction=reduction)


class LabelSmoothingCrossEntropy(nn.Module):
    """Module form of :func:`label_smoothing_cross_entropy`.

    Args:
        smoothing: ``eps`` in ``[0, 1]``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Raises:
        ValueError: on a bad ``smoothing`` or ``reduction``.

    Example:
        >>> import torch
        >>> criterion = LabelSmoothingCrossEntropy(smoothing=0.1)
        >>> round(criterion(torch.zeros(2, 4), torch.tensor([0, 3])).item(), 4)  # log(4)
        1.3863
    """

    def __init__(self, smoothing: float = 0.0, reduction: str = "mean") -> None:
        _check_smoothing(smoothing)
        _check_reduction(reduction)
        super().__init__()
        self.smoothing = smoothing
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The smoothed cross-entropy of ``logits`` ``[B, K]`` against ``target``.

        Example:
            >>> import torch
            >>> criterion = LabelSmoothingCrossEntropy(reduction="none")
            >>> criterion(torch.zeros(2, 4), torch.tensor([0, 3])).shape
            torch.Size([2])
        """
        return label_smoothing_cross_entropy(logits, target, self.smoothing, self.reduction)

    def extra_repr(self) -> str:
        """Smoothing and reduction, for ``repr``.

        Example:
            >>> LabelSmoothingCrossEntropy(0.1)
            LabelSmoothingCrossEntropy(smoothing=0.1, reduction='mean')
        """
        return f"smoothing={self.smoothing}, reduction={self.reduction!r}"
