"""A regularized CNN for images and 1D signals: conv blocks with pooling and SpatialDropout, then a
dense head.

Follows the chapter's CNN strategy: light spatial dropout in early blocks that grows with depth
("Progressive Dropout"), heavier ordinary dropout in the dense head, no dropout on the output
layer, and a max-norm constraint on the head (applied by ``lightreg.callbacks.MaxNorm``).

The same code builds both forms: ``image_size`` ``(H, W)`` gives Conv2d/BatchNorm2d/MaxPool2d on
``[B, C, H, W]`` images, ``(L,)`` gives Conv1d/BatchNorm1d/MaxPool1d on ``[B, C, L]`` signals
(:data:`LAYERS`); SpatialDropout drops whole channels in either.

Two later regularizers of conv nets, both off by default:

- ``block="residual"`` wraps each block's convolutions in a skip connection
  (:class:`SkipBlock`), and ``drop_path`` drops that branch per sample (stochastic depth, Huang
  et al. 2016) at a rate rising linearly with depth: block ``i`` of ``L`` gets
  ``drop_path * i / L`` (:func:`linear_rates`), the paper's linear decay rule.
- ``dropblock`` drops ``dropblock_size`` blocks of every block's conv maps (DropBlock, Ghiasi et
  al. 2018), before the pooling: DropBlock2d for images, DropBlock1d for signals.

Example:
    >>> import torch
    >>> model = CNNClassifier(in_channels=1, image_size=(8, 8), num_classes=10, dropout=0.5)
    >>> model(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> model.block_dropout_rates()
    [0.1, 0.2]
    >>> CNNClassifier(1, (40,), 10)(torch.zeros(2, 1, 40)).shape  # a signal of 40 steps
    torch.Size([2, 10])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from lightreg.layers import DropBlock1d, DropBlock2d, DropPath, SpatialDropout
from lightreg.models.base import (
    ClassifierModule,
    check_block_options,
    dense_stack,
    norm_and_activation,
)
from lightreg.models.shapes import block_shapes, residual_padding_problem

EARLY_SHARE = 0.4  # the deepest conv block gets 0.4 x the head's rate (chapter: 0.1-0.2 vs 0.5)


BLOCKS = ("plain", "residual")
"""Conv block types: convolutions alone, or inside a skip connection (:class:`SkipBlock`)."""


class ConvLayers(NamedTuple):
    """The convolution, batch norm, max-pool and DropBlock classes for one number of spatial
    dimensions.

    Example:
        >>> LAYERS[1].conv.__name__, LAYERS[2].dropblock.__name__
        ('Conv1d', 'DropBlock2d')
    """

    conv: type[nn.Module]
    norm: type[nn.Module]
    pool: type[nn.Module]
    dropblock: type[nn.Module]


LAYERS: dict[int, ConvLayers] = {
    1: ConvLayers(nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, DropBlock1d),
    2: ConvLayers(nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, DropBlock2d),
}
"""Spatial dimensions (1: signals, 2: images) -> the layers a conv block is made of."""


def linear_rates(rate: float, blocks: int) -> list[float]:
    """``rate * i / blocks`` for block ``i = 1..blocks``: rising linearly to ``rate`` at the last.

    Example:
        >>> linear_rates(0.2, 4)  # stochastic depth's linear decay rule, p_L = 0.2
        [0.05, 0.1, 0.15, 0.2]
    """
    return [round(rate * (i + 1) / blocks, 6) for i in range(blocks)]


def progressive_rates(dropout: float, blocks: int, progressive: bool = True) -> list[float]:
    """Dropout per conv block: rising linearly with depth to ``EARLY_SHARE * dropout``.

    Example:
        >>> progressive_rates(0.5, 2)
        [0.1, 0.2]
        >>> progressive_rates(0.3, 2, progressive=False)
        [0.3, 0.3]
    """
    if not progressive:
        return [dropout] * blocks
    return linear_rates(dropout * EARLY_SHARE, blocks)


class SkipBlock(nn.Module):
    """``shortcut(x) + DropPath(drop_path)(body(x))``: a residual block with stochastic depth.

    :func:`conv_block` gives it the identity as shortcut when the body keeps the channels and
    the size, else a 1x1 convolution with the body's stride (and BatchNorm when the body has
    it), as ResNet does.

    Args:
        body: the block's convolutions.
        shortcut: what carries the input past them.
        drop_path: probability that a sample's ``body`` output is dropped while training.

    Example:
        >>> skip = SkipBlock(nn.Conv2d(2, 2, 3, padding=1), nn.Identity(), drop_path=0.1)
        >>> x = torch.randn(1, 2, 4, 4)
        >>> torch.equal(skip.eval()(x), x + skip.body(x))
        True
    """

    def __init__(self, body: nn.Module, shortcut: nn.Module, drop_path: float = 0.0) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The shortcut plus the (per sample, possibly dropped) body.

        Example:
            >>> SkipBlock(nn.Identity(), nn.Identity())(torch.ones(2, 3)).tolist()
            [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
        """
        return self.shortcut(x) + self.drop_path(self.body(x))


def conv_block(
    in_channels: int,
    out_channels: int,
    *,
    convs: int,
    dropout: float,
    batch_norm: bool,
    bn_position: str,
    activation: str,
    pool: bool,
    dims: int = 2,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | None = None,
    block: str = "plain",
    drop_path: float = 0.0,
    dropblock: float = 0.0,
    dropblock_size: int = 3,
) -> nn.Sequential:
    """``convs`` x (Conv -> [BN] -> activation), then DropBlock, MaxPool(2) and SpatialDropout.

    ``dims`` picks 1D or 2D layers from :data:`LAYERS`. The first convolution has ``stride``;
    ``padding`` None is ``kernel_size // 2`` (the size is kept for odd kernels at stride 1).
    ``block="residual"`` puts the convolutions in a :class:`SkipBlock` whose branch is dropped
    per sample with probability ``drop_path``; ``dropblock > 0`` adds DropBlock on the maps.

    Example:
        >>> block = conv_block(1, 4, convs=1, dropout=0.1, batch_norm=True,
        ...                    bn_position="before_activation", activation="relu", pool=True)
        >>> block(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 4, 4, 4])
        >>> block = conv_block(1, 4, convs=1, dropout=0.0, batch_norm=False, dims=1, stride=2,
        ...                    bn_position="before_activation", activation="relu", pool=False)
        >>> block(torch.zeros(2, 1, 40)).shape
        torch.Size([2, 4, 20])
        >>> block = conv_block(4, 4, convs=2, dropout=0.0, batch_norm=False, block="residual",
        ...                    bn_position="before_activation", activation="relu", pool=False,
        ...                    drop_path=0.1, dropblock=0.1)
        >>> [type(layer).__name__ for layer in block]
        ['SkipBlock', 'DropBlock2d']
    """
    kind = LAYERS[dims]
    pad = kernel_size // 2 if padding is None else padding
    layers: list[nn.Module] = []
    for index in range(convs):
        channels_in = in_channels if index == 0 else out_channels
        layers.append(
            kind.conv(
                channels_in,
                out_channels,
                kernel_size,
                stride=stride if index == 0 else 1,
                padding=pad,
                bias=not batch_norm,
            )
        )
        norm = kind.norm(out_channels) if batch_norm else None
        layers += norm_and_activation(norm, activation, bn_position)
    if block == "residual":
        shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels or stride != 1:
            project = kind.conv(in_channels, out_channels, 1, stride=stride, bias=not batch_norm)
            shortcut = nn.Sequential(project, *([kind.norm(out_channels)] if batch_norm else []))
        layers = [SkipBlock(nn.Sequential(*layers), shortcut, drop_path)]
    if dropblock > 0:
        layers.append(kind.dropblock(dropblock, dropblock_size))
    if pool:
        layers.append(kind.pool(2))
    if dropout > 0:
        layers.append(SpatialDropout(dropout))
    return nn.Sequential(*layers)


class CNNClassifier(ClassifierModule):
    """Conv blocks (progressive SpatialDropout) and a dense head (dropout) for images or signals.

    Args:
        in_channels: channels ``C`` of ``[B, C, H, W]`` images or ``[B, C, L]`` signals.
        image_size: ``(H, W)`` for images, ``(L,)`` for signals: it picks 2D or 1D layers.
        num_classes: output classes.
        channels: output channels of each conv block.
        convs_per_block: convolutions per block.
        head: widths of the dense head's hidden layers (none: the output layer reads the maps).
        dropout: the head's dropout rate; conv blocks get progressive fractions of it.
        progressive_dropout: grow conv-block rates with depth (else all blocks use ``dropout``).
        output_dropout: dropout on the features entering the output layer (0 = none).
        batch_norm, bn_position, activation: as in the MLP.
        kernel_size: the kernel's side, for every block or one per block.
        stride: stride of each block's first convolution.
        padding: zero padding of every convolution; None = ``kernel_size // 2``.
        pool: max-pool by 2 after each block while every side is >= 2.
        block: ``plain`` convolutions, or ``residual`` (each block in a :class:`SkipBlock`).
        drop_path: stochastic depth rate of the deepest residual block; block ``i`` of ``L``
            gets ``drop_path * i / L``. Needs ``block="residual"``.
        dropblock: DropBlock rate on every block's conv maps (0 = none).
        dropblock_size: side of a dropped block (a run of steps for signals).
        **training: see :class:`ClassifierModule`.

    Raises:
        ValueError: for a rate outside [0, 1), no conv block, a ``kernel_size`` list whose
            length is not the number of blocks, convolutions that shrink the input to nothing,
            an unknown ``block``, ``drop_path`` on plain blocks, or residual blocks whose
            convolutions change the map size.

    Example:
        >>> model = CNNClassifier(in_channels=3, image_size=(16, 16), num_classes=5, channels=(8,),
        ...                       head=(16,), dropout=0.5)
        >>> model(torch.zeros(2, 3, 16, 16)).shape
        torch.Size([2, 5])
        >>> model.block_dropout_rates()
        [0.2]
    """

    def __init__(
        self,
        in_channels: int,
        image_size: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        convs_per_block: int = 2,
        head: Sequence[int] = (128,),
        dropout: float = 0.0,
        progressive_dropout: bool = True,
        output_dropout: float = 0.0,
        batch_norm: bool = True,
        bn_position: str = "before_activation",
        activation: str = "relu",
        kernel_size: int | Sequence[int] = 3,
        stride: int = 1,
        padding: int | None = None,
        pool: bool = True,
        block: str = "plain",
        drop_path: float = 0.0,
        dropblock: float = 0.0,
        dropblock_size: int = 3,
        **training: Any,
    ) -> None:
        super().__init__(num_classes, **training)
        check_block_options(
            bn_position,
            dropout=dropout,
            output_dropout=output_dropout,
            drop_path=drop_path,
            dropblock=dropblock,
        )
        if block not in BLOCKS:
            raise ValueError(f"`block` can be {', '.join(BLOCKS)}; got {block!r}")
        if drop_path > 0 and block != "residual":
            raise ValueError(
                f"`drop_path` = {drop_path:g} needs block='residual' (a skip connection whose "
                f"branch it drops); got block={block!r}"
            )
        if not channels:
            raise ValueError("`channels` must name at least one conv block, got []")
        if len(image_size) not in LAYERS:
            raise ValueError(
                f"`image_size` must be (H, W) for images or (L,) for signals, got {tuple(image_size)}"
            )
        kernels = [kernel_size] * len(channels) if isinstance(kernel_size, int) else kernel_size
        if len(kernels) != len(channels):
            raise ValueError(
                f"`kernel_size` lists {len(kernels)} kernels for {len(channels)} conv blocks"
            )
        if block == "residual":
            problem = residual_padding_problem(kernels, padding)
            if problem:
                raise ValueError(f"`block` 'residual': {problem}")
        self.save_hyperparameters()
        self.rates = progressive_rates(dropout, len(channels), progressive_dropout)
        self.drop_path_rates = linear_rates(drop_path, len(channels))
        shapes = block_shapes(
            image_size,
            kernels,
            convs_per_block=convs_per_block,
            stride=stride,
            padding=padding,
            pool=pool,
        )
        blocks, previous = [], in_channels
        for out_channels, rate, path_rate, kernel, shape in zip(
            channels, self.rates, self.drop_path_rates, kernels, shapes, strict=True
        ):
            blocks.append(
                conv_block(
                    previous,
                    out_channels,
                    convs=convs_per_block,
                    dropout=rate,
                    batch_norm=batch_norm,
                    bn_position=bn_position,
                    activation=activation,
                    pool=shape.pooled,
                    dims=len(image_size),
                    kernel_size=kernel,
                    stride=stride,
                    padding=padding,
                    block=block,
                    drop_path=path_rate,
                    dropblock=dropblock,
                    dropblock_size=dropblock_size,
                )
            )
            previous = out_channels
        widths = [previous * math.prod(shapes[-1].output), *head]
        dense = dense_stack(
            widths,
            dropout=dropout,
            batch_norm=batch_norm,
            bn_position=bn_position,
            activation=activation,
        )
        last = [nn.Dropout(output_dropout)] if output_dropout > 0 else []
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), *dense, *last, nn.Linear(widths[-1], num_classes))

    def block_dropout_rates(self) -> list[float]:
        """The SpatialDropout rate of each conv block, shallow to deep.

        Example:
            >>> model = CNNClassifier(1, (8, 8), 10, channels=(4, 8), dropout=0.5, progressive_dropout=False)
            >>> model.block_dropout_rates()
            [0.5, 0.5]
        """
        return list(self.rates)

    def block_drop_path_rates(self) -> list[float]:
        """The stochastic depth rate of each conv block, shallow to deep (all 0 on plain blocks).

        Example:
            >>> model = CNNClassifier(1, (8, 8), 10, channels=(4, 8), block="residual", drop_path=0.2)
            >>> model.block_drop_path_rates()
            [0.1, 0.2]
        """
        return list(self.drop_path_rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for ``[B, C, H, W]`` images or ``[B, C, L]`` signals.

        Example:
            >>> model = CNNClassifier(1, (8, 8), 10, channels=(4,), head=(8,))
            >>> model(torch.zeros(2, 1, 8, 8)).shape
            torch.Size([2, 10])
        """
        return self.head(self.features(x))
