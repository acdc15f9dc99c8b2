"""Time shift, time stretch, amplitude scaling and Gaussian noise for 1D signals, as
albumentations transforms.

A signal ``[L, C]`` goes through albumentations as an image of height 1, ``[1, L, C]``;
randomness comes from the pipeline's seeded generators, like every other transform.
albumentations clips float images to [0, 1] in its own noise and intensity transforms
(``GaussNoise``, ``MultiplicativeNoise``, ``RandomBrightnessContrast``), which destroys a
standardized signal: ``SignalScale`` and ``SignalNoise`` leave values unbounded. Its ``Affine``
shifts and stretches a height-1 image correctly but takes about 0.4 ms per 40-step signal
(building a 3x3 matrix in Python), a second per MNIST-1D epoch on two cores: ``TimeShift`` and
``TimeStretch`` do the same in a tenth of the time. Shifted-in and stretched-in steps are 0
(the channel mean once standardized), as with ``Affine``'s default border.

Example:
    >>> import albumentations as A
    >>> pipeline = A.Compose([SignalScale(scale_range=(2.0, 2.0), p=1.0)])
    >>> pipeline(image=np.full((1, 4, 1), -3.0, np.float32))["image"].ravel().tolist()
    [-6.0, -6.0, -6.0, -6.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from albumentations.core.transforms_interface import ImageOnlyTransform


def _range(
    name: str, value: Sequence[float], low: float, high: float = np.inf
) -> tuple[float, float]:
    """``value`` as an increasing pair of finite numbers within ``[low, high]``."""
    try:
        first, last = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be two numbers [min, max], got {value!r}") from None
    if not (np.isfinite(first) and np.isfinite(last) and low <= first <= last <= high):
        bounds = f"{low:g} <= min <= max" + (f" <= {high:g}" if np.isfinite(high) else "")
        raise ValueError(f"`{name}` must be [min, max] with {bounds}, got {value!r}")
    return first, last


class TimeShift(ImageOnlyTransform):
    """Shift the signal in time by a share of its length drawn from ``shift_range``.

    Example:
        >>> shift = TimeShift(shift_range=(0.5, 0.5), p=1.0)
        >>> shift(image=np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1))["image"].ravel().tolist()
        [0.0, 0.0, 1.0, 2.0]
    """

    def __init__(self, shift_range: Sequence[float] = (-0.1, 0.1), p: float = 0.5) -> None:
        super().__init__(p=p)
        self.shift_range = _range("shift_range", shift_range, -1.0, 1.0)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        length = params["shape"][1]
        low, high = (round(share * length) for share in self.shift_range)
        return {"steps": self.py_random.randint(low, high)}

    def apply(self, img: np.ndarray, steps: int, **params: Any) -> np.ndarray:
        shifted = np.zeros_like(img)
        if steps >= 0:
            shifted[:, steps:] = img[:, : img.shape[1] - steps]
        else:
            shifted[:, :steps] = img[:, -steps:]
        return shifted

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("shift_range",)


class TimeStretch(ImageOnlyTransform):
    """Stretch the signal about its centre by a factor drawn from ``scale_range`` (linear
    interpolation; above 1 it slows down and its ends leave, below 1 it speeds up, padded by 0).

    Example:
        >>> stretch = TimeStretch(scale_range=(2.0, 2.0), p=1.0)
        >>> stretch(image=np.arange(5, dtype=np.float32).reshape(1, 5, 1))["image"].ravel().tolist()
        [1.0, 1.5, 2.0, 2.5, 3.0]
    """

    def __init__(self, scale_range: Sequence[float] = (0.9, 1.1), p: float = 0.5) -> None:
        super().__init__(p=p)
        self.scale_range = _range("scale_range", scale_range, 0.1, 10.0)

    def get_params(self) -> dict[str, Any]:
        return {"scale": self.py_random.uniform(*self.scale_range)}

    def apply(self, img: np.ndarray, scale: float, **params: Any) -> np.ndarray:
        length = img.shape[1]
        if length < 2:
            return img
        centre = (length - 1) / 2
        source = centre + (np.arange(length) - centre) / scale
        left = np.clip(np.floor(source).astype(int), 0, length - 2)
        weight = (source - left)[None, :, None]
        inside = ((source >= 0) & (source <= length - 1))[None, :, None]
        blend = img[:, left] * (1 - weight) + img[:, left + 1] * weight
        return np.where(inside, blend, 0).astype(img.dtype)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("scale_range",)


class SignalScale(ImageOnlyTransform):
    """Multiply the whole signal by one factor drawn from ``scale_range`` (amplitude scaling).

    Example:
        >>> SignalScale(scale_range=(0.8, 1.2)).scale_range
        (0.8, 1.2)
    """

    def __init__(self, scale_range: Sequence[float] = (0.8, 1.2), p: float = 0.5) -> None:
        super().__init__(p=p)
        self.scale_range = _range("scale_range", scale_range, 0.0)

    def get_params(self) -> dict[str, Any]:
        return {"scale": self.py_random.uniform(*self.scale_range)}

    def apply(self, img: np.ndarray, scale: float, **params: Any) -> np.ndarray:
        return (img * scale).astype(img.dtype)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("scale_range",)


class SignalNoise(ImageOnlyTransform):
    """Add Gaussian noise whose standard deviation is drawn from ``std_range`` (signal units).

    Example:
        >>> noisy = SignalNoise(std_range=(0.1, 0.1), p=1.0)(image=np.zeros((1, 500, 1), np.float32))
        >>> round(float(noisy["image"].std()), 1)
        0.1
    """

    def __init__(self, std_range: Sequence[float] = (0.02, 0.05), p: float = 0.5) -> None:
        super().__init__(p=p)
        self.std_range = _range("std_range", std_range, 0.0)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        std = self.py_random.uniform(*self.std_range)
        return {"noise": self.random_generator.normal(0.0, std, params["shape"])}

    def apply(self, img: np.ndarray, noise: np.ndarray, **params: Any) -> np.ndarray:
        return (img + noise.reshape(img.shape)).astype(img.dtype)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("std_range",)


SIGNAL_TRANSFORMS = {
    cls.__name__: cls for cls in (TimeShift, TimeStretch, SignalScale, SignalNoise)
}
"""The transforms lightreg adds to albumentations' own, by name."""
