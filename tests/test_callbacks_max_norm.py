"""MaxNorm: norms bounded, small units bit-for-bit untouched, once per real optimizer step."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from ddp_helpers import QUIET, TinyClassifier, loader
from torch import nn

from lightreg.callbacks import MaxNorm, max_norm_

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_value": 0.0}, ValueError, r"`max_value` must be a finite number > 0, got 0.0"),
        ({"max_value": float("inf")}, ValueError, "got inf"),
        ({"modules": []}, ValueError, "at least one layer type"),
        ({"modules": [nn.ConvTranspose2d]}, TypeError, "`modules` can hold Linear, Conv1d"),
        ({"modules": [nn.LayerNorm]}, TypeError, "got .*LayerNorm"),
    ],
)
def test_invalid_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        MaxNorm(**kwargs)


@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 3, 3), (4, 2, 5), (3, 2, 2, 2, 2)])
def test_units_over_the_limit_are_rescaled_and_others_kept_bit_for_bit(shape):
    torch.manual_seed(0)
    weight = torch.randn(shape)
    weight[::2] *= 10.0  # half the units far over the limit
    dims = tuple(range(1, len(shape)))
    norms = torch.linalg.vector_norm(weight, dim=dims)
    limit = float(norms.median())
    before = weight.clone()
    max_norm_(weight, limit)
    after = torch.linalg.vector_norm(weight, dim=dims)
    over = norms > limit
    assert over.any() and (~over).any()
    assert torch.equal(weight[~over], before[~over])
    assert torch.allclose(after[over], torch.full_like(after[over], limit), rtol=1e-6)
    # direction is kept: each rescaled unit is a positive multiple of the original
    ratio = weight[over].flatten(1) / before[over].flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-5)


def test_zero_rows_and_rows_at_the_limit_stay_unchanged():
    weight = torch.tensor([[0.0, 0.0], [3.0, 4.0], [30.0, 40.0]])
    max_norm_(weight, 5.0)
    assert torch.equal(weight[:2], torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    assert torch.allclose(weight[2], torch.tensor([3.0, 4.0]))


def _linear_and_conv() -> pl.LightningModule:
    class Net(TinyClassifier):
        def __init__(self) -> None:
            super().__init__(lr=2.0)  # a big step pushes the norms up
            self.net = nn.Sequential(
                nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 3)
            )

    torch.manual_seed(0)
    return Net()


@pytest.mark.parametrize("types", [(nn.Linear,), (nn.Linear, nn.Conv2d)])
def test_constraint_holds_after_training(types):
    model = _linear_and_conv()
    trainer = pl.Trainer(max_epochs=1, callbacks=[MaxNorm(0.3, modules=types)], **QUIET)
    trainer.fit(model, loader(32, shape=(1, 6, 6)))
    linear_norms = model.net[3].weight.norm(dim=1)
    conv_norms = model.net[0].weight.flatten(1).norm(dim=1)
    assert linear_norms.max() <= 0.3 * (1 + 1e-6)
    assert (conv_norms.max() <= 0.3 * (1 + 1e-6)) == (nn.Conv2d in types)


class _CountSteps(pl.Callback):
    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.weights.append(pl_module.net[-1].weight.detach().clone())


def test_applied_after_optimizer_steps_only_with_accumulation():
    model = TinyClassifier(lr=2.0)
    record = _CountSteps()
    trainer = pl.Trainer(
        max_epochs=1, accumulate_grad_batches=2, callbacks=[MaxNorm(0.2), record], **QUIET
    )
    trainer.fit(model, loader(32))
    norms = [w.norm(dim=1).max() for w in record.weights]
    assert trainer.global_step == 2
    assert norms[1] <= 0.2 * (1 + 1e-6) and norms[3] <= 0.2 * (1 + 1e-6)
    # between steps (after the first micro-batch) nothing changes the weights
    assert torch.equal(record.weights[1], record.weights[2])
    assert not any(h for h in trainer.optimizers[0]._optimizer_step_post_hooks.values())
