"""Find the runs under a PATH and say which reader each one needs.

What counts as a run:

* a folder holding MLflow run files (``metrics/`` plus ``meta.yaml`` or ``params/``);
* an MLflow SQLite store: ``mlflow.db``, or a ``*.db`` / ``*.sqlite`` file with MLflow's tables
  (each of its runs is a run);
* a W&B run folder (``wandb/run-*/``, ``wandb/offline-run-*/``) holding its ``*.wandb`` log;
* a folder holding TensorBoard event files: named ``*tfevents*``, or with no extension and a first
  record whose length CRC is right (sniffed by structure, not only by name); all files of a
  folder make one run, and so do those of Keras' ``TensorBoard`` callback in ``train/`` and
  ``validation/`` (the run is their parent folder);
* a CSV metrics table: ``metrics.csv``, ``*.csv``, ``training.log``, ``history.csv`` are
  *candidates*, and one that is no metrics table is an error ("not a metrics log: plain text");
  other ``*.log`` / ``*.tsv`` files are read only when they are metrics tables. Whether a file is
  one, and whether Lightning's or Keras' layout, is sniffed from its first rows
  (:func:`~lightreg.diagnose.readers.table.sniff`): a consistent delimiter and mostly numeric
  cells, whatever the header's words.

Anything else (README.md, code, checkpoints, TestTubeLogger's ``meta_tags.csv``) is skipped
silently, as are hidden folders (MLflow's
``.trash``), ``__pycache__`` and ``node_modules``.

Symlinked folders are followed when they resolve inside the PATH given; one that points outside
is not, and says so (an error naming its target). Each real folder is read once: under its own
name when the walk reaches it, else under the first link to it (links are followed after the
rest), so ``best -> version_3`` adds nothing and a link loop ends.

Example:
    >>> [(f.kind, f.rel) for f in find_runs(Path("tests/fixtures/readers/lightning_csv"))[0]]
    [('lightning_csv', 'version_0'), ('lightning_csv', 'version_1')]
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lightreg.diagnose.readers.errors import ReadError
from lightreg.diagnose.readers.table import HEAD_BYTES, TableKind, decode_head, sniff
from lightreg.diagnose.readers.tensorboard import KERAS_FOLDERS
from lightreg.diagnose.readers.tfrecord import looks_like_records
from lightreg.diagnose.readers.wandb_run import is_run_folder
from lightreg.diagnose.run import LogReadError

Kind = Literal[
    "lightning_csv",
    "keras_csv",
    "tensorboard",
    "keras_tensorboard",
    "mlflow",
    "mlflow_sqlite",
    "wandb",
]
CANDIDATE_NAMES = frozenset({"metrics.csv", "training.log", "history.csv"})
NOT_METRICS = frozenset({"meta_tags.csv"})
"""Tables that loggers write beside their metrics: TestTubeLogger's hyperparameters."""
TABLE_SUFFIXES = frozenset({".csv", ".log", ".tsv"})
DB_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
MLFLOW_DB = "mlflow.db"
"""MLflow's default SQLite store: an error when it is no store; other ``*.db`` files are skipped."""
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})


@dataclass
class Found:
    """One run to read.

    Attributes:
        kind: the reader it needs.
        folder: the run folder (its config lives there).
        files: the log files (event files of the folder, the table, or the MLflow run folder).
        rel: ``Run.path``: the run folder (or a table file) relative to the PATH given.

    Example:
        >>> Found("keras_csv", Path("logs"), [Path("logs/history.csv")], "history.csv").kind
        'keras_csv'
    """

    kind: Kind
    folder: Path
    files: list[Path]
    rel: str


def _rel(path: Path, top: Path) -> str:
    rel = os.path.relpath(path, top)
    return Path(rel).as_posix()


def _head(path: Path, size: int = 4096) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def sniff_table(path: Path) -> TableKind:
    """Which CSV logger wrote ``path``, judged from its first rows by
    :func:`~lightreg.diagnose.readers.table.sniff`.

    Raises:
        LogReadError: the file is empty, binary, or not a metrics table.

    Example:
        >>> sniff_table(Path("tests/fixtures/readers/lightning_csv/version_0/metrics.csv"))
        'lightning_csv'
    """
    try:
        head = _head(path, HEAD_BYTES)
    except PermissionError:
        raise LogReadError("permission denied") from None
    if not head.strip():
        raise LogReadError("empty file")
    return sniff(decode_head(head), complete=len(head) < HEAD_BYTES).kind


def _is_mlflow_run(folder: Path, names: list[str]) -> bool:
    return "metrics" in names and ("meta.yaml" in names or "params" in names)


def _is_mlflow_db(path: Path) -> bool:
    from lightreg.diagnose.readers.mlflow_sqlite import is_mlflow_store  # sqlite3 only if needed

    return is_mlflow_store(path)


def _is_event_file(path: Path) -> bool:
    if "tfevents" in path.name:
        return True
    if path.suffix or path.name.startswith("."):
        return False
    try:
        return looks_like_records(_head(path, 12))
    except OSError:
        return False


def _classify(path: Path, folder_rel: str, top: Path, strict: bool) -> Found | ReadError | None:
    """A table file: a run, an error (a candidate that is no metrics table), or None (skip)."""
    rel = _rel(path, top)
    try:
        kind = sniff_table(path)
    except LogReadError as err:
        return ReadError(rel, str(err)) if strict else None
    except OSError as err:
        return ReadError(rel, f"unreadable: {err.strerror or type(err).__name__}")
    if kind == "lightning_csv":
        return Found(kind, path.parent, [path], folder_rel if path.name == "metrics.csv" else rel)
    return Found(kind, path.parent, [path], rel)


def _scan_folder(folder: Path, names: list[str], top: Path) -> list[Found | ReadError]:
    rel = _rel(folder, top)
    out: list[Found | ReadError] = []
    events: list[Path] = []
    for name in sorted(names):
        path = folder / name
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if name in NOT_METRICS:
            continue
        if suffix in DB_SUFFIXES:
            if name == MLFLOW_DB or _is_mlflow_db(path):
                out.append(Found("mlflow_sqlite", folder, [path], _rel(path, top)))
            continue
        if suffix in TABLE_SUFFIXES and "tfevents" not in name:
            strict = name in CANDIDATE_NAMES or suffix == ".csv"
            found = _classify(path, rel, top, strict)
            if found is not None:
                out.append(found)
        elif _is_event_file(path):
            events.append(path)
    if events:
        out.append(Found("tensorboard", folder, events, rel))
    return out


def _keras_tensorboard(folder: Path, dirnames: list[str], top: Path) -> Found | None:
    """The run of Keras' ``TensorBoard`` callback: event files right in ``train/`` (and in
    ``validation/``), or None."""
    files: dict[str, list[Path]] = {}
    for sub in KERAS_FOLDERS:
        if sub in dirnames:
            try:
                paths = sorted((folder / sub).iterdir())
            except OSError:
                continue
            files[sub] = [p for p in paths if p.is_file() and _is_event_file(p)]
    if not files.get("train"):
        return None
    return Found(
        "keras_tensorboard", folder, [p for f in files.values() for p in f], _rel(folder, top)
    )


def _walk(top: Path, errors: list[ReadError]) -> Iterator[tuple[Path, list[str], list[str]]]:
    """Like ``os.walk(top)`` (sorted, the caller prunes the folder names in place), following links.

    Linked folders are walked after every real one, each real folder once; a link out of ``top``
    becomes an error.
    """
    root = os.path.realpath(top)
    seen: set[str] = set()
    stack: list[Path] = [top]
    links: list[Path] = []
    while stack or links:
        folder = stack.pop() if stack else links.pop(0)
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        try:
            with os.scandir(folder) as entries:
                found = sorted((entry.name, _is_dir(entry)) for entry in entries)
        except OSError as err:
            reason = f"unreadable folder: {err.strerror or type(err).__name__}"
            errors.append(ReadError(_rel(folder, top), reason))
            continue
        dirs = [name for name, is_dir in found if is_dir]
        yield folder, dirs, [name for name, is_dir in found if not is_dir]
        real_dirs: list[Path] = []
        for name in dirs:
            path = folder / name
            if not path.is_symlink():
                real_dirs.append(path)
                continue
            target = os.path.realpath(path)
            if os.path.commonpath([root, target]) == root:
                links.append(path)
                continue
            reason = (
                f"symlink to {target}, outside {top}: not followed "
                "(give that folder as a PATH to read it)"
            )
            errors.append(ReadError(_rel(path, top), reason))
        stack.extend(reversed(real_dirs))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def find_runs(top: Path) -> tuple[list[Found], list[ReadError]]:
    """Every run under ``top`` (a file or a folder, searched recursively), and the errors met.

    Example:
        >>> find_runs(Path("no/such/logs"))
        ([], [ReadError(path='no/such/logs', reason='no such file or folder')])
    """
    if not top.exists():
        return [], [ReadError(str(top), "no such file or folder")]
    if top.is_file():
        return _find_file(top)
    found: list[Found] = []
    errors: list[ReadError] = []
    for folder, dirnames, filenames in _walk(top, errors):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS]
        if is_run_folder(folder, filenames):
            found.append(Found("wandb", folder, [folder], _rel(folder, top)))
            dirnames[:] = []
            continue
        if _is_mlflow_run(folder, dirnames + filenames):
            found.append(Found("mlflow", folder, [folder], _rel(folder, top)))
            dirnames[:] = [d for d in dirnames if d not in {"metrics", "params", "tags"}]
            continue
        keras = _keras_tensorboard(folder, dirnames, top)
        if keras is not None:
            found.append(keras)
            dirnames[:] = [d for d in dirnames if d not in KERAS_FOLDERS]
        for item in _scan_folder(folder, filenames, top):
            (errors if isinstance(item, ReadError) else found).append(item)
    return found, errors


def _find_file(path: Path) -> tuple[list[Found], list[ReadError]]:
    """A PATH that is one file: it is the run (``rel`` is ".") and must be a log."""
    if path.suffix.lower() in TABLE_SUFFIXES and "tfevents" not in path.name:
        item = _classify(path, ".", path, strict=True)
        if isinstance(item, Found):
            item.rel = "."
            return [item], []
        return [], [ReadError(".", item.reason if item else "not a metrics log")]
    if _is_event_file(path):
        return [Found("tensorboard", path.parent, [path], ".")], []
    if path.suffix == ".wandb":
        return [Found("wandb", path.parent, [path.parent], ".")], []
    if path.suffix.lower() in DB_SUFFIXES and (path.name == MLFLOW_DB or _is_mlflow_db(path)):
        return [Found("mlflow_sqlite", path.parent, [path], path.name)], []
    return [], [ReadError(".", "not a metrics log: unknown file type")]
