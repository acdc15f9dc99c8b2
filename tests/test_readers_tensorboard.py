"""TensorBoard reader: real Lightning/torch event files, hand-made records for every quirk, fuzzing."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightreg.diagnose.readers import ReadError, read_runs
from lightreg.diagnose.readers.crc32c import masked_crc32c

FIXTURES = Path(__file__).parent / "fixtures" / "readers"
EVENTS = "events.out.tfevents.1700000000.host.1.0"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(
    tag: str, step: int, value: float, layout: str = "simple", metadata: bool = False
) -> bytes:
    """An Event with one scalar summary value, in one of the layouts writers use."""
    body = _field(1, tag.encode())
    if layout == "simple":
        body += b"\x15" + struct.pack("<f", value)
    elif layout == "float_tensor":
        body += _field(8, b"\x08\x01" + _field(2, b"") + _field(5, struct.pack("<f", value)))
    elif layout == "double_tensor":
        body += _field(8, b"\x08\x02" + _field(6, struct.pack("<d", value)))
    elif layout == "content_tensor":
        body += _field(8, b"\x08\x01" + _field(4, struct.pack("<f", value)))
    if metadata:
        body += _field(9, _field(1, _field(1, b"scalars")))
    step_field = b"\x10" + _varint(step) if step else b""
    return b"\x09" + struct.pack("<d", 1.7e9 + step) + step_field + _field(5, _field(1, body))


def _record(data: bytes) -> bytes:
    head = struct.pack("<Q", len(data))
    return (
        head
        + struct.pack("<I", masked_crc32c(head))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def _file(events: list[bytes]) -> bytes:
    version = b"\x09" + struct.pack("<d", 1.7e9) + _field(3, b"brain.Event:2")
    return b"".join(_record(e) for e in [version, *events])


def _lightning_like(epochs: int = 3, layout: str = "simple") -> list[bytes]:
    """Per-step loss + epoch tag every 2 steps, epoch-end val_loss: Lightning's pattern."""
    events = [_event("hp_metric", 0, -1.0)]
    for epoch in range(epochs):
        for step in range(epoch * 4 + 1, epoch * 4 + 5, 2):
            events += [
                _event("train_loss_step", step, 1.0 / step, layout),
                _event("epoch", step, epoch),
            ]
        events += [
            _event("val_loss", epoch * 4 + 3, 0.5 + epoch, layout),
            _event("epoch", epoch * 4 + 3, epoch),
        ]
    return events


def test_real_lightning_tensorboard_log_matches_its_csv_twin() -> None:
    runs, errors = read_runs([FIXTURES / "lightning_tb", FIXTURES / "lightning_csv" / "version_0"])
    assert errors == []
    tb, csv = runs
    assert (tb.path, tb.format, tb.warnings) == ("version_0", "tensorboard", [])
    assert tb.series == csv.series  # both hold the same float32 values
    assert tb.step_series["train_loss_step"] == pytest.approx(csv.step_series["train_loss_step"])
    assert tb.step_series["lr-SGD"] == pytest.approx({0: 0.05, 6: 0.05, 12: 0.05, 18: 0.05})
    steps = csv.step_series["train_loss_step"]  # per-step tags carry their epochs
    assert {s: tb.step_series["epoch"][s] for s in steps} == {
        s: csv.step_series["epoch"][s] for s in steps
    }
    assert "hp_metric" not in tb.series and "epoch" not in tb.series
    assert tb.config == {"lr": 0.05, "widths": [4, 1]} and tb.config_source == "hparams"


def test_real_new_style_tensor_scalars_read_steps_as_epochs() -> None:
    run = read_runs([FIXTURES / "tb_new_style"])[0][0]
    assert run.series["loss"] == pytest.approx({0: 1.0, 1: 0.5, 2: 1 / 3})
    assert run.series["val/loss"] == {0: 1.5, 1: 0.75, 2: 0.5}
    assert run.warnings == ["no epoch tag: steps read as epochs"]


@pytest.mark.parametrize("layout", ["simple", "float_tensor", "double_tensor", "content_tensor"])
def test_scalar_layouts_and_epoch_mapping_agree_with_tensorboard(
    tmp_path: Path, layout: str
) -> None:
    events = _lightning_like(layout=layout)
    events[1] = _event("train_loss_step", 1, 1.0, layout, metadata=True)
    (tmp_path / EVENTS).write_bytes(_file(events))
    run = read_runs([tmp_path])[0][0]
    assert run.series == {"val_loss": {0: 0.5, 1: 1.5, 2: 2.5}}
    assert run.step_series["train_loss_step"] == pytest.approx(
        {s: 1.0 / s for s in (1, 3, 5, 7, 9, 11)}
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / EVENTS), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    if layout == "simple":  # tensorboard reads our framing and CRCs
        assert [e.value for e in acc.Scalars("val_loss")] == [0.5, 1.5, 2.5]
    else:
        assert len(acc.Tensors("val_loss")) == 3


def test_several_files_merge_and_value_belongs_to_latest_epoch(tmp_path: Path) -> None:
    train = [_event("epoch", s, e) for e, s in enumerate((10, 20, 30))]
    train += [_event("val_loss", s, v) for s, v in ((10, 2.0), (25, 1.0), (30, 0.5))]  # 25: epoch 1
    train += [_event("lr", s, 0.1) for s in (5, 15)]  # never at an epoch step: stays per-step
    (tmp_path / EVENTS).write_bytes(_file(train))
    (tmp_path / EVENTS.replace(".0", ".1")).write_bytes(_file([_event("test_loss", 30, 0.25)]))
    run = read_runs([tmp_path])[0][0]
    assert run.series == {"val_loss": {0: 2.0, 1: 1.0, 2: 0.5}, "test_loss": {2: 0.25}}
    assert run.step_series["lr"] == pytest.approx({5: 0.1, 15: 0.1})
    assert run.step_series["epoch"] == {5: 0, 15: 1}  # each step: the epoch ending at or after it


def test_bad_crc_record_is_skipped_and_truncated_tail_kept_before(tmp_path: Path) -> None:
    data = bytearray(_file([_event("val_loss", s, s / 10) for s in range(5)]))
    rec_len = len(_record(_event("val_loss", 1, 0.1)))
    bad_at = len(_record(_file([])[12:-4])) + rec_len + 14  # inside record 2 (step 1)
    data[bad_at] ^= 0xFF
    (tmp_path / EVENTS).write_bytes(bytes(data) + data[-30:-9])
    run = read_runs([tmp_path])[0][0]
    assert run.series["val_loss"] == pytest.approx({0: 0.0, 2: 0.2, 3: 0.3, 4: 0.4})  # step 1 lost
    assert run.warnings[:2] == [
        "truncated tail: last 21 bytes ignored",
        "bad CRC in record 2: skipped",
    ]


def test_bad_length_crc_stops_reading_and_keeps_what_came_before(tmp_path: Path) -> None:
    events = [_event("val_loss", s, float(s)) for s in range(4)]
    data = bytearray(_file(events))
    data[len(_file(events[:2])) + 9] ^= 0x01  # the length CRC of record 3
    (tmp_path / EVENTS).write_bytes(bytes(data))
    run = read_runs([tmp_path])[0][0]
    assert run.series == {"val_loss": {0: 0.0, 1: 1.0}}
    assert run.warnings[0] == "bad length CRC in record 3: stopped there"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"hello, not an event file", "not a TensorBoard event file: no valid first record"),
        (_file([]), "no scalar values"),
    ],
)
def test_unusable_event_files_are_errors(tmp_path: Path, content: bytes, reason: str) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / EVENTS).write_bytes(content)
    assert read_runs([tmp_path]) == ([], [ReadError("run", reason)])


def test_event_file_without_the_usual_name_is_sniffed_by_structure(tmp_path: Path) -> None:
    (tmp_path / "mylog").write_bytes(
        _file([_event("val_loss", 0, 1.0), _event("val_loss", 1, 0.5)])
    )
    (tmp_path / "notes").write_bytes(b"plain words, no records")
    run = read_runs([tmp_path])[0][0]
    assert run.series == {"val_loss": {0: 1.0, 1: 0.5}} and run.path == "."


def test_large_steps_long_tags_and_nan_values(tmp_path: Path) -> None:
    tag = "very/" * 30 + "loss"
    events = [
        _event("epoch", 2**40, 0),
        _event(tag, 2**40, math.nan),
        _event("val_loss", 2**40, math.inf),
    ]
    (tmp_path / EVENTS).write_bytes(_file(events))
    run = read_runs([tmp_path])[0][0]
    assert math.isnan(run.series[tag][0]) and run.series["val_loss"] == {0: math.inf}


_VALID = _file(_lightning_like(epochs=2))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.builds(lambda cut: _VALID[:cut], st.integers(0, len(_VALID))),
        st.builds(
            lambda flips: bytes(b ^ dict(flips).get(i, 0) for i, b in enumerate(_VALID)),
            st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(1, 255)), max_size=4),
        ),
    )
)
def test_fuzz_tensorboard_reader_never_raises(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / EVENTS
    path.write_bytes(data)
    runs, errors = read_runs([tmp_path, path])
    assert len(runs) + len(errors) == 2
    assert all(isinstance(e, ReadError) and e.reason for e in errors)
