"""Monte Carlo dropout: predictive uncertainty from dropout kept on at inference.

Yarin Gal, Zoubin Ghahramani, "Dropout as a Bayesian Approximation: Representing Model
Uncertainty in Deep Learning", ICML 2016, https://arxiv.org/abs/1506.02142. Each stochastic
forward pass samples a network ``w_t``; averaging ``T`` of them approximates the posterior
predictive ``p(y | x) ~ 1/T sum_t p(y | x, w_t)``. The mutual information between the prediction
and the weights (BALD; Houlsby et al. 2011, https://arxiv.org/abs/1112.5745) separates model
uncertainty from noise::

    MI = H[mean_t p_t] - mean_t H[p_t]

Only dropout layers run in training mode; batch norm and everything else stay in eval mode, and
every module's mode is restored afterwards.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    >>> pred = mc_dropout_predict(model, torch.randn(5, 4), samples=20)
    >>> pred.mean.shape, pred.std.shape, pred.entropy.shape, pred.mutual_information.shape
    (torch.Size([5, 3]), torch.Size([5, 3]), torch.Size([5]), torch.Size([5]))
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lightreg.layers import ConcreteDropout, DropConnect, LayerNormLSTM, SpatialDropout

__all__ = ["MC_DROPOUT_TYPES", "MCDropoutPrediction", "mc_dropout_predict"]

MC_DROPOUT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    nn.RNNBase,  # nn.LSTM / GRU / RNN: training mode only switches their inter-layer dropout
    DropConnect,
    SpatialDropout,
    ConcreteDropout,
    LayerNormLSTM,
)
"""Module types that :func:`mc_dropout_predict` switches to training mode (the flag only, not
their children: a layer wrapped by ConcreteDropout keeps its eval mode)."""

_DEFAULT_CHUNK = 512


@dataclass(frozen=True)
class MCDropoutPrediction:
    """Summary of ``T`` Monte Carlo samples of class probabilities (entropies in nats).

    Attributes:
        mean: predictive probabilities, mean over samples, ``[B, K]``.
        std: per-class standard deviation over samples (population, ``ddof=0``), ``[B, K]``.
        entropy: predictive entropy ``H[mean]``, ``[B]``.
        mutual_information: BALD, ``H[mean] - mean_t H[p_t]`` (clamped at 0 against rounding),
            ``[B]``.
        sample_probs: the raw sample probabilities ``[T, B, K]`` when requested, else None.

    Example:
        >>> probs = torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]])  # T=2 samples, B=1, K=2
        >>> pred = MCDropoutPrediction.from_probs(probs)
        >>> pred.mean
        tensor([[0.5000, 0.5000]])
        >>> round(pred.entropy.item(), 4), round(pred.mutual_information.item(), 4)
        (0.6931, 0.3681)
    """

    mean: Tensor
    std: Tensor
    entropy: Tensor
    mutual_information: Tensor
    sample_probs: Tensor | None = None

    @classmethod
    def from_probs(cls, probs: Tensor, keep_samples: bool = False) -> MCDropoutPrediction:
        """Summarize sample probabilities ``[T, B, ..., K]`` (classes on the last dimension).

        Example:
            >>> probs = torch.full((3, 2, 4), 0.25)  # T=3 identical samples, B=2, K=4
            >>> pred = MCDropoutPrediction.from_probs(probs, keep_samples=True)
            >>> pred.mutual_information, pred.sample_probs.shape
            (tensor([0., 0.]), torch.Size([3, 2, 4]))
        """
        mean = probs.mean(dim=0)
        entropy = -torch.special.xlogy(mean, mean).sum(dim=-1)
        expected_entropy = -torch.special.xlogy(probs, probs).sum(dim=-1).mean(dim=0)
        return cls(
            mean=mean,
            std=probs.std(dim=0, correction=0),
            entropy=entropy,
            mutual_information=(entropy - expected_entropy).clamp_min(0.0),
            sample_probs=probs if keep_samples else None,
        )


def _sample_logits(
    model: nn.Module, x: Tensor, samples: int, chunk: int, one_pass_per_sample: bool
) -> Tensor:
    """Stochastic outputs ``[samples, B, ...]``, at most ``chunk`` rows per forward pass."""
    batch = x.shape[0]
    outputs = []
    if one_pass_per_sample:
        for _ in range(samples):
            outputs.extend(model(x[start : start + chunk]) for start in range(0, batch, chunk))
    else:
        # Row r of the virtual ``x.repeat(samples, ...)`` is ``x[r % batch]``; build it per chunk.
        rows = samples * batch
        for start in range(0, rows, chunk):
            index = torch.arange(start, min(start + chunk, rows), device=x.device) % batch
            outputs.append(model(x.index_select(0, index)))
    logits = torch.cat(outputs)
    return logits.reshape(samples, batch, *logits.shape[1:])


def mc_dropout_predict(
    model: nn.Module,
    x: Tensor,
    samples: int = 50,
    chunk: int | None = None,
    return_samples: bool = False,
) -> MCDropoutPrediction:
    """Run ``samples`` stochastic forward passes of ``model`` on ``x`` and summarize them.

    The modules of :data:`MC_DROPOUT_TYPES` run in training mode, every other module in eval mode
    (batch norm uses, and does not update, its running statistics), under ``torch.no_grad()``.
    Every module's mode is restored afterwards, also when the forward pass raises. The model must
    return logits ``[B, ..., K]``; a softmax over the last dimension gives the probabilities.

    Vectorized: the batch is repeated ``samples`` times along dim 0 and run in chunks of at most
    ``chunk`` rows, so row-wise dropout (``nn.Dropout``, SpatialDropout, ConcreteDropout, the
    LayerNormLSTM masks) draws an independent mask for every (sample, input) row. A layer that
    samples one mask for the whole batch (``mask_shared_across_batch``, e.g. DropConnect's weight
    mask) would give repeated rows the same mask, so for such models each sample is one forward
    pass over the batch instead (batch split in chunks of ``chunk`` rows when larger).

    Reproducible under ``torch.manual_seed`` for a given ``chunk``; different chunk sizes draw the
    masks in a different order, hence different (equally distributed) samples.

    Args:
        model: the network; its dropout layers must be modules of :data:`MC_DROPOUT_TYPES`
            (dropout applied functionally inside other modules stays off).
        x: a batch of inputs ``[B, ...]``.
        samples: number of Monte Carlo samples ``T >= 1``.
        chunk: maximum rows per forward pass; default ``min(samples * B, 512)``. On CPU, chunks
            whose activations stay in cache are fastest (``benchmarks/mc_dropout.py``: 512 rows
            beat 2048-8192 rows for a 256-wide MLP); on a GPU pass a larger value.
        return_samples: keep the ``[T, B, ..., K]`` sample probabilities in the result.

    Raises:
        ValueError: when ``samples`` or ``chunk`` is below 1.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5),
        ...                       nn.Linear(8, 2)).eval()
        >>> pred = mc_dropout_predict(model, torch.randn(3, 4), samples=10, return_samples=True)
        >>> pred.sample_probs.shape, model[1].training, model[2].training
        (torch.Size([10, 3, 2]), False, False)
    """
    if samples < 1:
        raise ValueError(f"`samples` must be >= 1, got {samples}")
    if chunk is not None and chunk < 1:
        raise ValueError(f"`chunk` must be >= 1 or None, got {chunk}")
    chunk = min(samples * x.shape[0], _DEFAULT_CHUNK) if chunk is None else chunk
    stochastic = [m for m in model.modules() if isinstance(m, MC_DROPOUT_TYPES)]
    if not stochastic:
        warnings.warn(
            "mc_dropout_predict: the model has no dropout layer, every sample will be identical",
            stacklevel=2,
        )
    one_pass_per_sample = any(getattr(m, "mask_shared_across_batch", False) for m in stochastic)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for m in stochastic:
            m.training = True
        with torch.no_grad():
            logits = _sample_logits(model, x, samples, chunk, one_pass_per_sample)
    finally:
        for m, training in modes:
            m.training = training
    return MCDropoutPrediction.from_probs(logits.softmax(dim=-1), keep_samples=return_samples)
