"""MLflow file-store reader, discovery rules and read_runs' robustness."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightreg.diagnose.readers import ReadError, read_runs

FIXTURES = Path(__file__).parent / "fixtures" / "readers"


def _mlflow_run(root: Path, metrics: dict[str, str], exp: str = "1", run: str = "abc") -> Path:
    run_dir = root / "mlruns" / exp / run
    for key, text in metrics.items():
        path = run_dir / "metrics" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (run_dir / "params").mkdir(parents=True, exist_ok=True)
    (run_dir / "params" / "lr").write_text("0.01")
    (run_dir / "meta.yaml").write_text(f"run_id: {run}\nrun_name: brave-fox\n")
    return run_dir


def test_mlflow_epoch_metric_maps_steps_and_nested_keys_keep_slash(tmp_path: Path) -> None:
    _mlflow_run(
        tmp_path,
        {
            "epoch": "1 0 49\n2 1 99\n3 2 149\n",
            "val/loss": "1 0.9 49\n2 0.7 99\n3 nan 149\n",
            "train_loss_step": "1 2.0 10\n1 1.5 20\n",
        },
    )
    (tmp_path / "mlruns" / ".trash" / "old").mkdir(parents=True)
    runs, errors = read_runs([tmp_path / "mlruns"])
    assert errors == [] and len(runs) == 1
    run = runs[0]
    assert (run.path, run.format) == ("1/abc", "mlflow")
    val = run.series["val/loss"]
    assert (val[0], val[1], math.isnan(val[2])) == (0.9, 0.7, True)
    assert run.step_series["train_loss_step"] == {10: 2.0, 20: 1.5}  # no step shared with epoch
    assert run.step_series["epoch"] == {10: 0, 20: 0}  # epoch 0 ends at step 49
    assert run.config == {"lr": "0.01", "run_name": "brave-fox"} and run.config_source == "hparams"


def test_mlflow_old_two_field_lines_and_no_epoch_metric(tmp_path: Path) -> None:
    _mlflow_run(tmp_path, {"loss": "1 0.5\n", "val_loss": "1 0.9 0\n2 0.8 1\nbroken\n"})
    run = read_runs([tmp_path])[0][0]
    assert run.series == {"loss": {0: 0.5}, "val_loss": {0: 0.9, 1: 0.8}}
    assert run.warnings == [
        "metric val_loss: 1 malformed lines skipped",
        "no epoch metric: steps read as epochs",
    ]


def test_mlflow_run_without_values_is_an_error(tmp_path: Path) -> None:
    _mlflow_run(tmp_path, {"loss": ""})
    assert read_runs([tmp_path]) == ([], [ReadError("mlruns/1/abc", "no metric values")])


def test_missing_path_is_an_error_and_other_paths_still_read(tmp_path: Path) -> None:
    runs, errors = read_runs([tmp_path / "nope", FIXTURES / "lightning_csv" / "version_0"])
    assert [r.path for r in runs] == ["."]
    assert errors == [ReadError(str(tmp_path / "nope"), "no such file or folder")]


def test_permission_denied_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lightreg.diagnose.readers.discover as discover

    def denied(path: Path, size: int = 0) -> bytes:
        raise PermissionError(13, "Permission denied", str(path))

    (tmp_path / "v0").mkdir()
    (tmp_path / "v0" / "metrics.csv").write_text("epoch,step,val_loss\n0,1,1.0\n")
    monkeypatch.setattr(discover, "_head", denied)  # chmod 0 does not stop root
    assert read_runs([tmp_path]) == ([], [ReadError("v0/metrics.csv", "permission denied")])


def test_unexpected_exception_becomes_an_unreadable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import lightreg.diagnose.readers.read as read

    def boom(*_: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(read, "read_lightning_csv", boom)
    runs, errors = read_runs([FIXTURES / "lightning_csv" / "version_0"])
    assert errors == [ReadError(".", "unreadable: RuntimeError: disk on fire")]


def test_diagnose_readers_import_neither_torch_nor_lightning_nor_numpy() -> None:
    code = (
        "import sys; from lightreg.diagnose.readers import read_runs;"
        "read_runs(['tests/fixtures/readers/lightning_csv']);"
        "print(sorted(m for m in ('torch', 'lightning', 'numpy', 'google.protobuf') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
    )
)
def test_fuzz_mlflow_reader_never_raises(tmp_path: Path, text: str) -> None:
    run_dir = _mlflow_run(tmp_path, {"val_loss": text, "epoch": text[::-1]})
    (run_dir / "meta.yaml").write_text(text)
    runs, errors = read_runs([tmp_path])
    assert len(runs) + len(errors) == 1
