"""Read a local Weights & Biases run folder (``wandb/run-*/``, ``wandb/offline-run-*/``).

A run's ``run-<id>.wandb`` file is W&B's transaction log: a 7-byte header (``:W&B``, magic
``0xBEE1``, version 0), then LevelDB-log framed chunks (32 KiB blocks, each chunk ``crc32, length,
type``; a record longer than a block is cut into first / middle / last chunks), each record one
``wandb.proto`` ``Record`` message. The framing is read here, chunk by chunk, never the whole
file; the records are decoded with the ``wandb`` package's own protobuf classes
(``wandb.proto.wandb_internal_pb2.Record``), imported only when a W&B run is found: it is the
optional extra ``lightreg[wandb]``, and without it the run is one line saying what to install.

Kept: ``history`` records (one row per ``wandb.log``: the numeric values; the step is Lightning's
``trainer/global_step`` when the row has one, else W&B's ``_step``; keys starting with ``_`` are
W&B's own), ``config`` records (the run's config, ``config_source="hparams"``) and the run's
display name (``run_name`` in the config). Steps map to epochs through Lightning's ``epoch``
values as for MLflow (:func:`~lightreg.diagnose.readers.mlflow.metrics_run`).

Example:
    >>> folder = next(Path("tests/fixtures/readers/wandb/wandb").glob("offline-run-*"))
    >>> run = read_wandb(folder, ".")
    >>> run.format, sorted(run.series), run.config["run_name"]
    ('wandb', ['train_loss_epoch', 'val_loss'], 'sgd-lr0.05')
"""

from __future__ import annotations

import json
import struct
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lightreg.diagnose.readers.limits import MAX_FILE_BYTES, open_log
from lightreg.diagnose.readers.mlflow import metrics_run
from lightreg.diagnose.run import LogReadError, Run

FILE_HEADER = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
"""The first 7 bytes of a ``.wandb`` file."""
BLOCK_BYTES = 32768
CHUNK_HEADER = struct.Struct("<IHB")
"""A chunk's CRC-32 (of its type byte, then its data), data length and type."""
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
RUN_PREFIXES = ("run-", "offline-run-")
"""Names of W&B run folders."""
INSTALL = "a W&B run: reading it needs the wandb package: pip install 'lightreg[wandb]'"
STEP_KEY = "trainer/global_step"
"""The step Lightning's ``WandbLogger`` logs with every row."""


def is_run_folder(folder: Path, names: list[str]) -> bool:
    """Whether ``folder`` (holding files ``names``) is a W&B run folder with its ``.wandb`` log.

    Example:
        >>> is_run_folder(Path("wandb/offline-run-20260101_000000-abc"), ["run-abc.wandb"])
        True
        >>> is_run_folder(Path("wandb/files"), ["run-abc.wandb"])
        False
    """
    return folder.name.startswith(RUN_PREFIXES) and any(n.endswith(".wandb") for n in names)


def _chunks(handle: BinaryIO, warnings: list[str]) -> Iterator[bytes]:
    """The records of a ``.wandb`` file, their chunks joined; a bad chunk ends the log."""
    if handle.read(len(FILE_HEADER)) != FILE_HEADER:
        raise LogReadError("not a W&B run log: no :W&B header")
    offset = len(FILE_HEADER)
    block = handle.read(BLOCK_BYTES - offset)
    parts: list[bytes] = []
    pos = 0
    while block:
        if len(block) - pos < CHUNK_HEADER.size:  # the block's zero padding
            offset += len(block)
            block, pos = handle.read(BLOCK_BYTES), 0
            continue
        crc, length, kind = CHUNK_HEADER.unpack_from(block, pos)
        if kind == 0 and length == 0:  # zeros: padding to the block's end
            pos = len(block)
            continue
        data = block[pos + CHUNK_HEADER.size : pos + CHUNK_HEADER.size + length]
        if len(data) < length or zlib.crc32(data, zlib.crc32(bytes([kind]))) != crc:
            warnings.append(
                f"bad chunk at byte {offset + pos:,} (run killed mid-write?): rest skipped"
            )
            return
        pos += CHUNK_HEADER.size + length
        if kind in (FULL, FIRST):
            parts = [data]
        elif parts and kind in (MIDDLE, LAST):
            parts.append(data)
        if kind in (FULL, LAST) and parts:
            yield b"".join(parts)
            parts = []


def _json(text: str) -> Any:
    """A JSON value, or the text itself when it is no JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _number(value_json: str) -> float | None:
    value = _json(value_json)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class _Points:
    """One metric's (step, value) points, kept in compact arrays."""

    def __init__(self, key: str) -> None:
        self.key, self.bad = key, 0
        self.steps, self.values = array("q"), array("d")

    def points(self) -> Iterator[tuple[int, float]]:
        return zip(self.steps, self.values, strict=True)


def _item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_wandb(folder: Path, rel: str, max_bytes: int = MAX_FILE_BYTES) -> Run:
    """Read the W&B run in ``folder`` (its ``*.wandb`` log) into a :class:`Run` at ``rel``.

    Raises:
        LogReadError: wandb is not installed, the log is missing, over ``max_bytes``, not a W&B
            log, or holds no numeric history.

    Example:
        >>> read_wandb(Path("no/such/offline-run-1"), "offline-run-1")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: no .wandb file
    """
    logs = sorted(folder.glob("*.wandb")) if folder.is_dir() else []
    if not logs:
        raise LogReadError("no .wandb file")
    try:
        from wandb.proto.wandb_internal_pb2 import Record
    except ImportError:
        raise LogReadError(INSTALL) from None
    handle, _ = open_log(logs[-1], max_bytes)
    warnings: list[str] = []
    metrics: dict[str, _Points] = {}
    config: dict[str, Any] = {}
    name: str | None = None
    with handle:
        for data in _chunks(handle, warnings):
            record = Record.FromString(data)
            kind = record.WhichOneof("record_type")
            if kind == "history":
                row = {_item_key(item): item.value_json for item in record.history.item}
                step_value = _number(row.get(STEP_KEY, "null"))
                step = int(step_value) if step_value is not None else record.history.step.num
                for key, value_json in row.items():
                    if key.startswith("_") or key == STEP_KEY:
                        continue
                    if (value := _number(value_json)) is not None:
                        points = metrics.setdefault(key, _Points(key))
                        points.steps.append(step)
                        points.values.append(value)
            elif kind == "config":
                for item in record.config.update:
                    if not _item_key(item).startswith("_"):
                        config[_item_key(item)] = _json(item.value_json)
            elif kind == "run" and record.run.display_name:
                name = record.run.display_name
    run = metrics_run(rel, list(metrics.values()), "wandb")
    run.warnings[:0] = warnings
    if name is not None:
        config.setdefault("run_name", name)
    run.config = config or None
    run.config_source = "hparams" if config else None
    return run
