"""Readers on huge or hostile files: size limits, streaming, bounded memory, symlinked run folders."""

from __future__ import annotations

import csv
import json
import math
import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightreg.diagnose.engine import DiagnoseConfig, diagnose_paths
from lightreg.diagnose.readers import read_runs, series
from lightreg.diagnose.readers.crc32c import masked_crc32c
from lightreg.diagnose.readers.series import IGNORED, epochs_at_steps, split_points
from lightreg.diagnose.readers.table import to_float

FIXTURES = Path(__file__).parent / "fixtures" / "readers"
EVENTS = "events.out.tfevents.1700000000.host.1.0"
GIB = 1 << 30


def _record(data: bytes) -> bytes:
    head = struct.pack("<Q", len(data))
    crc = struct.pack("<I", masked_crc32c(head))
    return head + crc + data + struct.pack("<I", masked_crc32c(data))


def _scalar_event(tag: str, step: int, value: float) -> bytes:
    value_msg = b"\x0a" + bytes([len(tag)]) + tag.encode() + b"\x15" + struct.pack("<f", value)
    summary = b"\x0a" + bytes([len(value_msg)]) + value_msg
    return (
        b"\x09"
        + struct.pack("<d", 1.7e9)
        + b"\x10"
        + bytes([step])
        + b"\x2a"
        + bytes([len(summary)])
        + summary
    )


def _sparse_event_file(folder: Path, size: int) -> Path:
    """One valid scalar record, then zeros up to ``size`` bytes: sparse, so it costs no disk."""
    path = folder / EVENTS
    with path.open("wb") as handle:
        handle.write(_record(_scalar_event("val_loss", 1, 0.5)))
        handle.truncate(size)
    return path


def _limit_reason(reason: str, name: str) -> None:
    assert name in reason and "DiagnoseConfig.max_file_bytes" in reason, reason
    assert "--" not in reason and "\n" not in reason, reason  # no CLI flag, one line


def test_csv_just_over_a_small_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "version_0"
    folder.mkdir()
    (folder / "metrics.csv").write_text("epoch,step,val_loss\n" + "0,1,0.5\n" * 20)  # 180 bytes
    report = diagnose_paths([tmp_path], DiagnoseConfig(max_file_bytes=150))
    assert report.diagnoses == []
    [(path, reason)] = report.errors
    assert path == "version_0" and "180 bytes" in reason and "150 bytes" in reason
    _limit_reason(reason, "metrics.csv")
    assert diagnose_paths([tmp_path], DiagnoseConfig(max_file_bytes=180)).errors == []


def test_sparse_2gb_tensorboard_file_is_refused_by_default(tmp_path: Path) -> None:
    _sparse_event_file(tmp_path, 2 * GIB)
    runs, errors = read_runs([tmp_path])
    assert runs == [] and len(errors) == 1
    _limit_reason(errors[0].reason, EVENTS)
    assert "2.0 GiB" in errors[0].reason and "1.0 GiB" in errors[0].reason


def test_sparse_2gb_tensorboard_file_with_raised_limit_reads_in_bounded_memory(
    tmp_path: Path,
) -> None:
    _sparse_event_file(tmp_path, 2 * GIB)
    code = (
        "from lightreg.diagnose.readers import read_runs\n"
        f"runs, errors = read_runs([{str(tmp_path)!r}], max_file_bytes=4 << 30)\n"
        "print(runs[0].series, runs[0].warnings, errors)\n"
        # VmHWM is this process's own peak; ru_maxrss would carry the forking pytest's across exec
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "print(status.split()[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    shown, peak_kib = done.stdout.splitlines()
    assert "{'val_loss': {1: 0.5}}" in shown and "bad length CRC in record 1" in shown, shown
    assert int(peak_kib) < 200 * 1024


def test_absurd_record_length_stops_the_read_without_allocating_it(tmp_path: Path) -> None:
    head = struct.pack("<Q", 1 << 40)  # 1 TiB record, its length CRC right
    bogus = head + struct.pack("<I", masked_crc32c(head)) + b"\x00" * 64
    good = [_record(_scalar_event("val_loss", s, s / 10)) for s in range(3)]
    (tmp_path / EVENTS).write_bytes(b"".join(good) + bogus)
    [run], errors = read_runs([tmp_path])
    assert errors == [] and run.series == {"val_loss": pytest.approx({0: 0, 1: 0.1, 2: 0.2})}
    assert run.warnings == [
        "record 3 claims 1,099,511,627,776 bytes, more than the 64 left in the file: stopped there",
        "no epoch tag: steps read as epochs",
    ]


def test_records_split_across_read_chunks_are_all_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightreg.diagnose.readers import tfrecord

    monkeypatch.setattr(tfrecord, "CHUNK_BYTES", 50)  # shorter than one record
    data = b"".join(_record(_scalar_event("val_loss", s, s / 10)) for s in range(40))
    (tmp_path / EVENTS).write_bytes(data + data[:7])
    [run], errors = read_runs([tmp_path])
    assert errors == [] and len(run.series["val_loss"]) == 40
    assert run.warnings == [
        "truncated tail: last 7 bytes ignored",
        "no epoch tag: steps read as epochs",
    ]


def test_a_record_longer_than_any_scalar_event_is_skipped_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightreg.diagnose.readers import tfrecord

    monkeypatch.setattr(tfrecord, "CHUNK_BYTES", 64)
    monkeypatch.setattr(tfrecord, "MAX_RECORD_BYTES", 40)
    small = [_record(_scalar_event("val_loss", s, s / 10)) for s in range(3)]
    big = _record(b"\x09" + bytes(99))  # 100 bytes: an image, say
    (tmp_path / EVENTS).write_bytes(small[0] + big + small[1] + small[2])
    [run], errors = read_runs([tmp_path])
    assert errors == [] and run.series == {"val_loss": pytest.approx({0: 0, 1: 0.1, 2: 0.2})}
    assert run.warnings[0] == "record 1 is 100 bytes, longer than any scalar event: skipped"


def _mlflow(root: Path, metrics: dict[str, str], params: dict[str, str]) -> Path:
    run_dir = root / "0" / "abc"
    for folder, files in (("metrics", metrics), ("params", params)):
        (run_dir / folder).mkdir(parents=True)
        for key, text in files.items():
            (run_dir / folder / key).write_text(text)
    return run_dir


def test_mlflow_metric_over_limit_and_huge_param_are_refused(tmp_path: Path) -> None:
    run_dir = _mlflow(tmp_path, {"val_loss": "1 0.9 0\n2 0.8 1\n"}, {"lr": "0.1"})
    with (run_dir / "params" / "blob").open("wb") as handle:
        handle.truncate(2 * GIB)  # sparse
    with (run_dir / "metrics" / "train_loss").open("wb") as handle:
        handle.truncate(2 * GIB)
    [run], errors = read_runs([tmp_path])
    assert errors == [] and run.series == {"val_loss": {0: 0.9, 1: 0.8}}
    assert run.config == {"lr": "0.1"}
    [metric_note] = [w for w in run.warnings if "train_loss" in w]
    _limit_reason(metric_note, "train_loss")
    [param_note] = [w for w in run.warnings if "blob" in w]
    assert "2.0 GiB" in param_note and "64.0 KiB" in param_note and "\n" not in param_note


def test_mlflow_deeply_nested_meta_yaml_costs_one_line_not_the_run(tmp_path: Path) -> None:
    run_dir = _mlflow(tmp_path, {"val_loss": "1 0.9 0\n"}, {})
    (run_dir / "meta.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    [run], errors = read_runs([tmp_path])
    assert errors == [] and run.series == {"val_loss": {0: 0.9}}
    assert len(run.warnings) == 2 and "meta.yaml" in run.warnings[1], run.warnings


def _whole_file_lightning_csv(path: Path) -> tuple[dict, dict]:
    """The reading rule before streaming: the whole table, points grouped, then split."""
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    header = [name.strip() for name in rows[0]]
    points: dict[str, list] = defaultdict(list)
    epoch_of_step: dict[int, int] = {}
    for index, row in enumerate(r for r in rows[1:] if len(r) == len(header)):
        cells = dict(zip(header, row, strict=True))
        epoch, step = to_float(cells.get("epoch", "")), to_float(cells.get("step", ""))
        step_int = int(step) if step is not None and math.isfinite(step) else index
        epoch_int = int(epoch) if epoch is not None and math.isfinite(epoch) else None
        if epoch_int is not None:
            epoch_of_step[step_int] = epoch_int
        for name, cell in cells.items():
            if name not in IGNORED and name and (value := to_float(cell)) is not None:
                points[name].append((step_int, epoch_int, value))
    out_series, out_steps = {}, {}
    for name, named in points.items():
        epochs, steps = split_points(name, named)
        if epochs is not None:
            out_series[name] = epochs
        if steps is not None:
            out_steps[name] = steps
    steps = sorted({step for points in out_steps.values() for step in points})
    if epoch_mapping := epochs_at_steps(steps, epoch_of_step):
        out_steps["epoch"] = epoch_mapping
    return out_series, out_steps


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@pytest.mark.parametrize("version", ["version_0", "version_1"])
def test_streaming_csv_gives_the_same_run_as_reading_the_whole_file(version: str) -> None:
    path = FIXTURES / "lightning_csv" / version / "metrics.csv"
    [run], _ = read_runs([path.parent])
    assert _same(run.series, _whole_file_lightning_csv(path)[0])
    assert _same(run.step_series, _whole_file_lightning_csv(path)[1])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 4)),
            st.integers(0, 30),
            st.one_of(st.none(), st.floats(-5, 5)),
            st.one_of(st.none(), st.floats(-5, 5)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_streaming_csv_matches_whole_file_reading_on_random_tables(
    tmp_path: Path, rows: list[tuple]
) -> None:
    def cell(value: object) -> str:
        return "" if value is None else repr(value)

    lines = ["epoch,step,train_loss,val_loss", *(",".join(map(cell, row)) for row in rows)]
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(lines) + "\n")
    runs, _ = read_runs([path])
    expected_series, expected_steps = _whole_file_lightning_csv(path)
    if not expected_series and not expected_steps:
        assert runs == []
        return
    assert _same(runs[0].series, expected_series) and _same(runs[0].step_series, expected_steps)


def test_per_step_values_past_the_cap_are_thinned_evenly_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series, "MAX_STEP_POINTS", 8)
    lines = ["epoch,step,train_loss_step,val_loss"]
    for step in range(100):
        lines.append(f"{step // 25},{step},{step // 25 + 1},")
    lines += [f"{epoch},{epoch * 25 + 24},,{1 / (epoch + 1)}" for epoch in range(4)]
    (tmp_path / "metrics.csv").write_text("\n".join(lines) + "\n")
    [run], _ = read_runs([tmp_path])
    assert run.series == {"val_loss": {0: 1.0, 1: 0.5, 2: 1 / 3, 3: 0.25}}  # epoch values exact
    kept = run.step_series["train_loss_step"]
    assert sorted(kept) == list(range(0, 100, 8)) and len(kept) < 16
    assert {run.step_series["epoch"][s] for s in kept} == {0, 1, 2, 3}
    assert run.warnings == ["'train_loss_step': 100 per-step values, 1 in 8 kept"]


def test_symlinked_run_folders_inside_the_root_are_followed_once(tmp_path: Path) -> None:
    for folder in ("lightning_logs/version_0", ".store/version_7"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "metrics.csv").write_text("epoch,step,val_loss\n0,1,0.5\n")
    (tmp_path / "best").symlink_to(tmp_path / "lightning_logs" / "version_0")  # read already
    (tmp_path / "shown").symlink_to(tmp_path / ".store" / "version_7")  # hidden: read via link
    (tmp_path / "lightning_logs" / "loop").symlink_to(tmp_path)
    runs, errors = read_runs([tmp_path])
    assert [r.path for r in runs] == ["lightning_logs/version_0", "shown"] and errors == []


def test_symlinked_run_folder_outside_the_root_is_reported_not_skipped_silently(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "elsewhere" / "version_0"
    outside.mkdir(parents=True)
    (outside / "metrics.csv").write_text("epoch,step,val_loss\n0,1,0.5\n")
    root = tmp_path / "logs"
    root.mkdir()
    (root / "run").symlink_to(outside, target_is_directory=True)
    report = diagnose_paths([root])
    [(path, [reason])] = report.empty_paths
    assert path == str(root) and "outside" in reason and str(outside.resolve()) in reason
    assert report.errors == [("run", reason)]


def test_diagnose_config_refuses_a_non_positive_limit() -> None:
    with pytest.raises(ValueError, match="max_file_bytes"):
        DiagnoseConfig(max_file_bytes=0)


def test_the_cli_names_its_own_option_and_reads_past_a_raised_limit(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lightreg.cli.app import app

    run = tmp_path / "version_0"
    run.mkdir()
    rows = ["epoch,step,train_loss,val_loss"] + [
        f"{e},{e},{1 / (e + 1)},{1 / (e + 1) + 0.1}" for e in range(2000)
    ]
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    size_mb = (run / "metrics.csv").stat().st_size / 2**20
    small = CliRunner().invoke(app, ["diagnose", str(run), "--max-file-mb", f"{size_mb / 2}"])
    assert small.exit_code == 2, small.output
    assert "limit: use --max-file-mb to read it" in small.output.replace("\n", " ")
    assert "DiagnoseConfig" not in small.output
    enough = CliRunner().invoke(app, ["diagnose", str(run), "--max-file-mb", f"{size_mb * 2}"])
    assert enough.exit_code == 0, enough.output
