"""Finding train/val losses and accuracies among real-world metric names."""

from __future__ import annotations

import pytest

from lightreg.diagnose.metrics import find_metric, parse_metric_name, select_curves
from lightreg.diagnose.run import Run


@pytest.mark.parametrize(
    ("name", "split", "quantity"),
    [
        ("train_loss", "train", "loss"),
        ("train_loss_epoch", "train", "loss"),
        ("loss", None, "loss"),
        ("train/loss", "train", "loss"),
        ("loss/train", "train", "loss"),
        ("training_loss", "train", "loss"),
        ("val_loss", "val", "loss"),
        ("valid_loss", "val", "loss"),
        ("val/loss", "val", "loss"),
        ("valid/loss", "val", "loss"),
        ("loss/val", "val", "loss"),
        ("validation_loss", "val", "loss"),
        ("val_loss_epoch", "val", "loss"),
        ("val_loss/dataloader_idx_0", "val", "loss"),
        ("train_acc", "train", "acc"),
        ("accuracy", None, "accuracy"),
        ("val_accuracy", "val", "accuracy"),
        ("val/acc", "val", "acc"),
        ("train/nll", "train", "nll"),
        ("val/rmse", "val", "rmse"),
    ],
)
def test_parse_metric_name(name: str, split: str | None, quantity: str) -> None:
    parsed = parse_metric_name(name)
    assert (parsed.split, parsed.quantity) == (split, quantity)


@pytest.mark.parametrize(
    ("train", "val"),
    [
        ("train_loss", "val_loss"),
        ("train_loss_epoch", "val_loss"),
        ("loss", "val_loss"),
        ("train/loss", "val/loss"),
        ("loss/train", "loss/val"),
        ("training_loss", "validation_loss"),
        ("train_loss", "valid_loss"),
        ("train/loss", "valid/loss"),
        ("train_loss_epoch", "val_loss_epoch"),
    ],
)
def test_detects_loss_pairs(train: str, val: str) -> None:
    run = Run("r", "lightning_csv", {train: {0: 1.0}, val: {0: 1.1}, "lr-Adam": {0: 0.1}})
    curves = select_curves(run)
    assert (curves.train_metric, curves.val_metric, curves.comparable) == (train, val, True)


@pytest.mark.parametrize(
    ("names", "train_acc", "val_acc"),
    [
        (["train_acc", "val_acc"], "train_acc", "val_acc"),
        (["acc", "val_acc"], "acc", "val_acc"),
        (["accuracy", "val_accuracy"], "accuracy", "val_accuracy"),
        (["train/acc", "val/acc"], "train/acc", "val/acc"),
    ],
)
def test_detects_accuracy(names: list[str], train_acc: str, val_acc: str) -> None:
    series = {name: {0: 0.5} for name in names} | {"loss": {0: 1.0}}
    curves = select_curves(Run("r", "keras_csv", series))
    assert (curves.train_acc_metric, curves.val_acc_metric) == (train_acc, val_acc)


def test_explicit_split_and_epoch_level_win() -> None:
    names = ["loss", "train_loss_step", "train_loss_epoch"]
    assert find_metric(names, "train", "loss") == "train_loss_epoch"
    assert find_metric(["val_loss", "test_loss"], "train", "loss") is None


def test_mismatched_quantities_are_not_compared() -> None:
    run = Run("r", "lightning_csv", {"train/nll": {0: 1.0, 1: 0.5}, "val/rmse": {0: 0.9, 1: 0.8}})
    curves = select_curves(run)
    assert (curves.train_metric, curves.val_metric) == ("train/nll", "val/rmse")
    assert curves.comparable is False
    assert any("different quantities" in note for note in curves.notes)


def test_val_metric_matching_train_quantity_is_preferred() -> None:
    series = {"train/nll": {0: 1.0}, "val/rmse": {0: 1.0}, "val/nll": {0: 1.0}}
    curves = select_curves(Run("r", "lightning_csv", series))
    assert curves.val_metric == "val/nll" and curves.comparable


def test_overrides_win_over_detection() -> None:
    series = {"train_loss": {0: 1.0}, "val_loss": {0: 1.0}, "val_mse": {0: 2.0}}
    curves = select_curves(Run("r", "lightning_csv", series), val_metric="val_mse")
    assert curves.val_metric == "val_mse" and curves.comparable is False


def test_step_loss_averaged_per_epoch_when_mapped() -> None:
    run = Run(
        "r",
        "lightning_csv",
        {"val_loss": {0: 1.0, 1: 0.8}},
        step_series={
            "train_loss_step": {0: 2.0, 1: 1.0, 2: 0.6, 3: 0.4},
            "epoch": {0: 0, 1: 0, 2: 1, 3: 1},
        },
    )
    curves = select_curves(run)
    assert curves.train == {0: 1.5, 1: 0.5}
    assert any("averaged per epoch" in note for note in curves.notes)


def test_step_loss_without_mapping_is_reported() -> None:
    run = Run("r", "lightning_csv", {"val_loss": {0: 1.0}}, step_series={"train_loss": {5: 1.0}})
    curves = select_curves(run)
    assert curves.train_metric is None
    assert any("no step->epoch mapping" in note for note in curves.notes)


def test_validation_after_last_training_epoch_is_dropped() -> None:
    run = Run(
        "r", "lightning_csv", {"train_loss": {0: 1.0, 1: 0.9}, "val_loss": {0: 1, 1: 1, 2: 1}}
    )
    assert sorted(select_curves(run).val) == [0, 1]
