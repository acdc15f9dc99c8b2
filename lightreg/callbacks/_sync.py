"""Average a metric over DDP ranks, so that every rank takes the same decision.

Shared by :class:`~lightreg.callbacks.EarlyStopping` and
:class:`~lightreg.callbacks.OverfittingMonitor`.

Example:
    >>> from lightning.pytorch.strategies import SingleDeviceStrategy
    >>> mean_over_ranks(SingleDeviceStrategy("cpu"), 2.5)
    tensor(2.5000)
"""

from __future__ import annotations

import torch
from lightning.pytorch.strategies import Strategy


def mean_over_ranks(strategy: Strategy, value: torch.Tensor | float) -> torch.Tensor:
    """The mean of ``value`` over ranks, detached; in a single process, ``value`` itself.

    Example:
        >>> from lightning.pytorch.strategies import SingleDeviceStrategy
        >>> value = torch.tensor(1.0, requires_grad=True)
        >>> mean_over_ranks(SingleDeviceStrategy("cpu"), value).requires_grad
        False
    """
    local = torch.as_tensor(value).detach()
    if strategy.world_size <= 1:
        return local
    return strategy.reduce(local.to(strategy.root_device, copy=True), reduce_op="mean")
