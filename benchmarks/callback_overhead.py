"""Benchmark: lightreg's regularization callbacks against the same regularization written inline.

A fixed small CNN (2 conv + linear, 1x16x16 random inputs) trains for the same number of steps
with a real Trainer on CPU (no logger, no progress bar), three ways:

1. ``lightreg``: ``WeightPenalty(l1, l2)`` + ``MaxNorm`` (Linear and Conv2d) +
   ``EarlyStopping(restore_best_weights=True)`` on an unmodified module;
2. ``inline``: the penalty added to the loss in ``training_step``, max-norm as a Python loop over
   modules in ``on_train_batch_end`` (the chapter's manual implementation), Lightning's
   ``EarlyStopping`` plus a hand-written best-weights copy;
3. ``none``: no regularization.

The training loop alone is timed (``on_train_start`` to ``on_train_end``); the variants run
interleaved, in rotating order, and the median of each is reported with the ratios
lightreg/inline (target <= 1.05) and lightreg/none.

Run::

    .venv/bin/python benchmarks/callback_overhead.py
    .venv/bin/python benchmarks/callback_overhead.py --repeats 9 --epochs 6 --threads 2
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightreg.callbacks import EarlyStopping, MaxNorm, WeightPenalty

L1, L2, MAX_NORM = 1e-5, 1e-4, 3.0


class SmallCNN(pl.LightningModule):
    """Conv(1->8)-pool-Conv(8->16)-pool-Linear(256->10), plain SGD; no regularization."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


class InlineCNN(SmallCNN):
    """The same regularization as a user writes it by hand in the LightningModule."""

    def __init__(self) -> None:
        super().__init__()
        self.best_loss = float("inf")
        self.best_state: dict[str, torch.Tensor] | None = None

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        weights = [p for p in self.parameters() if p.dim() >= 2]
        loss = loss + L1 * sum(w.abs().sum() for w in weights)
        return loss + L2 * sum(w.pow(2).sum() for w in weights)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    w = module.weight
                    norm = w.norm(2, dim=tuple(range(1, w.dim())), keepdim=True)
                    w.mul_(torch.clamp(norm, 0, MAX_NORM) / (norm + 1e-7))

    def on_train_epoch_end(self):
        loss = float(self.trainer.callback_metrics["val_loss"])
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_state = copy.deepcopy(self.state_dict())

    def on_train_end(self):
        if self.best_state is not None:
            self.load_state_dict(self.best_state)


class LoopTimer(Callback):
    """Wall time of the training loop, without Trainer set-up and tear-down."""

    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


def lightreg_run() -> tuple[pl.LightningModule, list[Callback]]:
    return SmallCNN(), [
        WeightPenalty(l1=L1, l2=L2),
        MaxNorm(MAX_NORM, modules=[nn.Linear, nn.Conv2d]),
        EarlyStopping("val_loss", patience=1000, restore_best_weights=True),
    ]


def inline_run() -> tuple[pl.LightningModule, list[Callback]]:
    return InlineCNN(), [LightningEarlyStopping("val_loss", patience=1000)]


def none_run() -> tuple[pl.LightningModule, list[Callback]]:
    return SmallCNN(), []


VARIANTS: dict[str, Callable[[], tuple[pl.LightningModule, list[Callback]]]] = {
    "lightreg": lightreg_run,
    "inline": inline_run,
    "none": none_run,
}


def time_fit(make: Callable, train: DataLoader, val: DataLoader, epochs: int) -> float:
    model, callbacks = make()
    timer = LoopTimer()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        callbacks=[*callbacks, timer],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, train, val)
    return timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batches", type=int, default=50, help="training batches per epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    n = args.batches * args.batch_size
    x, y = (
        torch.randn(n, 1, 16, 16, generator=generator),
        torch.randint(10, (n,), generator=generator),
    )
    train = DataLoader(TensorDataset(x, y), batch_size=args.batch_size)
    val = DataLoader(
        TensorDataset(x[: 2 * args.batch_size], y[: 2 * args.batch_size]),
        batch_size=args.batch_size,
    )

    time_fit(none_run, train, val, 1)  # warm-up: imports, allocator, first-call costs
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            times[name].append(time_fit(VARIANTS[name], train, val, args.epochs))

    steps = args.epochs * args.batches
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{steps} steps of batch {args.batch_size}, {args.repeats} interleaved repeats, {args.threads} thread(s)"
    )
    for name, median in medians.items():
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(
            f"  {name:9s} median {median:.3f} s  ({1e3 * median / steps:.2f} ms/step, range {spread})"
        )
    print(f"  lightreg/inline = {medians['lightreg'] / medians['inline']:.3f}  (target <= 1.05)")
    print(f"  lightreg/none   = {medians['lightreg'] / medians['none']:.3f}")


if __name__ == "__main__":
    main()
