"""A regularized multi-layer perceptron: Dense-BN-activation-Dropout blocks, then the output layer.

No dropout on the output layer itself; ``output_dropout`` (default 0) drops the last hidden
features and is flagged by the recipe linter. ``residual`` adds the input of each hidden block to
its output where the widths match, as the MNIST-1D paper's ``MLPBase`` does (Greydanus & Kobak,
"Scaling Down Deep Learning with MNIST-1D", ICML 2024, https://arxiv.org/abs/2011.14439).

Example:
    >>> import torch
    >>> model = MLPClassifier(in_features=64, num_classes=10, hidden=(32,), dropout=0.3)
    >>> model(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightreg.models.base import ClassifierModule, check_block_options, dense_stack


class Residual(nn.Module):
    """``x + block(x)``: a skip connection around ``block`` (same input and output width).

    Example:
        >>> skip = Residual(nn.Identity())
        >>> skip(torch.ones(2, 3)).tolist()
        [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The input plus the block's output.

        Example:
            >>> Residual(nn.Linear(4, 4))(torch.zeros(2, 4)).shape
            torch.Size([2, 4])
        """
        return x + self.block(x)


class MLPClassifier(ClassifierModule):
    """Dense-BN-ReLU-Dropout blocks with BN before or after the activation.

    Args:
        in_features: input width (a flat sample).
        num_classes: output classes.
        hidden: widths of the hidden layers.
        dropout: dropout rate after every hidden block.
        output_dropout: dropout on the features entering the output layer (0 = none).
        batch_norm: add BatchNorm1d in each block.
        bn_position: ``before_activation`` or ``after_activation``.
        activation: ``relu``, ``gelu``, ``silu`` or ``tanh``.
        residual: wrap each hidden block whose input and output widths match in
            :class:`Residual`.
        **training: see :class:`ClassifierModule` (lr, optimizer, weight_decay, ...).

    Raises:
        ValueError: for a rate outside [0, 1) or an unknown ``bn_position``.

    Example:
        >>> import torch
        >>> model = MLPClassifier(in_features=4, num_classes=3, hidden=(8, 8), dropout=0.2)
        >>> [type(layer).__name__ for layer in model.net]
        ['Flatten', 'Sequential', 'Sequential', 'Linear']
        >>> model(torch.zeros(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (256, 128),
        dropout: float = 0.0,
        output_dropout: float = 0.0,
        batch_norm: bool = True,
        bn_position: str = "before_activation",
        activation: str = "relu",
        residual: bool = False,
        **training: Any,
    ) -> None:
        super().__init__(num_classes, **training)
        check_block_options(bn_position, dropout=dropout, output_dropout=output_dropout)
        self.save_hyperparameters()
        widths = [in_features, *hidden]
        blocks = dense_stack(
            widths,
            dropout=dropout,
            batch_norm=batch_norm,
            bn_position=bn_position,
            activation=activation,
        )
        if residual:
            blocks = [
                Residual(block) if a == b else block
                for block, a, b in zip(blocks, widths[:-1], widths[1:], strict=True)
            ]
        head: list[nn.Module] = [nn.Dropout(output_dropout)] if output_dropout > 0 else []
        self.net = nn.Sequential(nn.Flatten(), *blocks, *head, nn.Linear(widths[-1], num_classes))
