"""Proof that ``lightreg autofit`` works: from each unregularized baseline, at the same epoch budget.

For each ``*_baseline`` recipe (``mlp``, ``cnn``, ``lstm_layernorm``; the MNIST-1D ones with
``--mnist1d``) and each seed, side by side:

- ``baseline``: the baseline recipe as is;
- ``hand-tuned``: the shipped regularized twin (the name without ``_baseline``);
- ``sweep``: ``lightreg sweep --presets none,conservative,moderate,aggressive`` on the baseline
  (the sweep's Python API; its ranked winner);
- ``autofit``: ``lightreg autofit`` from the baseline, with ``--epochs-budget`` set to the epochs
  the preset sweep may take (4 x ``trainer.max_epochs``), so it never uses more.

Every method's score is the test accuracy of its chosen run's best weights
(:func:`lightreg.runner.evaluate_test`; the baseline and hand-tuned runs are scored by ``fit``).
One table: mean ± sd test accuracy over seeds, total epochs, and for autofit the rounds it took
and the rule that stopped it. Then one line per recipe against the targets: autofit beats the
baseline, comes within 1 point of the hand-tuned recipe (or beats it), and uses no more epochs
than the preset sweep.

With ``--results FILE.jsonl`` every finished (recipe, seed) is appended to the file as one JSON
line, and a (recipe, seed) already there is not run again: an interrupted benchmark resumes, and
processes that share the file (different recipes or seeds, ``--threads 1`` each) fill one table;
``--redo autofit`` runs that method again (the newer line wins) after a change to it; ``--methods``
runs some methods now and the others later (lines of one recipe and seed merge); ``--table`` prints
the file's table and runs nothing.

Run:
    python benchmarks/autofit.py                       # 3 seeds, the three image/sequence baselines
    python benchmarks/autofit.py --mnist1d             # the MNIST-1D baselines too
    python benchmarks/autofit.py --seeds 1 --recipes mlp_baseline --set trainer.max_epochs=4
    python benchmarks/autofit.py --recipes cnn_baseline --threads 1 --results autofit.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from generalization import summarize

BASELINES = ("mlp_baseline", "cnn_baseline", "lstm_layernorm_baseline")
MNIST1D = ("mnist1d_mlp_baseline", "mnist1d_cnn_baseline", "mnist1d_lstm_baseline")
PRESETS = ("none", "conservative", "moderate", "aggressive")
METHODS = ("baseline", "hand-tuned", "sweep", "autofit")


@dataclass
class Scores:
    """Per-seed results of one method on one recipe."""

    test_acc: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)


def _overrides(seed: int, root: Path, extra: list[str]) -> list[str]:
    return [f"seed={seed}", f"logging.dir={root}", "trainer.enable_progress_bar=false", *extra]


def fit_one(name: str, overrides: list[str]) -> tuple[float, int]:
    """Test accuracy and epochs of one ``lightreg fit`` of a shipped recipe."""
    from lightreg.recipe import load_recipe
    from lightreg.runner import fit

    result = fit(load_recipe(name, overrides))
    assert result is not None
    return result.metric("test_acc"), result.epochs_run


def sweep_presets(name: str, overrides: list[str], folder: Path) -> tuple[float, int]:
    """The preset sweep's winner's test accuracy, and the epochs all its runs took."""
    from lightreg.diagnose.engine import diagnose_paths
    from lightreg.runner import evaluate_test
    from lightreg.sweep import LocalBackend, SweepState, diagnose_sweep, plan_sweep, rank, run_sweep

    plan = plan_sweep(name, overrides, list(PRESETS))
    state = SweepState.fresh(folder / "sweep.json", plan)
    run_sweep(plan, state, LocalBackend())
    winner = rank(diagnose_sweep(state))[0]
    epochs = sum(
        d.evidence.epochs
        for run in state.runs
        if run.run_dir is not None
        for d in diagnose_paths([run.run_dir]).diagnoses
    )
    return evaluate_test(Path(str(winner.run_dir)))["test_acc"], epochs


def autofit_one(name: str, overrides: list[str], budget: int) -> tuple[float, int, int, str]:
    """Autofit from the baseline within ``budget`` epochs: test accuracy, epochs, rounds, stop."""
    from lightreg.autofit import Settings, run_autofit, start_autofit
    from lightreg.recipe import load_recipe
    from lightreg.sweep import LocalBackend

    state = start_autofit(load_recipe(name, overrides), Settings(epochs_budget=budget))
    run_autofit(state, LocalBackend())
    test = state.test or {}
    rule = state.stop.rule if state.stop is not None else "-"
    return test.get("test_acc", float("nan")), state.epochs_used, len(state.rounds), rule


def measure(name: str, seed: int, root: Path, extra: list[str], methods: list[str]) -> dict:
    """``methods`` (of :data:`METHODS`) on one baseline and seed."""
    from lightreg.recipe import load_recipe

    overrides = _overrides(seed, root / f"seed{seed}", extra)
    budget = len(PRESETS) * load_recipe(name, overrides).trainer.max_epochs
    runs = {
        "baseline": lambda: fit_one(name, overrides),
        "hand-tuned": lambda: fit_one(name.removesuffix("_baseline"), overrides),
        "sweep": lambda: sweep_presets(name, overrides, root / f"seed{seed}" / f"{name}-sweep"),
        "autofit": lambda: autofit_one(name, overrides, budget),
    }
    return {method: runs[method]() for method in methods}


def report(results: dict[str, dict[str, Scores]]) -> None:
    """The table, then each recipe against the targets."""
    print("| recipe | method | test accuracy | total epochs | rounds | stopped by |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, methods in results.items():
        for method in METHODS:
            s = methods[method]
            rounds = f"{statistics.fmean(s.rounds):.1f}" if s.rounds else ""
            stops = ", ".join(f"{rule} x{n}" for rule, n in Counter(s.stops).items())
            epochs = statistics.fmean(s.epochs)
            print(
                f"| {name} | {method} | {summarize(s.test_acc)} | {epochs:.0f} | {rounds} | {stops} |"
            )
    print()
    for name, methods in results.items():
        auto = statistics.fmean(methods["autofit"].test_acc)
        base = statistics.fmean(methods["baseline"].test_acc)
        tuned = statistics.fmean(methods["hand-tuned"].test_acc)
        epochs = statistics.fmean(methods["autofit"].epochs)
        sweep_epochs = statistics.fmean(methods["sweep"].epochs)
        checks = [
            (auto > base, f"vs baseline {auto - base:+.3f}"),
            (auto >= tuned - 0.01, f"vs hand-tuned {auto - tuned:+.3f} (target >= -0.010)"),
            (epochs <= sweep_epochs, f"epochs {epochs:.0f} vs sweep {sweep_epochs:.0f}"),
        ]
        verdict = "MET" if all(ok for ok, _ in checks) else "MISSED"
        print(f"{name}: autofit {'; '.join(text for _, text in checks)}: {verdict}")


def load_results(path: Path | None) -> dict[tuple[str, int], dict[str, list]]:
    """(recipe, seed) -> method -> values of a ``--results`` file (none: empty); a method in a
    later line replaces the earlier one, so lines of different methods or processes merge."""
    if path is None or not path.exists():
        return {}
    done: dict[tuple[str, int], dict[str, list]] = {}
    for text in path.read_text().splitlines():
        if text.strip():
            line = json.loads(text)
            done.setdefault((line["recipe"], line["seed"]), {}).update(line["methods"])
    return done


def tabulate(
    done: dict[tuple[str, int], dict[str, list]], names: list[str], seeds: range
) -> dict[str, dict[str, Scores]]:
    """Per recipe (of ``names``, with every method of every seed of ``seeds`` done), each method's
    scores."""
    results: dict[str, dict[str, Scores]] = {}
    for name in names:
        if any(set(METHODS) - set(done.get((name, seed), {})) for seed in seeds):
            continue
        methods = {method: Scores() for method in METHODS}
        for seed in seeds:
            for method, values in done[name, seed].items():
                scores = methods[method]
                scores.test_acc.append(values[0])
                scores.epochs.append(values[1])
                if method == "autofit":
                    scores.rounds.append(values[2])
                    scores.stops.append(values[3])
        results[name] = methods
    return results


def run_missing(
    done: dict, names: list[str], seeds: range, root: Path, args: argparse.Namespace
) -> None:
    """Measure every (recipe, seed) method of ``--methods`` missing from ``done`` (or in ``--redo``);
    append each finished (recipe, seed) to ``--results``."""
    for name in names:
        for seed in seeds:
            have = {k: v for k, v in done.get((name, seed), {}).items() if k not in args.redo}
            todo = [method for method in args.methods if method not in have]
            if not todo:
                continue
            new = measure(name, seed, root, args.overrides, todo)
            done[name, seed] = have | new
            if args.results is not None:
                line = {"recipe": name, "seed": seed, "methods": new}
                with args.results.open("a") as file:
                    file.write(json.dumps(line) + "\n")
            print(f"{name} seed {seed}: done", flush=True)


def _names(text: str) -> list[str]:
    """A comma-separated option as a list: ``"a,,b"`` is ``["a", "b"]``."""
    return [name for name in text.split(",") if name]


def main() -> None:
    """Run every method on every selected baseline and seed; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=42)
    parser.add_argument("--recipes", type=_names, default=",".join(BASELINES))
    parser.add_argument("--mnist1d", action="store_true", help="add the MNIST-1D baselines")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="where runs go (default: temp)")
    parser.add_argument("--results", type=Path, help="JSON lines to resume from and append to")
    parser.add_argument("--threads", type=int, help="torch threads (1 on a shared machine)")
    parser.add_argument("--table", action="store_true", help="print --results' table; run nothing")
    parser.add_argument(
        "--methods",
        type=_names,
        default=",".join(METHODS),
        help="the methods to run (the table needs all)",
    )
    parser.add_argument(
        "--redo",
        type=_names,
        default="",
        help="methods to run again even when the results file has them",
    )
    args = parser.parse_args()
    if unknown := set(args.methods) - set(METHODS):
        parser.error(f"--methods: unknown {sorted(unknown)}; choose from {', '.join(METHODS)}")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    names = list(args.recipes)
    if args.mnist1d:
        names += [name for name in MNIST1D if name not in names]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    done = load_results(args.results)
    if not args.table:
        root = args.out or Path(tempfile.mkdtemp(prefix="lightreg-autofit-bench-"))
        run_missing(done, names, seeds, root, args)
        print(f"runs: {root}\n")
    report(tabulate(done, names, seeds))


if __name__ == "__main__":
    main()
