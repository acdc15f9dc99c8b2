"""WeightPenalty: exact gradients, loss equivalence, accumulation, optimizers, selection, logs."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from ddp_helpers import QUIET, TinyClassifier, loader
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from lightreg.callbacks import WeightPenalty
from lightreg.callbacks._select import select_weights

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"l1": -1.0}, r"`l1` must be a finite number >= 0, got -1.0"),
        ({"l2": float("nan")}, r"`l2` must be a finite number >= 0, got nan"),
        ({}, r"at least one of `l1`, `l2` must be > 0"),
        ({"l2": 1.0, "modules": [nn.Linear], "param_names": ["*"]}, "not both"),
        ({"l2": 1.0, "modules": []}, "at least one module type"),
        ({"l2": 1.0, "param_names": "net.*"}, "non-empty list of patterns"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightPenalty(**kwargs)


def test_modules_must_be_module_types():
    with pytest.raises(TypeError, match="nn.Module subclasses"):
        WeightPenalty(l2=1.0, modules=["Linear"])


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.BatchNorm2d(2),
        nn.Flatten(),
        nn.Linear(8, 5),
        nn.LayerNorm(5),
        nn.Embedding(5, 3),
    )


def test_default_selection_is_weights_outside_norm_layers():
    names = [name for name, _ in select_weights(_model())]
    assert names == ["0.weight", "3.weight", "5.weight"]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"modules": [nn.Linear]}, ["3.weight"]),
        ({"modules": [nn.Conv2d, nn.BatchNorm2d]}, ["0.weight"]),
        ({"param_names": ["3.*"]}, ["3.weight", "3.bias"]),
        ({"param_names": ["1.weight", "0.bias"]}, ["0.bias", "1.weight"]),
    ],
)
def test_selection_options(selection, expected):
    assert [name for name, _ in select_weights(_model(), **selection)] == expected


def test_frozen_and_shared_parameters():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[1].weight = model[0].weight  # tied
    assert len(select_weights(model)) == 1
    model[0].weight.requires_grad_(False)
    assert select_weights(model) == []


@pytest.mark.parametrize(("l1", "l2"), [(0.3, 0.0), (0.0, 0.2), (0.3, 0.2)])
def test_added_gradient_is_exactly_l1_sign_plus_2_l2_w(l1, l2):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model[5].weight.data[0, 0] = 0.0  # sign(0) = 0, as autograd's d|w|/dw at 0
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    before = {name: p.grad.clone() for name, p in model.named_parameters()}
    penalty = WeightPenalty(l1=l1, l2=l2)
    penalty.add_penalty_grad(penalty.optimizer_params(optimizer, model))
    for name, p in model.named_parameters():
        if name in ("0.weight", "3.weight", "5.weight"):
            expected = before[name] + l1 * torch.sign(p.detach()) + 2 * l2 * p.detach()
            assert torch.allclose(p.grad, expected, rtol=0, atol=1e-6), name
        else:  # biases, BatchNorm, LayerNorm
            assert torch.equal(p.grad, before[name]), name


class _Regression(pl.LightningModule):
    """A linear model trained by plain SGD; optionally with the penalty written in the loss."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, optimizers: int = 1) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.first = nn.Linear(4, 3)
        self.second = nn.Linear(3, 2)
        self.l1, self.l2 = l1, l2
        self.optimizer_count = optimizers
        if optimizers == 2:
            self.automatic_optimization = False

    def _loss(self, batch) -> torch.Tensor:
        x, y = batch
        loss = F.mse_loss(self.second(self.first(x)), y)
        weights = [self.first.weight, self.second.weight]
        loss = loss + self.l1 * sum(w.abs().sum() for w in weights)
        return loss + self.l2 * sum(w.square().sum() for w in weights)

    def training_step(self, batch, batch_idx):
        if self.optimizer_count == 1:
            return self._loss(batch)
        first, second = self.optimizers()
        self.manual_backward(self._loss(batch))
        first.step()  # the penalty must reach `first`'s weight only here...
        second.step()  # ...and `second`'s here
        first.zero_grad()
        second.zero_grad()

    def configure_optimizers(self):
        if self.optimizer_count == 1:
            return torch.optim.SGD(self.parameters(), lr=0.05)
        return (
            torch.optim.SGD(self.first.parameters(), lr=0.05),
            torch.optim.SGD(self.second.parameters(), lr=0.05),
        )


def _regression_loader(n: int = 12, batch_size: int = 4):
    generator = torch.Generator().manual_seed(2)
    x, y = torch.randn(n, 4, generator=generator), torch.randn(n, 2, generator=generator)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size)


def _train(model, callbacks=(), accumulate=1, batches=3):
    trainer = pl.Trainer(
        max_steps=batches // accumulate,
        limit_val_batches=0,
        accumulate_grad_batches=accumulate,
        callbacks=list(callbacks),
        **QUIET,
    )
    trainer.fit(model, _regression_loader(batch_size=12 // batches))
    return model.state_dict()


@pytest.mark.parametrize(
    ("l1", "l2", "accumulate", "optimizers"),
    [
        (0.0, 0.1, 1, 1),
        (0.05, 0.0, 1, 1),
        (0.05, 0.1, 1, 1),
        (0.05, 0.1, 3, 1),  # one step over 3 micro-batches
        (0.05, 0.1, 1, 2),  # manual optimization, two optimizers
    ],
)
def test_training_equals_penalty_in_the_loss(l1, l2, accumulate, optimizers):
    in_loss = _train(_Regression(l1, l2, optimizers), accumulate=accumulate)
    by_callback = _train(
        _Regression(optimizers=optimizers), [WeightPenalty(l1=l1, l2=l2)], accumulate=accumulate
    )
    plain = _train(_Regression(optimizers=optimizers), accumulate=accumulate)
    for name, value in in_loss.items():
        assert torch.allclose(by_callback[name], value, rtol=0, atol=1e-6), name
    assert not torch.allclose(plain["first.weight"], in_loss["first.weight"], atol=1e-4)


def test_only_the_stepped_optimizer_params_are_penalized():
    model = _Regression(optimizers=2)
    first, _ = model.configure_optimizers()
    penalty = WeightPenalty(l2=1.0)
    assert penalty.optimizer_params(first, model) == [model.first.weight]


def test_logs_penalty_values_at_logging_steps(tmp_path: Path):
    model = TinyClassifier(lr=0.0)  # weights stay put, so every logged value is the same
    linear = [m.weight.detach() for m in model.net if isinstance(m, nn.Linear)]
    expected_l1 = 0.01 * sum(w.abs().sum() for w in linear)
    expected_l2 = 0.02 * sum(w.square().sum() for w in linear)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=CSVLogger(tmp_path),
        log_every_n_steps=2,
        callbacks=[WeightPenalty(l1=0.01, l2=0.02)],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, loader(48), loader(8))
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["reg/l1"]]
    assert [int(row["step"]) for row in rows] == [1, 3, 5]
    for row in rows:
        assert float(row["reg/l1"]) == pytest.approx(float(expected_l1), rel=1e-6)
        assert float(row["reg/l2"]) == pytest.approx(float(expected_l2), rel=1e-6)


def test_unmodified_module_trains_and_l1_shrinks_the_weights():
    torch.manual_seed(0)
    model = TinyClassifier(lr=0.05)
    start = copy.deepcopy(model)
    trainer = pl.Trainer(max_epochs=2, callbacks=[WeightPenalty(l1=0.05)], **QUIET)
    trainer.fit(model, loader(32), loader(8))
    assert trainer.global_step == 8
    assert model.net[1].weight.abs().sum() < start.net[1].weight.abs().sum() - 0.1
