"""Regularizing layers, each a functional + module pair.

- :mod:`lightreg.layers.drop`: :class:`DropConnect` (weights), :class:`SpatialDropout` (channels).
- :mod:`lightreg.layers.concrete_dropout`: :class:`ConcreteDropout` (learned rate).
- :mod:`lightreg.layers.layer_norm_lstm`: :class:`LayerNormLSTM` (LN gates, variational dropout).

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
from lightreg.layers.layer_norm_lstm import LayerNormLSTM

__all__ = [
    "ConcreteDropout",
    "DropConnect",
    "LayerNormLSTM",
    "SpatialDropout",
    "concrete_dropout",
    "concrete_dropout_regularization",
    "drop_connect",
    "spatial_dropout",
]
