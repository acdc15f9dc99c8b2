"""Find a run's training and validation loss (and accuracy) among real-world metric names.

Names are split into a *split* (train / val / test), a *quantity* (``loss``, ``nll``, ``acc``...)
and a *level* (``_epoch`` / ``_step`` suffix): ``val/loss``, ``loss/val``, ``valid_loss`` and
``val_loss_epoch`` all parse to ``(val, loss)``. An unprefixed name (Keras' ``loss``, ``acc``)
counts as training. Two metrics are compared (gap, PQ) only when their quantities match.

The run's learning rate (Lightning's ``LearningRateMonitor``: ``lr-Adam``, ``lr-SGD/pg1``; Keras'
``lr`` / ``learning_rate``) and its class count (hparams ``num_classes`` and kin, or a recipe's
built-in dataset) come along: the rules read a schedule that ended and a loss stuck at chance.

Example:
    >>> parse_metric_name("loss/val")
    MetricName(name='loss/val', split='val', quantity='loss', level=None)
    >>> from lightreg.diagnose.run import Run
    >>> run = Run("r", "keras_csv", {"loss": {0: 1.0}, "val_loss": {0: 1.2}})
    >>> curves = select_curves(run)
    >>> curves.train_metric, curves.val_metric, curves.comparable
    ('loss', 'val_loss', True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lightreg.diagnose.run import Run

Split = Literal["train", "val", "test"]
Kind = Literal["loss", "acc"]

_SPLITS: dict[str, Split] = {
    "train": "train",
    "training": "train",
    "trn": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "eval": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
_LEVELS = ("epoch", "step")
_LOSS_LIKE = frozenset(
    {"nll", "mse", "rmse", "mae", "ce", "bce", "xent", "cross_entropy", "crossentropy", "error"}
)
_ACC = frozenset({"acc", "accuracy", "top1", "acc1", "top1_acc", "top1_accuracy"})
_LR_NAMES = frozenset({"lr", "learning_rate"})
_LR_MONITOR_EXTRAS = ("-momentum", "-weight_decay")
CLASS_COUNT_KEYS = (
    "num_classes",
    "n_classes",
    "nb_classes",
    "num_labels",
    "n_class",
    "number_of_classes",
    "classes",
)
"""hparams names for the number of classes, first match wins (an int of at least 2 counts)."""
RECIPE_CLASS_COUNTS = {"digits": 10, "breast_cancer": 2, "wine": 3, "mnist1d": 10}
"""Classes of the recipe's built-in datasets (``lightreg.data.datasets``; a test compares)."""
_DATALOADER = re.compile(r"/dataloader_idx_(\d+)$")
_TOKEN = re.compile(r"[/_\-.\s]+")


@dataclass(frozen=True)
class MetricName:
    """A metric name split into its parts.

    Example:
        >>> parse_metric_name("train_loss_epoch").level
        'epoch'
    """

    name: str
    split: Split | None
    quantity: str
    level: Literal["epoch", "step"] | None

    @property
    def kind(self) -> Kind | None:
        """``"loss"``, ``"acc"`` or None for anything else (``lr``, ``epoch``, ``f1``...).

        Example:
            >>> parse_metric_name("val/rmse").kind
            'loss'
        """
        words = [word for word in self.quantity.split("_") if not word.isdigit()] or [""]
        last = words[-1]
        if last == "loss" or "_".join(words) in _LOSS_LIKE:
            return "loss"
        if "_".join(words) in _ACC or last in ("acc", "accuracy"):
            return "acc"
        return None


def parse_metric_name(name: str) -> MetricName:
    """Split ``name`` into split, quantity and level (a ``/dataloader_idx_N`` suffix is dropped).

    Example:
        >>> parse_metric_name("validation_loss").split
        'val'
    """
    base = _DATALOADER.sub("", name)
    tokens = [token for token in _TOKEN.split(base.lower()) if token]
    split: Split | None = None
    for index, token in enumerate(tokens):
        if token in _SPLITS:
            split = _SPLITS[token]
            del tokens[index]
            break
    level = None
    if len(tokens) > 1 and tokens[-1] in _LEVELS:
        level = tokens.pop()
    return MetricName(name=name, split=split, quantity="_".join(tokens), level=level)


@dataclass
class Curves:
    """The epoch series a diagnosis reads, and how they were found.

    Attributes:
        train_metric / val_metric: the chosen loss names, or None when absent.
        train / val: epoch -> loss value (values may be NaN or inf as logged).
        train_acc_metric / val_acc_metric, train_acc / val_acc: the same for accuracy.
        comparable: whether train and val losses are the same quantity (gap and PQ need it).
        notes: how the series were found (fallbacks, mismatches, dropped points).
        lr_metric / lr: the learning rate's name and its values (step or epoch -> lr), if logged.
        num_classes: the class count from the run's hparams or recipe, or None.

    Example:
        >>> Curves().comparable
        False
    """

    train_metric: str | None = None
    val_metric: str | None = None
    train: dict[int, float] = field(default_factory=dict)
    val: dict[int, float] = field(default_factory=dict)
    train_acc_metric: str | None = None
    val_acc_metric: str | None = None
    train_acc: dict[int, float] = field(default_factory=dict)
    val_acc: dict[int, float] = field(default_factory=dict)
    comparable: bool = False
    notes: list[str] = field(default_factory=list)
    lr_metric: str | None = None
    lr: dict[int, float] = field(default_factory=dict)
    num_classes: int | None = None


def _rank(parsed: MetricName, points: int, want_quantity: str | None) -> tuple:
    """Sort key: best candidate first."""
    return (
        want_quantity is not None and parsed.quantity != want_quantity,
        parsed.quantity not in ("loss", "acc", "accuracy"),
        parsed.split is None,
        parsed.level == "step",
        bool(_DATALOADER.search(parsed.name)) and not parsed.name.endswith("_0"),
        -points,
        parsed.name,
    )


def find_metric(
    names: Iterable[str],
    split: Literal["train", "val"],
    kind: Kind,
    *,
    sizes: dict[str, int] | None = None,
    want_quantity: str | None = None,
) -> str | None:
    """The best name for ``split``'s ``kind`` among ``names``, or None.

    An unprefixed name counts as training. Plain ``loss`` / ``acc`` beats other losses
    (``nll``...), an explicit split beats none, epoch level beats step level, more points win,
    and ``want_quantity`` (the other side's quantity) beats everything.

    Example:
        >>> find_metric(["loss", "train_loss_epoch", "val_loss"], "train", "loss")
        'train_loss_epoch'
        >>> find_metric(["val/nll", "val/rmse"], "val", "loss", want_quantity="rmse")
        'val/rmse'
    """
    sizes = sizes or {}
    candidates = []
    for name in names:
        parsed = parse_metric_name(name)
        if parsed.kind != kind:
            continue
        if parsed.split == split or (split == "train" and parsed.split is None):
            candidates.append(parsed)
    if not candidates:
        return None
    best = min(candidates, key=lambda p: _rank(p, sizes.get(p.name, 0), want_quantity))
    return best.name


def find_lr(names: Iterable[str]) -> str | None:
    """The learning-rate series among ``names``: ``lr-*`` (not its momentum or weight decay),
    ``lr`` or ``learning_rate`` with any split prefix; the first by name when several.

    Example:
        >>> find_lr(["lr-Adam/pg2", "lr-Adam/pg1", "lr-Adam/pg1-momentum", "val_loss"])
        'lr-Adam/pg1'
    """
    found = [
        name
        for name in names
        if (name.startswith("lr-") and not name.endswith(_LR_MONITOR_EXTRAS))
        or parse_metric_name(name).quantity in _LR_NAMES
    ]
    return min(found) if found else None


def find_key(config: Mapping[str, Any], names: Iterable[str]) -> tuple[tuple[str, ...], Any] | None:
    """``(key path, value)`` of the first of ``names`` in ``config``, searched depth-first.

    The top level is searched for every name before any nested mapping.

    Example:
        >>> find_key({"model": {"drop_rate": 0.2}, "lr": 0.1}, ("dropout", "drop_rate"))
        (('model', 'drop_rate'), 0.2)
    """
    names = tuple(names)
    for name in names:
        if name in config:
            return (name,), config[name]
    for key, value in config.items():
        if isinstance(value, Mapping):
            found = find_key(value, names)
            if found:
                return (key, *found[0]), found[1]
    return None


def class_count(config: Mapping[str, Any] | None, source: str | None) -> int | None:
    """The number of classes a run's config states, or None.

    hparams: the first of :data:`CLASS_COUNT_KEYS` (an int of at least 2). A recipe: its
    built-in dataset's (:data:`RECIPE_CLASS_COUNTS`; ``csv``, ``image_folder`` and ``signals``
    are known only once read).

    Example:
        >>> class_count({"model": {"num_classes": 10}}, "hparams")
        10
        >>> class_count({"data": {"dataset": "wine"}}, "recipe")
        3
    """
    if not isinstance(config, Mapping):
        return None
    if source == "recipe":
        data = config.get("data")
        dataset = data.get("dataset", "digits") if isinstance(data, Mapping) else "digits"
        return RECIPE_CLASS_COUNTS.get(dataset)
    found = find_key(config, CLASS_COUNT_KEYS)
    count = found[1] if found else None
    if isinstance(count, int) and not isinstance(count, bool) and count >= 2:
        return count
    return None


def per_epoch_mean(run: Run, metric: str) -> dict[int, float] | None:
    """Average a per-step series per epoch, using ``run.step_series["epoch"]`` (step -> epoch).

    Returns None when the run has no such epoch mapping.

    Example:
        >>> run = Run("r", "lightning_csv", step_series={
        ...     "train_loss_step": {0: 2.0, 1: 1.0, 2: 0.5}, "epoch": {0: 0, 1: 0, 2: 1}})
        >>> per_epoch_mean(run, "train_loss_step")
        {0: 1.5, 1: 0.5}
    """
    epoch_of = run.step_series.get("epoch")
    if not epoch_of:
        return None
    sums: dict[int, list[float]] = {}
    for step, value in run.step_series.get(metric, {}).items():
        if step in epoch_of:
            sums.setdefault(int(epoch_of[step]), []).append(value)
    return {epoch: sum(values) / len(values) for epoch, values in sorted(sums.items())} or None


def _series_sizes(series: dict[str, dict[int, float]]) -> dict[str, int]:
    return {name: len(points) for name, points in series.items()}


def _pick_train_loss(run: Run, curves: Curves, override: str | None) -> None:
    if override is not None:
        if override in run.series:
            curves.train_metric, curves.train = override, dict(run.series[override])
        elif override in run.step_series:
            _use_step_series(run, curves, override)
        else:
            curves.notes.append(f"train metric '{override}' is not in this run")
        return
    name = find_metric(run.series, "train", "loss", sizes=_series_sizes(run.series))
    if name is not None:
        curves.train_metric, curves.train = name, dict(run.series[name])
        return
    step_name = find_metric(run.step_series, "train", "loss", sizes=_series_sizes(run.step_series))
    if step_name is not None:
        _use_step_series(run, curves, step_name)


def _use_step_series(run: Run, curves: Curves, name: str) -> None:
    means = per_epoch_mean(run, name)
    if means is None:
        curves.notes.append(
            f"'{name}' is logged per step only and the run has no step->epoch mapping: "
            "no training loss"
        )
        return
    curves.train_metric, curves.train = name, means
    curves.notes.append(f"training loss: per-step '{name}' averaged per epoch")


def _drop_post_fit_validation(curves: Curves) -> None:
    """Drop validation points logged after the last training epoch (``trainer.validate``)."""
    if not curves.train or not curves.val:
        return
    last_train = max(curves.train)
    late = [epoch for epoch in curves.val if epoch > last_train]
    if late and len(late) < len(curves.val):
        for epoch in late:
            del curves.val[epoch]
            curves.val_acc.pop(epoch, None)
        curves.notes.append(
            f"ignored validation at epoch {', '.join(map(str, late))}: after the last training epoch"
        )


def select_curves(
    run: Run, train_metric: str | None = None, val_metric: str | None = None
) -> Curves:
    """Choose the train/val loss and accuracy series of ``run`` (names given override detection).

    A per-step-only training loss stands in, averaged per epoch, when no epoch-level one exists.

    Example:
        >>> run = Run("r", "lightning_csv", {"train/nll": {0: 1.0}, "val/rmse": {0: 0.9}})
        >>> select_curves(run).comparable
        False
    """
    curves = Curves()
    _pick_train_loss(run, curves, train_metric)
    train_quantity = (
        parse_metric_name(curves.train_metric).quantity if curves.train_metric else None
    )
    if val_metric is not None:
        if val_metric in run.series:
            curves.val_metric = val_metric
        else:
            curves.notes.append(f"validation metric '{val_metric}' is not in this run")
    else:
        curves.val_metric = find_metric(
            run.series, "val", "loss", sizes=_series_sizes(run.series), want_quantity=train_quantity
        )
    if curves.val_metric is not None:
        curves.val = dict(run.series[curves.val_metric])
    curves.train_acc_metric = find_metric(run.series, "train", "acc")
    curves.val_acc_metric = find_metric(run.series, "val", "acc")
    if curves.train_acc_metric:
        curves.train_acc = dict(run.series[curves.train_acc_metric])
    if curves.val_acc_metric:
        curves.val_acc = dict(run.series[curves.val_acc_metric])
    if curves.train_metric and curves.val_metric:
        val_quantity = parse_metric_name(curves.val_metric).quantity
        curves.comparable = train_quantity == val_quantity
        if not curves.comparable:
            curves.notes.append(
                f"'{curves.train_metric}' and '{curves.val_metric}' are different quantities "
                f"({train_quantity} vs {val_quantity}): no train-val gap, no PQ"
            )
    _drop_post_fit_validation(curves)
    curves.lr_metric = find_lr([*run.series, *run.step_series])
    if curves.lr_metric is not None:
        curves.lr = dict(run.series.get(curves.lr_metric) or run.step_series[curves.lr_metric])
    curves.num_classes = class_count(run.config, run.config_source)
    return curves
