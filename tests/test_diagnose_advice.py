"""Prescriptions tied to recipes, hparams or nothing, and the recipe patch built from them."""

from __future__ import annotations

import pytest

from lightreg.diagnose.advice import Change, prescribe
from lightreg.diagnose.patch import apply_changes, write_recipe
from lightreg.diagnose.rules import Evidence, Judgement

OVERFIT = Judgement("overfitting", Evidence(epochs=50, best_epoch=12, gl=14.0, overfit_since=13))
RECIPE = {
    "name": "demo",
    "regularization": {"dropout": 0.3, "weight_decay": 1e-4},
    "early_stopping": {"patience": 15},
}


def test_overfitting_recipe_follows_the_decision_process() -> None:
    p = prescribe(OVERFIT, RECIPE, "recipe")
    assert p.lines() == [
        "set regularization.augment to 'light' (add augmentation)",
        "regularization.dropout 0.3 -> 0.4",
        "regularization.weight_decay 0.0001 -> 0.0003",
        "early_stopping.patience 15 -> 5 (37 epochs ran past the best)",
    ]
    assert p.summary == "overfitting since epoch 13 of 50 (GL 14%)"


def test_patience_follows_the_planned_epochs_not_an_early_stop() -> None:
    """A run that early stopping cut at 19 of 40 epochs keeps patience 4 (a tenth of 40)."""
    cut = Judgement("overfitting", Evidence(epochs=19, best_epoch=12, gl=14.0, overfit_since=13))
    recipe = {"trainer": {"max_epochs": 40}, "early_stopping": {"enabled": True, "patience": 4}}
    assert not any("patience" in line for line in prescribe(cut, recipe, "recipe").lines())
    recipe["early_stopping"]["patience"] = 8
    assert (
        "early_stopping.patience 8 -> 4 (6 epochs ran past the best)"
        in prescribe(cut, recipe, "recipe").lines()
    )


def test_severe_overfitting_steps_harder_and_adds_batch_norm() -> None:
    severe = Judgement("overfitting", Evidence(epochs=10, best_epoch=8, gl=40.0, overfit_since=9))
    recipe = {"data": {"dataset": "wine"}, "model": {"type": "mlp", "batch_norm": False}}
    keys = {c.key: (c.old, c.new) for c in prescribe(severe, recipe, "recipe").changes}
    assert keys == {
        ("model", "batch_norm"): (False, True),
        ("regularization", "dropout"): (0.0, 0.2),
        ("regularization", "weight_decay"): (0.0, 0.0001),
    }
    recipe["regularization"] = {"dropout": 0.2, "weight_decay": 1e-4}
    keys = {c.key: (c.old, c.new) for c in prescribe(severe, recipe, "recipe").changes}
    assert keys[("regularization", "dropout")] == (0.2, 0.4)
    assert keys[("regularization", "weight_decay")] == (1e-4, 1e-3)


@pytest.mark.parametrize(
    ("gl", "augment", "dropout", "decay"),
    [(14.0, "light", 0.1, 1e-5), (40.0, "moderate", 0.2, 1e-4)],
)
def test_the_first_step_from_none_starts_light(gl, augment, dropout, decay) -> None:
    """From none: the chapter's light rung; the next one when overfitting is severe."""
    judgement = Judgement(
        "overfitting", Evidence(epochs=30, best_epoch=28, gl=gl, overfit_since=29)
    )
    recipe = {"data": {"dataset": "digits"}, "model": {"type": "cnn"}}
    keys = {c.key: c.new for c in prescribe(judgement, recipe, "recipe").changes}
    assert keys == {
        ("regularization", "augment"): augment,
        ("regularization", "dropout"): dropout,
        ("regularization", "weight_decay"): decay,
    }


def test_early_stopping_turned_on_watches_the_validation_loss() -> None:
    """The epochs past the best are counted on the validation loss: a recipe that early-stopped on
    nothing gets early stopping on that loss, with a tenth of its planned epochs as patience."""
    late = Judgement("overfitting", Evidence(epochs=200, best_epoch=25, gl=40.0, overfit_since=36))
    recipe = {
        "trainer": {"max_epochs": 200},
        "early_stopping": {"enabled": False, "monitor": "val_acc", "mode": "max", "patience": 4},
    }
    keys = {c.key: (c.old, c.new) for c in prescribe(late, recipe, "recipe").changes}
    assert keys[("early_stopping", "enabled")] == (False, True)
    assert keys[("early_stopping", "monitor")] == ("val_acc", "val_loss")
    assert keys[("early_stopping", "mode")] == ("max", "min")
    assert keys[("early_stopping", "patience")] == (4, 15)
    recipe["early_stopping"]["enabled"] = True  # on already: the user's monitor stays
    keys = {c.key: (c.old, c.new) for c in prescribe(late, recipe, "recipe").changes}
    assert ("early_stopping", "monitor") not in keys and ("early_stopping", "patience") not in keys


def test_preset_values_are_the_old_values() -> None:
    recipe = {"regularization": {"preset": "aggressive"}}
    keys = {c.key: (c.old, c.new) for c in prescribe(OVERFIT, recipe, "recipe").changes}
    assert keys[("regularization", "dropout")] == (0.5, 0.6)
    assert ("regularization", "augment") not in keys  # 'heavy' already, moderate step


def test_hparams_use_their_own_names() -> None:
    hparams = {"model": {"drop_rate": 0.2}, "wd": 0.01, "patience": 20}
    lines = prescribe(OVERFIT, hparams, "hparams").lines()
    assert "model.drop_rate 0.2 -> 0.3" in lines
    assert "early_stopping.patience" not in " ".join(lines)
    assert "patience 20 -> 5 (37 epochs ran past the best)" in lines
    assert not any(line.startswith("wd") for line in lines)  # already at the 1e-2 cap


def test_without_config_chapter_defaults() -> None:
    lines = prescribe(OVERFIT).lines()
    assert "set dropout to 0.1 (start light)" in lines
    assert "set weight_decay to 1e-05 (start light)" in lines


def test_underfitting_lowers_regularization_and_widens() -> None:
    under = Judgement("underfitting", Evidence(epochs=20, best_epoch=19))
    recipe = {"regularization": {"dropout": 0.5, "weight_decay": 1e-3, "augment": "heavy"}}
    keys = {c.key: c.new for c in prescribe(under, recipe, "recipe").changes}
    assert keys == {
        ("regularization", "dropout"): 0.25,
        ("regularization", "weight_decay"): 0.0001,
        ("regularization", "augment"): "moderate",
        ("model", "hidden"): [512, 256],  # the schema's default [256, 128], doubled
    }
    bare = {"model": {"type": "mlp", "hidden": [32]}, "data": {"dataset": "wine"}}
    assert prescribe(under, bare, "recipe").lines() == ["model.hidden [32] -> [64] (more capacity)"]
    lstm = {"model": {"type": "lstm_layernorm", "hidden_size": 32}, "data": {"dataset": "wine"}}
    assert prescribe(under, lstm, "recipe").lines() == [
        "model.hidden_size 32 -> 64 (more capacity)"
    ]
    assert prescribe(under, {"dropout": 0.4}, "hparams").lines() == [
        "dropout 0.4 -> 0.2",
        "if that is not enough: more capacity (wider or deeper model)",
    ]


def test_diverging_and_still_improving() -> None:
    diverging = Judgement("diverging", Evidence(epochs=5, nonfinite_epoch=3))
    assert prescribe(diverging, {"learning_rate": 0.5}, "hparams").lines() == [
        "learning_rate 0.5 -> 0.05",
        "set gradient_clip_val to 1 (clip exploding gradients)",
    ]
    improving = Judgement("still_improving", Evidence(epochs=6, best_epoch=5))
    assert prescribe(improving, {"trainer": {"max_epochs": 40}}, "recipe").lines() == [
        "trainer.max_epochs 40 -> 80 (validation loss still falling)"
    ]
    assert prescribe(improving).lines() == ["max_epochs 6 -> 12 (validation loss still falling)"]


def test_patch_uses_the_same_changes_as_the_text(tmp_path) -> None:
    import yaml

    p = prescribe(OVERFIT, RECIPE, "recipe")
    patched = apply_changes(RECIPE, p.changes)
    for change in p.changes:
        node = patched
        for part in change.key:
            node = node[part]
        assert node == change.new
    assert RECIPE["regularization"]["dropout"] == 0.3  # the input is not modified
    out = write_recipe(RECIPE, p.changes, tmp_path / "next.yaml")
    assert yaml.safe_load(out.read_text()) == patched
    assert list(yaml.safe_load(out.read_text())) == ["name", "regularization", "early_stopping"]
    with pytest.raises(FileExistsError, match="--force"):
        write_recipe(RECIPE, p.changes, out)


def test_patch_refuses_to_descend_into_a_value() -> None:
    with pytest.raises(ValueError, match="not a mapping"):
        apply_changes({"optim": 3}, [Change(("optim", "lr"), None, 0.1)])


@pytest.mark.parametrize(
    ("dataset", "augmented"), [("mnist1d", True), ("digits", True), ("wine", False)]
)
def test_augmentation_is_prescribed_for_images_and_signals_not_tables(dataset, augmented) -> None:
    recipe = {**RECIPE, "data": {"dataset": dataset}}
    keys = {c.key for c in prescribe(OVERFIT, recipe, "recipe").changes}
    assert (("regularization", "augment") in keys) is augmented


ENDED = Evidence(
    epochs=50, best_epoch=49, lr_metric="lr-SGD", final_lr=1e-6, peak_lr=0.1, schedule_ended=True
)
ENDED_IMPROVING = Judgement("still_improving", ENDED, ("falling",))


def test_an_ended_schedule_is_stretched_with_the_epochs() -> None:
    hparams = {"epochs": 50, "scheduler": {"T_max": 50}}
    assert prescribe(ENDED_IMPROVING, hparams, "hparams").lines() == [
        "epochs 50 -> 100 (stretch the lr schedule with it: lr-SGD had annealed to 1e-06)",
        "scheduler.T_max 50 -> 100 (the schedule's horizon, with the epochs)",
    ]


def test_a_recipe_cosine_schedule_follows_max_epochs() -> None:
    recipe = {"optim": {"scheduler": "cosine"}, "trainer": {"max_epochs": 40}}
    assert prescribe(ENDED_IMPROVING, recipe, "recipe").lines() == [
        "trainer.max_epochs 40 -> 80 (the cosine schedule stretches with it: lr-SGD had "
        "annealed to 1e-06)"
    ]


@pytest.mark.parametrize(
    ("config", "source"),
    [
        ({"epochs": 50}, "hparams"),  # the scheduler's horizon is not in the hparams
        ({"optim": {"scheduler": "plateau"}}, "recipe"),  # ReduceLROnPlateau has no horizon
        (
            {
                "optim": {"scheduler": "plateau"},
                "model": {"type": "lstm_layernorm", "hidden_size": 64},
            },
            "recipe",
        ),  # a recipe has no horizon key: its width is none
        (None, None),
    ],
)
def test_an_ended_schedule_without_a_horizon_is_not_just_more_epochs(config, source) -> None:
    p = prescribe(ENDED_IMPROVING, config, source)
    assert p.changes == ()
    (hint,) = p.hints
    assert hint.startswith("lr-SGD had annealed to 1e-06 (0.001% of its peak 0.1)")
    assert "max_epochs and the scheduler's horizon together" in hint
    assert hint.endswith("or accept this result")
