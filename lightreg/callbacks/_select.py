"""Which parameters a weight-level callback acts on: weights by default, never norm layers.

Shared by :class:`~lightreg.callbacks.WeightPenalty` and :class:`~lightreg.callbacks.WeightStats`.
The default matches :func:`lightreg.optim.param_groups`: tensors with two or more dimensions
(Linear/Conv kernels, embeddings, LSTM matrices), minus anything owned by a normalization layer.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2))
    >>> [name for name, _ in select_weights(model)]
    ['0.weight', '2.weight']
    >>> [name for name, _ in select_weights(model, param_names=["2.*"])]
    ['2.weight', '2.bias']
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from torch import nn
from torch.nn.modules.batchnorm import _NormBase

NORM_TYPES: tuple[type[nn.Module], ...] = (
    _NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)

ModuleTypes = Sequence[type[nn.Module]]


def check_selection(modules: ModuleTypes | None, param_names: Sequence[str] | None) -> None:
    """Fail fast on a selection that :func:`select_weights` cannot honour.

    Raises:
        ValueError: when both ``modules`` and ``param_names`` are given, or either is empty.
        TypeError: when ``modules`` holds something other than ``nn.Module`` subclasses.

    Example:
        >>> check_selection(None, ["head.*"])
        >>> check_selection([nn.Linear], ["head.*"])
        Traceback (most recent call last):
        ...
        ValueError: pass `modules` or `param_names`, not both
    """
    if modules is not None and param_names is not None:
        raise ValueError("pass `modules` or `param_names`, not both")
    if modules is not None:
        if not modules:
            raise ValueError("`modules` must name at least one module type, got an empty sequence")
        bad = [m for m in modules if not (isinstance(m, type) and issubclass(m, nn.Module))]
        if bad:
            raise TypeError(f"`modules` must hold nn.Module subclasses, got {bad}")
    if param_names is not None and (isinstance(param_names, str) or not param_names):
        raise ValueError(f"`param_names` must be a non-empty list of patterns, got {param_names!r}")


def select_weights(
    root: nn.Module,
    modules: ModuleTypes | None = None,
    param_names: Sequence[str] | None = None,
) -> list[tuple[str, nn.Parameter]]:
    """Trainable parameters of ``root`` to act on, each once, as ``(name, parameter)``.

    Args:
        root: the model.
        modules: only weights (>= 2-D) owned by modules of these types.
        param_names: exactly the parameters whose qualified name matches one of these
            ``fnmatch`` patterns (any shape, norm layers included: an explicit name wins).

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2))
        >>> [name for name, _ in select_weights(model, modules=[nn.Conv2d])]
        ['0.weight']
    """
    types = tuple(modules) if modules is not None else None
    chosen: dict[int, tuple[str, nn.Parameter]] = {}
    for module_name, module in root.named_modules():
        for short_name, param in module.named_parameters(recurse=False):
            name = f"{module_name}.{short_name}" if module_name else short_name
            if param.requires_grad and _wanted(name, param, module, types, param_names):
                chosen.setdefault(id(param), (name, param))
    return list(chosen.values())


def _wanted(
    name: str,
    param: nn.Parameter,
    owner: nn.Module,
    types: tuple[type[nn.Module], ...] | None,
    param_names: Sequence[str] | None,
) -> bool:
    if param_names is not None:
        return any(fnmatchcase(name, pattern) for pattern in param_names)
    if param.dim() < 2 or isinstance(owner, NORM_TYPES):
        return False
    return types is None or isinstance(owner, types)
