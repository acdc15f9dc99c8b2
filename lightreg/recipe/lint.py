"""Lint a validated recipe for regularization combinations the chapter warns against.

A recipe can be valid (every key typed and bounded) and still be a known mistake. Each rule here
comes from ``shared/reference/regularization-chapter.md``:

- "Avoid Redundant Combinations" (Q7): BatchNorm + LayerNorm; heavy dropout + heavy L2;
  BatchNorm + high dropout.
- "Common Mistakes to Avoid": L2 through standard Adam instead of AdamW (with Q9: in Adam and
  RMSprop, ``weight_decay`` is a coupled L2 penalty divided by the adaptive denominator); BatchNorm
  with batches under 8; early stopping that monitors the test set.
- Q11 "How do you choose dropout rates?": no dropout on the output layer; no rate above 0.7.
- MixUp/CutMix with label smoothing is this project's rule, not the chapter's: the mixed targets
  are already soft, and smoothing softens them a second time (section 9 and Q6 describe each alone).

Findings are advice, not errors: ``lightreg validate`` and ``lightreg fit`` print them, and
``--strict`` turns them into exit code 2. Imports neither torch nor lightning.

Example:
    >>> from lightreg.recipe.schema import Recipe
    >>> recipe = Recipe.model_validate({"name": "x", "regularization": {"output_dropout": 0.2}})
    >>> [finding.rule for finding in lint_recipe(recipe)]
    ['output-dropout']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lightreg.recipe.schema import Recipe, monitor_on_test_split

HEAVY_DROPOUT = 0.5
"""Dropout at or above this is "heavy": the chapter's aggressive preset and dense-layer ceiling."""
HEAVY_L2 = 1e-3
"""L2 or weight decay at or above this is "heavy": the top of the chapter's 1e-4 to 1e-3 range."""
BN_HIGH_DROPOUT = 0.5
"""With BatchNorm, dropout above this is "high". The chapter's own aggressive preset pairs BN with
0.5, and Q11 puts dense-layer dropout at 0.3-0.5, so only rates beyond that range are flagged."""
MIN_BN_BATCH = 8
"""BatchNorm batch statistics are too noisy below this batch size (Common Mistakes, 4)."""
MAX_DROPOUT = 0.7
"""Q11: "Dropout rate > 0.7 (too aggressive)"."""


@dataclass(frozen=True)
class LintFinding:
    """One problem in a recipe: a stable rule id and one line with the reason and the fix.

    Example:
        >>> LintFinding("output-dropout", "regularization.output_dropout = 0.2 ...").rule
        'output-dropout'
    """

    rule: str
    message: str


def _batch_norm(recipe: Recipe) -> bool:
    """Whether the model uses BatchNorm (LSTMConfig has no ``batch_norm`` field)."""
    return bool(getattr(recipe.model, "batch_norm", False))


def _bn_with_layernorm(recipe: Recipe) -> Iterator[LintFinding]:
    if recipe.model.type == "lstm_layernorm" and _batch_norm(recipe):
        yield LintFinding(
            "bn-with-layernorm",
            "model.batch_norm = true on a layer-normalized LSTM: BatchNorm and LayerNorm are "
            "redundant, and BatchNorm suits recurrent nets poorly; set model.batch_norm false",
        )


def _heavy_dropout_heavy_l2(recipe: Recipe) -> Iterator[LintFinding]:
    reg = recipe.regularization
    penalties = [(key, getattr(reg, key)) for key in ("l2", "weight_decay")]
    heavy = [f"regularization.{key} = {value:g}" for key, value in penalties if value >= HEAVY_L2]
    if reg.dropout >= HEAVY_DROPOUT and heavy:
        yield LintFinding(
            "heavy-dropout-heavy-l2",
            f"regularization.dropout = {reg.dropout:g} with {' and '.join(heavy)}: heavy dropout "
            f"plus heavy L2 is too much regularization and the model underfits; lower one of them "
            f"(dropout under {HEAVY_DROPOUT:g} or L2 under {HEAVY_L2:g})",
        )


def _bn_with_high_dropout(recipe: Recipe) -> Iterator[LintFinding]:
    dropout = recipe.regularization.dropout
    if _batch_norm(recipe) and dropout > BN_HIGH_DROPOUT:
        yield LintFinding(
            "bn-with-high-dropout",
            f"regularization.dropout = {dropout:g} with model.batch_norm = true: BatchNorm already "
            f"regularizes, so dropout this high on top over-regularizes; use dropout "
            f"0.2-{BN_HIGH_DROPOUT:g} or set model.batch_norm false",
        )


def _bn_small_batch(recipe: Recipe) -> Iterator[LintFinding]:
    batch_size = recipe.data.batch_size
    if _batch_norm(recipe) and batch_size < MIN_BN_BATCH:
        yield LintFinding(
            "bn-small-batch",
            f"data.batch_size = {batch_size} with model.batch_norm = true: batch statistics over "
            f"fewer than {MIN_BN_BATCH} samples are too noisy; use data.batch_size >= "
            f"{MIN_BN_BATCH} or set model.batch_norm false",
        )


def _weight_decay_with_adam(recipe: Recipe) -> Iterator[LintFinding]:
    name, weight_decay = recipe.optim.name, recipe.regularization.weight_decay
    if name in ("adam", "rmsprop") and weight_decay > 0:
        yield LintFinding(
            "weight-decay-with-adam",
            f"regularization.weight_decay = {weight_decay:g} with optim.name = '{name}': here "
            f"weight decay is a coupled L2 penalty that the adaptive denominator rescales, so "
            f"weights with large gradients are barely decayed; set optim.name adamw",
        )


def _output_dropout(recipe: Recipe) -> Iterator[LintFinding]:
    rate = recipe.regularization.output_dropout
    if rate > 0:
        yield LintFinding(
            "output-dropout",
            f"regularization.output_dropout = {rate:g}: dropout before the output layer randomly "
            f"removes evidence from the class scores; set it to 0 and regularize hidden layers",
        )


def _dropout_too_high(recipe: Recipe) -> Iterator[LintFinding]:
    rates = {"regularization.dropout": recipe.regularization.dropout}
    recurrent = getattr(recipe.model, "recurrent_dropout", None)
    if recurrent is not None:
        rates["model.recurrent_dropout"] = recurrent
    for key, rate in rates.items():
        if rate > MAX_DROPOUT:
            yield LintFinding(
                "dropout-too-high",
                f"{key} = {rate:g} is above {MAX_DROPOUT:g}: most units are dropped and the "
                f"model underfits; use 0.2-0.5",
            )


def _mixing_with_label_smoothing(recipe: Recipe) -> Iterator[LintFinding]:
    reg = recipe.regularization
    mixing = [
        f"regularization.{key} = {getattr(reg, key):g}"
        for key in ("mixup_alpha", "cutmix_alpha")
        if getattr(reg, key) > 0
    ]
    if mixing and reg.label_smoothing > 0:
        yield LintFinding(
            "mixing-with-label-smoothing",
            f"{' and '.join(mixing)} with regularization.label_smoothing = "
            f"{reg.label_smoothing:g}: mixed targets are already soft, and smoothing softens "
            f"them twice; set label_smoothing 0",
        )


def _early_stopping_on_test(recipe: Recipe) -> Iterator[LintFinding]:
    problem = monitor_on_test_split(recipe.early_stopping.monitor)
    if problem:
        yield LintFinding("early-stopping-on-test", problem)


RULES: tuple[Callable[[Recipe], Iterator[LintFinding]], ...] = (
    _bn_with_layernorm,
    _heavy_dropout_heavy_l2,
    _bn_with_high_dropout,
    _bn_small_batch,
    _weight_decay_with_adam,
    _output_dropout,
    _dropout_too_high,
    _mixing_with_label_smoothing,
    _early_stopping_on_test,
)
"""Every rule, in report order; each yields the findings for one recipe."""


def lint_recipe(recipe: Recipe) -> list[LintFinding]:
    """Every finding for ``recipe``, in rule order; an empty list means nothing to warn about.

    Example:
        >>> recipe = Recipe.model_validate({"name": "x", "data": {"batch_size": 4}})
        >>> print(lint_recipe(recipe)[0].message)  # doctest: +NORMALIZE_WHITESPACE
        data.batch_size = 4 with model.batch_norm = true: batch statistics over fewer than 8
        samples are too noisy; use data.batch_size >= 8 or set model.batch_norm false
    """
    return [finding for rule in RULES for finding in rule(recipe)]
