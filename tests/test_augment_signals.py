"""Signal augmentation: time shift, stretch and masking, amplitude scaling, noise; training only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightreg.data.augment import build_augmentation, signal_preset_steps
from lightreg.data.datamodule import SampleDataModule
from lightreg.recipe.load import RecipeError, resolve_recipe

RAMP = np.linspace(-2, 2, 40, dtype=np.float32)[None, :, None]


@pytest.fixture
def signals_file(tmp_path):
    rng = np.random.default_rng(0)
    file = tmp_path / "signals.npz"
    x = rng.normal(size=(120, 2, 40)) * 3 + 1
    np.savez(file, x=x, y=np.arange(120) % 3, x_test=x[:30] - 1, y_test=np.arange(30) % 3)
    return file


def _apply(spec, times=50, seed=0, image=RAMP):
    pipeline = build_augmentation(spec, signal_length=image.shape[1])
    pipeline.set_random_seed(seed)
    return [pipeline(image=image)["image"] for _ in range(times)]


@pytest.mark.parametrize("preset", ["light", "moderate", "heavy"])
def test_each_named_preset_builds_for_signals_and_keeps_values_unclipped(preset):
    outputs = _apply(preset)
    assert all(out.shape == RAMP.shape and out.dtype == np.float32 for out in outputs)
    assert min(out.min() for out in outputs) < -1.5 and max(out.max() for out in outputs) > 1.5
    assert sum(not np.array_equal(out, RAMP) for out in outputs) > 25
    names = [next(iter(step)) for step in signal_preset_steps(preset, 40)]
    assert {"TimeShift", "SignalScale", "SignalNoise"} <= set(names)
    assert ("TimeStretch" in names) == ("XYMasking" in names) == (preset != "light")


@pytest.mark.parametrize("transform", ["TimeShift", "Affine"])
def test_time_shift_and_stretch_match_albumentations_affine(transform):
    shift = {"TimeShift": {"shift_range": [0.1, 0.1]}, "Affine": {"translate_px": {"x": 4, "y": 0}}}
    stretch = {"TimeStretch": {"scale_range": [2, 2]}, "Affine": {"scale": {"x": 2, "y": 1}}}
    two_channels = np.concatenate([RAMP, -RAMP], axis=-1)
    for steps, expected in (
        (shift, np.pad(two_channels[:, :-4], ((0, 0), (4, 0), (0, 0)))),
        (stretch, np.concatenate([RAMP / 2, -RAMP / 2], axis=-1)),  # about the centre
    ):
        name = transform if transform in steps else "TimeStretch"
        step = [{name: {**steps[name], "p": 1}}]
        out = _apply(step, times=1, image=two_channels)[0]
        assert np.allclose(out[:, 1:-1], expected[:, 1:-1], atol=0.06), (name, out)


def test_signal_transforms_do_what_they_say():
    scaled = _apply([{"SignalScale": {"scale_range": [0.5, 0.5], "p": 1}}], times=1)[0]
    assert np.allclose(scaled, RAMP * 0.5)
    noisy = _apply([{"SignalNoise": {"std_range": [0.2, 0.2], "p": 1}}], image=RAMP.repeat(50, 1))
    assert abs(float(np.std(np.stack(noisy) - RAMP.repeat(50, 1))) - 0.2) < 0.01
    masks = [{"XYMasking": {"num_masks_x": 1, "mask_x_length": [5, 5], "num_masks_y": 0, "p": 1}}]
    masked = _apply(masks, times=1, image=RAMP + 5)[0]
    assert (masked == 0).sum() == 5 and np.ptp(np.flatnonzero(masked == 0)) == 4


def test_augmentation_changes_only_the_training_split(signals_file):
    def loaders(seed):
        dm = SampleDataModule(
            "signals", signals_file, layout="image", augment="heavy", batch_size=16, seed=seed
        )
        dm.setup("fit")
        return dm

    def epoch(loader):
        return torch.cat([x for x, _ in loader])

    for seed in (0, 1):  # the seed also draws the split: compare with the unaugmented signals
        dm = loaders(seed)
        features = dm.samples.features
        train = features[dm.split.train]
        standard = (features - train.mean((0, 1))) / (train.std((0, 1)) + 1e-8)
        for name in ("val", "test", "train_eval"):
            loader = getattr(dm, f"{name}_dataloader")
            once, twice = epoch(loader()), epoch(loader())
            index = getattr(dm.split, "train" if name == "train_eval" else name)
            assert torch.equal(once, twice)
            assert np.allclose(once.numpy(), np.moveaxis(standard[index], -1, 1), atol=1e-5)
    first = dm
    train = first._datasets["train"]
    draws = {tuple(train[0][0].flatten().tolist()) for _ in range(10)}
    assert len(draws) > 5
    loader = first.train_dataloader()
    one, two = epoch(loader), epoch(loader)  # two epochs: other draws
    assert one.shape == two.shape and not torch.equal(one.sort(0).values, two.sort(0).values)


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        ([{"GaussNoise": {"p": 0.5}}], "GaussNoise: clips the signal to [0, 1]"),
        ([{"SignalNoize": {}}], "unknown transform 'SignalNoize'; did you mean 'SignalNoise'?"),
        ([{"SignalScale": {"scale_range": [2, 1]}}], "`scale_range` must be [min, max]"),
        (
            [{"RandomCrop": {"height": 1, "width": 20}}],
            "turns an 1x40x1 image into 1x20x1; the model takes one size",
        ),
    ],
)
def test_bad_explicit_signal_list_is_one_line(augment, message):
    raw = {"name": "x", "data": {"dataset": "mnist1d"}, "regularization": {"augment": augment}}
    with pytest.raises(RecipeError) as caught:
        resolve_recipe(raw)
    (line,) = caught.value.problems
    assert line.startswith("regularization.augment[0]") and message in line and "\n" not in line


def test_presets_fill_signal_augmentation_and_validate(signals_file):
    for dataset, path in (("mnist1d", None), ("signals", str(signals_file))):
        raw = {"name": "x", "data": {"dataset": dataset, "path": path}}
        raw["regularization"] = {"preset": "moderate"}
        recipe = resolve_recipe(raw)
        assert recipe.regularization.augment == "moderate" and recipe.data.kind == "signal"
    assert recipe.data.image_shape == (1, 40, 2)
    ok = [
        {"SignalScale": {"scale_range": [0.9, 1.1]}},
        {"XYMasking": {"num_masks_x": 1, "mask_x_length": 4}},
    ]
    raw["regularization"] = {"augment": ok}
    assert resolve_recipe(raw).regularization.augment == ok
