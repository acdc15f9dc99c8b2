"""DropConnect, SpatialDropout, ConcreteDropout and LayerNormLSTM against hand computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightreg.layers import (
    ConcreteDropout,
    DropConnect,
    LayerNormLSTM,
    SpatialDropout,
    concrete_dropout_regularization,
    drop_connect,
    spatial_dropout,
)

# ---------------------------------------------------------------- argument validation


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
@pytest.mark.parametrize(
    "build",
    [
        lambda p: DropConnect(4, 2, p=p),
        lambda p: SpatialDropout(p),
        lambda p: drop_connect(torch.ones(2, 2), p, True),
        lambda p: spatial_dropout(torch.ones(1, 2, 3), p, True),
    ],
)
def test_drop_rate_out_of_range_raises(build, p):
    with pytest.raises(ValueError, match=r"`p` must be in \[0, 1\), got"):
        build(p)


# ---------------------------------------------------------------- DropConnect


def test_drop_connect_drops_entries_with_inverted_scaling():
    torch.manual_seed(0)
    weight = torch.rand(200, 500) + 0.5  # strictly positive, so a zero means "dropped"
    out = drop_connect(weight, p=0.3, training=True)
    dropped = out == 0
    assert torch.allclose(out[~dropped], weight[~dropped] / 0.7)
    # 100k Bernoulli(0.3) draws: standard deviation of the fraction is 0.0014; 0.01 is > 6 sd.
    assert abs(dropped.float().mean().item() - 0.3) < 0.01


def test_drop_connect_is_identity_in_eval_and_at_zero_rate():
    weight = torch.randn(3, 4)
    assert drop_connect(weight, 0.5, training=False) is weight
    assert drop_connect(weight, 0.0, training=True) is weight
    layer = DropConnect(4, 3, p=0.5).eval()
    x = torch.randn(6, 4)
    assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))


def test_drop_connect_module_masks_the_weight_not_the_units():
    layer = DropConnect(5, 3, p=0.5)
    x = torch.randn(4, 5)
    torch.manual_seed(1)
    out = layer(x)
    torch.manual_seed(1)
    masked = drop_connect(layer.weight, 0.5, training=True)
    assert torch.allclose(out, F.linear(x, masked, layer.bias))
    # One weight mask for the whole batch: identical rows give identical outputs.
    same = layer(torch.ones(2, 5))
    assert torch.equal(same[0], same[1])


def test_drop_connect_preserves_the_expectation():
    torch.manual_seed(2)
    weight, x, p, draws = torch.randn(4, 8), torch.randn(8), 0.4, 20_000
    samples = drop_connect(weight.expand(draws, 4, 8), p, training=True) @ x  # [draws, 4]
    # Var of one draw: sum_i w_ji^2 x_i^2 p / (1 - p); allow 5 standard errors of the mean.
    stderr = ((weight**2 * x**2).sum(1) * p / (1 - p) / draws).sqrt()
    assert ((samples.mean(0) - weight @ x).abs() < 5 * stderr).all()


def test_drop_connect_from_linear_copies_parameters_and_reprs():
    base = nn.Linear(6, 2)
    layer = DropConnect.from_linear(base, p=0.25)
    assert isinstance(layer, nn.Linear)
    assert torch.equal(layer.weight, base.weight) and torch.equal(layer.bias, base.bias)
    assert layer.weight.data_ptr() != base.weight.data_ptr()
    assert layer.state_dict().keys() == base.state_dict().keys()
    assert repr(layer) == "DropConnect(in_features=6, out_features=2, bias=True, p=0.25)"
    assert DropConnect.from_linear(nn.Linear(2, 2, bias=False)).bias is None


# ---------------------------------------------------------------- SpatialDropout


@pytest.mark.parametrize("shape", [(8, 32, 7), (8, 32, 5, 5), (4, 16, 3, 3, 3)])
def test_spatial_dropout_zeroes_whole_channels(shape):
    torch.manual_seed(3)
    x = torch.rand(shape) + 0.5
    y = SpatialDropout(0.5)(x)
    per_channel = y.flatten(2)
    dropped = (per_channel == 0).all(dim=2)
    kept = torch.isclose(per_channel, x.flatten(2) * 2).all(dim=2)
    assert (dropped ^ kept).all()  # each (sample, channel) entirely dropped or entirely kept
    assert dropped.any() and kept.any()


def test_spatial_dropout_preserves_the_expectation():
    torch.manual_seed(4)
    x, p, draws = torch.randn(1, 6, 4), 0.3, 20_000
    y = spatial_dropout(x.expand(draws, 6, 4), p, training=True)
    # Each element is x / (1 - p) with probability 1 - p: Var = x^2 p / (1 - p); 5 std errors.
    stderr = (x[0] ** 2 * p / (1 - p) / draws).sqrt()
    assert ((y.mean(0) - x[0]).abs() <= 5 * stderr + 1e-6).all()


def test_spatial_dropout_is_identity_in_eval():
    x = torch.randn(2, 3, 4, 4)
    assert SpatialDropout(0.5).eval()(x) is x
    assert spatial_dropout(x, 0.5, training=False) is x


@pytest.mark.parametrize("shape", [(4,), (2, 3), (1, 2, 3, 4, 5, 6)])
def test_spatial_dropout_rejects_other_ranks(shape):
    with pytest.raises(ValueError, match=r"`x` must be \[B, C, L\].*got shape"):
        spatial_dropout(torch.ones(shape), 0.5, training=True)


# ---------------------------------------------------------------- ConcreteDropout


def test_concrete_dropout_regularization_matches_hand_formula():
    layer = ConcreteDropout(
        nn.Linear(3, 2), weight_regularizer=0.01, dropout_regularizer=0.1, init_p=0.25
    )
    with torch.no_grad():
        layer.layer.weight.fill_(0.5)  # sum of squares 6 * 0.25 = 1.5
        layer.layer.bias.copy_(torch.tensor([1.0, -1.0]))  # + 2.0 = 3.5
    # weight term 0.01 * 3.5 / 0.75 = 0.0466667
    # dropout term 0.1 * 3 * (0.25 ln 0.25 + 0.75 ln 0.75) = 0.3 * (-0.5623351) = -0.1687005
    assert layer.p.item() == pytest.approx(0.25)
    assert layer.regularization().item() == pytest.approx(0.0466667 - 0.1687005, abs=1e-6)


def test_concrete_dropout_input_dim_comes_from_the_forward_pass():
    layer = ConcreteDropout(nn.Conv1d(2, 2, 3))
    with pytest.raises(RuntimeError, match="needs the input size"):
        layer.regularization()
    layer(torch.randn(4, 2, 10))
    assert layer.input_dim == 20  # x[0].numel(), as in the authors' code


def test_concrete_dropout_is_identity_in_eval_and_stochastic_in_training():
    layer = ConcreteDropout(nn.Linear(4, 4), init_p=0.5)
    x = torch.randn(3, 4)
    assert torch.equal(layer.eval()(x), layer.layer(x))
    layer.train()
    assert not torch.equal(layer(x), layer(x))


def test_concrete_dropout_rate_is_learned():
    torch.manual_seed(5)
    x = torch.randn(256, 8)
    target = x @ torch.randn(8, 1)
    # Data term only: dropout only adds noise to a linear regression, so p must go down.
    fit = ConcreteDropout(nn.Linear(8, 1), weight_regularizer=0.0, dropout_regularizer=0.0)
    # Regularizer only: the negative entropy is minimal at p = 0.5, so p must go up from 0.1.
    reg = ConcreteDropout(nn.Linear(8, 1), weight_regularizer=0.0, dropout_regularizer=1e-2)
    for module, loss_fn in (
        (fit, lambda: F.mse_loss(fit(x), target)),
        (reg, lambda: (reg(x), reg.regularization())[1]),
    ):
        optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
        for _ in range(60):
            optimizer.zero_grad()
            loss_fn().backward()
            optimizer.step()
    assert fit.p.item() < 0.05
    assert reg.p.item() > 0.2


def test_concrete_dropout_regularization_sums_all_layers():
    model = nn.Sequential(
        ConcreteDropout(nn.Linear(4, 4)), nn.ReLU(), ConcreteDropout(nn.Linear(4, 2))
    )
    expected = model[0].regularization() + model[2].regularization()
    assert torch.allclose(concrete_dropout_regularization(model), expected)
    assert concrete_dropout_regularization(nn.Linear(2, 2)).item() == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"init_p": 0.0}, "`init_p` must be in"),
        ({"init_p": 1.0}, "`init_p` must be in"),
        ({"temperature": 0.0}, "`temperature` must be > 0"),
        ({"weight_regularizer": -1.0}, "`weight_regularizer` must be >= 0"),
        ({"dropout_regularizer": -1.0}, "`dropout_regularizer` must be >= 0"),
    ],
)
def test_concrete_dropout_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConcreteDropout(nn.Linear(2, 2), **kwargs)


# ---------------------------------------------------------------- LayerNormLSTM


def _manual_step(layer, x_t, h, c):
    """One LN-LSTM step written out from Ba et al. 2016 with the layer's own parameters."""
    hidden = layer.hidden_size
    gx = F.layer_norm(x_t @ layer.weight_ih.weight.T, (4 * hidden,), layer.norm_ih.weight)
    gh = F.layer_norm(h @ layer.weight_hh.weight.T, (4 * hidden,), layer.norm_hh.weight)
    i, f, g, o = (gx + gh + layer.bias).split(hidden, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    c_norm = F.layer_norm(c, (hidden,), layer.norm_c.weight, layer.norm_c.bias)
    return torch.sigmoid(o) * torch.tanh(c_norm), c


def _randomize(module: nn.Module) -> None:
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0.0, 0.5)


def test_layer_norm_lstm_matches_manual_computation():
    torch.manual_seed(6)
    lstm = LayerNormLSTM(3, 4)
    _randomize(lstm)  # non-trivial gains and biases, so a missing term would show
    x = torch.randn(2, 3, 3)
    h0, c0 = torch.randn(1, 2, 4), torch.randn(1, 2, 4)
    out, (h_n, c_n) = lstm(x, (h0, c0))
    h, c = h0[0], c0[0]
    for t in range(3):
        h, c = _manual_step(lstm.layers[0], x[:, t], h, c)
        assert torch.allclose(out[:, t], h, atol=1e-6)
    assert torch.allclose(h_n[0], h, atol=1e-6) and torch.allclose(c_n[0], c, atol=1e-6)


@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("batch_first", [True, False])
def test_layer_norm_lstm_shapes(num_layers, batch_first):
    lstm = LayerNormLSTM(5, 7, num_layers=num_layers, dropout=0.2, batch_first=batch_first)
    x = torch.randn(2, 6, 5) if batch_first else torch.randn(6, 2, 5)
    out, (h_n, c_n) = lstm(x)
    assert out.shape == ((2, 6, 7) if batch_first else (6, 2, 7))
    assert h_n.shape == c_n.shape == (num_layers, 2, 7)
    last = out[:, -1] if batch_first else out[-1]
    assert torch.equal(last, h_n[-1])


def test_layer_norm_lstm_batch_first_false_is_a_transpose():
    lstm = LayerNormLSTM(3, 4, num_layers=2)
    seq_first = LayerNormLSTM(3, 4, num_layers=2, batch_first=False)
    seq_first.load_state_dict(lstm.state_dict())
    x = torch.randn(2, 5, 3)
    out, (h_n, _) = lstm(x)
    out_t, (h_n_t, _) = seq_first(x.transpose(0, 1))
    assert torch.allclose(out, out_t.transpose(0, 1)) and torch.allclose(h_n, h_n_t)


def test_layer_norm_lstm_stacks_layers():
    torch.manual_seed(7)
    deep = LayerNormLSTM(3, 4, num_layers=2).eval()
    _randomize(deep)
    first = LayerNormLSTM(3, 4).eval()
    first.layers[0].load_state_dict(deep.layers[0].state_dict())
    second = LayerNormLSTM(4, 4).eval()
    second.layers[0].load_state_dict(deep.layers[1].state_dict())
    x = torch.randn(2, 5, 3)
    out, (h_n, _) = deep(x)
    mid, (h_first, _) = first(x)
    top, _ = second(mid)
    assert torch.allclose(h_n[0], h_first[0], atol=1e-6)
    assert torch.allclose(out, top, atol=1e-6)


def test_layer_norm_lstm_recurrent_mask_is_the_same_at_every_step():
    torch.manual_seed(8)
    lstm = LayerNormLSTM(3, 32, recurrent_dropout=0.5)
    seen = []
    lstm.layers[0].weight_hh.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    h0 = torch.rand(1, 8, 32) + 0.1  # nonzero, so step 0 shows the mask too
    out, _ = lstm(torch.randn(8, 6, 3), (h0, torch.zeros(1, 8, 32)))
    previous = torch.cat([h0[0].unsqueeze(1), out[:, :-1]], dim=1)  # h_{t-1}: [B, T, H]
    masks = torch.stack(seen, dim=1) / previous  # what multiplied h_{t-1} at each step
    assert torch.allclose(masks, masks[:, :1].expand_as(masks), atol=1e-5)
    assert set(masks.round(decimals=4).unique().tolist()) == {0.0, 2.0}
    assert not torch.equal(masks[0, 0], masks[1, 0])  # one mask per sequence
    seen.clear()
    lstm(torch.randn(8, 6, 3), (h0, torch.zeros(1, 8, 32)))
    assert not torch.equal(seen[0] / h0[0], masks[:, 0])  # a fresh mask per forward pass


def test_layer_norm_lstm_eval_is_deterministic_and_training_is_not():
    lstm = LayerNormLSTM(3, 8, num_layers=2, dropout=0.3, input_dropout=0.3, recurrent_dropout=0.3)
    x = torch.randn(4, 5, 3)
    lstm.eval()
    assert torch.equal(lstm(x)[0], lstm(x)[0])
    lstm.train()
    assert not torch.equal(lstm(x)[0], lstm(x)[0])


def test_layer_norm_lstm_gradients_reach_every_parameter():
    lstm = LayerNormLSTM(3, 4, num_layers=2, recurrent_dropout=0.2)
    out, (h_n, c_n) = lstm(torch.randn(2, 4, 3, requires_grad=True))
    (out.pow(2).sum() + c_n.sum()).backward()
    for name, param in lstm.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_size": 0}, "`hidden_size` must be >= 1"),
        ({"num_layers": 0}, "`num_layers` must be >= 1"),
        ({"dropout": 1.0}, r"`dropout` must be in \[0, 1\)"),
        ({"recurrent_dropout": -0.1}, r"`recurrent_dropout` must be in \[0, 1\)"),
    ],
)
def test_layer_norm_lstm_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LayerNormLSTM(**{"input_size": 3, "hidden_size": 4, **kwargs})


def test_layer_norm_lstm_rejects_bad_inputs():
    lstm = LayerNormLSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="`input` must be 3-dimensional"):
        lstm(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"`h_0` must have shape \(2, 2, 4\)"):
        lstm(torch.randn(2, 5, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))


def test_layer_norm_lstm_extra_repr():
    text = repr(LayerNormLSTM(3, 4, recurrent_dropout=0.25))
    assert "3, 4, num_layers=1" in text and "recurrent_dropout=0.25" in text


# ---------------------------------------------------------------- torch's own random draws (D5)


def _same_draws(ours, torchs, seed: int = 11) -> bool:
    torch.manual_seed(seed)
    first = ours()
    torch.manual_seed(seed)
    return torch.equal(first, torchs())


def test_drop_connect_is_torchs_dropout_of_the_weight():
    weight = torch.randn(64, 32)
    assert _same_draws(
        lambda: drop_connect(weight, 0.3, training=True),
        lambda: F.dropout(weight, 0.3, training=True),
    )


@pytest.mark.parametrize(
    ("shape", "dropout"),
    [((4, 16, 7), F.dropout1d), ((4, 16, 5, 5), F.dropout2d), ((2, 8, 3, 3, 3), F.dropout3d)],
)
def test_spatial_dropout_is_torchs_channel_dropout(shape, dropout):
    x = torch.randn(shape)
    assert _same_draws(
        lambda: spatial_dropout(x, 0.4, training=True), lambda: dropout(x, 0.4, training=True)
    )


def test_layer_norm_lstm_recurrent_mask_is_torchs_dropout():
    lstm = LayerNormLSTM(3, 16, recurrent_dropout=0.5)
    seen = []
    lstm.layers[0].weight_hh.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    h0 = torch.rand(1, 4, 16) + 0.1
    torch.manual_seed(12)
    lstm(torch.randn(4, 2, 3), (h0, torch.zeros(1, 4, 16)))
    torch.manual_seed(12)
    torch.randn(4, 2, 3)  # the input, drawn in the same order as above
    expected = F.dropout(torch.ones(4, 16), 0.5, training=True)
    assert torch.allclose(seen[0] / h0[0], expected, atol=1e-5)
