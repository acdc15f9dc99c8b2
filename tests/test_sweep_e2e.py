"""``lightreg sweep`` end to end on tiny runs: rank + best recipe, grid, parallel, resume, Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.recipe import load_recipe
from lightreg.sweep import Job, run_sweep
from lightreg.sweep.backends import run_job

pytestmark = pytest.mark.slow
runner = CliRunner()
QUIET = ["--set", "trainer.max_epochs=2"]


def tiny_recipe(tmp_path: Path) -> Path:
    recipe = {
        "name": "tiny",
        "seed": 3,
        "data": {"dataset": "digits", "train_fraction": 0.2, "batch_size": 32},
        "model": {"type": "mlp", "hidden": [16]},
        "trainer": {"max_epochs": 3},
        "regularization": {"overfitting_monitor": {"enabled": False}, "weight_stats": False},
        "early_stopping": {"enabled": False},
        "logging": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def versions(tmp_path: Path, run_name: str) -> list[str]:
    return sorted(p.name for p in (tmp_path / "runs" / run_name).glob("version_*"))


def test_presets_rank_write_the_best_recipe_and_resume(tmp_path):
    recipe = tiny_recipe(tmp_path)
    argv = ["sweep", str(recipe), "--presets", "none,aggressive", *QUIET]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    for text in ("ranked by verdict", "none", "aggressive", "val loss", "gap", "winner:"):
        assert text in result.output, text
    folder = tmp_path / "runs" / "tiny-sweep"
    best = load_recipe(folder / "best_recipe.yaml")
    assert best.name == "tiny" and best.trainer.max_epochs == 2
    assert best.trainer.enable_progress_bar  # the base recipe's setting, not the sweep's
    state = json.loads((folder / "sweep.json").read_text())
    assert [run["status"] for run in state["runs"]] == ["done", "done"]
    assert versions(tmp_path, "tiny-none") == versions(tmp_path, "tiny-aggressive") == ["version_0"]
    saved = load_recipe(tmp_path / "runs" / "tiny-aggressive" / "version_0" / "recipe.yaml")
    assert saved.regularization.dropout == 0.5 and not saved.trainer.enable_progress_bar

    again = runner.invoke(app, argv)
    assert again.exit_code == 2 and "--resume to continue it" in again.output

    # an interrupted run (started, with a last.ckpt) continues in its folder; done runs are skipped
    state["runs"][1].update(status="running", run_dir=None, versions_before=[])
    (folder / "sweep.json").write_text(json.dumps(state))
    resumed = runner.invoke(app, [*argv, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "1 done already" in resumed.output
    assert versions(tmp_path, "tiny-none") == versions(tmp_path, "tiny-aggressive") == ["version_0"]
    state = json.loads((folder / "sweep.json").read_text())
    assert state["runs"][1]["status"] == "done"

    changed = runner.invoke(app, [*argv, "--resume", "--set", "optim.lr=0.01"])
    assert changed.exit_code == 2 and "resolves to a different recipe" in changed.output


def test_grid_in_two_processes(tmp_path):
    recipe = tiny_recipe(tmp_path)
    argv = ["sweep", str(recipe), "--grid", "optim.lr=1e-3,3e-2", "regularization.dropout=0,0.2"]
    result = runner.invoke(app, [*argv, "--parallel", "2", "--out", str(tmp_path / "out"), *QUIET])
    assert result.exit_code == 0, result.output
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == [
        "tiny-lr_1e-3-dropout_0",
        "tiny-lr_1e-3-dropout_0.2",
        "tiny-lr_3e-2-dropout_0",
        "tiny-lr_3e-2-dropout_0.2",
    ]
    assert all(versions(tmp_path, name) == ["version_0"] for name in runs)
    best = (tmp_path / "out" / "best_recipe.yaml").read_text()
    assert best.startswith("# Best configuration of a lightreg sweep: lr_3e-2")


def test_a_failing_run_is_reported_and_the_others_go_on(tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("a,b\n1,2\n")
    recipe = load_recipe(tiny_recipe(tmp_path), ["data.dataset=csv", f"data.path={bad_csv}"])
    result = run_job(Job("bad", recipe))
    assert not result.ok and result.run_dir is None and result.error


def test_ray_backend_on_a_local_instance(tmp_path):
    pytest.importorskip("ray.tune")
    import ray

    from lightreg.sweep import RayBackend, SweepState, plan_sweep

    plan = plan_sweep(tiny_recipe(tmp_path), ["trainer.max_epochs=2"], ["none", "moderate"])
    state = SweepState.fresh(tmp_path / "sweep" / "sweep.json", plan)
    seen: list[str] = []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        results = run_sweep(
            plan,
            state,
            RayBackend(tmp_path / "sweep" / "ray", parallel=2),
            lambda r: seen.append(r.slug),
        )
    finally:
        ray.shutdown()
    assert sorted(seen) == ["moderate", "none"]
    assert all(r.ok for r in results), results
    assert [run.status for run in state.runs] == ["done", "done"]
    assert all((Path(run.run_dir) / "metrics.csv").is_file() for run in state.runs)
