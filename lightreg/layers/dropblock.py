"""DropBlock: drop contiguous blocks of a feature map, in 2D (images) and 1D (signals).

Golnaz Ghiasi, Tsung-Yi Lin, Quoc V. Le, "DropBlock: A regularization method for convolutional
networks", NeurIPS 2018, https://arxiv.org/abs/1810.12890. Neighbouring activations of a conv map
are correlated, so dropping single units (dropout) barely removes information; DropBlock drops
``block_size`` x ``block_size`` squares around randomly drawn seeds. The seed rate ``gamma`` is
corrected (the paper's equation 1) so that about a share ``p`` of the units is dropped:
``gamma = p / block_size^2 * feat_size^2 / (feat_size - block_size + 1)^2``
(:func:`drop_block_gamma`, for any map shape). Kept units are rescaled by the share actually
kept, so the mean is preserved and evaluation is the identity.

Numerically this is timm's ``drop_block_2d`` (``timm/layers/drop.py``), whose choices it keeps:
seeds are drawn at every position (the paper draws them only where a whole block fits; blocks at
the borders are cut short, as the correction assumes), a block is centred on its seed, one mask
serves every channel (``couple_channels``), and ``block_size`` is cut to the map's sides. 1D is
the same computation on ``[B, C, L]`` (timm's 2D on a map of height 1). The random draw is one
call, ``torch.empty(B, 1 or C, *map).bernoulli_(gamma)``, with gamma computed in timm's order,
so the same generator state gives the same mask; :func:`drop_block_mask` is the deterministic
rest (seeds to blocks, a max-pool like ``torchvision.ops.drop_block2d``'s).

The paper also lowers the keep probability linearly over training ("scheduled DropBlock");
that schedule is not part of this layer: ``p`` is fixed.

Example:
    >>> import torch
    >>> DropBlock2d(p=0.1, block_size=3)(torch.randn(2, 4, 8, 8)).shape
    torch.Size([2, 4, 8, 8])
    >>> DropBlock1d(p=0.1, block_size=5).eval()(torch.ones(1, 2, 40)).sum().item()
    80.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightreg.layers.drop import _check_p

__all__ = ["DropBlock1d", "DropBlock2d", "drop_block", "drop_block_gamma", "drop_block_mask"]

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d}
"""Spatial dimensions -> the max-pool that grows seeds into blocks."""


def _check_block_size(block_size: int) -> None:
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"`block_size` must be a whole number >= 1, got {block_size!r}")


def drop_block_gamma(p: float, block_size: int, size: Sequence[int]) -> float:
    """The seed rate that drops about a share ``p`` of a map of shape ``size`` (equation 1).

    ``block_size`` is first cut to each side of the map. For a square map of side ``n`` and
    ``k = block_size``, ``gamma = p / k^2 * n^2 / (n - k + 1)^2``.

    Example:
        >>> round(drop_block_gamma(0.1, 3, (7, 7)), 6)  # 0.1 / 9 * 49 / 25
        0.021778
        >>> round(drop_block_gamma(0.2, 5, (40,)), 6)  # 1D: 0.2 / 5 * 40 / 36
        0.044444
    """
    kernel = [min(block_size, n) for n in size]
    fits = math.prod(n - k + 1 for n, k in zip(size, kernel, strict=True))
    return math.prod(size, start=p) / math.prod(kernel) / fits  # timm's order, bit for bit


def drop_block_mask(seeds: Tensor, block_size: int) -> Tensor:
    """The keep mask (1 kept, 0 dropped) of blocks grown around the 1s of ``seeds``.

    ``seeds`` is ``[B, C, L]`` or ``[B, C, H, W]``; each seed drops the block centred on it (an
    even block reaches one further up and left), cut at the borders.

    Example:
        >>> seeds = torch.zeros(1, 1, 9)
        >>> seeds[0, 0, 4] = 1
        >>> drop_block_mask(seeds, 3)[0, 0].tolist()
        [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    """
    kernel = [min(block_size, n) for n in seeds.shape[2:]]
    blocks = _MAX_POOL[len(kernel)](
        seeds, kernel_size=kernel, stride=1, padding=[k // 2 for k in kernel]
    )
    # an even kernel's max-pool is one longer on that side: drop its first position
    blocks = blocks[(..., *(slice((k + 1) % 2, None) for k in kernel))]
    return 1.0 - blocks


def drop_block(
    x: Tensor,
    p: float = 0.1,
    block_size: int = 7,
    training: bool = False,
    *,
    couple_channels: bool = True,
    scale_by_keep: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Drop blocks of ``x`` so that about a share ``p`` of each map is zero, while training.

    Args:
        x: a batched feature map, ``[B, C, L]`` (1D) or ``[B, C, H, W]`` (2D).
        p: share of units to drop (the paper's ``1 - keep_prob``), in ``[0, 1)``.
        block_size: side of a dropped block, cut to each side of the map.
        training: when False (or ``p == 0``) ``x`` is returned unchanged.
        couple_channels: one mask for every channel of a sample (else one per channel).
        scale_by_keep: rescale kept units by (units / kept units), preserving the mean.
        generator: the random stream of the seeds; None is torch's global one.

    Raises:
        ValueError: when ``p`` is outside ``[0, 1)``, ``block_size`` is not a whole number
            >= 1, or ``x`` is not 3- or 4-dimensional.

    Example:
        >>> y = drop_block(torch.ones(4, 2, 16, 16), 0.2, 3, True)
        >>> bool((y[:, 0] == y[:, 1]).all())  # the channels share one mask
        True
    """
    _check_p(p)
    _check_block_size(block_size)
    if x.dim() - 2 not in _MAX_POOL:
        raise ValueError(f"`x` must be [B, C, L] or [B, C, H, W], got shape {tuple(x.shape)}")
    if not training or p == 0.0:
        return x
    size = x.shape[2:]
    gamma = drop_block_gamma(p, block_size, size)
    channels = 1 if couple_channels else x.shape[1]
    with torch.no_grad():
        seeds = torch.empty((x.shape[0], channels, *size), dtype=x.dtype, device=x.device)
        keep = drop_block_mask(seeds.bernoulli_(gamma, generator=generator), block_size)
        if scale_by_keep:
            scale = keep.numel() / keep.to(dtype=torch.float32).sum().add(1e-7)
            keep.mul_(scale.to(x.dtype))
    return x * keep


class _DropBlock(nn.Module):
    """The module over :func:`drop_block` for maps with ``spatial_dims`` spatial dimensions."""

    spatial_dims: ClassVar[int]
    layout: ClassVar[str]

    def __init__(
        self,
        p: float = 0.1,
        block_size: int = 7,
        couple_channels: bool = True,
        scale_by_keep: bool = True,
    ) -> None:
        _check_p(p)
        _check_block_size(block_size)
        super().__init__()
        self.p = p
        self.block_size = block_size
        self.couple_channels = couple_channels
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Tensor) -> Tensor:
        """Drop blocks of ``x`` while training; see :func:`drop_block`.

        Example:
            >>> DropBlock2d(0.1, 3).eval()(torch.ones(1, 1, 4, 4)).sum().item()
            16.0
        """
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"{type(self).__name__} takes {self.layout} maps, got shape {tuple(x.shape)}"
            )
        return drop_block(
            x,
            self.p,
            self.block_size,
            self.training,
            couple_channels=self.couple_channels,
            scale_by_keep=self.scale_by_keep,
        )

    def extra_repr(self) -> str:
        """The rate and block size, and the options that are off.

        Example:
            >>> DropBlock2d(0.1, 5, scale_by_keep=False)
            DropBlock2d(p=0.1, block_size=5, scale_by_keep=False)
        """
        off = [name for name in ("couple_channels", "scale_by_keep") if not getattr(self, name)]
        return ", ".join(
            [f"p={self.p}, block_size={self.block_size}"] + [f"{n}=False" for n in off]
        )


class DropBlock2d(_DropBlock):
    """DropBlock on ``[B, C, H, W]`` image maps; see :func:`drop_block`.

    Args:
        p: share of units to drop, in ``[0, 1)`` (the paper's ``1 - keep_prob``; 0.1 there).
        block_size: side of a dropped square (the paper's best on ImageNet: 7).
        couple_channels: one mask for every channel of a sample.
        scale_by_keep: rescale kept units to preserve the mean.

    Raises:
        ValueError: for a bad ``p`` or ``block_size`` here, or a map that is not 4-dimensional
            in ``forward``.

    Example:
        >>> block = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), DropBlock2d(0.1, 3), nn.ReLU())
        >>> block(torch.randn(2, 3, 12, 12)).shape
        torch.Size([2, 8, 12, 12])
    """

    spatial_dims = 2
    layout = "[B, C, H, W]"


class DropBlock1d(_DropBlock):
    """DropBlock on ``[B, C, L]`` signal maps: runs of ``block_size`` steps; see :func:`drop_block`.

    Takes the arguments of :class:`DropBlock2d`, and raises as it does (for a map that is not
    3-dimensional in ``forward``).

    Example:
        >>> block = nn.Sequential(nn.Conv1d(1, 4, 5, padding=2), DropBlock1d(0.1, 5))
        >>> block(torch.randn(2, 1, 40)).shape
        torch.Size([2, 4, 40])
    """

    spatial_dims = 1
    layout = "[B, C, L]"
