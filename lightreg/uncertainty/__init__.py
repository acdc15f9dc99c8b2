"""Monte Carlo dropout uncertainty: :func:`mc_dropout_predict` and its summary.

- :mod:`lightreg.uncertainty.mc_dropout`: the vectorized sampler, :data:`MC_DROPOUT_TYPES`.
- :mod:`lightreg.uncertainty.prediction`: :class:`MCDropoutPrediction` (mean, std, entropy, BALD).
- :mod:`lightreg.uncertainty.fast_dropout`: ``nn.Dropout`` with fast CPU masks.
- :mod:`lightreg.uncertainty.masks`: the exact Bernoulli sampler behind them.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    >>> mc_dropout_predict(model, torch.randn(5, 4), samples=20).mean.shape
    torch.Size([5, 3])
"""

from lightreg.uncertainty.mc_dropout import MC_DROPOUT_TYPES, mc_dropout_predict
from lightreg.uncertainty.prediction import MCDropoutPrediction

__all__ = ["MC_DROPOUT_TYPES", "MCDropoutPrediction", "mc_dropout_predict"]
