"""The CLI surface: help, ``python -m lightreg``, user errors, and the no-torch start-up rule."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lightreg.cli.app import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("fit", "validate", "diagnose", "sweep", "recipes"):  # one row each
        assert re.search(rf"^\W*{command}\s", result.output, re.MULTILINE), result.output


def test_python_dash_m_works():
    done = subprocess.run(
        [sys.executable, "-m", "lightreg", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "fit" in done.stdout


@pytest.mark.parametrize(
    ("argv", "expected_output"),
    [
        (["--help"], "Usage"),
        (["validate", "mlp"], "ok mlp: recipe 'mlp' is valid"),
        (["fit", "mlp", "--dry-run"], "name: mlp"),
    ],
)
def test_light_commands_import_neither_torch_nor_lightning(argv, expected_output):
    code = (
        "import sys\n"
        "from lightreg.cli.app import app\n"
        "try:\n"
        f"    app({json.dumps(argv)})\n"
        "except SystemExit as exc:\n"
        "    print(f'EXIT={exc.code}')\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'albumentations') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "EXIT=0\nHEAVY=\n" in done.stdout, done.stdout + done.stderr
    assert expected_output in done.stdout, done.stdout


def test_validate_reports_every_problem_with_exit_code_2(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        "name: bad\nregularization: {dropuot: 0.1, dropout: 1.5}\ntrainer: {strategy: dpp}\n"
    )
    result = runner.invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 3, result.output
    assert "Traceback" not in result.output
    assert any("regularization.dropuot: unknown key; did you mean 'dropout'?" in x for x in lines)


def test_fit_dry_run_prints_the_resolved_recipe():
    result = runner.invoke(
        app, ["fit", "mlp", "--dry-run", "--set", "regularization.preset=aggressive"]
    )
    assert result.exit_code == 0, result.output
    assert "dropout: 0.5" in result.output and "patience: 10" in result.output


def test_fit_without_recipe_or_resume_is_a_user_error():
    result = runner.invoke(app, ["fit"])
    assert result.exit_code == 2 and "--resume" in result.output


def test_gpu_request_without_gpu_names_the_fix():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = runner.invoke(app, ["fit", "mlp", "--set", "trainer.accelerator=gpu"])
    assert result.exit_code == 2
    assert "--set trainer.accelerator=cpu" in result.output


def test_hardware_checks_are_one_line_each():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = runner.invoke(app, ["fit", "mlp", "--set", "trainer.precision=16-mixed"])
    assert result.exit_code == 2
    assert "--set trainer.precision=bf16-mixed" in result.output
    sharded = [
        "--set",
        "trainer.strategy=fsdp",
        "--set",
        "early_stopping.restore_best_weights=false",
    ]
    result = runner.invoke(app, ["fit", "mlp", *sharded])
    assert result.exit_code == 2
    assert "needs GPUs; on CPU use --set trainer.strategy=ddp" in result.output


def test_fit_refuses_a_test_split_monitor_before_training(tmp_path):
    result = runner.invoke(
        app,
        [
            "fit",
            "mlp",
            "--set",
            "early_stopping.monitor=test_loss",
            "--set",
            f"logging.dir={tmp_path}",
        ],
    )
    assert result.exit_code == 2
    assert "the test split is scored once, after fit" in result.output
    assert not any(tmp_path.iterdir())
