"""Load a recipe's samples into memory: scikit-learn's bundled sets, MNIST-1D, an image folder,
a CSV file, an ``.npz`` of 1D signals.

Images come out as float32 ``[N, H, W, C]`` in [0, 1] (albumentations' layout); 1D signals as
float32 ``[N, L, C]`` (time steps, channels last); tabular data as float32 ``[N, F]``. Nothing is
downloaded: MNIST-1D is generated on the machine (Greydanus & Kobak, "Scaling Down Deep Learning
with MNIST-1D", ICML 2024, https://arxiv.org/abs/2011.14439) and cached as an ``.npz`` under
:func:`cache_dir`.

Example:
    >>> samples = load_samples("digits")
    >>> samples.features.shape, samples.num_classes, samples.is_image
    ((1797, 8, 8, 1), 10, True)
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DATASETS = ("digits", "breast_cancer", "wine", "mnist1d", "image_folder", "csv", "signals")
MNIST1D_ARGS: dict[str, Any] = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": [36, 60],
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": 42,
}
"""The paper's ``get_dataset_args()`` (less its download URL): 4,000 train and 1,000 test signals."""
MAX_SIGNALS_BYTES = 2**31
"""Largest ``.npz`` of signals ``data.path`` may name (2 GiB): it is loaded whole into memory."""
Kind = Literal["image", "signal", "tabular"]


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
    test_index: np.ndarray | None = None
    """Indices of a fixed test split (the data set's own), or None to carve one."""

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

    @property
    def kind(self) -> Kind:
        """``image`` (``[N, H, W, C]``), ``signal`` (``[N, L, C]``) or ``tabular`` (``[N, F]``).

        Example:
            >>> Samples(np.zeros((2, 40, 1), np.float32), np.array([0, 1]), ("a", "b")).kind
            'signal'
        """
        return {4: "image", 3: "signal"}.get(self.features.ndim, "tabular")


def load_samples(
    dataset: str,
    path: Path | None = None,
    *,
    label_column: str = "label",
    image_size: int = 32,
    channels: int = 3,
) -> Samples:
    """Load one of ``digits | breast_cancer | wine | mnist1d | image_folder | csv | signals``.

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
        ValueError: `dataset` can be digits, breast_cancer, wine, mnist1d, image_folder, csv, signals; got 'iris'
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
    if dataset == "mnist1d":
        return load_mnist1d()
    if dataset == "image_folder":
        return _load_image_folder(Path(path or ""), image_size, channels)
    if dataset == "csv":
        return _load_csv(Path(path or ""), label_column)
    if dataset == "signals":
        return load_signals(Path(path or ""))
    raise ValueError(f"`dataset` can be {', '.join(DATASETS)}; got {dataset!r}")


def cache_dir() -> Path:
    """Where generated data sets are cached: ``$XDG_CACHE_HOME/lightreg`` (``~/.cache/lightreg``).

    Example:
        >>> cache_dir().name
        'lightreg'
    """
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "lightreg"


def load_mnist1d(cache: Path | None = None, **overrides: Any) -> Samples:
    """MNIST-1D with the paper's arguments (``overrides`` change some), cached as an ``.npz``.

    The cache file is ``<cache>/mnist1d-<key>.npz``, where ``key`` hashes the arguments and the
    ``mnist1d`` version; the arguments are stored inside too. A missing, corrupt or mismatched
    file is regenerated (a few seconds) and replaced atomically. The data set's own test split
    (the last ``1 - train_split``: 1,000 signals) is ``test_index``.

    Example:
        >>> import tempfile
        >>> samples = load_mnist1d(Path(tempfile.mkdtemp()), num_samples=100)
        >>> samples.features.shape, samples.kind, len(samples.test_index), samples.num_classes
        ((100, 40, 1), 'signal', 20, 10)
    """
    args = {**MNIST1D_ARGS, **overrides}
    key_text = json.dumps({"args": args, "mnist1d": version("mnist1d")}, sort_keys=True)
    digest = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    file = (cache or cache_dir()) / f"mnist1d-{digest}.npz"
    arrays = _read_cache(file, key_text)
    if arrays is None:
        arrays = _generate_mnist1d(args)
        _write_cache(file, key_text, arrays)
    x, y, x_test, y_test = (arrays[name] for name in ("x", "y", "x_test", "y_test"))
    features = np.concatenate([x, x_test]).astype(np.float32)[..., None]
    labels = np.concatenate([y, y_test]).astype(np.int64)
    test_index = np.arange(len(x), len(features))
    return Samples(features, labels, tuple(map(str, range(10))), test_index)


def _generate_mnist1d(args: dict[str, Any]) -> dict[str, np.ndarray]:
    """Run the paper's generator, leaving the global random states as they were."""
    import mnist1d.data

    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = mnist1d.data.make_dataset(SimpleNamespace(**args))
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {name: np.asarray(data[name]) for name in ("x", "y", "x_test", "y_test")}


def _read_cache(file: Path, key_text: str) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, unreadable or for other arguments."""
    try:
        with np.load(file, allow_pickle=False) as archive:
            if str(archive["key"]) != key_text:
                return None
            return {name: archive[name] for name in ("x", "y", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(file: Path, key_text: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write atomically (temporary file, then rename); an unwritable cache is skipped."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, key=np.array(key_text), **arrays)
        os.replace(temporary, file)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def load_signals(file: Path) -> Samples:
    """1D signals from an ``.npz``: ``x`` (N x L or N x C x L), ``y`` (N integer labels), and
    optionally ``x_test``/``y_test`` as the fixed test split. Stored as ``[N, L, C]``.

    Raises:
        DataError: one line naming the file and the problem.

    Example:
        >>> import tempfile
        >>> file = Path(tempfile.mkdtemp()) / "s.npz"
        >>> np.savez(file, x=np.zeros((6, 2, 50)), y=[0, 1, 0, 1, 0, 1])
        >>> load_signals(file).features.shape
        (6, 50, 2)
        >>> np.savez(file, x=np.zeros((6, 50)), y=[0.5] * 6)
        >>> load_signals(file)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lightreg.data.datasets.DataError: ...s.npz: y holds labels that are not integers (0.5)
    """
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise DataError(f"{file}: cannot read ({exc.strerror or exc})") from None
    if size > MAX_SIGNALS_BYTES:
        raise DataError(f"{file}: {size / 2**30:.1f} GiB; at most {MAX_SIGNALS_BYTES // 2**30} GiB")
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{file}: not a readable .npz archive ({_reason(exc)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{file}: a single array, expected an .npz archive with x and y")
    with archive:
        arrays = {name: _array(file, archive, name) for name in ("x", "y")}
        present = [name in archive.files for name in ("x_test", "y_test")]
        if any(present) and not all(present):
            raise DataError(f"{file}: x_test and y_test come together; found only one")
        if all(present):
            arrays |= {name: _array(file, archive, name) for name in ("x_test", "y_test")}
    x = _signals(file, "x", arrays["x"])
    y = _labels(file, "y", arrays["y"], len(x))
    if "x_test" not in arrays:
        labels, classes = _encode_values(y)
        return Samples(x, labels, classes)
    x_test = _signals(file, "x_test", arrays["x_test"])
    if x_test.shape[1:] != x.shape[1:]:
        raise DataError(
            f"{file}: x_test signals are {_shape(x_test)}, x signals are {_shape(x)} (L x C)"
        )
    y_test = _labels(file, "y_test", arrays["y_test"], len(x_test))
    labels, classes = _encode_values(np.concatenate([y, y_test]))
    return Samples(np.concatenate([x, x_test]), labels, classes, np.arange(len(x), len(labels)))


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _shape(signals: np.ndarray) -> str:
    return "x".join(map(str, signals.shape[1:]))


def _array(file: Path, archive: Any, name: str) -> np.ndarray:
    if name not in archive.files:
        found = ", ".join(archive.files) or "nothing"
        raise DataError(f"{file}: no array {name!r} (found: {found})")
    try:
        return archive[name]
    except ValueError:  # allow_pickle=False refuses object arrays
        raise DataError(
            f"{file}: array {name!r} holds Python objects (a pickle); store numbers"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{file}: array {name!r} is unreadable ({_reason(exc)})") from None


def _signals(file: Path, name: str, x: np.ndarray) -> np.ndarray:
    """``x`` as float32 ``[N, L, C]``, refusing a wrong shape, non-numbers and non-finite values."""
    if x.ndim not in (2, 3) or 0 in x.shape:
        raise DataError(f"{file}: {name} has shape {x.shape}; expected N x L or N x C x L")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{file}: {name} holds {x.dtype} values; expected numbers")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if bad.any():
        raise DataError(
            f"{file}: {name} holds NaN or infinite values (first in sample {int(bad.argmax())})"
        )
    return x[..., None] if x.ndim == 2 else np.ascontiguousarray(np.moveaxis(x, 1, 2))


def _labels(file: Path, name: str, y: np.ndarray, count: int) -> np.ndarray:
    """``y`` as integers, one per signal."""
    if y.ndim != 1:
        raise DataError(f"{file}: {name} has shape {y.shape}; expected one label per signal")
    if len(y) != count:
        signals = "x" if name == "y" else "x_test"
        raise DataError(f"{file}: {signals} has {count} signals, {name} has {len(y)} labels")
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        fractional = ~np.isfinite(y) | (np.round(y) != y)
        if not fractional.any():
            return y.astype(np.int64)
        example = y[fractional.argmax()]
    else:
        example = y.dtype
    raise DataError(f"{file}: {name} holds labels that are not integers ({example})")


def _encode_values(values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    classes, labels = np.unique(values, return_inverse=True)
    return labels.astype(np.int64), tuple(map(str, classes))


def npz_signal_shape(file: Path) -> tuple[int, int] | None:
    """``(L, C)`` of the signals in ``file``'s ``x``, read from its header; None if unreadable.

    Example:
        >>> import tempfile
        >>> file = Path(tempfile.mkdtemp()) / "s.npz"
        >>> np.savez(file, x=np.zeros((6, 3, 50)), y=np.zeros(6, int))
        >>> npz_signal_shape(file)
        (50, 3)
    """
    try:
        with zipfile.ZipFile(file) as archive, archive.open("x.npy") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, _, _ = read(handle)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if len(shape) == 2:
        return (shape[1], 1)
    return (shape[2], shape[1]) if len(shape) == 3 else None


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
