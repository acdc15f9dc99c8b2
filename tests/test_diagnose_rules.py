"""The verdict rules on scripted loss sequences, with hand-computed Prechelt numbers."""

from __future__ import annotations

import math

import pytest

from lightreg.diagnose.metrics import Curves
from lightreg.diagnose.rules import Thresholds, judge, relative_slope


def curves(train, val, train_acc=None, val_acc=None, comparable=True) -> Curves:
    as_series = lambda values: dict(enumerate(values)) if values is not None else {}  # noqa: E731
    return Curves(
        "train_loss" if train is not None else None,
        "val_loss" if val is not None else None,
        as_series(train),
        as_series(val),
        "train_acc" if train_acc else None,
        "val_acc" if val_acc else None,
        as_series(train_acc),
        as_series(val_acc),
        comparable=comparable,
    )


def test_overfitting_with_hand_computed_gl_and_pq() -> None:
    # val min 0.8 at epoch 1; GL = 100 * (1.2 / 0.8 - 1) = 50; series 0, 0, 12.5, 25, 50.
    # P_5 = 1000 * (2.55 / (5 * 0.25) - 1) = 1040, so PQ = 50 / 1040.
    judgement = judge(curves([1.0, 0.6, 0.4, 0.3, 0.25], [1.0, 0.8, 0.9, 1.0, 1.2]))
    e = judgement.evidence
    assert judgement.verdict == "overfitting"
    assert e.best_epoch == 1 and e.epochs == 5
    assert e.gl == pytest.approx(50.0) and e.max_gl == pytest.approx(50.0)
    assert e.pq == pytest.approx(50.0 / 1040.0)
    assert e.overfit_since == 2 and e.overfit_points == 3
    assert e.loss_gap == pytest.approx(0.95)
    assert e.epochs_past_best == 3


def test_short_gl_stretch_is_not_overfitting() -> None:
    # GL > 5 only at the last two points: below overfit_patience=3.
    judgement = judge(curves([1.0, 0.5, 0.4, 0.35, 0.33], [1.0, 0.6, 0.5, 0.55, 0.56]))
    assert judgement.verdict != "overfitting"
    assert (
        judge(
            curves([1.0, 0.5, 0.4, 0.35, 0.33], [1.0, 0.6, 0.5, 0.55, 0.56]),
            Thresholds(overfit_patience=2),
        ).verdict
        == "overfitting"
    )


def test_gl_threshold_is_configurable() -> None:
    scripted = curves([1.0, 0.6, 0.4, 0.3, 0.25], [1.0, 0.8, 0.9, 1.0, 1.2])
    assert judge(scripted, Thresholds(gl_threshold=60.0)).verdict != "overfitting"


def test_accuracy_gap_means_overfitting() -> None:
    train, val = [1.0, 0.7, 0.5, 0.4, 0.35], [1.0, 0.8, 0.7, 0.68, 0.67]
    judgement = judge(curves(train, val, [0.5, 0.8, 0.9, 0.95, 0.97], [0.5, 0.7, 0.8, 0.82, 0.82]))
    assert judgement.verdict == "overfitting"
    assert judgement.evidence.acc_gap == pytest.approx(0.15)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_loss_is_diverging(bad: float) -> None:
    judgement = judge(curves([1.0, 0.8, bad, bad], [1.0, 0.9, bad, bad]))
    assert judgement.verdict == "diverging"
    assert judgement.evidence.nonfinite_epoch == 2
    assert judgement.evidence.gl is None and judgement.evidence.best_epoch == 1


def test_exploding_loss_is_diverging() -> None:
    judgement = judge(curves([1.0, 0.5, 0.6, 3.0, 40.0], [1.0, 0.6, 0.7, 3.5, 45.0]))
    assert judgement.verdict == "diverging"
    assert "exploded" in judgement.reasons[0]


def test_still_improving() -> None:
    train = [2.0, 1.9, 1.8, 1.7, 1.6, 1.5]
    val = [2.0, 1.92, 1.84, 1.76, 1.68, 1.6]
    judgement = judge(curves(train, val))
    assert judgement.verdict == "still_improving"
    assert judgement.evidence.val_slope == pytest.approx(relative_slope(list(enumerate(val))[-5:]))
    assert judgement.evidence.val_slope < -0.01


def test_underfitting_from_accuracy() -> None:
    train = [1.40, 1.37, 1.36, 1.36, 1.36, 1.36]
    val = [1.40, 1.37, 1.36, 1.36, 1.36, 1.36]
    acc = [0.3, 0.35, 0.36, 0.36, 0.36, 0.36]
    assert judge(curves(train, val, acc, acc)).verdict == "underfitting"


def test_underfitting_from_loss_ratio_without_accuracy() -> None:
    train = [1.0, 0.8, 0.75, 0.74, 0.74, 0.74, 0.74, 0.74]
    val = [1.0, 0.82, 0.77, 0.76, 0.76, 0.76, 0.76, 0.76]
    judgement = judge(curves(train, val))
    assert judgement.verdict == "underfitting"
    assert "74%" in judgement.reasons[0]


def test_near_perfect_run_is_not_underfitting() -> None:
    flat = [0.0005, 0.0004, 0.0004, 0.0004, 0.0004]
    assert judge(curves(flat, flat)).verdict == "good_fit"
    acc = [0.99] * 5
    plateau = [1.0, 0.9, 0.9, 0.9, 0.9]
    assert judge(curves(plateau, plateau, acc, acc)).verdict == "good_fit"


def test_good_fit() -> None:
    train = [1.0, 0.5, 0.3, 0.2, 0.19, 0.19, 0.19]
    val = [1.0, 0.55, 0.35, 0.25, 0.24, 0.24, 0.241]
    judgement = judge(curves(train, val))
    assert judgement.verdict == "good_fit"
    assert judgement.evidence.best_epoch == 4


@pytest.mark.parametrize(
    ("train", "val", "reason"),
    [
        ([1.0, 0.5, 0.3], None, "no validation loss"),
        ([1.0, 0.5], [1.0, 0.6], "fewer than min_epochs"),
        (None, None, "no training or validation loss"),
        (None, [1.0, 0.9, 0.89, 0.89, 0.89], "no training loss"),
    ],
)
def test_insufficient_data(train, val, reason: str) -> None:
    judgement = judge(curves(train, val))
    assert judgement.verdict == "insufficient_data"
    assert reason in judgement.reasons[0]


def test_mismatched_quantities_have_no_gap_or_pq() -> None:
    judgement = judge(
        curves([1.0, 0.6, 0.4, 0.3, 0.25], [1.0, 0.8, 0.9, 1.0, 1.2], comparable=False)
    )
    assert judgement.evidence.loss_gap is None and judgement.evidence.pq is None
    assert judgement.evidence.gl == pytest.approx(50.0)


def test_threshold_overrides_are_validated() -> None:
    assert Thresholds().with_overrides({"min_epochs": "4"}).min_epochs == 4
    with pytest.raises(ValueError, match="did you mean 'gl_threshold'"):
        Thresholds().with_overrides({"gl_treshold": 3})
    with pytest.raises(ValueError, match="needs an integer"):
        Thresholds().with_overrides({"min_epochs": "2.5"})
    with pytest.raises(ValueError, match="`strip` must be > 0"):
        Thresholds(strip=0)
