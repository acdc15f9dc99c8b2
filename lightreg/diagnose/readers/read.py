"""``read_runs``: find every run under the PATHs given and read each with its reader.

Nothing escapes: a run that fails becomes a :class:`ReadError` with a one-line reason, and the
other runs are still read.

Example:
    >>> runs, errors = read_runs(["tests/fixtures/readers/lightning_csv", "no/such/dir"])
    >>> [r.path for r in runs], errors
    (['version_0', 'version_1'], [ReadError(path='no/such/dir', reason='no such file or folder')])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightreg.diagnose.readers.discover import Found, find_runs
from lightreg.diagnose.readers.errors import ReadError
from lightreg.diagnose.readers.keras_csv import read_keras_csv
from lightreg.diagnose.readers.lightning_csv import read_lightning_csv
from lightreg.diagnose.readers.limits import MAX_FILE_BYTES
from lightreg.diagnose.readers.mlflow import read_mlflow
from lightreg.diagnose.readers.tensorboard import read_tensorboard
from lightreg.diagnose.readers.wandb_run import read_wandb
from lightreg.diagnose.run import LogReadError, Run


def _read(found: Found, max_bytes: int) -> tuple[list[Run], list[ReadError]]:
    if found.kind == "mlflow_sqlite":
        from lightreg.diagnose.readers.mlflow_sqlite import read_mlflow_sqlite  # sqlite3 lazily

        return read_mlflow_sqlite(found.files[0], found.rel, max_bytes)
    if found.kind == "lightning_csv":
        run = read_lightning_csv(found.folder, found.rel, found.files[0], max_bytes)
    elif found.kind == "keras_csv":
        run = read_keras_csv(found.files[0], found.rel, max_bytes)
    elif found.kind in ("tensorboard", "keras_tensorboard"):
        keras = found.kind == "keras_tensorboard"
        run = read_tensorboard(found.folder, found.files, found.rel, max_bytes, keras)
    elif found.kind == "wandb":
        run = read_wandb(found.folder, found.rel, max_bytes)
    else:
        run = read_mlflow(found.folder, found.rel, max_bytes)
    return [run], []


def _why(err: BaseException) -> str:
    if isinstance(err, LogReadError):
        return str(err)
    if isinstance(err, PermissionError):
        return "permission denied"
    message = " ".join(str(err).split())
    return (
        f"unreadable: {type(err).__name__}: {message}"
        if message
        else f"unreadable: {type(err).__name__}"
    )


def read_runs(
    paths: Sequence[str | Path], max_file_bytes: int = MAX_FILE_BYTES
) -> tuple[list[Run], list[ReadError]]:
    """Find every run under each path (file or folder, searched recursively) and read it.

    A log file over ``max_file_bytes`` is refused with a one-line error, unread.

    ``Run.path`` and ``ReadError.path`` are relative to the PATH they were found under ("." when the
    PATH itself is the run). Runs come in the order found (sorted folder walk).

    Example:
        >>> runs, errors = read_runs(["tests/fixtures/readers/lightning_csv/version_0/metrics.csv"])
        >>> runs[0].path, runs[0].format, runs[0].config_source, errors
        ('.', 'lightning_csv', 'hparams', [])
    """
    runs: list[Run] = []
    errors: list[ReadError] = []
    for given in paths:
        top = Path(given)
        try:
            found, found_errors = find_runs(top)
        except Exception as err:  # noqa: BLE001 - a PATH must never stop the others
            errors.append(ReadError(str(given), _why(err)))
            continue
        errors.extend(found_errors)
        for item in found:
            try:
                item_runs, item_errors = _read(item, max_file_bytes)
                runs.extend(item_runs)
                errors.extend(item_errors)
            except Exception as err:  # noqa: BLE001 - one bad run must never stop the others
                errors.append(ReadError(item.rel, _why(err)))
    return runs, errors
