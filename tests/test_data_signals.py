"""MNIST-1D (generated, cached) and user signals from an .npz: shapes, splits, bad inputs."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch

from lightreg.data import datasets
from lightreg.data.datamodule import SampleDataModule
from lightreg.data.datasets import DataError, load_mnist1d, load_signals

SMALL = {"num_samples": 100}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "lightreg"


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory):
    """The full data set, generated once into a temporary cache for this module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
        load_mnist1d()
        yield


def _count_generations(monkeypatch) -> list[int]:
    import mnist1d.data

    calls: list[int] = []
    real = mnist1d.data.make_dataset

    def counted(args):
        calls.append(1)
        return real(args)

    monkeypatch.setattr(mnist1d.data, "make_dataset", counted)
    return calls


def test_mnist1d_arguments_are_the_papers():
    import mnist1d.data

    paper = mnist1d.data.get_dataset_args(as_dict=True)
    paper.pop("url")
    assert paper == datasets.MNIST1D_ARGS


def test_mnist1d_cache_miss_then_hit(cache, monkeypatch):
    calls = _count_generations(monkeypatch)
    numpy_state, python_state = np.random.get_state()[1].copy(), random.getstate()
    first = load_mnist1d(**SMALL)
    assert calls == [1] and len(list(cache.glob("mnist1d-*.npz"))) == 1
    assert np.array_equal(np.random.get_state()[1], numpy_state)  # global RNGs left alone
    assert random.getstate() == python_state
    assert first.features.shape == (100, 40, 1) and first.features.dtype == np.float32
    assert first.test_index.tolist() == list(range(80, 100))

    import mnist1d.data

    def fail(args):
        raise AssertionError("regenerated on a cache hit")

    monkeypatch.setattr(mnist1d.data, "make_dataset", fail)
    again = load_mnist1d(**SMALL)
    assert np.array_equal(first.features, again.features)
    assert np.array_equal(first.labels, again.labels)


def test_mnist1d_cache_is_keyed_by_the_arguments(cache, monkeypatch):
    calls = _count_generations(monkeypatch)
    load_mnist1d(**SMALL)
    load_mnist1d(num_samples=200)
    assert calls == [1, 1] and len(list(cache.glob("mnist1d-*.npz"))) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_arguments", "missing_array"])
def test_mnist1d_bad_cache_file_is_rebuilt(cache, monkeypatch, damage):
    good = load_mnist1d(**SMALL)
    (file,) = cache.glob("mnist1d-*.npz")
    if damage == "garbage":
        file.write_bytes(b"not an npz")
    elif damage == "truncated":
        file.write_bytes(file.read_bytes()[:300])
    elif damage == "other_arguments":
        with np.load(file) as archive:
            arrays = dict(archive)
        np.savez(file, **{**arrays, "key": np.array('{"args": {"seed": 1}}')})
    else:
        np.savez(file, key=np.load(file)["key"])
    calls = _count_generations(monkeypatch)
    rebuilt = load_mnist1d(**SMALL)
    assert calls == [1]
    assert np.array_equal(rebuilt.features, good.features)
    assert list(cache.iterdir()) == [file]  # replaced in place, no temporary file left
    _count_generations(monkeypatch).clear()
    assert np.array_equal(load_mnist1d(**SMALL).features, good.features)


def test_mnist1d_unwritable_cache_still_loads(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert load_mnist1d(**SMALL).features.shape == (100, 40, 1)


def test_mnist1d_split_keeps_the_papers_test_set(mnist1d_cache):
    dm = SampleDataModule("mnist1d", val_fraction=0.2, train_fraction=0.5, seed=3)
    samples, split = dm.samples, dm.split
    assert samples.features.shape == (5000, 40, 1) and samples.kind == "signal"
    assert split.test.tolist() == list(range(4000, 5000))
    assert len(split.val) == 800 and len(split.train) == 1600
    assert not set(split.train) & set(split.val) and max(split.val) < 4000
    counts = np.bincount(samples.labels[split.val], minlength=10)
    assert counts.min() >= 75 and counts.max() <= 85  # stratified: 80 per class
    other = SampleDataModule("mnist1d", val_fraction=0.2, seed=4).split
    assert not np.array_equal(other.val, split.val) and np.array_equal(other.test, split.test)


@pytest.mark.parametrize(
    ("layout", "shape"), [("image", (1, 40)), ("sequence", (40, 1)), ("flat", (40,))]
)
def test_mnist1d_layouts(mnist1d_cache, layout, shape):
    dm = SampleDataModule("mnist1d", layout=layout, batch_size=16)
    assert dm.input_shape == shape
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert tuple(x.shape) == (16, *shape) and x.dtype == torch.float32 and y.dtype == torch.long
    assert tuple(next(iter(dm.test_dataloader()))[0].shape) == (16, *shape)


def test_seeded_mnist1d_datamodule_is_reproducible(mnist1d_cache):
    def batches(seed):
        dm = SampleDataModule("mnist1d", layout="image", augment="heavy", batch_size=50, seed=seed)
        dm.setup("fit")
        return [x for x, _ in itertools.islice(dm.train_dataloader(), 5)]

    first, again = batches(5), batches(5)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], batches(6)[0])


def _write(tmp_path, **arrays):
    file = tmp_path / "signals.npz"
    np.savez(file, **arrays)
    return file


def test_signals_channels_move_last_and_test_split_is_fixed(tmp_path):
    x = np.arange(12 * 2 * 30, dtype=np.float64).reshape(12, 2, 30)
    y = np.arange(12) % 3
    file = _write(tmp_path, x=x, y=y, x_test=x[:6] + 0.5, y_test=y[:6])
    samples = load_signals(file)
    assert samples.features.shape == (18, 30, 2) and samples.features.dtype == np.float32
    assert np.array_equal(samples.features[4, :, 1], x[4, 1])
    assert samples.class_names == ("0", "1", "2") and samples.test_index.tolist() == list(
        range(12, 18)
    )
    dm = SampleDataModule("signals", file, layout="image", val_fraction=0.25, seed=0)
    assert dm.input_shape == (2, 30)
    assert dm.split.test.tolist() == list(range(12, 18)) and len(dm.split.val) == 3


def test_signals_without_a_test_split_and_float_labels(tmp_path):
    file = _write(tmp_path, x=np.random.default_rng(0).normal(size=(40, 25)), y=[1.0, 7.0] * 20)
    samples = load_signals(file)
    assert samples.features.shape == (40, 25, 1) and samples.test_index is None
    assert samples.class_names == ("1", "7") and samples.labels[:2].tolist() == [0, 1]
    dm = SampleDataModule("signals", file, layout="sequence")
    dm.setup("fit")
    train = torch.cat([x for x, _ in dm.train_eval_dataloader()])
    assert abs(float(train.mean())) < 1e-4 and abs(float(train.std(unbiased=False)) - 1) < 1e-3


X, Y = np.zeros((4, 10)), np.array([0, 1, 0, 1])


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y": Y}, "no array 'x' (found: y)"),
        ({"x": X}, "no array 'y' (found: x)"),
        ({"x": X, "y": Y[:3]}, "x has 4 signals, y has 3 labels"),
        ({"x": np.where(np.eye(4, 10) > 0, np.nan, X), "y": Y}, "NaN or infinite values"),
        ({"x": np.full((4, 10), np.inf), "y": Y}, "NaN or infinite values (first in sample 0)"),
        ({"x": X, "y": Y + 0.5}, "y holds labels that are not integers (0.5)"),
        ({"x": X, "y": np.array(["a", "b", "a", "b"])}, "labels that are not integers (<U1)"),
        ({"x": X, "y": np.array([0, 1, None, 1], dtype=object)}, "array 'y' holds Python objects"),
        ({"x": np.zeros((4, 2, 3, 5)), "y": Y}, "x has shape (4, 2, 3, 5); expected N x L"),
        ({"x": np.zeros(4), "y": Y}, "x has shape (4,); expected N x L or N x C x L"),
        ({"x": np.array([["a"] * 10] * 4), "y": Y}, "x holds <U1 values; expected numbers"),
        ({"x": X, "y": Y.reshape(2, 2)}, "y has shape (2, 2); expected one label per signal"),
        ({"x": X, "y": Y, "x_test": X}, "x_test and y_test come together"),
        ({"x": X, "y": Y, "x_test": np.zeros((2, 11)), "y_test": Y[:2]}, "x_test signals are 11x1"),
        ({"x": X, "y": Y, "x_test": X[:2], "y_test": Y}, "x_test has 2 signals, y_test has 4"),
    ],
)
def test_bad_signal_files_get_one_line(tmp_path, arrays, message):
    file = _write(tmp_path, **arrays)
    with pytest.raises(DataError) as caught:
        load_signals(file)
    text = str(caught.value)
    assert text.startswith(f"{file}: ") and message in text and "\n" not in text


def test_signal_files_that_are_not_npz_archives(tmp_path, monkeypatch):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="garbage.npz: not a readable .npz archive"):
        load_signals(garbage)
    single = tmp_path / "single.npy"
    np.save(single, X)
    with pytest.raises(DataError, match="single.npy: a single array, expected an .npz"):
        load_signals(single)
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(__import__("pickle").dumps({"x": X, "y": Y}))
    with pytest.raises(DataError, match="pickled.npz: not a readable .npz archive"):
        load_signals(pickled)
    with pytest.raises(DataError, match="missing.npz: cannot read"):
        load_signals(tmp_path / "missing.npz")
    monkeypatch.setattr(datasets, "MAX_SIGNALS_BYTES", 100)
    with pytest.raises(DataError, match=r"signals.npz: 0.0 GiB; at most 0 GiB"):
        load_signals(_write(tmp_path, x=X, y=Y))
