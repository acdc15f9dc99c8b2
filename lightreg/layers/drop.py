"""DropConnect and SpatialDropout: dropout of weights and of whole feature maps.

- DropConnect: Li Wan, Matthew Zeiler, Sixin Zhang, Yann LeCun, Rob Fergus, "Regularization of
  Neural Networks using DropConnect", ICML 2013, https://proceedings.mlr.press/v28/wan13.html.
  Each *weight* (not each unit) is dropped independently. Wan et al. write ``p`` for the keep
  probability; here ``p`` is the drop probability, as in ``torch.nn.Dropout``. At evaluation the
  layer uses the mean weights (inverted scaling during training), not the paper's Gaussian
  moment-matching inference.
- SpatialDropout: Jonathan Tompson, Ross Goroshin, Arjun Jain, Yann LeCun, Christoph Bregler,
  "Efficient Object Localization Using Convolutional Networks", CVPR 2015,
  https://arxiv.org/abs/1411.4280. Whole channels are dropped, because neighbouring activations
  of a feature map are strongly correlated and element-wise dropout barely regularizes them.

Both use inverted dropout: kept values are scaled by ``1 / (1 - p)`` during training, so the
expectation is preserved and evaluation is the identity. Both are torch's own dropout applied to
the right tensor: ``F.dropout`` of the weight, ``F.dropout1d/2d/3d`` of the feature map.

Example:
    >>> import torch
    >>> layer = DropConnect(8, 4, p=0.5)
    >>> layer(torch.randn(2, 8)).shape
    torch.Size([2, 4])
    >>> SpatialDropout(0.2)(torch.randn(2, 3, 5, 5)).shape
    torch.Size([2, 3, 5, 5])
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["drop_connect", "DropConnect", "spatial_dropout", "SpatialDropout"]

_CHANNEL_DROPOUT = {3: F.dropout1d, 4: F.dropout2d, 5: F.dropout3d}


def _check_p(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"`p` must be in [0, 1), got {p}")


def drop_connect(weight: Tensor, p: float = 0.5, training: bool = False) -> Tensor:
    """Drop each entry of ``weight`` with probability ``p`` and rescale the rest by ``1/(1-p)``.

    Args:
        weight: any weight tensor, e.g. a Linear's ``[out_features, in_features]``.
        p: drop probability, in ``[0, 1)``.
        training: when False (or ``p == 0``) the weight is returned unchanged.

    Raises:
        ValueError: when ``p`` is outside ``[0, 1)``.

    Example:
        >>> w = torch.ones(3, 4)
        >>> drop_connect(w, p=0.5, training=False) is w
        True
        >>> sorted(drop_connect(torch.ones(64, 64), p=0.5, training=True).unique().tolist())
        [0.0, 2.0]
    """
    _check_p(p)
    if not training or p == 0.0:
        return weight
    return F.dropout(weight, p, training=True)


class DropConnect(nn.Linear):
    """A ``nn.Linear`` whose weights are dropped (DropConnect) in training mode.

    It *is* a Linear (same parameters, same ``state_dict`` keys), so it drops into any model in
    place of one; :meth:`from_linear` converts an existing layer. Only the weight matrix is
    dropped, the bias is kept. One mask is sampled per forward pass and shared by every row of
    the batch, which is what "one sampled network per pass" means; ``lightreg.uncertainty``
    therefore runs one forward pass per Monte Carlo sample for models containing it (see
    :attr:`mask_shared_across_batch`).

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        p: probability that a weight is dropped, in ``[0, 1)``.
        bias: whether to learn an additive bias.

    Raises:
        ValueError: when ``p`` is outside ``[0, 1)``.

    Example:
        >>> layer = DropConnect(16, 4, p=0.3)
        >>> layer.eval()(torch.ones(1, 16)).shape
        torch.Size([1, 4])
        >>> DropConnect.from_linear(nn.Linear(16, 4), p=0.3)
        DropConnect(in_features=16, out_features=4, bias=True, p=0.3)
    """

    mask_shared_across_batch: ClassVar[bool] = True
    """One weight mask serves the whole batch, so repeated rows of a batch are not independent
    Monte Carlo samples."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        _check_p(p)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.p = p

    @classmethod
    def from_linear(cls, linear: nn.Linear, p: float = 0.5) -> DropConnect:
        """A DropConnect layer holding a copy of ``linear``'s weight and bias.

        Example:
            >>> base = nn.Linear(3, 2)
            >>> torch.equal(DropConnect.from_linear(base, p=0.1).weight, base.weight)
            True
        """
        layer = cls(
            linear.in_features,
            linear.out_features,
            p=p,
            bias=linear.bias is not None,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        layer.load_state_dict(linear.state_dict())
        return layer

    def forward(self, input: Tensor) -> Tensor:
        """The linear map with a dropped-out copy of the weight (while training).

        Example:
            >>> layer = DropConnect(4, 2, p=0.5).eval()  # no weight is dropped in eval mode
            >>> x = torch.randn(3, 4)
            >>> torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
            True
        """
        return F.linear(input, drop_connect(self.weight, self.p, self.training), self.bias)

    def extra_repr(self) -> str:
        """``nn.Linear``'s summary plus the drop rate ``p``.

        Example:
            >>> DropConnect(3, 2, p=0.1)
            DropConnect(in_features=3, out_features=2, bias=True, p=0.1)
        """
        return f"{super().extra_repr()}, p={self.p}"


def spatial_dropout(x: Tensor, p: float = 0.5, training: bool = False) -> Tensor:
    """Zero whole channels of ``x`` with probability ``p``; scale kept channels by ``1/(1-p)``.

    Args:
        x: a batched feature map ``[B, C, L]`` (1d), ``[B, C, H, W]`` (2d) or ``[B, C, D, H, W]``
            (3d). One keep/drop draw per (sample, channel), broadcast over the spatial positions.
        p: drop probability, in ``[0, 1)``.
        training: when False (or ``p == 0``) ``x`` is returned unchanged.

    Raises:
        ValueError: when ``p`` is outside ``[0, 1)`` or ``x`` is not 3-, 4- or 5-dimensional.

    Example:
        >>> y = spatial_dropout(torch.ones(2, 8, 4, 4), p=0.5, training=True)
        >>> bool(((y == 0) | (y == 2)).all())  # each channel entirely dropped or kept
        True
    """
    _check_p(p)
    if x.dim() not in _CHANNEL_DROPOUT:
        raise ValueError(
            f"`x` must be [B, C, L], [B, C, H, W] or [B, C, D, H, W], got shape {tuple(x.shape)}"
        )
    if not training or p == 0.0:
        return x
    return _CHANNEL_DROPOUT[x.dim()](x, p, training=True)


class SpatialDropout(nn.Module):
    """Channel-wise (spatial) dropout for 1d, 2d and 3d feature maps; see :func:`spatial_dropout`.

    Args:
        p: probability that a channel is dropped, in ``[0, 1)``.

    Raises:
        ValueError: when ``p`` is outside ``[0, 1)``.

    Example:
        >>> drop = SpatialDropout(0.2)
        >>> drop.eval()(torch.ones(1, 3, 10)).sum().item()
        30.0
    """

    def __init__(self, p: float = 0.5) -> None:
        _check_p(p)
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """Channel-wise dropout of ``x`` while training; see :func:`spatial_dropout`.

        Example:
            >>> y = SpatialDropout(0.5)(torch.ones(16, 8, 3))  # training mode
            >>> sorted(y.unique().tolist())  # dropped (0) or kept and scaled by 1 / (1 - p)
            [0.0, 2.0]
            >>> bool((y == y[..., :1]).all())  # a whole channel at a time
            True
        """
        return spatial_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        """The drop rate, for ``repr``.

        Example:
            >>> SpatialDropout(0.2)
            SpatialDropout(p=0.2)
        """
        return f"p={self.p}"
