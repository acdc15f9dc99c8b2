"""Regularizing layers, each a functional + module pair.

- :mod:`lightreg.layers.drop`: :class:`DropConnect` (weights), :class:`SpatialDropout` (channels).
- :mod:`lightreg.layers.concrete_dropout`: :class:`ConcreteDropout` (learned rate).
- :mod:`lightreg.layers.layer_norm_lstm`: :class:`LayerNormLSTM` (LN gates, variational dropout).
- :mod:`lightreg.layers.drop_path`: :class:`DropPath` (stochastic depth on residual branches).
- :mod:`lightreg.layers.dropblock`: :class:`DropBlock2d`, :class:`DropBlock1d` (blocks of maps).

Example:
    >>> import torch
    >>> from lightreg.layers import DropConnect, SpatialDropout
    >>> torch.nn.Sequential(DropConnect(4, 2, p=0.5), torch.nn.ReLU())(torch.ones(3, 4)).shape
    torch.Size([3, 2])
"""

from lightreg.layers.concrete_dropout import (
    ConcreteDropout,
    concrete_dropout,
    concrete_dropout_regularization,
)
from lightreg.layers.drop import DropConnect, SpatialDropout, drop_connect, spatial_dropout
from lightreg.layers.drop_path import DropPath, drop_path
from lightreg.layers.dropblock import (
    DropBlock1d,
    DropBlock2d,
    drop_block,
    drop_block_gamma,
    drop_block_mask,
)
from lightreg.layers.layer_norm_lstm import LayerNormLSTM

__all__ = [
    "ConcreteDropout",
    "DropBlock1d",
    "DropBlock2d",
    "DropConnect",
    "DropPath",
    "LayerNormLSTM",
    "SpatialDropout",
    "concrete_dropout",
    "concrete_dropout_regularization",
    "drop_block",
    "drop_block_gamma",
    "drop_block_mask",
    "drop_connect",
    "drop_path",
    "spatial_dropout",
]
