"""Judge a run's curves: one verdict, with the evidence behind it.

The rules follow the regularization chapter's Q14 table, with Prechelt's GL and PQ
(:mod:`lightreg.criteria`) for "val loss rises while train loss falls". Trends are robust and
measured against each series' own noise (:mod:`lightreg.diagnose.trend`: Theil-Sen slope,
Mann-Kendall test, robust noise SD), so a noisy last point is no trend. The rules are tried in
this order; the first that holds gives the verdict:

1. ``diverging``: a NaN/inf loss, or a sustained rise: the last ``diverge_points`` values of the
   loss (the training loss; the validation loss when no training loss is logged) all lie above
   its first value, above ``diverge_ratio`` times its minimum, and above its minimum plus
   ``diverge_noise`` times the noise of the (last ``noise_window``) points before them.
2. no validation loss: ``underfitting`` when the training loss is stuck at chance level (within
   ``chance_tolerance`` of ln K, K the class count from hparams or recipe, and plateaued); else
   ``insufficient_data``. Also ``insufficient_data``: fewer than ``min_epochs`` finite values.
3. ``overfitting``: the final GL exceeds ``gl_threshold`` and has stayed above it for the last
   ``overfit_patience`` validation points; or train accuracy exceeds validation accuracy by more
   than ``acc_gap`` (the chapter's "Train acc >> Val acc (>10%)").
4. ``still_improving``: over the last ``trend_window`` validation points, which hold the best
   one, the relative Theil-Sen slope is below ``-improving_slope``, the Mann-Kendall p-value of a
   fall is below ``trend_alpha`` (or the points fell at every step: all a short window can show),
   and the fall of the trend line exceeds ``improving_noise`` times the noise around it. The
   reason names a learning-rate schedule that ended (the last logged lr at most ``lr_annealed``
   times its peak): the prescription then stretches the schedule, not just the epochs.
5. ``underfitting``: the training loss has plateaued (relative slope above ``-plateau_slope``),
   is high (train accuracy below ``underfit_acc`` when logged, else above ``underfit_ratio``
   times its first value), the gap is small (val at most ``underfit_gap`` above train),
   and the run is not near-perfect (train accuracy below ``near_perfect_acc``, train loss above
   ``near_zero_loss``).
6. ``insufficient_data`` when no training loss is logged (good fit and underfitting look alike
   without it); otherwise ``good_fit``.

Example:
    >>> from lightreg.diagnose.metrics import Curves
    >>> curves = Curves("train_loss", "val_loss", {0: 1.0, 1: 0.5, 2: 0.3, 3: 0.2},
    ...                 {0: 1.0, 1: 0.8, 2: 1.0, 3: 1.2}, comparable=True)
    >>> judgement = judge(curves, Thresholds(overfit_patience=2))
    >>> judgement.verdict, round(judgement.evidence.gl, 6), judgement.evidence.overfit_since
    ('overfitting', 50.0, 2)
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from lightreg.criteria import generalization_loss_series, progress_quotient
from lightreg.diagnose.metrics import Curves
from lightreg.diagnose.trend import noise, trend
from lightreg.text import did_you_mean

Verdict = Literal[
    "overfitting", "underfitting", "good_fit", "diverging", "still_improving", "insufficient_data"
]
VERDICTS: tuple[Verdict, ...] = (
    "overfitting",
    "underfitting",
    "good_fit",
    "diverging",
    "still_improving",
    "insufficient_data",
)


_MAY_BE_ZERO = ("improving_slope", "plateau_slope", "improving_noise", "diverge_noise")
_FRACTIONS = ("trend_alpha", "lr_annealed")


@dataclass(frozen=True)
class Thresholds:
    """Every number the rules use (see the module docstring for where each one applies).

    Example:
        >>> Thresholds().with_overrides({"gl_threshold": "10"}).gl_threshold
        10.0
    """

    min_epochs: int = 3
    gl_threshold: float = 5.0
    overfit_patience: int = 3
    acc_gap: float = 0.10
    severe_gl: float = 20.0
    severe_acc_gap: float = 0.15
    trend_window: int = 5
    improving_slope: float = 0.01
    plateau_slope: float = 0.005
    underfit_ratio: float = 0.5
    underfit_acc: float = 0.7
    underfit_gap: float = 0.1
    near_perfect_acc: float = 0.95
    near_zero_loss: float = 0.01
    diverge_ratio: float = 2.0
    strip: int = 5
    trend_alpha: float = 0.05
    improving_noise: float = 2.0
    noise_window: int = 15
    diverge_points: int = 2
    diverge_noise: float = 5.0
    lr_annealed: float = 0.05
    chance_tolerance: float = 0.05

    def __post_init__(self) -> None:
        problems = [
            f"`{f.name}` must be > 0, got {getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if f.name not in _MAY_BE_ZERO and getattr(self, f.name) <= 0
        ]
        problems += [
            f"`{name}` must be >= 0, got {getattr(self, name)}"
            for name in _MAY_BE_ZERO
            if getattr(self, name) < 0
        ]
        problems += [
            f"`{name}` must be <= 1, got {getattr(self, name)}"
            for name in _FRACTIONS
            if getattr(self, name) > 1
        ]
        if problems:
            raise ValueError("; ".join(problems))

    def with_overrides(self, values: Mapping[str, str | float | int]) -> Thresholds:
        """A copy with ``values`` (name -> number or numeric text) applied.

        Raises:
            ValueError: naming every unknown key (with a did-you-mean) and every bad value.

        Example:
            >>> Thresholds().with_overrides({"min_epoch": 2})
            Traceback (most recent call last):
            ...
            ValueError: unknown threshold 'min_epoch'; did you mean 'min_epochs'?
        """
        types = {f.name: f.type for f in dataclasses.fields(self)}
        changes: dict[str, float | int] = {}
        problems: list[str] = []
        for key, raw in values.items():
            if key not in types:
                hint = did_you_mean(key, types) or f"; known: {', '.join(types)}"
                problems.append(f"unknown threshold '{key}'{hint}")
                continue
            cast = int if types[key] in (int, "int") else float
            try:
                changes[key] = cast(raw)
            except ValueError:
                problems.append(
                    f"threshold '{key}' needs a{'n integer' if cast is int else ' number'}, got '{raw}'"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Evidence:
    """The numbers behind a verdict. Epochs are 0-based; None where a value cannot be computed.

    Attributes:
        epochs: epochs run (last logged epoch + 1).
        best_epoch: the epoch of the lowest finite validation loss.
        gl / max_gl: Prechelt's generalization loss (%) at the last epoch / its maximum.
        pq: GL / P_k at the last epoch (needs comparable losses and ``strip`` train points).
        loss_gap: final val loss - final train loss (comparable losses only).
        acc_gap: final train accuracy - final val accuracy.
        val_slope / train_slope: Theil-Sen slope over the last ``trend_window`` points, divided
            by the median of their absolute values (relative change per epoch; negative = falling).
        val_p_falling: one-sided Mann-Kendall p-value of a fall over those validation points.
        val_change: how far the validation trend line moves across them (negative = falls).
        val_noise: the noise (robust SD) of those validation points around their trend line.
        overfit_since: the first epoch of the final stretch where GL stays above the threshold.
        nonfinite_epoch: the first epoch with a NaN/inf loss.
        lr_metric / final_lr / peak_lr: the logged learning rate, its last and its largest value.
        schedule_ended: the last lr is at most ``lr_annealed`` times its peak.

    Example:
        >>> Evidence(epochs=0).best_epoch is None
        True
    """

    epochs: int
    best_epoch: int | None = None
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    gl: float | None = None
    max_gl: float | None = None
    pq: float | None = None
    loss_gap: float | None = None
    final_train_acc: float | None = None
    final_val_acc: float | None = None
    acc_gap: float | None = None
    val_slope: float | None = None
    train_slope: float | None = None
    overfit_since: int | None = None
    overfit_points: int = 0
    nonfinite_epoch: int | None = None
    val_p_falling: float | None = None
    val_change: float | None = None
    val_noise: float | None = None
    lr_metric: str | None = None
    final_lr: float | None = None
    peak_lr: float | None = None
    schedule_ended: bool = False

    @property
    def epochs_past_best(self) -> int | None:
        """Epochs run after the best one.

        Example:
            >>> Evidence(epochs=50, best_epoch=12).epochs_past_best
            37
        """
        return None if self.best_epoch is None else self.epochs - 1 - self.best_epoch

    def schedule_text(self) -> str:
        """How the learning rate ended, as one phrase (empty when no lr was logged).

        Example:
            >>> Evidence(epochs=9, lr_metric="lr-SGD", final_lr=1e-4, peak_lr=0.1).schedule_text()
            'lr-SGD had annealed to 0.0001 (0.1% of its peak 0.1)'
        """
        if self.lr_metric is None or self.final_lr is None or not self.peak_lr:
            return ""
        share = f"{100 * self.final_lr / self.peak_lr:.2g}% of its peak {self.peak_lr:.3g}"
        return f"{self.lr_metric} had annealed to {self.final_lr:.3g} ({share})"


@dataclass(frozen=True)
class Judgement:
    """A verdict, its evidence, and the rule lines that decided it.

    Example:
        >>> Judgement("good_fit", Evidence(epochs=3)).reasons
        ()
    """

    verdict: Verdict
    evidence: Evidence
    reasons: tuple[str, ...] = field(default_factory=tuple)


def relative_slope(points: Sequence[tuple[int, float]]) -> float | None:
    """Theil-Sen slope of value against epoch, divided by the median absolute value.

    None for fewer than two distinct epochs or a zero median.

    Example:
        >>> relative_slope([(0, 3.0), (1, 2.5), (2, 2.0), (3, 1.5), (4, 9.0)])  # outlier: no say
        -0.2
    """
    line = trend(points)
    return None if line is None else line.relative_slope


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _first_nonfinite(points: Sequence[tuple[int, float]]) -> int | None:
    return next((epoch for epoch, value in points if not math.isfinite(value)), None)


def _sustained_rise(name: str, values: Sequence[float], t: Thresholds) -> str | None:
    """Why finite ``values`` (epoch order) ended in a sustained rise, or None.

    With no point before the last ``diverge_points``, the tail holds the first value, which its
    minimum cannot exceed: a rise needs a start.
    """
    head, tail = values[: -t.diverge_points], values[-t.diverge_points :]
    low, first, floor = min(values), values[0], min(tail)
    sigma = noise(head[-t.noise_window :])
    if floor <= max(first, t.diverge_ratio * low, low + t.diverge_noise * sigma):
        return None
    if floor - low <= 1e-12:  # float noise on a flat series
        return None
    return (
        f"{name} exploded: its last {t.diverge_points} values are all >= {floor:.4g}, above its "
        f"start {first:.4g}, {t.diverge_ratio:g}x its minimum {low:.4g}, and that minimum + "
        f"{t.diverge_noise:g} x noise {sigma:.2g}"
    )


def _schedule(curves: Curves, t: Thresholds) -> dict[str, object]:
    """The learning rate's evidence: its name, last and peak value, and whether it ended."""
    rates = [value for _, value in sorted(curves.lr.items()) if math.isfinite(value)]
    if curves.lr_metric is None or not rates:
        return {}
    final, peak = rates[-1], max(rates)
    return {
        "lr_metric": curves.lr_metric,
        "final_lr": final,
        "peak_lr": peak,
        "schedule_ended": peak > 0 and final <= t.lr_annealed * peak,
    }


def _overfit_stretch(points: Sequence[tuple[int, float]], gls: Sequence[float], limit: float):
    """(first epoch, length) of the final run of points whose GL exceeds ``limit``."""
    count = 0
    for gl in reversed(gls):
        if gl > limit:
            count += 1
        else:
            break
    return (points[len(points) - count][0], count) if count else (None, 0)


def collect_evidence(curves: Curves, t: Thresholds) -> Evidence:
    """Compute the :class:`Evidence` for ``curves``.

    Example:
        >>> from lightreg.diagnose.metrics import Curves
        >>> e = collect_evidence(Curves(val={0: 2.0, 1: 1.0, 2: 1.5}), Thresholds())
        >>> e.best_epoch, e.gl, e.max_gl
        (1, 50.0, 50.0)
    """
    train = sorted(curves.train.items())
    val = sorted(curves.val.items())
    logged = list(curves.train) + list(curves.val)
    epochs = max(logged) + 1 if logged else 0
    bad = [e for e in (_first_nonfinite(train), _first_nonfinite(val)) if e is not None]
    val_ok = val[: next((i for i, (_, v) in enumerate(val) if not math.isfinite(v)), len(val))]
    train_ok = [(e, v) for e, v in train if math.isfinite(v)]
    gls = generalization_loss_series([v for _, v in val_ok]) if val_ok else []
    best_epoch = min(val_ok, key=lambda point: point[1])[0] if val_ok else None
    since, count = _overfit_stretch(val_ok, gls, t.gl_threshold)
    final_train = train[-1][1] if train else None
    final_val = val[-1][1] if val else None
    gl = gls[-1] if gls and len(val_ok) == len(val) else None
    pq = None
    if curves.comparable and gl is not None and len(train_ok) >= t.strip:
        pq = _finite(progress_quotient([v for _, v in val_ok], [v for _, v in train_ok], t.strip))
    loss_gap = None
    if curves.comparable and _finite(final_train) is not None and _finite(final_val) is not None:
        loss_gap = final_val - final_train
    train_acc = _finite(curves.train_acc[max(curves.train_acc)]) if curves.train_acc else None
    val_acc = _finite(curves.val_acc[max(curves.val_acc)]) if curves.val_acc else None
    acc_gap = train_acc - val_acc if train_acc is not None and val_acc is not None else None
    val_trend = trend(val_ok[-t.trend_window :])
    return Evidence(
        epochs=epochs,
        best_epoch=best_epoch,
        final_train_loss=final_train,
        final_val_loss=final_val,
        gl=_finite(gl),
        max_gl=_finite(max(gls)) if gls else None,
        pq=pq,
        loss_gap=loss_gap,
        final_train_acc=train_acc,
        final_val_acc=val_acc,
        acc_gap=acc_gap,
        val_slope=val_trend.relative_slope if val_trend else None,
        train_slope=relative_slope(train_ok[-t.trend_window :]),
        overfit_since=since,
        overfit_points=count,
        nonfinite_epoch=min(bad) if bad else None,
        val_p_falling=val_trend.p_falling if val_trend else None,
        val_change=val_trend.change if val_trend else None,
        val_noise=val_trend.noise if val_trend else None,
        **_schedule(curves, t),
    )


def _diverging(curves: Curves, e: Evidence, t: Thresholds) -> str | None:
    if e.nonfinite_epoch is not None:
        which = [
            name
            for name, series in (
                (curves.train_metric, curves.train),
                (curves.val_metric, curves.val),
            )
            if any(not math.isfinite(v) for v in series.values())
        ]
        return f"{' and '.join(map(str, which))} not finite from epoch {e.nonfinite_epoch}"
    name, series = (
        (curves.train_metric, curves.train) if curves.train else (curves.val_metric, curves.val)
    )
    return _sustained_rise(str(name), [series[epoch] for epoch in sorted(series)], t)


def _overfitting(e: Evidence, t: Thresholds) -> str | None:
    if e.gl is not None and e.gl > t.gl_threshold and e.overfit_points >= t.overfit_patience:
        return (
            f"GL {e.gl:.1f}% > {t.gl_threshold:g}% for the last {e.overfit_points} validation "
            f"points (since epoch {e.overfit_since}); best epoch {e.best_epoch}"
        )
    if e.acc_gap is not None and e.acc_gap > t.acc_gap:
        return f"train accuracy exceeds validation accuracy by {e.acc_gap:.3f} > {t.acc_gap:g}"
    return None


def _still_improving(curves: Curves, e: Evidence, t: Thresholds) -> str | None:
    window = sorted(curves.val)[-t.trend_window :]
    if e.val_slope is None or e.val_p_falling is None or e.val_change is None:
        return None
    if e.best_epoch is None or e.best_epoch < window[0] or e.val_slope >= -t.improving_slope:
        return None
    values = [curves.val[epoch] for epoch in window]
    every_step = all(later < earlier for earlier, later in zip(values, values[1:], strict=False))
    noise_level = e.val_noise or 0.0
    if e.val_p_falling >= t.trend_alpha and not every_step:
        return None
    if -e.val_change <= t.improving_noise * noise_level:
        return None
    test = "fell at every step" if every_step else "Mann-Kendall"
    reason = (
        f"validation loss still falling {-e.val_slope:.1%}/epoch over the last {len(window)} "
        f"points (Theil-Sen; {test}, p={e.val_p_falling:.2g}), {-e.val_change:.3g} in all "
        f"against noise {noise_level:.2g}; best epoch {e.best_epoch}"
    )
    return f"{reason}; {e.schedule_text()}" if e.schedule_ended else reason


def _underfitting(curves: Curves, e: Evidence, t: Thresholds) -> str | None:
    values = [curves.train[epoch] for epoch in sorted(curves.train)]
    plateaued = e.train_slope is None or e.train_slope >= -t.plateau_slope
    if not plateaued or e.final_train_loss is None or abs(e.final_train_loss) <= t.near_zero_loss:
        return None
    if e.final_train_acc is not None:
        if e.final_train_acc >= t.underfit_acc or e.final_train_acc >= t.near_perfect_acc:
            return None
        high = f"train accuracy {e.final_train_acc:.3f} < {t.underfit_acc:g}"
    else:
        ratio = values[-1] / values[0] if values[0] else 0.0
        if ratio < t.underfit_ratio:
            return None
        high = f"train loss still {ratio:.0%} of its first value"
    if e.loss_gap is not None and e.final_val_loss:
        if e.loss_gap / abs(e.final_val_loss) > t.underfit_gap:
            return None
    elif e.acc_gap is not None and e.acc_gap > t.underfit_gap:
        return None
    return f"{high}, plateaued ({(e.train_slope or 0.0):+.2%}/epoch), small train-val gap"


def _at_chance(curves: Curves, e: Evidence, t: Thresholds) -> str | None:
    """Why the training loss is stuck at chance level ln(K), or None (K unknown, or not stuck)."""
    values = [v for _, v in sorted(curves.train.items()) if math.isfinite(v)][-t.trend_window :]
    if curves.num_classes is None:
        return None
    chance, level = math.log(curves.num_classes), statistics.median(values)
    plateaued = e.train_slope is None or e.train_slope >= -t.plateau_slope
    if not plateaued or abs(level - chance) > t.chance_tolerance * chance:
        return None
    return (
        f"train loss {level:.4g} stuck at chance level ln({curves.num_classes}) = {chance:.4g}, "
        f"plateaued ({(e.train_slope or 0.0):+.2%}/epoch); no validation loss"
    )


def _no_validation(curves: Curves, e: Evidence, t: Thresholds) -> Judgement:
    reason = _at_chance(curves, e, t)
    if reason:
        return Judgement("underfitting", e, (reason,))
    if curves.num_classes is None:
        why = "and with no class count known, no chance level to compare it with"
    else:
        why = f"and is not stuck at chance level ln({curves.num_classes})"
    return Judgement(
        "insufficient_data",
        e,
        (f"no validation loss; the training loss shows no divergence {why}",),
    )


def judge(curves: Curves, thresholds: Thresholds | None = None) -> Judgement:
    """Apply the rules (module docstring) to ``curves``: exactly one verdict.

    Example:
        >>> from lightreg.diagnose.metrics import Curves
        >>> judge(Curves(train={0: 1.0})).verdict
        'insufficient_data'
    """
    t = thresholds or Thresholds()
    e = collect_evidence(curves, t)
    if not curves.train and not curves.val:
        return Judgement("insufficient_data", e, ("no training or validation loss found",))
    reason = _diverging(curves, e, t)
    if reason:
        return Judgement("diverging", e, (reason,))
    if not curves.val:
        return _no_validation(curves, e, t)
    if len(curves.val) < t.min_epochs:
        return Judgement(
            "insufficient_data",
            e,
            (f"{len(curves.val)} validation point(s), fewer than min_epochs={t.min_epochs}",),
        )
    reason = _overfitting(e, t)
    if reason:
        return Judgement("overfitting", e, (reason,))
    reason = _still_improving(curves, e, t)
    if reason:
        return Judgement("still_improving", e, (reason,))
    if not curves.train:
        return Judgement(
            "insufficient_data", e, ("no training loss: a good fit and underfitting look alike",)
        )
    reason = _underfitting(curves, e, t)
    if reason:
        return Judgement("underfitting", e, (reason,))
    return Judgement("good_fit", e, ("no overfitting, divergence, plateau or open trend",))
