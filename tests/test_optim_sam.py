"""SAM: parity with a hand-written two-pass update, under Lightning's automatic optimization.

Run as a script (``python tests/test_optim_sam.py OUTDIR``), it trains ``TinyClassifier`` with
SAM on 2 CPU processes (DDP, gloo) on different data per rank and saves each rank's weights to
``OUTDIR/rank{r}.pt``; :func:`test_ddp_ranks_end_with_identical_weights` starts it.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
import yaml
from ddp_helpers import QUIET, TinyClassifier, loader
from lightning.pytorch.plugins.precision import MixedPrecision
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.optim import SAM
from lightreg.recipe import resolve_recipe
from lightreg.recipe.errors import RecipeError
from lightreg.recipe.lint import lint_recipe

torch.set_num_threads(1)


class SAMClassifier(TinyClassifier):
    """``TinyClassifier`` stepping ``SAM(SGD with momentum)``; counts its training steps."""

    def __init__(self, rho: float = 0.1, adaptive: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rho, self.adaptive = rho, adaptive
        self.calls = 0

    def training_step(self, batch, batch_idx):
        self.calls += 1
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        base = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        return SAM(base, rho=self.rho, adaptive=self.adaptive)


def hand_written_sam(model, batches, *, rho, adaptive=False, lr=0.1, clip=None):
    """Foret et al.'s update, written out: g at w, e, g at w + e, back to w, base step."""
    model = copy.deepcopy(model)
    params = list(model.parameters())
    base = torch.optim.SGD(params, lr=lr, momentum=0.9)

    def gradients(x, y):
        base.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)

    for x, y in batches:
        gradients(x, y)
        with torch.no_grad():
            w = [p.clone() for p in params]
            t = [p.abs() if adaptive else torch.ones_like(p) for p in params]
            norm = torch.sqrt(
                sum(((ti * p.grad) ** 2).sum() for ti, p in zip(t, params, strict=True))
            )
            for ti, p in zip(t, params, strict=True):
                p.add_(rho * ti * ti * p.grad / (norm + 1e-12))
        gradients(x, y)
        with torch.no_grad():
            for p, wi in zip(params, w, strict=True):
                p.copy_(wi)
        base.step()
    return model


def fit_sam(model, data, epochs=2, **trainer):
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=epochs, **QUIET, **trainer)
    trainer.fit(model, data)
    return trainer


def assert_same_weights(a, b, atol=1e-6):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(x, y, atol=atol, rtol=0), name


@pytest.mark.parametrize("adaptive", [False, True])
def test_lightning_automatic_optimization_matches_the_hand_written_update(adaptive):
    torch.manual_seed(0)
    rho = 0.5 if adaptive else 0.1
    model = SAMClassifier(rho=rho, adaptive=adaptive)
    start = copy.deepcopy(model)
    data = loader(32, 8)
    trainer = fit_sam(model, data)
    assert trainer.global_step == 8
    expected = hand_written_sam(start, list(data) * 2, rho=rho, adaptive=adaptive)
    assert_same_weights(model, expected)
    plain = hand_written_sam(start, list(data) * 2, rho=1e-30)  # SAM moved the weights elsewhere
    assert not torch.allclose(model.net[1].weight, plain.net[1].weight, atol=1e-4)


def test_the_closure_runs_twice_per_step_and_the_first_loss_is_returned():
    model = SAMClassifier()
    fit_sam(model, loader(32, 8), epochs=1)
    assert model.calls == 2 * 4
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    sam = SAM(torch.optim.SGD([w], lr=0.1), rho=0.5)
    seen = []

    def closure():
        sam.zero_grad()
        seen.append(w.detach().clone())
        loss = (w**2).sum()
        loss.backward()
        return loss.detach()

    assert sam.step(closure) == 25.0  # the loss at w, not at w + e
    assert torch.allclose(torch.stack(seen), torch.tensor([[3.0, 4.0], [3.3, 4.4]]))  # w + e
    assert torch.allclose(w.detach(), torch.tensor([3.0 - 0.66, 4.0 - 0.88]))


def test_gradient_clipping_clips_both_passes_like_a_plain_step():
    torch.manual_seed(0)
    model = SAMClassifier(rho=0.1)
    start = copy.deepcopy(model)
    data = loader(32, 8)
    fit_sam(model, data, gradient_clip_val=0.05)
    assert_same_weights(model, hand_written_sam(start, list(data) * 2, rho=0.1, clip=0.05))
    unclipped = hand_written_sam(start, list(data) * 2, rho=0.1)
    assert not torch.allclose(model.net[1].weight, unclipped.net[1].weight, atol=1e-4)


def test_gradient_accumulation_is_refused_with_one_clear_error():
    with pytest.raises(RuntimeError, match=r"accumulate_grad_batches > 1.*set it to 1"):
        fit_sam(SAMClassifier(), loader(32, 8), accumulate_grad_batches=2)


def test_a_step_without_closure_is_refused_as_under_16_mixed_with_a_grad_scaler():
    scaler = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=1.0))
    with pytest.raises(RuntimeError, match=r"needs a closure.*use 'bf16-mixed' or 32-bit"):
        fit_sam(SAMClassifier(), loader(32, 8), plugins=[scaler])


def test_bf16_mixed_precision_trains():
    model = SAMClassifier()
    before = copy.deepcopy(model)
    fit_sam(model, loader(32, 8), epochs=1, precision="bf16-mixed")
    assert model.calls == 8
    assert not torch.allclose(model.net[1].weight, before.net[1].weight)


def test_state_dict_round_trip_resumes_the_same_trajectory():
    torch.manual_seed(0)
    model = TinyClassifier()
    batches = list(loader(32, 8))

    def run(sam, net, part):
        for x, y in part:

            def closure(x=x, y=y):
                sam.zero_grad()
                loss = F.cross_entropy(net(x), y)
                loss.backward()
                return loss

            sam.step(closure)

    sam = SAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    run(sam, model, batches[:2])
    saved_model, saved_optim = copy.deepcopy(model.state_dict()), copy.deepcopy(sam.state_dict())
    assert len(saved_optim["state"]) == len(list(model.parameters()))  # momentum buffers
    run(sam, model, batches[2:])

    resumed = TinyClassifier()
    resumed.load_state_dict(saved_model)
    sam2 = SAM(torch.optim.SGD(resumed.parameters(), lr=0.5, momentum=0.9), rho=0.05)
    sam2.load_state_dict(saved_optim)
    assert sam2.param_groups is sam2.base_optimizer.param_groups
    assert sam2.state is sam2.base_optimizer.state
    assert sam2.param_groups[0]["lr"] == 0.1  # from the checkpoint
    run(sam2, resumed, batches[2:])
    assert_same_weights(model, resumed, atol=0)


def test_a_scheduler_on_sam_schedules_the_base_optimizer():
    model = TinyClassifier()
    sam = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.05)
    schedule = torch.optim.lr_scheduler.StepLR(sam, step_size=1, gamma=0.5)
    sam.step(lambda: None)  # a skipped batch: nothing moves
    schedule.step()
    assert [g["lr"] for g in sam.base_optimizer.param_groups] == [0.05]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rho": 0.0}, r"`rho` must be a finite number > 0, got 0.0"),
        ({"rho": float("nan")}, "got nan"),
        ({"rho": "0.1"}, "got '0.1'"),
    ],
)
def test_invalid_rho_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SAM(torch.optim.SGD(TinyClassifier().parameters(), lr=0.1), **kwargs)


# ---------------------------------------------------------------- recipes


def test_recipe_key_is_validated_shown_and_linted():
    recipe = resolve_recipe({"name": "x", "regularization": {"sam_rho": 0.05}})
    assert recipe.regularization.sam_rho == 0.05
    assert resolve_recipe({"name": "x"}).regularization.sam_rho is None
    with pytest.raises(RecipeError, match="greater than 0"):
        resolve_recipe({"name": "x", "regularization": {"sam_rho": 0.0}})
    assert [f.rule for f in lint_recipe(recipe)] == []
    large = resolve_recipe({"name": "x", "regularization": {"sam_rho": 1.0}})
    assert [f.rule for f in lint_recipe(large)] == ["sam-rho-too-large"]
    result = CliRunner().invoke(
        app, ["fit", "mlp", "--set", "regularization.sam_rho=0.05", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "sam_rho: 0.05" in result.output
    typo = CliRunner().invoke(app, ["validate", "mlp", "--set", "regularization.sam_roh=0.05"])
    assert typo.exit_code == 2 and "did you mean 'sam_rho'" in typo.output, typo.output


@pytest.mark.parametrize(
    ("trainer", "match"),
    [
        ({"accumulate_grad_batches": 2}, "trainer.accumulate_grad_batches = 2"),
        ({"precision": "16-mixed"}, "trainer.precision '16-mixed'"),
        ({"strategy": "fsdp"}, "regularization.sam_rho"),
    ],
)
def test_recipe_combinations_sam_cannot_follow_are_refused(trainer, match):
    raw = {"name": "x", "regularization": {"sam_rho": 0.05}, "trainer": trainer}
    raw["early_stopping"] = {"restore_best_weights": False}
    with pytest.raises(RecipeError, match=match):
        resolve_recipe(raw)
    on_cpu = {**raw, "trainer": {**trainer, "accelerator": "cpu"}}
    if trainer.get("precision") == "16-mixed":  # no GradScaler on CPU: SAM steps with a closure
        assert resolve_recipe(on_cpu).trainer.precision == "16-mixed"


@pytest.mark.slow
def test_fit_with_sam_rho_trains_and_checkpoints_the_sam_groups(tmp_path):
    recipe = {
        "name": "sam",
        "seed": 3,
        "data": {"dataset": "digits", "train_fraction": 0.3, "batch_size": 32},
        "model": {"type": "mlp", "hidden": [32]},
        "regularization": {"sam_rho": 0.05, "weight_stats": False},
        "trainer": {"max_epochs": 2, "enable_progress_bar": False, "gradient_clip_val": 1.0},
        "logging": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "sam.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(app, ["fit", str(path)])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "sam" / "version_0"
    checkpoint = torch.load(run_dir / "last.ckpt", weights_only=False)
    assert checkpoint["hyper_parameters"]["sam_rho"] == 0.05
    groups = checkpoint["optimizer_states"][0]["param_groups"]
    assert [g["rho"] for g in groups] == [0.05] * len(groups)


def test_classifier_module_logs_train_metrics_from_the_first_pass_only():
    from lightreg.models.mlp import MLPClassifier

    torch.manual_seed(0)
    model = MLPClassifier(4, 3, hidden=(8,), sam_rho=0.05, batch_norm=False)
    assert type(model.configure_optimizers()).__name__ == "SAM"
    updates = []
    model.train_acc.register_forward_pre_hook(lambda *_: updates.append(1))
    fit_sam(model, loader(32, 8), epochs=1)
    assert len(updates) == 4  # one per batch, not two


# ---------------------------------------------------------------- DDP


@pytest.mark.ddp
def test_ddp_ranks_end_with_identical_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    done = subprocess.run(
        [sys.executable, __file__, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert ranks[0]["calls"] == ranks[1]["calls"] == 2 * 16  # 2 passes x 16 steps per rank
    start = ranks[0]["start"]
    for key, value in ranks[0]["state"].items():
        assert torch.equal(ranks[1]["state"][key], value), key
        assert not torch.equal(start[key], value), key


def _ddp_main(outdir: str) -> None:
    pl.seed_everything(0, verbose=False)
    model = SAMClassifier(rho=0.1)
    start = copy.deepcopy(model.state_dict())
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, **QUIET)
    trainer.fit(model, loader(64, 4))  # Lightning's sampler: different batches on each rank
    result = {"state": model.state_dict(), "start": start, "calls": model.calls}
    torch.save(result, Path(outdir) / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    _ddp_main(sys.argv[1])
