"""Lightning and Keras CSVLogger readers: real logs from a tiny Lightning run, plus hand-made quirks."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightreg.diagnose.readers import ReadError, read_runs

FIXTURES = Path(__file__).parent / "fixtures" / "readers"
HEADER = "epoch,step,train_loss_epoch,train_loss_step,val_loss\r\n"


def _one(path: Path):
    runs, errors = read_runs([path])
    assert not errors, errors
    assert len(runs) == 1, runs
    return runs[0]


def test_real_lightning_csv_merges_train_and_val_rows_by_epoch() -> None:
    run = _one(FIXTURES / "lightning_csv" / "version_0")
    assert run.path == "." and run.format == "lightning_csv"
    assert run.series["val_loss"] == pytest.approx(
        {
            0: 1.4403421878814697,
            1: 0.41788703203201294,
            2: 0.15064898133277893,
            3: 0.06636542826890945,
        }
    )
    assert run.series["train_loss_epoch"][0] == pytest.approx(5.153682708740234)
    assert run.step_series["train_loss_step"][23] == pytest.approx(0.060562822967767715)
    assert run.step_series["lr-SGD"] == {0: 0.05, 6: 0.05, 12: 0.05, 18: 0.05}  # rows without epoch
    assert run.config == {"lr": 0.05, "widths": [4, 1]}  # !!python/tuple -> list
    assert run.config_source == "hparams" and run.warnings == []


def test_real_validation_every_two_epochs_and_trailing_validate_row() -> None:
    runs, errors = read_runs([FIXTURES / "lightning_csv"])
    assert errors == [] and [r.path for r in runs] == ["version_0", "version_1"]
    assert sorted(runs[1].series["val_loss"]) == [1, 3, 4]  # row 4 comes from trainer.validate


def _write(tmp_path: Path, text: str, name: str = "metrics.csv") -> Path:
    path = tmp_path / "version_0" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def test_run_killed_mid_write_drops_last_row_with_warning(tmp_path: Path) -> None:
    _write(tmp_path, HEADER + "0,5,,,1.5\r\n0,5,2.0,,\r\n1,11,,,0.9\r\n1,11,0.8")
    run = _one(tmp_path)
    assert run.series == {"val_loss": {0: 1.5, 1: 0.9}, "train_loss_epoch": {0: 2.0}}
    assert any("cut short" in w for w in run.warnings)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_line_endings_nan_inf_and_first_seen_column_order(tmp_path: Path, eol: str) -> None:
    rows = ["val_loss,epoch,step,train_loss", "nan,0,5,", ",0,5,inf", "0.5,1,11,", ",1,11,-inf"]
    _write(tmp_path, eol.join(rows) + eol)
    run = _one(tmp_path)
    assert math.isnan(run.series["val_loss"][0]) and run.series["val_loss"][1] == 0.5
    assert run.series["train_loss"] == {0: math.inf, 1: -math.inf}


def test_suffixes_dataloader_idx_and_numbered_columns_keep_their_names(tmp_path: Path) -> None:
    text = "epoch,step,train_loss_0,val_loss/dataloader_idx_1\n0,3,1.0,\n0,3,,2.0\n1,7,0.5,1.5\n"
    _write(tmp_path, text)
    run = _one(tmp_path / "version_0")
    assert run.series == {
        "train_loss_0": {0: 1.0, 1: 0.5},
        "val_loss/dataloader_idx_1": {0: 2.0, 1: 1.5},
    }


def test_only_step_level_training_loss_goes_to_step_series(tmp_path: Path) -> None:
    text = "epoch,step,train_loss,val_loss\n0,1,3.0,\n0,3,2.0,\n0,3,,1.0\n1,5,1.5,\n1,7,1.0,\n1,7,,0.8\n"
    _write(tmp_path, text)
    run = _one(tmp_path)
    assert run.step_series == {
        "train_loss": {1: 3.0, 3: 2.0, 5: 1.5, 7: 1.0},
        "epoch": {1: 0, 3: 0, 5: 1, 7: 1},  # step -> epoch, to average a per-step loss per epoch
    }
    assert run.series == {"val_loss": {0: 1.0, 1: 0.8}}


def test_recipe_yaml_is_preferred_and_bad_config_costs_only_the_config(tmp_path: Path) -> None:
    path = _write(tmp_path, "epoch,step,val_loss\n0,1,1.0\n")
    (path.parent / "hparams.yaml").write_text("lr: 0.1\n")
    (path.parent / "recipe.yaml").write_text("name: mlp\nseed: 0\nregularization: {dropout: 0.1}\n")
    run = _one(tmp_path)
    assert run.config_source == "recipe" and run.config["regularization"] == {"dropout": 0.1}
    (path.parent / "recipe.yaml").write_text("name: [unclosed\n")
    (path.parent / "hparams.yaml").write_text("obj: !!python/object:argparse.Namespace {a: 1}\n")
    run = _one(tmp_path)
    assert run.config == {"obj": "!!python/object:argparse.Namespace"}
    assert run.config_source == "hparams"
    assert run.warnings == ["config not read: recipe.yaml: invalid YAML (line 2)"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\x00\x01PK\x03\x04garbage", "not a metrics log: binary data"),
        (b"Epoch 1 finished, loss went down nicely\n", "not a metrics log: plain text"),
        (b"name,value\nlr,0.1\n", "not a metrics log: 1 of 2 columns hold numbers"),
    ],
)
def test_broken_metrics_csv_is_an_error_and_other_runs_are_still_read(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    shutil.copytree(FIXTURES / "lightning_csv" / "version_0", tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.csv").write_bytes(content)
    runs, errors = read_runs([tmp_path])
    assert [r.path for r in runs] == ["good"]
    assert errors == [ReadError("bad/metrics.csv", reason)]


def test_unrelated_files_are_skipped_silently(tmp_path: Path) -> None:
    for name, data in [
        ("README.md", b"# hi"),
        ("train.py", b"print()"),
        ("model.ckpt", b"\x80\x02"),
    ]:
        (tmp_path / name).write_bytes(data)
    (tmp_path / "run.log").write_text("INFO starting\n")  # a .log that is not a candidate name
    assert read_runs([tmp_path]) == ([], [])


def test_keras_history_na_and_appended_runs_read_the_last(tmp_path: Path) -> None:
    text = (
        "epoch,accuracy,loss,val_loss\n0,0.5,1.0,1.2\n1,0.6,0.8,NA\n0,0.55,0.9,1.1\n1,0.7,0.6,0.9\n"
    )
    (tmp_path / "training.log").write_text(text)
    run = _one(tmp_path)
    assert (run.path, run.format) == ("training.log", "keras_csv")
    assert run.series == {
        "accuracy": {0: 0.55, 1: 0.7},
        "loss": {0: 0.9, 1: 0.6},
        "val_loss": {0: 1.1, 1: 0.9},
    }
    assert run.warnings == ["file holds 2 appended runs (epoch restarts at 0): read the last"]


def test_keras_plain_text_training_log_and_single_file_path(tmp_path: Path) -> None:
    (tmp_path / "training.log").write_text("2024-01-01 epoch 1 done\nall good\n")
    assert read_runs([tmp_path]) == (
        [],
        [ReadError("training.log", "not a metrics log: plain text")],
    )
    tsv = tmp_path / "history.tsv"
    tsv.write_text("epoch\tloss\n0\t2.0\n1\t1.0\n")
    assert _one(tsv).series == {"loss": {0: 2.0, 1: 1.0}}
    assert _one(tsv).path == "."


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.text(alphabet="epochstval_los,0123456789.naif-\r\n\t ", max_size=300),
        st.builds(
            lambda cut: (FIXTURES / "lightning_csv/version_0/metrics.csv").read_text()[:cut],
            st.integers(0, 900),
        ),
    ),
    name=st.sampled_from(["metrics.csv", "history.csv", "training.log", "x.tsv"]),
)
def test_fuzz_csv_readers_never_raise(tmp_path: Path, data: bytes | str, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    runs, errors = read_runs([tmp_path, path])
    assert all(isinstance(e, ReadError) and e.reason for e in errors)
    for run in runs:
        assert run.series or run.step_series
