"""Monte Carlo dropout: predictive uncertainty from dropout kept on at inference.

Yarin Gal, Zoubin Ghahramani, "Dropout as a Bayesian Approximation: Representing Model
Uncertainty in Deep Learning", ICML 2016, https://arxiv.org/abs/1506.02142. Each stochastic
forward pass samples a network ``w_t``; averaging ``T`` of them approximates the posterior
predictive ``p(y | x) ~ 1/T sum_t p(y | x, w_t)``. The mutual information between the prediction
and the weights (BALD; Houlsby et al. 2011, https://arxiv.org/abs/1112.5745) separates model
uncertainty from noise::

    MI = H[mean_t p_t] - mean_t H[p_t]

Only dropout layers run in training mode; batch norm and everything else stay in eval mode, and
every module's mode is restored afterwards. Three things make it faster than a loop of forward
passes (``benchmarks/mc_dropout.py``), none of which changes the distribution of the samples:

- one forward pass covers many (sample, input) rows, so per-call overhead is paid once;
- the leading modules of an ``nn.Sequential`` that hold no dropout run once per input, not once
  per sample: their output is the same for every sample;
- on CPU, ``nn.Dropout`` masks come from :func:`lightreg.uncertainty.masks.bernoulli_keep_mask`,
  several times cheaper than ``bernoulli_`` (the benchmark prints the ratio).

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
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from lightreg.layers import ConcreteDropout, DropConnect, LayerNormLSTM, SpatialDropout
from lightreg.uncertainty.fast_dropout import fast_dropout
from lightreg.uncertainty.prediction import MCDropoutPrediction

__all__ = ["MC_DROPOUT_TYPES", "mc_dropout_predict"]

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

_CHUNK_VALUES = 2**16
"""Default activation values per forward pass (256 KB in float32). Measured on CPU: larger chunks
lose to cache misses and to the allocator's fresh pages, smaller ones to per-pass overhead."""


def _is_stochastic(module: nn.Module) -> bool:
    return any(isinstance(m, MC_DROPOUT_TYPES) for m in module.modules())


def _is_chain(module: nn.Module) -> bool:
    """A plain ``nn.Sequential``: its forward only feeds each module's output to the next."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _chain_layers(module: nn.Module) -> list[nn.Module]:
    """The modules a plain ``nn.Sequential`` chains, nested plain Sequentials flattened."""
    return [
        leaf for child in module for leaf in (_chain_layers(child) if _is_chain(child) else [child])
    ]


def _split_deterministic_prefix(model: nn.Module) -> tuple[nn.Module | None, nn.Module]:
    """``(prefix, rest)``: a plain ``nn.Sequential``'s modules before its first dropout, the rest.

    Nested plain Sequentials count as their modules. The prefix is None for any other model (its
    forward may not be a chain) or when the first module is already stochastic.
    """
    if not _is_chain(model):
        return None, model
    layers = _chain_layers(model)
    first = next((i for i, layer in enumerate(layers) if _is_stochastic(layer)), len(layers))
    if first == 0:
        return None, model
    return nn.Sequential(*layers[:first]), nn.Sequential(*layers[first:])


def _repeated_rows(h: Tensor, samples: int, chunk: int) -> Iterator[Tensor]:
    """Chunks of at most ``chunk`` rows of ``h.repeat(samples, ...)``, built one at a time."""
    rows = samples * h.shape[0]
    for start in range(0, rows, chunk):
        index = torch.arange(start, min(start + chunk, rows), device=h.device) % h.shape[0]
        yield h.index_select(0, index)


def _default_chunk(prefix: nn.Module | None, x: Tensor, samples: int) -> int:
    """Rows per pass holding about ``_CHUNK_VALUES`` values of a repeated row: the prefix output
    (the first dropout's input) when there is a prefix, else the input."""
    probe = prefix(x[:1]) if prefix is not None else x[:1]
    width = probe[0].numel() if isinstance(probe, Tensor) else x[0].numel()
    return max(1, min(samples * x.shape[0], _CHUNK_VALUES // max(width, 1)))


def _sample_logits(
    model: nn.Module, x: Tensor, samples: int, chunk: int | None, one_pass_per_sample: bool
) -> Tensor:
    """Stochastic outputs ``[samples, B, ...]``, at most ``chunk`` rows per forward pass.

    The inputs go in blocks: a block's deterministic prefix runs once, then its repeated rows
    (or, for batch-shared masks, one pass per sample) run through the rest of the model.
    """
    prefix, rest = _split_deterministic_prefix(model)
    if chunk is None:
        chunk = _default_chunk(prefix, x, samples)
    block = chunk if one_pass_per_sample else max(1, chunk // samples)
    per_block = []
    for begin in range(0, x.shape[0], block):
        inputs = x[begin : begin + block]
        h = prefix(inputs) if prefix is not None else inputs
        if not isinstance(h, Tensor) or h.shape[:1] != inputs.shape[:1]:
            prefix, rest, h = None, model, inputs  # not a per-row tensor: repeat the inputs
        if one_pass_per_sample:
            outputs = [rest(h) for _ in range(samples)]
        else:
            outputs = [rest(rows) for rows in _repeated_rows(h, samples, chunk)]
        logits = torch.cat(outputs)
        per_block.append(logits.reshape(samples, h.shape[0], *logits.shape[1:]))
    return torch.cat(per_block, dim=1)


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

    Vectorized: each input is repeated ``samples`` times along dim 0 and the rows run in chunks
    of at most ``chunk``, so row-wise dropout (``nn.Dropout``, SpatialDropout, ConcreteDropout,
    the LayerNormLSTM masks) draws an independent mask for every (sample, input) row. A layer
    that samples one mask for the whole batch (``mask_shared_across_batch``, e.g. DropConnect's
    weight mask) would give repeated rows the same mask, so for such models each sample is one
    forward pass over the batch instead (in blocks of ``chunk`` inputs when larger). For a plain
    ``nn.Sequential`` (nested plain Sequentials included) the modules before the first dropout
    run once per input; pass the Sequential itself to get this, e.g. ``model.net`` of lightreg's
    models. ``nn.Dropout`` stays in eval mode with a forward hook that applies the mask
    (:func:`lightreg.uncertainty.fast_dropout.fast_dropout`).

    Reproducible under ``torch.manual_seed`` for a given ``chunk``; different chunk sizes draw the
    masks in a different order, hence different (equally distributed) samples.

    Args:
        model: the network; its dropout layers must be modules of :data:`MC_DROPOUT_TYPES`
            (dropout applied functionally inside other modules stays off).
        x: a batch of inputs ``[B, ...]``.
        samples: number of Monte Carlo samples ``T >= 1``.
        chunk: maximum rows per forward pass. The default fits about 64k values (256 KB in
            float32, fastest on CPU) of a repeated row: the first dropout's input in a plain
            ``nn.Sequential`` (256 rows for a 256-wide MLP, 1024 for a 64-wide one), else an
            input row. On a GPU pass a larger value.
        return_samples: keep the ``[T, B, ..., K]`` sample probabilities in the result.

    Raises:
        ValueError: when ``samples`` or ``chunk`` is below 1, or ``x`` has no rows.

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
    if x.shape[0] == 0:
        raise ValueError("`x` must hold at least one input row, got shape " + str(tuple(x.shape)))
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
        with fast_dropout(model) as hooked, torch.no_grad():
            for m in stochastic:
                m.training = m not in hooked
            logits = _sample_logits(model, x, samples, chunk, one_pass_per_sample)
    finally:
        for m, training in modes:
            m.training = training
    return MCDropoutPrediction.from_probs(logits.softmax(dim=-1), keep_samples=return_samples)
