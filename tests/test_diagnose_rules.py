"""The verdict rules on scripted loss sequences, with hand-computed Prechelt numbers."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from lightreg.diagnose.engine import diagnose, diagnose_paths
from lightreg.diagnose.metrics import RECIPE_CLASS_COUNTS, Curves, select_curves
from lightreg.diagnose.rules import VERDICTS, Thresholds, judge, relative_slope
from lightreg.diagnose.run import Run


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


# --- issue 13: verdicts that know noise ---------------------------------------------------------

FLAT_ACC = [0.70, 0.71, 0.70, 0.71, 0.70, 0.71]


@pytest.mark.parametrize(
    ("train", "val", "verdict"),
    [
        # Single-batch samples ending on a noisy high value: 0.03 after a minimum of 0.008.
        (
            [0.02, 0.011, 0.008, 0.014, 0.009, 0.03],
            [0.05, 0.045, 0.044, 0.043, 0.044, 0.043],
            "good_fit",
        ),
        # 9.8 after 1.9, no validation, no trend: nothing supports a verdict.
        ([3.5, 2.4, 4.1, 1.9, 2.8, 9.8], None, "insufficient_data"),
        # Ends above its start and 2x its minimum, but inside the series' own noise.
        ([1.0, 0.3, 1.7, 0.4, 1.5, 0.35, 1.2, 1.6], None, "insufficient_data"),
    ],
)
def test_a_noisy_high_end_is_not_divergence(train, val, verdict: str) -> None:
    judgement = judge(curves(train, val))
    assert judgement.verdict == verdict, judgement.reasons


@pytest.mark.parametrize(
    "train",
    [
        [1.0, 0.5, 0.6, 3.0, 40.0],  # blew up over the last two epochs
        [1.3, 0.7, 0.5, 0.45, 0.5, 0.46, 9.0, 9.2, 9.1],  # jumped to a high plateau and stayed
    ],
)
def test_a_sustained_rise_far_above_the_noise_is_divergence(train) -> None:
    assert judge(curves(train, None)).verdict == "diverging"


@pytest.mark.parametrize(
    "val",
    [
        [0.74, 0.72, 0.76, 0.71, 0.73, 0.69],  # least squares: -1.2 %/epoch; a bounce
        [0.72, 0.72, 0.73, 0.72, 0.73, 0.66],  # least squares: -1.7 %/epoch; one low last point
    ],
)
def test_a_bounce_in_the_noise_band_is_not_still_improving(val) -> None:
    train = [1.0, 0.7, 0.6, 0.55, 0.52, 0.5]
    acc = [0.6, 0.7, 0.72, 0.73, 0.74, 0.75]
    judgement = judge(curves(train, val, acc, FLAT_ACC))
    assert judgement.verdict == "good_fit", judgement.reasons


def test_a_noisy_but_significant_fall_is_still_improving() -> None:
    # 2 %/epoch down with noise; epoch 8 is above epoch 7, so the last five do not fall at every
    # step: Mann-Kendall S = -8 of 10 pairs, p = 0.043.
    wiggle = [0.004, -0.005, 0.003, -0.004, 0.005, -0.003, 0.004, -0.005, 0.016, 0.004]
    val = [1.0 - 0.02 * epoch + w for epoch, w in enumerate(wiggle)]
    judgement = judge(curves([v - 0.05 for v in val], val))
    assert judgement.verdict == "still_improving", judgement.reasons
    assert "Mann-Kendall" in judgement.reasons[0]


COSINE_LR = [0.1 * (1 + math.cos(math.pi * step / 9)) / 2 for step in range(10)]  # 0.1 -> 0


def test_an_annealed_schedule_is_named_in_the_still_improving_reason() -> None:
    val = [1.0 - 0.02 * epoch for epoch in range(10)]
    scripted = curves([v - 0.05 for v in val], val)
    scripted.lr_metric, scripted.lr = "lr-Adam", dict(enumerate(COSINE_LR))
    judgement = judge(scripted)
    assert judgement.verdict == "still_improving"
    assert judgement.evidence.schedule_ended
    assert judgement.evidence.peak_lr == pytest.approx(0.1) and judgement.evidence.final_lr == 0.0
    assert "lr-Adam had annealed to 0 (0% of its peak 0.1)" in judgement.reasons[0]


def test_a_constant_learning_rate_has_not_ended() -> None:
    scripted = curves([1.0, 0.9, 0.8], [1.0, 0.9, 0.8])
    scripted.lr_metric, scripted.lr = "lr-SGD", {0: 0.1, 5: 0.1, 9: 0.1}
    assert judge(scripted).evidence.schedule_ended is False


@pytest.mark.parametrize(
    ("train", "num_classes", "verdict", "reason"),
    [
        (
            [2.31, 2.30, 2.305, 2.302, 2.301, 2.303],
            10,
            "underfitting",
            "chance level ln(10) = 2.303",
        ),
        ([2.31, 2.30, 2.305, 2.302, 2.301, 2.303], None, "insufficient_data", "no validation loss"),
        ([2.31, 1.2, 0.8, 0.6, 0.5, 0.45], 10, "insufficient_data", "no validation loss"),
    ],
)
def test_without_validation_only_chance_level_underfits(
    train, num_classes, verdict, reason
) -> None:
    scripted = curves(train, None)
    scripted.num_classes = num_classes
    judgement = judge(scripted)
    assert judgement.verdict == verdict
    assert reason in judgement.reasons[0]


# --- what the run carries besides its losses: learning rate, class count ------------------------


@pytest.mark.parametrize(
    ("run", "lr_metric"),
    [
        (Run("r", "lightning_csv", step_series={"lr-Adam": {9: 0.1, 19: 0.05}}), "lr-Adam"),
        (
            Run(
                "r",
                "tensorboard",
                step_series={
                    "lr-SGD/pg2": {0: 0.2},
                    "lr-SGD/pg1": {0: 0.1},
                    "lr-SGD/pg1-momentum": {0: 0.9},
                },
            ),
            "lr-SGD/pg1",
        ),
        (Run("r", "keras_csv", {"loss": {0: 1.0}, "learning_rate": {0: 0.01}}), "learning_rate"),
        (Run("r", "keras_csv", {"loss": {0: 1.0}, "lr": {0: 0.01}}), "lr"),
        (Run("r", "lightning_csv", step_series={"lr-Adam-momentum": {0: 0.9}}), None),
    ],
)
def test_the_learning_rate_is_found(run: Run, lr_metric: str | None) -> None:
    found = select_curves(run)
    assert found.lr_metric == lr_metric
    if lr_metric is not None:
        assert found.lr == {**run.series, **run.step_series}[lr_metric]


@pytest.mark.parametrize(
    ("config", "source", "num_classes"),
    [
        ({"num_classes": 10}, "hparams", 10),
        ({"model": {"n_classes": 3}}, "hparams", 3),
        ({"classes": ["cat", "dog"]}, "hparams", None),  # a list of names, not a count
        ({"num_classes": 1}, "hparams", None),  # one class has no chance level
        ({"data": {"dataset": "wine"}}, "recipe", 3),
        ({"data": {"dataset": "csv"}}, "recipe", None),  # known only once the file is read
        ({}, "recipe", 10),  # the recipe's default dataset is digits
        (None, None, None),
    ],
)
def test_the_class_count_comes_from_hparams_or_recipe(config, source, num_classes) -> None:
    run = Run("r", "lightning_csv", {"train_loss": {0: 2.3}}, config=config, config_source=source)
    assert select_curves(run).num_classes == num_classes


@pytest.mark.parametrize("dataset", ["digits", "wine", "breast_cancer", "mnist1d"])
def test_recipe_class_counts_match_the_data(dataset: str, tmp_path: Path) -> None:
    from lightreg.data.datasets import load_mnist1d, load_samples

    if dataset == "mnist1d":
        samples = load_mnist1d(tmp_path, num_samples=100)
    else:
        samples = load_samples(dataset)
    assert RECIPE_CLASS_COUNTS[dataset] == samples.num_classes
    assert set(RECIPE_CLASS_COUNTS) == {"digits", "wine", "breast_cancer", "mnist1d"}


def test_a_run_without_validation_at_chance_level_underfits_end_to_end() -> None:
    flat = {epoch: math.log(10) + 0.002 * (-1) ** epoch for epoch in range(8)}
    run = Run(
        "r",
        "lightning_csv",
        {"train_loss": flat},
        config={"num_classes": 10},
        config_source="hparams",
    )
    assert diagnose(run).verdict == "underfitting"


# --- the noise-aware fixtures: the folder above each case names its verdict ----------------------

NOISY = Path(__file__).parent / "fixtures" / "noisy_verdicts"
NOISY_CASES = sorted(str(path.parent.relative_to(NOISY)) for path in NOISY.rglob("metrics.csv"))


def test_every_noisy_fixture_gets_its_verdict() -> None:
    report = diagnose_paths([NOISY])
    assert report.errors == [] and report.empty_paths == []
    got = {d.run.path: d.verdict for d in report.diagnoses}
    assert got == {case: case.split("/")[0] for case in NOISY_CASES}
    assert len(got) == 12 and {path.split("/")[0] for path in got} == set(VERDICTS)


def test_a_real_run_whose_cosine_schedule_ended_is_not_told_to_double_its_epochs() -> None:
    (d,) = diagnose_paths([NOISY / "still_improving" / "cosine_ended"]).diagnoses
    assert d.evidence.lr_metric == "lr-Adam" and d.evidence.schedule_ended
    assert d.prescription.changes == ()
    assert d.prescription.hints[0].startswith("lr-Adam had annealed to 1.14e-05 (3.8% of its peak")


def test_every_threshold_is_documented_with_its_default() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### Verdicts and their rules", 1)[1].split("\n### ", 1)[0]
    for f in dataclasses.fields(Thresholds):
        rows = [line for line in section.splitlines() if line.startswith(f"| `{f.name}`")]
        rows += [line for line in section.splitlines() if f", `{f.name}` |" in line]
        assert len(rows) == 1, f.name
        assert f"{f.default:g}" in rows[0].split("|")[2], (f.name, rows[0])
