"""DropPath (stochastic depth): skip a residual branch for whole samples while training.

Gao Huang, Yu Sun, Zhuang Liu, Daniel Sedra, Kilian Weinberger, "Deep Networks with Stochastic
Depth", ECCV 2016, https://arxiv.org/abs/1603.09382. A residual block computes
``x + drop_path(f(x))``: for each sample independently, the branch ``f(x)`` is dropped with
probability ``p`` (the block becomes the identity) and otherwise kept. The paper scales the
branch by the survival probability ``1 - p`` at test time; here, as in timm, kept branches are
scaled by ``1 / (1 - p)`` during training instead (``scale_by_keep``), so evaluation is the
identity. The paper's linear decay rule (block ``l`` of ``L`` dropped with ``p * l / L``) is the
model's job: see ``lightreg.models.cnn``.

Numerically this is timm's ``drop_path`` (``timm/layers/drop.py``): the random draw is the same
single call, ``x.new_empty((B, 1, ..., 1)).bernoulli_(1 - p)``, so the same generator state gives
the same mask and the same output. Pass ``generator`` for a stream of your own.

Example:
    >>> import torch
    >>> y = drop_path(torch.ones(6, 3), p=0.5, training=True)
    >>> sorted(set(y[:, 0].tolist()) | {0.0, 2.0})  # each sample dropped (0) or kept (x 2)
    [0.0, 2.0]
    >>> DropPath(0.1).eval()(torch.ones(2, 3)).sum().item()
    6.0
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightreg.layers.drop import _check_p

__all__ = ["DropPath", "drop_path"]


def drop_path(
    x: Tensor,
    p: float = 0.0,
    training: bool = False,
    scale_by_keep: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero ``x`` for whole samples (along dim 0) with probability ``p``; rescale the kept ones.

    Args:
        x: a residual branch's output, any shape ``[B, ...]``; one draw per sample.
        p: drop probability, in ``[0, 1)``.
        training: when False (or ``p == 0``) ``x`` is returned unchanged.
        scale_by_keep: divide kept samples by ``1 - p``, so the expectation is ``x``.
        generator: the random stream of the draw; None is torch's global one.

    Raises:
        ValueError: when ``p`` is outside ``[0, 1)``.

    Example:
        >>> x = torch.ones(4, 2)
        >>> drop_path(x, 0.5, training=False) is x
        True
        >>> y = drop_path(x, 0.5, True, scale_by_keep=False, generator=torch.Generator().manual_seed(0))
        >>> bool((y == y[:, :1]).all())  # a whole sample at a time
        True
    """
    _check_p(p)
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    mask = x.new_empty(shape).bernoulli_(keep, generator=generator)
    if scale_by_keep:
        mask.div_(keep)
    return x * mask


class DropPath(nn.Module):
    """Stochastic depth on a residual branch: ``x + DropPath(p)(branch(x))``; see :func:`drop_path`.

    Args:
        p: probability that a sample's branch is dropped, in ``[0, 1)``.
        scale_by_keep: divide kept branches by ``1 - p`` while training.

    Raises:
        ValueError: when ``p`` is outside ``[0, 1)``.

    Example:
        >>> branch = nn.Sequential(nn.Linear(4, 4), DropPath(0.2))
        >>> x = torch.randn(3, 4)
        >>> torch.equal(branch.eval()(x), branch[0](x))  # the identity in eval mode
        True
        >>> DropPath(0.2)
        DropPath(p=0.2)
    """

    def __init__(self, p: float = 0.0, scale_by_keep: bool = True) -> None:
        _check_p(p)
        super().__init__()
        self.p = p
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Tensor) -> Tensor:
        """Drop whole samples of ``x`` while training; see :func:`drop_path`.

        Example:
            >>> y = DropPath(0.5)(torch.ones(8, 3, 2))  # training mode
            >>> bool(((y == 0) | (y == 2)).all())
            True
        """
        return drop_path(x, self.p, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        """The drop rate, and ``scale_by_keep`` when it is off.

        Example:
            >>> DropPath(0.1, scale_by_keep=False)
            DropPath(p=0.1, scale_by_keep=False)
        """
        return f"p={self.p}" + ("" if self.scale_by_keep else ", scale_by_keep=False")
