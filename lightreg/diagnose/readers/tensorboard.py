"""Read TensorBoard event files (``events.out.tfevents.*``) into a :class:`Run`.

All event files of a run folder are merged, in name (= time) order; Keras' ``train/`` and
``validation/`` folders are one run (:func:`keras_tag`). Scalars come as
``simple_value`` (torch's ``add_scalar``) or as a scalar float/double tensor (``new_style=True``,
TF2 summaries). ``hp_metric`` and ``_hparams_/*`` are ignored.

Epochs: with an ``epoch`` tag (Lightning logs one), a value belongs to the epoch logged at its step,
or else to the latest epoch logged before it; a tag that never shares a step with ``epoch`` stays
per-step. Without an ``epoch`` tag, steps are read as epochs for tags that look per-epoch
(:func:`~lightreg.diagnose.readers.series.looks_per_step`), and a warning says so. Every per-step
value gets an epoch in ``Run.step_series["epoch"]`` (step -> epoch), from the ``epoch`` tag or,
without one, from the steps of the epoch-level values
(:func:`~lightreg.diagnose.readers.series.attach_step_epochs`).

Memory: a file is read in chunks (:func:`~lightreg.diagnose.readers.tfrecord.read_records`), never
whole, and one over ``max_bytes`` is refused unread; per-step tags keep an even sample past
:data:`~lightreg.diagnose.readers.series.MAX_STEP_POINTS` values, as the CSV readers do.

Speed: the records are framed in one Python loop, and everything else is vectorized with numpy:
CRCs (:mod:`~lightreg.diagnose.readers.crc32c`) and the decoding of the usual scalar event
layout. Events of any other layout (the first of each tag, with its metadata; several values per
event; tensors) go through the small wire decoder in :mod:`~lightreg.diagnose.readers.protowire`,
which reads a value's tag first and decodes nothing else for tags that are not kept.

Example:
    >>> folder = Path("tests/fixtures/readers/lightning_tb/version_0")
    >>> run = read_tensorboard(folder, sorted(folder.glob("events.out.tfevents.*")), ".")
    >>> sorted(run.series), sorted(run.step_series)
    (['train_loss_epoch', 'val_loss'], ['epoch', 'lr-SGD', 'train_loss_step'])
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING

from lightreg.diagnose.readers.hparams import find_config
from lightreg.diagnose.readers.limits import MAX_FILE_BYTES, open_log
from lightreg.diagnose.readers.protowire import FIXED32, FIXED64, LENGTH, VARINT, WireError, fields
from lightreg.diagnose.readers.series import (
    IGNORED,
    STEPS_AS_EPOCHS,
    attach_step_epochs,
    is_per_step,
    looks_per_step,
    thinning_note,
    thinning_stride,
)
from lightreg.diagnose.readers.tfrecord import Records, looks_like_records, read_records
from lightreg.diagnose.run import LogReadError, Run

if TYPE_CHECKING:
    import numpy as np

Columns = tuple["np.ndarray", "np.ndarray"]
"""A tag's (steps: int64, values: float64) in logging order."""

# Bytes between a value's tag and its final 4 float32 bytes, for the scalar layouts decoded in bulk:
# simple_value; a DT_FLOAT tensor with packed float_val, without and with an empty tensor_shape.
_LAYOUTS = (b"\x15", b"\x42\x06\x08\x01\x2a\x04", b"\x42\x08\x08\x01\x12\x00\x2a\x04")
_HASH_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)
_DT_FLOAT, _DT_DOUBLE = 1, 2
_VARINT_BYTES = 5
"""Steps up to 2**35 are decoded in bulk."""


def _kept(tag: str) -> bool:
    return not tag.startswith("_hparams_/") and (tag == "epoch" or tag not in IGNORED)


def _tag_names(buf: np.ndarray, starts: np.ndarray, width: int) -> tuple[np.ndarray, list[str]]:
    """Group tags of equal byte ``width``: per-row ids into the returned names (-1: recheck)."""
    import numpy as np

    rows = np.lib.stride_tricks.sliding_window_view(buf, width)[starts]
    padded = np.zeros((len(rows), -(-width // 8) * 8), dtype=np.uint8)
    padded[:, :width] = rows
    words = padded.view("<u8")
    key = np.zeros(len(rows), dtype=np.uint64)
    for k in range(words.shape[1]):
        key ^= words[:, k] * np.uint64(_HASH_MULTIPLIERS[k % 4] + 2 * k)
    _, first, ids = np.unique(key, return_index=True, return_inverse=True)
    ids = ids.ravel()
    ids[~(rows == rows[first][ids]).all(axis=1)] = -1  # a hash collision: decode those slowly
    names = [rows[i].tobytes().decode("utf-8", "replace") for i in first.tolist()]
    return ids, names


def _bulk(rec: Records) -> tuple[np.ndarray, dict[str, Columns], dict[str, np.ndarray]]:
    """Decode the usual one-scalar events at once; return (done mask, columns, record indices)."""
    import numpy as np

    buf, s, n = rec.buf, rec.starts, rec.lengths
    e = s + n
    windows = np.lib.stride_tricks.sliding_window_view
    ok = (n >= 20) & (buf[s] == 0x09)  # wall_time first
    p = s + 9
    has_step = buf[p] == 0x10
    steps = np.zeros(len(s), dtype=np.int64)
    size = np.zeros(len(s), dtype=np.int64)
    going = has_step.copy()
    for k in range(_VARINT_BYTES):  # the step varint; longer ones are decoded slowly
        byte = buf[p + 1 + k]
        steps |= np.where(going, (byte & 0x7F).astype(np.int64) << (7 * k), 0)
        size += going
        going &= byte >= 0x80
    ok &= ~going
    q = np.where(ok, p + has_step + size, s)
    summary_len = buf[q + 1].astype(np.int64)
    value_len = buf[q + 3].astype(np.int64)
    ok &= (buf[q] == 0x2A) & (summary_len < 128) & (q + 2 + summary_len == e)
    ok &= (buf[q + 2] == 0x0A) & (value_len == summary_len - 2)
    ok &= (buf[q + 4] == 0x0A) & (buf[q + 5] < 128) & (buf[q + 5] > 0)
    tag_start = q + 6
    tag_end = tag_start + buf[q + 5]
    rest = e - tag_end
    done = np.zeros(len(s), dtype=bool)
    for layout in _LAYOUTS:
        cand = np.flatnonzero(ok & (rest == len(layout) + 4))
        if len(cand):
            found = windows(buf, len(layout))[tag_end[cand]] == np.frombuffer(layout, np.uint8)
            done[cand[found.all(axis=1)]] = True
    idx = np.flatnonzero(done)
    values = windows(buf, 4)[e[idx] - 4].copy().view("<f4").ravel().astype(np.float64)
    widths = (tag_end - tag_start)[idx]
    columns: dict[str, Columns] = {}
    records: dict[str, np.ndarray] = {}
    for width in np.unique(widths).tolist():
        sel = np.flatnonzero(widths == width)
        ids, names = _tag_names(buf, tag_start[idx[sel]], width)
        done[idx[sel[ids < 0]]] = False
        order = np.argsort(ids, kind="stable")
        bounds = np.searchsorted(ids[order], np.arange(len(names) + 1))
        for k, name in enumerate(names):
            if not _kept(name):
                continue
            rows = sel[order[bounds[k] : bounds[k + 1]]]
            columns[name] = (steps[idx[rows]], values[rows])
            records[name] = idx[rows]
    return done, columns, records


def _scalar_tensor(data: bytes, start: int, end: int) -> float | None:
    """The value of a TensorProto holding one float or double, else None."""
    dtype, dims, found = 0, 0, []
    for number, wire, value in fields(data, start, end):
        if number == 1 and wire == VARINT:
            dtype = value
        elif number == 2 and wire == LENGTH:
            dims += sum(1 for d, w, v in fields(data, *value) if d == 2 and w == LENGTH)
        elif number == 4 and wire == LENGTH:
            found.append(data[value[0] : value[1]])
        elif number in (5, 6) and wire in (LENGTH, FIXED32, FIXED64):
            if wire == LENGTH:
                found.append(data[value[0] : value[1]])
            else:
                found.append(value.to_bytes(4 if wire == FIXED32 else 8, "little"))
    if dims or len(found) != 1:
        return None
    fmt = {_DT_FLOAT: "<f", _DT_DOUBLE: "<d"}.get(dtype)
    if fmt is None or len(found[0]) != struct.calcsize(fmt):
        return None
    return struct.unpack(fmt, found[0])[0]


def _event_scalars(data: bytes, start: int, end: int) -> list[tuple[str, int, float]]:
    """(tag, step, value) for each kept scalar in one Event."""
    step, summary = 0, None
    for number, wire, value in fields(data, start, end):
        if number == 2 and wire == VARINT:
            step = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 5 and wire == LENGTH:
            summary = value
    out: list[tuple[str, int, float]] = []
    for number, wire, span in fields(data, *summary) if summary else ():
        if number != 1 or wire != LENGTH:
            continue
        tag, scalar = None, None
        for field_no, field_wire, value in fields(data, *span):
            if field_no == 1 and field_wire == LENGTH:
                tag = data[value[0] : value[1]].decode("utf-8", "replace")
                if not _kept(tag):
                    break
            elif field_no == 2 and field_wire == FIXED32:
                scalar = struct.unpack("<f", value.to_bytes(4, "little"))[0]
            elif field_no == 8 and field_wire == LENGTH:
                scalar = _scalar_tensor(data, *value)
        if tag is not None and scalar is not None and _kept(tag):
            out.append((tag, step, scalar))
    return out


def _decode(rec: Records) -> tuple[dict[str, Columns], int]:
    """The kept scalars of one chunk's records: ``({tag: (steps, values)}, undecodable events)``."""
    import numpy as np

    done, columns, records = _bulk(rec)
    slow: dict[str, list[tuple[int, int, float]]] = {}
    bad = 0
    for i in np.flatnonzero(~done).tolist():
        start = int(rec.starts[i])
        try:
            for tag, step, value in _event_scalars(rec.data, start, start + int(rec.lengths[i])):
                slow.setdefault(tag, []).append((i, step, value))
        except WireError:
            bad += 1
    for tag, points in slow.items():
        index, steps, values = (np.array(col) for col in zip(*points, strict=True))
        if tag in columns:
            index = np.concatenate([records[tag], index])
            order = np.argsort(index, kind="stable")
            steps = np.concatenate([columns[tag][0], steps])[order]
            values = np.concatenate([columns[tag][1], values])[order]
        columns[tag] = (steps.astype(np.int64), values.astype(np.float64))
    return columns, bad


def read_event_file(
    path: Path, max_bytes: int = MAX_FILE_BYTES
) -> tuple[dict[str, Columns], list[str]]:
    """Read one event file, chunk by chunk: ``({tag: (steps, values)}, warnings)``.

    Raises:
        LogReadError: the file is empty, unreadable, over ``max_bytes``, or not a TFRecord file.

    Example:
        >>> read_event_file(Path("no/such/events.out.tfevents.1"))
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    import numpy as np

    handle, size = open_log(path, max_bytes)
    parts: dict[str, list[Columns]] = {}
    warnings: list[str] = []
    sound = bad = 0
    with handle:
        if not size:
            raise LogReadError("empty file")
        if not looks_like_records(handle.read(12)):
            raise LogReadError("not a TensorBoard event file: no valid first record")
        for rec in read_records(handle, size, warnings):
            sound += len(rec.starts)
            columns, undecodable = _decode(rec)
            bad += undecodable
            for tag, cols in columns.items():
                parts.setdefault(tag, []).append(cols)
    if not sound:
        raise LogReadError(warnings[0] if warnings else "not a TensorBoard event file")
    if bad:
        warnings.append(f"{bad} undecodable events skipped")
    merged = {
        tag: (np.concatenate([s for s, _ in cols]), np.concatenate([v for _, v in cols]))
        for tag, cols in parts.items()
    }
    return merged, warnings


def _place(
    run: Run, name: str, steps: np.ndarray, values: np.ndarray, epochs: np.ndarray | None
) -> None:
    """Put one tag in the run: a series when its epochs say it is per-epoch, else a step series."""
    import numpy as np

    if epochs is not None:
        valid = epochs >= 0
        found, counts = np.unique(epochs[valid], return_counts=True)
        if not is_per_step(name, dict(zip(found.tolist(), counts.tolist(), strict=True))):
            run.series[name] = dict(
                zip(epochs[valid].tolist(), values[valid].tolist(), strict=True)
            )
            return
    stride = thinning_stride(len(steps))
    if stride > 1:  # the sample MetricStream keeps: every stride-th value
        run.warnings.append(thinning_note(name, len(steps), stride))
        steps, values = steps[::stride], values[::stride]
    run.step_series[name] = dict(zip(steps.tolist(), values.tolist(), strict=True))


def _fill(run: Run, columns: dict[str, Columns], steps_are_epochs: bool = False) -> None:
    """Sort the tags of a run into series and step series (see the module docstring).

    ``steps_are_epochs``: the writer logs per-epoch values at step = epoch (Keras), so reading
    them so needs no warning.
    """
    import numpy as np

    epoch = columns.pop("epoch", None)
    if epoch is not None and not np.isfinite(epoch[1]).any():
        epoch = None  # an epoch tag without a number is no epoch record
    if epoch is None:
        sparsest = min(
            (len(s) for n, (s, _) in columns.items() if not n.endswith("_step")), default=0
        )
        if not steps_are_epochs:
            run.warnings.append(f"no epoch tag: {STEPS_AS_EPOCHS}")
        for name, (steps, values) in columns.items():
            per_step = looks_per_step(name, len(steps), sparsest)
            _place(run, name, steps, values, None if per_step else steps)
        attach_step_epochs(run, None)
        return
    order = np.argsort(epoch[0], kind="stable")
    at, value = epoch[0][order], epoch[1][order]
    finite = np.isfinite(value)
    at, value = at[finite], value[finite].astype(np.int64)
    last = np.append(at[1:] != at[:-1], True)  # the last epoch logged at each step
    at, value = at[last], value[last]
    for name, (steps, values) in columns.items():
        epochs = None
        if np.isin(steps, at).any():
            pos = np.searchsorted(at, steps, side="right") - 1
            epochs = np.where(pos >= 0, value[np.maximum(pos, 0)], -1)
        _place(run, name, steps, values, epochs)
    if not run.step_series:
        return
    # what the epoch tag says about the per-step values: the epoch at each of their steps where
    # it was logged, and each epoch's last step (not the whole tag: it may be as long as the log)
    ends = np.append(value[1:] != value[:-1], True)
    known = dict(zip(at[ends].tolist(), value[ends].tolist(), strict=True))
    wanted = np.array(sorted({s for points in run.step_series.values() for s in points}))
    hit = np.isin(at, wanted)
    known.update(zip(at[hit].tolist(), value[hit].tolist(), strict=True))
    attach_step_epochs(run, known)


KERAS_FOLDERS = ("train", "validation")
"""The sub-folders in which Keras' ``TensorBoard`` callback writes one run's event files."""


def keras_tag(path: Path, tag: str) -> str | None:
    """The name a tag of Keras' ``TensorBoard`` callback gets: its ``CSVLogger`` name, or None.

    Keras writes ``epoch_<metric>`` at step = epoch in ``train/`` and, for the validation values,
    in ``validation/`` (which become ``val_<metric>``, as in Keras' own logs);
    ``evaluation_<metric>_vs_iterations`` repeats the validation values at the iteration step and
    is left out. Other tags keep their name (``validation/`` before those of ``validation/``).

    Example:
        >>> keras_tag(Path("logs/validation/events.out.tfevents.1"), "epoch_loss")
        'val_loss'
        >>> keras_tag(Path("logs/train/events.out.tfevents.1"), "epoch_learning_rate")
        'learning_rate'
        >>> keras_tag(Path("logs/validation/x"), "evaluation_loss_vs_iterations") is None
        True
    """
    validation = path.parent.name == "validation"
    if validation and tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
        return None
    if tag.startswith("epoch_"):
        name = tag.removeprefix("epoch_")
        return f"val_{name}" if validation else name
    return f"validation/{tag}" if validation else tag


def read_tensorboard(
    folder: Path,
    files: list[Path],
    rel: str,
    max_bytes: int = MAX_FILE_BYTES,
    keras: bool = False,
) -> Run:
    """Read and merge the event ``files`` of one run folder into a :class:`Run` at ``rel``.

    A file that can't be read (or is over ``max_bytes``) costs a warning while another file of
    the run gives values. ``keras``: the files are those of Keras' ``TensorBoard`` callback, in
    ``folder/train`` and ``folder/validation``; tags are renamed by :func:`keras_tag` and their
    steps are epochs.

    Raises:
        LogReadError: no file held a usable scalar.

    Example:
        >>> read_tensorboard(Path("."), [Path("no/such/events.out.tfevents.1")], ".")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    import numpy as np

    merged: dict[str, list[Columns]] = {}
    warnings: list[str] = []
    problems: list[str] = []
    for path in sorted(files, key=lambda p: (p.parent.name, p.name)):
        name = f"{path.parent.name}/{path.name}" if keras else path.name
        prefix = f"{name}: " if len(files) > 1 else ""
        try:
            columns, file_warnings = read_event_file(path, max_bytes)
        except LogReadError as err:
            problems.append(f"{prefix}{err}")
            continue
        warnings.extend(prefix + w for w in file_warnings)
        for tag, cols in columns.items():
            kept = keras_tag(path, tag) if keras else tag
            if kept is not None:
                merged.setdefault(kept, []).append(cols)
    if not any(tag != "epoch" for tag in merged):
        if problems or warnings:
            raise LogReadError("; ".join(problems + warnings))
        raise LogReadError("no scalar values")
    run = Run(path=rel, format="tensorboard", warnings=problems + warnings)
    _fill(
        run,
        {
            t: tuple(np.concatenate(c) for c in zip(*parts, strict=True))
            for t, parts in merged.items()
        },
        steps_are_epochs=keras,
    )
    run.config, run.config_source, config_warnings = find_config(folder)
    run.warnings.extend(config_warnings)
    return run
