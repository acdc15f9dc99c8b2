"""Datasets, stratified splits and the DataModule (layouts, no augmentation outside training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightreg.data.datamodule import SampleDataModule, to_layout
from lightreg.data.datasets import DataError, load_samples
from lightreg.data.splits import stratified_split


@pytest.mark.parametrize(("seed", "train_fraction"), [(0, 1.0), (1, 0.3), (7, 0.1)])
def test_splits_are_disjoint_stratified_and_seeded(seed, train_fraction):
    labels = load_samples("digits").labels
    split = stratified_split(labels, 0.15, 0.15, seed, train_fraction)
    sets = [set(split.train), set(split.val), set(split.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    overall = np.bincount(labels) / len(labels)
    for part in (split.train, split.val, split.test):
        share = np.bincount(labels[part], minlength=10) / len(part)
        assert np.abs(share - overall).max() < 0.03
    again = stratified_split(labels, 0.15, 0.15, seed, train_fraction)
    assert np.array_equal(split.train, again.train) and np.array_equal(split.test, again.test)


def test_train_fraction_subsamples_train_only():
    labels = load_samples("wine").labels
    full = stratified_split(labels, 0.2, 0.2, 3)
    small = stratified_split(labels, 0.2, 0.2, 3, train_fraction=0.5)
    assert np.array_equal(full.val, small.val) and np.array_equal(full.test, small.test)
    assert set(small.train) < set(full.train)
    assert len(small.train) == round(0.5 * len(full.train))


@pytest.mark.parametrize(
    ("layout", "shape"), [("flat", (64,)), ("image", (1, 8, 8)), ("sequence", (8, 8))]
)
def test_digits_layouts(layout, shape):
    dm = SampleDataModule("digits", layout=layout, batch_size=16)
    assert dm.input_shape == shape
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert tuple(x.shape) == (16, *shape) and y.dtype == torch.long


def test_to_layout_keeps_pixels():
    image = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    assert np.array_equal(to_layout(image, "image")[0, :, 1, 2], image[0, 1, 2, :])
    assert np.array_equal(to_layout(image, "flat")[0], image[0].reshape(-1))


def test_validation_and_test_are_never_augmented():
    dm = SampleDataModule("digits", layout="flat", augment="heavy", batch_size=64)
    dm.setup("fit")
    first = torch.cat([x for x, _ in dm.val_dataloader()])
    second = torch.cat([x for x, _ in dm.val_dataloader()])
    raw = to_layout(dm.samples.features[dm.split.val], "flat")
    assert torch.equal(first, second) and np.allclose(first.numpy(), raw)
    train_a = torch.cat([x for x, _ in dm.train_eval_dataloader()])
    assert np.allclose(train_a.numpy(), to_layout(dm.samples.features[dm.split.train], "flat"))
    augmented = dm._datasets["train"]
    assert not torch.equal(augmented[0][0], augmented[0][0]) or not torch.equal(
        augmented[1][0], augmented[1][0]
    )


def test_tabular_is_standardized_with_training_statistics():
    dm = SampleDataModule("breast_cancer", layout="flat")
    dm.setup("fit")
    train = torch.cat([x for x, _ in dm.train_eval_dataloader()])
    assert torch.allclose(train.mean(0), torch.zeros(30), atol=1e-4)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(30), atol=1e-3)


def test_user_csv_and_its_errors(tmp_path):
    good = tmp_path / "good.csv"
    rows = "\n".join(f"{i},{i * 2},{'ab'[i % 2]}" for i in range(20))
    good.write_text("f1,f2,label\n" + rows + "\n")
    samples = load_samples("csv", good)
    assert samples.features.shape == (20, 2) and samples.class_names == ("a", "b")
    with pytest.raises(DataError, match="no column 'target'"):
        load_samples("csv", good, label_column="target")
    bad = tmp_path / "bad.csv"
    bad.write_text("f1,label\nx,a\n1,b\n")
    with pytest.raises(DataError, match=r"bad.csv:2: a feature is not a number"):
        load_samples("csv", bad)


def test_image_folder(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(3):
            cv2.imwrite(
                str(tmp_path / name / f"{i}.png"), rng.integers(0, 255, (10, 12, 3), np.uint8)
            )
    samples = load_samples("image_folder", tmp_path, image_size=16, channels=1)
    assert samples.features.shape == (6, 16, 16, 1) and samples.class_names == ("cat", "dog")
    assert samples.features.min() >= 0.0 and samples.features.max() <= 1.0


def _identical_images_module(workers: int) -> SampleDataModule:
    from lightreg.data.datasets import Samples

    dm = SampleDataModule(
        "digits", layout="flat", augment="heavy", batch_size=8, num_workers=workers, seed=11
    )
    image = load_samples("digits").features[:1]
    dm._samples = Samples(np.repeat(image, 120, axis=0), np.arange(120) % 2, ("a", "b"))
    dm.setup("fit")
    return dm


def test_worker_augmentation_is_seeded_per_worker_and_reproducible():
    first = [x for x, _ in _identical_images_module(2).train_dataloader()]
    again = [x for x, _ in _identical_images_module(2).train_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    # batches 0 and 1 come from different workers; the same seed would repeat the same draws
    assert not torch.equal(first[0], first[1])


def test_the_largest_seed_the_schema_allows_splits_and_loads():
    labels = np.repeat([0, 1, 2], 20)
    split = stratified_split(labels, 0.2, 0.2, seed=2**32 - 1, train_fraction=0.5)
    assert len(split.train) == 18
    dm = SampleDataModule("digits", layout="flat", seed=2**32 - 1, augment="light")
    dm.setup("fit")
    features, _ = next(iter(dm.train_dataloader()))
    assert features.shape[1] == 64
