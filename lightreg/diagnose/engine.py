"""Diagnose runs: find the curves, judge them, prescribe; one call per run or per PATH list.

Example:
    >>> from lightreg.diagnose.run import Run
    >>> run = Run("r", "keras_csv", {"loss": {0: 1.0, 1: 0.7, 2: 0.5, 3: 0.4},
    ...                              "val_loss": {0: 1.0, 1: 0.8, 2: 0.9, 3: 1.1}})
    >>> d = diagnose(run, DiagnoseConfig(Thresholds(overfit_patience=2)))
    >>> d.verdict, d.evidence.best_epoch, d.to_dict()["overfit_since"]
    ('overfitting', 1, 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightreg.diagnose.advice import Prescription, prescribe
from lightreg.diagnose.metrics import Curves, select_curves
from lightreg.diagnose.readers.limits import MAX_FILE_BYTES
from lightreg.diagnose.rules import Evidence, Judgement, Thresholds, Verdict, judge
from lightreg.diagnose.run import Run


@dataclass(frozen=True)
class DiagnoseConfig:
    """Thresholds, metric names that override detection, and the size limit on log files.

    Attributes:
        max_file_bytes: a log file (CSV table, event file, MLflow metric file) larger than this is
            refused unread, with one line naming it; default 1 GiB.

    Raises:
        ValueError: ``max_file_bytes`` is not a positive integer.

    Example:
        >>> DiagnoseConfig(train_metric="train/nll").thresholds.gl_threshold
        5.0
        >>> DiagnoseConfig(max_file_bytes=4 << 30).max_file_bytes
        4294967296
    """

    thresholds: Thresholds = field(default_factory=Thresholds)
    train_metric: str | None = None
    val_metric: str | None = None
    max_file_bytes: int = MAX_FILE_BYTES

    def __post_init__(self) -> None:
        limit = self.max_file_bytes
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"`max_file_bytes` must be a positive integer, got {limit!r}")


def _number(value: float | None) -> float | None:
    """A JSON-safe float: NaN and inf become None."""
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class Diagnosis:
    """One run's curves, verdict, evidence and prescription.

    Example:
        >>> d = diagnose(Run("r", "keras_csv", {"loss": {0: 1.0, 1: float("nan")}}))
        >>> d.verdict, d.to_dict()["final_train_loss"]
        ('diverging', None)
    """

    run: Run
    curves: Curves
    judgement: Judgement
    prescription: Prescription

    @property
    def verdict(self) -> Verdict:
        """The verdict.

        Example:
            >>> run = Run("r", "keras_csv", {"loss": {0: 1.0, 1: 0.8, 2: 0.6},
            ...                              "val_loss": {0: 1.1, 1: 0.9, 2: 1.2}})
            >>> diagnose(run).verdict
            'good_fit'
        """
        return self.judgement.verdict

    @property
    def evidence(self) -> Evidence:
        """The evidence behind the verdict.

        Example:
            >>> run = Run("r", "keras_csv", {"loss": {0: 1.0, 1: 0.8, 2: 0.6},
            ...                              "val_loss": {0: 1.1, 1: 0.9, 2: 1.2}})
            >>> evidence = diagnose(run).evidence
            >>> evidence.epochs, evidence.best_epoch
            (3, 1)
        """
        return self.judgement.evidence

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (README: `lightreg diagnose`, JSON); NaN and inf are None.

        Extra keys beyond the documented core: ``summary``, ``reasons``, ``notes``, ``evidence``.

        Example:
            >>> run = Run("r", "keras_csv", {"loss": {0: 1.0, 1: 0.8}, "val_loss": {0: 1.1, 1: 0.9}})
            >>> record = diagnose(run).to_dict()
            >>> record["path"], record["train_metric"], record["val_metric"]
            ('r', 'loss', 'val_loss')
        """
        e = self.evidence
        return {
            "path": self.run.path,
            "format": self.run.format,
            "verdict": self.verdict,
            "best_epoch": e.best_epoch,
            "epochs": e.epochs,
            "train_metric": self.curves.train_metric,
            "val_metric": self.curves.val_metric,
            "final_train_loss": _number(e.final_train_loss),
            "final_val_loss": _number(e.final_val_loss),
            "gl": _number(e.gl),
            "max_gl": _number(e.max_gl),
            "pq": _number(e.pq),
            "overfit_since": e.overfit_since,
            "prescription": self.prescription.lines(),
            "summary": self.prescription.summary,
            "reasons": list(self.judgement.reasons),
            "notes": self.curves.notes + self.run.warnings,
            "evidence": {
                "loss_gap": _number(e.loss_gap),
                "final_train_acc": _number(e.final_train_acc),
                "final_val_acc": _number(e.final_val_acc),
                "acc_gap": _number(e.acc_gap),
                "val_slope": _number(e.val_slope),
                "train_slope": _number(e.train_slope),
                "epochs_past_best": e.epochs_past_best,
                "nonfinite_epoch": e.nonfinite_epoch,
                "comparable": self.curves.comparable,
            },
        }


def diagnose(run: Run, config: DiagnoseConfig | None = None) -> Diagnosis:
    """Find ``run``'s curves, judge them, and prescribe from its recipe or hparams.

    Example:
        >>> diagnose(Run("r", "keras_csv", {"loss": {0: 1.0}})).verdict
        'insufficient_data'
    """
    config = config or DiagnoseConfig()
    curves = select_curves(run, config.train_metric, config.val_metric)
    judgement = judge(curves, config.thresholds)
    prescription = prescribe(judgement, run.config, run.config_source, config.thresholds)
    return Diagnosis(run, curves, judgement, prescription)


@dataclass
class DiagnoseReport:
    """Everything ``diagnose_paths`` found.

    Attributes:
        diagnoses: one per run read.
        errors: ``(path, reason)`` for each log that could not be read.
        empty_paths: ``(PATH, reasons)`` for each PATH given in which no run could be read.

    Example:
        >>> DiagnoseReport().diagnoses
        []
    """

    diagnoses: list[Diagnosis] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    empty_paths: list[tuple[str, list[str]]] = field(default_factory=list)


def diagnose_paths(
    paths: Sequence[str | Path], config: DiagnoseConfig | None = None
) -> DiagnoseReport:
    """Read every run under each of ``paths`` and diagnose it.

    Example:
        >>> diagnose_paths(["no/such/dir"]).empty_paths[0][0]
        'no/such/dir'
    """
    from lightreg.diagnose.readers import read_runs

    config = config or DiagnoseConfig()
    report = DiagnoseReport()
    for path in paths:
        runs, errors = read_runs([path], config.max_file_bytes)
        report.errors.extend((error.path, error.reason) for error in errors)
        if not runs:
            report.empty_paths.append((str(path), [error.reason for error in errors]))
        report.diagnoses.extend(diagnose(run, config) for run in runs)
    return report


def missing_overrides(runs: Sequence[Run], config: DiagnoseConfig) -> list[tuple[str, list[str]]]:
    """Override names found in none of ``runs``: ``(name, every metric name seen)``.

    Example:
        >>> missing_overrides([Run("r", "keras_csv", {"loss": {0: 1.0}})],
        ...                   DiagnoseConfig(val_metric="val_los"))
        [('val_los', ['loss'])]
    """
    seen = sorted({name for run in runs for name in (*run.series, *run.step_series)})
    wanted = [name for name in (config.train_metric, config.val_metric) if name is not None]
    return [(name, seen) for name in wanted if name not in seen]
