"""Read an MLflow SQLite store (``mlflow.db``, MLflow's default backend since 3.7), without mlflow.

The database is opened read-only (``mode=ro``) with the standard library's :mod:`sqlite3`. Tables
read: ``experiments`` (names), ``runs`` (one run per ``run_uuid``, deleted ones left out, as the
file store's ``.trash``), ``metrics`` (``key, value, step, is_nan``, streamed key by key in logging
order) and ``params`` (the config). A run is shown as ``mlflow.db/<experiment>/<run name>``
(the run's id is added when two runs of an experiment share a name). Steps map to epochs as in the
file store (:func:`~lightreg.diagnose.readers.mlflow.metrics_run`).

Example:
    >>> runs, errors = read_mlflow_sqlite(
    ...     Path("tests/fixtures/readers/mlflow_sqlite/mlflow.db"), "mlflow.db")
    >>> [r.path for r in runs], sorted(runs[0].series), errors
    (['mlflow.db/tiny/sgd-lr0.05', 'mlflow.db/tiny/step-only'], ['lr-SGD', 'train_loss_epoch', 'val_loss'], [])
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from lightreg.diagnose.readers.errors import ReadError
from lightreg.diagnose.readers.limits import MAX_FILE_BYTES, check_size
from lightreg.diagnose.readers.mlflow import MAX_PARAM_BYTES, metrics_run
from lightreg.diagnose.run import LogReadError, Run

SQLITE_MAGIC = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""
TABLES = frozenset({"experiments", "runs", "metrics", "params"})
"""The tables that make a SQLite file an MLflow store."""
FETCH_ROWS = 65536
"""Metric rows fetched from the database at a time."""


def connect(path: Path) -> sqlite3.Connection:
    """Open a SQLite database read-only (nothing is ever written, no journal is created).

    Example:
        >>> connect(Path("no/such/mlflow.db"))
        Traceback (most recent call last):
        ...
        sqlite3.OperationalError: unable to open database file
    """
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)


def is_mlflow_store(path: Path) -> bool:
    """Whether ``path`` is a SQLite database holding MLflow's tracking tables.

    Example:
        >>> is_mlflow_store(Path("tests/fixtures/readers/mlflow_sqlite/mlflow.db"))
        True
        >>> is_mlflow_store(Path("README.md"))
        False
    """
    try:
        with path.open("rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                return False
        with closing(connect(path)) as db:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except (OSError, sqlite3.Error):
        return False
    return names >= TABLES


class _DbMetric:
    """One metric of one run in the database: its points streamed in logging order."""

    def __init__(self, db: sqlite3.Connection, run_uuid: str, key: str) -> None:
        self.db, self.run_uuid, self.key = db, run_uuid, key
        self.bad = 0

    def points(self) -> Iterator[tuple[int, float]]:
        """(step, value); a NaN is stored as ``is_nan`` with a 0 value."""
        cursor = self.db.execute(
            "SELECT step, value, is_nan FROM metrics WHERE run_uuid = ? AND key = ? "
            "ORDER BY timestamp, step",
            (self.run_uuid, self.key),
        )
        while rows := cursor.fetchmany(FETCH_ROWS):
            for step, value, is_nan in rows:
                yield int(step), float("nan") if is_nan else float(value)


def _config(db: sqlite3.Connection, run_uuid: str, name: str | None) -> dict[str, str]:
    rows = db.execute(
        "SELECT key, substr(value, 1, ?) FROM params WHERE run_uuid = ? ORDER BY key",
        (MAX_PARAM_BYTES, run_uuid),
    )
    config = {str(key): str(value) for key, value in rows}
    if name is not None:
        config.setdefault("run_name", name)
    return config


def read_mlflow_sqlite(
    path: Path, rel: str, max_bytes: int = MAX_FILE_BYTES
) -> tuple[list[Run], list[ReadError]]:
    """Every run of the MLflow store ``path`` (shown under ``rel``), and the runs that failed.

    Raises:
        LogReadError: the file is over ``max_bytes``, or no MLflow store.

    Example:
        >>> read_mlflow_sqlite(Path("README.md"), "README.md")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: not an MLflow store: no SQLite database
    """
    check_size(path, max_bytes)
    if not is_mlflow_store(path):
        raise LogReadError("not an MLflow store: no SQLite database")
    runs: list[Run] = []
    errors: list[ReadError] = []
    with closing(connect(path)) as db:
        experiments = dict(db.execute("SELECT experiment_id, name FROM experiments"))
        found = db.execute(
            "SELECT run_uuid, name, experiment_id FROM runs "
            "WHERE lifecycle_stage IS NOT 'deleted' ORDER BY start_time, run_uuid"
        ).fetchall()
        names = Counter((exp, name) for _, name, exp in found)
        for run_uuid, name, exp in found:
            shown = name or run_uuid
            if names[(exp, name)] > 1 or not name:
                shown = f"{name} ({run_uuid[:8]})" if name else run_uuid
            run_rel = f"{rel}/{experiments.get(exp, exp)}/{shown}"
            keys = [
                key
                for (key,) in db.execute(
                    "SELECT DISTINCT key FROM metrics WHERE run_uuid = ? ORDER BY key", (run_uuid,)
                )
            ]
            try:
                run = metrics_run(run_rel, [_DbMetric(db, run_uuid, key) for key in keys])
            except LogReadError as err:
                errors.append(ReadError(run_rel, str(err)))
                continue
            run.config = _config(db, run_uuid, name)
            run.config_source = "hparams"
            runs.append(run)
    return runs, errors
