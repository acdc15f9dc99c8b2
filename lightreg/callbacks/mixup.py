"""MixUp and CutMix as batch-level callbacks for an unmodified classification LightningModule.

Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018,
https://arxiv.org/abs/1710.09412; Yun et al., "CutMix: Regularization Strategy to Train Strong
Classifiers with Localizable Features", ICCV 2019, https://arxiv.org/abs/1905.04899.

The callbacks replace the training batch's integer targets with soft targets (float ``[B, K]``)
in ``on_train_batch_start``; ``F.cross_entropy(logits, y)`` accepts class probabilities, so a
``training_step`` written for hard labels trains on the mixed batch unchanged. Validation and
test batches are never touched.

Example:
    >>> import torch
    >>> x, y = torch.tensor([[0.0], [1.0]]), soft_targets(torch.tensor([0, 1]), 2)
    >>> mixup(x, y, lam=0.75, index=torch.tensor([1, 0]))
    (tensor([[0.2500],
            [0.7500]]), tensor([[0.7500, 0.2500],
            [0.2500, 0.7500]]))
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, MutableMapping
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback
from typing_extensions import override

from lightreg.losses import smooth_targets

__all__ = ["CutMix", "MixUp", "MixUpCutMix", "cutmix", "cutmix_box", "mixup", "soft_targets"]

INPUT_KEYS = ("x", "image", "input", "inputs", "images")
TARGET_KEYS = ("y", "label", "target", "targets", "labels")
Box = tuple[int, int, int, int]


def soft_targets(
    y: torch.Tensor,
    num_classes: int,
    label_smoothing: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Class indices ``[B]`` (or probabilities ``[B, K]``) as smoothed probabilities ``[B, K]``.

    Example:
        >>> soft_targets(torch.tensor([1, 0]), 2, label_smoothing=0.2)
        tensor([[0.1000, 0.9000],
                [0.9000, 0.1000]])
    """
    if y.dim() == 1 and not y.is_floating_point():
        probs = F.one_hot(y.long(), num_classes).to(dtype)
    elif y.dim() == 2 and y.is_floating_point() and y.shape[1] == num_classes:
        probs = y.to(dtype)
    else:
        raise ValueError(
            f"targets must be class indices [B] or probabilities [B, {num_classes}],"
            f" got {tuple(y.shape)} {y.dtype}"
        )
    return smooth_targets(probs, num_classes, label_smoothing) if label_smoothing else probs


def mixup(
    x: torch.Tensor, y: torch.Tensor, lam: float, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``lam * (x, y) + (1 - lam) * (x, y)[index]``; new tensors, inputs untouched.

    Example:
        >>> mixup(torch.tensor([2.0, 4.0]), torch.eye(2), 0.5, torch.tensor([1, 0]))[0]
        tensor([3., 3.])
    """
    return (
        torch.lerp(x[index], x, lam),
        torch.lerp(y[index], y, lam),
    )


def cutmix_box(height: int, width: int, lam: float, generator: torch.Generator) -> Box:
    """A box ``(top, bottom, left, right)`` of area about ``(1 - lam) * H * W``, clipped to the image.

    Example:
        >>> cutmix_box(8, 8, 0.75, torch.Generator().manual_seed(0))
        (2, 6, 5, 8)
    """
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(torch.randint(height, (1,), generator=generator))
    cx = int(torch.randint(width, (1,), generator=generator))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, width)
    return top, bottom, left, right


def cutmix(
    x: torch.Tensor, y: torch.Tensor, box: Box, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Paste ``box`` of ``x[index]`` into ``x``; mix ``y`` by the box's actual area.

    Returns the new inputs, the new targets and ``lam = 1 - box_area / (H * W)``.

    Raises:
        ValueError: when ``x`` is not an image batch ``[B, C, H, W]``.

    Example:
        >>> x = torch.zeros(2, 1, 2, 2)
        >>> x[1] = 1.0
        >>> mixed, y, lam = cutmix(x, torch.eye(2), (0, 1, 0, 2), torch.tensor([1, 0]))
        >>> mixed[0, 0], lam
        (tensor([[1., 1.],
                [0., 0.]]), 0.5)
    """
    _check_image(x)
    top, bottom, left, right = box
    lam = 1.0 - (bottom - top) * (right - left) / (x.shape[-2] * x.shape[-1])
    mixed = x.clone()
    mixed[..., top:bottom, left:right] = x[index][..., top:bottom, left:right]
    return mixed, torch.lerp(y[index], y, lam), lam


class _BatchMixing(Callback):
    """Shared plumbing: find x and y in the batch, soft targets, a per-rank generator."""

    def __init__(self, label_smoothing: float, num_classes: int | None, seed: int | None) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1), got {label_smoothing}")
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"`num_classes` must be >= 2, got {num_classes}")
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes
        self.seed = seed
        self.generator: torch.Generator | None = None
        self._pending_state: torch.Tensor | None = None
        self._strategy: Any = None
        self._rank = 0

    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix inputs ``x`` and soft targets ``y`` ``[B, K]``; subclasses define how."""
        raise NotImplementedError

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._strategy, self._rank = trainer.strategy, trainer.global_rank
        self.seed_generator(trainer.global_rank)

    def seed_generator(self, rank: int) -> None:
        """A CPU generator seeded from ``(seed, rank)``: reproducible, different on each rank.

        ``seed`` defaults to Lightning's ``PL_GLOBAL_SEED`` (set by ``seed_everything``) or 0.
        """
        seed = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        entropy = np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0]
        self.generator = torch.Generator().manual_seed(int(entropy))
        if self._pending_state is not None:
            self.generator.set_state(self._pending_state)
            self._pending_state = None

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.generator is None:
            self.seed_generator(trainer.global_rank)
        x, y, put = _unpack(batch, type(self).__name__)
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        probs = soft_targets(y, self._classes(pl_module, y), self.label_smoothing, dtype)
        put(*self.mix(x, probs))

    @override
    def state_dict(self) -> dict[str, Any]:
        """The generator state; under DDP every rank's, since only rank zero writes the file.

        Lightning builds the checkpoint on every rank, so the gather is a collective all ranks join.
        """
        if self.generator is None:
            return {}
        state = self.generator.get_state()
        strategy = self._strategy
        if strategy is None or strategy.world_size == 1:
            return {"generator": state}
        gathered = strategy.all_gather(state.to(strategy.root_device, torch.int64))
        return {"generators": [row.to("cpu", torch.uint8) for row in gathered.unbind(0)]}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore this rank's stream (a rank the checkpoint lacks keeps its fresh seed)."""
        states = state_dict.get("generators")
        if states is not None:
            state = states[self._rank] if self._rank < len(states) else None
        else:
            state = state_dict.get("generator")
        if state is None:
            return
        if self.generator is None:
            self._pending_state = state
        else:
            self.generator.set_state(state)

    def _beta(self, alpha: float) -> float:
        assert self.generator is not None
        concentration = torch.tensor([alpha, alpha], dtype=torch.float64)
        return float(torch._sample_dirichlet(concentration, generator=self.generator)[0])

    def _permutation(self, size: int, device: torch.device) -> torch.Tensor:
        return torch.randperm(size, generator=self.generator).to(device)

    def _classes(self, pl_module: pl.LightningModule, y: torch.Tensor) -> int:
        hparams = getattr(pl_module, "hparams", {})
        for found in (self.num_classes, getattr(pl_module, "num_classes", None)):
            if found is not None:
                return int(found)
        if "num_classes" in hparams:
            return int(hparams["num_classes"])
        if y.dim() == 2:
            return y.shape[1]
        raise ValueError(
            f"{type(self).__name__} cannot tell the number of classes: pass"
            f" `{type(self).__name__}(num_classes=K)`, or give your LightningModule a"
            " `num_classes` attribute or hyperparameter"
        )


class MixUp(_BatchMixing):
    """MixUp: train on convex combinations of pairs of examples and of their labels.

    Each training batch is mixed with a shuffled copy of itself,
    ``x = lam * x + (1 - lam) * x[perm]`` and likewise for one-hot targets, with
    ``lam ~ Beta(alpha, alpha)`` drawn once per batch. The batch must be a list ``[x, y]`` or a
    dict with ``x``/``image``/``input`` and ``y``/``label``/``target`` keys; it is updated in place.

    Args:
        alpha: Beta concentration ``> 0``; 0.2-0.4 for ImageNet-scale data, up to 1.0 on small
            datasets.
        label_smoothing: smoothing ``eps`` applied to the one-hot targets before mixing.
        num_classes: ``K``; by default read from the LightningModule's ``num_classes``
            attribute or hyperparameter, or from soft targets.
        seed: generator seed; default ``PL_GLOBAL_SEED`` or 0. Each rank draws from its own
            stream seeded with ``(seed, global_rank)``; the stream state is checkpointed.

    Raises:
        ValueError: for ``alpha <= 0``, ``label_smoothing`` outside ``[0, 1)``,
            ``num_classes < 2``; at the first batch, when the number of classes is unknown.
        TypeError: at the first batch, when the batch is a tuple or has no x/y.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(callbacks=[MixUp(alpha=0.2, num_classes=10)])
    """

    def __init__(
        self,
        alpha: float = 0.2,
        *,
        label_smoothing: float = 0.0,
        num_classes: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(label_smoothing, num_classes, seed)
        self.alpha = _check_alpha("alpha", alpha)

    @property
    @override
    def state_key(self) -> str:
        """One key per ``alpha``, so several instances can share a checkpoint."""
        return self._generate_state_key(alpha=self.alpha)

    @override
    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Blend each sample with a shuffled partner: ``lam * x + (1 - lam) * x[index]``."""
        if not x.is_floating_point():
            raise TypeError(f"MixUp needs floating-point inputs, got {x.dtype}")
        return mixup(x, y, self._beta(self.alpha), self._permutation(x.shape[0], x.device))


class CutMix(_BatchMixing):
    """CutMix: paste a random box from a shuffled copy of the batch; mix labels by its area.

    ``lam ~ Beta(alpha, alpha)`` sets the box size; the box is clipped to the image and the
    targets are mixed with the clipped box's actual area, ``lam = 1 - area / (H * W)``.
    Needs image batches ``[B, C, H, W]``. Batch format as for :class:`MixUp`.

    Args:
        alpha: Beta concentration ``> 0`` (1.0 in the paper: uniform box area).
        label_smoothing: smoothing ``eps`` applied to the one-hot targets before mixing.
        num_classes: ``K``; inferred as for :class:`MixUp`.
        seed: generator seed, as for :class:`MixUp`.

    Raises:
        ValueError: for ``alpha <= 0`` and the other arguments as for :class:`MixUp`; at the
            first batch, when the inputs are not ``[B, C, H, W]``.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(callbacks=[CutMix(alpha=1.0, num_classes=10)])
    """

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        label_smoothing: float = 0.0,
        num_classes: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(label_smoothing, num_classes, seed)
        self.alpha = _check_alpha("alpha", alpha)

    @property
    @override
    def state_key(self) -> str:
        """One key per ``alpha``, so several instances can share a checkpoint."""
        return self._generate_state_key(alpha=self.alpha)

    @override
    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Paste a box from a shuffled partner; mix the targets by the box's area."""
        _check_image(x)
        assert self.generator is not None
        box = cutmix_box(x.shape[-2], x.shape[-1], self._beta(self.alpha), self.generator)
        mixed, targets, _ = cutmix(x, y, box, self._permutation(x.shape[0], x.device))
        return mixed, targets


class MixUpCutMix(_BatchMixing):
    """Per batch, CutMix with probability ``switch_prob``, else MixUp (as in timm).

    Args:
        mixup_alpha: MixUp's Beta concentration ``> 0``.
        cutmix_alpha: CutMix's Beta concentration ``> 0``.
        switch_prob: probability of CutMix for a batch, in ``[0, 1]``.
        label_smoothing: smoothing ``eps`` applied to the one-hot targets before mixing.
        num_classes: ``K``; inferred as for :class:`MixUp`.
        seed: generator seed, as for :class:`MixUp`.

    Raises:
        ValueError: for a non-positive alpha, ``switch_prob`` outside ``[0, 1]``, the other
            arguments as for :class:`MixUp`; at the first batch, when the inputs are not
            ``[B, C, H, W]``.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(callbacks=[MixUpCutMix(0.2, 1.0, switch_prob=0.5, num_classes=10)])
    """

    def __init__(
        self,
        mixup_alpha: float = 0.2,
        cutmix_alpha: float = 1.0,
        switch_prob: float = 0.5,
        *,
        label_smoothing: float = 0.0,
        num_classes: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(label_smoothing, num_classes, seed)
        self.mixup_alpha = _check_alpha("mixup_alpha", mixup_alpha)
        self.cutmix_alpha = _check_alpha("cutmix_alpha", cutmix_alpha)
        if not 0.0 <= switch_prob <= 1.0:
            raise ValueError(f"`switch_prob` must be in [0, 1], got {switch_prob}")
        self.switch_prob = switch_prob

    @property
    @override
    def state_key(self) -> str:
        """One key per configuration, so several instances can share a checkpoint."""
        return self._generate_state_key(
            mixup_alpha=self.mixup_alpha, cutmix_alpha=self.cutmix_alpha
        )

    @override
    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CutMix with probability ``switch_prob``, else MixUp, drawn per batch."""
        _check_image(x)
        assert self.generator is not None
        index = self._permutation(x.shape[0], x.device)
        if float(torch.rand(1, generator=self.generator)) < self.switch_prob:
            box = cutmix_box(
                x.shape[-2], x.shape[-1], self._beta(self.cutmix_alpha), self.generator
            )
            mixed, targets, _ = cutmix(x, y, box, index)
            return mixed, targets
        return mixup(x, y, self._beta(self.mixup_alpha), index)


def _check_alpha(name: str, alpha: float) -> float:
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"`{name}` must be a finite number > 0, got {alpha}")
    return float(alpha)


def _check_image(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"CutMix needs image batches [B, C, H, W], got shape {tuple(x.shape)}")


Put = Callable[[torch.Tensor, torch.Tensor], None]


def _unpack(batch: Any, owner: str) -> tuple[torch.Tensor, torch.Tensor, Put]:
    """``(x, y, put)`` where ``put(x, y)`` writes new values back into ``batch`` in place."""
    if isinstance(batch, tuple):
        raise TypeError(
            f"{owner} replaces the batch's inputs and targets in place, but the batch is a tuple:"
            " return a list [x, y] from your Dataset/collate, not a tuple"
        )
    if isinstance(batch, list) and len(batch) >= 2:

        def put_list(x: torch.Tensor, y: torch.Tensor) -> None:
            batch[0], batch[1] = x, y

        return batch[0], batch[1], put_list
    if isinstance(batch, MutableMapping):
        x_key = next((k for k in INPUT_KEYS if k in batch), None)
        y_key = next((k for k in TARGET_KEYS if k in batch), None)
        if x_key is not None and y_key is not None:

            def put_dict(x: torch.Tensor, y: torch.Tensor) -> None:
                batch[x_key], batch[y_key] = x, y

            return batch[x_key], batch[y_key], put_dict
        raise TypeError(
            f"{owner} needs an input key ({'/'.join(INPUT_KEYS)}) and a target key"
            f" ({'/'.join(TARGET_KEYS)}) in the batch dict, got keys {list(batch)}"
        )
    raise TypeError(
        f"{owner} needs the batch as a list [x, y] or a dict, got {type(batch).__name__}"
    )
