"""WeightStats against hand computation, in a real Trainer."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from ddp_helpers import QUIET, TinyClassifier, loader

from lightreg.callbacks import WeightStats, weight_stats

torch.set_num_threads(1)


def test_statistics_by_hand():
    weights = [torch.tensor([[3.0, -4.0], [0.0, 5e-7]]), torch.tensor([[[12.0]]])]
    stats = weight_stats(weights, near_zero=1e-6)
    assert stats["weights/l2_norm"] == pytest.approx(13.0)  # sqrt(9 + 16 + 144)
    assert stats["weights/mean_abs"] == pytest.approx((3 + 4 + 5e-7 + 12) / 5)
    assert stats["weights/frac_near_zero"] == pytest.approx(2 / 5)
    assert weight_stats(weights, near_zero=1e-7)["weights/frac_near_zero"] == pytest.approx(1 / 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"near_zero": 0.0}, r"`near_zero` must be a finite number > 0, got 0.0")],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightStats(**kwargs)


def test_empty_weights_raise():
    with pytest.raises(ValueError, match="at least one tensor"):
        weight_stats([])


@pytest.mark.parametrize("near_zero", [1e-6, 0.05])
def test_logged_per_epoch_over_weights_only(near_zero):
    torch.manual_seed(0)
    model = TinyClassifier(lr=0.0)  # frozen weights: the logged values are the initial ones
    with torch.no_grad():
        model.net[1].weight[0] = 0.0
    linear = [model.net[1].weight.detach(), model.net[4].weight.detach()]
    flat = torch.cat([w.flatten() for w in linear])
    trainer = pl.Trainer(max_epochs=1, callbacks=[WeightStats(near_zero=near_zero)], **QUIET)
    trainer.fit(model, loader(16), loader(8))
    logged = trainer.callback_metrics
    assert float(logged["weights/l2_norm"]) == pytest.approx(float(flat.norm()), rel=1e-6)
    assert float(logged["weights/mean_abs"]) == pytest.approx(float(flat.abs().mean()), rel=1e-6)
    expected = float((flat.abs() < near_zero).float().mean())
    assert float(logged["weights/frac_near_zero"]) == pytest.approx(expected)
