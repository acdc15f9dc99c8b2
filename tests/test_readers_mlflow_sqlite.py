"""MLflow SQLite store (``mlflow.db``): a real store written by Lightning's MLFlowLogger (see
``_mlflow_sqlite`` in tests/fixtures/make_reader_fixtures.py), read with sqlite3 only."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lightreg.diagnose.readers import ReadError, read_runs
from lightreg.diagnose.readers.limits import TooLarge

FIXTURES = Path(__file__).parent / "fixtures" / "readers"
STORE = FIXTURES / "mlflow_sqlite" / "mlflow.db"


def _copy(tmp_path: Path, name: str = "mlflow.db") -> Path:
    path = tmp_path / name
    shutil.copyfile(STORE, path)
    return path


def test_real_sqlite_store_gives_one_run_per_run_uuid_named_by_run_name() -> None:
    runs, errors = read_runs([FIXTURES / "mlflow_sqlite"])
    assert errors == []
    assert [(r.path, r.format) for r in runs] == [
        ("mlflow.db/tiny/sgd-lr0.05", "mlflow"),
        ("mlflow.db/tiny/step-only", "mlflow"),
    ]  # the deleted run is left out
    csv_twin = read_runs([FIXTURES / "lightning_csv" / "version_0"])[0][0]
    assert runs[0].series["val_loss"] == pytest.approx(csv_twin.series["val_loss"])
    assert runs[0].series["train_loss_epoch"] == pytest.approx(csv_twin.series["train_loss_epoch"])
    assert runs[0].config == {"lr": "0.05", "widths": "(4, 1)", "run_name": "sgd-lr0.05"}
    assert runs[0].config_source == "hparams" and runs[0].warnings == []
    steps = runs[1].step_series["train_loss"]  # per step only: every step has its epoch
    assert len(steps) == 24 and {runs[1].step_series["epoch"][s] for s in steps} == {0, 1, 2, 3}


def test_store_is_opened_read_only(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    before = path.read_bytes(), path.stat().st_mtime_ns
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)  # no journal could be created either
    try:
        runs, errors = read_runs([tmp_path])
    finally:
        tmp_path.chmod(stat.S_IRWXU)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert errors == [] and len(runs) == 2
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(os.listdir(tmp_path)) == ["mlflow.db"]


def test_same_run_names_get_their_ids_and_a_run_without_metrics_is_an_error(
    tmp_path: Path,
) -> None:
    path = _copy(tmp_path, "tracking.sqlite")  # any name: found by its tables
    db = sqlite3.connect(path)
    db.execute("UPDATE runs SET name = 'same'")
    db.execute("UPDATE runs SET lifecycle_stage = 'active'")
    deleted = db.execute("SELECT run_uuid FROM runs ORDER BY start_time DESC").fetchone()[0]
    db.execute("DELETE FROM metrics WHERE run_uuid = ?", (deleted,))
    db.commit()
    db.close()
    runs, errors = read_runs([path])
    assert [r.path for r in runs] == [
        f"tracking.sqlite/tiny/same ({uuid[:8]})" for uuid in _uuids(path)[:2]
    ]
    assert errors == [ReadError(f"tracking.sqlite/tiny/same ({deleted[:8]})", "no metric values")]


def _uuids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT run_uuid FROM runs ORDER BY start_time")]


def test_other_databases_are_skipped_and_a_broken_mlflow_db_is_an_error(tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "cache.db")
    other.execute("CREATE TABLE items (key TEXT, value REAL)")
    other.commit()
    other.close()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mlflow.db").write_text("not a database")
    assert read_runs([tmp_path]) == (
        [],
        [ReadError("sub/mlflow.db", "not an MLflow store: no SQLite database")],
    )


def test_store_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    _copy(tmp_path)
    runs, errors = read_runs([tmp_path], max_file_bytes=1000)
    assert runs == [] and len(errors) == 1
    assert errors[0].path == "mlflow.db"
    assert errors[0].reason == str(TooLarge("mlflow.db", STORE.stat().st_size, 1000))


def test_reading_a_store_imports_neither_mlflow_nor_numpy() -> None:
    code = (
        "import sys; from lightreg.diagnose.readers import read_runs; "
        f"runs, _ = read_runs([{str(STORE)!r}]); assert len(runs) == 2; "
        "print(sorted(m for m in ('mlflow', 'numpy', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
