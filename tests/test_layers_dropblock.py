"""DropBlock: the gamma correction, the block mask, timm parity, 1D and 2D, eval identity."""

from __future__ import annotations

import pytest
import torch
from test_layers_drop_path import same_seed
from timm_reference import timm_drop

from lightreg.layers import DropBlock1d, DropBlock2d, drop_block, drop_block_gamma, drop_block_mask


def test_gamma_is_the_papers_correction_computed_by_hand():
    # Ghiasi et al. (1): gamma = (1 - keep_prob) / block_size^2 * feat_size^2 / (feat_size - block_size + 1)^2
    assert drop_block_gamma(0.1, 3, (7, 7)) == pytest.approx(0.1 / 9 * 49 / 25)  # 0.021777...
    assert drop_block_gamma(0.1, 3, (7, 7)) == pytest.approx(0.0217777778)
    assert drop_block_gamma(0.2, 5, (40,)) == pytest.approx(0.2 / 5 * 40 / 36)  # 1D: no squares
    assert drop_block_gamma(0.1, 3, (6, 10)) == pytest.approx(0.1 * 60 / 9 / (4 * 8))
    assert drop_block_gamma(0.1, 9, (4, 4)) == pytest.approx(0.1)  # the block is cut to the map


def test_mask_drops_a_block_around_each_seed():
    seeds = torch.zeros(1, 1, 7, 7)
    seeds[0, 0, 3, 3] = 1
    keep = drop_block_mask(seeds, 3)
    expected = torch.ones(7, 7)
    expected[2:5, 2:5] = 0
    assert torch.equal(keep[0, 0], expected)
    even = drop_block_mask(seeds, 2)[0, 0]  # an even block reaches up and left of its seed
    expected = torch.ones(7, 7)
    expected[2:4, 2:4] = 0
    assert torch.equal(even, expected)
    line = torch.zeros(1, 1, 12)
    line[0, 0, 5] = 1
    assert drop_block_mask(line, 3)[0, 0].tolist() == [1.0] * 4 + [0.0] * 3 + [1.0] * 5


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 9])
@pytest.mark.parametrize("couple_channels", [True, False])
@pytest.mark.parametrize("scale_by_keep", [True, False])
def test_drop_block_matches_timm_on_the_same_mask(block_size, couple_channels, scale_by_keep):
    timm = timm_drop()
    x = torch.randn(8, 3, 9, 7)
    options = {"couple_channels": couple_channels, "scale_by_keep": scale_by_keep}
    ours = same_seed(drop_block, x, 0.2, block_size, True, **options)
    theirs = same_seed(timm.drop_block_2d, x, 0.2, block_size, **options)
    assert torch.equal(ours, theirs)
    assert not torch.equal(ours, x)


def test_drop_block_1d_is_timms_2d_on_a_map_of_height_one():
    timm = timm_drop()
    x = torch.randn(16, 4, 40)
    ours = same_seed(drop_block, x, 0.15, 5, True)
    theirs = same_seed(timm.drop_block_2d, x.unsqueeze(2), 0.15, 5).squeeze(2)
    assert torch.equal(ours, theirs)
    assert torch.equal(same_seed(DropBlock1d(0.15, 5), x), theirs)


def test_drop_block_module_matches_timms_module():
    timm = timm_drop()
    x = torch.randn(4, 6, 12, 12)
    ours, theirs = DropBlock2d(0.1, 3), timm.DropBlock2d(0.1, 3)
    assert torch.equal(same_seed(ours, x), same_seed(theirs, x))
    assert torch.equal(ours.eval()(x), theirs.eval()(x))


def seeds_covering(n: int, block_size: int) -> torch.Tensor:
    """How many seed positions of a side of ``n`` drop each position (odd blocks, cut at borders)."""
    j, half = torch.arange(n), block_size // 2
    return (j.clamp(max=half) + (n - 1 - j).clamp(max=half) + 1).float()


@pytest.mark.parametrize(("shape", "block_size"), [((256, 1, 32, 32), 5), ((512, 1, 200), 7)])
def test_drop_block_drops_about_p_and_preserves_the_mean(shape, block_size):
    generator = torch.Generator().manual_seed(0)
    y = drop_block(torch.ones(shape), 0.1, block_size, True, generator=generator)
    kept = (y > 0).float().mean().item()
    # a position is kept when no seed falls in the block around it: P = (1 - gamma)^covering
    covering = seeds_covering(shape[2], block_size)
    if len(shape) == 4:
        covering = covering[:, None] * seeds_covering(shape[3], block_size)[None]
    gamma = drop_block_gamma(0.1, block_size, shape[2:])
    assert kept == pytest.approx(((1 - gamma) ** covering).mean().item(), abs=0.01)
    assert kept == pytest.approx(0.9, abs=0.02)  # equation 1 ignores overlapping blocks
    assert y.mean().item() == pytest.approx(1.0, abs=1e-4)  # rescaled by the kept share


def test_drop_block_shares_one_mask_across_channels_unless_told():
    y = drop_block(
        torch.ones(2, 5, 16, 16), 0.1, 4, True, generator=torch.Generator().manual_seed(2)
    )
    assert torch.equal(y, y[:, :1].expand_as(y))  # couple_channels: one mask for every channel
    assert len(y.unique()) == 2 and y.min() == 0  # dropped, or kept at one scale
    per_channel = drop_block(
        torch.ones(2, 5, 16, 16), 0.1, 4, True, couple_channels=False,
        generator=torch.Generator().manual_seed(2),
    )  # fmt: skip
    assert not torch.equal(per_channel[:, 0], per_channel[:, 1])


@pytest.mark.parametrize(
    ("module", "shape"), [(DropBlock2d, (2, 3, 8, 8)), (DropBlock1d, (2, 3, 8))]
)
def test_drop_block_is_the_identity_in_eval_and_keeps_the_shape(module, shape):
    x = torch.randn(shape)
    layer = module(0.3, 3)
    assert layer(x).shape == x.shape
    assert layer.eval()(x) is x
    assert drop_block(x, 0.3, 3, training=False) is x
    assert drop_block(x, 0.0, 3, training=True) is x


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DropBlock2d(1.0, 3), r"`p` must be in \[0, 1\), got 1.0"),
        (lambda: DropBlock1d(0.1, 0), "`block_size` must be a whole number >= 1, got 0"),
        (lambda: drop_block(torch.ones(2, 2), 0.1, 3, True), r"\[B, C, L\] or \[B, C, H, W\]"),
        (lambda: DropBlock2d(0.1, 3)(torch.ones(2, 3, 8)), r"DropBlock2d takes \[B, C, H, W\]"),
        (lambda: DropBlock1d(0.1, 3)(torch.ones(2, 3, 8, 8)), r"DropBlock1d takes \[B, C, L\]"),
    ],
)
def test_drop_block_rejects_bad_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_drop_block_repr_names_its_arguments():
    assert repr(DropBlock2d(0.1, 7)) == "DropBlock2d(p=0.1, block_size=7)"
    assert repr(DropBlock1d(0.1, 3, couple_channels=False)) == (
        "DropBlock1d(p=0.1, block_size=3, couple_channels=False)"
    )
