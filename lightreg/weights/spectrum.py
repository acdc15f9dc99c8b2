"""The spectrum of each layer's weights: power-law alpha, spectral norm, stable rank, a reading.

Heavy-Tailed Self-Regularization (Martin & Mahoney, "Implicit Self-Regularization in Deep Neural
Networks", JMLR 2021, https://jmlr.org/papers/v22/20-410.html): the empirical spectral density
(ESD) of a trained layer's ``W^T W`` has a power-law tail ``p(λ) ~ λ^-alpha``. WeightWatcher reads
``alpha < 2`` as over-trained and ``alpha > 6`` as under-trained; 2-6 is typical of well-trained
layers.

Everything here follows WeightWatcher 0.7 (``analyze()`` with its defaults), so the two agree:

- the eigenvalues are ``λ = σ²``, the squared singular values of each matrix (not divided by N);
- a convolution kernel ``(out, in, *kernel)`` is one ``out x in`` matrix per kernel position,
  and their eigenvalues are pooled into one ESD (WeightWatcher's ``pool=True``);
- the fit is Clauset, Shalizi & Newman's (SIAM Review 2009): for each candidate ``xmin`` the
  continuous maximum-likelihood ``alpha = 1 + n / Σ ln(λ_i / xmin)`` over the ``n`` eigenvalues
  ``>= xmin``, and the ``xmin`` kept is the one with the smallest Kolmogorov-Smirnov distance
  ``D`` between the tail and the fitted law; eigenvalues ``<= 1e-5`` are left out of the fit.

Two differences, both deliberate: WeightWatcher scales convolution matrices by ``sqrt(1/2)``
(``conv2d_norm``), which halves their eigenvalues and so ``xmin`` (alpha does not change under
scaling); and below :data:`MIN_EIGENVALUES` eigenvalues it switches to a small-sample estimator,
where this module does not judge at all.

Example:
    >>> import torch
    >>> weight = torch.diag(torch.arange(1, 201.0) ** -0.25)  # λ_k = 1/sqrt(k): alpha 3
    >>> layer = analyze_layer("fc", weight)
    >>> layer.shape, layer.eigenvalues, round(layer.alpha, 2), layer.reading
    ((200, 200), 200, 3.04, 'typical')
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch

Reading = Literal["over_trained", "typical", "under_trained", "too_small", "no_fit", "non_finite"]
READINGS: tuple[Reading, ...] = (
    "over_trained",
    "typical",
    "under_trained",
    "too_small",
    "no_fit",
    "non_finite",
)
"""Every reading of a layer, from the worst-trained side to the unjudged ones."""

OVER_TRAINED_ALPHA = 2.0
"""WeightWatcher's ``OVER_TRAINED_THRESH``: alpha below it reads as over-trained."""
UNDER_TRAINED_ALPHA = 6.0
"""WeightWatcher's ``UNDER_TRAINED_THRESH``: alpha above it reads as under-trained."""
MIN_EIGENVALUES = 20
"""Fewer eigenvalues than this (WeightWatcher's ``SMALL_N_CUTOFF``): too small to judge."""
EIGENVALUE_FLOOR = 1e-5
"""Eigenvalues at or below this are left out of the fit (WeightWatcher's ``EVALS_THRESH``)."""


@dataclass(frozen=True)
class PowerLawFit:
    """A power law fitted to the tail of an ESD.

    Attributes:
        alpha: the exponent of ``p(λ) ~ λ^-alpha`` above ``xmin``.
        xmin: where the tail starts (an eigenvalue).
        ks_distance: the Kolmogorov-Smirnov distance D between the tail and the fit (0 is perfect).
        tail: how many eigenvalues are ``>= xmin``.

    Example:
        >>> fit = fit_power_law([1.0, 2.0, 4.0, 8.0])
        >>> round(fit.alpha, 3), fit.tail
        (1.962, 4)
    """

    alpha: float
    xmin: float
    ks_distance: float
    tail: int


def fit_power_law(eigenvalues: np.ndarray | list[float]) -> PowerLawFit | None:
    """Clauset et al.'s fit, as WeightWatcher's default ``PL`` fit does it; None without a tail.

    Every eigenvalue but the largest is tried as ``xmin``; the one whose tail is closest to its
    fitted power law (smallest KS distance, the first on a tie) wins. ``None`` when no candidate
    gives ``alpha > 1`` (for instance all eigenvalues equal, as for an orthogonal matrix).

    Example:
        >>> fit_power_law([3.0, 3.0, 3.0]) is None
        True
        >>> fit_power_law([1.0, 2.0, 4.0, 8.0]).xmin
        1.0
    """
    data = np.sort(np.asarray(eigenvalues, dtype=np.float64))
    count = len(data)
    logs = np.log(data)
    # sum of log(λ) from each index to the end
    suffix = np.cumsum(logs[::-1])[::-1]
    best: tuple[float, int, float] | None = None  # (D, index, alpha)
    for i in range(count - 1):
        n = count - i
        spread = suffix[i] - n * logs[i]
        if spread <= 0:
            continue
        alpha = 1.0 + n / spread
        fitted_cdf = 1.0 - np.exp((1.0 - alpha) * (logs[i:] - logs[i]))  # 1 - (λ/xmin)^(1-alpha)
        distance = float(np.max(np.abs(fitted_cdf - np.arange(n) / n)))
        if best is None or distance < best[0]:
            best = (distance, i, alpha)
    if best is None:
        return None
    distance, i, alpha = best
    return PowerLawFit(
        alpha=float(alpha), xmin=float(data[i]), ks_distance=distance, tail=count - i
    )


@dataclass(frozen=True)
class LayerSpectrum:
    """One layer's weights, read through their spectrum.

    Attributes:
        name: the state-dict key without ``.weight``.
        kind: ``"linear"`` (a 2-D weight: Linear, or an Embedding, which a state dict cannot
            tell apart) or ``"conv"`` (3-D and more: one matrix per kernel position).
        shape: the weight tensor's shape.
        matrices: how many matrices were analysed (1, or the number of kernel positions).
        eigenvalues: the size of the pooled ESD (``matrices x min(out, in)``).
        spectral_norm: the largest singular value (over the kernel positions for a conv);
            None when the weights hold NaN or inf.
        stable_rank: ``Σλ / max λ`` over the ESD (``‖W‖_F² / ‖W‖_2²`` for a matrix); None
            when the weights hold NaN or inf.
        fit: the power-law fit, None when the layer is too small or has no tail.
        reading: one of :data:`READINGS`.
        note: the number behind the reading, then the reading in words (``"EVIDENCE: WORDS"``).

    Example:
        >>> import torch
        >>> layer = analyze_layer("head", torch.eye(8))
        >>> layer.reading, layer.spectral_norm, layer.stable_rank
        ('too_small', 1.0, 8.0)
    """

    name: str
    kind: Literal["linear", "conv"]
    shape: tuple[int, ...]
    matrices: int
    eigenvalues: int
    spectral_norm: float | None
    stable_rank: float | None
    fit: PowerLawFit | None
    reading: Reading
    note: str

    @property
    def alpha(self) -> float | None:
        """The fitted alpha, None when unfitted.

        Example:
            >>> import torch
            >>> analyze_layer("head", torch.eye(8)).alpha is None
            True
        """
        return None if self.fit is None else self.fit.alpha

    @property
    def alpha_weighted(self) -> float | None:
        """WeightWatcher's ``alpha_weighted`` (alpha-hat): ``alpha x log10(max λ)``.

        Example:
            >>> import torch
            >>> analyze_layer("head", torch.eye(8)).alpha_weighted is None
            True
        """
        if self.alpha is None or not self.spectral_norm:
            return None
        return self.alpha * math.log10(self.spectral_norm**2)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready record (the schema in docs/weights.md).

        Example:
            >>> import torch
            >>> sorted(analyze_layer("head", torch.eye(8)).to_dict())[:4]
            ['alpha', 'alpha_weighted', 'eigenvalues', 'kind']
        """
        fit = asdict(self.fit) if self.fit else dict.fromkeys(("xmin", "ks_distance", "tail"))
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "matrices": self.matrices,
            "eigenvalues": self.eigenvalues,
            "alpha": self.alpha,
            "ks_distance": fit["ks_distance"],
            "xmin": fit["xmin"],
            "tail": fit["tail"],
            "alpha_weighted": self.alpha_weighted,
            "spectral_norm": self.spectral_norm,
            "stable_rank": self.stable_rank,
            "reading": self.reading,
            "note": self.note,
        }


def kernel_matrices(weight: torch.Tensor) -> torch.Tensor:
    """The matrices WeightWatcher analyses, stacked: ``(positions, out, in)``.

    A 2-D weight is one matrix; a convolution kernel ``(out, in, k1, k2, ...)`` is one
    ``out x in`` matrix per kernel position ``(k1, k2, ...)``, as WeightWatcher's
    ``conv2D_Wmats`` slices a Conv2d.

    Example:
        >>> import torch
        >>> kernel_matrices(torch.zeros(16, 3, 5, 5)).shape
        torch.Size([25, 16, 3])
    """
    if weight.ndim < 2:
        raise ValueError(
            f"a weight matrix needs 2 or more dimensions, got shape {tuple(weight.shape)}"
        )
    out_channels, in_channels = weight.shape[:2]
    return weight.reshape(out_channels, in_channels, -1).permute(2, 0, 1)


def reading_of(fit: PowerLawFit | None, eigenvalues: int) -> tuple[Reading, str]:
    """The one-line reading of a layer, from its fit and its count of nonzero eigenvalues.

    WeightWatcher's thresholds applied to alpha; below :data:`MIN_EIGENVALUES` nonzero
    eigenvalues, no reading.

    Example:
        >>> reading_of(PowerLawFit(1.7, 0.5, 0.05, 12), 64)
        ('over_trained', 'alpha 1.70 < 2: over-trained')
        >>> reading_of(None, 10)
        ('too_small', '10 nonzero eigenvalues < 20: too small to judge')
    """
    if eigenvalues < MIN_EIGENVALUES:
        return (
            "too_small",
            f"{eigenvalues} nonzero eigenvalues < {MIN_EIGENVALUES}: too small to judge",
        )
    if fit is None:
        return "no_fit", "all eigenvalues equal: no power-law tail"
    if fit.alpha < OVER_TRAINED_ALPHA:
        return "over_trained", f"alpha {fit.alpha:.2f} < {OVER_TRAINED_ALPHA:g}: over-trained"
    if fit.alpha > UNDER_TRAINED_ALPHA:
        return "under_trained", f"alpha {fit.alpha:.2f} > {UNDER_TRAINED_ALPHA:g}: under-trained"
    return "typical", (
        f"alpha {fit.alpha:.2f} in [{OVER_TRAINED_ALPHA:g}, {UNDER_TRAINED_ALPHA:g}]: typical"
    )


def analyze_layer(name: str, weight: torch.Tensor) -> LayerSpectrum:
    """Read one weight tensor (2-D or a convolution kernel) through its spectrum.

    The singular values come from ``torch.linalg.svdvals`` in float64, batched over the kernel
    positions.

    Example:
        >>> import torch
        >>> layer = analyze_layer("conv", torch.ones(4, 2, 3, 3))
        >>> layer.kind, layer.matrices, layer.eigenvalues, round(layer.spectral_norm, 6)
        ('conv', 9, 18, 2.828427)
    """
    matrices = kernel_matrices(weight.detach().to("cpu", torch.float64))
    kind: Literal["linear", "conv"] = "linear" if weight.ndim == 2 else "conv"
    shape, count = tuple(weight.shape), matrices.shape[0] * min(matrices.shape[1:])
    bad = int((~torch.isfinite(matrices)).sum())
    if bad:
        note = f"{bad} NaN/inf weight(s): no spectrum"
        return LayerSpectrum(
            name, kind, shape, matrices.shape[0], count, None, None, None, "non_finite", note
        )
    singular = torch.linalg.svdvals(matrices).flatten()
    eigenvalues = np.sort((singular**2).numpy())
    largest = float(eigenvalues[-1]) if len(eigenvalues) else 0.0
    total = float(eigenvalues.sum())
    nonzero = eigenvalues[eigenvalues > EIGENVALUE_FLOOR]
    fit = fit_power_law(nonzero) if len(nonzero) >= MIN_EIGENVALUES else None
    reading, note = reading_of(fit, len(nonzero))
    return LayerSpectrum(
        name=name,
        kind=kind,
        shape=shape,
        matrices=matrices.shape[0],
        eigenvalues=count,
        spectral_norm=math.sqrt(largest),
        stable_rank=total / largest if largest > 0 else 0.0,
        fit=fit,
        reading=reading,
        note=note,
    )


def is_layer_weight(key: str, value: object) -> bool:
    """Whether a state-dict entry is a Linear/Conv-like weight this module reads.

    A floating-point tensor of 2 or more dimensions whose last key part names a weight
    (``fc.weight``, ``attn.in_proj_weight``, ``lstm.weight_ih_l0``); norms and biases are 1-D.

    Example:
        >>> import torch
        >>> is_layer_weight("fc.weight", torch.zeros(3, 4)), is_layer_weight("bn.weight", torch.zeros(3))
        (True, False)
        >>> is_layer_weight("pos_embedding", torch.zeros(3, 4))
        False
    """
    return (
        isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and value.ndim >= 2
        and "weight" in key.rsplit(".", 1)[-1]
    )


def layer_name(key: str) -> str:
    """The layer's name: the state-dict key without a trailing ``.weight``.

    Example:
        >>> layer_name("model.fc1.weight"), layer_name("attn.in_proj_weight")
        ('model.fc1', 'attn.in_proj_weight')
    """
    return key.removesuffix(".weight") if key != "weight" else key


@dataclass(frozen=True)
class WeightsSummary:
    """The model-level summary over the judged layers (those with an alpha and a typed reading).

    Attributes:
        layers: how many layers were read.
        judged: how many of them got over-, under-trained or typical.
        counts: layers per reading (every reading present, zeros included).
        mean_alpha: the mean alpha over judged layers (None when none).
        mean_alpha_weighted: the mean of WeightWatcher's ``alpha_weighted`` over judged layers.
        verdict: ``non_finite`` (some layer holds NaN or inf), else ``over_trained``,
            ``under_trained``, ``mixed`` (both), ``typical``, or ``too_small`` when no layer
            could be judged.
        line: the verdict in one sentence.

    Example:
        >>> import torch
        >>> summary = summarize([analyze_layer("head", torch.eye(8))])
        >>> summary.verdict, summary.line
        ('too_small', 'no layer large enough to judge (1 layer(s), each < 20 eigenvalues or no tail)')
    """

    layers: int
    judged: int
    counts: dict[str, int]
    mean_alpha: float | None
    mean_alpha_weighted: float | None
    verdict: Literal["non_finite", "over_trained", "under_trained", "mixed", "typical", "too_small"]
    line: str

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready record (the schema in docs/weights.md).

        Example:
            >>> summarize([]).to_dict()["verdict"]
            'too_small'
        """
        return asdict(self)


def _worst(layers: list[LayerSpectrum], reading: Reading) -> str:
    chosen = sorted(
        (layer for layer in layers if layer.reading == reading),
        key=lambda layer: layer.alpha or 0.0,
        reverse=reading == "under_trained",
    )
    shown = ", ".join(f"{layer.name} {layer.alpha:.2f}" for layer in chosen[:3])
    more = f" and {len(chosen) - 3} more" if len(chosen) > 3 else ""
    return shown + more


def summarize(layers: list[LayerSpectrum]) -> WeightsSummary:
    """The model-level summary: counts per reading, mean alpha, a verdict and its sentence.

    The verdict names what the judged layers show (``non_finite`` before anything else, when a
    layer holds NaN or inf): ``over_trained`` when some layer has
    alpha < 2 (and none > 6), ``under_trained`` for the reverse, ``mixed`` for both,
    ``typical`` when every judged layer is in [2, 6].

    Example:
        >>> fit = PowerLawFit(1.5, 1.0, 0.05, 30)
        >>> layer = LayerSpectrum("fc", "linear", (64, 64), 1, 64, 3.0, 5.0, fit, "over_trained", "")
        >>> summarize([layer]).line
        'over-trained: 1 of 1 judged layer(s) have alpha < 2 (fc 1.50); mean alpha 1.50'
    """
    counts = Counter(layer.reading for layer in layers)
    judged = [
        layer for layer in layers if layer.reading in ("over_trained", "typical", "under_trained")
    ]
    alphas = [layer.alpha for layer in judged if layer.alpha is not None]
    weighted = [layer.alpha_weighted for layer in judged if layer.alpha_weighted is not None]
    mean_alpha = sum(alphas) / len(alphas) if alphas else None
    over, under = counts["over_trained"], counts["under_trained"]
    of = f"of {len(judged)} judged layer(s)"
    broken = [layer.name for layer in layers if layer.reading == "non_finite"]
    if broken:
        more = f" and {len(broken) - 3} more" if len(broken) > 3 else ""
        verdict, line = (
            "non_finite",
            (
                f"non-finite: NaN/inf weights in {len(broken)} layer(s) ({', '.join(broken[:3])}{more})"
            ),
        )
    elif not judged:
        verdict, line = (
            "too_small",
            (
                f"no layer large enough to judge ({len(layers)} layer(s), each < "
                f"{MIN_EIGENVALUES} eigenvalues or no tail)"
            ),
        )
    elif over and under:
        verdict, line = (
            "mixed",
            (
                f"mixed: {over} {of} over-trained ({_worst(layers, 'over_trained')}), "
                f"{under} under-trained ({_worst(layers, 'under_trained')})"
            ),
        )
    elif over:
        verdict, line = (
            "over_trained",
            (
                f"over-trained: {over} {of} have alpha < {OVER_TRAINED_ALPHA:g} "
                f"({_worst(layers, 'over_trained')})"
            ),
        )
    elif under:
        verdict, line = (
            "under_trained",
            (
                f"under-trained: {under} {of} have alpha > {UNDER_TRAINED_ALPHA:g} "
                f"({_worst(layers, 'under_trained')})"
            ),
        )
    else:
        verdict, line = (
            "typical",
            (
                f"typical: all {len(judged)} judged layer(s) have alpha in "
                f"[{OVER_TRAINED_ALPHA:g}, {UNDER_TRAINED_ALPHA:g}]"
            ),
        )
    if mean_alpha is not None:
        line += f"; mean alpha {mean_alpha:.2f}"
    return WeightsSummary(
        layers=len(layers),
        judged=len(judged),
        counts={reading: counts[reading] for reading in READINGS},
        mean_alpha=mean_alpha,
        mean_alpha_weighted=sum(weighted) / len(weighted) if weighted else None,
        verdict=verdict,
        line=line,
    )


@dataclass(frozen=True)
class WeightsReport:
    """Every Linear/Conv-like weight of one state dict, read, and the model-level summary.

    Example:
        >>> import torch
        >>> report = analyze_state_dict({"fc.weight": torch.eye(8), "fc.bias": torch.zeros(8)})
        >>> [layer.name for layer in report.layers], report.summary.verdict
        (['fc'], 'too_small')
    """

    layers: list[LayerSpectrum]
    summary: WeightsSummary = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", summarize(self.layers))


def analyze_state_dict(state_dict: Mapping[str, object]) -> WeightsReport:
    """Read every Linear/Conv-like weight of ``state_dict`` (see :func:`is_layer_weight`).

    Example:
        >>> import torch
        >>> report = analyze_state_dict(torch.nn.Conv2d(3, 8, 3).state_dict())
        >>> report.layers[0].shape, report.layers[0].eigenvalues
        ((8, 3, 3, 3), 27)
    """
    return WeightsReport(
        [
            analyze_layer(layer_name(key), value)
            for key, value in state_dict.items()
            if is_layer_weight(key, value)
        ]
    )
