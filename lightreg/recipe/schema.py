"""The recipe schema: one pydantic model per YAML section, every key typed and bounded.

A recipe is validated once, after overrides and presets are applied; everything downstream
reads the resulting :class:`Recipe`, never the YAML.

Every number is bounded so that what validates also runs: floats must be finite, counts and
widths have sane ceilings (an absurd ``batch_size`` is refused here, not deep inside ``fit``),
and paths must be usable as file names.

Example:
    >>> recipe = Recipe.model_validate({"name": "demo", "model": {"type": "mlp"}})
    >>> recipe.model.hidden
    [256, 128]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from lightreg.models.shapes import residual_padding_problem
from lightreg.optim import OPTIMIZER_NAMES
from lightreg.presets import IMAGE_DATASETS, SIGNAL_DATASETS
from lightreg.text import did_you_mean, short_repr

MAX_WIDTH = 65_536
"""Ceiling for batch sizes, layer widths and channel counts."""
MAX_EPOCHS = 100_000
"""Ceiling for epoch counts (``max_epochs``, ``patience``, ``start_from_epoch``)."""
MAX_DEVICES = 1024
"""Ceiling for device counts and ids, and for ``num_nodes``."""
MAX_LAYERS = 64
"""Ceiling for the number of hidden layers or conv blocks."""
SEED_RANGE = (0, 2**32 - 1)
"""Seeds numpy, torch and Lightning all accept."""
DIGITS_SHAPE = (8, 8, 1)
"""Height, width and channels of a ``digits`` image."""
MNIST1D_SHAPE = (1, 40, 1)
"""An MNIST-1D signal as augmentation sees it: an image of height 1, 40 steps, 1 channel."""
SIGNAL_SHAPE = (1, 64, 1)
"""Stand-in for a signals file whose shape cannot be read (the loader then reports why)."""

Probability = Annotated[float, Field(ge=0.0, lt=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
Epochs = Annotated[int, Field(ge=0, le=MAX_EPOCHS)]
Kernel = Annotated[int, Field(ge=1, le=64)]
PresetName = Literal["none", "conservative", "moderate", "aggressive"]
AugmentPreset = Literal["light", "moderate", "heavy"]


SHARDED_STRATEGIES = ("fsdp", "deepspeed")
STRATEGIES = ("auto", "ddp", "ddp_spawn", *SHARDED_STRATEGIES)
MONITORABLE = ("val_loss", "val_acc", "val_ece", "train_loss", "train_acc")


def _usable_path(path: Path) -> Path:
    """``path`` if the operating system can take it as a file name, else ValueError."""
    text = str(path)
    if "\0" in text:
        raise ValueError(f"must not contain a NUL byte (got {short_repr(text)})")
    try:
        encoded = os.fsencode(text)
    except UnicodeEncodeError:
        raise ValueError(f"cannot be encoded as a file name (got {short_repr(text)})") from None
    if len(encoded) > 4096 or any(len(part) > 255 for part in encoded.split(b"/")):
        raise ValueError(
            f"too long for a file name: over 4096 bytes, or a part over 255 "
            f"(got {short_repr(text)})"
        )
    return path


UsablePath = Annotated[Path, AfterValidator(_usable_path)]


def monitor_on_test_split(monitor: str) -> str | None:
    """Why early stopping cannot monitor ``monitor``, when it is a test-split metric; else None.

    The one rule for ``early_stopping.monitor = 'test_*'``: the schema lets it through, the
    linter warns with this line, and ``fit`` refuses with it.

    Example:
        >>> monitor_on_test_split("val_loss") is None
        True
        >>> monitor_on_test_split("test_acc").split(":")[0]
        "early_stopping.monitor = 'test_acc'"
    """
    if not monitor.startswith("test_"):
        return None
    return (
        f"early_stopping.monitor = {short_repr(monitor)}: the test split is scored once, after "
        "fit, so it cannot pick the stopping epoch or the best checkpoint; choosing on it leaks "
        "test data into the model and the test score is no longer unbiased; monitor val_loss"
    )


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors, values are re-checked on assignment.

    Floats must be finite everywhere (``.inf`` and ``.nan`` are refused).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(Section):
    """Where the samples come from and how they are split and batched.

    Example:
        >>> DataConfig(dataset="wine", train_fraction=0.5).batch_size
        64
    """

    dataset: Literal[
        "digits", "breast_cancer", "wine", "mnist1d", "image_folder", "csv", "signals"
    ] = "digits"
    path: UsablePath | None = Field(
        None, description="Image folder root, CSV file or .npz of signals (user data only)."
    )
    label_column: str = Field("label", description="CSV column holding the class label.")
    image_size: Annotated[int, Field(ge=4, le=1024)] = Field(
        32, description="Side length images from a folder are resized to."
    )
    channels: Literal[1, 3] = Field(3, description="Image folder: 1 = grayscale, 3 = RGB.")
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.15
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.15
    train_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        1.0, description="Keep this stratified share of the training split."
    )
    batch_size: Width = 64
    num_workers: Annotated[int, Field(ge=0, le=256)] = 0

    @model_validator(mode="after")
    def _check_source(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g}; "
                "expected under 0.9 so that training data remains"
            )
        if self.dataset in ("image_folder", "csv", "signals"):
            if self.path is None:
                raise ValueError(f"dataset '{self.dataset}' needs `path`")
            want_dir = self.dataset == "image_folder"
            if not (self.path.is_dir() if want_dir else self.path.is_file()):
                kind = "folder" if want_dir else "file"
                raise ValueError(f"path {short_repr(str(self.path))}: no such {kind}")
        return self

    @property
    def is_image(self) -> bool:
        """Whether samples are images (augmentable, usable by CNNs)."""
        return self.dataset in IMAGE_DATASETS

    @property
    def kind(self) -> Literal["image", "signal", "tabular"]:
        """What the samples are: images, 1D signals or tabular rows.

        Example:
            >>> DataConfig(dataset="mnist1d").kind, DataConfig(dataset="wine").kind
            ('signal', 'tabular')
        """
        if self.is_image:
            return "image"
        return "signal" if self.dataset in SIGNAL_DATASETS else "tabular"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Height, width and channels of one image as augmentation sees it; a signal ``[L, C]``
        is an image of height 1.

        Example:
            >>> DataConfig(dataset="image_folder", path=".", image_size=16, channels=1).image_shape
            (16, 16, 1)
            >>> DataConfig(dataset="mnist1d").image_shape
            (1, 40, 1)
        """
        if self.dataset == "digits":
            return DIGITS_SHAPE
        if self.dataset == "mnist1d":
            return MNIST1D_SHAPE
        if self.dataset == "signals":
            from lightreg.data.datasets import npz_signal_shape

            shape = npz_signal_shape(self.path) if self.path else None
            return (1, *shape) if shape else SIGNAL_SHAPE
        return (self.image_size, self.image_size, self.channels)


class _ModelBase(Section):
    batch_norm: bool = True
    bn_position: Literal["before_activation", "after_activation"] = "before_activation"
    activation: Literal["relu", "gelu", "silu", "tanh"] = "relu"


class MLPConfig(_ModelBase):
    """Dense-BN-activation-Dropout blocks; no dropout on the output layer.

    Example:
        >>> MLPConfig(hidden=[64]).type
        'mlp'
    """

    type: Literal["mlp"] = "mlp"
    hidden: list[Width] = Field(default_factory=lambda: [256, 128], max_length=MAX_LAYERS)
    residual: bool = Field(
        False, description="Add each hidden block's input to its output where the widths match."
    )


class CNNConfig(_ModelBase):
    """Conv-BN-activation-SpatialDropout blocks with pooling, then a dense head.

    The same keys build 2D layers for images and 1D layers for signals. The paper's MNIST-1D
    ``ConvBase`` is ``channels [25, 25, 25]``, ``convs_per_block 1``, ``kernel_size [5, 3, 3]``,
    ``stride 2``, ``padding 1``, ``pool false``, ``head []``, ``batch_norm false``.

    Example:
        >>> CNNConfig().channels
        [32, 64]
        >>> CNNConfig(channels=[8, 8], kernel_size=[5, 3]).kernel_size
        [5, 3]
    """

    type: Literal["cnn"] = "cnn"
    channels: list[Width] = Field(
        default_factory=lambda: [32, 64], min_length=1, max_length=MAX_LAYERS
    )
    convs_per_block: Annotated[int, Field(ge=1, le=4)] = 2
    head: list[Width] = Field(default_factory=lambda: [128], max_length=MAX_LAYERS)
    progressive_dropout: bool = Field(
        True, description="Grow the dropout rate with depth, up to regularization.dropout."
    )
    kernel_size: Kernel | list[Kernel] = Field(
        3, description="Kernel side of every conv, or one per conv block."
    )
    stride: Annotated[int, Field(ge=1, le=16)] = Field(
        1, description="Stride of each block's first conv."
    )
    padding: Annotated[int, Field(ge=0, le=64)] | None = Field(
        None, description="Zero padding of every conv; null = kernel_size // 2."
    )
    pool: bool = Field(True, description="Max-pool by 2 after each block while the maps allow.")
    block: Literal["plain", "residual"] = Field(
        "plain", description="Conv blocks alone, or inside a skip connection (for drop_path)."
    )

    @model_validator(mode="after")
    def _one_kernel_per_block(self) -> CNNConfig:
        if isinstance(self.kernel_size, list) and len(self.kernel_size) != len(self.channels):
            raise ValueError(
                f"kernel_size lists {len(self.kernel_size)} kernels for {len(self.channels)} "
                "conv blocks (channels); give one per block, or a single number"
            )
        return self

    @model_validator(mode="after")
    def _residual_keeps_the_size(self) -> CNNConfig:
        kernels = self.kernel_size if isinstance(self.kernel_size, list) else [self.kernel_size]
        problem = self.block == "residual" and residual_padding_problem(kernels, self.padding)
        if problem:
            raise ValueError(f"block 'residual': {problem}")
        return self


class LSTMConfig(Section):
    """A layer-normalized LSTM over the rows of the input, with a classifier head.

    Example:
        >>> LSTMConfig().hidden_size
        64
    """

    type: Literal["lstm_layernorm"] = "lstm_layernorm"
    hidden_size: Width = 64
    num_layers: Annotated[int, Field(ge=1, le=8)] = 2
    recurrent_dropout: Probability | None = Field(
        None, description="Variational dropout on h; None = regularization.dropout."
    )
    batch_norm: bool = Field(
        False, description="BatchNorm on the readout (redundant with LayerNorm)."
    )
    readout: Literal["last", "mean", "flatten"] = Field(
        "last", description="What the head reads: the last hidden state, the mean, every step."
    )
    embedding: Width | None = Field(
        None,
        description="Per-step linear layer before the LSTM (for signals with few channels).",
    )


ModelConfig = Annotated[MLPConfig | CNNConfig | LSTMConfig, Field(discriminator="type")]


class OverfittingMonitorConfig(Section):
    """Prechelt's live criterion (see ``lightreg.callbacks.OverfittingMonitor``).

    ``threshold`` is a percentage for GL, a ratio for PQ, and a count of rising strips for UP.

    Example:
        >>> OverfittingMonitorConfig(criterion="UP", threshold=3).threshold
        3.0
    """

    enabled: bool = True
    criterion: Literal["GL", "PQ", "UP"] = "GL"
    threshold: Annotated[float, Field(gt=0.0)] = 5.0
    strip: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 5
    stop: bool = False

    @model_validator(mode="after")
    def _check_up_count(self) -> OverfittingMonitorConfig:
        if self.criterion == "UP" and (self.threshold < 1 or self.threshold != int(self.threshold)):
            raise ValueError(
                f"threshold = {self.threshold:g} with criterion UP: expected a whole number "
                "of rising strips >= 1"
            )
        return self


AugmentStep = dict[str, dict[str, Any] | None]


class DropBlockConfig(Section):
    """DropBlock on every conv block's maps (Ghiasi et al. 2018); ``rate`` 0 turns it off.

    Example:
        >>> DropBlockConfig(rate=0.1).block_size
        3
    """

    rate: Probability = Field(
        0.0, description="Share of each conv map to drop (the paper's 1 - keep_prob); 0 = off."
    )
    block_size: Kernel = Field(
        3, description="Side of a dropped square (a run of steps on signals)."
    )


class SWAConfig(Section):
    """Lightning's ``StochasticWeightAveraging`` (Izmailov et al. 2018), used as it is.

    From epoch ``epoch_start`` on, the learning rate anneals to ``lrs`` and the weights at the
    start of each epoch are averaged; the average replaces the weights only if training reaches
    ``trainer.max_epochs`` (see the linter's ``swa-*`` rules).

    Example:
        >>> SWAConfig(lrs=0.01).epoch_start, SWAConfig(lrs=0.01).first_epoch(max_epochs=30)
        (0.8, 23)
    """

    lrs: Annotated[float, Field(gt=0.0, le=10.0)] = Field(
        description="Learning rate SWA anneals to from epoch_start on (Lightning's swa_lrs)."
    )
    epoch_start: (
        Annotated[int, Field(ge=1, le=MAX_EPOCHS)] | Annotated[float, Field(gt=0.0, lt=1.0)]
    ) = Field(0.8, description="First averaged epoch, counted from 1, or a share of max_epochs.")

    def first_epoch(self, max_epochs: int) -> int:
        """The first averaged epoch, 0-based, as Lightning computes it.

        Example:
            >>> SWAConfig(lrs=0.01, epoch_start=5).first_epoch(max_epochs=30)
            4
        """
        start = self.epoch_start
        if isinstance(start, float):
            start = int(max_epochs * start)
        return max(start - 1, 0)


class RegularizationConfig(Section):
    """Every regularization knob. ``preset`` fills the keys the recipe leaves out.

    ``weight_decay`` is decoupled (AdamW style); ``l1`` and ``l2`` are the coupled penalties.

    Example:
        >>> RegularizationConfig(dropout=0.3).max_norm is None
        True
    """

    preset: PresetName = "none"
    dropout: Probability = 0.0
    output_dropout: Probability = Field(0.0, description="Dropout before the output layer.")
    l1: NonNegative = 0.0
    l2: NonNegative = 0.0
    weight_decay: NonNegative = 0.0
    max_norm: Annotated[float, Field(gt=0.0)] | None = None
    drop_path: Probability = Field(
        0.0, description="Stochastic depth of the CNN's residual blocks; block i of L: rate*i/L."
    )
    dropblock: DropBlockConfig = Field(default_factory=DropBlockConfig)
    label_smoothing: Probability = 0.0
    mixup_alpha: NonNegative = 0.0
    cutmix_alpha: NonNegative = 0.0
    augment: AugmentPreset | list[AugmentStep] | None = None
    overfitting_monitor: OverfittingMonitorConfig = Field(default_factory=OverfittingMonitorConfig)
    weight_stats: bool = True
    ema_decay: Annotated[float, Field(gt=0.0, lt=1.0)] | None = Field(
        None, description="EMA of the weights, validated and saved in their place; null = off."
    )
    swa: SWAConfig | None = Field(None, description="Stochastic weight averaging; null = off.")
    sam_rho: Annotated[float, Field(gt=0.0)] | None = Field(
        None, description="Sharpness-aware minimization's radius (lightreg.optim.SAM); null = off."
    )


class OptimConfig(Section):
    """Optimizer and learning-rate schedule.

    Example:
        >>> OptimConfig().name
        'adamw'
    """

    name: Literal[OPTIMIZER_NAMES] = "adamw"
    lr: Annotated[float, Field(gt=0.0, le=10.0)] = 1e-3
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    scheduler: Literal["none", "cosine", "plateau"] = "none"


class TrainerConfig(Section):
    """The Lightning ``Trainer`` arguments a recipe may set.

    Example:
        >>> TrainerConfig(max_epochs=5).strategy
        'auto'
    """

    max_epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 30
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: Annotated[int, Field(ge=1, le=MAX_DEVICES)] | Literal["auto"] | list[int] = 1
    num_nodes: Annotated[int, Field(ge=1, le=MAX_DEVICES)] = 1
    strategy: Literal[STRATEGIES] = "auto"
    precision: Literal["32", "16-mixed", "bf16-mixed", "32-true"] = Field(
        "32", description="Also read: 32 and 16 (Lightning's 16-mixed), as numbers or text."
    )
    accumulate_grad_batches: Annotated[int, Field(ge=1, le=MAX_WIDTH)] = 1
    gradient_clip_val: Annotated[float, Field(gt=0.0)] | None = None
    sync_batchnorm: bool = False
    deterministic: bool = True
    limit_train_batches: (
        Annotated[float, Field(gt=0.0, le=1.0)] | Annotated[int, Field(ge=1, le=2**31)]
    ) = 1.0
    log_every_n_steps: Annotated[int, Field(ge=1, le=2**31)] = 10
    enable_progress_bar: bool = True

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return {"16": "16-mixed"}.get(value, value) if isinstance(value, str) else value

    @field_validator("devices")
    @classmethod
    def _device_ids(cls, value: int | str | list[int]) -> int | str | list[int]:
        if isinstance(value, list):
            if not value or len(value) > MAX_DEVICES:
                raise ValueError(f"expected 1 to {MAX_DEVICES} device ids, got {len(value)}")
            if not all(0 <= device < MAX_DEVICES for device in value):
                raise ValueError(
                    f"device ids must be 0 to {MAX_DEVICES - 1} (got {short_repr(value)})"
                )
        return value

    @property
    def shards_weights(self) -> bool:
        """Whether the strategy splits each weight across devices (FSDP, DeepSpeed).

        Example:
            >>> TrainerConfig(strategy="fsdp").shards_weights
            True
        """
        return self.strategy in SHARDED_STRATEGIES


class EarlyStoppingConfig(Section):
    """``lightreg.callbacks.EarlyStopping`` settings.

    Example:
        >>> EarlyStoppingConfig().restore_best_weights
        True
    """

    enabled: bool = True
    monitor: str = Field(
        "val_loss", description="A metric the models log: " + ", ".join(MONITORABLE) + "."
    )
    mode: Literal["min", "max"] = "min"
    patience: Epochs = 10
    min_delta: NonNegative = 0.0
    restore_best_weights: bool = True
    start_from_epoch: Epochs = 0

    @field_validator("monitor")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value in MONITORABLE or monitor_on_test_split(value):  # the linter explains
            return value
        hint = did_you_mean(value, MONITORABLE) or f"; logged during fit: {', '.join(MONITORABLE)}"
        raise ValueError(f"{short_repr(value)} is not a metric the models log{hint}")


class LoggingConfig(Section):
    """Where runs are written: ``<dir>/<name>/version_N/``.

    Example:
        >>> LoggingConfig().dir
        PosixPath('runs')
    """

    dir: UsablePath = Path("runs")
    tensorboard: bool = False


class Recipe(Section):
    """A whole training recipe: the single object every later step reads.

    Example:
        >>> Recipe(name="x").trainer.max_epochs
        30
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
    seed: Annotated[int, Field(ge=SEED_RANGE[0], le=SEED_RANGE[1])] = 42
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=MLPConfig)
    regularization: RegularizationConfig = Field(default_factory=RegularizationConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @field_validator("model", mode="before")
    @classmethod
    def _default_model_type(cls, value: Any) -> Any:
        if isinstance(value, dict) and "type" not in value:
            return {"type": "mlp", **value}
        return value

    @model_validator(mode="after")
    def _check_block_regularizers(self) -> Recipe:
        reg, model = self.regularization, self.model
        if reg.drop_path > 0 and getattr(model, "block", None) != "residual":
            has_none = (
                "model.block is 'plain', which has none: set model.block residual, or drop_path 0"
                if model.type == "cnn"
                else f"model.type '{model.type}' has none: use model.type cnn with model.block "
                "residual"
            )
            raise ValueError(
                f"regularization.drop_path = {reg.drop_path:g} drops the residual branch of a "
                f"block; {has_none}"
            )
        if reg.dropblock.rate > 0 and model.type != "cnn":
            raise ValueError(
                f"regularization.dropblock.rate = {reg.dropblock.rate:g} drops blocks of the "
                f"CNN's conv maps; model.type '{model.type}' has none: use model.type cnn"
            )
        return self

    @model_validator(mode="after")
    def _check_sam_can_step(self) -> Recipe:
        rho, cfg = self.regularization.sam_rho, self.trainer
        if rho is None:
            return self
        if cfg.accumulate_grad_batches > 1:
            raise ValueError(
                f"regularization.sam_rho = {rho:g} with trainer.accumulate_grad_batches = "
                f"{cfg.accumulate_grad_batches}: SAM's second pass would see only the last "
                "micro-batch; set accumulate_grad_batches 1 and raise data.batch_size instead"
            )
        if cfg.precision == "16-mixed" and cfg.accelerator != "cpu":
            raise ValueError(
                f"regularization.sam_rho = {rho:g} with trainer.precision '16-mixed': its "
                "GradScaler (on GPUs) steps without the closure SAM runs twice; use precision "
                "'bf16-mixed' or '32'"
            )
        return self

    @model_validator(mode="after")
    def _check_model_fits_data(self) -> Recipe:
        if self.model.type != "mlp" and self.data.kind == "tabular":
            raise ValueError(
                f"model.type '{self.model.type}' needs image data; data.dataset "
                f"'{self.data.dataset}' is tabular (use model.type 'mlp')"
            )
        if self.regularization.cutmix_alpha > 0 and self.model.type != "cnn":
            raise ValueError(
                f"regularization.cutmix_alpha = {self.regularization.cutmix_alpha:g} cuts boxes "
                f"out of images; model.type '{self.model.type}' does not take images "
                "(use model.type 'cnn', or mixup_alpha)"
            )
        if self.trainer.shards_weights:
            reg = self.regularization
            per_weight = [
                name
                for name, on in (
                    ("regularization.l1", reg.l1 > 0),
                    ("regularization.l2", reg.l2 > 0),
                    ("regularization.max_norm", reg.max_norm is not None),
                    ("regularization.ema_decay", reg.ema_decay is not None),
                    ("regularization.swa", reg.swa is not None),
                    ("regularization.sam_rho", reg.sam_rho is not None),
                    (
                        "early_stopping.restore_best_weights",
                        self.early_stopping.enabled and self.early_stopping.restore_best_weights,
                    ),
                )
                if on
            ]
            if per_weight:
                raise ValueError(
                    f"trainer.strategy '{self.trainer.strategy}' shards the weights, which "
                    f"{', '.join(per_weight)} need whole; use strategy 'ddp', or turn them off"
                )
        return self
