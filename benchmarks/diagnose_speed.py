"""How fast ``lightreg diagnose`` is: over many runs, and to start on one.

(a) Writes 1,000 CSVLogger-style runs of 100 epochs (train and validation on separate rows,
    a step-level loss every 10 steps, ``hparams.yaml``) into a temp folder, then times the
    engine (``diagnose_paths``) and the CLI (``python -m lightreg diagnose DIR --json``) over all.
(c) Times ``python -m lightreg diagnose RUN`` on one small run against
    ``python -c "import typer, rich"`` (median of several), and prints the ratio (target <= 3x);
    over target, it prints the slowest imports (``-X importtime``).

Run from the repository root::

    .venv/bin/python benchmarks/diagnose_speed.py [--runs 1000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lightreg.diagnose.engine import diagnose_paths

HPARAMS = "hidden: 128\ndropout: 0.2\nlr: 0.001\nweight_decay: 0.0001\nbatch_size: 64\n"


DIAGNOSE_ALONE = (
    "import typer; from lightreg.cli.diagnose import diagnose; "
    "app = typer.Typer(add_completion=False); app.command()(diagnose); app()"
)


def write_run(folder: Path, rng: random.Random, epochs: int = 100) -> None:
    """One Lightning CSVLogger folder with a plausible (random) learning curve."""
    folder.mkdir(parents=True)
    turn = rng.randint(10, 120)  # epoch where validation loss turns up (past 100: never)
    lines = ["epoch,lr-Adam,step,train_loss_epoch,train_loss_step,val_acc,val_loss"]
    step = 0
    for epoch in range(epochs):
        train = 2.3 * math.exp(-epoch / rng.uniform(5, 30)) + 0.05 + rng.gauss(0, 0.01)
        val = 2.3 * math.exp(-epoch / 20) + 0.3 + 0.01 * max(0, epoch - turn) + rng.gauss(0, 0.01)
        for _ in range(5):
            step += 10
            lines.append(f"{epoch},,{step - 1},,{train + rng.gauss(0, 0.05):.6f},,")
        lines.append(f",0.001,{step - 1},,,,")
        lines.append(f"{epoch},,{step - 1},,,{0.9 - val / 5:.6f},{val:.6f}")
        lines.append(f"{epoch},,{step - 1},{train:.6f},,,")
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    (folder / "hparams.yaml").write_text(HPARAMS)


def median_seconds(command: list[str], repeats: int) -> float:
    """Median wall time of ``command`` (output discarded)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def slowest_imports(command: list[str], top: int = 12) -> list[str]:
    """The ``top`` imports by cumulative time under ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]], capture_output=True, text=True
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return [f"{us / 1000:8.1f} ms {name}" for us, name in sorted(rows, reverse=True)[:top]]


def bench_many(runs: int) -> None:
    """Part (a): many runs through the engine and through the CLI."""
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(runs):
            write_run(root / "lightning_logs" / f"version_{i}", rng)
        start = time.perf_counter()
        report = diagnose_paths([root])
        engine = time.perf_counter() - start
        assert len(report.diagnoses) == runs, (len(report.diagnoses), report.errors[:3])
        verdicts = sorted({d.verdict for d in report.diagnoses})
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "lightreg", "diagnose", str(root), "--json"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cli = time.perf_counter() - start
    print(f"(a) {runs} runs x 100 epochs, verdicts seen: {', '.join(verdicts)}")
    print(f"    engine: {engine:.2f} s total, {1000 * engine / runs:.2f} ms/run")
    print(f"    CLI --json (subprocess): {cli:.2f} s total, {1000 * cli / runs:.2f} ms/run")


def bench_startup(repeats: int) -> None:
    """Part (c): one small run through the CLI against importing typer and rich."""
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "version_0"
        write_run(run, rng, epochs=20)
        command = [sys.executable, "-m", "lightreg", "diagnose", str(run)]
        diagnose = median_seconds(command, repeats)
        baseline = median_seconds([sys.executable, "-c", "import typer, rich"], repeats)
        alone = median_seconds([sys.executable, "-c", DIAGNOSE_ALONE, str(run)], repeats)
        ratio = diagnose / baseline
        print(f"(c) lightreg diagnose RUN: {1000 * diagnose:.0f} ms (median of {repeats})")
        print(f"    python -c 'import typer, rich': {1000 * baseline:.0f} ms")
        print(f"    ratio: {ratio:.2f}x (target <= 3x)")
        print(
            f"    the diagnose command alone (no other command modules imported): "
            f"{1000 * alone:.0f} ms, {alone / baseline:.2f}x"
        )
        if ratio > 3:
            print("    over target; slowest imports (cumulative):")
            for line in slowest_imports(command):
                print(f"    {line}")


def main() -> None:
    """Parse arguments and run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    bench_many(args.runs)
    bench_startup(args.repeats)


if __name__ == "__main__":
    main()
