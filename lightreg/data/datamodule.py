"""A LightningDataModule over in-memory samples: stratified splits, train-only augmentation.

The model decides the layout of a sample: ``flat`` ``[F]``, ``image`` ``[C, H, W]`` or
``sequence`` ``[H, W*C]`` (image rows as time steps); a signal ``[L, C]`` becomes ``[L*C]``,
``[C, L]`` (for ``Conv1d``) or ``[L, C]`` (L time steps of C features). Tabular features and
signal channels are standardized with training statistics. Validation and test data are never
augmented. Augmentation randomness is seeded per rank and per worker, so it is reproducible
and not duplicated across workers or ranks.

Example:
    >>> dm = SampleDataModule("digits", layout="image", batch_size=32)
    >>> dm.num_classes, dm.input_shape
    (10, (1, 8, 8))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, get_worker_info

from lightreg.data.augment import AugmentSpec, build_augmentation
from lightreg.data.datasets import Samples, load_samples
from lightreg.data.splits import Split, stratified_split

Layout = Literal["flat", "image", "sequence"]


def to_layout(features: np.ndarray, layout: Layout) -> np.ndarray:
    """Reshape a batch of ``[N, H, W, C]`` images, ``[N, L, C]`` signals or ``[N, F]`` rows
    into the model's layout.

    Example:
        >>> to_layout(np.zeros((2, 8, 8, 1)), "sequence").shape
        (2, 8, 8)
        >>> [to_layout(np.zeros((2, 40, 3)), layout).shape for layout in ("image", "sequence", "flat")]
        [(2, 3, 40), (2, 40, 3), (2, 120)]
    """
    if features.ndim < 3:  # tabular rows are already flat
        return features
    if layout == "image":
        return np.moveaxis(features, -1, 1)
    if layout == "sequence" and features.ndim == 3:  # signals are already L steps of C
        return features
    if layout == "sequence":
        return features.reshape(*features.shape[:2], -1)
    return features.reshape(len(features), -1)


class AugmentedDataset(Dataset):
    """Applies an albumentations pipeline to each image (a signal ``[L, C]`` as an image of
    height 1), then reshapes it to ``layout``.

    Example:
        >>> ds = AugmentedDataset(np.zeros((4, 8, 8, 1), np.float32), np.zeros(4), "flat", None)
        >>> ds[0][0].shape
        torch.Size([64])
    """

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, layout: Layout, augment: Any | None
    ) -> None:
        self.images = images
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.layout = layout
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.images[index]
        if self.augment is not None:
            image = sample if sample.ndim == 3 else sample[None]
            sample = self.augment(image=image)["image"].reshape(sample.shape)
        batch = to_layout(np.ascontiguousarray(sample, dtype=np.float32)[None], self.layout)
        return torch.from_numpy(np.ascontiguousarray(batch[0])), self.labels[index]


def _seed_augmentation(worker_id: int) -> None:
    info = get_worker_info()
    if info is not None and getattr(info.dataset, "augment", None) is not None:
        info.dataset.augment.set_random_seed(info.seed % 2**32)


class SampleDataModule(pl.LightningDataModule):
    """Built-in or user data, split stratified and seeded, batched for one model layout.

    Args:
        dataset: ``digits``, ``breast_cancer``, ``wine``, ``mnist1d``, ``image_folder``, ``csv``
            or ``signals``.
        path: the image folder, CSV file or ``.npz`` of signals, for user data.
        layout: ``flat``, ``image`` or ``sequence`` (what the model takes).
        augment: an augmentation preset name or explicit list (training split only).
        train_fraction: stratified share of the training split to keep.

    Example:
        >>> SampleDataModule("wine", layout="flat").input_shape
        (13,)
    """

    def __init__(
        self,
        dataset: str = "digits",
        path: str | Path | None = None,
        *,
        layout: Layout = "flat",
        label_column: str = "label",
        resize: int = 32,
        color_channels: int = 3,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        train_fraction: float = 1.0,
        batch_size: int = 64,
        num_workers: int = 0,
        augment: AugmentSpec = None,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self._samples: Samples | None = None
        self._split: Split | None = None
        self._datasets: dict[str, Dataset] = {}

    @property
    def samples(self) -> Samples:
        """All samples, loaded on first use.

        Example:
            >>> SampleDataModule("wine").samples.features.shape
            (178, 13)
        """
        if self._samples is None:
            hp = self.hparams
            self._samples = load_samples(
                hp.dataset,
                Path(hp.path) if hp.path else None,
                label_column=hp.label_column,
                image_size=hp.resize,
                channels=hp.color_channels,
            )
        return self._samples

    @property
    def split(self) -> Split:
        """The train/val/test index split; a data set's own test split is kept (``test_index``).

        Example:
            >>> split = SampleDataModule("wine", val_fraction=0.15, test_fraction=0.15).split
            >>> len(split.train), len(split.val), len(split.test)
            (124, 27, 27)
        """
        if self._split is None:
            hp = self.hparams
            self._split = stratified_split(
                self.samples.labels,
                hp.val_fraction,
                hp.test_fraction,
                hp.seed,
                hp.train_fraction,
                test_index=self.samples.test_index,
            )
        return self._split

    @property
    def num_classes(self) -> int:
        """Number of classes.

        Example:
            >>> SampleDataModule("breast_cancer").num_classes
            2
        """
        return self.samples.num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample in the model's layout.

        Example:
            >>> SampleDataModule("digits", layout="sequence").input_shape
            (8, 8)
        """
        return tuple(to_layout(self.samples.features[:1], self.hparams.layout).shape[1:])

    def setup(self, stage: str | None = None) -> None:
        """Build the three datasets once (idempotent).

        Example:
            >>> dm = SampleDataModule("wine")
            >>> dm.setup("fit")
            >>> len(dm.val_dataloader().dataset)
            27
        """
        if self._datasets:
            return
        features, labels, kind = self.samples.features, self.samples.labels, self.samples.kind
        if kind != "image":  # standardize features / channels with training statistics only
            axes = tuple(range(features.ndim - 1))
            mean = features[self.split.train].mean(axis=axes)
            std = features[self.split.train].std(axis=axes) + 1e-8
            features = ((features - mean) / std).astype(np.float32)
        layout = self.hparams.layout
        for name in ("val", "test"):
            index = getattr(self.split, name)
            self._datasets[name] = TensorDataset(
                torch.from_numpy(np.ascontiguousarray(to_layout(features[index], layout))),
                torch.as_tensor(labels[index]),
            )
        train = self.split.train
        augment = None
        if kind != "tabular":
            length = features.shape[1] if kind == "signal" else None
            augment = build_augmentation(self.hparams.augment, signal_length=length)
        self._datasets["train"] = AugmentedDataset(features[train], labels[train], layout, augment)
        self._datasets["train_eval"] = AugmentedDataset(
            features[train], labels[train], layout, None
        )

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        hp = self.hparams
        rank = self.trainer.global_rank if self.trainer is not None else 0
        dataset = self._datasets[name]
        augment = getattr(dataset, "augment", None)
        if augment is not None and hp.num_workers == 0:
            augment.set_random_seed((hp.seed + 7919 * rank) % 2**32)
        on_gpu = self.trainer is not None and self.trainer.accelerator.__class__.__name__ in (
            "CUDAAccelerator",
        )
        return DataLoader(
            dataset,
            batch_size=hp.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(dataset) > hp.batch_size,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            pin_memory=on_gpu,
            worker_init_fn=_seed_augmentation if hp.num_workers > 0 else None,
            generator=torch.Generator().manual_seed(hp.seed + 7919 * rank),
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, augmented training batches.

        Example:
            >>> dm = SampleDataModule("wine", batch_size=16)
            >>> dm.setup("fit")
            >>> features, labels = next(iter(dm.train_dataloader()))
            >>> features.shape, labels.shape
            (torch.Size([16, 13]), torch.Size([16]))
        """
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches, never augmented.

        Example:
            >>> dm = SampleDataModule("wine", batch_size=16)
            >>> dm.setup("fit")
            >>> [len(y) for _, y in dm.val_dataloader()]
            [16, 11]
        """
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches, never augmented.

        Example:
            >>> dm = SampleDataModule("wine")
            >>> dm.setup("test")
            >>> len(dm.test_dataloader().dataset)
            27
        """
        return self._loader("test", shuffle=False)

    def train_eval_dataloader(self) -> DataLoader:
        """The training split without augmentation, for measuring the train-val gap.

        Example:
            >>> dm = SampleDataModule("wine")
            >>> dm.setup("fit")
            >>> len(dm.train_eval_dataloader().dataset) == len(dm.split.train)
            True
        """
        return self._loader("train_eval", shuffle=False)
