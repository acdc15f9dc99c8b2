"""Max-norm weight constraint, applied right after each optimizer step.

Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 2014
(section 5.1), https://jmlr.org/papers/v15/srivastava14a.html; Keras ``constraints.max_norm``.

Example:
    >>> import torch
    >>> w = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    >>> max_norm_(w, max_value=1.0)
    tensor([[0.6000, 0.8000],
            [0.3000, 0.4000]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback
from torch import nn
from torch.optim import Optimizer
from torch.utils.hooks import RemovableHandle
from typing_extensions import override

__all__ = ["MaxNorm", "max_norm_"]

SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@torch.no_grad()
def max_norm_(weight: torch.Tensor, max_value: float) -> torch.Tensor:
    """Rescale, in place, each output unit's incoming weights to L2 norm ``<= max_value``.

    Output units are indexed by dim 0 (Linear rows, Conv filters); the norm runs over every
    other dim. A unit with norm ``<= max_value`` is multiplied by exactly ``1.0``, so it is left
    unchanged bit for bit; a larger one is scaled by ``max_value / norm`` (Keras computes
    ``w * clip(norm, 0, c) / (eps + norm)``, which nudges every unit).

    Example:
        >>> w = torch.ones(2, 1, 2, 2)  # two 1x2x2 conv filters, norm 2
        >>> max_norm_(w, 1.0).flatten(1)
        tensor([[0.5000, 0.5000, 0.5000, 0.5000],
                [0.5000, 0.5000, 0.5000, 0.5000]])
    """
    dims = tuple(range(1, weight.dim()))
    norm = torch.linalg.vector_norm(weight, dim=dims, keepdim=True, dtype=torch.float32)
    scale = torch.where(norm > max_value, max_value / norm, 1.0)
    return weight.mul_(scale.to(weight.dtype))


class MaxNorm(Callback):
    """Keep every output unit's incoming weight vector within an L2 ball of radius ``max_value``.

    Applied after every optimizer step that actually happened: the callback registers a
    ``torch.optim.Optimizer`` step post-hook, so it runs once per step under gradient
    accumulation, not at all for an AMP step skipped on overflow, and only for the layers
    whose weights that optimizer updates. Linear layers constrain rows; ConvNd layers each
    output filter (norm over input channels and kernel). Biases are never constrained.

    Args:
        max_value: the maximum norm ``c > 0`` (Hinton et al. used 3-4).
        modules: layer types to constrain; any of ``nn.Linear`` and ``nn.Conv1d/2d/3d``
            (including subclasses). Defaults to ``[nn.Linear]``, as Keras users write it on
            Dense layers.

    Raises:
        ValueError: when ``max_value`` is not a finite number > 0 or ``modules`` is empty.
        TypeError: when ``modules`` names a type that is not Linear or ConvNd (e.g. a transposed
            convolution, whose output units are not along dim 0).

    Example:
        >>> from lightning.pytorch import Trainer
        >>> from torch import nn
        >>> trainer = Trainer(callbacks=[MaxNorm(3.0, modules=[nn.Linear, nn.Conv2d])])
    """

    def __init__(
        self, max_value: float = 3.0, modules: Sequence[type[nn.Module]] = (nn.Linear,)
    ) -> None:
        super().__init__()
        if not (math.isfinite(max_value) and max_value > 0):
            raise ValueError(f"`max_value` must be a finite number > 0, got {max_value}")
        if not modules:
            raise ValueError("`modules` must name at least one layer type, got an empty sequence")
        bad = [m for m in modules if not (isinstance(m, type) and issubclass(m, SUPPORTED))]
        if bad:
            names = ", ".join(t.__name__ for t in SUPPORTED)
            raise TypeError(f"`modules` can hold {names} (or subclasses), got {bad}")
        self.max_value = float(max_value)
        self.modules = tuple(modules)
        self._handles: list[RemovableHandle] = []

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Hook the constraint onto each optimizer's step (runs after every real step)."""
        self._remove_hooks()
        for optimizer in trainer.optimizers:
            weights = self.constrained_weights(pl_module, optimizer)
            if weights:
                self._handles.append(optimizer.register_step_post_hook(self._hook(weights)))

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Remove the optimizer hooks."""
        self._remove_hooks()

    @override
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Remove the optimizer hooks when training fails."""
        self._remove_hooks()

    def constrained_weights(self, model: nn.Module, optimizer: Optimizer) -> list[torch.Tensor]:
        """Weights of the selected layers of ``model`` that ``optimizer`` updates.

        Example:
            >>> model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(4, 2))
            >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            >>> [w.shape for w in MaxNorm(3.0).constrained_weights(model, optimizer)]
            [torch.Size([2, 4])]
        """
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        return [
            module.weight
            for module in model.modules()
            if isinstance(module, self.modules) and id(module.weight) in held
        ]

    def apply(self, weights: Sequence[torch.Tensor]) -> None:
        """Constrain ``weights`` in place (what runs after each step).

        Example:
            >>> w = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
            >>> MaxNorm(1.0).apply([w])
            >>> w
            tensor([[0.6000, 0.8000],
                    [0.3000, 0.4000]])
        """
        for weight in weights:
            max_norm_(weight, self.max_value)

    def _hook(self, weights: list[torch.Tensor]) -> Any:
        def hook(optimizer: Optimizer, args: Any, kwargs: Any) -> None:
            self.apply(weights)

        return hook

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
