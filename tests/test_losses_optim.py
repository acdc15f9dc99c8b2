"""Label smoothing (chapter numbers, torch parity) and decoupled weight-decay param groups."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightreg.losses import (
    LabelSmoothingCrossEntropy,
    label_smoothing_cross_entropy,
    smooth_targets,
)
from lightreg.optim import param_groups

# ---------------------------------------------------------------- smooth_targets


def test_smooth_targets_chapter_example():
    # Chapter section 9: K = 4, eps = 0.1, y = [0, 0, 1, 0] -> [0.025, 0.025, 0.925, 0.025].
    expected = torch.tensor([[0.025, 0.025, 0.925, 0.025]])
    assert torch.allclose(smooth_targets(torch.tensor([2]), 4, 0.1), expected)
    one_hot = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    assert torch.allclose(smooth_targets(one_hot, 4, 0.1), expected)


def test_smooth_targets_smooths_soft_targets():
    # 0.8 * [0.7, 0.3, 0, 0] + 0.2 / 4 = [0.61, 0.29, 0.05, 0.05]
    soft = torch.tensor([[0.7, 0.3, 0.0, 0.0]])
    expected = torch.tensor([[0.61, 0.29, 0.05, 0.05]])
    assert torch.allclose(smooth_targets(soft, 4, 0.2), expected)


@pytest.mark.parametrize(
    ("target", "num_classes", "smoothing", "match"),
    [
        (torch.tensor([0]), 3, 1.5, r"`smoothing` must be in \[0, 1\], got 1.5"),
        (torch.tensor([0]), 3, -0.1, r"`smoothing` must be in \[0, 1\]"),
        (torch.tensor([0]), 0, 0.1, "`num_classes` must be >= 1, got 0"),
        (torch.ones(2, 5) / 5, 4, 0.1, r"soft `target` must have shape \[\.\.\., 4\]"),
    ],
)
def test_smooth_targets_rejects_bad_arguments(target, num_classes, smoothing, match):
    with pytest.raises(ValueError, match=match):
        smooth_targets(target, num_classes, smoothing)


# ---------------------------------------------------------------- label smoothing CE


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_hard_targets_match_torch(smoothing, reduction):
    torch.manual_seed(0)
    logits, target = torch.randn(16, 5), torch.randint(0, 5, (16,))
    ours = label_smoothing_cross_entropy(logits, target, smoothing, reduction)
    ref = F.cross_entropy(logits, target, label_smoothing=smoothing, reduction=reduction)
    assert torch.allclose(ours, ref, atol=1e-6)


def test_soft_targets_match_torch():
    torch.manual_seed(1)
    logits = torch.randn(8, 4)
    lam = 0.7  # a MixUp pair of one-hot targets
    soft = lam * F.one_hot(torch.randint(0, 4, (8,)), 4) + (1 - lam) * F.one_hot(
        torch.randint(0, 4, (8,)), 4
    )
    ours = label_smoothing_cross_entropy(logits, soft.float(), smoothing=0.2)
    ref = F.cross_entropy(logits, soft.float(), label_smoothing=0.2)
    assert torch.allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_is_torchs_cross_entropy_exactly(soft, reduction):
    torch.manual_seed(3)
    logits = torch.randn(64, 10) * 5
    target = torch.randint(0, 10, (64,))
    if soft:
        target = torch.softmax(torch.randn(64, 10), dim=-1)
    ours = label_smoothing_cross_entropy(logits, target, 0.1, reduction)
    ref = F.cross_entropy(logits, target, label_smoothing=0.1, reduction=reduction)
    assert torch.equal(ours, ref)


def test_loss_hand_value():
    # Logits [ln 9, 0] -> p = [0.9, 0.1]; smoothed target (eps 0.2, K 2) = [0.9, 0.1];
    # loss = -(0.9 ln 0.9 + 0.1 ln 0.1) = 0.325083.
    logits = torch.tensor([[math.log(9.0), 0.0]])
    loss = label_smoothing_cross_entropy(logits, torch.tensor([0]), smoothing=0.2)
    assert loss.item() == pytest.approx(0.325083, abs=1e-6)


def test_module_matches_functional_and_reprs():
    criterion = LabelSmoothingCrossEntropy(smoothing=0.1, reduction="sum")
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert torch.equal(
        criterion(logits, target), label_smoothing_cross_entropy(logits, target, 0.1, "sum")
    )
    assert repr(criterion) == "LabelSmoothingCrossEntropy(smoothing=0.1, reduction='sum')"


def test_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`reduction` can be mean, sum, none, got 'avg'"):
        LabelSmoothingCrossEntropy(reduction="avg")
    with pytest.raises(ValueError, match=r"`smoothing` must be in \[0, 1\]"):
        LabelSmoothingCrossEntropy(smoothing=2.0)
    with pytest.raises(ValueError, match=r"`logits` must be \[B, K\], got shape \(2, 3, 4\)"):
        label_smoothing_cross_entropy(torch.randn(2, 3, 4), torch.zeros(2, dtype=torch.long))


# ---------------------------------------------------------------- param_groups


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.conv = nn.Conv1d(4, 4, 3)
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 2)
        self.ln = nn.LayerNorm(2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_param_groups_membership():
    net = _Net()
    groups = param_groups(net, 0.05)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    decayed, plain = ({id(p) for p in g["params"]} for g in groups)
    assert decayed == {id(net.embed.weight), id(net.conv.weight), id(net.fc.weight)}
    norms_and_biases = (net.conv.bias, net.bn.weight, net.bn.bias, net.fc.bias, net.ln.weight)
    assert plain == {id(p) for p in (*norms_and_biases, net.ln.bias)}
    frozen = {id(p) for p in net.frozen.parameters()}
    assert not frozen & (decayed | plain)


def test_param_groups_omit_empty_groups():
    groups = param_groups(nn.LayerNorm(3), 0.1)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0


@pytest.mark.parametrize("weight_decay", [-1e-4, float("nan")])
def test_param_groups_rejects_negative_decay(weight_decay):
    with pytest.raises(ValueError, match="`weight_decay` must be >= 0, got"):
        param_groups(nn.Linear(2, 2), weight_decay)


def test_adamw_decays_weights_only():
    # With zero gradients AdamW's Adam step is 0, so only the decoupled decay acts:
    # w <- w * (1 - lr * weight_decay); biases (weight_decay 0.0) stay put.
    layer = nn.Linear(3, 2)
    weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
    optimizer = torch.optim.AdamW(param_groups(layer, 0.5), lr=0.1)
    (0.0 * layer(torch.ones(1, 3)).sum()).backward()
    optimizer.step()
    assert torch.allclose(layer.weight, weight * (1 - 0.1 * 0.5))
    assert torch.equal(layer.bias, bias)
