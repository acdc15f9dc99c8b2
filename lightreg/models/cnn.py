"""A regularized CNN: Conv-BN-activation blocks with pooling and SpatialDropout, then a dense head.

Follows the chapter's CNN strategy: light spatial dropout in early blocks that grows with depth
("Progressive Dropout"), heavier ordinary dropout in the dense head, no dropout on the output
layer, and a max-norm constraint on the head (applied by ``lightreg.callbacks.MaxNorm``).

Example:
    >>> import torch
    >>> model = CNNClassifier(in_channels=1, image_size=(8, 8), num_classes=10, dropout=0.5)
    >>> model(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> model.block_dropout_rates()
    [0.1, 0.2]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightreg.layers import SpatialDropout
from lightreg.models.base import ACTIVATIONS, ClassifierModule, check_block_options, dense_stack

EARLY_SHARE = 0.4  # the deepest conv block gets 0.4 x the head's rate (chapter: 0.1-0.2 vs 0.5)


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
    return [round(dropout * EARLY_SHARE * (i + 1) / blocks, 6) for i in range(blocks)]


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
) -> nn.Sequential:
    """``convs`` x (Conv3x3 -> [BN] -> activation), then MaxPool2d(2) and SpatialDropout.

    Example:
        >>> block = conv_block(1, 4, convs=1, dropout=0.1, batch_norm=True,
        ...                    bn_position="before_activation", activation="relu", pool=True)
        >>> block(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 4, 4, 4])
    """
    layers: list[nn.Module] = []
    for index in range(convs):
        channels_in = in_channels if index == 0 else out_channels
        layers.append(nn.Conv2d(channels_in, out_channels, 3, padding=1, bias=not batch_norm))
        norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
        act = [ACTIVATIONS[activation]()]
        layers += norm + act if bn_position == "before_activation" else act + norm
    if pool:
        layers.append(nn.MaxPool2d(2))
    if dropout > 0:
        layers.append(SpatialDropout(dropout))
    return nn.Sequential(*layers)


class CNNClassifier(ClassifierModule):
    """Conv blocks (progressive SpatialDropout) and a dense head (dropout) for images.

    Args:
        in_channels: image channels ``C`` of ``[B, C, H, W]`` inputs.
        image_size: ``(H, W)``.
        num_classes: output classes.
        channels: output channels of each conv block; each block halves H and W while >= 2.
        convs_per_block: 3x3 convolutions per block.
        head: widths of the dense head's hidden layers.
        dropout: the head's dropout rate; conv blocks get progressive fractions of it.
        progressive_dropout: grow conv-block rates with depth (else all blocks use ``dropout``).
        output_dropout: dropout on the features entering the output layer (0 = none).
        batch_norm, bn_position, activation: as in the MLP.
        **training: see :class:`ClassifierModule`.

    Raises:
        ValueError: for a rate outside [0, 1) or no conv block.

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
        image_size: tuple[int, int],
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
        **training: Any,
    ) -> None:
        super().__init__(num_classes, **training)
        check_block_options(bn_position, dropout=dropout, output_dropout=output_dropout)
        if not channels:
            raise ValueError("`channels` must name at least one conv block, got []")
        self.save_hyperparameters()
        self.rates = progressive_rates(dropout, len(channels), progressive_dropout)
        height, width = image_size
        blocks, previous = [], in_channels
        for out_channels, rate in zip(channels, self.rates, strict=True):
            pool = min(height, width) >= 2
            blocks.append(
                conv_block(
                    previous,
                    out_channels,
                    convs=convs_per_block,
                    dropout=rate,
                    batch_norm=batch_norm,
                    bn_position=bn_position,
                    activation=activation,
                    pool=pool,
                )
            )
            if pool:
                height, width = height // 2, width // 2
            previous = out_channels
        widths = [previous * height * width, *head]
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for ``[B, C, H, W]`` images.

        Example:
            >>> model = CNNClassifier(1, (8, 8), 10, channels=(4,), head=(8,))
            >>> model(torch.zeros(2, 1, 8, 8)).shape
            torch.Size([2, 10])
        """
        return self.head(self.features(x))
