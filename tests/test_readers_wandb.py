"""W&B run folders: a real offline run written by Lightning's WandbLogger (see ``_wandb`` in
tests/fixtures/make_reader_fixtures.py), read through wandb's own ``Record`` protobuf classes."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from lightreg.diagnose.readers import ReadError, read_runs
from lightreg.diagnose.readers.wandb_run import BLOCK_BYTES, FILE_HEADER, INSTALL

FIXTURES = Path(__file__).parent / "fixtures" / "readers"
RUN = next((FIXTURES / "wandb" / "wandb").glob("offline-run-*"))


def test_real_offline_run_matches_its_csv_twin() -> None:
    runs, errors = read_runs([FIXTURES / "wandb"])
    assert errors == [] and len(runs) == 1
    run = runs[0]
    assert (run.path, run.format) == (f"wandb/{RUN.name}", "wandb")
    twin = read_runs([FIXTURES / "lightning_csv" / "version_0"])[0][0]
    assert run.series == twin.series  # same seed, same fit, same values
    assert run.step_series["train_loss_step"] == pytest.approx(twin.step_series["train_loss_step"])
    steps = run.step_series["train_loss_step"]
    assert {s: run.step_series["epoch"][s] for s in steps} == {
        s: twin.step_series["epoch"][s] for s in steps
    }
    assert run.config == {"lr": 0.05, "widths": [4, 1], "run_name": "sgd-lr0.05"}
    assert run.warnings == []


def test_without_wandb_installed_the_run_is_one_line_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m == "wandb" or m.startswith("wandb.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    assert read_runs([FIXTURES / "wandb"]) == ([], [ReadError(f"wandb/{RUN.name}", INSTALL)])
    assert INSTALL.endswith("pip install 'lightreg[wandb]'")


def _framed(records: list[bytes]) -> bytes:
    """The LevelDB log framing of W&B's writer (32 KiB blocks; FULL/FIRST/MIDDLE/LAST chunks)."""
    out = bytearray(FILE_HEADER)
    for data in records:
        first = True
        while True:
            room = BLOCK_BYTES - len(out) % BLOCK_BYTES
            if room < 7:
                out += bytes(room)
                continue
            piece, data = data[: room - 7], data[room - 7 :]
            kind = (1 if not data else 2) if first else (4 if not data else 3)
            crc = zlib.crc32(piece, zlib.crc32(bytes([kind])))
            out += struct.pack("<IHB", crc, len(piece), kind) + piece
            first = False
            if not data:
                break
    return bytes(out)


def _history(step: int, **values: object) -> bytes:
    from wandb.proto.wandb_internal_pb2 import Record

    record = Record()
    record.history.step.num = step
    for key, value in values.items():
        item = record.history.item.add()
        item.key, item.value_json = key, str(value)
    return record.SerializeToString()


def test_records_across_blocks_and_a_cut_tail(tmp_path: Path) -> None:
    folder = tmp_path / "wandb" / "run-20260101_000000-abc"
    folder.mkdir(parents=True)
    big = "x" * 70_000  # a 70 kB value (not a number): its record spans three blocks
    records = [_history(e, epoch=e, val_loss=1.0 / (e + 1), note=f'"{big}"') for e in range(3)]
    records += [_history(3, epoch=3, val_loss=0.25)]
    data = _framed(records)
    (folder / "run-abc.wandb").write_bytes(data[:-3])  # the last record cut short
    [run], errors = read_runs([tmp_path])
    assert errors == [] and run.path == "wandb/run-20260101_000000-abc"
    assert run.series == {"val_loss": {0: 1.0, 1: 0.5, 2: 1 / 3}}
    assert len(run.warnings) == 1 and run.warnings[0].startswith("bad chunk at byte ")


def test_other_formats_never_import_wandb() -> None:
    code = (
        "import sys; from lightreg.diagnose.readers import read_runs; "
        f"read_runs([{str(FIXTURES / 'lightning_tb')!r}, {str(FIXTURES / 'mlflow_sqlite')!r}]); "
        "print('wandb' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_wandb_log_given_as_the_path_is_its_run(tmp_path: Path) -> None:
    folder = tmp_path / "offline-run-x"
    shutil.copytree(RUN, folder)
    [log] = folder.glob("*.wandb")
    runs, errors = read_runs([log])
    assert errors == [] and [r.path for r in runs] == ["."]
    (folder / log.name).write_bytes(b"not a log at all")
    assert read_runs([tmp_path]) == (
        [],
        [ReadError("offline-run-x", "not a W&B run log: no :W&B header")],
    )
