"""The models on 1D signals: one CNN code path for Conv1d and Conv2d, the LSTM and MLP on signals,
the paper's MNIST-1D baselines (ConvBase, MLPBase) as recipe-built models, seeded reproducibility.

Shapes follow the data contract: a signal of L steps and C channels reaches the CNN as ``(C, L)``,
the LSTM as ``(L, C)`` and the MLP as ``(L * C,)``.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightreg.layers import SpatialDropout
from lightreg.models.cnn import CNNClassifier
from lightreg.models.mlp import MLPClassifier
from lightreg.models.registry import build_model
from lightreg.recipe import resolve_recipe
from lightreg.recipe.errors import RecipeError

SIGNAL = 40  # MNIST-1D's length


def _layers(model: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize(
    ("shape", "conv", "norm", "pool"),
    [
        ((1, SIGNAL), nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d),
        ((1, 8, 8), nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d),
    ],
)
def test_cnn_takes_its_form_from_the_input_shape(shape, conv, norm, pool):
    recipe = resolve_recipe(
        {
            "name": "x",
            "model": {"type": "cnn", "channels": [8, 16]},
            "regularization": {"dropout": 0.5, "max_norm": 3.0},
        }
    )
    model = build_model(recipe, shape, 10)
    features = model.features
    assert len(_layers(features, conv)) == 4 and len(_layers(features, norm)) == 4
    assert len(_layers(features, pool)) == 2
    assert [m.p for m in _layers(model.features, SpatialDropout)] == [0.1, 0.2]
    assert [m.p for m in _layers(model.head, nn.Dropout)] == [0.5]
    model.train()
    out = model(torch.randn(4, *shape))
    assert out.shape == (4, 10)
    drop = _layers(model.features, SpatialDropout)[0]
    maps = drop(torch.ones(64, 8, SIGNAL) if len(shape) == 2 else torch.ones(64, 8, 4, 4))
    per_channel = maps.flatten(2)
    assert bool((per_channel == per_channel[..., :1]).all())  # whole channels dropped


def test_cnn_1d_and_2d_flatten_what_the_convs_leave():
    one_d = CNNClassifier(2, (SIGNAL,), 3, channels=(4, 4, 4), convs_per_block=1, head=())
    two_d = CNNClassifier(2, (8, 8), 3, channels=(4, 4, 4), convs_per_block=1, head=())
    assert one_d.head[-1].in_features == 4 * 5  # 40 -> 20 -> 10 -> 5
    assert two_d.head[-1].in_features == 4 * 1 * 1  # 8 -> 4 -> 2 -> 1
    assert one_d(torch.zeros(2, 2, SIGNAL)).shape == two_d(torch.zeros(2, 2, 8, 8)).shape


def test_cnn_baseline_is_the_papers_convbase():
    recipe = resolve_recipe(
        {
            "name": "x",
            "model": {
                "type": "cnn",
                "channels": [25, 25, 25],
                "convs_per_block": 1,
                "kernel_size": [5, 3, 3],
                "stride": 2,
                "padding": 1,
                "pool": False,
                "head": [],
                "batch_norm": False,
            },
        }
    )
    model = build_model(recipe, (1, SIGNAL), 10)
    convs = _layers(model, nn.Conv1d)
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [
        ((5,), (2,), (1,)),
        ((3,), (2,), (1,)),
        ((3,), (2,), (1,)),
    ]
    assert all(c.bias is not None for c in convs)
    linear = _layers(model, nn.Linear)
    assert [(m.in_features, m.out_features) for m in linear] == [(125, 10)]  # ConvBase's 125
    assert not _layers(model, nn.MaxPool1d) and not _layers(model, nn.Dropout)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == (25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10)
    assert model(torch.zeros(3, 1, SIGNAL)).shape == (3, 10)


def test_cnn_defaults_keep_the_image_cnn_unchanged():
    model = CNNClassifier(1, (8, 8), 10)
    convs = _layers(model, nn.Conv2d)
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [((3, 3), (1, 1), (1, 1))] * 4
    assert len(_layers(model, nn.MaxPool2d)) == 2
    assert model.head[1][0].in_features == 64 * 2 * 2


def test_cnn_refuses_a_signal_its_convs_shrink_to_nothing():
    with pytest.raises(ValueError, match="shrinks the input to 0"):
        CNNClassifier(1, (4,), 3, channels=(4, 4), kernel_size=5, padding=0, pool=False)
    with pytest.raises(ValueError, match="`kernel_size` lists 2 kernels for 3 conv blocks"):
        CNNClassifier(1, (SIGNAL,), 3, channels=(4, 4, 4), kernel_size=(3, 3))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"kernel_size": [5, 3]}, "kernel_size lists 2 kernels for 3 conv blocks"),
        ({"stride": 0}, "greater than or equal to 1"),
        ({"strides": 2}, "did you mean 'stride'"),
        ({"kernel": 3}, "did you mean 'kernel_size'"),
    ],
)
def test_recipe_validates_the_new_cnn_keys(model, message):
    with pytest.raises(RecipeError, match=message):
        resolve_recipe({"name": "x", "model": {"type": "cnn", "channels": [4, 4, 4], **model}})


def test_mlp_residual_is_the_papers_mlpbase():
    recipe = resolve_recipe(
        {
            "name": "x",
            "model": {"type": "mlp", "hidden": [100, 100], "residual": True, "batch_norm": False},
        }
    )
    model = build_model(recipe, (SIGNAL,), 10)
    linear = _layers(model, nn.Linear)
    assert [(m.in_features, m.out_features) for m in linear] == [(40, 100), (100, 100), (100, 10)]
    torch.manual_seed(0)
    x = torch.randn(5, SIGNAL)
    first, second = model.net[1], model.net[2]
    h = first(x)
    expected = model.net[-1](h + torch.relu(linear[1](h)))
    assert torch.allclose(model(x), expected)
    assert isinstance(second, nn.Module) and "Residual" in type(second).__name__


def test_mlp_residual_skips_only_blocks_whose_widths_match():
    model = MLPClassifier(SIGNAL, 3, hidden=(16, 16, 8), residual=True)
    kinds = [type(m).__name__ for m in model.net]
    assert kinds == ["Flatten", "Sequential", "Residual", "Sequential", "Linear"]
    plain = MLPClassifier(SIGNAL, 3, hidden=(16, 16, 8))
    assert "Residual" not in [type(m).__name__ for m in plain.net]


@pytest.mark.parametrize(
    ("model_type", "shape"),
    [("lstm_layernorm", (SIGNAL, 1)), ("lstm_layernorm", (SIGNAL, 3)), ("mlp", (SIGNAL * 3,))],
)
def test_lstm_and_mlp_read_signals(model_type, shape):
    recipe = resolve_recipe(
        {
            "name": "x",
            "model": {"type": model_type, "hidden_size": 8}
            if model_type != "mlp"
            else {"type": "mlp", "hidden": [8]},
        }
    )
    model = build_model(recipe, shape, 10)
    if model_type == "lstm_layernorm":
        assert model.lstm.layers[0].weight_ih.in_features == shape[-1]  # C features per step
    assert model(torch.zeros(2, *shape)).shape == (2, 10)


def _tiny_fit(seed: int) -> torch.Tensor:
    pl.seed_everything(seed, workers=True)
    x = torch.randn(64, 1, SIGNAL)
    y = torch.randint(0, 3, (64,))
    model = CNNClassifier(1, (SIGNAL,), 3, channels=(4,), head=(8,), dropout=0.3, lr=1e-2)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    trainer.fit(model, loader)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_a_seeded_fit_on_signals_is_reproducible():
    first, again, other = _tiny_fit(3), _tiny_fit(3), _tiny_fit(4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize(
    ("readout", "head_in"), [("last", 8), ("mean", 8), ("flatten", 8 * SIGNAL)]
)
def test_lstm_reads_out_the_last_step_the_mean_or_every_step(readout, head_in):
    recipe = resolve_recipe(
        {"name": "x", "model": {"type": "lstm_layernorm", "hidden_size": 8, "readout": readout}}
    )
    model = build_model(recipe, (SIGNAL, 1), 10).eval()
    assert model.head[-1].in_features == head_in
    x = torch.randn(2, SIGNAL, 1)
    output, _ = model.lstm(x)
    features = {"last": output[:, -1], "mean": output.mean(1), "flatten": output.flatten(1)}
    assert torch.allclose(model(x), model.head(features[readout]))


def test_lstm_refuses_an_unknown_readout():
    with pytest.raises(RecipeError, match="model.readout.*last.*mean.*flatten"):
        resolve_recipe({"name": "x", "model": {"type": "lstm_layernorm", "readout": "max"}})


def test_lstm_embedding_lets_one_feature_signals_keep_their_amplitude():
    # LayerNorm over the input projection of a single feature keeps only its sign; a per-step
    # linear embedding (with bias) before the LSTM keeps the amplitude.
    def recipe(embedding):
        model = {"type": "lstm_layernorm", "hidden_size": 8, "num_layers": 1}
        return resolve_recipe({"name": "x", "model": {**model, "embedding": embedding}})

    small, large = torch.full((1, SIGNAL, 1), 0.1), torch.full((1, SIGNAL, 1), 5.0)
    torch.manual_seed(0)
    plain = build_model(recipe(None), (SIGNAL, 1), 10).eval()
    assert torch.allclose(plain(small), plain(large), atol=1e-3)  # the amplitude is lost
    embedded = build_model(recipe(16), (SIGNAL, 1), 10).eval()
    assert embedded.lstm.layers[0].weight_ih.in_features == 16
    assert not torch.allclose(embedded(small), embedded(large), atol=1e-2)
