"""EarlyStopping's arguments, messages and bookkeeping: what mutation testing showed no test pinned.

Messages are Lightning's own wording, written out by hand here.
"""

from __future__ import annotations

import logging

import lightning.pytorch as pl
import pytest
import torch
from ddp_helpers import QUIET, ScriptedValLoss, loader
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.trainer.states import TrainerFn

from lightreg.callbacks import EarlyStopping

torch.set_num_threads(1)

SHARED = (
    "monitor",
    "min_delta",
    "patience",
    "verbose",
    "mode",
    "strict",
    "check_finite",
    "stopping_threshold",
    "divergence_threshold",
    "log_rank_zero_only",
)


def _fit(model, stop, max_epochs, **trainer_kwargs):
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[stop], **{**QUIET, **trainer_kwargs})
    trainer.fit(model, loader(16), loader(8))
    return trainer


def test_defaults_are_lightnings_and_keras() -> None:
    ours, theirs = EarlyStopping("val_loss"), LightningEarlyStopping("val_loss")
    assert {name: getattr(ours, name) for name in SHARED} == {
        name: getattr(theirs, name) for name in SHARED
    }
    assert (ours.patience, ours.verbose, ours.strict, ours.log_rank_zero_only) == (
        3,
        False,
        True,
        False,
    )
    # Keras: restore_best_weights is ours to default on; start_from_epoch=0 watches epoch 0.
    assert (ours.restore_best_weights, ours.start_from_epoch, ours.best_epoch) == (True, 0, None)


def test_every_argument_reaches_lightning() -> None:
    kwargs = {
        "min_delta": 0.5,
        "patience": 7,
        "verbose": True,
        "mode": "max",
        "strict": False,
        "check_finite": False,
        "stopping_threshold": 2.0,
        "divergence_threshold": -1.0,
        "log_rank_zero_only": True,
    }
    ours, theirs = EarlyStopping("acc", **kwargs), LightningEarlyStopping("acc", **kwargs)
    assert {name: getattr(ours, name) for name in SHARED} == {
        name: getattr(theirs, name) for name in SHARED
    }


def _decide(current: float, best: float = 1.0, wait: int = 0, **kwargs):
    stop = EarlyStopping("val_loss", **kwargs)
    stop.best_score, stop.wait_count = torch.tensor(best), wait
    return stop.decide(torch.tensor(current))


@pytest.mark.parametrize(
    ("current", "best", "wait", "kwargs", "message"),
    [
        (
            0.75,
            1.0,
            0,
            {},
            "Metric val_loss improved by 0.250 >= min_delta = 0.0. New best score: 0.750",
        ),
        (1.0, float("inf"), 0, {}, "Metric val_loss improved. New best score: 1.000"),
        (
            float("nan"),
            1.0,
            1,
            {},
            "Monitored metric val_loss = nan is not finite. Previous best value was"
            " 1.000. Signaling Trainer to stop.",
        ),
        (
            0.05,
            1.0,
            0,
            {"stopping_threshold": 0.1},
            "Stopping threshold reached: val_loss = 0.05000000074505806 < 0.1."
            " Signaling Trainer to stop.",
        ),
        (
            6.0,
            1.0,
            0,
            {"divergence_threshold": 5.0},
            "Divergence threshold reached: val_loss = 6.0 < 5.0. Signaling Trainer to stop.",
        ),
        (
            1.0,
            1.0,
            1,
            {"patience": 2},
            "Monitored metric val_loss did not improve in the last 2 records. Best score: 1.000."
            " Signaling Trainer to stop.",
        ),
        (1.0, 1.0, 0, {"patience": 2}, None),  # waiting: nothing worth a line
    ],
)
def test_decision_messages(current, best, wait, kwargs, message) -> None:
    assert _decide(current, best, wait, **kwargs).message == message


def test_below_the_divergence_threshold_is_not_divergence() -> None:
    decision = _decide(4.0, divergence_threshold=5.0, patience=5)
    assert (decision.should_stop, decision.reason) == (False, EarlyStoppingReason.NOT_STOPPED)


def test_start_from_epoch_watches_that_epoch() -> None:
    # Keras: epochs 0 and 1 are ignored, epoch 2 (0.3) is the first score and stays the best.
    stop = EarlyStopping("val_loss", patience=10, start_from_epoch=2)
    _fit(ScriptedValLoss([0.1, 0.2, 0.3, 0.35, 0.4]), stop, max_epochs=5)
    assert stop.best_epoch == 2


def test_stop_is_recorded_like_lightnings() -> None:
    # Best 0.5 at epoch 1; epochs 2 and 3 do not improve, so patience 2 stops at epoch 3.
    stop = EarlyStopping("val_loss", patience=2)
    _fit(ScriptedValLoss([1.0, 0.5, 0.7, 0.8, 0.9, 1.0]), stop, max_epochs=6)
    assert (stop.stopped_epoch, stop.stopping_reason) == (3, EarlyStoppingReason.PATIENCE_EXHAUSTED)
    assert stop.stopping_reason_message == (
        "Monitored metric val_loss did not improve in the last 2 records. Best score: 0.500."
        " Signaling Trainer to stop."
    )


def _logged(caplog, **kwargs) -> list[str]:
    stop = EarlyStopping("val_loss", patience=1, **kwargs)
    with caplog.at_level(logging.INFO, logger="lightreg.callbacks.early_stopping"):
        _fit(ScriptedValLoss([1.0, 0.5, 0.7]), stop, max_epochs=3)
    return [r.getMessage() for r in caplog.records if r.name == "lightreg.callbacks.early_stopping"]


EXPECTED_LOG = [
    "Metric val_loss improved. New best score: 1.000",
    "Metric val_loss improved by 0.500 >= min_delta = 0.0. New best score: 0.500",
    "Monitored metric val_loss did not improve in the last 1 records. Best score: 0.500."
    " Signaling Trainer to stop.",
]


def test_verbose_logs_each_decision_without_a_rank_prefix(caplog) -> None:
    assert _logged(caplog, verbose=True) == EXPECTED_LOG


def test_rank_zero_only_logging_still_logs_in_a_single_process(caplog) -> None:
    assert _logged(caplog, verbose=True, log_rank_zero_only=True) == EXPECTED_LOG


def test_quiet_by_default(caplog) -> None:
    assert _logged(caplog) == []


def _fit_missing(**kwargs) -> None:
    _fit(ScriptedValLoss([1.0, 0.5]), EarlyStopping("val_acc", **kwargs), max_epochs=2)


MISSING = (
    "Early stopping conditioned on metric `val_acc` which is not available. Pass in or modify"
    " your `EarlyStopping` callback to use any of the following: "
)


def _names_listed(message: str) -> set[str]:
    """The metric names after MISSING: "`a`, `b`" -> {"a", "b"} (their order is Lightning's)."""
    assert message.startswith(MISSING), message
    return {name.strip("`") for name in message[len(MISSING) :].split(", ")}


def test_missing_metric_raises_when_strict() -> None:
    with pytest.raises(RuntimeError) as info:
        _fit_missing()
    assert _names_listed(str(info.value)) == {"train_loss", "val_loss"}


def test_missing_metric_warns_when_not_strict_and_verbose() -> None:
    with pytest.warns(RuntimeWarning) as record:
        _fit_missing(strict=False, verbose=True)
    ours = [str(w.message) for w in record if str(w.message).startswith("Early stopping")]
    assert ours and all(_names_listed(m) == {"train_loss", "val_loss"} for m in ours)


@pytest.mark.parametrize(
    ("check_on_train_epoch_end", "wait_count"),
    [
        # Validation runs after epochs 1 and 3 only. At train epoch end the check also runs at
        # epoch 2 on the stale value: 1.0 (best), 1.0, 1.0 -> two checks without improvement.
        (True, 2),
        # Default (None): validation is not every epoch, so the check follows each validation:
        # 1.0 (best), 1.0 -> one check without improvement.
        (None, 1),
    ],
)
def test_when_the_check_runs(check_on_train_epoch_end, wait_count: int) -> None:
    stop = EarlyStopping(
        "val_loss", patience=10, strict=False, check_on_train_epoch_end=check_on_train_epoch_end
    )
    _fit(ScriptedValLoss([1.0] * 4), stop, max_epochs=4, check_val_every_n_epoch=2)
    assert (stop.best_epoch, stop.wait_count) == (1, wait_count)


def test_no_weights_in_the_state_before_an_improvement() -> None:
    assert "best_weights" not in EarlyStopping("val_loss").state_dict()
    kept = EarlyStopping("val_loss")
    kept.best_weights = {"w": torch.zeros(1)}
    assert torch.equal(kept.state_dict()["best_weights"]["w"], torch.zeros(1))


def test_verbose_restore_names_the_epoch(caplog) -> None:
    stop = EarlyStopping("val_loss", patience=2, verbose=True)
    with caplog.at_level(logging.INFO):
        _fit(ScriptedValLoss([1.0, 0.5, 0.7, 0.8]), stop, max_epochs=4)
    assert "EarlyStopping: restored the weights of epoch 1 (val_loss = 0.5)." in caplog.messages


class _Rank:
    """The parts of a Trainer one check reads, as rank ``rank`` of ``world_size`` processes."""

    def __init__(self, rank: int, world_size: int = 2) -> None:
        self.global_rank, self.world_size = rank, world_size
        self.state = type("State", (), {"fn": TrainerFn.FITTING})()
        self.sanity_checking = self.fast_dev_run = self.should_stop = False
        self.current_epoch = 0
        self.callback_metrics = {"val_loss": torch.tensor(1.0)}
        self.lightning_module = torch.nn.Linear(1, 1)
        self.strategy = self

    root_device = torch.device("cpu")

    def reduce(self, value: torch.Tensor, reduce_op: str) -> torch.Tensor:
        return value  # every rank logged the same value: its mean is itself

    def reduce_boolean_decision(self, decision: bool, all: bool) -> bool:
        return decision


@pytest.mark.parametrize(
    ("rank", "rank_zero_only", "logged"),
    [
        (1, False, ["[rank: 1] Metric val_loss improved. New best score: 1.000"]),
        (1, True, []),
        (0, True, ["[rank: 0] Metric val_loss improved. New best score: 1.000"]),
    ],
)
def test_multi_process_logging(caplog, rank: int, rank_zero_only: bool, logged) -> None:
    stop = EarlyStopping(
        "val_loss", verbose=True, log_rank_zero_only=rank_zero_only, check_on_train_epoch_end=True
    )
    trainer = _Rank(rank)
    with caplog.at_level(logging.INFO, logger="lightreg.callbacks.early_stopping"):
        stop.on_train_epoch_end(trainer, trainer.lightning_module)
    assert [r.getMessage() for r in caplog.records] == logged
    assert stop.best_epoch == 0
