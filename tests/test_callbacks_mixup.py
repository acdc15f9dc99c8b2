"""MixUp, CutMix, MixUpCutMix: soft targets, lambda, batch formats, errors, per-rank streams."""

from __future__ import annotations

from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from ddp_helpers import QUIET, TinyClassifier, loader
from lightning.pytorch.callbacks import ModelCheckpoint

from lightreg.callbacks import CutMix, MixUp, MixUpCutMix, soft_targets

torch.set_num_threads(1)
MODULE = SimpleNamespace(num_classes=4, hparams={})
CALLBACKS = [
    lambda: MixUp(alpha=0.4),
    lambda: CutMix(alpha=1.0),
    lambda: MixUpCutMix(0.4, 1.0, switch_prob=0.5),
]


def _seeded(callback, rank=0):
    callback.setup(SimpleNamespace(global_rank=rank, strategy=None), MODULE, "fit")
    return callback


def _batch():
    """Four images; image i is constant i and has class i, so each pixel tells its source."""
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 8, 8).clone()
    return [x, torch.arange(4)]


@pytest.mark.parametrize("make", CALLBACKS)
def test_soft_targets_sum_to_one_and_match_the_mixed_pixels(make):
    callback = _seeded(make())
    for _ in range(20):
        batch = _batch()
        callback.on_train_batch_start(None, MODULE, batch, 0)
        x, y = batch
        assert y.shape == (4, 4) and y.dtype == torch.float32
        assert torch.allclose(y.sum(dim=1), torch.ones(4))
        assert ((y >= 0) & (y <= 1)).all()
        # the mean pixel is the label-weighted mean of the source images: for CutMix this holds
        # only if lambda is the actual (clipped) box area
        assert torch.allclose(x.mean(dim=(1, 2, 3)), y @ torch.arange(4.0), atol=1e-6)


def test_lambda_follows_the_beta_distribution():
    callback = _seeded(MixUp(alpha=0.5))
    lams = torch.tensor([callback._beta(0.5) for _ in range(2000)])
    assert ((lams >= 0) & (lams <= 1)).all()
    assert abs(lams.mean().item() - 0.5) < 0.03  # Beta(a, a) has mean 1/2, sd 0.35/sqrt(2000)
    assert (lams < 0.1).float().mean() > 0.1  # U-shaped for alpha < 1


def test_label_smoothing_before_mixing():
    callback = _seeded(MixUp(alpha=0.4, label_smoothing=0.2))
    batch = _batch()
    callback.on_train_batch_start(None, MODULE, batch, 0)
    assert batch[1].min() >= 0.2 / 4 - 1e-7
    assert torch.allclose(batch[1].sum(dim=1), torch.ones(4))
    expected = torch.tensor([[0.85, 0.05, 0.05, 0.05]])
    assert torch.allclose(soft_targets(torch.tensor([0]), 4, 0.2), expected)


@pytest.mark.parametrize(("x_key", "y_key"), [("x", "y"), ("image", "label"), ("input", "target")])
def test_dict_batches_are_updated_in_place(x_key, y_key):
    callback = _seeded(CutMix())
    x, y = _batch()
    batch = {x_key: x, y_key: y, "id": "kept"}
    callback.on_train_batch_start(None, MODULE, batch, 0)
    assert batch[y_key].shape == (4, 4) and batch["id"] == "kept"
    assert torch.equal(x, _batch()[0])  # the original tensor is not modified


@pytest.mark.parametrize(
    ("batch", "make", "error", "match"),
    [
        (tuple(_batch()), MixUp, TypeError, r"return a list \[x, y\] from your Dataset/collate"),
        ({"pixels": 0, "y": 0}, MixUp, TypeError, r"input key .* got keys \['pixels', 'y'\]"),
        ([torch.randn(4, 5), torch.arange(4)], CutMix, ValueError, r"\[B, C, H, W\], got shape"),
        ([torch.randn(4, 5), torch.arange(4)], MixUpCutMix, ValueError, r"\[B, C, H, W\]"),
        ([torch.zeros(4, 3, dtype=torch.uint8), torch.arange(4)], MixUp, TypeError, "floating"),
        ([torch.randn(4, 3), torch.zeros(4, 2)], MixUp, ValueError, r"probabilities \[B, 4\]"),
    ],
)
def test_bad_batches_raise(batch, make, error, match):
    with pytest.raises(error, match=match):
        _seeded(make()).on_train_batch_start(None, MODULE, batch, 0)


@pytest.mark.parametrize(
    ("callback", "module", "classes"),
    [
        (MixUp(), SimpleNamespace(hparams={"num_classes": 5}), 5),
        (MixUp(), SimpleNamespace(num_classes=6, hparams={}), 6),
        (MixUp(num_classes=7), MODULE, 7),  # the argument wins over the module's 4
    ],
)
def test_number_of_classes_is_inferred(callback, module, classes):
    batch = [torch.randn(4, 3), torch.tensor([0, 1, 2, 1])]
    _seeded(callback).on_train_batch_start(None, module, batch, 0)
    assert batch[1].shape == (4, classes)
    _seeded(MixUp()).on_train_batch_start(None, SimpleNamespace(hparams={}), batch, 0)
    assert batch[1].shape == (4, classes)  # soft targets give K themselves


def test_unknown_number_of_classes_raises():
    batch = [torch.randn(4, 3), torch.tensor([0, 1, 2, 1])]
    with pytest.raises(ValueError, match=r"pass `MixUp\(num_classes=K\)`"):
        _seeded(MixUp()).on_train_batch_start(None, SimpleNamespace(hparams={}), batch, 0)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MixUp(alpha=0.0), r"`alpha` must be a finite number > 0, got 0.0"),
        (lambda: CutMix(alpha=-1.0), r"`alpha` must be a finite number > 0"),
        (lambda: MixUpCutMix(cutmix_alpha=0.0), r"`cutmix_alpha` must be"),
        (lambda: MixUpCutMix(switch_prob=1.5), r"`switch_prob` must be in \[0, 1\], got 1.5"),
        (lambda: MixUp(label_smoothing=1.0), r"`label_smoothing` must be in \[0, 1\)"),
        (lambda: CutMix(num_classes=1), r"`num_classes` must be >= 2, got 1"),
    ],
)
def test_invalid_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def _draws(callback, n=5):
    out = []
    for _ in range(n):
        batch = _batch()
        callback.on_train_batch_start(None, MODULE, batch, 0)
        out.append(batch[1])
    return torch.stack(out)


@pytest.mark.parametrize("make", CALLBACKS)
def test_streams_are_reproducible_per_rank_and_differ_across_ranks(make, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    rank0 = _draws(_seeded(make(), rank=0))
    assert torch.equal(rank0, _draws(_seeded(make(), rank=0)))
    assert not torch.equal(rank0, _draws(_seeded(make(), rank=1)))
    monkeypatch.setenv("PL_GLOBAL_SEED", "4")
    assert not torch.equal(rank0, _draws(_seeded(make(), rank=0)))


def test_generator_state_round_trips_through_state_dict():
    first = _seeded(MixUpCutMix())
    _draws(first, 3)
    state = first.state_dict()
    restored = MixUpCutMix()
    restored.load_state_dict(state)  # before setup: applied when the generator is made
    _seeded(restored)
    assert torch.equal(_draws(first), _draws(restored))


class _TwoRankStrategy:
    """Stands in for a 2-process strategy: all_gather stacks both ranks' states."""

    world_size = 2
    root_device = torch.device("cpu")

    def __init__(self, callbacks) -> None:
        self.callbacks = callbacks

    def all_gather(self, tensor):
        return torch.stack([c.generator.get_state().to(torch.int64) for c in self.callbacks])


def test_every_ranks_stream_survives_a_checkpoint_written_by_rank_zero():
    ranks = [_seeded(MixUp(), rank=r) for r in (0, 1)]
    strategy = _TwoRankStrategy(ranks)
    for rank, callback in enumerate(ranks):
        callback._strategy, callback._rank = strategy, rank
        _draws(callback, 2 + rank)
    saved = ranks[0].state_dict()  # what rank zero writes
    assert len(saved["generators"]) == 2
    for rank, callback in enumerate(ranks):
        resumed = _seeded(MixUp(), rank=rank)
        resumed._rank = rank
        resumed.load_state_dict(saved)
        assert torch.equal(_draws(resumed), _draws(callback))


class _Recorder(TinyClassifier):
    def __init__(self) -> None:
        super().__init__(in_features=16, num_classes=3)
        self.seen: dict[str, set] = {"train": set(), "val": set()}

    def training_step(self, batch, batch_idx):
        self.seen["train"].add((batch[1].dtype, tuple(batch[1].shape)))
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.seen["val"].add((batch[1].dtype, tuple(batch[1].shape)))
        return super().validation_step(batch, batch_idx)


@pytest.mark.parametrize("make", CALLBACKS)
def test_unmodified_module_trains_on_mixed_batches_only(make, tmp_path):
    model = _Recorder()
    callback = make()
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    kwargs = {**QUIET, "enable_checkpointing": True}
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback, checkpoint], **kwargs)
    images = {"shape": (1, 4, 4), "batch_size": 4}
    trainer.fit(model, loader(16, **images), loader(8, **images))
    assert model.seen == {
        "train": {(torch.float32, (4, 3))},
        "val": {(torch.int64, (4,))},
    }
    # checkpoint round trip: the resumed callback continues the same random stream
    resumed = make()
    pl.Trainer(max_epochs=1, callbacks=[resumed], **QUIET).fit(
        _Recorder(), loader(16, **images), ckpt_path=tmp_path / "last.ckpt"
    )
    assert torch.equal(resumed.generator.get_state(), callback.generator.get_state())
