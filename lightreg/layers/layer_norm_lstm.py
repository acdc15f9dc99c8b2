"""LayerNormLSTM: an LSTM with layer-normalized gates and cell, plus variational dropout.

- Layer normalization in the LSTM: Jimmy Lei Ba, Jamie Ryan Kiros, Geoffrey E. Hinton,
  "Layer Normalization", 2016, https://arxiv.org/abs/1607.06450 (section 6.3 / appendix).
  The input and recurrent projections are normalized separately, then the cell state::

      (i, f, g, o) = LN(W_x x_t) + LN(W_h h_{t-1}) + b
      c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
      h_t = sigmoid(o) * tanh(LN(c_t))

  Each LN over the 4H gate pre-activations has a gain and no shift (the single bias ``b`` plays
  that role); the LN of ``c_t`` has gain and shift.
- Variational recurrent dropout: Yarin Gal, Zoubin Ghahramani, "A Theoretically Grounded
  Application of Dropout in Recurrent Neural Networks", NeurIPS 2016,
  https://arxiv.org/abs/1512.05287. One mask per sequence (and layer) is sampled per forward pass
  and applied to ``h_{t-1}`` at *every* time step.

Input dropout (on the input of the first layer) and inter-layer dropout (on the outputs of every
layer but the last, as in ``nn.LSTM``) are ordinary element-wise dropout. All dropout follows
``.train()`` / ``.eval()``, so MC dropout can switch it on at inference.

Example:
    >>> import torch
    >>> lstm = LayerNormLSTM(8, 16, num_layers=2, dropout=0.1, recurrent_dropout=0.25)
    >>> out, (h_n, c_n) = lstm(torch.randn(4, 5, 8))  # batch_first=True by default
    >>> out.shape, h_n.shape, c_n.shape
    (torch.Size([4, 5, 16]), torch.Size([2, 4, 16]), torch.Size([2, 4, 16]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LayerNormLSTM"]


class _LayerNormLSTMLayer(nn.Module):
    """One LayerNorm LSTM layer on a batch-first sequence."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Linear(input_size, 4 * hidden_size, bias=False)
        self.weight_hh = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.norm_ih = nn.LayerNorm(4 * hidden_size, bias=False)
        self.norm_hh = nn.LayerNorm(4 * hidden_size, bias=False)
        self.norm_c = nn.LayerNorm(hidden_size)
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))

    def forward(
        self, x: Tensor, h: Tensor, c: Tensor, recurrent_mask: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        # The input projection (and its normalization) for all time steps in one matmul.
        gates_x = self.norm_ih(self.weight_ih(x)) + self.bias
        outputs = []
        for t in range(x.shape[1]):
            h_in = h if recurrent_mask is None else h * recurrent_mask
            gates = gates_x[:, t] + self.norm_hh(self.weight_hh(h_in))
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(self.norm_c(c))
            outputs.append(h)
        return torch.stack(outputs, dim=1), h, c


class LayerNormLSTM(nn.Module):
    """A multi-layer LSTM with layer normalization and (variational) dropout.

    Returns ``(output, (h_n, c_n))`` like ``nn.LSTM``: ``output`` holds the last layer's hidden
    state at every step, ``h_n`` / ``c_n`` are ``[num_layers, B, hidden_size]``. The time loop is
    Python; each layer projects the whole input sequence in one matmul before it.

    Args:
        input_size: features per time step.
        hidden_size: features of the hidden and cell state.
        num_layers: stacked layers (``>= 1``).
        dropout: element-wise dropout on the output of each layer except the last, in ``[0, 1)``.
        input_dropout: element-wise dropout on the input of the first layer, in ``[0, 1)``.
        recurrent_dropout: variational dropout on ``h_{t-1}``; one mask per sequence and layer,
            the same at every time step, in ``[0, 1)``.
        batch_first: inputs and outputs are ``[B, T, F]`` when True (the default here, unlike
            ``nn.LSTM``), ``[T, B, F]`` when False. ``h_n`` / ``c_n`` are batch-second either way.

    Raises:
        ValueError: when a size or a rate is out of range, or the input is not 3-dimensional.

    Example:
        >>> lstm = LayerNormLSTM(3, 5, batch_first=False)
        >>> h0 = (torch.zeros(1, 2, 5), torch.zeros(1, 2, 5))
        >>> out, (h_n, c_n) = lstm(torch.randn(7, 2, 3), h0)
        >>> out.shape, torch.equal(out[-1], h_n[0])
        (torch.Size([7, 2, 5]), True)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        batch_first: bool = True,
    ) -> None:
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size)):
            if size < 1:
                raise ValueError(f"`{name}` must be >= 1, got {size}")
        if num_layers < 1:
            raise ValueError(f"`num_layers` must be >= 1, got {num_layers}")
        for name, rate in (
            ("dropout", dropout),
            ("input_dropout", input_dropout),
            ("recurrent_dropout", recurrent_dropout),
        ):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {rate}")
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.recurrent_dropout = recurrent_dropout
        self.batch_first = batch_first
        self.layers = nn.ModuleList(
            _LayerNormLSTMLayer(input_size if k == 0 else hidden_size, hidden_size)
            for k in range(num_layers)
        )

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``(output, (h_n, c_n))`` for ``input``, shaped as ``nn.LSTM`` returns them.

        Example:
            >>> lstm = LayerNormLSTM(4, 8, num_layers=2)
            >>> output, (h_n, c_n) = lstm(torch.zeros(3, 5, 4))
            >>> output.shape, h_n.shape, c_n.shape
            (torch.Size([3, 5, 8]), torch.Size([2, 3, 8]), torch.Size([2, 3, 8]))
        """
        if input.dim() != 3:
            raise ValueError(
                f"`input` must be 3-dimensional ([B, T, F] or [T, B, F]), got shape "
                f"{tuple(input.shape)}"
            )
        x = input if self.batch_first else input.transpose(0, 1)
        batch = x.shape[0]
        if hx is None:
            zeros = x.new_zeros(self.num_layers, batch, self.hidden_size)
            hx = (zeros, zeros)
        expected = (self.num_layers, batch, self.hidden_size)
        for name, state in zip(("h_0", "c_0"), hx, strict=True):
            if tuple(state.shape) != expected:
                raise ValueError(f"`{name}` must have shape {expected}, got {tuple(state.shape)}")
        x = F.dropout(x, self.input_dropout, self.training)
        h_n, c_n = [], []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = F.dropout(x, self.dropout, self.training)
            mask = None
            if self.training and self.recurrent_dropout > 0:
                ones = x.new_ones(batch, self.hidden_size)
                mask = F.dropout(ones, self.recurrent_dropout, training=True)
            x, h, c = layer(x, hx[0][k], hx[1][k], mask)
            h_n.append(h)
            c_n.append(c)
        output = x if self.batch_first else x.transpose(0, 1)
        return output, (torch.stack(h_n), torch.stack(c_n))

    def extra_repr(self) -> str:
        """Sizes and dropout rates, for ``repr``.

        Example:
            >>> LayerNormLSTM(4, 8).extra_repr()
            '4, 8, num_layers=1, dropout=0.0, input_dropout=0.0, recurrent_dropout=0.0, batch_first=True'
        """
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"dropout={self.dropout}, input_dropout={self.input_dropout}, "
            f"recurrent_dropout={self.recurrent_dropout}, batch_first={self.batch_first}"
        )
