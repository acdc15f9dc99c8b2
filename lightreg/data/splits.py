"""Stratified, seeded train/val/test splits with no sample in two splits.

Example:
    >>> import numpy as np
    >>> labels = np.repeat([0, 1], 50)
    >>> split = stratified_split(labels, val_fraction=0.2, test_fraction=0.2, seed=0)
    >>> len(split.train), len(split.val), len(split.test)
    (60, 20, 20)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class Split:
    """Index arrays into the full dataset, one per split.

    Example:
        >>> Split(np.array([0]), np.array([1]), np.array([2])).train
        array([0])
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def stratified_split(
    labels: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    train_fraction: float = 1.0,
    test_index: np.ndarray | None = None,
) -> Split:
    """Split indices by class proportion; ``train_fraction`` then subsamples the train split.

    The val and test splits do not depend on ``train_fraction``, so runs that differ only in it
    are evaluated on the same samples. A data set's own test split (``test_index``) is kept as
    the test split; ``test_fraction`` is then unused and ``val_fraction`` is a share of the rest.

    Example:
        >>> labels = np.repeat([0, 1, 2], 20)
        >>> split = stratified_split(labels, 0.2, 0.2, seed=0, train_fraction=0.5)
        >>> len(split.train), len(split.val), len(split.test)
        (18, 12, 12)
        >>> np.bincount(labels[split.train]).tolist()
        [6, 6, 6]
        >>> fixed = stratified_split(labels, 0.25, 0.2, seed=0, test_index=np.arange(40, 60))
        >>> len(fixed.train), len(fixed.val), int(fixed.test.min())
        (30, 10, 40)
    """
    indices = np.arange(len(labels))
    if test_index is None:
        rest, test = train_test_split(
            indices, test_size=test_fraction, stratify=labels, random_state=seed
        )
        val_share = val_fraction / (1.0 - test_fraction)
    else:
        test = np.asarray(test_index)
        rest = np.setdiff1d(indices, test)
        val_share = val_fraction
    train, val = train_test_split(
        rest, test_size=val_share, stratify=labels[rest], random_state=(seed + 1) % 2**32
    )
    if train_fraction < 1.0:
        num_classes = len(np.unique(labels))
        keep = max(num_classes, round(train_fraction * len(train)))
        if keep < len(train):
            train, _ = train_test_split(
                train, train_size=keep, stratify=labels[train], random_state=(seed + 2) % 2**32
            )
    return Split(np.sort(train), np.sort(val), np.sort(test))
