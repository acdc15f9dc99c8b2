"""``lightreg diagnose CHECKPOINT`` (or ``--weights PATH``): a look at the weights.

The weights branch of ``lightreg diagnose``; :mod:`lightreg.cli.diagnose` imports it only when
the PATHs are checkpoints, so diagnosing logs never imports torch.

Example:
    $ lightreg diagnose runs/mlp/version_0/best.ckpt
    $ lightreg diagnose --weights runs/mlp/version_0 --json
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lightreg.cli.console import out, safe, user_error
from lightreg.weights import is_checkpoint_file

if TYPE_CHECKING:  # the weights modules import torch: only when weights are read
    from lightreg.weights.load import WeightsDiagnosis
    from lightreg.weights.spectrum import LayerSpectrum

READING_STYLE = {
    "over_trained": "bold red",
    "typical": "green",
    "under_trained": "yellow",
    "too_small": "dim",
    "no_fit": "dim",
    "non_finite": "bold magenta",
    "mixed": "bold red",
}
"""How the weights tables colour a layer's reading and a model's verdict."""


def _fmt(value: float | int | None, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def _layer_cells(layer: LayerSpectrum, wide: bool) -> list[str]:
    fit = layer.fit
    return [
        safe(layer.name),
        "x".join(map(str, layer.shape)),
        _fmt(layer.alpha, ".2f"),
        *([_fmt(fit and fit.ks_distance, ".3f"), _fmt(fit and fit.xmin)] if wide else []),
        f"{_fmt(fit and fit.tail, 'd')}/{layer.eigenvalues}",
        _fmt(layer.spectral_norm),
        *([_fmt(layer.stable_rank, ".1f")] if wide else []),
        f"[{READING_STYLE[layer.reading]}]{safe(layer.note.rsplit(': ', 1)[-1])}[/]",
    ]


def _print_model(found: WeightsDiagnosis) -> None:
    from rich.table import Table

    wide = out.width >= 100  # narrower terminals leave D, xmin and the stable rank to --json
    loaded, summary = found.loaded, found.report.summary
    where = [loaded.source]
    where += [f"epoch {loaded.epoch}"] if loaded.epoch is not None else []
    where += [f"step {loaded.global_step}"] if loaded.global_step is not None else []
    table = Table(title=f"weights of {safe(found.checkpoint)} ({safe(', '.join(where))})")
    table.add_column("layer", no_wrap=True, min_width=8)
    numbers = ("alpha", *(("D", "xmin") if wide else ()), "tail/eigs", "‖W‖₂")
    table.add_column("shape", no_wrap=True)
    for name in (*numbers, *(("stable rank",) if wide else ())):
        table.add_column(name, no_wrap=True, justify="right")
    table.add_column("reading", no_wrap=True)
    for layer in found.report.layers:
        table.add_row(*_layer_cells(layer, wide))
    if found.picked:
        out.print(
            f"[dim]{safe(found.path)}: read {safe(found.checkpoint)}, {safe(found.picked)}[/]",
            highlight=False,
            soft_wrap=True,
        )
    out.print(table)
    style = READING_STYLE.get(summary.verdict, "dim")
    out.print(f"[{style}]{safe(summary.line)}[/]", highlight=False, soft_wrap=True)
    counts = ", ".join(f"{n} {reading}" for reading, n in summary.counts.items() if n)
    weighted = _fmt(summary.mean_alpha_weighted, ".2f")
    out.print(f"  [dim]layers: {counts}; mean alpha_weighted {weighted}[/]", highlight=False)


def weights_mode(paths: list[Path], weights: bool, logs_options: Mapping[str, bool]) -> bool:
    """Whether ``diagnose`` reads the PATHs as weights: ``--weights``, or all checkpoint files.

    A mix of checkpoint files and logs without ``--weights``, or an option that only logs use
    (``logs_options``: flag -> given), is a user error.

    Example:
        >>> weights_mode([Path("best.ckpt")], False, {"--png": False})
        True
        >>> weights_mode([Path("lightning_logs")], False, {"--png": True})
        False
    """
    checkpoints = [path for path in paths if is_checkpoint_file(path)]
    if not weights and not checkpoints:
        return False
    problems = [
        f"{flag} reads training logs, not weights" for flag, given in logs_options.items() if given
    ]
    logs = [path for path in paths if not is_checkpoint_file(path)]
    if not weights and logs:
        problems.insert(
            0,
            f"{checkpoints[0]} is a checkpoint and {logs[0]} is not: diagnose weights and logs "
            "in two calls (or --weights to read a run folder's checkpoint)",
        )
    if problems:
        user_error(problems)
    return True


def diagnose_weights_command(paths: list[Path], json_output: bool) -> None:
    """Read each PATH's weights and print one table per model (or one JSON document).

    Every unreadable PATH is one line on stderr, and the exit code is 2; nothing is printed
    for the others.

    Example:
        $ lightreg diagnose model.ckpt --json
    """
    from lightreg.weights.load import WeightsError, diagnose_weights

    found: list[WeightsDiagnosis] = []
    problems: list[str] = []
    for path in paths:
        try:
            found.append(diagnose_weights(path))
        except WeightsError as error:
            problems.append(str(error))
    if problems:
        user_error(problems)
    if json_output:
        document = {"models": [model.to_dict() for model in found]}
        typer.echo(json.dumps(document, indent=2, allow_nan=False))
        return
    for model in found:
        _print_model(model)
