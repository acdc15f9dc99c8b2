"""Benchmark: vectorized ``mc_dropout_predict`` against a Python loop of forward passes.

Both run on CPU, side by side in one process, interleaved (loop, vectorized, loop, ...), and the
median time of each is reported with the speed-up. Both must estimate the same distribution: the
mean probabilities agree within Monte Carlo error and the per-class standard deviations closely.

Vectorizing removes per-pass overhead only; the arithmetic and the random draws are the same.
So it pays for small batches (overhead-bound) and not for large ones on CPU (compute-bound).

Run::

    .venv/bin/python benchmarks/mc_dropout.py                     # batches 256, 8 and 1
    .venv/bin/python benchmarks/mc_dropout.py --batches 64 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import Tensor, nn

from lightreg.uncertainty import MCDropoutPrediction, mc_dropout_predict


def make_mlp(p: float = 0.2) -> nn.Module:
    """64 -> 256 -> 256 -> 10 with dropout after each hidden layer."""
    return nn.Sequential(
        nn.Linear(64, 256),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(256, 10),
    )


def loop_predict(model: nn.Module, x: Tensor, samples: int) -> MCDropoutPrediction:
    """The textbook version: ``model.train()`` and one forward pass per sample."""
    model.train()
    with torch.no_grad():
        probs = torch.stack([model(x).softmax(dim=-1) for _ in range(samples)])
    model.eval()
    return MCDropoutPrediction.from_probs(probs)


def time_pair(model: nn.Module, x: Tensor, samples: int, repeats: int) -> tuple[float, float]:
    """Median milliseconds of (loop, vectorized), measured interleaved after a warm-up."""
    for _ in range(2):
        loop_predict(model, x, samples)
        mc_dropout_predict(model, x, samples=samples)
    loop_times, vec_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        loop_predict(model, x, samples)
        loop_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        mc_dropout_predict(model, x, samples=samples)
        vec_times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(loop_times), 1e3 * statistics.median(vec_times)


def compare_distributions(model: nn.Module, x: Tensor, samples: int) -> tuple[float, float, float]:
    """(max |z| of the mean difference, max |mean diff|, max |std diff|) over ``samples`` each.

    ``z`` divides each difference of means by its standard error ``sqrt(2 var / samples)``; with
    B x K independent comparisons a max |z| up to about 4 is expected by chance.
    """
    loop = loop_predict(model, x, samples)
    vec = mc_dropout_predict(model, x, samples=samples)
    diff = (loop.mean - vec.mean).abs()
    stderr = (loop.std.pow(2) + vec.std.pow(2)).div(samples).sqrt().clamp_min(1e-12)
    std_diff = (loop.std - vec.std).abs().max().item()
    return (diff / stderr).max().item(), diff.max().item(), std_diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 8, 1])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--check-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = make_mlp().eval()
    print(
        f"MLP 64-256-256-10 (dropout 0.2), {args.samples} samples, {args.threads} thread(s), "
        f"median of {args.repeats} interleaved repeats; distribution check with "
        f"{args.check_samples} samples each"
    )
    print(
        f"{'batch':>6} {'loop ms':>9} {'vector ms':>10} {'speed-up':>9} "
        f"{'max|z| mean':>12} {'max|d mean|':>12} {'max|d std|':>11}"
    )
    for batch in args.batches:
        x = torch.randn(batch, 64)
        loop_ms, vec_ms = time_pair(model, x, args.samples, args.repeats)
        z, mean_diff, std_diff = compare_distributions(model, x, args.check_samples)
        print(
            f"{batch:>6} {loop_ms:>9.2f} {vec_ms:>10.2f} {loop_ms / vec_ms:>8.2f}x "
            f"{z:>12.2f} {mean_diff:>12.2e} {std_diff:>11.2e}"
        )


if __name__ == "__main__":
    main()
