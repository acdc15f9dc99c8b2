"""Sharpness-aware minimization, imported through ``lightreg.optim.SAM``.

Pierre Foret, Ariel Kleiner, Hossein Mobahi, Behnam Neyshabur, "Sharpness-Aware Minimization
for Efficiently Improving Generalization", ICLR 2021, https://arxiv.org/abs/2010.01412; the
adaptive variant (ASAM): Jungmin Kwon et al., ICML 2021, https://arxiv.org/abs/2102.11600.
Behaviour follows Composer's ``SAMOptimizer``; this module lives apart from ``lightreg.optim``
so that importing the optimizer names does not import torch.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(3, 1)
    >>> sam = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.05)
    >>> def closure():
    ...     sam.zero_grad()
    ...     loss = model(torch.ones(4, 3)).pow(2).mean()
    ...     loss.backward()
    ...     return loss
    >>> loss = sam.step(closure)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer
from typing_extensions import override

EPSILON = 1e-12
"""Added to the gradient norm, so that a zero gradient gives a zero perturbation."""


class SAM(Optimizer):
    """Wrap ``base_optimizer`` so that each step descends with the gradient at ``w + e``.

    ``step(closure)`` calls the closure twice. First at ``w`` (the gradient ``g``); then the
    weights move to ``w + e`` with ``e = rho * g / ||g||`` (ASAM, ``adaptive=True``:
    ``e = rho * T^2 g / ||T g||`` with ``T = |w|`` elementwise, so ``rho`` is relative to each
    weight's size), the gradients are cleared and the closure runs again; the weights are put
    back to ``w`` exactly and ``base_optimizer`` steps with the second gradient. The returned
    loss is the first one (at ``w``).

    Under Lightning's automatic optimization this is what ``Trainer`` does already: it passes a
    closure (training step, zero_grad, backward) to ``optimizer.step``. Per closure call,
    Lightning also runs the ``on_before_optimizer_step`` hooks and gradient clipping, so both
    gradients are clipped (clipping by norm leaves ``e`` unchanged) and the step uses the
    clipped second gradient, as a plain step would. Under DDP each backward all-reduces, so
    ``e`` and the step are identical on every rank. BatchNorm running statistics and the
    ``training_step``'s own logging see both passes; :attr:`perturbed` is ``True`` during the
    second one, so a ``training_step`` can skip its logging then (read it from
    ``self.trainer.optimizers[0]``, not from the ``self.optimizers()`` wrapper, which holds a
    copy).

    Refused, with a ``RuntimeError`` at the first step:

    * **Gradient accumulation** (``accumulate_grad_batches > 1``): Lightning runs the earlier
      micro-batches outside ``optimizer.step``, so the second pass would see only the last
      one. SAM notices a closure that adds to the gradients left before it without calling
      this optimizer's ``zero_grad``. Raise the batch size instead.
    * **A step without closure**, e.g. ``precision="16-mixed"``, whose ``GradScaler`` calls
      ``step()`` without one (torch's scaler does not take closures). ``bf16-mixed`` and 32-bit
      precision work.

    ``param_groups`` and ``state`` are the base optimizer's own objects (a learning-rate
    scheduler built on ``SAM`` schedules the base optimizer); ``state_dict`` and
    ``load_state_dict`` are the base optimizer's, each group also carrying ``rho`` and
    ``adaptive``. The perturbation is not state: it lives only inside ``step``.

    Args:
        base_optimizer: the optimizer that takes the actual step (SGD, AdamW, ...).
        rho: radius of the neighbourhood, ``> 0``. The paper uses 0.01-0.2 (0.05 by default);
            ASAM's radii are about 10x larger (e.g. 0.5-2.0).
        adaptive: ASAM's scale-invariant neighbourhood.

    Raises:
        ValueError: when ``rho`` is not a finite number ``> 0``, or ``base_optimizer`` is a
            ``SAM`` already.

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> sam = SAM(torch.optim.AdamW(model.parameters(), lr=1e-3), rho=0.05)
        >>> sam.param_groups is sam.base_optimizer.param_groups, sam.param_groups[0]["rho"]
        (True, 0.05)
        >>> sam.step()
        Traceback (most recent call last):
        ...
        RuntimeError: SAM.step needs a closure that recomputes the loss and its gradients (it runs it twice); with Lightning, precision '16-mixed' steps without one: use 'bf16-mixed' or 32-bit precision
    """

    def __init__(
        self, base_optimizer: Optimizer, rho: float = 0.05, adaptive: bool = False
    ) -> None:
        if not (isinstance(rho, int | float) and math.isfinite(rho) and rho > 0):
            raise ValueError(f"`rho` must be a finite number > 0, got {rho!r}")
        if isinstance(base_optimizer, SAM):
            raise ValueError("`base_optimizer` is a SAM already; wrap the plain optimizer once")
        self.base_optimizer = base_optimizer
        super().__init__(base_optimizer.param_groups, {"rho": float(rho), "adaptive": adaptive})
        self.defaults = {**base_optimizer.defaults, **self.defaults}
        self.param_groups = base_optimizer.param_groups  # one list: schedulers see both
        self.state = base_optimizer.state
        self.perturbed = False
        self._zeroed = False

    @override
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter (and note that the closure started afresh).

        Example:
            >>> w = torch.nn.Parameter(torch.ones(2))
            >>> w.grad = torch.ones(2)
            >>> SAM(torch.optim.SGD([w], lr=0.1)).zero_grad()
            >>> w.grad is None
            True
        """
        self._zeroed = True
        super().zero_grad(set_to_none=set_to_none)

    @override
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Run ``closure`` at ``w`` and at ``w + e``, restore ``w``, step the base optimizer.

        Returns the first closure's loss; without any gradient (the closure returned ``None``,
        as Lightning's does when ``training_step`` skips the batch) nothing moves.

        Raises:
            RuntimeError: without a closure, or when the closure accumulated onto earlier
                gradients (gradient accumulation, see the class docstring).

        Example:
            >>> w = torch.nn.Parameter(torch.tensor([1.0, 0.0]))
            >>> sam = SAM(torch.optim.SGD([w], lr=0.5), rho=0.1)
            >>> def closure():
            ...     sam.zero_grad()
            ...     loss = (w**2).sum()
            ...     loss.backward()
            ...     return loss
            >>> float(sam.step(closure)), w.tolist()  # second gradient 2 * (w + 0.1 * w / |w|)
            (1.0, [-0.10000002384185791, 0.0])
        """
        if closure is None:
            raise RuntimeError(
                "SAM.step needs a closure that recomputes the loss and its gradients (it runs it "
                "twice); with Lightning, precision '16-mixed' steps without one: use 'bf16-mixed' "
                "or 32-bit precision"
            )
        params = [p for group in self.param_groups for p in group["params"]]
        before = [p.grad for p in params]
        self._zeroed = False
        with torch.enable_grad():
            loss = closure()
        if not self._zeroed and any(
            old is not None and p.grad is old for p, old in zip(params, before, strict=True)
        ):
            raise RuntimeError(
                "SAM: the closure added to gradients left from before the step instead of "
                "zeroing them with this optimizer's zero_grad(); with Lightning that is "
                "accumulate_grad_batches > 1, where SAM's second pass would see only the last "
                "micro-batch: set it to 1 (raise the batch size instead)"
            )
        if loss is None or all(p.grad is None for p in params):
            return loss
        saved = self._ascend()
        self.zero_grad()
        self.perturbed = True
        try:
            with torch.enable_grad():
                closure()
        finally:
            self.perturbed = False
            with torch.no_grad():
                for p, w in saved:
                    p.copy_(w)
        self.base_optimizer.step()
        return loss

    @torch.no_grad()
    def _ascend(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Move every parameter with a gradient to ``w + e``; return ``(param, w)`` pairs."""
        scaled = [
            (p.abs() * p.grad if group["adaptive"] else p.grad)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        device = scaled[0].device
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g).to(device) for g in scaled])
        )
        saved = []
        for group in self.param_groups:
            scale = group["rho"] / (norm + EPSILON)
            for p in group["params"]:
                if p.grad is None:
                    continue
                saved.append((p, p.detach().clone()))
                e = p.grad * scale.to(p.device)
                p.add_(e * p * p if group["adaptive"] else e)
        return saved

    @override
    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state dict (its groups also hold ``rho`` and ``adaptive``).

        Example:
            >>> model = torch.nn.Linear(2, 1)
            >>> sam = SAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.1)
            >>> state = sam.state_dict()
            >>> state["param_groups"][0]["rho"], state == sam.base_optimizer.state_dict()
            (0.1, True)
        """
        return self.base_optimizer.state_dict()

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load into the base optimizer, keeping one shared ``param_groups`` list and ``state``.

        A plain base optimizer's state dict loads too: its groups get this SAM's ``rho`` and
        ``adaptive``.

        Example:
            >>> model = torch.nn.Linear(2, 1)
            >>> sam = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.1)
            >>> sam.load_state_dict(torch.optim.SGD(model.parameters(), lr=0.5).state_dict())
            >>> sam.param_groups[0]["lr"], sam.param_groups[0]["rho"]
            (0.5, 0.1)
        """
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups[:] = self.base_optimizer.param_groups
        self.base_optimizer.param_groups = self.param_groups
        self.state.clear()
        self.state.update(self.base_optimizer.state)
        self.base_optimizer.state = self.state
        for group in self.param_groups:
            group.setdefault("rho", self.defaults["rho"])
            group.setdefault("adaptive", self.defaults["adaptive"])
