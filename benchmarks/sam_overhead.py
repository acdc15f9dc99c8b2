"""Benchmark: a SAM step against a plain step, side by side in one run.

SAM (``lightreg.optim.SAM``) runs the forward and backward pass twice per optimizer step, so a
step should cost about 2x a plain one; the target is at most 2.1x. The model is lightreg's MLP
(``MLPClassifier``, hidden ``[256, 128]``, BatchNorm, AdamW) on 64 random features, batch 256,
with ``sam_rho=None`` (plain) and ``sam_rho=0.05`` (SAM). Two measures, side by side:

- **bare**: ``optimizer.step(closure)`` in a plain torch loop (forward, backward, update, nothing
  else), the two variants alternating step by step;
- **loop**: a real ``Trainer``'s training loop (``on_train_start`` to ``on_train_end``; no
  logger, progress bar or checkpoints), whole fits interleaved in alternating order. Lightning's
  per-step work (hooks, logging, metrics) is paid once per step in both, so the ratio is lower.

Times are this process's CPU time on CPU (other programs on a shared machine do not count) and
wall time on a GPU (loop only); the medians over the repeats are compared.

Run::

    .venv/bin/python benchmarks/sam_overhead.py
    .venv/bin/python benchmarks/sam_overhead.py --repeats 9 --steps 200 --threads 2
    .venv/bin/python benchmarks/sam_overhead.py --accelerator gpu
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from lightreg.models.mlp import MLPClassifier

FEATURES, CLASSES = 64, 10
VARIANTS = {"plain": None, "sam": 0.05}
"""Variant name -> ``sam_rho``."""


class LoopTimer(Callback):
    """Time of the training loop, without Trainer set-up and tear-down: CPU time of this
    process on CPU, wall time (after a CUDA synchronize) on a GPU."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = self._now(pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds = self._now(pl_module) - self.start

    @staticmethod
    def _now(pl_module: pl.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


def time_fit(sam_rho: float | None, train: DataLoader, accelerator: str) -> float:
    """Seconds of one training loop over ``train`` (one epoch)."""
    torch.manual_seed(0)
    model = MLPClassifier(FEATURES, CLASSES, hidden=(256, 128), sam_rho=sam_rho)
    timer = LoopTimer()
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        max_epochs=1,
        callbacks=[timer],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, train)
    return timer.seconds


def time_bare(train: DataLoader) -> dict[str, float]:
    """CPU seconds of ``optimizer.step(closure)`` per variant over ``train``, in a plain torch
    loop; the variants alternate step by step, so both see the same machine."""
    steppers = {}
    for name, rho in VARIANTS.items():
        torch.manual_seed(0)
        module = MLPClassifier(FEATURES, CLASSES, hidden=(256, 128), sam_rho=rho)
        steppers[name] = (module, module.configure_optimizers())
    seconds = dict.fromkeys(VARIANTS, 0.0)
    for x, y in train:
        for name, (module, optimizer) in steppers.items():

            def closure(module=module, optimizer=optimizer, x=x, y=y) -> torch.Tensor:
                optimizer.zero_grad()
                loss = F.cross_entropy(module(x), y)
                loss.backward()
                return loss

            start = time.process_time()
            optimizer.step(closure)
            seconds[name] += time.process_time() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per timed loop")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    n = args.steps * args.batch_size
    x = torch.randn(n, FEATURES, generator=generator)
    y = torch.randint(CLASSES, (n,), generator=generator)
    train = DataLoader(TensorDataset(x, y), batch_size=args.batch_size)

    kinds = ["bare", "loop"] if args.accelerator == "cpu" else ["loop"]  # CPU time: CPU only
    time_bare(train)  # warm-up: imports, allocator, first-call costs
    for rho in VARIANTS.values():
        time_fit(rho, train, args.accelerator)
    times: dict[tuple[str, str], list[float]] = {(k, n): [] for k in kinds for n in VARIANTS}
    names = list(VARIANTS)
    for repeat in range(args.repeats):
        if "bare" in kinds:
            for name, seconds in time_bare(train).items():
                times["bare", name].append(seconds)
        for name in names if repeat % 2 == 0 else names[::-1]:
            times["loop", name].append(time_fit(VARIANTS[name], train, args.accelerator))

    ms = {key: 1e3 * statistics.median(values) / args.steps for key, values in times.items()}
    ratios = {kind: ms[kind, "sam"] / ms[kind, "plain"] for kind in kinds}
    parts = [
        f"{kind} {ratios[kind]:.2f}x ({ms[kind, 'plain']:.2f} -> {ms[kind, 'sam']:.2f} ms)"
        for kind in kinds
    ]
    verdict = "ok" if max(ratios.values()) <= 2.1 else "OVER"
    print(
        f"SAM/plain step: {', '.join(parts)}; target ~2x, <= 2.1x: {verdict}; MLP [256, 128], "
        f"batch {args.batch_size}, {args.steps} steps, median of {args.repeats} interleaved "
        f"repeats, {args.accelerator}, {args.threads} thread(s)"
    )


if __name__ == "__main__":
    main()
