"""Fast CPU dropout masks: exact keep rates, independence, and the nn.Dropout hook."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightreg.uncertainty.fast_dropout import fast_dropout
from lightreg.uncertainty.masks import _bernoulli_positions, bernoulli_keep_mask


def _within(rate: float, keep: float, count: int, sigmas: float = 5.0) -> bool:
    return abs(rate - keep) < sigmas * math.sqrt(keep * (1 - keep) / count)


@pytest.mark.parametrize("keep", [0.002, 0.1, 0.3, 0.5, 0.8, 0.999])
def test_keep_rate_on_every_byte_of_each_random_word(keep):
    # Entries 8i .. 8i+7 come from the 8 bytes of one 64-bit draw: each byte lane must have the
    # keep rate, and neighbours must be independent (P(both) = keep^2). 0.002 and 0.999 come
    # mostly from the sparse correction, 0.5 from the bytes alone.
    torch.manual_seed(0)
    count = 2_000_000
    mask = bernoulli_keep_mask((count,), keep)
    assert mask.dtype == torch.bool
    assert _within(mask.double().mean().item(), keep, count)
    for lane in range(8):
        assert _within(mask[lane::8].double().mean().item(), keep, count // 8)
    even, odd = mask[0::2].double(), mask[1::2].double()
    assert _within((even * odd).mean().item(), keep**2, count // 2)


def test_bernoulli_positions_are_a_bernoulli_process():
    torch.manual_seed(1)
    count, p = 1_000_000, 0.01
    positions = _bernoulli_positions(count, p, None)
    assert positions.dtype == torch.int64
    assert torch.equal(positions, positions.unique())  # sorted, no repeats
    assert positions.min().item() >= 0 and positions.max().item() < count
    assert _within(positions.numel() / count, p, count)
    # The first success and each gap are geometric with mean 1/p and variance (1-p)/p^2.
    gaps = positions.diff().double()
    assert abs(gaps.mean().item() - 1 / p) < 5 * math.sqrt((1 - p) / p**2 / gaps.numel())


def test_extremes_dtype_shape_and_arguments():
    assert not bernoulli_keep_mask((3, 5), 0.0).any()
    assert bernoulli_keep_mask((3, 5), 1.0).all()
    mask = bernoulli_keep_mask((7, 3, 2), 0.5, dtype=torch.float32)
    assert mask.shape == (7, 3, 2) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match=r"`keep` must be in \[0, 1\], got 1.5"):
        bernoulli_keep_mask((2,), 1.5)


def test_same_seed_same_mask():
    torch.manual_seed(7)
    first = bernoulli_keep_mask((1001,), 0.4)
    torch.manual_seed(7)
    assert torch.equal(first, bernoulli_keep_mask((1001,), 0.4))


def test_hooked_dropout_is_inverted_dropout_at_rate_p():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Identity(), nn.Dropout(0.3)).eval()
    x = torch.full((500, 400), 2.0)
    with fast_dropout(model) as hooked, torch.no_grad():
        out = model(x)
    assert hooked == [model[1]]
    assert out.unique().tolist() == pytest.approx([0.0, 2.0 / 0.7])
    assert _within((out == 0).double().mean().item(), 0.3, x.numel())
    assert torch.equal(x, torch.full((500, 400), 2.0))  # the input is untouched
    assert not model[1]._forward_hooks  # removed on exit
    assert torch.equal(model(x), x)  # plain eval-mode dropout again


def test_inplace_rate_zero_and_rate_one():
    x = torch.ones(4, 1000)
    inplace = nn.Dropout(0.5, inplace=True).eval()
    with fast_dropout(inplace):
        out = inplace(x)
    assert out is x and (x == 0).any() and (x == 2).any()
    for p, expected in [(0.0, 1.0), (1.0, 0.0)]:
        layer = nn.Dropout(p).eval()
        with fast_dropout(layer):
            assert torch.equal(layer(torch.ones(3, 3)), torch.full((3, 3), expected))


def test_subclasses_are_left_alone_and_hooks_go_when_the_block_raises():
    class MyDropout(nn.Dropout):
        pass

    model = nn.Sequential(MyDropout(0.5), nn.Dropout(0.5))
    with pytest.raises(RuntimeError, match="boom"), fast_dropout(model) as hooked:
        assert hooked == [model[1]]
        raise RuntimeError("boom")
    assert not model[0]._forward_hooks and not model[1]._forward_hooks
