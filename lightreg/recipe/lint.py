"""Lint a validated recipe for regularization combinations the chapter warns against.

A recipe can be valid (every key typed and bounded) and still be a known mistake. Each rule here
comes from ``shared/reference/regularization-chapter.md``:

- "Avoid Redundant Combinations" (Q7): BatchNorm + LayerNorm; heavy dropout + heavy L2;
  BatchNorm + high dropout.
- "Common Mistakes to Avoid": L2 through standard Adam instead of AdamW (with Q9: in Adam and
  RMSprop, ``weight_decay`` is a coupled L2 penalty divided by the adaptive denominator); BatchNorm
  with batches under 8; early stopping that monitors the test set.
- Q11 "How do you choose dropout rates?": no dropout on the output layer; no rate above 0.7.
- Stochastic depth above the deepest block's ``p_L = 0.5`` of Huang et al. 2016; a DropBlock
  ``block_size`` larger than the maps it drops from (Ghiasi et al. 2018 size blocks to the map).
- Weight averaging (EMA, Lightning's SWA) is this project's rule: an EMA that spans more steps
  than the run has; SWA that an early stop discards, that averages under 2 epochs, or whose
  average no validation or checkpoint ever sees; EMA and SWA together.
- SAM with a radius beyond Foret et al. 2021's search grid (0.01-0.5; 0.05 by default).
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

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lightreg.models.shapes import block_shapes
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
BUILT_IN_SAMPLES = {"digits": 1797, "breast_cancer": 569, "wine": 178, "mnist1d": 5000}
"""Samples in each built-in data set (user data sets are not read to lint a recipe)."""
MAX_DROP_PATH = 0.5
"""Huang et al. 2016 drop the deepest residual block with ``p_L = 0.5`` in every experiment."""
MAX_SAM_RHO = 0.5
"""The top of Foret et al. 2021's grid for SAM's ``rho`` ({0.01, 0.02, 0.05, 0.1, 0.2, 0.5})."""


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


def _drop_path_too_high(recipe: Recipe) -> Iterator[LintFinding]:
    rate = recipe.regularization.drop_path
    if rate > MAX_DROP_PATH:
        yield LintFinding(
            "drop-path-too-high",
            f"regularization.drop_path = {rate:g} is above {MAX_DROP_PATH:g}, the deepest block's "
            f"rate in Huang et al. 2016: that block is skipped more often than it trains and the "
            f"model underfits; use 0.1-{MAX_DROP_PATH:g}",
        )


def _cnn_maps(recipe: Recipe) -> list[tuple[int, ...]]:
    """The map size after each conv block's convolutions (what DropBlock drops from)."""
    model, data = recipe.model, recipe.data
    height, width, _ = data.image_shape
    kernel = model.kernel_size
    kernels = kernel if isinstance(kernel, list) else [kernel] * len(model.channels)
    try:
        shapes = block_shapes(
            (height, width) if data.kind == "image" else (width,),
            kernels,
            convs_per_block=model.convs_per_block,
            stride=model.stride,
            padding=model.padding,
            pool=model.pool,
        )
    except ValueError:  # convolutions that shrink the input to nothing: fit says so
        return []
    return [shape.size for shape in shapes]


def _dropblock_larger_than_map(recipe: Recipe) -> Iterator[LintFinding]:
    dropblock = recipe.regularization.dropblock
    if dropblock.rate == 0 or recipe.model.type != "cnn":
        return
    maps = _cnn_maps(recipe)
    smallest = min(maps, key=min, default=None)
    if smallest is not None and dropblock.block_size > min(smallest):
        yield LintFinding(
            "dropblock-larger-than-map",
            f"regularization.dropblock.block_size = {dropblock.block_size} is larger than the "
            f"{'x'.join(map(str, smallest))} maps of conv block {maps.index(smallest) + 1}: "
            f"each block is cut to the map and drops most of it, like dropping whole channels; "
            f"use block_size <= {min(smallest)} (Ghiasi et al. 2018: 7 on 14x14 maps)",
        )


def _early_stopping_on_test(recipe: Recipe) -> Iterator[LintFinding]:
    problem = monitor_on_test_split(recipe.early_stopping.monitor)
    if problem:
        yield LintFinding("early-stopping-on-test", problem)


def optimizer_steps(recipe: Recipe) -> int | None:
    """About how many optimizer steps ``recipe`` trains for; ``None`` for user data sets.

    Full training batches only (the loader drops the last partial one), per device.

    Example:
        >>> optimizer_steps(Recipe(name="x", trainer={"max_epochs": 2}))  # digits
        38
    """
    samples = BUILT_IN_SAMPLES.get(recipe.data.dataset)
    if samples is None:
        return None
    data, trainer = recipe.data, recipe.trainer
    devices = trainer.devices
    devices = len(devices) if isinstance(devices, list) else devices if devices != "auto" else 1
    train = int(samples * (1 - data.val_fraction - data.test_fraction) * data.train_fraction)
    batches = max(train // (data.batch_size * devices * trainer.num_nodes), 1)
    limit = trainer.limit_train_batches
    batches = min(batches, limit) if isinstance(limit, int) else max(int(batches * limit), 1)
    return math.ceil(batches / trainer.accumulate_grad_batches) * trainer.max_epochs


def _ema_longer_than_run(recipe: Recipe) -> Iterator[LintFinding]:
    decay, steps = recipe.regularization.ema_decay, optimizer_steps(recipe)
    if decay is None or steps is None or 1 / (1 - decay) <= steps:
        return
    yield LintFinding(
        "ema-longer-than-run",
        f"regularization.ema_decay = {decay:g} averages over about {round(1 / (1 - decay)):,} "
        f"optimizer steps, more than the {steps:,} this run has: the first weights still weigh "
        f"{decay**steps:.0%} in the average it validates and saves; use ema_decay under "
        f"{1 - 1 / steps:.4g}, or train longer",
    )


def _ema_with_swa(recipe: Recipe) -> Iterator[LintFinding]:
    reg = recipe.regularization
    if reg.ema_decay is not None and reg.swa is not None:
        yield LintFinding(
            "ema-with-swa",
            f"regularization.ema_decay = {reg.ema_decay:g} with regularization.swa: two weight "
            "averages fight over the weights (EMA validates and saves its own, SWA puts its own in "
            "at the end and SWA's averages include EMA's); keep one",
        )


def _swa_with_early_stopping(recipe: Recipe) -> Iterator[LintFinding]:
    stop = recipe.early_stopping
    if recipe.regularization.swa is None or not stop.enabled:
        return
    restore = (
        ", and restore_best_weights then loads an epoch from before it"
        if stop.restore_best_weights
        else ""
    )
    yield LintFinding(
        "swa-with-early-stopping",
        "regularization.swa with early_stopping.enabled: SWA puts its average in only when "
        f"training reaches trainer.max_epochs = {recipe.trainer.max_epochs}, so an early stop "
        f"discards it{restore}; set early_stopping.enabled false",
    )


def _swa_too_few_epochs(recipe: Recipe) -> Iterator[LintFinding]:
    swa, max_epochs = recipe.regularization.swa, recipe.trainer.max_epochs
    if swa is None:
        return
    averaged = max(max_epochs - swa.first_epoch(max_epochs), 0)
    if averaged < 2:
        yield LintFinding(
            "swa-too-few-epochs",
            f"regularization.swa.epoch_start = {swa.epoch_start:g} with trainer.max_epochs = "
            f"{max_epochs} averages {averaged} epoch(s): SWA needs several to average; start it "
            "earlier (e.g. epoch_start 0.75)",
        )


def _swa_never_scored(recipe: Recipe) -> Iterator[LintFinding]:
    if recipe.regularization.swa is not None and not _batch_norm(recipe):
        yield LintFinding(
            "swa-never-scored",
            "regularization.swa on a model without BatchNorm: Lightning puts the average in after "
            "the last validation, so no validation, best.ckpt or test score ever sees it; set "
            "model.batch_norm true (SWA then validates the average in one extra epoch)",
        )


def _sam_rho_too_large(recipe: Recipe) -> Iterator[LintFinding]:
    rho = recipe.regularization.sam_rho
    if rho is not None and rho > MAX_SAM_RHO:
        yield LintFinding(
            "sam-rho-too-large",
            f"regularization.sam_rho = {rho:g} is above {MAX_SAM_RHO:g}, the largest radius "
            f"Foret et al. searched: the ascent step leaves the region where the loss is close "
            f"to linear and SAM trains worse; use 0.01-0.2 (0.05 by default)",
        )


RULES: tuple[Callable[[Recipe], Iterator[LintFinding]], ...] = (
    _bn_with_layernorm,
    _heavy_dropout_heavy_l2,
    _bn_with_high_dropout,
    _bn_small_batch,
    _weight_decay_with_adam,
    _output_dropout,
    _dropout_too_high,
    _mixing_with_label_smoothing,
    _drop_path_too_high,
    _dropblock_larger_than_map,
    _early_stopping_on_test,
    _ema_longer_than_run,
    _ema_with_swa,
    _swa_with_early_stopping,
    _swa_too_few_epochs,
    _swa_never_scored,
    _sam_rho_too_large,
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
