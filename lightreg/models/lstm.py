"""An LSTM classifier with layer-normalized gates, variational recurrent dropout and a dense head.

The image rows, the time steps of a signal (``[B, L, C]``: ``C`` features per step) or any
``[B, T, F]`` sequence are read step by step by :class:`lightreg.layers.LayerNormLSTM`; the
``readout`` (the last hidden state, the mean over time, or every step flattened, as the MNIST-1D
paper's GRU reads its outputs) goes through dropout into the output layer. With few features
per step, ``embedding`` first maps each step through a linear layer with bias: the LSTM's
LayerNorm over the input projection of a single feature would keep only its sign. Following the
chapter's RNN advice, inputs get a lighter dropout than the recurrent connections and the head.

Example:
    >>> import torch
    >>> model = LSTMClassifier(input_size=8, num_classes=10, hidden_size=16, dropout=0.2)
    >>> model(torch.zeros(3, 8, 8)).shape
    torch.Size([3, 10])
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from lightreg.layers import LayerNormLSTM
from lightreg.models.base import ClassifierModule, check_block_options

INPUT_SHARE = 0.5  # input dropout = 0.5 x dropout (chapter: 0.1-0.2 at the input)
READOUTS = ("last", "mean", "flatten")
Readout = Literal["last", "mean", "flatten"]


class LSTMClassifier(ClassifierModule):
    """LayerNormLSTM over ``[B, T, F]`` sequences, then [BN] -> Dropout -> Linear on the readout.

    Args:
        input_size: features per time step ``F``.
        num_classes: output classes.
        hidden_size: LSTM width.
        num_layers: stacked LSTM layers.
        dropout: between layers and before the output layer; inputs get ``INPUT_SHARE`` of it.
        recurrent_dropout: variational dropout on ``h`` (same mask at every step); None = dropout.
        batch_norm: BatchNorm1d on the readout (redundant with LayerNorm; the linter warns).
        readout: what the head reads: the ``last`` hidden state, their ``mean`` over time, or
            all of them concatenated (``flatten``, which needs ``steps``).
        steps: the sequence length ``T`` (only for ``readout="flatten"``).
        embedding: width of a per-step linear layer (with bias) before the LSTM; None = none.
        **training: see :class:`ClassifierModule`.

    Raises:
        ValueError: for a rate outside [0, 1), an unknown readout, or ``flatten`` without
            ``steps``.

    Example:
        >>> model = LSTMClassifier(input_size=4, num_classes=2, hidden_size=8, num_layers=1,
        ...                        dropout=0.2)
        >>> model(torch.zeros(3, 5, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        recurrent_dropout: float | None = None,
        batch_norm: bool = False,
        readout: Readout = "last",
        steps: int | None = None,
        embedding: int | None = None,
        **training: Any,
    ) -> None:
        super().__init__(num_classes, **training)
        recurrent = dropout if recurrent_dropout is None else recurrent_dropout
        check_block_options(dropout=dropout, recurrent_dropout=recurrent)
        if readout not in READOUTS:
            raise ValueError(f"`readout` can be {', '.join(READOUTS)}; got {readout!r}")
        if readout == "flatten" and steps is None:
            raise ValueError("`readout` flatten needs `steps`, the sequence length")
        self.save_hyperparameters()
        self.embed = nn.Linear(input_size, embedding) if embedding else nn.Identity()
        self.lstm = LayerNormLSTM(
            embedding or input_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            input_dropout=dropout * INPUT_SHARE,
            recurrent_dropout=recurrent,
            batch_first=True,
        )
        self.readout = readout
        width = hidden_size * steps if readout == "flatten" and steps else hidden_size
        norm = [nn.BatchNorm1d(width)] if batch_norm else []
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        self.head = nn.Sequential(*norm, *drop, nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for ``[B, T, F]`` sequences.

        Example:
            >>> model = LSTMClassifier(input_size=3, num_classes=4, hidden_size=8, num_layers=1)
            >>> model(torch.zeros(2, 6, 3)).shape  # 2 sequences of 6 steps
            torch.Size([2, 4])
            >>> LSTMClassifier(1, 4, hidden_size=8, readout="flatten", steps=40).head[-1]
            Linear(in_features=320, out_features=4, bias=True)
        """
        output, _ = self.lstm(self.embed(x))
        if self.readout == "last":
            return self.head(output[:, -1])
        if self.readout == "mean":
            return self.head(output.mean(dim=1))
        return self.head(output.flatten(1))
