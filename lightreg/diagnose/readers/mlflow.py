"""Read an MLflow file-store run: ``mlruns/<experiment>/<run>/metrics/<key>``.

Each metric file holds lines ``timestamp value step`` (old files: ``timestamp value``, step 0); a
``/`` in a key makes subfolders, and the key keeps it (``train/loss``). Steps map to epochs through
an ``epoch`` metric when there is one, else steps are read as epochs for metrics that look
per-epoch. ``params/`` (one file per param) and the run name from ``meta.yaml`` become the config
(``config_source="hparams"``). Per-step metrics with known epochs give
``Run.step_series["epoch"]`` (step -> epoch).

Example:
    >>> import tempfile
    >>> run_dir = Path(tempfile.mkdtemp()) / "0" / "abc"
    >>> (run_dir / "metrics").mkdir(parents=True)
    >>> _ = (run_dir / "metrics" / "val_loss").write_text("1700000000000 0.9 0\\n1700000001000 0.7 1\\n")
    >>> read_mlflow(run_dir, "0/abc").series
    {'val_loss': {0: 0.9, 1: 0.7}}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lightreg.diagnose.readers.hparams import load_config
from lightreg.diagnose.readers.series import epochs_from_tag, split_points, steps_as_epochs
from lightreg.diagnose.run import LogReadError, Run


def _metric_points(path: Path) -> tuple[list[tuple[int, float]], int]:
    """(step, value) points of one metric file, and the number of malformed lines."""
    points: list[tuple[int, float]] = []
    bad = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            value = float(parts[1])
            step = int(parts[2]) if len(parts) > 2 else 0
        except (ValueError, IndexError):
            bad += 1
            continue
        points.append((step, value))
    return points, bad


def _config(run_dir: Path, warnings: list[str]) -> dict[str, Any] | None:
    config: dict[str, Any] = {}
    params = run_dir / "params"
    if params.is_dir():
        for path in sorted(p for p in params.rglob("*") if p.is_file()):
            try:
                config[path.relative_to(params).as_posix()] = path.read_text(encoding="utf-8")
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


def read_mlflow(run_dir: Path, rel: str) -> Run:
    """Read one MLflow run folder into a :class:`Run` at ``rel``.

    Raises:
        LogReadError: no metric file holds a value.

    Example:
        >>> read_mlflow(Path("no/such/run"), "run")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: no metric values
    """
    metrics = run_dir / "metrics"
    raw: dict[str, list[tuple[int, float]]] = {}
    warnings: list[str] = []
    files = sorted(p for p in metrics.rglob("*") if p.is_file()) if metrics.is_dir() else []
    for path in files:
        key = path.relative_to(metrics).as_posix()
        try:
            points, bad = _metric_points(path)
        except OSError as err:
            warnings.append(f"metric {key} not read: {err.strerror or type(err).__name__}")
            continue
        if bad:
            warnings.append(f"metric {key}: {bad} malformed lines skipped")
        if points:
            raw[key] = points
    epoch = raw.pop("epoch", None)
    if not raw:
        raise LogReadError("no metric values")
    if epoch is not None and any(math.isfinite(v) for _, v in epoch):
        points_by_name = epochs_from_tag(raw, epoch)
    else:
        points_by_name = steps_as_epochs(raw)
        warnings.append("no epoch metric: steps read as epochs")
    run = Run(path=rel, format="mlflow", warnings=warnings)
    epoch_of_step: dict[int, int] = {}
    for name, points in points_by_name.items():
        series, steps = split_points(name, points)
        if series is not None:
            run.series[name] = series
        if steps is not None:
            run.step_series[name] = steps
            epoch_of_step.update((s, e) for s, e, _ in points if e is not None)
    if epoch_of_step:
        run.step_series["epoch"] = dict(sorted(epoch_of_step.items()))
    run.config = _config(run_dir, run.warnings)
    run.config_source = "hparams" if run.config is not None else None
    return run
