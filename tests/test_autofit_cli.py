"""``lightreg autofit`` on the command line: bad input is one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import lightreg.sweep.backends
from lightreg.cli.app import app

runner = CliRunner()


def invoke(tmp_path: Path, *argv: str):
    return runner.invoke(app, ["autofit", *argv, "--set", f"logging.dir={tmp_path / 'runs'}"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no_such_recipe.yaml"], "no_such_recipe.yaml: no such recipe file"),
        (["mlp_baseline", "--set", "oops"], "--set 'oops': expected key.path=value"),
        (["mlp_baseline", "--set", "optim.lr=-1"], "optim.lr"),
        (["mlp_baseline", "--rounds", "0"], "--rounds must be at least 1, got 0"),
        (["mlp_baseline", "--epochs-budget=-5"], "--epochs-budget must be a positive number"),
        (["mlp_baseline", "--candidates", "0"], "--candidates must be at least 1, got 0"),
        (["mlp_baseline", "--parallel", "0"], "--parallel must be at least 1, got 0"),
        (["mlp_baseline", "--epochs-budget", "10"], "less than round 0's trainer.max_epochs (40)"),
        ([], "give a recipe file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, argv, message):
    result = invoke(tmp_path, *argv)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "runs").exists()


def test_ray_backend_without_ray(tmp_path, monkeypatch):
    monkeypatch.setattr(lightreg.sweep.backends, "ray_available", lambda: False)
    result = invoke(tmp_path, "mlp_baseline", "--backend", "ray")
    assert result.exit_code == 2, result.output
    assert (
        result.output.strip() == "error: --backend ray needs Ray Tune: pip install 'lightreg[ray]'"
    )
    assert not (tmp_path / "runs").exists()


def test_resume_needs_an_autofit_folder(tmp_path):
    (tmp_path / "runs").mkdir()
    result = runner.invoke(app, ["autofit", "--resume", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert (
        result.output.strip()
        == f"error: {tmp_path / 'runs'}: not an autofit folder (no autofit.json)"
    )
    assert list((tmp_path / "runs").iterdir()) == []
    both = runner.invoke(app, ["autofit", "mlp_baseline", "--resume", str(tmp_path / "runs")])
    assert both.exit_code == 2 and "drop RECIPE and --set" in both.output
