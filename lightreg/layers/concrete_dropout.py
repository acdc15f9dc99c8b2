"""Concrete Dropout: a dropout rate learned by gradient descent.

Yarin Gal, Jiri Hron, Alex Kendall, "Concrete Dropout", NeurIPS 2017,
https://arxiv.org/abs/1705.07832 (authors' code: https://github.com/yaringal/ConcreteDropout).

The Bernoulli keep/drop mask is replaced by its concrete (relaxed Bernoulli) approximation at
temperature ``t = 0.1``, which is differentiable in the drop rate ``p = sigmoid(p_logit)``::

    z = sigmoid((log p - log(1-p) + log u - log(1-u)) / t),   u ~ U(0, 1)
    x_dropped = x * (1 - z) / (1 - p)

The wrapped layer's loss term (the authors' code, summed into the training loss) is::

    weight_regularizer * ||W||^2 / (1 - p)
        + dropout_regularizer * input_dim * (p log p + (1 - p) log(1 - p))

where the second factor is the *negative* Bernoulli entropy, so minimising it pushes ``p``
toward 0.5 (the rate of maximum entropy); the weight term, which grows as ``1 / (1 - p)``, and
the data term push ``p`` down. The paper sets ``weight_regularizer = l^2 / (tau N)`` and
``dropout_regularizer = 2 / (tau N)`` for ``N`` training points, prior length-scale ``l`` and
model precision ``tau``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> layer = ConcreteDropout(nn.Linear(8, 4))
    >>> y = layer(torch.randn(2, 8))
    >>> loss = y.pow(2).mean() + concrete_dropout_regularization(layer)
    >>> loss.backward()
    >>> layer.p_logit.grad is not None
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["concrete_dropout", "ConcreteDropout", "concrete_dropout_regularization"]

_EPS = 1e-7


def concrete_dropout(
    x: Tensor,
    p: Tensor,
    temperature: float = 0.1,
    training: bool = False,
) -> Tensor:
    """Relaxed (concrete) dropout of ``x`` at rate ``p``, differentiable in ``p``.

    Args:
        x: input of any shape; each element gets its own relaxed mask.
        p: drop rate, a tensor in ``(0, 1)`` (usually ``sigmoid(p_logit)``).
        temperature: concrete temperature ``t > 0``; smaller is closer to a hard Bernoulli mask.
        training: when False ``x`` is returned unchanged (inverted scaling keeps the mean).

    Raises:
        ValueError: when ``temperature`` is not positive.

    Example:
        >>> x = torch.ones(1000)
        >>> y = concrete_dropout(x, torch.tensor(0.5), training=True)
        >>> bool((y >= 0).all() and (y <= 2).all())
        True
    """
    if not temperature > 0:
        raise ValueError(f"`temperature` must be > 0, got {temperature}")
    if not training:
        return x
    u = torch.rand_like(x)
    drop_logit = (
        torch.log(p + _EPS)
        - torch.log(1 - p + _EPS)
        + torch.log(u + _EPS)
        - torch.log(1 - u + _EPS)
    )
    drop = torch.sigmoid(drop_logit / temperature)
    return x * (1 - drop) / (1 - p)


class ConcreteDropout(nn.Module):
    """Wrap ``layer`` so that its *input* goes through concrete dropout with a learned rate.

    Add :meth:`regularization` (or :func:`concrete_dropout_regularization` over the whole
    model) to the training loss; without it ``p`` simply collapses towards 0.

    Args:
        layer: the layer to wrap (e.g. ``nn.Linear``); its parameters enter the weight term.
        weight_regularizer: ``l^2 / (tau N)`` in the paper, ``>= 0``.
        dropout_regularizer: ``2 / (tau N)`` in the paper, ``>= 0``.
        init_p: initial drop rate, in ``(0, 1)``.
        temperature: concrete temperature, ``> 0`` (the paper uses 0.1).

    Raises:
        ValueError: when an argument is outside the range given above.

    Example:
        >>> layer = ConcreteDropout(nn.Linear(8, 4), init_p=0.2)
        >>> round(layer.p.item(), 4)
        0.2
        >>> layer(torch.randn(3, 8)).shape
        torch.Size([3, 4])
        >>> layer.regularization().shape
        torch.Size([])
    """

    def __init__(
        self,
        layer: nn.Module,
        weight_regularizer: float = 1e-6,
        dropout_regularizer: float = 1e-5,
        init_p: float = 0.1,
        temperature: float = 0.1,
    ) -> None:
        if not weight_regularizer >= 0:
            raise ValueError(f"`weight_regularizer` must be >= 0, got {weight_regularizer}")
        if not dropout_regularizer >= 0:
            raise ValueError(f"`dropout_regularizer` must be >= 0, got {dropout_regularizer}")
        if not 0.0 < init_p < 1.0:
            raise ValueError(f"`init_p` must be in (0, 1), got {init_p}")
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0, got {temperature}")
        super().__init__()
        self.layer = layer
        self.weight_regularizer = weight_regularizer
        self.dropout_regularizer = dropout_regularizer
        self.temperature = temperature
        self.p_logit = nn.Parameter(torch.tensor(math.log(init_p) - math.log(1.0 - init_p)))
        # Number of elements of one input sample, as in the authors' code (``x[0].numel()``);
        # known up front for a Linear, otherwise set by the first forward pass.
        self.input_dim: int | None = getattr(layer, "in_features", None)

    @property
    def p(self) -> Tensor:
        """The current drop rate ``sigmoid(p_logit)``, a 0-dim tensor (differentiable).

        Example:
            >>> round(ConcreteDropout(nn.Linear(2, 1), init_p=0.3).p.item(), 4)
            0.3
        """
        return torch.sigmoid(self.p_logit)

    def forward(self, x: Tensor) -> Tensor:
        """Concrete dropout on ``x`` (while training), then the wrapped layer; notes ``input_dim``.

        Example:
            >>> layer = ConcreteDropout(nn.Conv2d(3, 4, 1))
            >>> layer(torch.zeros(2, 3, 5, 5)).shape, layer.input_dim  # the input size, now known
            (torch.Size([2, 4, 5, 5]), 75)
        """
        self.input_dim = x[0].numel()
        return self.layer(concrete_dropout(x, self.p, self.temperature, self.training))

    def regularization(self) -> Tensor:
        """The loss term of this layer (see the module docstring), a 0-dim tensor.

        Raises:
            RuntimeError: when the input size is still unknown (a non-Linear layer that has not
                seen a forward pass yet).

        Example:
            >>> layer = ConcreteDropout(nn.Linear(2, 1, bias=False), 1.0, 0.0, init_p=0.5)
            >>> with torch.no_grad():
            ...     _ = layer.layer.weight.fill_(1.0)
            >>> layer.regularization().item()  # 1.0 * (1 + 1) / (1 - 0.5)
            4.0
        """
        if self.input_dim is None:
            raise RuntimeError(
                "ConcreteDropout.regularization() needs the input size: run one forward pass "
                f"first, or wrap an nn.Linear (got {type(self.layer).__name__})"
            )
        p = self.p
        sum_of_squares = sum(param.pow(2).sum() for param in self.layer.parameters())
        weight_term = self.weight_regularizer * sum_of_squares / (1 - p)
        neg_entropy = p * torch.log(p) + (1 - p) * torch.log(1 - p)
        dropout_term = self.dropout_regularizer * self.input_dim * neg_entropy
        return weight_term + dropout_term

    def extra_repr(self) -> str:
        """The current drop rate and the hyperparameters, for ``repr``.

        Example:
            >>> ConcreteDropout(nn.Linear(2, 1), init_p=0.25).extra_repr()
            'p=0.25, weight_regularizer=1e-06, dropout_regularizer=1e-05, temperature=0.1'
        """
        return (
            f"p={self.p.item():.4g}, weight_regularizer={self.weight_regularizer}, "
            f"dropout_regularizer={self.dropout_regularizer}, temperature={self.temperature}"
        )


def concrete_dropout_regularization(model: nn.Module) -> Tensor:
    """Sum of :meth:`ConcreteDropout.regularization` over every ConcreteDropout in ``model``.

    Returns a 0-dim zero tensor when there is none, so it can always be added to a loss.

    Example:
        >>> model = nn.Sequential(ConcreteDropout(nn.Linear(4, 4)), nn.ReLU(),
        ...                       ConcreteDropout(nn.Linear(4, 2)))
        >>> total = concrete_dropout_regularization(model)
        >>> torch.allclose(total, model[0].regularization() + model[2].regularization())
        True
    """
    terms = [m.regularization() for m in model.modules() if isinstance(m, ConcreteDropout)]
    if not terms:
        param = next(model.parameters(), None)
        return torch.zeros((), device=param.device if param is not None else None)
    return torch.stack(terms).sum()
