"""MC dropout with fast CPU masks: ``nn.Dropout`` left in eval mode plus a forward hook.

``nn.Dropout`` in training mode draws its mask with ``bernoulli_``; the hook draws it with
:func:`lightreg.uncertainty.masks.bernoulli_keep_mask` instead: the same distribution, several
times cheaper on CPU (``benchmarks/mc_dropout.py`` prints the ratio).

Example:
    >>> model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5)).eval()
    >>> with fast_dropout(model) as hooked:
    ...     hooked == [model[1]]
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch.nn.functional as F
from torch import Tensor, nn

from lightreg.uncertainty.masks import bernoulli_keep_mask

__all__ = ["fast_dropout"]


def _dropout_after_identity(module: nn.Dropout, inputs: tuple[Tensor], output: Tensor) -> Tensor:
    """Forward hook for an ``nn.Dropout`` left in eval mode: apply training-mode dropout.

    Equal in distribution to ``F.dropout(x, p, training=True)``; off CPU that is what it runs.
    """
    if module.p == 0.0:
        return output
    x = inputs[0]
    if x.device.type != "cpu" or module.p == 1.0:
        return F.dropout(x, module.p, training=True, inplace=module.inplace)
    keep = 1.0 - module.p
    mask = bernoulli_keep_mask(x.shape, keep, x.device, dtype=x.dtype).div_(keep)
    return x.mul_(mask) if module.inplace else mask.mul_(x)


@contextmanager
def fast_dropout(model: nn.Module) -> Iterator[list[nn.Dropout]]:
    """Within the block, every ``nn.Dropout`` of ``model`` in eval mode drops with fast CPU masks.

    Applies to modules whose type is exactly ``nn.Dropout`` (a subclass may change ``forward``).
    They must be left in eval mode (their ``forward`` is then the identity, and a forward hook
    applies the mask); the hooks are removed on exit, also when the block raises.

    Yields:
        The hooked modules.

    Example:
        >>> import torch
        >>> model = nn.Sequential(nn.Linear(3, 1000), nn.Dropout(0.5)).eval()
        >>> with fast_dropout(model) as hooked, torch.no_grad():
        ...     zeros = (model(torch.ones(1, 3)) == 0).float().mean().item()
        >>> len(hooked), 0.4 < zeros < 0.6, len(model[1]._forward_hooks)
        (1, True, 0)
    """
    hooked = [m for m in model.modules() if type(m) is nn.Dropout]
    handles = [m.register_forward_hook(_dropout_after_identity) for m in hooked]
    try:
        yield hooked
    finally:
        for handle in handles:
            handle.remove()
