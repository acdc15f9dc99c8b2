"""Read an MLflow file-store run: ``mlruns/<experiment>/<run>/metrics/<key>``.

Each metric file holds lines ``timestamp value step`` (old files: ``timestamp value``, step 0); a
``/`` in a key makes subfolders, and the key keeps it (``train/loss``). Steps map to epochs through
an ``epoch`` metric when there is one, else steps are read as epochs for metrics that look
per-epoch. ``params/`` (one file per param) and the run name from ``meta.yaml`` become the config
(``config_source="hparams"``). Per-step metrics get ``Run.step_series["epoch"]`` (step -> epoch):
see :func:`~lightreg.diagnose.readers.series.attach_step_epochs`.

Example:
    >>> import tempfile
    >>> run_dir = Path(tempfile.mkdtemp()) / "0" / "abc"
    >>> (run_dir / "metrics").mkdir(parents=True)
    >>> _ = (run_dir / "metrics" / "val_loss").write_text("1700000000000 0.9 0\\n1700000001000 0.7 1\\n")
    >>> read_mlflow(run_dir, "0/abc").series
    {'val_loss': {0: 0.9, 1: 0.7}}
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lightreg.diagnose.readers.hparams import load_config
from lightreg.diagnose.readers.limits import MAX_FILE_BYTES, TooLarge, check_size, file_size
from lightreg.diagnose.readers.series import (
    STEPS_AS_EPOCHS,
    MetricStream,
    attach_step_epochs,
    looks_per_step,
)
from lightreg.diagnose.run import LogFormat, LogReadError, Run

MAX_LINE_CHARS = 4096
"""Metric lines are read at most this long (a real one is ``timestamp value step``)."""
BATCH_POINTS = 65536
"""Lines of a metric file added to its stream at a time."""
MAX_PARAM_BYTES = 64 * 1024
"""A larger param file is not read: MLflow itself caps a param value at 6,000 characters."""


class _MetricFile:
    """One metric file, streamed line by line (``timestamp value [step]``) as often as needed."""

    def __init__(self, path: Path, key: str, max_bytes: int) -> None:
        self.path, self.key, self.max_bytes = path, key, max_bytes
        self.bad = 0

    def points(self) -> Iterator[tuple[int, float]]:
        """(step, value) of each well-formed line; ``bad`` counts the others."""
        check_size(self.path, self.max_bytes)
        self.bad = 0
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            while line := handle.readline(MAX_LINE_CHARS):  # a longer line: malformed pieces
                parts = line.split()
                if not parts:
                    continue
                try:
                    value = float(parts[1])
                    step = int(parts[2]) if len(parts) > 2 else 0
                except (ValueError, IndexError):
                    self.bad += 1
                    continue
                yield step, value


class _EpochIndex:
    """The ``epoch`` metric as sorted steps and their epochs (at a step logged twice, the last)."""

    def __init__(self, points: Iterable[tuple[int, float]]) -> None:
        steps: list[int] = []
        epochs: list[int] = []
        ordered = True
        for step, value in points:
            if not math.isfinite(value):
                continue
            if steps and step == steps[-1]:
                epochs[-1] = int(value)
                continue
            ordered = ordered and (not steps or step > steps[-1])
            steps.append(step)
            epochs.append(int(value))
        if not ordered:
            latest = dict(zip(steps, epochs, strict=True))
            steps = sorted(latest)
            epochs = [latest[step] for step in steps]
        self.steps, self.epochs = steps, epochs

    def known(self) -> dict[int, int]:
        """Step -> epoch where the epoch metric was logged."""
        return dict(zip(self.steps, self.epochs, strict=True))

    def at(self, step: int) -> tuple[int | None, bool]:
        """(the epoch of a value at ``step``, whether the epoch metric was logged at ``step``)."""
        i = bisect.bisect_right(self.steps, step) - 1
        if i < 0:
            return None, False
        return self.epochs[i], self.steps[i] == step


def _not_read(key: str, err: LogReadError | OSError) -> str:
    reason = str(err) if isinstance(err, LogReadError) else err.strerror or type(err).__name__
    return f"metric {key} not read: {reason}"


def _no_epoch(step: int) -> tuple[int | None, bool]:
    return None, False


def _step_is_epoch(step: int) -> tuple[int | None, bool]:
    return step, False


def _stream(
    file: MetricSource, epoch_of: Callable[[int], tuple[int | None, bool]]
) -> tuple[MetricStream, bool]:
    """One metric file as a :class:`MetricStream`, and whether any value had an epoch logged at
    its very step."""
    stream = MetricStream()
    shares = False
    points = file.points()
    while batch := list(islice(points, BATCH_POINTS)):
        steps = [step for step, _ in batch]
        found = list(map(epoch_of, steps))
        shares = shares or any(here for _, here in found)
        stream.add_many(steps, [at for at, _ in found], [value for _, value in batch])
    return stream, shares


def _read_metrics(
    files: list[MetricSource], epoch: _EpochIndex | None, warnings: list[str]
) -> dict[str, tuple[MetricStream, bool]]:
    """Stream every metric file: ``{key: (stream, whether its epochs count)}``.

    With an epoch metric, a metric that never shares a step with it gets no epochs. Without one,
    a first pass counts each file's values to tell the per-step metrics
    (:func:`~lightreg.diagnose.readers.series.looks_per_step`); the others read steps as epochs.
    """
    rules: dict[str, Callable[[int], tuple[int | None, bool]]] = {}
    if epoch is not None:
        rules = {file.key: epoch.at for file in files}
    else:
        counts: dict[str, int] = {}
        for file in files:
            try:
                counts[file.key] = sum(1 for _ in file.points())
            except (LogReadError, OSError) as err:
                warnings.append(_not_read(file.key, err))
        sparsest = min((n for k, n in counts.items() if n and not k.endswith("_step")), default=0)
        for key, count in counts.items():
            per_step = looks_per_step(key, count, sparsest)
            rules[key] = _no_epoch if per_step else _step_is_epoch
    streams: dict[str, tuple[MetricStream, bool]] = {}
    for file in files:
        if file.key not in rules:
            continue
        try:
            stream, shares = _stream(file, rules[file.key])
        except (LogReadError, OSError) as err:
            warnings.append(_not_read(file.key, err))
            continue
        if file.bad:
            warnings.append(f"metric {file.key}: {file.bad} malformed lines skipped")
        if stream.points.seen:
            streams[file.key] = (stream, shares or epoch is None)
    return streams


def _config(run_dir: Path, warnings: list[str]) -> dict[str, Any] | None:
    config: dict[str, Any] = {}
    params = run_dir / "params"
    if params.is_dir():
        for path in sorted(p for p in params.rglob("*") if p.is_file()):
            key = path.relative_to(params).as_posix()
            try:
                size = file_size(path)
                if size > MAX_PARAM_BYTES:
                    raise TooLarge(f"param {key}", size, MAX_PARAM_BYTES, "not read")
                config[key] = path.read_text(encoding="utf-8")
            except LogReadError as err:
                warnings.append(str(err) if isinstance(err, TooLarge) else f"param {key}: {err}")
            except (OSError, UnicodeDecodeError) as err:
                warnings.append(f"param {path.name} not read: {type(err).__name__}")
    meta = run_dir / "meta.yaml"
    if meta.is_file():
        try:
            name = load_config(meta).get("run_name")
        except LogReadError as err:
            warnings.append(f"config not read: {err}")
        else:
            if name is not None:
                config.setdefault("run_name", name)
    return config or None


def read_mlflow(run_dir: Path, rel: str, max_bytes: int = MAX_FILE_BYTES) -> Run:
    """Read one MLflow run folder into a :class:`Run` at ``rel``, each metric file line by line.

    A metric file over ``max_bytes`` is skipped with a warning, and so is a param file over
    :data:`MAX_PARAM_BYTES`.

    Raises:
        LogReadError: no metric file holds a value.

    Example:
        >>> read_mlflow(Path("no/such/run"), "run")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: no metric values
    """
    metrics = run_dir / "metrics"
    found = sorted(p for p in metrics.rglob("*") if p.is_file()) if metrics.is_dir() else []
    files = [_MetricFile(p, p.relative_to(metrics).as_posix(), max_bytes) for p in found]
    run = metrics_run(rel, files)
    run.config = _config(run_dir, run.warnings)
    run.config_source = "hparams" if run.config is not None else None
    return run


@runtime_checkable
class MetricSource(Protocol):
    """One MLflow metric of a run, wherever it is stored: its key, its ``(step, value)`` points
    in logging order (iterable more than once), and how many malformed ones the last pass met.

    Example:
        >>> isinstance(_MetricFile(Path("m/loss"), "loss", 10), MetricSource)
        True
    """

    key: str
    bad: int

    def points(self) -> Iterator[tuple[int, float]]:
        """(step, value) of each point."""
        ...


def metrics_run(rel: str, sources: list[MetricSource], fmt: LogFormat = "mlflow") -> Run:
    """A run at ``rel`` from its metrics (an MLflow file store or database, a W&B history): the
    ``epoch`` metric maps steps to epochs, else steps are read as epochs for metrics that look
    per-epoch. ``fmt`` is the run's format.

    Raises:
        LogReadError: no metric holds a value.

    Example:
        >>> metrics_run("run", [])
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: no metric values
    """
    warnings: list[str] = []
    sources = list(sources)
    epoch: _EpochIndex | None = None
    for source in [f for f in sources if f.key == "epoch"]:
        sources.remove(source)
        try:
            epoch = _EpochIndex(source.points())
        except (LogReadError, OSError) as err:
            warnings.append(_not_read(source.key, err))
        if source.bad:
            warnings.append(f"metric epoch: {source.bad} malformed lines skipped")
    if epoch is not None and not epoch.steps:
        epoch = None
    streams = _read_metrics(sources, epoch, warnings)
    if not streams:
        raise LogReadError("no metric values")
    if epoch is None:
        warnings.append(f"no epoch metric: {STEPS_AS_EPOCHS}")
    run = Run(path=rel, format=fmt, warnings=warnings)
    for name, (stream, epochs_count) in streams.items():
        if epochs_count:
            series, steps = stream.split(name)
        else:
            steps_kept, _, values = stream.points.columns
            series, steps = None, dict(zip(steps_kept, values, strict=True))
        if series is not None:
            run.series[name] = series
        if steps is not None:
            run.step_series[name] = steps
            note = stream.thinning_note(name)
            if note is not None:
                run.warnings.append(note)
    attach_step_epochs(run, None if epoch is None else epoch.known())
    return run
