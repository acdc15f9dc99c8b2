"""``lightreg.weights``: spectra against WeightWatcher and hand-computed values, and loading.

WeightWatcher (``weightwatcher``, a test-only dependency) is the reference for alpha: on the same
layers (random and lightly trained, Linear and Conv2d) alpha, the KS distance D and the tail agree
to ``ALPHA_TOL`` (both fit the same float64 eigenvalues with the same method); ``xmin`` agrees
too, once WeightWatcher's ``conv2d_norm`` factor (eigenvalues halved) is undone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from lightreg.weights.load import WeightsError, diagnose_weights, find_checkpoint, load_weights
from lightreg.weights.spectrum import (
    MIN_EIGENVALUES,
    LayerSpectrum,
    PowerLawFit,
    analyze_layer,
    analyze_state_dict,
    fit_power_law,
    reading_of,
    summarize,
)

ALPHA_TOL = 1e-6
"""Largest |alpha - WeightWatcher's alpha| accepted (relative to alpha, and absolute on D)."""


def small_cnn(seed: int) -> nn.Sequential:
    """Conv2d and Linear layers big enough to be judged (>= 20 eigenvalues), and a small head."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 96),
        nn.ReLU(),
        nn.Linear(96, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def lightly_trained(seed: int, steps: int = 100) -> nn.Sequential:
    """``small_cnn`` after a few Adam steps on a fixed random classification task."""
    model = small_cnn(seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 3, 8, 8, generator=generator)
    y = torch.randint(0, 10, (128,), generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


@pytest.fixture(scope="module")
def weightwatcher():
    return pytest.importorskip("weightwatcher")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny matrices: one thread (torch and BLAS) is 10-25x faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("trained", [False, True], ids=["random", "lightly_trained"])
def test_alpha_matches_weightwatcher_on_linear_and_conv2d(
    weightwatcher, one_thread: None, trained: bool
) -> None:
    model = lightly_trained(1) if trained else small_cnn(0)
    details = weightwatcher.WeightWatcher(model=model).analyze()
    theirs = {f"{row['longname']}": row for _, row in details.iterrows()}
    report = analyze_state_dict(model.state_dict())
    judged = [layer for layer in report.layers if layer.fit is not None]
    assert [layer.name for layer in judged] == ["0", "2", "5", "7"]  # 2 Conv2d, 2 Linear
    for layer in judged:
        row = theirs[layer.name]
        assert layer.alpha == pytest.approx(row["alpha"], rel=ALPHA_TOL), layer.name
        assert layer.fit.ks_distance == pytest.approx(row["D"], abs=ALPHA_TOL), layer.name
        assert layer.fit.tail == row["num_pl_spikes"], layer.name
        conv2d_norm = 0.5 if layer.kind == "conv" else 1.0  # WeightWatcher's conv2d_norm
        assert layer.fit.xmin * conv2d_norm == pytest.approx(row["xmin"], rel=1e-6), layer.name
        assert layer.eigenvalues == row["num_evals"]
        assert layer.stable_rank == pytest.approx(row["stable_rank"], rel=1e-6)
    # the 10-output head has 10 eigenvalues: WeightWatcher switches estimator, we do not judge
    assert report.layers[-1].reading == "too_small" and report.layers[-1].alpha is None


def test_fit_matches_weightwatcher_on_heavy_tailed_samples(weightwatcher) -> None:
    from weightwatcher.WW_powerlaw import WWFit

    rng = np.random.default_rng(0)
    for size, shape in [(40, 1.5), (300, 2.5), (2000, 4.0)]:
        sample = rng.pareto(shape, size) + 1.0
        ours, theirs = fit_power_law(sample), WWFit(sample)
        assert ours.alpha == pytest.approx(theirs.alpha, rel=ALPHA_TOL)
        assert (ours.xmin, ours.tail) == (theirs.xmin, len(theirs.data))
        assert ours.ks_distance == pytest.approx(theirs.D, abs=ALPHA_TOL)


def test_fit_by_hand() -> None:
    # xmin = 1 wins; MLE alpha = 1 + n / sum(ln(x / xmin)) = 1 + 4 / (6 ln 2)
    fit = fit_power_law([8.0, 1.0, 4.0, 2.0])
    assert (fit.xmin, fit.tail) == (1.0, 4)
    assert fit.alpha == pytest.approx(1 + 4 / (6 * math.log(2)))
    # D = max |(1 - (x/xmin)^(1-alpha)) - i/n| over the tail, by hand
    cdf = [1 - x ** (1 - fit.alpha) for x in (1, 2, 4, 8)]
    assert fit.ks_distance == pytest.approx(max(abs(c - i / 4) for i, c in enumerate(cdf)))
    assert fit_power_law([2.0] * 30) is None  # no tail: all equal


def test_spectral_norm_stable_rank_and_shape_by_hand() -> None:
    linear = analyze_layer("fc", torch.tensor([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]))
    assert (linear.kind, linear.shape, linear.matrices, linear.eigenvalues) == (
        "linear",
        (2, 3),
        1,
        2,
    )
    assert linear.spectral_norm == pytest.approx(4.0)
    assert linear.stable_rank == pytest.approx((9 + 16) / 16)
    # a (2 out, 1 in, 1x2) kernel: one 2x1 matrix per kernel position, sigma 1 and 2
    kernel = torch.zeros(2, 1, 1, 2)
    kernel[0, 0, 0, 0], kernel[1, 0, 0, 1] = 1.0, 2.0
    conv = analyze_layer("conv", kernel)
    assert (conv.kind, conv.shape, conv.matrices, conv.eigenvalues) == ("conv", (2, 1, 1, 2), 2, 2)
    assert conv.spectral_norm == pytest.approx(2.0)
    assert conv.stable_rank == pytest.approx((1 + 4) / 4)
    assert conv.reading == "too_small"


@pytest.mark.parametrize(
    ("alpha", "reading"),
    [
        (1.5, "over_trained"),
        (2.0, "typical"),
        (4.0, "typical"),
        (6.0, "typical"),
        (6.5, "under_trained"),
    ],
)
def test_readings_follow_weightwatcher_thresholds(alpha: float, reading: str) -> None:
    assert reading_of(PowerLawFit(alpha, 1.0, 0.05, 30), 64)[0] == reading


def test_too_small_no_fit_and_non_finite_layers() -> None:
    assert reading_of(None, MIN_EIGENVALUES - 1)[0] == "too_small"
    assert analyze_layer("ortho", torch.eye(32)).reading == "no_fit"
    broken = torch.randn(32, 32)
    broken[0, 0] = float("nan")
    layer = analyze_layer("broken", broken)
    assert (layer.reading, layer.spectral_norm, layer.alpha) == ("non_finite", None, None)
    summary = analyze_state_dict({"a.weight": broken, "b.weight": torch.eye(32)}).summary
    assert summary.verdict == "non_finite" and "a" in summary.line


def test_summary_counts_and_verdict() -> None:
    def layer(name: str, alpha: float) -> LayerSpectrum:
        fit = PowerLawFit(alpha, 1.0, 0.05, 30)
        reading, note = reading_of(fit, 64)
        return LayerSpectrum(name, "linear", (64, 64), 1, 64, 2.0, 10.0, fit, reading, note)

    typical = summarize([layer("a", 3.0), layer("b", 5.0)])
    assert (typical.verdict, typical.judged, typical.mean_alpha) == ("typical", 2, 4.0)
    assert typical.mean_alpha_weighted == pytest.approx(4.0 * math.log10(4.0))
    mixed = summarize([layer("a", 1.5), layer("b", 7.0), layer("c", 3.0)])
    assert mixed.verdict == "mixed"
    assert (
        mixed.counts["over_trained"]
        == mixed.counts["under_trained"]
        == mixed.counts["typical"]
        == 1
    )
    over = summarize([layer("fc1", 1.5), layer("fc2", 3.0)])
    assert over.verdict == "over_trained" and "fc1 1.50" in over.line


def test_layers_are_the_weights_of_two_or_more_dimensions() -> None:
    model = nn.Sequential(
        nn.Linear(4, 8), nn.BatchNorm1d(8), nn.LSTM(8, 8), nn.MultiheadAttention(8, 2)
    )
    names = [layer.name for layer in analyze_state_dict(model.state_dict()).layers]
    assert names == ["0", "2.weight_ih_l0", "2.weight_hh_l0", "3.in_proj_weight", "3.out_proj"]


# --- loading -------------------------------------------------------------------------------


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))

    def training_step(self, batch, _):
        return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch, _):
        # val_loss falls then rises: the best checkpoint is not the newest
        self.log("val_loss", float((self.current_epoch - 1) ** 2))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.fixture(scope="module")
def lightning_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Lightning run: ``checkpoints/`` with the 2 best epochs and ``last.ckpt``."""
    root = tmp_path_factory.mktemp("lightning")
    data = torch.utils.data.TensorDataset(torch.randn(32, 16), torch.randint(0, 2, (32,)))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    checkpoint = pl.callbacks.ModelCheckpoint(
        dirpath=root / "checkpoints", monitor="val_loss", save_top_k=2, save_last=True
    )
    trainer = pl.Trainer(
        max_epochs=4,
        default_root_dir=root,
        callbacks=[checkpoint],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(_Tiny(), loader, loader)
    return root


def test_lightning_folder_picks_the_recorded_best(lightning_run: Path) -> None:
    names = sorted(path.name for path in (lightning_run / "checkpoints").iterdir())
    assert len(names) == 3 and "last.ckpt" in names
    path, why = find_checkpoint(lightning_run)
    assert path.name.startswith("epoch=1-") and "ModelCheckpoint" in why
    found = diagnose_weights(lightning_run)
    assert (found.loaded.source, found.loaded.epoch) == ("lightning", 1)
    assert [layer.name for layer in found.report.layers] == ["net.0", "net.2"]


def test_lightreg_run_folder_picks_best_ckpt(tmp_path: Path) -> None:
    for name in ("best.ckpt", "last.ckpt"):
        torch.save({"state_dict": nn.Linear(40, 30).state_dict(), "epoch": 7}, tmp_path / name)
    found = diagnose_weights(tmp_path)
    assert (found.checkpoint.name, found.loaded.epoch) == ("best.ckpt", 7)


def test_plain_and_nested_state_dicts(tmp_path: Path) -> None:
    torch.save(nn.Linear(40, 30).state_dict(), tmp_path / "plain.pth")
    torch.save({"epoch": 2, "model_state_dict": nn.Linear(40, 30).state_dict()}, tmp_path / "n.pt")
    assert load_weights(tmp_path / "plain.pth").source == "state_dict"
    nested = load_weights(tmp_path / "n.pt")
    assert (nested.source, nested.epoch) == ("state_dict['model_state_dict']", 2)


def _write(path: Path, content: object) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("module.pt", nn.Linear(2, 2), "refused: it holds torch.nn.modules.linear.Linear"),
        (
            "ns.ckpt",
            {"hparams": __import__("argparse").Namespace(a=1)},
            "refused: it holds argparse.Namespace",
        ),
        ("empty.ckpt", b"", "empty or truncated file"),
        ("text.pt", b"hello, not a checkpoint", "not a PyTorch checkpoint"),
        ("zip.pt", b"PK\x03\x04broken", "not a readable PyTorch checkpoint"),
        ("tensor.pt", torch.zeros(3), "holds a Tensor, not a state dict"),
        ("norms.pt", nn.BatchNorm1d(4).state_dict(), "no Linear/Conv weight in it"),
        ("opt.pt", {"lr": 0.1, "betas": [0.9]}, "no tensors in it, nor one level down"),
    ],
)
def test_bad_files_are_one_line_errors(
    tmp_path: Path, name: str, content: object, message: str
) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(WeightsError, match="^" + str(path)) as caught:
        diagnose_weights(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_folders_without_a_clear_checkpoint_are_refused(tmp_path: Path) -> None:
    (tmp_path / "run" / "sub").mkdir(parents=True)
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "run" / "sub" / "m.pt")
    with pytest.raises(WeightsError, match=r"no checkpoint .* below it: sub/m\.pt"):
        find_checkpoint(tmp_path / "run")
    for name in ("a.pt", "b.pt"):
        torch.save(nn.Linear(2, 2).state_dict(), tmp_path / name)
    with pytest.raises(WeightsError, match=r"2 checkpoints and none recorded as the best"):
        find_checkpoint(tmp_path)
    with pytest.raises(WeightsError, match="no such file or folder"):
        load_weights(tmp_path / "missing.ckpt")
