"""mc_dropout_predict: statistics by hand, module modes, chunking, weight-level dropout."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightreg.layers import ConcreteDropout, DropConnect, LayerNormLSTM, SpatialDropout
from lightreg.uncertainty import MCDropoutPrediction, mc_dropout_predict


def _entropy(*probs: float) -> float:
    return -sum(p * math.log(p) for p in probs if p > 0)


def test_from_probs_hand_case():
    # Two samples for one input: [0.9, 0.1] and [0.1, 0.9].
    probs = torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]])
    pred = MCDropoutPrediction.from_probs(probs, keep_samples=True)
    assert torch.allclose(pred.mean, torch.tensor([[0.5, 0.5]]))
    assert torch.allclose(pred.std, torch.tensor([[0.4, 0.4]]))  # population std
    assert pred.entropy.item() == pytest.approx(math.log(2))
    # BALD: H[mean] - mean H[p_t] = ln 2 - H(0.9, 0.1) = 0.693147 - 0.325083 = 0.368064
    assert pred.mutual_information.item() == pytest.approx(0.368064, abs=1e-6)
    assert pred.sample_probs is probs


def test_from_probs_agreeing_samples_have_no_mutual_information():
    probs = torch.tensor([[0.2, 0.8, 0.0]]).expand(5, 1, 3)
    pred = MCDropoutPrediction.from_probs(probs)
    assert pred.mutual_information.item() == 0.0
    assert pred.std.abs().max().item() < 1e-7
    assert pred.entropy.item() == pytest.approx(_entropy(0.2, 0.8))  # 0 log 0 = 0
    assert pred.sample_probs is None


def test_mc_dropout_on_a_two_point_mixture():
    # Dropout(0.5) on x = ln 9 / 2 gives x' in {0, ln 9}; logits [x', 0] give probabilities
    # [0.5, 0.5] or [0.9, 0.1], each with probability 1/2. By hand: mean [0.7, 0.3], std 0.2,
    # H[mean] = H(0.7, 0.3) = 0.610864, mean H = (ln 2 + H(0.9, 0.1)) / 2 = 0.509115,
    # MI = 0.101749.
    head = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0], [0.0]]))
    model = nn.Sequential(nn.Dropout(0.5), head)
    torch.manual_seed(0)
    pred = mc_dropout_predict(model, torch.tensor([[math.log(9.0) / 2]]), samples=4000)
    # The drop fraction q has sd 0.0079 over 4000 draws; mean[0] = 0.9 - 0.4 q moves by 0.4 sd
    # = 0.0032 per sd, so 0.015 is > 4 sd; the other statistics move less than 0.01 per 4 sd.
    assert pred.mean[0, 0].item() == pytest.approx(0.7, abs=0.015)
    assert pred.std[0, 0].item() == pytest.approx(0.2, abs=0.01)
    assert pred.entropy.item() == pytest.approx(_entropy(0.7, 0.3), abs=0.01)
    expected_mi = _entropy(0.7, 0.3) - (math.log(2) + _entropy(0.9, 0.1)) / 2
    assert pred.mutual_information.item() == pytest.approx(expected_mi, abs=0.01)


def _mixed_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(6, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Dropout(0.3),
        DropConnect(16, 16, p=0.3),
        nn.ReLU(),
        ConcreteDropout(nn.Sequential(nn.Linear(16, 8), nn.BatchNorm1d(8))),
        nn.Linear(8, 3),
    )


def test_only_dropout_runs_in_training_mode_and_modes_are_restored():
    torch.manual_seed(1)
    model = _mixed_model()
    model(torch.randn(32, 6))  # give batch norm non-trivial running statistics
    model.train()
    model[1].eval()  # a mixed state, which must come back exactly
    before = {name: m.training for name, m in model.named_modules()}
    stats = [t.clone() for t in (model[1].running_mean, model[6].layer[1].running_var)]
    seen: dict[str, bool] = {}

    def record(name: str, module: nn.Module) -> None:
        seen.setdefault(name, module.training)

    for name, module in model.named_modules():
        module.register_forward_hook(lambda m, _i, _o, name=name: record(name, m))
    mc_dropout_predict(model, torch.randn(4, 6), samples=8)
    # nn.Dropout ("3") stays in eval mode: a forward hook drops instead (tests/test_masks.py).
    assert {name for name, training in seen.items() if training} == {"4", "6"}
    assert {name: m.training for name, m in model.named_modules()} == before
    assert torch.equal(model[1].running_mean, stats[0])
    assert torch.equal(model[6].layer[1].running_var, stats[1])


def test_modes_are_restored_when_the_forward_pass_raises():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = nn.Sequential(nn.BatchNorm1d(2), nn.Dropout(0.5), Broken()).train()
    with pytest.raises(RuntimeError, match="boom"):
        mc_dropout_predict(model, torch.randn(3, 2))
    assert all(m.training for m in model.modules())


def test_samples_keep_batch_order_across_chunks():
    # Deterministic model (dropout rate 0): every sample of input b must be model(x)[b], with
    # chunks that cut through samples (35 rows in chunks of 3).
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.0), nn.Linear(8, 3))
    x = torch.randn(5, 4)
    pred = mc_dropout_predict(model, x, samples=7, chunk=3, return_samples=True)
    expected = model(x).softmax(-1).detach()
    assert torch.allclose(pred.sample_probs, expected.expand(7, 5, 3), atol=1e-6)


def test_chunked_and_unchunked_estimate_the_same_distribution():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
    x = torch.randn(3, 4)
    whole = mc_dropout_predict(model, x, samples=3000)
    chunked = mc_dropout_predict(model, x, samples=3000, chunk=7)
    stderr = (whole.std**2 / 3000 * 2).sqrt()  # of a difference of two independent means
    assert ((whole.mean - chunked.mean).abs() < 5 * stderr + 1e-6).all()
    assert torch.allclose(whole.std, chunked.std, atol=0.01)


def test_same_seed_same_result():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    x = torch.randn(6, 4)
    torch.manual_seed(3)
    first = mc_dropout_predict(model, x, samples=20, chunk=16)
    torch.manual_seed(3)
    second = mc_dropout_predict(model, x, samples=20, chunk=16)
    assert torch.equal(first.mean, second.mean) and torch.equal(first.std, second.std)


@pytest.mark.parametrize("chunk", [None, 2])
def test_weight_level_dropout_gets_independent_masks_per_sample(chunk):
    # DropConnect shares one weight mask across a batch; repeated rows in one pass would give
    # identical "samples". Every sample of an input must differ instead.
    torch.manual_seed(4)
    model = nn.Sequential(DropConnect(8, 16, p=0.5), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(4, 8)
    pred = mc_dropout_predict(model, x, samples=30, chunk=chunk, return_samples=True)
    for b in range(4):
        assert torch.unique(pred.sample_probs[:, b], dim=0).shape[0] == 30


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        (
            nn.Sequential(nn.Conv1d(2, 4, 3), SpatialDropout(0.5), nn.Flatten(), nn.Linear(12, 3)),
            (2, 2, 5),
        ),
        (ConcreteDropout(nn.Linear(10, 3), init_p=0.3), (2, 10)),
    ],
)
def test_row_wise_layers_vary_between_samples(model, shape):
    x = torch.randn(shape)
    pred = mc_dropout_predict(model.eval(), x, samples=16, return_samples=True)
    assert torch.unique(pred.sample_probs[:, 0], dim=0).shape[0] > 1
    assert not model.training


def test_layer_norm_lstm_dropout_is_switched_on():
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = LayerNormLSTM(3, 8, recurrent_dropout=0.5)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    model = Tagger().eval()
    pred = mc_dropout_predict(model, torch.randn(2, 4, 3), samples=10, return_samples=True)
    assert torch.unique(pred.sample_probs[:, 0], dim=0).shape[0] > 1
    assert not model.lstm.training


def test_arguments_and_warning():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="`samples` must be >= 1, got 0"):
        mc_dropout_predict(model, torch.randn(1, 2), samples=0)
    with pytest.raises(ValueError, match="`chunk` must be >= 1 or None, got 0"):
        mc_dropout_predict(model, torch.randn(1, 2), chunk=0)
    with pytest.raises(ValueError, match=r"at least one input row, got shape \(0, 2\)"):
        mc_dropout_predict(model, torch.randn(0, 2))
    with pytest.warns(UserWarning, match="no dropout layer"):
        pred = mc_dropout_predict(model, torch.randn(3, 2), samples=4)
    assert pred.mutual_information.abs().max().item() < 1e-6


def _rows_seen(module: nn.Module) -> list[int]:
    rows: list[int] = []
    module.register_forward_hook(lambda _m, inputs, _o: rows.append(inputs[0].shape[0]))
    return rows


def test_the_layers_before_the_first_dropout_run_once_per_input():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    first, last = _rows_seen(model[0]), _rows_seen(model[3])
    mc_dropout_predict(model, torch.randn(6, 4), samples=20, chunk=50)
    assert sum(first) == 6  # blocks of 50 // 20 = 2 inputs
    assert first == [2, 2, 2] and sum(last) == 6 * 20


def test_a_sequential_with_its_own_forward_is_not_split():
    class Residual(nn.Sequential):
        def forward(self, x):
            return x + super().forward(x)

    model = Residual(nn.Linear(3, 3), nn.Dropout(0.0))
    first = _rows_seen(model[0])
    x = torch.randn(4, 3)
    pred = mc_dropout_predict(model, x, samples=5, return_samples=True)
    assert sum(first) == 4 * 5
    expected = (x + model[0](x)).softmax(-1).detach()
    assert torch.allclose(pred.sample_probs, expected.expand(5, 4, 3), atol=1e-6)


def test_a_prefix_that_does_not_return_rows_falls_back_to_repeating_inputs():
    class Pair(nn.Module):
        def forward(self, x):
            return x, 2 * x

    class DropSum(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(0.0)

        def forward(self, pair):
            return self.drop(pair[0] + pair[1])

    model = nn.Sequential(Pair(), DropSum())
    x = torch.randn(3, 2)
    pred = mc_dropout_predict(model, x, samples=4, return_samples=True)
    assert torch.allclose(pred.sample_probs, (3 * x).softmax(-1).expand(4, 3, 2), atol=1e-6)


def test_a_sequential_without_dropout_gives_identical_samples():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    x = torch.randn(2, 3)
    with pytest.warns(UserWarning, match="no dropout layer"):
        pred = mc_dropout_predict(model, x, samples=6, return_samples=True)
    assert torch.allclose(pred.sample_probs, model(x).softmax(-1).detach().expand(6, 2, 4))


def test_same_distribution_as_the_training_mode_loop():
    # The reference: model.train() and one forward pass per sample. Vectorized sampling (shared
    # prefix, fast masks) must estimate the same mean and spread.
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 16), nn.ReLU(),
        nn.Dropout(0.3), nn.Linear(16, 3),
    )  # fmt: skip
    x = torch.randn(3, 4)
    samples = 4000
    model.train()
    with torch.no_grad():
        loop = MCDropoutPrediction.from_probs(
            torch.stack([model(x).softmax(-1) for _ in range(samples)])
        )
    vectorized = mc_dropout_predict(model.eval(), x, samples=samples)
    stderr = ((loop.std**2 + vectorized.std**2) / samples).sqrt()
    assert ((loop.mean - vectorized.mean).abs() < 5 * stderr + 1e-6).all()
    assert torch.allclose(loop.std, vectorized.std, atol=0.01)


def test_default_chunk_bounds_the_activations_of_a_pass():
    # 2**16 values per pass: the first dropout's input is 4096 wide, so 16 rows per pass, which
    # is 2 inputs x 8 samples.
    model = nn.Sequential(nn.Linear(2, 4096), nn.Dropout(0.5), nn.Linear(4096, 3))
    last = _rows_seen(model[2])
    mc_dropout_predict(model, torch.randn(3, 2), samples=8)
    assert last == [16, 8]


def test_nested_plain_sequentials_count_as_their_layers():
    # lightreg's MLP blocks are Sequential(Linear, BN, ReLU, Dropout) inside a Sequential: the
    # Linear before the first Dropout is still shared by all samples.
    model = nn.Sequential(
        nn.Flatten(), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5)), nn.Linear(8, 3)
    )
    first = _rows_seen(model[1][0])
    x = torch.randn(5, 4)
    pred = mc_dropout_predict(model, x, samples=12, return_samples=True)
    assert sum(first) == 5 + 1  # once per input, plus the one-row probe that sizes the chunks
    assert pred.sample_probs.shape == (12, 5, 3)


def test_sample_probabilities_are_torchs_softmax():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 10), nn.Dropout(0.0))  # every sample identical
    x = torch.randn(32, 4) * 20
    pred = mc_dropout_predict(model, x, samples=3, return_samples=True)
    with torch.no_grad():
        expected = model(x).softmax(dim=-1)
    assert all(torch.equal(sample, expected) for sample in pred.sample_probs)
