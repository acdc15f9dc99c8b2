"""EarlyStopping: restores the best epoch's weights, start_from_epoch, checkpoint round trip."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from ddp_helpers import QUIET, ScriptedValLoss, loader
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightreg.callbacks import EarlyStopping

torch.set_num_threads(1)


def _fit(model, stop, max_epochs, extra=(), ckpt_path=None, **trainer_kwargs):
    kwargs = {**QUIET, **trainer_kwargs}
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[stop, *extra], **kwargs)
    trainer.fit(model, loader(16), loader(8), ckpt_path=ckpt_path)
    return trainer


def _assert_state_equal(actual, expected):
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"start_from_epoch": -1}, ValueError, r"`start_from_epoch` must be >= 0, got -1"),
        ({"patience": -2}, ValueError, r"`patience` must be >= 0, got -2"),
        ({"min_delta": -0.1}, ValueError, r"`min_delta` must be >= 0, got -0.1"),
        ({"mode": "avg"}, MisconfigurationException, r"`mode` can be min, max, got avg"),
    ],
)
def test_invalid_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping("val_loss", **kwargs)


@pytest.mark.parametrize(
    ("val_losses", "kwargs", "best_epoch", "last_epoch"),
    [
        ([1.0, 0.5, 0.7, 0.8, 0.9, 1.0], {"patience": 2}, 1, 3),  # stops by patience
        ([1.0, 0.9, 0.4, 0.6], {"patience": 10}, 2, 3),  # runs to max_epochs
        ([0.1, 0.2, 0.3, 0.25, 0.4], {"patience": 10, "start_from_epoch": 2}, 3, 4),
        ([1.0, 0.5, 0.05, 0.01], {"stopping_threshold": 0.1}, 2, 2),
        ([1.0, 2.0, 3.0, 0.2], {"mode": "max", "patience": 10}, 2, 3),
    ],
)
def test_final_weights_are_the_best_epochs(val_losses, kwargs, best_epoch, last_epoch):
    torch.manual_seed(0)
    model = ScriptedValLoss(val_losses)
    stop = EarlyStopping("val_loss", **kwargs)
    trainer = _fit(model, stop, max_epochs=len(val_losses))
    assert trainer.current_epoch == last_epoch + 1
    assert stop.best_epoch == best_epoch
    _assert_state_equal(model.state_dict(), model.weights_at_epoch[best_epoch])
    if best_epoch != last_epoch:  # training moved the weights after the best epoch
        last = model.weights_at_epoch[last_epoch]["net.1.weight"]
        assert not torch.equal(model.net[1].weight, last)


def test_without_restore_the_final_weights_stay():
    model = ScriptedValLoss([1.0, 0.5, 0.7, 0.8])
    stop = EarlyStopping("val_loss", patience=2, restore_best_weights=False)
    _fit(model, stop, max_epochs=4)
    assert stop.best_epoch == 1 and stop.best_weights is None
    _assert_state_equal(model.state_dict(), model.weights_at_epoch[3])


def test_warns_and_keeps_weights_when_nothing_was_checked():
    model = ScriptedValLoss([1.0, 0.5])
    stop = EarlyStopping("val_loss", start_from_epoch=5)
    with pytest.warns(UserWarning, match="no best weights to restore"):
        _fit(model, stop, max_epochs=2)
    _assert_state_equal(model.state_dict(), model.weights_at_epoch[1])


_NOT = EarlyStoppingReason.NOT_STOPPED


@pytest.mark.parametrize(
    ("kwargs", "best", "wait", "current", "expected"),
    [
        ({}, float("inf"), 0, 1.0, (True, False, _NOT, 0)),
        ({"min_delta": 1e-3}, 1.0, 0, 0.9995, (False, False, _NOT, 1)),
        ({"min_delta": 1e-3}, 1.0, 0, 0.998, (True, False, _NOT, 0)),
        ({"patience": 2}, 1.0, 1, 1.0, (False, True, EarlyStoppingReason.PATIENCE_EXHAUSTED, 2)),
        ({"mode": "max"}, 1.0, 0, 2.0, (True, False, _NOT, 0)),
        ({"mode": "max", "min_delta": 0.5}, 1.0, 0, 1.4, (False, False, _NOT, 1)),
        ({}, 1.0, 1, float("nan"), (False, True, EarlyStoppingReason.NON_FINITE_METRIC, 1)),
        (
            {"stopping_threshold": 0.1},
            1.0,
            2,
            0.05,
            (True, True, EarlyStoppingReason.STOPPING_THRESHOLD, 0),
        ),
        (
            {"divergence_threshold": 5.0},
            1.0,
            1,
            6.0,
            (False, True, EarlyStoppingReason.DIVERGENCE_THRESHOLD, 1),
        ),
    ],
)
def test_decision_is_a_pure_method(kwargs, best, wait, current, expected):
    stop = EarlyStopping("val_loss", **kwargs)
    stop.best_score, stop.wait_count = torch.tensor(best), wait
    decision = stop.decide(torch.tensor(current))
    assert (
        decision.improved,
        decision.should_stop,
        decision.reason,
        decision.wait_count,
    ) == expected
    assert (float(stop.best_score), stop.wait_count) == (best, wait)  # nothing changed


def test_overrides_no_private_lightning_method():
    """Only public hooks of Lightning's EarlyStopping are overridden (D2)."""
    parent = {name for cls in LightningEarlyStopping.__mro__ for name in vars(cls)}
    overridden = {name for name in vars(EarlyStopping) if name in parent}
    assert {
        name for name in overridden if name.startswith("_") and not name.startswith("__")
    } == set()


def test_state_survives_checkpoint_and_resume(tmp_path):
    losses = [1.0, 0.5, 0.7, 0.8, 0.9]
    torch.manual_seed(0)
    first = ScriptedValLoss(losses)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    _fit(
        first,
        EarlyStopping("val_loss", patience=5),
        3,
        enable_checkpointing=True,
        extra=[checkpoint],
    )
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)["callbacks"]
    state = next(v for k, v in saved.items() if k.startswith("EarlyStopping"))
    assert (state["best_epoch"], state["wait_count"], float(state["best_score"])) == (1, 1, 0.5)
    _assert_state_equal(state["best_weights"], first.weights_at_epoch[1])

    second = ScriptedValLoss(losses)
    resumed = EarlyStopping("val_loss", patience=5)
    _fit(second, resumed, 5, ckpt_path=tmp_path / "last.ckpt")
    assert (resumed.best_epoch, resumed.wait_count, float(resumed.best_score)) == (1, 3, 0.5)
    assert sorted(second.weights_at_epoch) == [3, 4]  # epoch 1 happened before the resume...
    _assert_state_equal(second.state_dict(), first.weights_at_epoch[1])  # ...and is restored
