"""The recipe models: structure (BN position, progressive dropout, no output dropout), shapes."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from lightreg.layers import LayerNormLSTM, SpatialDropout
from lightreg.models.cnn import CNNClassifier, progressive_rates
from lightreg.models.lstm import LSTMClassifier
from lightreg.models.mlp import MLPClassifier
from lightreg.models.registry import build_model, layout_for
from lightreg.recipe import resolve_recipe


@pytest.mark.parametrize(
    ("position", "order"),
    [
        ("before_activation", [nn.Linear, nn.BatchNorm1d, nn.ReLU]),
        ("after_activation", [nn.Linear, nn.ReLU, nn.BatchNorm1d]),
    ],
)
def test_mlp_block_order_and_no_dropout_on_output(position, order):
    model = MLPClassifier(64, 10, hidden=(32, 16), dropout=0.3, bn_position=position)
    first_block = model.net[1]
    assert [type(m) for m in first_block][:3] == order
    assert isinstance(first_block[-1], nn.Dropout) and first_block[-1].p == 0.3
    assert isinstance(model.net[-1], nn.Linear) and not isinstance(model.net[-2], nn.Dropout)


def test_mlp_rejects_bad_rates():
    with pytest.raises(ValueError, match="`dropout` must be in"):
        MLPClassifier(4, 2, dropout=1.0)


def test_cnn_dropout_grows_with_depth_and_head_gets_the_full_rate():
    assert progressive_rates(0.5, 2) == [0.1, 0.2]
    assert progressive_rates(0.3, 3) == pytest.approx([0.04, 0.08, 0.12])
    model = CNNClassifier(1, (8, 8), 10, channels=(8, 16, 16), dropout=0.5, convs_per_block=1)
    spatial = [m.p for m in model.features.modules() if isinstance(m, SpatialDropout)]
    assert spatial == sorted(spatial) and spatial[-1] < 0.5
    dense = [m.p for m in model.head.modules() if isinstance(m, nn.Dropout)]
    assert dense == [0.5]
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_cnn_pools_only_while_the_image_is_large_enough():
    model = CNNClassifier(3, (4, 4), 5, channels=(4, 4, 4, 4), convs_per_block=1)
    pools = [m for m in model.features.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 2
    assert model(torch.zeros(2, 3, 4, 4)).shape == (2, 5)


def test_lstm_uses_layernorm_lstm_with_recurrent_dropout():
    model = LSTMClassifier(8, 10, hidden_size=12, num_layers=2, dropout=0.4, recurrent_dropout=0.25)
    assert isinstance(model.lstm, LayerNormLSTM)
    assert model.lstm.recurrent_dropout == 0.25 and model.lstm.input_dropout == pytest.approx(0.2)
    model.eval()
    x = torch.randn(3, 8, 8)
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    ("model_type", "layout", "shape"),
    [("mlp", "flat", (64,)), ("cnn", "image", (1, 8, 8)), ("lstm_layernorm", "sequence", (8, 8))],
)
def test_registry_builds_each_model_from_a_recipe(model_type, layout, shape):
    recipe = resolve_recipe(
        {"name": "x", "model": {"type": model_type}, "regularization": {"preset": "moderate"}}
    )
    assert layout_for(model_type) == layout
    model = build_model(recipe, shape, 10)
    assert model.hparams["num_classes"] == 10
    assert model.label_smoothing == 0.05 and model.weight_decay == 1e-4
    assert model(torch.zeros(2, *shape)).shape == (2, 10)


def test_module_logs_the_documented_metrics(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    model = MLPClassifier(6, 3, hidden=(8,), label_smoothing=0.1)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, loader, loader)
    logged = set(trainer.callback_metrics)
    trainer.test(model, loader, verbose=False)
    logged |= set(trainer.callback_metrics)
    assert {
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "val_ece",
        "test_loss",
        "test_acc",
        "test_ece",
    } <= logged
