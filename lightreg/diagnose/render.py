"""Draw a run's learning curves: as plain text for the terminal, or as PNG files (matplotlib).

The text plot needs nothing beyond the standard library; matplotlib is imported only by
:func:`save_pngs` (the optional ``plot`` extra). Names from the logs (metrics, run paths) are
drawn with their control characters made visible (:func:`lightreg.text.printable`), and as plain
text in PNGs: a ``$`` in a name is not matplotlib math.

Example:
    >>> from lightreg.diagnose.metrics import Curves
    >>> curves = Curves("train_loss", "val_loss", {0: 1.0, 1: 0.5, 2: 0.4}, {0: 1.1, 1: 0.7, 2: 0.8},
    ...                 comparable=True)
    >>> lines = text_plot(curves, best_epoch=1, width=20, height=5)
    >>> lines[-1]
    '• train_loss   × val_loss   ▲ best epoch 1'
"""

from __future__ import annotations

import bisect
import errno
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lightreg.diagnose.metrics import Curves
from lightreg.text import printable

if TYPE_CHECKING:
    from lightreg.diagnose.engine import Diagnosis

TRAIN_MARK, VAL_MARK, BOTH_MARK, BEST_MARK = "•", "×", "◉", "┊"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (``pip install 'lightreg[plot]'``).

    Example:
        >>> str(PlotUnavailable("no matplotlib"))
        'no matplotlib'
    """


def _finite_points(series: dict[int, float]) -> list[tuple[int, float]]:
    return [(epoch, value) for epoch, value in sorted(series.items()) if math.isfinite(value)]


def _interpolate(points: list[tuple[int, float]], x: float) -> float | None:
    """Linear interpolation of ``points`` at ``x``; None outside their range."""
    xs = [epoch for epoch, _ in points]
    if not points or x < xs[0] or x > xs[-1]:
        return None
    i = bisect.bisect_left(xs, x)
    if xs[i] == x:
        return points[i][1]
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def text_plot(
    curves: Curves, best_epoch: int | None = None, width: int = 60, height: int = 12
) -> list[str]:
    """The train and validation losses as text lines, the best epoch marked.

    Example:
        >>> text_plot(Curves())
        ['(no finite loss values to plot)']
    """
    named = [
        (mark, name, _finite_points(series))
        for mark, name, series in (
            (TRAIN_MARK, curves.train_metric, curves.train),
            (VAL_MARK, curves.val_metric, curves.val),
        )
        if name
    ]
    named = [(mark, name, points) for mark, name, points in named if points]
    if not named:
        return ["(no finite loss values to plot)"]
    values = [value for _, _, points in named for _, value in points]
    epochs = [epoch for _, _, points in named for epoch, _ in points]
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1.0
    first, last = min(epochs), max(epochs)
    width = max(2, width if last > first else 1)
    grid = [[" "] * width for _ in range(height)]

    def column(epoch: float) -> int:
        return round((epoch - first) / (last - first) * (width - 1)) if last > first else 0

    if best_epoch is not None:
        for row in grid:
            row[column(best_epoch)] = BEST_MARK
    for mark, _, points in named:
        for col in range(width):
            x = first + (last - first) * col / (width - 1) if width > 1 else first
            value = _interpolate(points, x)
            if value is None:
                continue
            cell = grid[round((hi - value) / (hi - lo) * (height - 1))]
            cell[col] = BOTH_MARK if cell[col] not in (" ", BEST_MARK, mark) else mark
    labels = {0: f"{hi:.4g}", height // 2: f"{(hi + lo) / 2:.4g}", height - 1: f"{lo:.4g}"}
    pad = max(len(text) for text in labels.values())
    lines = [f"{labels.get(i, ''):>{pad}} ┤{''.join(row)}" for i, row in enumerate(grid)]
    lines.append(f"{'':>{pad}} └{'─' * width}")
    axis = [" "] * width
    if best_epoch is not None:
        axis[column(best_epoch)] = "▲"
    span = f"epoch {first}"
    end = f"{last}"
    lines.append(f"{'':>{pad}}  {''.join(axis)}")
    lines.append(f"{'':>{pad}}  {span}{end:>{max(1, width - len(span))}}")
    legend = [f"{mark} {printable(name)}" for mark, name, _ in named]
    if best_epoch is not None:
        legend.append(f"▲ best epoch {best_epoch}")
    if curves.train_metric and curves.val_metric and not curves.comparable:
        legend.append("(different quantities)")
    lines.append("   ".join(legend))
    return lines


def png_name(run_path: str) -> str:
    """A file name for a run's PNG, from its path.

    Example:
        >>> png_name("lightning_logs/version_0")
        'lightning_logs__version_0.png'
    """
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", run_path.strip("/\\").replace("/", "__"))
    return f"{stem.strip('.') or 'run'}.png"


def png_paths(diagnoses: Sequence[Diagnosis], out_dir: Path) -> list[Path]:
    """The PNG file each diagnosis is drawn into: one per run, unique within ``out_dir``.

    Example:
        >>> from lightreg.diagnose.engine import diagnose
        >>> from lightreg.diagnose.run import Run
        >>> runs = [Run(p, "keras_csv", {"loss": {0: 1.0}}) for p in ("a/b", "a_b")]
        >>> [p.name for p in png_paths([diagnose(r) for r in runs], Path("curves"))]
        ['a__b.png', 'a_b.png']
    """
    paths: list[Path] = []
    used: set[str] = set()
    for diagnosis in diagnoses:
        name = png_name(diagnosis.run.path)
        stem, n = name[:-4], 1
        while name in used:
            n += 1
            name = f"{stem}_{n}.png"
        used.add(name)
        paths.append(out_dir / name)
    return paths


def _plain(text: str) -> str:
    """``text`` as matplotlib shows it literally: control characters visible, ``$`` not math."""
    return printable(text).replace("$", r"\$")


def save_pngs(diagnoses: Sequence[Diagnosis], out_dir: Path, overwrite: bool = False) -> list[Path]:
    """Write one learning-curve PNG per diagnosis into ``out_dir`` (created if needed).

    Without ``overwrite``, an existing PNG is never replaced: nothing is written when one of the
    files (:func:`png_paths`) exists.

    Raises:
        PlotUnavailable: when matplotlib is not installed.
        FileExistsError: a PNG to write exists and ``overwrite`` is false.
        OSError: ``out_dir`` or a file in it cannot be written.

    Example:
        >>> save_pngs([], Path("/tmp/curves"))  # doctest: +SKIP
        []
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailable("--png needs matplotlib: pip install 'lightreg[plot]'") from None
    paths = png_paths(diagnoses, out_dir)
    existing = [path for path in paths if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(errno.EEXIST, "exists", str(existing[0]))
    out_dir.mkdir(parents=True, exist_ok=True)
    for diagnosis, path in zip(diagnoses, paths, strict=True):
        figure = Figure(figsize=(7, 4), layout="tight")
        axes = figure.add_subplot()
        curves = diagnosis.curves
        for label, series in ((curves.train_metric, curves.train), (curves.val_metric, curves.val)):
            points = _finite_points(series)
            if label and points:
                axes.plot(*zip(*points, strict=True), marker=".", label=_plain(label))
        best = diagnosis.evidence.best_epoch
        if best is not None:
            axes.axvline(best, color="grey", linestyle="--", label=f"best epoch {best}")
        axes.set_xlabel("epoch")
        axes.set_ylabel("loss")
        axes.set_title(_plain(f"{diagnosis.run.path}: {diagnosis.verdict}"))
        axes.legend()
        with path.open("wb" if overwrite else "xb") as handle:
            figure.savefig(handle, format="png", dpi=100)
    return paths
