"""Albumentations pipelines for the training split: presets, or an explicit list from the recipe.

Signals use albumentations too, as images of height 1 (``[1, L, C]``), with lightreg's
``TimeShift``, ``TimeStretch``, ``SignalScale`` and ``SignalNoise`` beside its ``XYMasking``
(time masks): its noise and intensity transforms clip float images to [0, 1], its fractional
``CoarseDropout`` holes never land on a height-1 image, and its ``Affine`` (correct) is ten times
slower; ``audiomentations`` would bring librosa and numba, and its own global random state.

Presets (for small images, digits included):

- ``light``: small shifts and rotations.
- ``moderate``: shift-scale-rotate, brightness/contrast, one Cutout hole (``CoarseDropout``).
- ``heavy``: stronger of each, two holes, and ``HorizontalFlip`` (only for mirror-invariant classes).

For signals, the same names mean time shift, amplitude scaling and Gaussian noise (``light``),
plus time stretch and one time mask (``moderate``), stronger and up to two masks (``heavy``).

An explicit list names albumentations transforms with their arguments::

    augment:
      - Affine: {rotate: [-10, 10], p: 0.5}
      - CoarseDropout: {num_holes_range: [1, 2], p: 0.3}

albumentations is imported lazily: it imports torch, which ``lightreg validate`` avoids unless
a recipe holds an explicit list.

Example:
    >>> import numpy as np
    >>> pipeline = build_augmentation("light")
    >>> pipeline(image=np.zeros((8, 8, 1), np.float32))["image"].shape
    (8, 8, 1)
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

AugmentSpec = str | list[dict[str, dict[str, Any] | None]] | None

PRESET_STEPS: dict[str, list[dict[str, dict[str, Any]]]] = {
    "light": [
        {"Affine": {"translate_percent": [-0.06, 0.06], "rotate": [-8, 8], "p": 0.5}},
    ],
    "moderate": [
        {
            "Affine": {
                "translate_percent": [-0.1, 0.1],
                "scale": [0.9, 1.1],
                "rotate": [-12, 12],
                "p": 0.7,
            }
        },
        {"RandomBrightnessContrast": {"brightness_limit": 0.15, "contrast_limit": 0.15, "p": 0.5}},
        {
            "CoarseDropout": {
                "num_holes_range": [1, 1],
                "hole_height_range": [0.2, 0.3],
                "hole_width_range": [0.2, 0.3],
                "fill": 0,
                "p": 0.3,
            }
        },
    ],
    "heavy": [
        {"HorizontalFlip": {"p": 0.5}},
        {
            "Affine": {
                "translate_percent": [-0.15, 0.15],
                "scale": [0.85, 1.15],
                "rotate": [-20, 20],
                "shear": [-8, 8],
                "p": 0.8,
            }
        },
        {"RandomBrightnessContrast": {"brightness_limit": 0.25, "contrast_limit": 0.25, "p": 0.6}},
        {
            "CoarseDropout": {
                "num_holes_range": [1, 2],
                "hole_height_range": [0.2, 0.35],
                "hole_width_range": [0.2, 0.35],
                "fill": 0,
                "p": 0.5,
            }
        },
    ],
}


def signal_preset_steps(name: str, length: int) -> list[dict[str, dict[str, Any]]]:
    """The steps of preset ``name`` for signals of ``length`` time steps (shown as ``[1, L, C]``).

    Shifts are shares of the length; each time mask covers up to a tenth of it.

    Example:
        >>> [next(iter(step)) for step in signal_preset_steps("moderate", 40)]
        ['TimeShift', 'TimeStretch', 'SignalScale', 'SignalNoise', 'XYMasking']
    """

    def masks(most: int, p: float) -> dict[str, dict[str, Any]]:
        tenth = max(1, round(0.1 * length))
        return {
            "XYMasking": {
                "num_masks_x": [1, most],
                "mask_x_length": [1, tenth],
                "num_masks_y": 0,
                "fill": 0,
                "p": p,
            }
        }

    presets: dict[str, list[dict[str, dict[str, Any]]]] = {
        "light": [
            {"TimeShift": {"shift_range": [-0.05, 0.05], "p": 0.5}},
            {"SignalScale": {"scale_range": [0.9, 1.1], "p": 0.5}},
            {"SignalNoise": {"std_range": [0.01, 0.03], "p": 0.5}},
        ],
        "moderate": [
            {"TimeShift": {"shift_range": [-0.1, 0.1], "p": 0.7}},
            {"TimeStretch": {"scale_range": [0.9, 1.1], "p": 0.5}},
            {"SignalScale": {"scale_range": [0.8, 1.2], "p": 0.5}},
            {"SignalNoise": {"std_range": [0.02, 0.05], "p": 0.5}},
            masks(1, 0.3),
        ],
        "heavy": [
            {"TimeShift": {"shift_range": [-0.15, 0.15], "p": 0.8}},
            {"TimeStretch": {"scale_range": [0.85, 1.15], "p": 0.6}},
            {"SignalScale": {"scale_range": [0.7, 1.3], "p": 0.6}},
            {"SignalNoise": {"std_range": [0.05, 0.1], "p": 0.6}},
            masks(2, 0.5),
        ],
    }
    return presets[name]


def _steps(
    spec: AugmentSpec, signal_length: int | None = None
) -> list[dict[str, dict[str, Any] | None]]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return (
            PRESET_STEPS[spec]
            if signal_length is None
            else signal_preset_steps(spec, signal_length)
        )
    return spec


def _transforms() -> dict[str, type]:
    """albumentations' transforms and lightreg's signal ones, by name."""
    import albumentations as A

    from lightreg.data.signal_transforms import SIGNAL_TRANSFORMS

    own = {
        name: getattr(A, name)
        for name in dir(A)
        if isinstance(getattr(A, name), type)
        and issubclass(getattr(A, name), A.BasicTransform)
        and not name.startswith("_")
    }
    return own | SIGNAL_TRANSFORMS


def augmentation_problems(
    spec: AugmentSpec,
    key: str = "regularization.augment",
    image_shape: tuple[int, int, int] | None = None,
) -> list[str]:
    """Every problem with an augmentation spec, one line each, tied to its key path.

    An unknown transform gets a did-you-mean; bad arguments get albumentations' own message;
    non-finite numbers are refused. With ``image_shape`` (height, width, channels), each transform
    is also applied once to a blank float image of that shape: it must not fail (some wrong
    arguments only fail then) nor change the shape (the model takes one size). A height of 1 is
    a signal: presets resolve to the signal ones, and the test signal spans [-2, 2], which a
    transform must not clip to [0, 1].

    Example:
        >>> augmentation_problems([{"HorizontalFlp": {"p": 0.5}}])
        ["regularization.augment[0]: unknown transform 'HorizontalFlp'; did you mean 'HorizontalFlip'?"]
        >>> augmentation_problems([{"RandomCrop": {"height": 4, "width": 4}}], image_shape=(8, 8, 1))
        ['regularization.augment[0].RandomCrop: turns an 8x8x1 image into 4x4x1; the model takes one size']
        >>> augmentation_problems([{"GaussNoise": {}}], image_shape=(1, 40, 1))[0][:64]
        'regularization.augment[0].GaussNoise: clips the signal to [0, 1]'
    """
    from lightreg.text import did_you_mean, short_repr

    problems: list[str] = []
    is_signal = image_shape is not None and image_shape[0] == 1
    steps = _steps(spec, image_shape[1] if is_signal else None)
    if not steps:
        return problems
    transforms = _transforms()
    names = sorted(transforms)
    for index, step in enumerate(steps):
        where = f"{key}[{index}]"
        if not isinstance(step, dict) or len(step) != 1:
            problems.append(f"{where}: expected one 'TransformName: {{arguments}}' mapping")
            continue
        ((name, arguments),) = step.items()
        if name not in names:
            hint = did_you_mean(name, names) or "; see albumentations' transform list"
            problems.append(f"{where}: unknown transform {short_repr(name)}{hint}")
            continue
        where = f"{where}.{name}"
        infinite = [arg for arg, value in (arguments or {}).items() if not _finite(value)]
        if infinite:
            problems.append(f"{where}.{infinite[0]}: must be a finite number")
            continue
        problem = _try_transform(transforms[name], arguments or {}, image_shape)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def _finite(value: Any) -> bool:
    """Whether every float in ``value`` (a number, or a list or mapping of them) is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_finite(item) for item in value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    return True


def _try_transform(
    transform: type, arguments: dict[str, Any], image_shape: tuple[int, int, int] | None
) -> str | None:
    """Build the transform (and apply it once to a test image of ``image_shape``): what failed."""
    import albumentations as A
    import numpy as np

    with warnings.catch_warnings():  # albumentations warns about arguments it adjusts
        warnings.simplefilter("ignore")
        try:
            transform(**arguments)
        except Exception as exc:  # albumentations raises ValueError/TypeError/pydantic errors
            return _first_lines(exc)
        if image_shape is None:
            return None
        image = np.zeros(image_shape, np.float32)
        if image_shape[0] == 1:  # a signal, spanning [-2, 2]
            image += np.linspace(-2, 2, image_shape[1], dtype=np.float32)[None, :, None]
        try:
            result = A.Compose([transform(**{**arguments, "p": 1.0})])(image=image)["image"]
        except Exception as exc:  # e.g. cv2.error for a kernel size that is not an int
            return f"fails on an {_shape(image_shape)} image: {_first_lines(exc)}"
    if result.shape != image.shape:
        return (
            f"turns an {_shape(image_shape)} image into {_shape(result.shape)}; "
            "the model takes one size"
        )
    if image_shape[0] == 1 and result.min() >= 0 and result.max() <= 1:
        return (
            "clips the signal to [0, 1] (as albumentations does for float images); "
            "use SignalScale or SignalNoise"
        )
    return None


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _first_lines(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [
        re.sub(r"\s*\[type=.*$", "", line)
        for line in lines
        if not line.startswith("For further information")
        and not re.match(r"^\d+ validation errors? for", line)
    ]
    text = " ".join(lines[:3]) or exc.__class__.__name__
    return text if len(text) <= 300 else text[:297] + "..."


def build_augmentation(spec: AugmentSpec, signal_length: int | None = None) -> Any | None:
    """An ``albumentations.Compose`` for ``spec``, or None when there is nothing to apply.

    With ``signal_length``, the data are signals of that many time steps (shown to the pipeline
    as ``[1, L, C]`` images) and a preset name means the signal preset.

    Raises:
        ValueError: listing every problem in the spec.

    Example:
        >>> build_augmentation(None) is None
        True
        >>> [type(t).__name__ for t in build_augmentation([{"HorizontalFlip": {"p": 0.5}}]).transforms]
        ['HorizontalFlip']
        >>> [type(t).__name__ for t in build_augmentation("light", signal_length=40).transforms]
        ['TimeShift', 'SignalScale', 'SignalNoise']
    """
    steps = _steps(spec, signal_length)
    if not steps:
        return None
    problems = augmentation_problems(steps)
    if problems:
        raise ValueError("; ".join(problems))
    import albumentations as A

    transforms = _transforms()
    return A.Compose(
        [transforms[name](**(args or {})) for step in steps for name, args in step.items()]
    )
