"""Proof that the shipped recipes regularize: each recipe against its unregularized twin.

For every pair (``mlp`` / ``mlp_baseline``, ``cnn`` / ``cnn_baseline``,
``lstm_layernorm`` / ``lstm_layernorm_baseline``) it trains both on the same small training split
with several seeds, and prints a Markdown table of:

- test accuracy (best weights), mean ± std over seeds;
- final train-val loss gap: ``val_loss - train_loss`` as logged in the last epoch;
- clean gap: ``val_loss - train loss`` of the best weights, both without augmentation or dropout;
- best epoch and epochs run (means);
- wall time per run (mean).

Target: each recipe beats its twin on mean test accuracy and at least halves the final gap.

``--techniques`` measures the second-wave techniques instead, each on the ``cnn`` recipe against
the same recipe without it (same seeds): stochastic depth (``regularization.drop_path`` on
``model.block: residual``, against the residual CNN without it), EMA of the weights
(``regularization.ema_decay``) and SAM (``regularization.sam_rho``). It prints test accuracy and
the clean gap with and without, and says per technique whether it helped on this data.

Run:
    python benchmarks/generalization.py                      # 3 seeds, the recipes' own settings
    python benchmarks/generalization.py --seeds 2 --pairs mlp
    python benchmarks/generalization.py --techniques         # drop_path, EMA, SAM on the CNN
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, field

PAIRS = ("mlp", "cnn", "lstm_layernorm")
TECHNIQUES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (the overrides of the run without the technique, the technique's own overrides)
    "drop_path": (("model.block=residual",), ("regularization.drop_path=0.1",)),
    "ema": ((), ("regularization.ema_decay=0.99",)),
    "sam": ((), ("regularization.sam_rho=0.05",)),
}


@dataclass
class Outcome:
    """Per-seed measurements of one recipe."""

    test_acc: list[float] = field(default_factory=list)
    final_gap: list[float] = field(default_factory=list)
    clean_gap: list[float] = field(default_factory=list)
    best_epoch: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def run_recipe(name: str, seed: int, overrides: list[str], root: str) -> tuple:
    """Train one shipped recipe with ``seed``; return the measurements."""
    from lightreg.recipe import load_recipe
    from lightreg.runner import fit

    recipe = load_recipe(
        name,
        [
            f"seed={seed}",
            f"logging.dir={root}",
            "trainer.enable_progress_bar=false",
            *overrides,
        ],
    )
    start = time.perf_counter()
    result = fit(recipe)
    seconds = time.perf_counter() - start
    return (
        result.metric("test_acc"),
        result.final_epoch_gap,
        result.gap_loss,
        float(result.best_epoch if result.best_epoch is not None else -1),
        float(result.epochs_run),
        seconds,
    )


def summarize(values: list[float], digits: int = 3) -> str:
    """``mean ± std`` of a list (std 0 for one value)."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def measure(name: str, seeds: int, overrides: list[str], root: str) -> Outcome:
    """Train shipped recipe ``name`` with seeds ``0 .. seeds - 1``."""
    outcome = Outcome()
    for seed in range(seeds):
        acc, gap, clean, best, epochs, secs = run_recipe(name, seed, overrides, root)
        outcome.test_acc.append(acc)
        outcome.final_gap.append(gap)
        outcome.clean_gap.append(clean)
        outcome.best_epoch.append(best)
        outcome.epochs.append(epochs)
        outcome.seconds.append(secs)
    return outcome


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def techniques(seeds: int, overrides: list[str]) -> None:
    """Each technique of ``TECHNIQUES`` on the ``cnn`` recipe, with and without it: one table."""
    print(
        "| technique | test acc without | test acc with | clean gap without | clean gap with "
        "| wall time / run without, with |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    verdicts = []
    with tempfile.TemporaryDirectory() as root:
        baselines: dict[tuple[str, ...], Outcome] = {}
        for name, (base, own) in TECHNIQUES.items():
            if base not in baselines:
                baselines[base] = measure("cnn", seeds, [*overrides, *base], root)
            without = baselines[base]
            with_it = measure("cnn", seeds, [*overrides, *base, *own], root)
            print(
                f"| {name} | {summarize(without.test_acc)} | {summarize(with_it.test_acc)} "
                f"| {summarize(without.clean_gap)} | {summarize(with_it.clean_gap)} "
                f"| {statistics.fmean(without.seconds):.1f} s, "
                f"{statistics.fmean(with_it.seconds):.1f} s |",
                flush=True,
            )
            gain = statistics.fmean(with_it.test_acc) - statistics.fmean(without.test_acc)
            spread = max(_sd(with_it.test_acc), _sd(without.test_acc))
            effect = "helped" if gain > spread else "hurt" if gain < -spread else "no clear effect"
            verdicts.append(
                f"{name}: test accuracy {gain:+.3f} (seeds' sd {spread:.3f}): {effect} on this data"
            )
    print()
    print("\n".join(verdicts))


def main() -> None:
    """Parse arguments, run every pair, print the table and the verdict per pair."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--techniques", action="store_true", help="drop_path, EMA, SAM on the CNN")
    args = parser.parse_args()
    if args.techniques:
        techniques(args.seeds, args.overrides)
        return
    pairs = [p for p in args.pairs.split(",") if p]
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory() as root:
        for pair in pairs:
            for name in (pair, f"{pair}_baseline"):
                outcomes[name] = measure(name, args.seeds, args.overrides, root)
    print(
        "| recipe | test accuracy | final train-val loss gap | clean gap (best weights) "
        "| best epoch | epochs run | wall time / run |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, o in outcomes.items():
        print(
            f"| {name} | {summarize(o.test_acc)} | {summarize(o.final_gap)} | "
            f"{summarize(o.clean_gap)} | {statistics.fmean(o.best_epoch):.1f} | "
            f"{statistics.fmean(o.epochs):.1f} | {statistics.fmean(o.seconds):.1f} s |"
        )
    print()
    for pair in pairs:
        reg, base = outcomes[pair], outcomes[f"{pair}_baseline"]
        acc_gain = statistics.fmean(reg.test_acc) - statistics.fmean(base.test_acc)
        gap_ratio = statistics.fmean(reg.final_gap) / statistics.fmean(base.final_gap)
        met = acc_gain > 0 and gap_ratio <= 0.5
        print(
            f"{pair}: test accuracy {acc_gain:+.3f} vs baseline; final gap ratio "
            f"{gap_ratio:.2f} (target <= 0.50): {'MET' if met else 'NOT MET'}"
        )


if __name__ == "__main__":
    main()
