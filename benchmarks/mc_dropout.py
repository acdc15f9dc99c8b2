"""Benchmark: vectorized ``mc_dropout_predict`` against a Python loop of forward passes.

Both run on CPU, side by side in one process, interleaved (loop, vectorized, loop, ...), and the
median time of each is reported with the speed-up, for small MLPs (64 inputs, two hidden layers
of the given width, dropout 0.2 after each, 10 classes) and several batch sizes. Both must
estimate the same distribution: the mean probabilities agree within Monte Carlo error (``max|z|``
up to about 4 is chance) and the per-class standard deviations closely.

The loop is the textbook version: ``model.train()``, one forward pass per sample, softmax, stack,
then the same summary. The vectorized function saves the per-pass overhead, runs the layers
before the first dropout once per input instead of once per sample, and draws ``nn.Dropout``
masks with ``lightreg.uncertainty.masks.bernoulli_keep_mask`` instead of ``bernoulli_`` (the
first printed line gives that ratio: the reason the sampler exists); the matrix products of the
later layers remain. The ``ceiling``
column shows that limit: the loop's time over the vectorized time of the same model with dropout
rate 0 (same passes, no mask drawn), i.e. the speed-up if masks were free.

Run::

    .venv/bin/python benchmarks/mc_dropout.py                       # widths 64 128 256
    .venv/bin/python benchmarks/mc_dropout.py --widths 256 --batches 8 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from lightreg.uncertainty import MCDropoutPrediction, mc_dropout_predict
from lightreg.uncertainty.masks import bernoulli_keep_mask

TARGET = 3.0


def make_mlp(width: int, p: float = 0.2) -> nn.Sequential:
    """64 -> width -> width -> 10, with dropout ``p`` after each hidden layer."""
    return nn.Sequential(
        nn.Linear(64, width),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(width, 10),
    )


def loop_predict(model: nn.Module, x: Tensor, samples: int) -> MCDropoutPrediction:
    """The textbook version: ``model.train()`` and one forward pass per sample."""
    model.train()
    with torch.no_grad():
        probs = torch.stack([model(x).softmax(dim=-1) for _ in range(samples)])
    model.eval()
    return MCDropoutPrediction.from_probs(probs)


def median_ms(runs: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median milliseconds of each callable, measured interleaved after a warm-up."""
    for run in runs * 2:
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, record in zip(runs, times, strict=True):
            start = time.perf_counter()
            run()
            record.append(time.perf_counter() - start)
    return [1e3 * statistics.median(record) for record in times]


def sampler_line(keep: float, count: int, repeats: int) -> str:
    """One line: the fast mask sampler against ``Tensor.bernoulli_`` on ``count`` float entries."""
    buffer = torch.empty(count)
    fast_ms, torch_ms = median_ms(
        [
            lambda: bernoulli_keep_mask((count,), keep, dtype=torch.float32),
            lambda: buffer.bernoulli_(keep),
        ],
        repeats,
    )
    return (
        f"mask sampler at keep {keep}, {count} entries: bernoulli_keep_mask {fast_ms:.3f} ms,"
        f" Tensor.bernoulli_ {torch_ms:.3f} ms: {torch_ms / fast_ms:.1f}x faster"
    )


def compare_distributions(model: nn.Module, x: Tensor, samples: int) -> tuple[float, float]:
    """(max |z| of the mean difference, max |std difference|) over ``samples`` samples each.

    ``z`` divides each difference of means by its standard error ``sqrt(2 var / samples)``; with
    B x K independent comparisons a max |z| up to about 4 is expected by chance.
    """
    loop = loop_predict(model, x, samples)
    vec = mc_dropout_predict(model, x, samples=samples)
    stderr = (loop.std.pow(2) + vec.std.pow(2)).div(samples).sqrt().clamp_min(1e-12)
    z = ((loop.mean - vec.mean).abs() / stderr).max().item()
    return z, (loop.std - vec.std).abs().max().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 256])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--check-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(sampler_line(keep=0.8, count=64 * 1024, repeats=max(args.repeats, 51)))
    print(
        f"MLP 64-W-W-10 (dropout 0.2), {args.samples} samples, {args.threads} thread(s), median "
        f"of {args.repeats} interleaved repeats; distribution check with {args.check_samples} "
        f"samples each"
    )
    print(
        f"{'W':>4} {'batch':>6} {'loop ms':>8} {'vector ms':>10} {'speed-up':>9} {'ceiling':>8} "
        f"{'max|z| mean':>12} {'max|d std|':>11}"
    )
    met: dict[int, list[int]] = {}
    for width in args.widths:
        model = make_mlp(width).eval()
        no_masks = make_mlp(width, p=0.0).eval()
        no_masks.load_state_dict(model.state_dict())
        for batch in args.batches:
            x = torch.randn(batch, 64)
            loop_ms, vec_ms, free_ms = median_ms(
                [
                    lambda m=model, x=x: loop_predict(m, x, args.samples),
                    lambda m=model, x=x: mc_dropout_predict(m, x, samples=args.samples),
                    lambda m=no_masks, x=x: mc_dropout_predict(m, x, samples=args.samples),
                ],
                args.repeats,
            )
            z, std_diff = compare_distributions(model, x, args.check_samples)
            speed_up = loop_ms / vec_ms
            if speed_up >= TARGET:
                met.setdefault(width, []).append(batch)
            print(
                f"{width:>4} {batch:>6} {loop_ms:>8.2f} {vec_ms:>10.2f} {speed_up:>8.2f}x "
                f"{loop_ms / free_ms:>7.2f}x {z:>12.2f} {std_diff:>11.2e}"
            )
    for width in args.widths:
        print(f"W={width}: speed-up >= {TARGET:.0f}x at batch {met.get(width, 'none')}")


if __name__ == "__main__":
    main()
