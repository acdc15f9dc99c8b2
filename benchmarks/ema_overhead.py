"""Benchmark: a training step with ``EMA(every_n_steps=1)`` against the same step without it.

lightreg's MLP (64 inputs, hidden 256-128 with BatchNorm, 10 classes; the default recipe's
model) trains on random data in batches of 256 with a real Trainer on CPU (no logger, no
progress bar, no validation), twice per repeat: ``plain`` and ``ema`` (``EMA(0.999)``, an
update after every optimizer step). The training loop alone is timed (``on_train_start`` to
``on_train_end``), in CPU time of the process (one thread: what the step costs, whatever
else the machine runs) and in wall time; the two variants run interleaved, in alternating
order, and the medians are compared. Target: ema/plain <= 1.10.

Run::

    .venv/bin/python benchmarks/ema_overhead.py
    .venv/bin/python benchmarks/ema_overhead.py --repeats 15 --batches 100 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from lightreg.callbacks import EMA
from lightreg.models.mlp import MLPClassifier

TARGET = 1.10


class LoopTimer(Callback):
    """CPU and wall time of the training loop, without Trainer set-up and tear-down."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = (time.process_time(), time.perf_counter())

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds = (
            time.process_time() - self.start[0],
            time.perf_counter() - self.start[1],
        )


def time_fit(callbacks: list[Callback], train: DataLoader, epochs: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = MLPClassifier(64, 10, hidden=(256, 128))
    timer = LoopTimer()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        callbacks=[*callbacks, timer],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
    )
    trainer.fit(model, train)
    return timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=50, help="training batches per epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    n = args.batches * args.batch_size
    x, y = torch.randn(n, 64, generator=generator), torch.randint(10, (n,), generator=generator)
    train = DataLoader(TensorDataset(x, y), batch_size=args.batch_size)

    variants = {"plain": list, "ema": lambda: [EMA(0.999)]}
    time_fit([], train, 1)  # warm-up: imports, allocator, first-call costs
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        order = list(variants) if repeat % 2 == 0 else list(variants)[::-1]
        for name in order:
            times[name].append(time_fit(variants[name](), train, args.epochs))

    steps = args.epochs * args.batches

    def median(name: str, clock: int) -> float:
        return statistics.median(seconds[clock] for seconds in times[name])

    plain, ema = median("plain", 0), median("ema", 0)
    wall = median("ema", 1) / median("plain", 1)
    print(
        f"EMA(every_n_steps=1) / plain step, MLP 64-256-128-10 at batch {args.batch_size}, "
        f"{steps} steps x {args.repeats} interleaved repeats, {args.threads} thread(s): "
        f"{ema / plain:.3f}x CPU time ({1e3 * ema / steps:.2f} vs {1e3 * plain / steps:.2f} "
        f"ms/step), {wall:.3f}x wall time; target <= {TARGET:.2f}: "
        f"{'MET' if max(ema / plain, wall) <= TARGET else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
