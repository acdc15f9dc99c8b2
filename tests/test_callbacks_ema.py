"""EMA: parity with AveragedModel, swap in/out, checkpoints, resume, EarlyStopping, 2-process DDP.

Run as a script (``python tests/test_callbacks_ema.py OUTDIR``) it is the DDP run: 2 CPU
processes (gloo) train a BatchNorm classifier with EMA and save each rank's average.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from ddp_helpers import QUIET, ScriptedValLoss, TinyClassifier, loader
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lightreg.callbacks import EMA, EarlyStopping

torch.set_num_threads(1)


class BatchNormClassifier(TinyClassifier):
    """TinyClassifier with BatchNorm (buffers to average) and momentum SGD (optimizer state)."""

    def __init__(self) -> None:
        super().__init__()
        self.net[2] = nn.BatchNorm1d(8)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.tested = _state(self)


class Recorder(Callback):
    """Copies of the module's weights at the moments the tests look at."""

    def __init__(self, ema: EMA | None = None) -> None:
        self.ema = ema
        self.after_step: list[dict[str, torch.Tensor]] = []  # live, after each optimizer step
        self.average_after_step: list[dict[str, torch.Tensor]] = []
        self.at_validation: list[dict[str, torch.Tensor]] = []
        self.at_train_batch_start: list[dict[str, torch.Tensor]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.at_train_batch_start.append(_state(pl_module))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after_step.append(_state(pl_module))
        if self.ema is not None:
            self.average_after_step.append(_state_of(self.ema.average_state_dict()))

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.at_validation.append(_state(pl_module))


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return _state_of(module.state_dict())


def _state_of(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


def _assert_equal(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


def _differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def _fit(model, callbacks, max_epochs=2, ckpt_path=None, **kwargs):
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=callbacks, **{**QUIET, **kwargs})
    trainer.fit(model, loader(32), loader(16), ckpt_path=ckpt_path)
    return trainer


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"decay": 1.0}, r"`decay` must be between 0 and 1 \(exclusive\), got 1.0"),
        ({"decay": 0.0}, r"`decay` must be between 0 and 1 \(exclusive\), got 0.0"),
        ({"decay": 0.9, "every_n_steps": 0}, r"`every_n_steps` must be >= 1, got 0"),
        ({"decay": 0.9, "start_step": -1}, r"`start_step` must be >= 0, got -1"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EMA(**kwargs)


@pytest.mark.parametrize(("every_n_steps", "start_step"), [(1, 0), (3, 2)])
def test_average_equals_a_hand_averaged_model_over_the_same_weights(every_n_steps, start_step):
    torch.manual_seed(0)
    model = BatchNormClassifier()
    reference_module = copy.deepcopy(model)
    ema, recorder = EMA(0.8, every_n_steps=every_n_steps, start_step=start_step), Recorder()
    _fit(model, [ema, recorder], max_epochs=3)

    reference = AveragedModel(
        reference_module, multi_avg_fn=get_ema_multi_avg_fn(0.8), use_buffers=True
    )
    for step, live in enumerate(recorder.after_step, start=1):
        if step >= start_step and (step - start_step) % every_n_steps == 0:
            reference_module.load_state_dict(live)
            reference.update_parameters(reference_module)
    assert int(ema.average.n_averaged) == int(reference.n_averaged) > 1
    _assert_equal(ema.average_state_dict(), reference.module.state_dict())


def test_validation_sees_the_average_and_training_the_live_weights():
    torch.manual_seed(0)
    model, ema, recorder = BatchNormClassifier(), EMA(0.5), Recorder()
    trainer = _fit(model, [ema, recorder], max_epochs=3)  # 4 steps per epoch

    steps_per_epoch = len(recorder.after_step) // 3
    for epoch, validated in enumerate(recorder.at_validation[:-1]):
        live = recorder.after_step[(epoch + 1) * steps_per_epoch - 1]  # before validation
        assert _differs(validated, live)
        # the next training batch starts from the live weights, not from the average
        _assert_equal(recorder.at_train_batch_start[(epoch + 1) * steps_per_epoch], live)
    # each step moves on from the previous live weights: the optimizer never saw the average
    assert not any(
        torch.equal(after["net.1.weight"], ema.average_state_dict()["net.1.weight"])
        for after in recorder.after_step[1:]
    )
    # after fit the module holds the average, and test scores it
    _assert_equal(_state(model), ema.average_state_dict())
    trainer.test(model, loader(16), verbose=False)
    _assert_equal(model.tested, ema.average_state_dict())


def test_checkpoints_hold_the_average_and_the_live_weights(tmp_path):
    torch.manual_seed(0)
    model, ema = BatchNormClassifier(), EMA(0.5)
    recorder = Recorder(ema)
    steps = ModelCheckpoint(tmp_path, filename="{step}", every_n_train_steps=3, save_top_k=-1)
    _fit(
        model, [ema, recorder, steps], max_epochs=2, enable_checkpointing=True
    )  # 8 steps: saved at 3 and 6, mid-epoch

    for step in (3, 6):
        checkpoint = torch.load(tmp_path / f"step={step}.ckpt", weights_only=True)
        saved = checkpoint["callbacks"]["EMA"]
        _assert_equal(checkpoint["state_dict"], recorder.average_after_step[step - 1])
        live = recorder.after_step[step - 1]
        _assert_equal({k: saved["live"][k] for k in live}, live)
        assert _differs(checkpoint["state_dict"], live)
        BatchNormClassifier().load_state_dict(checkpoint["state_dict"])  # a plain module loads it


def test_a_resumed_run_continues_exactly(tmp_path):
    torch.manual_seed(0)
    whole = BatchNormClassifier()
    resumed = copy.deepcopy(whole)
    ema = EMA(0.7)
    _fit(whole, [ema, Recorder()], max_epochs=4)

    first = EMA(0.7)
    last = ModelCheckpoint(tmp_path, filename="last")
    _fit(resumed, [first, last], max_epochs=2, enable_checkpointing=True)
    second, recorder = EMA(0.7), Recorder()
    _fit(resumed, [second, recorder], max_epochs=4, ckpt_path=tmp_path / "last.ckpt")

    # the first resumed step starts from the live weights, not the averaged ones it was saved with
    assert _differs(
        recorder.at_train_batch_start[0], torch.load(tmp_path / "last.ckpt")["state_dict"]
    )
    _assert_equal(second.average.state_dict(), ema.average.state_dict())
    _assert_equal(_state(resumed), _state(whole))
    _assert_equal(second.state_dict()["live"], ema.state_dict()["live"])


@pytest.mark.parametrize("ema_first", [True, False])
def test_early_stopping_judges_and_restores_the_averaged_weights(ema_first):
    torch.manual_seed(0)
    model = ScriptedValLoss([1.0, 0.5, 0.7, 0.8, 0.9, 1.0], lr=0.5)
    ema, stop = EMA(0.5), EarlyStopping("val_loss", patience=2)
    recorder = Recorder()
    callbacks = [ema, stop, recorder] if ema_first else [stop, ema, recorder]
    _fit(model, callbacks, max_epochs=6)

    assert stop.best_epoch == 1 and stop.stopped_epoch == 3
    best = recorder.at_validation[1]  # what epoch 1 validated: the average
    steps_per_epoch = len(recorder.after_step) // 4
    assert _differs(best, recorder.after_step[2 * steps_per_epoch - 1])  # not the live weights
    _assert_equal(_state(model), best)
    _assert_equal(model.weights_at_epoch[1], best)


@pytest.mark.ddp
def test_ddp_ranks_hold_identical_averages(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    result = subprocess.run(
        [sys.executable, __file__, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert int(ranks[0]["average"]["n_averaged"]) == 8  # 2 epochs x 64 samples / (2 x 8)
    _assert_equal(ranks[0]["average"], ranks[1]["average"])
    _assert_equal(ranks[0]["final"], ranks[1]["final"])
    # the average moved away from the live weights it started from, identically on both ranks
    assert _differs(ranks[0]["final"], ranks[0]["live"])


def _ddp_main(outdir: str) -> None:
    pl.seed_everything(0, verbose=False)
    model, ema = BatchNormClassifier(), EMA(0.6)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, callbacks=[ema], **QUIET
    )
    trainer.fit(model, loader(64), loader(16))
    torch.save(
        {
            "average": ema.average.state_dict(),
            "final": _state(model),
            "live": ema.state_dict()["live"],
        },
        Path(outdir) / f"rank{trainer.global_rank}.pt",
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    _ddp_main(sys.argv[1])


def test_recipe_key_builds_the_callback_and_is_validated():
    from lightreg.assemble import build_callbacks
    from lightreg.recipe import RecipeError, resolve_recipe

    recipe = resolve_recipe({"name": "x", "regularization": {"ema_decay": 0.999}})
    (ema,) = [c for c in build_callbacks(recipe, "runs/x/version_0") if isinstance(c, EMA)]
    assert ema.decay == 0.999
    assert not any(isinstance(c, EMA) for c in build_callbacks(resolve_recipe({"name": "x"}), "r"))
    for bad, problem in [
        ({"ema_decay": 1.0}, "regularization.ema_decay: input should be less than 1 (got 1.0)"),
        ({"ema_decai": 0.9}, "regularization.ema_decai: unknown key; did you mean 'ema_decay'?"),
    ]:
        with pytest.raises(RecipeError) as info:
            resolve_recipe({"name": "x", "regularization": bad})
        assert problem in info.value.problems


@pytest.mark.parametrize(
    ("decay", "max_epochs", "flagged"),
    [(0.99, 30, False), (0.999, 30, True), (0.999, 60, False), (0.9999, 100, True)],
)
def test_linter_flags_an_average_longer_than_the_run(decay, max_epochs, flagged):
    from lightreg.recipe import resolve_recipe
    from lightreg.recipe.lint import lint_recipe

    # digits: 1797 samples, 70 % for training, full batches of 64: 19 optimizer steps per epoch
    raw = {"name": "x", "regularization": {"ema_decay": decay}}
    findings = lint_recipe(resolve_recipe({**raw, "trainer": {"max_epochs": max_epochs}}))
    assert [f.rule for f in findings] == (["ema-longer-than-run"] if flagged else [])
    if flagged:
        assert findings[0].message.startswith(
            f"regularization.ema_decay = {decay:g} averages over about {round(1 / (1 - decay)):,} "
            f"optimizer steps, more than the {19 * max_epochs:,} this run has"
        )


def test_built_in_sizes_match_the_data():
    from lightreg.data.datasets import load_samples
    from lightreg.recipe.lint import BUILT_IN_SAMPLES

    for name in ("digits", "breast_cancer", "wine"):
        assert len(load_samples(name).labels) == BUILT_IN_SAMPLES[name], name
