"""SWA: Lightning's StochasticWeightAveraging from a recipe, with lightreg's EarlyStopping and
checkpoints; the linter's swa-* and ema-with-swa rules."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import yaml
from ddp_helpers import QUIET, ScriptedValLoss, loader
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, StochasticWeightAveraging
from typer.testing import CliRunner

from lightreg.assemble import build_callbacks
from lightreg.callbacks import EarlyStopping
from lightreg.cli.app import app
from lightreg.recipe import RecipeError, resolve_recipe
from lightreg.recipe.lint import lint_recipe

torch.set_num_threads(1)


class EpochStarts(Callback):
    """The weights at the start of each training epoch: what SWA averages."""

    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.weights.append({k: v.clone() for k, v in pl_module.state_dict().items()})


def _mean(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    floats = [k for k, v in states[0].items() if v.is_floating_point()]
    return {k: torch.stack([s[k] for s in states]).mean(0) for k in floats}


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.allclose(a[k], b[k], atol=1e-6) for k in b)


def _fit(model, callbacks, max_epochs, **kwargs):
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=callbacks, **{**QUIET, **kwargs})
    trainer.fit(model, loader(32), loader(16))
    return trainer


def _recipe(**regularization):
    return resolve_recipe(
        {"name": "x", "regularization": regularization, "trainer": {"max_epochs": 20}}
    )


def test_recipe_key_builds_lightnings_callback():
    recipe = _recipe(swa={"lrs": 0.01, "epoch_start": 5})
    callbacks = build_callbacks(recipe, "runs/x/version_0")
    swa = next(c for c in callbacks if isinstance(c, StochasticWeightAveraging))
    assert (swa._swa_lrs, swa._swa_epoch_start) == (0.01, 5)
    names = [type(c).__name__ for c in callbacks]
    assert names.index("StochasticWeightAveraging") < names.index("EarlyStopping")


@pytest.mark.parametrize(
    ("swa", "expected"),
    [
        ({"lrs": 0.0}, "regularization.swa.lrs: input should be greater than 0 (got 0.0)"),
        ({"lrs": 0.1, "epoch_start": 0}, "regularization.swa.epoch_start"),
        ({"lrs": 0.1, "epoch_start": 1.5}, "regularization.swa.epoch_start"),
        ({"lr": 0.1}, "regularization.swa.lr: unknown key; did you mean 'lrs'?"),
    ],
)
def test_recipe_key_is_validated(swa, expected):
    with pytest.raises(RecipeError) as info:
        _recipe(swa=swa)
    assert any(expected in problem for problem in info.value.problems), info.value.problems


def test_dry_run_shows_the_keys():
    argv = ["fit", "mlp", "--dry-run", "--set", "regularization.swa={lrs: 0.01, epoch_start: 5}"]
    result = CliRunner().invoke(app, [*argv, "--set", "regularization.ema_decay=0.99"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)["regularization"]  # the linter warns on stderr
    assert shown["swa"] == {"lrs": 0.01, "epoch_start": 5} and shown["ema_decay"] == 0.99


@pytest.mark.parametrize(
    ("regularization", "recipe_extra", "rules"),
    [
        ({"swa": {"lrs": 0.01, "epoch_start": 5}}, {}, ["swa-with-early-stopping"]),
        (
            {"swa": {"lrs": 0.01, "epoch_start": 20}},
            {"early_stopping": {"enabled": False}},
            ["swa-too-few-epochs"],
        ),
        (
            {"swa": {"lrs": 0.01, "epoch_start": 25}},
            {"early_stopping": {"enabled": False}},
            ["swa-too-few-epochs"],
        ),
        (
            {"swa": {"lrs": 0.01, "epoch_start": 0.5}},
            {"early_stopping": {"enabled": False}, "model": {"batch_norm": False}},
            ["swa-never-scored"],
        ),
        (
            {"swa": {"lrs": 0.01}, "ema_decay": 0.9},
            {"early_stopping": {"enabled": False}},
            ["ema-with-swa"],
        ),
        ({"swa": {"lrs": 0.01, "epoch_start": 0.5}}, {"early_stopping": {"enabled": False}}, []),
    ],
)
def test_linter_flags_wrong_combinations(regularization, recipe_extra, rules):
    raw = {
        "name": "x",
        "regularization": regularization,
        "trainer": {"max_epochs": 20},
        **recipe_extra,
    }
    findings = lint_recipe(resolve_recipe(raw))
    assert [f.rule for f in findings] == rules
    assert all("\n" not in f.message for f in findings)


def test_swa_message_says_what_happens():
    (finding,) = lint_recipe(_recipe(swa={"lrs": 0.01, "epoch_start": 5}))
    assert finding.message.startswith(
        "regularization.swa with early_stopping.enabled: SWA puts its average in only when "
        "training reaches trainer.max_epochs = 20"
    )


def test_reaching_max_epochs_ends_on_the_average_of_the_epoch_starts():
    torch.manual_seed(0)
    model, starts = ScriptedValLoss([1.0] * 5), EpochStarts()
    _fit(model, [starts, StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=3)], 5)
    # averaged: the weights at the start of epochs 2, 3 and 4 (0-based; epoch_start counts from 1)
    assert _close(model.state_dict(), _mean(starts.weights[2:5]))


def test_early_stop_before_max_epochs_discards_the_average_and_restores_the_best():
    torch.manual_seed(0)
    model = ScriptedValLoss([1.0, 0.5, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0])
    swa = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2)
    stop = EarlyStopping("val_loss", patience=2)
    _fit(model, [swa, stop], 8)
    assert stop.stopped_epoch == 3 and int(swa.n_averaged) == 3  # averaged, never put in
    assert _close(model.state_dict(), model.weights_at_epoch[1])


@pytest.mark.parametrize(("swa_first", "final"), [(True, "best"), (False, "average")])
def test_at_max_epochs_the_last_on_train_end_wins(swa_first, final):
    torch.manual_seed(0)
    model, starts = ScriptedValLoss([1.0, 0.5, 0.7, 0.8, 0.9]), EpochStarts()
    swa = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=3)
    stop = EarlyStopping("val_loss", patience=10)
    _fit(model, [starts, *([swa, stop] if swa_first else [stop, swa])], 5)
    expected = model.weights_at_epoch[1] if final == "best" else _mean(starts.weights[2:5])
    assert _close(model.state_dict(), expected)


def test_without_batch_norm_no_checkpoint_holds_the_average(tmp_path):
    torch.manual_seed(0)
    model, starts = ScriptedValLoss([1.0, 0.9, 0.8, 0.7, 0.6]), EpochStarts()
    best = ModelCheckpoint(tmp_path, filename="best", monitor="val_loss", save_last=True)
    swa = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=3)
    _fit(model, [starts, swa, best], 5, enable_checkpointing=True)
    average = _mean(starts.weights[2:5])
    assert _close(model.state_dict(), average)
    for name in ("best.ckpt", "last.ckpt"):
        saved = torch.load(tmp_path / name, weights_only=True)
        assert not _close(saved["state_dict"], average), name
        # Lightning's callback state keeps the average, for a resumed run only
        state = saved["callbacks"][next(k for k in saved["callbacks"] if "Stochastic" in k)]
        assert state["average_model_state"] is not None


class BatchNormScripted(ScriptedValLoss):
    def __init__(self, val_losses: list[float]) -> None:
        super().__init__(val_losses)
        self.net[2] = torch.nn.BatchNorm1d(8)


def test_with_batch_norm_an_extra_epoch_validates_and_saves_the_average(tmp_path):
    torch.manual_seed(0)
    model, starts = BatchNormScripted([1.0, 0.9, 0.8, 0.7, 0.6]), EpochStarts()
    last = ModelCheckpoint(tmp_path, filename="last")
    swa = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2)
    _fit(model, [starts, swa, last], 4, enable_checkpointing=True)
    average = _mean(starts.weights[1:4])  # epochs 1-3; epoch 4 is the extra one
    parameters = [name for name, _ in model.named_parameters()]
    validated = model.weights_at_epoch[4]
    assert _close({k: validated[k] for k in parameters}, {k: average[k] for k in parameters})
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]
    assert _close({k: saved[k] for k in parameters}, {k: average[k] for k in parameters})
