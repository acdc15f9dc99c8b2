"""Benchmark: read a TensorBoard event file with lightreg vs tensorboard's EventAccumulator.

Writes one event file with over a million scalar events (a per-step ``train_loss_step`` plus
per-epoch ``epoch``, ``train_loss_epoch`` and ``val_loss`` every 1000 steps), checks that tensorboard reads it, then times
both readers on it in the same process and prints the times, the ratio and lightreg's MB/s::

    .venv/bin/python benchmarks/diagnose_speed_tensorboard.py [--steps 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from lightreg.diagnose.readers import read_runs
from lightreg.diagnose.readers.crc32c import crc32c_many, mask_many, masked_crc32c
from lightreg.diagnose.readers.series import thinning_stride

STEPS_PER_EPOCH = 1000


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def scalar_event(tag: str, step: int, value: float, wall_time: float) -> bytes:
    """An Event proto with one ``simple_value``, as torch's ``add_scalar`` writes it."""
    name = tag.encode()
    val = b"\x0a" + _varint(len(name)) + name + b"\x15" + struct.pack("<f", value)
    summary = b"\x0a" + _varint(len(val)) + val
    step_field = b"\x10" + _varint(step) if step else b""
    return (
        b"\x09" + struct.pack("<d", wall_time) + step_field + b"\x2a" + _varint(len(summary))
    ) + summary


def frame(payloads: list[bytes]) -> bytes:
    """TFRecord-frame payloads (length, masked CRC of length, data, masked CRC of data)."""
    lengths = np.array([len(p) for p in payloads], dtype=np.int64)
    heads = np.frombuffer(lengths.astype("<u8").tobytes(), dtype=np.uint8)
    len_crcs = mask_many(
        crc32c_many(heads, np.arange(len(payloads)) * 8, np.full(len(payloads), 8))
    )
    data = b"".join(payloads)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    data_crcs = mask_many(crc32c_many(np.frombuffer(data, dtype=np.uint8), starts, lengths))
    out = bytearray()
    for payload, length, lcrc, dcrc in zip(
        payloads, lengths.tolist(), len_crcs.tolist(), data_crcs.tolist(), strict=True
    ):
        out += struct.pack("<QI", length, lcrc) + payload + struct.pack("<I", dcrc)
    return bytes(out)


def write_events(folder: Path, steps: int) -> Path:
    """Write ``events.out.tfevents.*`` with ``steps`` per-step events plus per-epoch ones."""
    t0 = 1_700_000_000.0
    version = b"\x09" + struct.pack("<d", t0) + b"\x1a\x0dbrain.Event:2"
    payloads = [version]
    for step in range(steps):
        epoch = step // STEPS_PER_EPOCH
        payloads.append(scalar_event("train_loss_step", step, 1.0 / (1 + step), t0 + step))
        if (step + 1) % STEPS_PER_EPOCH == 0:
            loss = math.exp(-epoch / 50)
            per_epoch = (("epoch", float(epoch)), ("train_loss_epoch", loss), ("val_loss", loss))
            for tag, value in per_epoch:
                payloads.append(scalar_event(tag, step, value, t0 + step))
    path = folder / "events.out.tfevents.1700000000.bench.1.0"
    path.write_bytes(frame(payloads))
    assert masked_crc32c(path.read_bytes()[:8]) == struct.unpack_from("<I", path.read_bytes(), 8)[0]
    return path


def main() -> None:
    """Write the file, time both readers, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="per-step events")
    parser.add_argument("--keep", type=Path, help="write the file here instead of a temp folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="lightreg-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    path = write_events(folder, args.steps)
    size_mb = path.stat().st_size / 1e6
    print(f"wrote {path.name}: {size_mb:.1f} MB in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    runs, errors = read_runs([folder])
    ours = time.perf_counter() - t
    assert not errors and len(runs) == 1, (errors, runs)
    run = runs[0]
    events = sum(map(len, run.series.values())) + sum(
        len(points) for name, points in run.step_series.items() if name != "epoch"
    )

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    t = time.perf_counter()
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    theirs = time.perf_counter() - t
    tb_events = sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])
    tb_val = {e.step // STEPS_PER_EPOCH: e.value for e in acc.Scalars("val_loss")}
    assert tb_val == run.series["val_loss"], "lightreg and tensorboard disagree on val_loss"
    steps = len(acc.Scalars("train_loss_step"))  # lightreg keeps an even sample of per-step values
    assert -(-steps // thinning_stride(steps)) == len(run.step_series["train_loss_step"])

    print(f"scalar events: tensorboard {tb_events:,}, lightreg kept {events:,} (without epoch)")
    print(f"lightreg read_runs:             {ours:7.2f} s  ({size_mb / ours:6.1f} MB/s)")
    print(f"tensorboard EventAccumulator:   {theirs:7.2f} s  ({size_mb / theirs:6.1f} MB/s)")
    print(f"speed-up: {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
