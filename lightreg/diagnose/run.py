"""The `Run`: what every log reader produces and every diagnosis rule consumes.

Example:
    >>> run = Run(path="a/version_0", format="lightning_csv",
    ...           series={"train_loss": {0: 1.0, 1: 0.5}, "val_loss": {0: 1.1, 1: 0.9}})
    >>> run.epochs_of("val_loss")
    [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

LogFormat = Literal["lightning_csv", "tensorboard", "keras_csv", "mlflow", "wandb"]


@dataclass
class Run:
    """One training run's epoch-level metrics.

    Attributes:
        path: the run folder or file, as found on disk.
        format: which reader produced it.
        series: metric name -> {0-based epoch -> value}. Values may be NaN or inf as logged.
        config: the run's recipe (our ``recipe.yaml``) or hparams as a plain dict, or None.
        config_source: ``"recipe"`` when ``config`` is a lightreg recipe, ``"hparams"`` otherwise.
        step_series: metric name -> {step -> value} for metrics logged only per step
            (kept apart so that a per-step training loss can stand in when no per-epoch one exists).
            Past :data:`~lightreg.diagnose.readers.series.MAX_STEP_POINTS` values, an even sample
            of them (a warning says so): a run's memory follows its epochs, not its file.
        warnings: notes from the reader (a cut-short last row, a skipped bad record, ...).

    Example:
        >>> run = Run("runs/x/version_0", "lightning_csv", {"val_loss": {1: 0.8, 0: 1.0}})
        >>> run.values_of("val_loss"), run.config is None
        ([1.0, 0.8], True)
    """

    path: str
    format: LogFormat
    series: dict[str, dict[int, float]] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    config_source: Literal["recipe", "hparams"] | None = None
    step_series: dict[str, dict[int, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def epochs_of(self, metric: str) -> list[int]:
        """The sorted epochs at which ``metric`` has a value.

        Example:
            >>> Run("r", "keras_csv", {"loss": {2: 0.5, 0: 1.0}}).epochs_of("loss")
            [0, 2]
        """
        return sorted(self.series.get(metric, {}))

    def values_of(self, metric: str) -> list[float]:
        """The values of ``metric`` in epoch order.

        Example:
            >>> Run("r", "keras_csv", {"loss": {2: 0.5, 0: 1.0}}).values_of("loss")
            [1.0, 0.5]
        """
        points = self.series.get(metric, {})
        return [points[epoch] for epoch in sorted(points)]


class LogReadError(Exception):
    """A file that looked like a log but could not be read; the message is the reason.

    Example:
        >>> str(LogReadError("empty file"))
        'empty file'
    """
