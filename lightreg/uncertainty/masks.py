"""An exact Bernoulli mask sampler for MC-dropout inference on CPU.

MC dropout draws a mask for every (sample, input) row, so on CPU the draws, not the matrix
products, dominate a small MLP's inference: ``Tensor.bernoulli_`` outside Intel's MKL path costs
about 6 ns per element. :func:`bernoulli_keep_mask` draws the same Bernoulli mask from one random
byte per element plus a sparse correction, several times faster (``benchmarks/mc_dropout.py``
prints the ratio), from torch's default generator (so ``torch.manual_seed`` reproduces it).
Training does not use it: the layers draw with torch's own dropout.

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> mask = bernoulli_keep_mask((4, 1000), keep=0.8)
    >>> mask.dtype, mask.shape, round(mask.float().mean().item(), 1)
    (torch.bool, torch.Size([4, 1000]), 0.8)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["bernoulli_keep_mask"]


def bernoulli_keep_mask(
    shape: tuple[int, ...] | torch.Size,
    keep: float,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.bool,
) -> Tensor:
    """A mask whose entries are independently 1 (True) with probability ``keep``, else 0.

    Exact, in two independent draws. Let ``q`` be the rarer of ``keep`` and ``1 - keep`` and
    ``b = floor(256 q) / 256``: one random byte per entry makes the entry rare with probability
    ``b``; then each other entry becomes rare with probability ``(q - b) / (1 - b)``, at most
    1/128, drawn as geometric gaps between such entries. Together: rare with probability ``q``.

    Args:
        shape: the mask's shape.
        keep: the probability of 1, in ``[0, 1]``.
        device: where to draw the mask (default CPU).
        dtype: the mask's dtype; a float mask is written directly by the comparison, which is
            about 3x cheaper than converting a boolean one.

    Raises:
        ValueError: when ``keep`` is outside ``[0, 1]``.

    Example:
        >>> bernoulli_keep_mask((2, 3), keep=1.0).all().item()
        True
    """
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"`keep` must be in [0, 1], got {keep}")
    if keep in (0.0, 1.0):
        return torch.full(shape, bool(keep), dtype=dtype, device=device)
    count = math.prod(shape)
    keep_is_rare = keep <= 0.5
    rare = keep if keep_is_rare else 1.0 - keep
    level = math.floor(rare * 256)
    words = torch.empty((count + 7) // 8, dtype=torch.int64, device=device)
    words.random_(-(2**63), None)  # every one of the 64 bits uniform
    octets = words.view(torch.uint8)[:count].view(shape)
    mask = torch.empty(shape, dtype=dtype, device=device)
    compare = torch.lt if keep_is_rare else torch.ge  # P(rare outcome) = level / 256
    compare(octets, level, out=mask)
    base = level / 256
    if rare > base:
        mask.view(-1)[_bernoulli_positions(count, (rare - base) / (1 - base), device)] = (
            keep_is_rare
        )
    return mask


def _bernoulli_positions(count: int, p: float, device: torch.device | str | None) -> Tensor:
    """Indices of the successes among ``count`` independent Bernoulli(``p``) trials, ``0 < p < 1``.

    The gaps between successes are geometric, so the work is proportional to ``count * p``.

    Example:
        >>> _bernoulli_positions(10, 0.999999, None).tolist()[:3]
        [0, 1, 2]
    """
    found = []
    last = -1.0  # index of the latest success drawn
    while last < count:
        expected = (count - last) * p
        gaps = torch.empty(
            int(expected + 5 * math.sqrt(expected)) + 8, dtype=torch.float64, device=device
        ).geometric_(p)  # P(gap = k) = (1 - p)^(k - 1) p, k >= 1
        positions = gaps.cumsum_(0).add_(last)
        found.append(positions[positions < count])
        last = positions[-1].item()
    return torch.cat(found).long()
