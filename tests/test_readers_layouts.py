"""Layouts that real loggers write: per-step training losses, old Lightning CSVs, odd CSV tables,
Keras' TensorBoard folders. Fixtures: ``tests/fixtures/make_reader_fixtures.py`` (real fits) and
hand-written files that say which version's layout they reproduce."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightreg.diagnose.metrics import per_epoch_mean
from lightreg.diagnose.readers import ReadError, read_runs
from lightreg.diagnose.run import Run

FIXTURES = Path(__file__).parent / "fixtures" / "readers"


def _one(path: Path) -> Run:
    runs, errors = read_runs([path])
    assert not errors, errors
    assert len(runs) == 1, runs
    return runs[0]


def _reference_means() -> dict[int, float]:
    """Per-epoch means of the per-step training loss, from the CSV whose every row has its epoch."""
    run = _one(FIXTURES / "step_only" / "csv")
    means = per_epoch_mean(run, "train_loss")
    assert means is not None and sorted(means) == [0, 1, 2, 3]
    return means


@pytest.mark.parametrize(
    "folder",
    ["step_only/tb", "step_direct/csv", "step_direct/tb"],
)
def test_per_step_training_loss_is_averaged_over_every_step_of_its_epoch(folder: str) -> None:
    run = _one(FIXTURES / folder)
    assert sorted(run.series["val_loss"]) == [0, 1, 2, 3]
    steps = run.step_series["train_loss"]
    assert len(steps) == 24  # 6 batches x 4 epochs, every one logged
    assert {s: run.step_series["epoch"][s] for s in steps} == {s: s // 6 for s in range(24)}
    assert per_epoch_mean(run, "train_loss") == pytest.approx(_reference_means(), rel=1e-6)


def test_summary_writer_without_epoch_tag_takes_epochs_from_validation_steps() -> None:
    run = _one(FIXTURES / "step_writer")
    assert sorted(run.series["val/loss"]) == [0, 1, 2, 3]  # renumbered from steps 5, 11, 17, 23
    assert run.series["val/loss"][3] == pytest.approx(2.2 / 4)
    means = per_epoch_mean(run, "train/loss")
    assert means is not None and sorted(means) == [0, 1, 2, 3]
    expected = [2.0 / (epoch + 1) + 0.05 for epoch in range(4)]  # + U(0, 0.1) noise per step
    assert list(means.values()) == pytest.approx(expected, abs=0.05)
    assert run.warnings == [
        "no epoch record: epoch i is the i-th step with epoch-level values (validation)"
    ]


def test_old_test_tube_layout_created_at_no_step_epoch_not_first() -> None:
    """pytorch_lightning 0.7-0.9 TestTubeLogger: see tests/fixtures/readers/old_layouts/README.md."""
    run = _one(FIXTURES / "old_layouts")
    assert (run.path, run.format) == ("test_tube/default/version_0", "lightning_csv")
    assert sorted(run.series) == ["val_acc", "val_loss"] and len(run.series["val_loss"]) == 5
    assert run.series["val_loss"][4] < run.series["val_loss"][0]
    assert "created_at" not in run.step_series  # timestamps are no metric
    means = per_epoch_mean(run, "train_loss")  # 4 rows an epoch; the row index stands for the step
    assert means is not None and sorted(means) == [0, 1, 2, 3, 4]
    assert means[0] == pytest.approx(2.02, abs=0.05)


@pytest.mark.parametrize(
    ("name", "text", "series"),
    [
        (
            "results.tsv",
            "Epoch\tTrain Loss\tValidation Loss\tFinal Test F1 Score\n"
            "0\t1.20\t1.31\t0.52\n1\t0.80\t0.95\t0.61\n2\t0.60\t0.90\t0.64\n",
            {"Train Loss": {0: 1.2, 1: 0.8, 2: 0.6}, "Final Test F1 Score": {2: 0.64}},
        ),
        (
            "history.csv",
            "epoch;loss;val_loss;val accuracy (top-1)\n0;1.5;1.6;0.41\n1;0.9;1.1;0.58\n",
            {"loss": {0: 1.5, 1: 0.9}, "val accuracy (top-1)": {1: 0.58}},
        ),
        (
            "scores.csv",
            '"Mean Train Loss per Epoch","Mean Validation Loss per Epoch"\n2.0,2.1\n1.0,1.4\n',
            {"Mean Train Loss per Epoch": {0: 2.0, 1: 1.0}},
        ),
        (
            "metrics.csv",  # a last row cut short, and Lightning's columns in any order
            "val_loss,epoch,step,train_loss\n,0,9,0.9\n0.8,0,9,\n,1,19,0.5\n0.6,1,19,\n,2,2",
            {"val_loss": {0: 0.8, 1: 0.6}, "train_loss": {0: 0.9, 1: 0.5}},
        ),
    ],
)
def test_tables_are_recognised_by_their_body_not_their_header_words(
    tmp_path: Path, name: str, text: str, series: dict[str, dict[int, float]]
) -> None:
    (tmp_path / name).write_text(text)
    run = _one(tmp_path)
    for metric, points in series.items():
        assert {e: run.series[metric][e] for e in points} == points


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("metrics.csv", "name,city\nann,paris\nbob,oslo\n", "0 of 2 columns hold numbers"),
        ("history.csv", "Hello, world.\nThis is a note, not a table, at all.\n", "plain text"),
        ("metrics.csv", "id;label;score\na1;cat;0.9\na2;dog;0.8\n", "1 of 3 columns hold numbers"),
        ("results.csv", "run\tstatus\tnotes\nr1\tok\tfine\n", "0 of 3 columns hold numbers"),
    ],
)
def test_tables_that_are_no_metrics_are_refused_with_the_file_and_reason(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    (tmp_path / name).write_text(text)
    assert read_runs([tmp_path]) == ([], [ReadError(name, f"not a metrics log: {reason}")])


def test_keras_tensorboard_train_and_validation_folders_are_one_run() -> None:
    """Keras 3.x TensorBoard callback layout: see ``_keras_tb`` in make_reader_fixtures.py."""
    run = _one(FIXTURES / "keras_tb")
    assert (run.path, run.format) == ("logs", "tensorboard")
    assert sorted(run.series) == ["accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"]
    assert run.series["val_loss"] == pytest.approx(
        {0: 1.7, 1: 1.2, 2: 1.0, 3: 1.05, 4: 1.15, 5: 1.3}
    )
    assert run.series["loss"][5] == pytest.approx(0.2)
    assert run.step_series == {} and run.warnings == []


def test_epoch_tag_without_a_finite_value_falls_back_to_validation_steps(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(tmp_path) as writer:
        for step in range(12):
            writer.add_scalar("epoch", float("nan"), step)
            writer.add_scalar("train_loss", 1.0 / (step + 1), step)
            if step % 6 == 5:
                writer.add_scalar("val_loss", 2.0 / (step + 1), step)
    run = _one(tmp_path)
    assert sorted(run.series["val_loss"]) == [0, 1]
    assert per_epoch_mean(run, "train_loss") == pytest.approx(
        {0: sum(1 / (s + 1) for s in range(6)) / 6, 1: sum(1 / (s + 1) for s in range(6, 12)) / 6}
    )
