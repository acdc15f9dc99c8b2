"""``lightreg diagnose`` end to end on the committed verdict fixtures (real Lightning logs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.diagnose.engine import diagnose_paths

FIXTURES = Path(__file__).parent / "fixtures" / "verdicts"
EXPECTED = {
    "overfitting/version_0": "overfitting",
    "tensorboard_overfitting/version_0": "overfitting",
    "underfitting/version_0": "underfitting",
    "good_fit/version_0": "good_fit",
    "keras_good_fit/history.csv": "good_fit",
    "diverging/version_0": "diverging",
    "still_improving/version_0": "still_improving",
    "insufficient_data/version_0": "insufficient_data",
    "no_validation/version_0": "insufficient_data",
}
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["diagnose", *map(str, args)])


def test_engine_gives_every_verdict_on_the_fixtures() -> None:
    report = diagnose_paths([FIXTURES])
    assert report.errors == [] and report.empty_paths == []
    assert {d.run.path: d.verdict for d in report.diagnoses} == EXPECTED


@pytest.mark.parametrize(("run", "verdict"), sorted(EXPECTED.items()))
def test_cli_verdict_per_fixture(run: str, verdict: str) -> None:
    result = invoke(FIXTURES / run, "--json")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)["runs"]
    assert record["verdict"] == verdict


def test_json_schema() -> None:
    result = invoke(FIXTURES, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"runs", "errors"} and document["errors"] == []
    types = {
        "path": str,
        "format": str,
        "verdict": str,
        "best_epoch": (int, type(None)),
        "epochs": int,
        "train_metric": (str, type(None)),
        "val_metric": (str, type(None)),
        "final_train_loss": (float, type(None)),
        "final_val_loss": (float, type(None)),
        "gl": (float, type(None)),
        "max_gl": (float, type(None)),
        "pq": (float, type(None)),
        "overfit_since": (int, type(None)),
        "prescription": list,
    }
    for record in document["runs"]:
        for key, expected in types.items():
            assert isinstance(record[key], expected), (record["path"], key, record[key])
        assert record["format"] in ("lightning_csv", "tensorboard", "keras_csv", "mlflow")
        assert all(isinstance(line, str) for line in record["prescription"])
    by_path = {record["path"]: record for record in document["runs"]}
    diverging = by_path["diverging/version_0"]
    assert diverging["final_train_loss"] is None and diverging["final_val_loss"] is None
    overfit = by_path["overfitting/version_0"]
    assert overfit["overfit_since"] > overfit["best_epoch"] and overfit["gl"] > 5
    assert overfit["epochs"] == 60 and overfit["train_metric"] == "train_loss"


def test_fail_on_exit_codes() -> None:
    assert invoke(FIXTURES, "--json", "--fail-on", "overfitting,diverging").exit_code == 1
    assert invoke(FIXTURES / "good_fit", "--fail-on", "overfitting,diverging").exit_code == 0
    result = invoke(FIXTURES, "--fail-on", "overfiting")
    assert result.exit_code == 2
    assert "did you mean 'overfitting'" in result.output and "Traceback" not in result.output


def test_write_recipe_and_refusal(tmp_path: Path) -> None:
    out = tmp_path / "next.yaml"
    run = FIXTURES / "overfitting" / "version_0"
    result = invoke(run, "--write-recipe", out)
    assert result.exit_code == 0, result.output
    patched = yaml.safe_load(out.read_text())
    original = yaml.safe_load((run / "recipe.yaml").read_text())
    assert patched["regularization"]["dropout"] > original["regularization"]["dropout"]
    assert patched["regularization"]["augment"] == "moderate"
    assert patched["name"] == original["name"]
    result = invoke(run, "--write-recipe", out)
    assert result.exit_code == 2 and "--force" in result.output
    assert invoke(run, "--write-recipe", out, "--force").exit_code == 0
    many = invoke(FIXTURES, "--write-recipe", tmp_path / "x.yaml")
    assert many.exit_code == 2 and "exactly one run" in many.output
    hparams_run = invoke(FIXTURES / "underfitting", "--write-recipe", tmp_path / "y.yaml")
    assert hparams_run.exit_code == 2 and "not trained from a lightreg recipe" in hparams_run.output


def test_png_writes_one_file_per_run(tmp_path: Path) -> None:
    result = invoke(FIXTURES / "overfitting", FIXTURES / "keras_good_fit", "--png", tmp_path)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in tmp_path.glob("*.png"))
    assert files == ["history.csv.png", "version_0.png"]
    assert all((tmp_path / name).stat().st_size > 1000 for name in files)


def test_single_run_prints_table_plot_and_prescription() -> None:
    result = invoke(FIXTURES / "overfitting" / "version_0")
    assert result.exit_code == 0, result.output
    assert "overfitting" in result.stdout and "best epoch" in result.stdout
    assert "regularization.dropout 0 -> 0.2 (severe overfitting)" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "gl_treshold=3"], "did you mean 'gl_threshold'"),
        (["--threshold", "oops"], "KEY=VALUE"),
        (["--min-epochs", "0"], "must be > 0"),
        (["--val-metric", "val_los"], "did you mean 'val_loss'"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    result = invoke(FIXTURES / "good_fit", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_nothing_readable_exits_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a log\n")
    result = invoke(tmp_path)
    assert result.exit_code == 2 and "nothing readable" in result.output
    missing = invoke(tmp_path / "missing")
    assert missing.exit_code == 2 and "missing: no such file or folder" in missing.output


def test_mismatched_quantities_from_the_cli(tmp_path: Path) -> None:
    run = tmp_path / "version_0"
    run.mkdir()
    rows = ["epoch,step,train/nll,val/rmse"]
    for epoch in range(8):
        rows += [
            f"{epoch},{epoch},{2 / (epoch + 1):.4f},",
            f"{epoch},{epoch},,{1 / (epoch + 2):.4f}",
        ]
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    result = invoke(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)["runs"]
    assert (record["train_metric"], record["val_metric"]) == ("train/nll", "val/rmse")
    assert record["pq"] is None and record["evidence"]["loss_gap"] is None
    assert any("different quantities" in note for note in record["notes"])


def test_diagnose_never_imports_torch_or_lightning() -> None:
    code = f"""
import sys
from typer.testing import CliRunner
import lightreg.cli.diagnose
from lightreg.cli.app import app
result = CliRunner().invoke(app, ["diagnose", {str(FIXTURES)!r}, "--plot"])
assert result.exit_code == 0, result.output
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lightning", "pytorch_lightning", "matplotlib"))
print(heavy)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
