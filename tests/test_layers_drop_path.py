"""DropPath (stochastic depth): timm parity, per-sample drop, rescaling, eval identity."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from timm_reference import timm_drop

from lightreg.layers import DropPath, drop_path


def same_seed(function, *args, seed: int = 7, **kwargs) -> torch.Tensor:
    """``function(*args, **kwargs)`` drawn from the global generator seeded with ``seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return function(*args, **kwargs)


@pytest.mark.parametrize("shape", [(64, 5), (32, 3, 7), (16, 4, 6, 6)])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("scale_by_keep", [True, False])
def test_drop_path_matches_timm_on_the_same_mask(shape, p, scale_by_keep):
    timm = timm_drop()
    x = torch.randn(shape)
    ours = same_seed(drop_path, x, p, True, scale_by_keep=scale_by_keep)
    theirs = same_seed(timm.drop_path, x, p, True, scale_by_keep=scale_by_keep)
    assert torch.equal(ours, theirs)
    assert not torch.equal(ours, x)  # the draw did drop something


def test_drop_path_module_matches_timms_module():
    timm = timm_drop()
    x = torch.randn(128, 8, 3, 3)
    assert torch.equal(same_seed(DropPath(0.3), x), same_seed(timm.DropPath(0.3), x))
    assert torch.equal(DropPath(0.3).eval()(x), timm.DropPath(0.3).eval()(x))


def test_drop_path_drops_whole_samples_and_rescales_the_kept():
    y = drop_path(torch.ones(4000, 3, 5), 0.25, training=True)
    per_sample = y.flatten(1)
    assert torch.equal(per_sample.min(dim=1).values, per_sample.max(dim=1).values)
    assert per_sample[:, 0].unique().tolist() == pytest.approx([0.0, 1 / 0.75])


def test_drop_path_keeps_one_minus_p_and_preserves_the_mean():
    generator = torch.Generator().manual_seed(0)
    y = drop_path(torch.ones(50_000, 2), 0.3, training=True, generator=generator)
    kept = (y[:, 0] > 0).float().mean().item()
    assert kept == pytest.approx(0.7, abs=0.01)
    assert y.mean().item() == pytest.approx(1.0, abs=0.015)


def test_drop_path_without_scaling_keeps_kept_samples_unchanged():
    y = drop_path(torch.ones(1000, 2), 0.5, training=True, scale_by_keep=False)
    assert set(y.unique().tolist()) == {0.0, 1.0}


def test_drop_path_draws_from_the_generator_it_is_given():
    x = torch.randn(256, 4)
    first = drop_path(x, 0.5, True, generator=torch.Generator().manual_seed(3))
    again = drop_path(x, 0.5, True, generator=torch.Generator().manual_seed(3))
    other = drop_path(x, 0.5, True, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_drop_path_is_the_identity_in_eval_and_at_zero_rate():
    x = torch.randn(8, 4)
    assert drop_path(x, 0.5, training=False) is x
    assert drop_path(x, 0.0, training=True) is x
    assert DropPath(0.5).eval()(x) is x
    assert not torch.equal(same_seed(DropPath(0.5), torch.ones(64, 4)), torch.ones(64, 4))


def test_drop_path_passes_gradients_to_the_kept_samples_only():
    x = torch.ones(200, 3, requires_grad=True)
    drop_path(x, 0.5, True, generator=torch.Generator().manual_seed(1)).sum().backward()
    assert set(x.grad[:, 0].unique().tolist()) == {0.0, 2.0}


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_drop_path_rate_out_of_range_raises(p):
    with pytest.raises(ValueError, match=r"`p` must be in \[0, 1\), got"):
        DropPath(p)
    with pytest.raises(ValueError, match=r"`p` must be in \[0, 1\), got"):
        drop_path(torch.ones(2, 2), p, True)


def test_drop_path_repr_names_its_rate():
    assert repr(DropPath(0.1)) == "DropPath(p=0.1)"
    assert repr(DropPath(0.1, scale_by_keep=False)) == "DropPath(p=0.1, scale_by_keep=False)"


def test_timm_reference_fails_under_ci_when_timm_is_absent(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="timm is not installed"):
        timm_drop()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="timm is not installed"):
        timm_drop()
