"""Turn a verdict into a prescription: concrete changes tied to the run's recipe or hparams.

Overfitting follows the chapter's Q7 decision process (add augmentation -> batch norm -> dropout ->
L2 -> increase strength) with its Q14 step sizes (moderate: dropout +0.1, L2 x3; severe: dropout
+0.2, L2 x10), starting light from none (Q7: "start simple, add complexity gradually"; moderate:
light augmentation, dropout 0.1, L2 1e-5; severe: moderate augmentation, 0.2, 1e-4), then early
stopping on the validation loss when many epochs ran past its best (patience: a tenth of the planned
``max_epochs``, from 3 to 15). Underfitting lowers regularization and doubles the model's width (the
chapter's "decrease dropout, decrease L2, increase model capacity"). Diverging lowers the learning
rate 10x and adds gradient clipping; still improving doubles the epochs, but after a learning-rate
schedule that ended (annealed to about zero) only together with the schedule's horizon (a recipe's
cosine schedule follows ``max_epochs``; hparams' ``T_max``, ``total_steps``...), else it says so and
offers to accept the result.

Every change is a :class:`Change` ``(key path, old, new)``: the text and ``--write-recipe``
(:mod:`lightreg.diagnose.patch`) both read the same list. Without a config, changes use generic
names and the chapter's defaults ("set dropout to 0.1 (start light)").

Example:
    >>> from lightreg.diagnose.rules import Evidence, Judgement
    >>> judgement = Judgement("diverging", Evidence(epochs=4, nonfinite_epoch=2), ("nan",))
    >>> p = prescribe(judgement, {"optim": {"lr": 0.1}}, "recipe")
    >>> p.lines()
    ['optim.lr 0.1 -> 0.01', 'set trainer.gradient_clip_val to 1 (clip exploding gradients)']
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from lightreg.diagnose.metrics import find_key
from lightreg.diagnose.rules import Judgement, Thresholds
from lightreg.presets import AUGMENTABLE_DATASETS, PRESETS

ConfigSource = Literal["recipe", "hparams"] | None


# Recipe schema defaults for the keys advice reads (lightreg.recipe.schema).
RECIPE_DEFAULTS: dict[tuple[str, ...], Any] = {
    ("regularization", "dropout"): 0.0,
    ("regularization", "l1"): 0.0,
    ("regularization", "l2"): 0.0,
    ("regularization", "weight_decay"): 0.0,
    ("regularization", "label_smoothing"): 0.0,
    ("regularization", "mixup_alpha"): 0.0,
    ("regularization", "cutmix_alpha"): 0.0,
    ("regularization", "augment"): None,
    ("model", "batch_norm"): True,
    ("model", "hidden"): [256, 128],
    ("model", "channels"): [32, 64],
    ("model", "hidden_size"): 64,
    ("early_stopping", "enabled"): True,
    ("early_stopping", "monitor"): "val_loss",
    ("early_stopping", "mode"): "min",
    ("early_stopping", "patience"): 10,
    ("optim", "lr"): 1e-3,
    ("trainer", "max_epochs"): 30,
    ("trainer", "gradient_clip_val"): None,
}
RECIPE_KEYS: dict[str, tuple[str, ...]] = {
    "dropout": ("regularization", "dropout"),
    "l1": ("regularization", "l1"),
    "l2": ("regularization", "l2"),
    "weight_decay": ("regularization", "weight_decay"),
    "label_smoothing": ("regularization", "label_smoothing"),
    "mixup_alpha": ("regularization", "mixup_alpha"),
    "cutmix_alpha": ("regularization", "cutmix_alpha"),
    "augment": ("regularization", "augment"),
    "batch_norm": ("model", "batch_norm"),
    "es_enabled": ("early_stopping", "enabled"),
    "monitor": ("early_stopping", "monitor"),
    "mode": ("early_stopping", "mode"),
    "patience": ("early_stopping", "patience"),
    "lr": ("optim", "lr"),
    "max_epochs": ("trainer", "max_epochs"),
    "gradient_clip_val": ("trainer", "gradient_clip_val"),
}
# Common hparams names per knob, first match wins.
HPARAM_ALIASES: dict[str, tuple[str, ...]] = {
    "dropout": ("dropout", "drop_rate", "dropout_rate", "dropout_p", "p_dropout", "drop_prob"),
    "weight_decay": ("weight_decay", "wd", "l2", "l2_reg", "l2_lambda", "weight_decay_rate"),
    "augment": ("augment", "augmentation", "data_augmentation", "aug"),
    "batch_norm": ("batch_norm", "batchnorm", "use_bn", "bn", "use_batch_norm"),
    "patience": ("patience", "early_stopping_patience", "es_patience"),
    "lr": ("lr", "learning_rate", "base_lr", "max_lr"),
    "max_epochs": ("max_epochs", "epochs", "num_epochs", "n_epochs"),
    "gradient_clip_val": ("gradient_clip_val", "grad_clip", "clip_grad_norm", "gradient_clip"),
    "hidden": ("hidden", "hidden_size", "hidden_dim", "hidden_units", "hidden_sizes", "width"),
    "horizon": (
        "T_max",
        "t_max",
        "total_steps",
        "num_training_steps",
        "total_iters",
        "decay_steps",
    ),
}
GENERIC_KEYS = {"patience": "early_stopping.patience", "es_enabled": "early_stopping.enabled"}
DROPOUT_CAP = 0.6  # the chapter's "very heavy" row
DECAY_CAP = 1e-2


def format_value(value: Any) -> str:
    """Show a config value as YAML would: numbers with ``g``, strings quoted, None as null.

    Example:
        >>> format_value(3e-4), format_value("moderate"), format_value(None)
        ('0.0003', "'moderate'", 'null')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return f"'{value}'"
    if value is None:
        return "null"
    return str(value)


@dataclass(frozen=True)
class Change:
    """One suggested setting: ``key`` (path in the config), ``old`` (None: not set) -> ``new``.

    Example:
        >>> Change(("regularization", "dropout"), 0.3, 0.4).describe()
        'regularization.dropout 0.3 -> 0.4'
        >>> Change(("dropout",), None, 0.3, "moderate").describe()
        'set dropout to 0.3 (moderate)'
    """

    key: tuple[str, ...]
    old: Any
    new: Any
    note: str = ""

    def describe(self) -> str:
        """The change as one line of text.

        Example:
            >>> Change(("optim", "lr"), 0.001, 0.0005, "halve it").describe()
            'optim.lr 0.001 -> 0.0005 (halve it)'
        """
        name = ".".join(self.key)
        if self.old is None:
            text = f"set {name} to {format_value(self.new)}"
        else:
            text = f"{name} {format_value(self.old)} -> {format_value(self.new)}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Prescription:
    """What to change: a one-line summary, the changes (the patch) and hints that are no patch.

    Example:
        >>> Prescription("good fit", (), ("keep the current regularization",)).headline()
        'good fit: keep the current regularization'
    """

    summary: str
    changes: tuple[Change, ...] = ()
    hints: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """Every suggestion, changes first, one string each.

        Example:
            >>> rx = Prescription("overfitting", (Change(("dropout",), 0.1, 0.3),), ("add data",))
            >>> rx.lines()
            ['dropout 0.1 -> 0.3', 'add data']
        """
        return [change.describe() for change in self.changes] + list(self.hints)

    def headline(self) -> str:
        """The summary followed by all suggestions, on one line.

        Example:
            >>> Prescription("overfitting", (Change(("dropout",), 0.1, 0.3),)).headline()
            'overfitting: dropout 0.1 -> 0.3'
            >>> Prescription("good fit").headline()
            'good fit'
        """
        lines = self.lines()
        return f"{self.summary}: {'; '.join(lines)}" if lines else self.summary


def _sig(value: float) -> float:
    return float(f"{value:.3g}")


@dataclass
class _Config:
    """Reads knobs from a recipe (with presets and defaults), an hparams dict, or nothing."""

    config: dict[str, Any] | None
    source: ConfigSource
    changes: list[Change] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    @property
    def is_recipe(self) -> bool:
        return self.source == "recipe" and self.config is not None

    def _recipe_value(self, path: tuple[str, ...]) -> Any:
        section = (self.config or {}).get(path[0])
        if isinstance(section, dict) and path[1] in section:
            return section[path[1]]
        regularization = self._section("regularization")
        preset = PRESETS.get(str(regularization.get("preset")), {}).get(path[0], {})
        if path[1] in preset and (path[1] != "augment" or self.augmentable):
            return preset[path[1]]
        return RECIPE_DEFAULTS.get(path)

    def _section(self, name: str) -> dict[str, Any]:
        value = (self.config or {}).get(name)
        return value if isinstance(value, dict) else {}

    @property
    def augmentable(self) -> bool:
        """Whether the recipe's data take augmentation (images and signals)."""
        return self._section("data").get("dataset", "digits") in AUGMENTABLE_DATASETS

    @property
    def scheduler(self) -> str | None:
        """The recipe's ``optim.scheduler`` (``none`` by default); None for hparams."""
        if not self.is_recipe:
            return None
        return str(self._section("optim").get("scheduler", "none"))

    @property
    def model_type(self) -> str:
        return str(self._section("model").get("type", "mlp"))

    def locate(self, knob: str) -> tuple[tuple[str, ...], Any] | None:
        """(key path, current value) of ``knob``, or None when the config doesn't have it."""
        if self.is_recipe:
            path = RECIPE_KEYS.get(knob) or self._capacity_key()
            return path, self._recipe_value(path)
        if self.config is not None and knob in HPARAM_ALIASES:
            return find_key(self.config, HPARAM_ALIASES[knob])
        return None

    def _capacity_key(self) -> tuple[str, ...]:
        return {"cnn": ("model", "channels"), "lstm_layernorm": ("model", "hidden_size")}.get(
            self.model_type, ("model", "hidden")
        )

    def value(self, knob: str) -> Any:
        found = self.locate(knob)
        return found[1] if found else None

    def set(self, knob: str, new: Any, note: str = "", generic_old: Any = None) -> None:
        """Record ``knob -> new`` under the config's own key, or under a generic name."""
        found = self.locate(knob)
        if found is None:
            self.changes.append(Change((GENERIC_KEYS.get(knob, knob),), generic_old, new, note))
        elif found[1] != new:
            self.changes.append(Change(found[0], found[1], new, note))


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _suggested_patience(epochs: int) -> int:
    return min(15, max(3, round(epochs / 10)))


def _more_regularization(cfg: _Config, severe: bool) -> None:
    """One step up the chapter's ladder per knob, starting light (Q7: "start simple, add
    complexity gradually"): from none, moderate overfitting gets light augmentation, dropout 0.1
    and weight decay 1e-5, severe overfitting moderate augmentation, 0.2 and 1e-4."""
    augment = cfg.value("augment")
    applicable = cfg.augmentable if cfg.is_recipe else augment in (None, False, "none")
    if applicable and (augment is None or isinstance(augment, str | bool)):
        first = "moderate" if severe else "light"
        stronger = {"light": "moderate", "moderate": "heavy" if severe else None, "heavy": None}
        new = stronger.get(augment, first) if isinstance(augment, str) else first
        if new:
            cfg.set("augment", new, "add augmentation" if new == first else "")
    if cfg.value("batch_norm") is False and cfg.model_type != "lstm_layernorm":
        cfg.set("batch_norm", True, "add batch norm")
    strength = "severe overfitting" if severe else "start light"
    dropout = _number(cfg.value("dropout"))
    if dropout < DROPOUT_CAP:
        raised = round(min(DROPOUT_CAP, dropout + (0.2 if severe else 0.1)), 2)
        cfg.set("dropout", raised, strength if dropout <= 0 else "")
    decay_knob = "weight_decay"
    if cfg.is_recipe and _number(cfg.value("l2")) > 0 >= _number(cfg.value("weight_decay")):
        decay_knob = "l2"
    decay = _number(cfg.value(decay_knob))
    if decay <= 0:
        cfg.set(decay_knob, 1e-4 if severe else 1e-5, strength)
    elif decay < DECAY_CAP:
        cfg.set(decay_knob, _sig(min(DECAY_CAP, decay * (10 if severe else 3))))
    if severe or (dropout >= DROPOUT_CAP and decay >= DECAY_CAP):
        cfg.hints.append("reduce the model size, or get more training data")


def _early_stopping(cfg: _Config, judgement: Judgement) -> None:
    """Early stopping when many epochs ran past the best validation loss. Turned on in a recipe,
    it watches that loss (where the epochs were counted) with a tenth of the planned epochs as
    patience, whatever its unused settings were."""
    e = judgement.evidence
    # A tenth of the planned epochs: the epochs an early stop left would shrink it every round.
    patience = _suggested_patience(max(e.epochs, int(_number(cfg.value("max_epochs")))))
    past = e.epochs_past_best
    if past is None or past <= patience:
        return
    note = f"{past} epochs ran past the best"
    turned_on = cfg.is_recipe and cfg.value("es_enabled") is False
    if turned_on:
        cfg.set("es_enabled", True, note)
        cfg.set("monitor", "val_loss", "where the epochs past the best were counted")
        cfg.set("mode", "min")
    current = cfg.value("patience")
    if turned_on or current is None or _number(current) > patience:
        cfg.set("patience", patience, note)


def _less_regularization(cfg: _Config) -> None:
    """The chapter's three remedies for underfitting together: less dropout, less L2 (and the
    other regularizers one step lighter), and a model twice as wide."""
    before = len(cfg.changes)
    dropout = _number(cfg.value("dropout"))
    if dropout > 0:
        cfg.set("dropout", round(dropout / 2, 2) if dropout >= 0.1 else 0.0)
    for knob in ("weight_decay", "l2", "l1"):
        decay = _number(cfg.value(knob))
        if decay > 0:
            cfg.set(knob, _sig(decay / 10))
    if cfg.is_recipe:
        for knob in ("label_smoothing", "mixup_alpha", "cutmix_alpha"):
            if _number(cfg.value(knob)) > 0:
                cfg.set(knob, 0.0)
        lighter = {"heavy": "moderate", "moderate": "light", "light": None}
        augment = cfg.value("augment")
        if isinstance(augment, str) and augment in lighter:
            cfg.set("augment", lighter[augment])
    capacity = cfg.locate("hidden")
    if capacity and isinstance(capacity[1], int) and not isinstance(capacity[1], bool):
        cfg.set("hidden", capacity[1] * 2, "more capacity")
    elif (
        capacity and isinstance(capacity[1], list) and all(isinstance(v, int) for v in capacity[1])
    ):
        cfg.set("hidden", [v * 2 for v in capacity[1]], "more capacity")
    elif len(cfg.changes) == before:
        cfg.hints.append(
            "lower dropout / weight decay if any, or increase model capacity (wider or deeper)"
        )
    else:
        cfg.hints.append("if that is not enough: more capacity (wider or deeper model)")


def _stabilize(cfg: _Config) -> None:
    lr = cfg.value("lr")
    if isinstance(lr, int | float) and not isinstance(lr, bool) and lr > 0:
        cfg.set("lr", _sig(lr / 10))
    else:
        cfg.hints.append("lower the learning rate 10x")
    if not cfg.value("gradient_clip_val"):
        cfg.set("gradient_clip_val", 1.0, "clip exploding gradients")


def _more_epochs(cfg: _Config, judgement: Judgement) -> None:
    """Double the epochs; after a schedule that ended, only together with its horizon."""
    e = judgement.evidence
    current = cfg.value("max_epochs")
    epochs = int(current) if isinstance(current, int) and current > 0 else e.epochs
    if not e.schedule_ended:
        cfg.set("max_epochs", 2 * epochs, "validation loss still falling", generic_old=epochs)
        return
    ended = f"{e.lr_metric} had annealed to {e.final_lr:.3g}"
    if cfg.scheduler == "cosine":
        cfg.set("max_epochs", 2 * epochs, f"the cosine schedule stretches with it: {ended}")
        return
    horizon = None if cfg.is_recipe else cfg.locate("horizon")
    if horizon and isinstance(horizon[1], int) and not isinstance(horizon[1], bool):
        cfg.set("max_epochs", 2 * epochs, f"stretch the lr schedule with it: {ended}", epochs)
        cfg.set("horizon", 2 * horizon[1], "the schedule's horizon, with the epochs")
        return
    cfg.hints.append(
        f"{e.schedule_text()}: more epochs at that rate gain little; to train longer, raise "
        "max_epochs and the scheduler's horizon together (T_max, total steps, milestones), "
        "or accept this result"
    )


def _summary(judgement: Judgement) -> str:
    e = judgement.evidence
    reason = judgement.reasons[0] if judgement.reasons else ""
    if judgement.verdict == "overfitting" and e.overfit_since is not None and e.gl is not None:
        return f"overfitting since epoch {e.overfit_since} of {e.epochs} (GL {e.gl:.0f}%)"
    return f"{judgement.verdict.replace('_', ' ')}: {reason}" if reason else judgement.verdict


def prescribe(
    judgement: Judgement,
    config: dict[str, Any] | None = None,
    config_source: ConfigSource = None,
    thresholds: Thresholds | None = None,
) -> Prescription:
    """The changes for ``judgement``'s verdict, expressed in ``config``'s own keys when possible.

    Example:
        >>> from lightreg.diagnose.rules import Evidence, Judgement
        >>> e = Evidence(epochs=50, best_epoch=12, gl=34.0, overfit_since=13)
        >>> p = prescribe(Judgement("overfitting", e), {"dropout": 0.3, "wd": 1e-4}, "hparams")
        >>> p.headline()  # doctest: +NORMALIZE_WHITESPACE
        "overfitting since epoch 13 of 50 (GL 34%): set augment to 'moderate' (add augmentation);
        dropout 0.3 -> 0.5; wd 0.0001 -> 0.001; set early_stopping.patience to 5
        (37 epochs ran past the best); reduce the model size, or get more training data"
    """
    t = thresholds or Thresholds()
    cfg = _Config(config if isinstance(config, dict) else None, config_source)
    e = judgement.evidence
    verdict = judgement.verdict
    if verdict == "overfitting":
        severe = (e.gl or 0.0) >= t.severe_gl or (e.acc_gap or 0.0) >= t.severe_acc_gap
        _more_regularization(cfg, severe)
        _early_stopping(cfg, judgement)
    elif verdict == "underfitting":
        _less_regularization(cfg)
    elif verdict == "diverging":
        _stabilize(cfg)
    elif verdict == "still_improving":
        _more_epochs(cfg, judgement)
    elif verdict == "good_fit":
        cfg.hints.append("keep the current regularization")
    else:
        cfg.hints.append(
            f"log a validation loss every epoch and train at least {t.min_epochs} epochs"
        )
    return Prescription(_summary(judgement), tuple(_ordered(cfg.changes)), tuple(cfg.hints))


def _ordered(changes: list[Change]) -> Iterator[Change]:
    """Drop repeated keys (first wins), keeping the decision-process order."""
    seen: set[tuple[str, ...]] = set()
    for change in changes:
        if change.key not in seen:
            seen.add(change.key)
            yield change
