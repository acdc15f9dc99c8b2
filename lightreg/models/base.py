"""The shared LightningModule for lightreg's classifiers: loss, torchmetrics, optimizer.

Subclasses build their layers: ``self.net``, or their own ``forward``. Targets may be class indices or soft targets (from MixUp or
CutMix); the training loss applies label smoothing, evaluation losses are plain cross-entropy so
that runs with and without smoothing compare fairly. Logs ``{stage}_loss``, ``{stage}_acc`` and,
for val and test, ``{stage}_ece`` (expected calibration error), once per epoch.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Linear(ClassifierModule):
    ...     def __init__(self):
    ...         super().__init__(num_classes=3)
    ...         self.net = nn.Linear(4, 3)
    >>> Linear()(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from lightreg.losses import label_smoothing_cross_entropy
from lightreg.optim import OPTIMIZER_NAMES, SAM, param_groups

OptimizerName = Literal[OPTIMIZER_NAMES]
SchedulerName = Literal["none", "cosine", "plateau"]
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


class ClassifierModule(pl.LightningModule):
    """Training, evaluation and optimization shared by the MLP, CNN and LSTM classifiers.

    Args:
        num_classes: number of classes ``K``.
        lr: learning rate.
        optimizer: ``adamw``, ``adam``, ``sgd`` (with Nesterov momentum) or ``rmsprop``.
        momentum: momentum for SGD and RMSprop.
        weight_decay: decoupled weight decay on weights only (see ``lightreg.optim.param_groups``).
        label_smoothing: smoothing ``eps`` of the training targets.
        scheduler: ``none``, ``cosine`` (over ``max_epochs``) or ``plateau`` (on ``val_loss``).
        max_epochs: horizon of the cosine schedule.
        sam_rho: wrap the optimizer in ``lightreg.optim.SAM`` with this radius (None = off).
            Training loss and accuracy are logged from SAM's first pass (at ``w``) only.

    Raises:
        ValueError: for an unknown optimizer or scheduler name.

    Example:
        >>> module = ClassifierModule(num_classes=3, optimizer="sgd", scheduler="cosine")
        >>> module.optimizer_name, module.scheduler_name, module.lr
        ('sgd', 'cosine', 0.001)
        >>> ClassifierModule(num_classes=3, optimizer="lion")
        Traceback (most recent call last):
        ...
        ValueError: `optimizer` can be adamw, adam, sgd, rmsprop; got 'lion'
    """

    net: nn.Module
    test_prefix: str = "test"

    def __init__(
        self,
        num_classes: int,
        *,
        lr: float = 1e-3,
        optimizer: OptimizerName = "adamw",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        label_smoothing: float = 0.0,
        scheduler: SchedulerName = "none",
        max_epochs: int = 30,
        sam_rho: float | None = None,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZER_NAMES:
            raise ValueError(f"`optimizer` can be {', '.join(OPTIMIZER_NAMES)}; got {optimizer!r}")
        if scheduler not in ("none", "cosine", "plateau"):
            raise ValueError(f"`scheduler` can be none, cosine, plateau; got {scheduler!r}")
        self.num_classes = num_classes
        self.lr = lr
        self.optimizer_name = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.scheduler_name = scheduler
        self.max_epochs = max_epochs
        self.sam_rho = sam_rho
        self.train_acc = MulticlassAccuracy(num_classes)
        self.val_acc = MulticlassAccuracy(num_classes)
        self.test_acc = MulticlassAccuracy(num_classes)
        self.val_ece = MulticlassCalibrationError(num_classes, n_bins=10)
        self.test_ece = MulticlassCalibrationError(num_classes, n_bins=10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, K]``.

        Example:
            >>> from lightreg.models.mlp import MLPClassifier
            >>> MLPClassifier(4, 3, hidden=(8,))(torch.zeros(2, 4)).shape
            torch.Size([2, 3])
        """
        return self.net(x)

    def _shared_step(self, batch: Any, stage: str, prefix: str) -> torch.Tensor:
        x, y = batch[0], batch[1]
        logits = self(x)
        hard = y.argmax(dim=-1) if y.ndim > 1 else y
        if stage == "train":
            loss = label_smoothing_cross_entropy(logits, y, smoothing=self.label_smoothing)
            if self._sam_second_pass():
                return loss
        else:
            loss = F.cross_entropy(logits, y)
        sync = self.trainer.world_size > 1 if self._trainer is not None else False
        self.log(
            f"{prefix}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=sync
        )
        accuracy = getattr(self, f"{stage}_acc")
        accuracy(logits, hard)
        self.log(f"{prefix}_acc", accuracy, on_step=False, on_epoch=True, prog_bar=True)
        if stage != "train":
            calibration = getattr(self, f"{stage}_ece")
            calibration(logits, hard)
            self.log(f"{prefix}_ece", calibration, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Loss on a (possibly mixed) training batch.

        Example:
            >>> from lightreg.models.mlp import MLPClassifier
            >>> model = MLPClassifier(4, 3, hidden=(8,), label_smoothing=0.1)
            >>> soft = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])  # e.g. MixUp targets
            >>> model.training_step((torch.zeros(2, 4), soft), 0).shape  # a scalar loss
            torch.Size([])
        """
        return self._shared_step(batch, "train", "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Validation loss, accuracy and calibration error.

        Example:
            >>> from lightreg.models.mlp import MLPClassifier
            >>> model = MLPClassifier(4, 3, hidden=(8,)).eval()
            >>> model.validation_step((torch.zeros(2, 4), torch.tensor([0, 2])), 0)
            >>> model.val_acc.update_count
            1
        """
        self._shared_step(batch, "val", "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """Test metrics, logged under ``test_prefix`` (``test`` unless the runner says otherwise).

        Example:
            >>> from lightreg.models.mlp import MLPClassifier
            >>> model = MLPClassifier(4, 3, hidden=(8,)).eval()
            >>> model.test_step((torch.zeros(2, 4), torch.tensor([0, 2])), 0)
            >>> model.test_ece.update_count
            1
        """
        self._shared_step(batch, "test", self.test_prefix)

    def _sam_second_pass(self) -> bool:
        """Whether SAM is running the training step at ``w + e`` (not a step to log)."""
        optimizers = self.trainer.optimizers if self._trainer is not None else []
        return any(isinstance(o, SAM) and o.perturbed for o in optimizers)

    def configure_optimizers(self) -> Any:
        """The optimizer over ``param_groups`` (no decay on biases and norms), wrapped in
        ``SAM`` when ``sam_rho`` is set, plus a schedule.

        Example:
            >>> from lightreg.models.mlp import MLPClassifier
            >>> type(MLPClassifier(4, 3, optimizer="sgd").configure_optimizers()).__name__
            'SGD'
            >>> config = MLPClassifier(4, 3, scheduler="cosine").configure_optimizers()
            >>> type(config["optimizer"]).__name__, type(config["lr_scheduler"]).__name__
            ('AdamW', 'CosineAnnealingLR')
            >>> type(MLPClassifier(4, 3, sam_rho=0.05).configure_optimizers()).__name__
            'SAM'
        """
        groups = param_groups(self, self.weight_decay)
        if self.optimizer_name == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=self.lr)
        elif self.optimizer_name == "adam":
            optimizer = torch.optim.Adam(groups, lr=self.lr)
        elif self.optimizer_name == "sgd":
            optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum, nesterov=True)
        else:
            optimizer = torch.optim.RMSprop(groups, lr=self.lr, momentum=self.momentum)
        if self.sam_rho is not None:
            optimizer = SAM(optimizer, rho=self.sam_rho)
        if self.scheduler_name == "cosine":
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
            return {"optimizer": optimizer, "lr_scheduler": schedule}
        if self.scheduler_name == "plateau":
            schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=5)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": schedule, "monitor": "val_loss"},
            }
        return optimizer


def check_block_options(bn_position: str = "before_activation", **rates: float) -> None:
    """Raise ValueError for a dropout rate outside [0, 1) or an unknown ``bn_position``.

    Example:
        >>> check_block_options(dropout=0.5, output_dropout=0.0)
        >>> check_block_options(dropout=1.0)
        Traceback (most recent call last):
        ...
        ValueError: `dropout` must be in [0, 1), got 1.0
    """
    for name, rate in rates.items():
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1), got {rate}")
    if bn_position not in ("before_activation", "after_activation"):
        raise ValueError(
            f"`bn_position` can be before_activation, after_activation; got {bn_position!r}"
        )


def norm_and_activation(
    norm: nn.Module | None, activation: str, bn_position: str
) -> list[nn.Module]:
    """The activation, with ``norm`` (if any) before or after it as ``bn_position`` says.

    Example:
        >>> layers = norm_and_activation(nn.BatchNorm1d(4), "relu", "after_activation")
        >>> [type(layer).__name__ for layer in layers]
        ['ReLU', 'BatchNorm1d']
        >>> norm_and_activation(None, "tanh", "before_activation")
        [Tanh()]
    """
    act = [ACTIVATIONS[activation]()]
    if norm is None:
        return act
    return [norm, *act] if bn_position == "before_activation" else [*act, norm]


def dense_block(
    in_features: int,
    out_features: int,
    *,
    dropout: float,
    batch_norm: bool,
    bn_position: str,
    activation: str,
) -> nn.Sequential:
    """Linear -> [BN] -> activation -> [BN] -> Dropout, BN placed as ``bn_position`` says.

    Example:
        >>> block = dense_block(4, 8, dropout=0.2, batch_norm=True,
        ...                     bn_position="before_activation", activation="relu")
        >>> [type(layer).__name__ for layer in block]
        ['Linear', 'BatchNorm1d', 'ReLU', 'Dropout']
    """
    layers: list[nn.Module] = [nn.Linear(in_features, out_features, bias=not batch_norm)]
    norm = nn.BatchNorm1d(out_features) if batch_norm else None
    layers += norm_and_activation(norm, activation, bn_position)
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def dense_stack(
    widths: Sequence[int],
    *,
    dropout: float,
    batch_norm: bool,
    bn_position: str,
    activation: str,
) -> list[nn.Module]:
    """One :func:`dense_block` per consecutive pair of ``widths``.

    Example:
        >>> blocks = dense_stack([8, 4, 2], dropout=0.1, batch_norm=False,
        ...                      bn_position="before_activation", activation="relu")
        >>> [block[0].out_features for block in blocks]
        [4, 2]
    """
    return [
        dense_block(
            a,
            b,
            dropout=dropout,
            batch_norm=batch_norm,
            bn_position=bn_position,
            activation=activation,
        )
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
