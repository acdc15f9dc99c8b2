"""Peak memory and time of the diagnose log readers on huge files, beside the readers before streaming.

Cases, each read by ``read_runs`` in its own subprocess (peak memory: the child's ``VmHWM``):

Wall and CPU time are both shown: on a shared machine the CPU time is the steadier measure.

(a) a Lightning ``metrics.csv`` of ``--rows`` rows (``epoch,step,train_loss,val_loss``: a per-step
    training loss, one validation row per epoch), read by today's readers and by the readers of
    ``--baseline`` (a git revision, materialized into a temp folder); targets: under 1 GiB, at
    least 3x faster. The two runs' validation series must be equal and their per-epoch training
    means close (today's reader keeps an even sample of the per-step values).
(b) a sparse TensorBoard file of ``--tb-bytes`` (one valid record, then zeros; it costs no disk),
    with the default size limit (refused) and with the limit raised past it (read); target: refused
    or read in under 200 MiB. With ``--old-tb-bytes`` (0: skipped), the baseline readers read a
    smaller such file too.

Run from the repository root (the full size takes minutes and about 5 GB for the baseline)::

    .venv/bin/python benchmarks/reader_memory.py [--rows 10000000] [--tb-bytes 2147483648]
    .venv/bin/python benchmarks/reader_memory.py --rows 200000 --tb-bytes 268435456  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from lightreg.diagnose.readers.crc32c import masked_crc32c

BASELINE = "09e96be902ebb63c20a6331b0f21f780da72cf34"
"""The last revision whose readers load whole files."""
ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20

CHILD = r"""
import json, sys, time
from lightreg.diagnose.metrics import per_epoch_mean
from lightreg.diagnose.readers import read_runs

path, limit = sys.argv[1], int(sys.argv[2])
start, cpu = time.perf_counter(), time.process_time()
runs, errors = read_runs([path], **({"max_file_bytes": limit} if limit else {}))
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
out = {"seconds": seconds, "cpu": cpu, "peak_mib": int(status) / 1024, "errors": [e.reason for e in errors]}
if runs:
    run = runs[0]
    out["val_loss"] = run.series.get("val_loss")
    out["train_mean"] = per_epoch_mean(run, "train_loss") if "train_loss" in run.step_series else None
    out["series"] = {name: len(points) for name, points in run.series.items()}
    out["warnings"] = run.warnings
print(json.dumps(out))
"""


def write_csv(path: Path, rows: int, epochs: int) -> None:
    """A Lightning CSVLogger table: per-step ``train_loss`` rows, one ``val_loss`` row per epoch."""
    per_epoch = max(rows // epochs, 2)
    step = 0
    with path.open("w") as handle:
        handle.write("epoch,step,train_loss,val_loss\n")
        for epoch in range(epochs):
            base = 2.0 / (1 + epoch)
            lines = [
                f"{epoch},{s},{base + (s * 7919 % 1000) / 10000:.4f},\n"
                for s in range(step, step + per_epoch - 1)
            ]
            step += per_epoch - 1
            lines.append(f"{epoch},{step - 1},,{base + 0.1 + 0.001 * epoch:.4f}\n")
            handle.write("".join(lines))


def _record(data: bytes) -> bytes:
    head = struct.pack("<Q", len(data))
    crc = struct.pack("<I", masked_crc32c(head))
    return head + crc + data + struct.pack("<I", masked_crc32c(data))


def write_sparse_events(path: Path, size: int) -> None:
    """One valid scalar event (``val_loss`` = 0.5 at step 1), then zeros up to ``size`` bytes."""
    value = b"\x0a\x08val_loss\x15" + struct.pack("<f", 0.5)
    summary = b"\x0a" + bytes([len(value)]) + value
    event = b"\x09" + struct.pack("<d", 1.7e9) + b"\x10\x01\x2a" + bytes([len(summary)]) + summary
    with path.open("wb") as handle:
        handle.write(_record(event))
        handle.truncate(size)


def materialize(revision: str, into: Path) -> Path:
    """The ``lightreg`` package of ``revision``, unpacked under ``into`` (for ``PYTHONPATH``)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "lightreg"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(path: Path, limit: int, pythonpath: Path) -> dict:
    """Read ``path`` in a child process whose ``lightreg`` comes from ``pythonpath``."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(limit)],
        env=env,
        cwd=path.parent,  # not the repository root, which would shadow PYTHONPATH
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"failed": done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]}
    return json.loads(done.stdout)


def _line(label: str, result: dict) -> str:
    if "failed" in result:
        return f"    {label:<28} failed: {result['failed']}"
    what = result["errors"][0][:90] if result["errors"] else f"series {result.get('series')}"
    return (
        f"    {label:<24} {result['seconds']:7.2f} s wall {result['cpu']:7.2f} s CPU  "
        f"peak {result['peak_mib']:8.1f} MiB  {what}"
    )


def bench_csv(tmp: Path, rows: int, epochs: int, old: Path | None) -> None:
    """Part (a)."""
    folder = tmp / "csv" / "version_0"
    folder.mkdir(parents=True)
    write_csv(folder / "metrics.csv", rows, epochs)
    size = (folder / "metrics.csv").stat().st_size
    print(f"(a) metrics.csv: {rows:,} rows, {epochs} epochs, {size / MIB:.0f} MiB")
    new = measure(folder, 0, ROOT)
    print(_line("streaming readers", new))
    if old is None:
        return
    before = measure(folder, 0, old)
    print(_line(f"baseline {BASELINE[:7]}", before))
    if "failed" in new or "failed" in before:
        return
    assert new["val_loss"] == before["val_loss"], "validation series differ"
    worst = max(
        abs(new["train_mean"][e] - v) / abs(v) for e, v in before["train_mean"].items() if v
    )
    print(
        f"    ratios: {before['seconds'] / new['seconds']:.1f}x faster in wall time, "
        f"{before['cpu'] / new['cpu']:.1f}x in CPU time (target >= 3x), "
        f"{before['peak_mib'] / new['peak_mib']:.1f}x less memory; peak "
        f"{'under' if new['peak_mib'] < 1024 else 'OVER'} 1 GiB"
    )
    print(f"    val_loss equal; per-epoch train mean within {100 * worst:.3f}% of the full data")


def bench_tensorboard(tmp: Path, size: int, old_size: int, old: Path | None) -> None:
    """Part (b)."""
    folder = tmp / "tb"
    folder.mkdir()
    write_sparse_events(folder / "events.out.tfevents.1700000000.host.1.0", size)
    print(f"(b) sparse event file: {size / MIB:,.0f} MiB (one record, then zeros)")
    refused = measure(folder, 0, ROOT)
    print(_line("default limit", refused))
    read = measure(folder, size + 1, ROOT)
    print(_line("limit raised past it", read))
    peaks = [r["peak_mib"] for r in (refused, read) if "failed" not in r]
    if peaks:
        print(f"    peak {max(peaks):.1f} MiB: {'under' if max(peaks) < 200 else 'OVER'} 200 MiB")
    if old is not None and old_size:
        small = tmp / "tb_old"
        small.mkdir()
        write_sparse_events(small / "events.out.tfevents.1700000000.host.1.0", old_size)
        print(_line(f"baseline, {old_size / MIB:,.0f} MiB file", measure(small, 0, old)))


def main() -> None:
    """Parse arguments and run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--tb-bytes", type=int, default=2 << 30)
    parser.add_argument("--old-tb-bytes", type=int, default=256 << 20)
    parser.add_argument("--baseline", default=BASELINE, help="git revision; '' to skip it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        old = materialize(args.baseline, tmp / "baseline") if args.baseline else None
        bench_csv(tmp, args.rows, args.epochs, old)
        bench_tensorboard(tmp, args.tb_bytes, args.old_tb_bytes, old)


if __name__ == "__main__":
    main()
