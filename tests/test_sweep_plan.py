"""``lightreg sweep`` without training: planning, ranking, state, backends' seams, user errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.recipe import RecipeError
from lightreg.recipe.load import shipped_recipes
from lightreg.sweep import (
    BackendError,
    Entry,
    LocalBackend,
    RayBackend,
    RunState,
    SweepState,
    plan_sweep,
    rank,
)
from lightreg.sweep.plan import parse_grid, split_values

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures" / "verdicts"


def base_recipe(tmp_path: Path) -> Path:
    recipe = {
        "name": "tiny",
        "model": {"type": "mlp", "hidden": [16]},
        "trainer": {"max_epochs": 2},
        "logging": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_presets_times_grid(tmp_path):
    plan = plan_sweep(
        base_recipe(tmp_path),
        ["trainer.max_epochs=3"],
        ["none", "aggressive"],
        ["optim.lr=1e-3,3e-3", "regularization.dropout=0.2,0.4"],
    )
    slugs = [c.slug for c in plan.configurations]
    assert len(slugs) == 8 and len(set(slugs)) == 8
    assert slugs[0] == "none-lr_1e-3-dropout_0.2"
    last = plan.configurations[-1]
    assert last.overrides == (
        "regularization.preset=aggressive",
        "optim.lr=3e-3",
        "regularization.dropout=0.4",
    )
    assert last.recipe.name == "tiny-aggressive-lr_3e-3-dropout_0.4"
    assert (last.recipe.optim.lr, last.recipe.regularization.dropout) == (0.003, 0.4)
    assert last.recipe.regularization.weight_decay == 1e-3  # from the preset
    assert last.recipe.trainer.max_epochs == 3 and not last.recipe.trainer.enable_progress_bar
    assert plan.default_dir == tmp_path / "runs" / "tiny-sweep"
    shared = plan.recipe_to_share(last)
    assert shared.name == "tiny" and shared.trainer.enable_progress_bar


def test_every_bad_combination_is_reported_at_once(tmp_path):
    with pytest.raises(RecipeError) as caught:
        plan_sweep(
            base_recipe(tmp_path),
            presets=["none", "modrate"],
            grid=["regularization.dropout=0.2,1.5", "optim.lr=1e-3,-1", "bad"],
        )
    problems = caught.value.problems
    assert any("did you mean 'moderate'" in line for line in problems)
    assert any(line.startswith("--grid 'bad'") for line in problems)
    with pytest.raises(RecipeError) as caught:
        plan_sweep(
            base_recipe(tmp_path), grid=["regularization.dropout=0.2,1.5", "optim.lr=1e-3,-1"]
        )
    problems = sorted(caught.value.problems)
    assert len(problems) == 2, problems
    assert problems[0].startswith("optim.lr:") and "2 of 4" in problems[0]
    assert problems[1].startswith("regularization.dropout:") and "2 of 4" in problems[1]


@pytest.mark.parametrize(
    ("specs", "problem"),
    [
        (["optim.lr"], "expected key.path=v1,v2"),
        (["optim.lr=1e-3,"], "empty value"),
        (["optim.lr=1,1"], "repeated"),
        (["optim.lr=1", "optim.lr=2"], "given twice"),
    ],
)
def test_bad_grid_specs(specs, problem):
    assert problem in parse_grid(specs)[1][0]


def test_grid_values_split_outside_brackets():
    assert split_values("[16],[32, 16]") == ["[16]", "[32, 16]"]


def test_sweep_runs_use_one_device(tmp_path):
    with pytest.raises(RecipeError, match=r"trainer.devices: a sweep run uses one device"):
        plan_sweep(base_recipe(tmp_path), ["trainer.devices=2"], ["none"])


def test_presets_that_change_nothing_are_flagged(tmp_path):
    plan = plan_sweep(
        base_recipe(tmp_path),
        ["regularization.dropout=0.1", "regularization.weight_decay=0"],
        grid=["regularization.label_smoothing=0.0,0"],
    )
    assert "resolve to the same recipe" in plan.warnings[0]


@pytest.mark.parametrize("name", sorted(n for n in shipped_recipes() if n.endswith("_baseline")))
def test_presets_change_every_shipped_baseline(name):
    """The baselines leave their regularizers to the presets: a preset sweep is no no-op."""
    plan = plan_sweep(name, presets=["none", "conservative", "moderate", "aggressive"])
    assert plan.warnings == []
    dropouts = [c.recipe.regularization.dropout for c in plan.configurations]
    assert dropouts == [0.0, 0.2, 0.3, 0.5]


@pytest.mark.parametrize(
    ("rows", "by", "order"),
    [
        (  # tier first, then the lower loss
            [
                Entry("div", "diverging", val_loss=0.1),
                Entry("over", "overfitting", val_loss=0.2),
                Entry("good", "good_fit", val_loss=0.6),
                Entry("improving", "still_improving", val_loss=0.5),
                Entry("short", "insufficient_data", val_loss=0.05),
                Entry("failed", "failed"),
                Entry("under", "underfitting", val_loss=0.9),
            ],
            "val_loss",
            ["improving", "good", "over", "under", "short", "div", "failed"],
        ),
        (  # a missing value sorts last in its tier; by accuracy, higher first
            [
                Entry("a", "good_fit", val_loss=math.nan, val_acc=0.99),
                Entry("b", "good_fit", val_loss=0.4, val_acc=0.80),
                Entry("c", "good_fit", val_loss=0.3, val_acc=0.90),
            ],
            "val_loss",
            ["c", "b", "a"],
        ),
        (
            [
                Entry("a", "good_fit", val_loss=math.nan, val_acc=0.99),
                Entry("b", "good_fit", val_loss=0.4, val_acc=0.80),
                Entry("c", "good_fit", val_loss=0.3, val_acc=0.90),
            ],
            "val_acc",
            ["a", "c", "b"],
        ),
        (  # ties keep the plan's order
            [Entry("x", "good_fit", val_loss=0.3), Entry("y", "good_fit", val_loss=0.3)],
            "val_loss",
            ["x", "y"],
        ),
    ],
)
def test_rank(rows, by, order):
    assert [entry.slug for entry in rank(rows, by)] == order


def test_rank_rejects_an_unknown_metric():
    with pytest.raises(ValueError, match="`by` can be val_loss or val_acc"):
        rank([], "val_ece")  # type: ignore[arg-type]


def test_state_round_trip_and_mismatch(tmp_path):
    plan = plan_sweep(base_recipe(tmp_path), presets=["none", "moderate"])
    state = SweepState.fresh(tmp_path / "sweep.json", plan)
    state.run("none").status = "done"
    state.save()
    loaded = SweepState.load(tmp_path / "sweep.json")
    assert [r.slug for r in loaded.unfinished()] == ["moderate"]
    assert loaded.mismatches(plan) == []
    changed = plan_sweep(base_recipe(tmp_path), ["trainer.max_epochs=5"], ["none", "aggressive"])
    assert loaded.mismatches(changed) == [
        "configuration 'aggressive' is not in the saved sweep",
        "configuration 'none' resolves to a different recipe than when it was saved",
        "saved configuration 'moderate' is not planned now",
    ]


def test_an_interrupted_run_is_found_by_its_new_version_folder(tmp_path):
    root = tmp_path / "runs" / "tiny-none"
    (root / "version_0").mkdir(parents=True)
    run = RunState("none", str(root), "f")
    run.start()
    assert run.versions_before == [0]
    (root / "version_1").mkdir()
    assert run.partial_run() is None  # no last.ckpt: start over
    (root / "version_1" / "last.ckpt").write_bytes(b"")
    assert run.partial_run() == root / "version_1"
    run.status = "failed"
    assert run.partial_run() is None  # a failed run starts over


def test_backend_seams(monkeypatch):
    with pytest.raises(BackendError, match="at least 1"):
        LocalBackend(parallel=0)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BackendError, match=r"pip install 'lightreg\[ray\]'"):
        RayBackend(Path("ray"))


def test_ray_missing_is_one_user_error_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = runner.invoke(
        app, ["sweep", str(base_recipe(tmp_path)), "--presets", "none", "--backend", "ray"]
    )
    assert result.exit_code == 2
    assert "lightreg[ray]" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to sweep"),
        (["--presets", "none,agressive"], "did you mean 'aggressive'"),
        (["--grid", "regularization.dropout=0.2,2"], "regularization.dropout:"),
        (["optim.lr=1,2"], "grid axes go after --grid"),
        (["--presets", "none", "--resume"], "no sweep.json to resume"),
        (["--presets", "none", "--resume", "--force"], "choose one"),
        (["--presets", "none", "--set", "trainer.max_epoch=2"], "did you mean 'max_epochs'"),
    ],
)
def test_bad_input_exits_2(tmp_path, argv, message):
    result = runner.invoke(app, ["sweep", str(base_recipe(tmp_path)), *argv])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_an_existing_sweep_or_best_recipe_is_not_overwritten(tmp_path):
    recipe = base_recipe(tmp_path)
    folder = tmp_path / "runs" / "tiny-sweep"
    folder.mkdir(parents=True)
    (folder / "best_recipe.yaml").write_text("name: mine\n")
    result = runner.invoke(app, ["sweep", str(recipe), "--presets", "none"])
    assert result.exit_code == 2 and "--force to overwrite" in result.output
    (folder / "sweep.json").write_text(json.dumps({"runs": [], "best_recipe": None}))
    result = runner.invoke(app, ["sweep", str(recipe), "--presets", "none"])
    assert result.exit_code == 2 and "a sweep is already here" in result.output


def test_the_sweep_command_plans_and_refuses_without_loading_torch(tmp_path):
    """Every configuration is resolved and checked, and a mistake answered, before torch loads."""
    argv = ["sweep", str(base_recipe(tmp_path)), "--grid", "regularization.dropout=0.2,1.5"]
    code = (
        "import sys; from typer.testing import CliRunner; from lightreg.cli.app import app; "
        f"result = CliRunner().invoke(app, {argv!r}); "
        "print(result.exit_code); print(result.output.strip()); "
        "print([m for m in ('torch', 'lightning', 'ray') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, message, loaded = done.stdout.strip().splitlines()
    assert exit_code == "2", done.stdout
    assert message.startswith("error: regularization.dropout: input should be less than 1")
    assert message.endswith("(in 1 of 2 configurations: dropout_1.5)")
    assert loaded == "[]"


def test_user_text_is_shown_literally(tmp_path):
    """Markup and escape sequences in folders, run folders and errors reach the terminal as text."""
    recipe = base_recipe(tmp_path)
    runs = tmp_path / "runs[/bold][link=file:x]"
    argv = ["sweep", str(recipe), "--presets", "none,moderate", "--set", f"logging.dir={runs}"]
    plan = plan_sweep(recipe, [f"logging.dir={runs}"], ["none", "moderate"])
    state = SweepState.fresh(plan.default_dir / "sweep.json", plan)
    good = tmp_path / "x[/red]\x1b[2J" / "version_0"
    shutil.copytree(FIXTURES / "good_fit" / "version_0", good)
    state.run("none").status = state.run("moderate").status = "done"
    state.run("none").run_dir = str(good)
    state.run("moderate").error = "boom\x1b[31m[/bold]"  # done, yet no run folder: shown as not run
    state.save()
    result = runner.invoke(app, [*argv, "--resume"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "\x1b" not in result.output
    assert "x[/red]\\x1b[2J" in result.output  # the winner's run folder
    assert "moderate: boom\\x1b[31m[/bold]" in result.output  # why moderate has no result
    assert "runs[/bold][link=file:x]" in result.output  # the sweep folder
