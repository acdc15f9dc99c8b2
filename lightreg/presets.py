"""Regularization presets from the chapter's Q7 tables, expanded into a raw recipe dict.

Plain data and one function, no pydantic: ``lightreg diagnose`` reads the presets too.

A preset only fills the keys that the recipe (and ``--set``) left out, so every key stays
overridable. ``weight_decay`` carries the chapter's L2 column, applied decoupled (AdamW), as
its Q9 recommends. Augmentation is filled only for image and signal data (for signals the
augmentation preset names mean the signal pipeline).

Example:
    >>> raw = {"regularization": {"preset": "moderate", "dropout": 0.4}}
    >>> expanded = expand_preset(raw)
    >>> expanded["regularization"]["dropout"], expanded["regularization"]["weight_decay"]
    (0.4, 0.0001)
    >>> expanded["early_stopping"]["patience"]
    15
"""

from __future__ import annotations

import copy
from typing import Any

IMAGE_DATASETS = ("digits", "image_folder")
SIGNAL_DATASETS = ("mnist1d", "signals")
AUGMENTABLE_DATASETS = IMAGE_DATASETS + SIGNAL_DATASETS
TABULAR_DATASETS = ("breast_cancer", "wine", "csv")

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "none": {},
    "conservative": {
        "regularization": {
            "weight_decay": 1e-5,
            "dropout": 0.2,
            "label_smoothing": 0.0,
            "augment": "light",
        },
        "early_stopping": {"patience": 20},
    },
    "moderate": {
        "regularization": {
            "weight_decay": 1e-4,
            "dropout": 0.3,
            "label_smoothing": 0.05,
            "augment": "moderate",
        },
        "early_stopping": {"patience": 15},
    },
    "aggressive": {
        "regularization": {
            "weight_decay": 1e-3,
            "dropout": 0.5,
            "label_smoothing": 0.1,
            "augment": "heavy",
        },
        "early_stopping": {"patience": 10},
    },
}


def expand_preset(raw: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``raw`` with its ``regularization.preset`` values filled in.

    An unknown preset name (or a value that is not a name) is left for the schema to report.

    Example:
        >>> raw = {"data": {"dataset": "wine"}, "regularization": {"preset": "aggressive"}}
        >>> expand_preset(raw)["regularization"]  # no augmentation for tabular data
        {'preset': 'aggressive', 'weight_decay': 0.001, 'dropout': 0.5, 'label_smoothing': 0.1}
    """
    expanded = copy.deepcopy(raw)
    regularization = expanded.get("regularization")
    if not isinstance(regularization, dict):
        return expanded
    name = regularization.get("preset", "none")
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if not preset:
        return expanded
    data = expanded.get("data")
    dataset = data.get("dataset", "digits") if isinstance(data, dict) else "digits"
    for section, values in preset.items():
        target = expanded.setdefault(section, {})
        if not isinstance(target, dict):
            continue
        for key, value in values.items():
            if key == "augment" and dataset not in AUGMENTABLE_DATASETS:
                continue
            target.setdefault(key, value)
    return expanded
