"""Load a recipe's samples into memory: scikit-learn's bundled sets, an image folder, a CSV file.

Images come out as float32 ``[N, H, W, C]`` in [0, 1] (albumentations' layout); tabular data as
float32 ``[N, F]``. Nothing is downloaded.

Example:
    >>> samples = load_samples("digits")
    >>> samples.features.shape, samples.num_classes, samples.is_image
    ((1797, 8, 8, 1), 10, True)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class DataError(Exception):
    """User data that cannot be loaded; the message names the file and the reason.

    Example:
        >>> str(DataError("data.csv: no column 'label'"))
        "data.csv: no column 'label'"
    """


@dataclass(frozen=True)
class Samples:
    """All samples of a dataset with integer labels ``0..num_classes-1``.

    Example:
        >>> Samples(np.zeros((2, 3), np.float32), np.array([0, 1]), ("a", "b")).num_classes
        2
    """

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        """How many classes there are.

        Example:
            >>> Samples(np.zeros((3, 2), np.float32), np.array([0, 1, 2]), ("a", "b", "c")).num_classes
            3
        """
        return len(self.class_names)

    @property
    def is_image(self) -> bool:
        """Whether the features are ``[N, H, W, C]`` images.

        Example:
            >>> Samples(np.zeros((2, 8, 8, 1), np.float32), np.array([0, 1]), ("a", "b")).is_image
            True
        """
        return self.features.ndim == 4


def load_samples(
    dataset: str,
    path: Path | None = None,
    *,
    label_column: str = "label",
    image_size: int = 32,
    channels: int = 3,
) -> Samples:
    """Load one of ``digits | breast_cancer | wine | image_folder | csv``.

    Raises:
        DataError: for user data that is missing, empty or malformed.
        ValueError: for an unknown dataset name.

    Example:
        >>> samples = load_samples("wine")
        >>> samples.features.shape, samples.num_classes, samples.is_image
        ((178, 13), 3, False)
        >>> load_samples("iris")
        Traceback (most recent call last):
        ...
        ValueError: `dataset` can be digits, breast_cancer, wine, image_folder, csv; got 'iris'
    """
    if dataset == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = (bunch.images / 16.0).astype(np.float32)[..., None]
        return Samples(images, bunch.target.astype(np.int64), tuple(map(str, range(10))))
    if dataset in ("breast_cancer", "wine"):
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{dataset}")()
        return Samples(
            bunch.data.astype(np.float32),
            bunch.target.astype(np.int64),
            tuple(map(str, bunch.target_names)),
        )
    if dataset == "image_folder":
        return _load_image_folder(Path(path or ""), image_size, channels)
    if dataset == "csv":
        return _load_csv(Path(path or ""), label_column)
    raise ValueError(
        f"`dataset` can be digits, breast_cancer, wine, image_folder, csv; got {dataset!r}"
    )


def _encode(names: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    classes = tuple(sorted(set(names)))
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[n] for n in names], dtype=np.int64), classes


def _load_image_folder(root: Path, image_size: int, channels: int) -> Samples:
    import cv2

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    files = [
        (f, d.name)
        for d in class_dirs
        for f in sorted(d.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if len({name for _, name in files}) < 2:
        raise DataError(f"{root}: expected <root>/<class>/*.png|jpg with at least two classes")
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    images = []
    for file, _ in files:
        image = cv2.imread(str(file), flag)
        if image is None:
            raise DataError(f"{file}: not a readable image")
        image = cv2.resize(image, (image_size, image_size), interpolation=cv2.INTER_AREA)
        if channels == 1:
            image = image[..., None]
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        images.append(image)
    labels, classes = _encode([name for _, name in files])
    return Samples(np.stack(images).astype(np.float32) / 255.0, labels, classes)


def _load_csv(file: Path, label_column: str) -> Samples:
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot read ({exc})") from None
    if len(rows) < 2:
        raise DataError(f"{file}: expected a header row and data rows")
    header = [h.strip() for h in rows[0]]
    if label_column not in header:
        raise DataError(
            f"{file}: no column {label_column!r} (data.label_column); columns: {', '.join(header)}"
        )
    label_at = header.index(label_column)
    features, names = [], []
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"{file}:{line_no}: {len(row)} fields, header has {len(header)}")
        try:
            features.append([float(v) for i, v in enumerate(row) if i != label_at])
        except ValueError:
            raise DataError(f"{file}:{line_no}: a feature is not a number") from None
        names.append(row[label_at].strip())
    labels, classes = _encode(names)
    if len(classes) < 2:
        raise DataError(f"{file}: column {label_column!r} holds fewer than two classes")
    return Samples(np.asarray(features, dtype=np.float32), labels, classes)
