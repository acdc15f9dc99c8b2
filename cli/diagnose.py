"""``lightreg diagnose``: judge training logs, print a verdict and a prescription per run.

Example:
    $ lightreg diagnose lightning_logs/
    $ lightreg diagnose runs/mlp/version_3 --write-recipe next.yaml
    $ lightreg diagnose logs/ --json --fail-on overfitting,diverging
    $ lightreg diagnose runs/mlp/version_3/best.ckpt        # the weights' spectra
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Annotated

import typer

from lightreg.cli.console import VERDICT_STYLE, err, out, safe, user_error
from lightreg.cli.diagnose_weights import diagnose_weights_command, weights_mode
from lightreg.diagnose.engine import (
    DiagnoseConfig,
    DiagnoseReport,
    Diagnosis,
    diagnose_paths,
    missing_overrides,
)
from lightreg.diagnose.readers.limits import MAX_FILE_BYTES, RAISE_THE_LIMIT
from lightreg.diagnose.rules import VERDICTS, Thresholds
from lightreg.text import did_you_mean


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    return did_you_mean(word, choices) or f"; choose from {', '.join(choices)}"


def _parse_fail_on(text: str | None) -> tuple[set[str], list[str]]:
    names = {name.strip() for name in (text or "").split(",") if name.strip()}
    problems = [
        f"--fail-on: unknown verdict '{name}'{_did_you_mean(name, VERDICTS)}"
        for name in sorted(names)
        if name not in VERDICTS
    ]
    return names, problems


def _parse_thresholds(
    items: list[str], gl_threshold: float | None, min_epochs: int | None
) -> tuple[Thresholds | None, list[str]]:
    values: dict[str, str | float | int] = {}
    problems: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--threshold expects KEY=VALUE, got '{item}'")
        else:
            values[key.strip()] = value.strip()
    if gl_threshold is not None:
        values["gl_threshold"] = gl_threshold
    if min_epochs is not None:
        values["min_epochs"] = min_epochs
    try:
        return Thresholds().with_overrides(values), problems
    except ValueError as error:
        return None, [*problems, *str(error).split("; ")]


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _print_table(diagnoses: list[Diagnosis]) -> None:
    from rich.table import Table

    wide = out.width >= 140  # narrower terminals get the prescriptions below the table
    table = Table(title="lightreg diagnose")
    table.add_column("path", no_wrap=True, min_width=12)
    for name in ("format", "verdict", "best/epochs", "train/val", "GL %", "gap"):
        table.add_column(name, no_wrap=True)
    if wide:
        table.add_column("prescription", min_width=30)
    for d in diagnoses:
        e = d.evidence
        style = VERDICT_STYLE[d.verdict]
        cells = [
            safe(d.run.path),
            d.run.format,
            f"[{style}]{d.verdict}[/]",
            f"{_fmt(e.best_epoch, 'd')}/{e.epochs}",
            f"{_fmt(e.final_train_loss, '.3g')}/{_fmt(e.final_val_loss, '.3g')}",
            _fmt(e.gl, ".1f"),
            _fmt(e.loss_gap, ".3g"),
        ]
        table.add_row(*cells, *([safe(_top(d))] if wide else []))
    out.print(table)
    if not wide and len(diagnoses) > 1:
        for d in diagnoses:
            out.print(f"[bold]{safe(d.run.path)}[/]: {safe(_top(d))}", highlight=False)


def _top(d: Diagnosis) -> str:
    lines = d.prescription.lines()
    return lines[0] if lines else ""


def _print_details(d: Diagnosis) -> None:
    from rich.panel import Panel
    from rich.text import Text

    from lightreg.diagnose.render import BEST_MARK, TRAIN_MARK, VAL_MARK, text_plot

    width = max(20, min(100, out.width - 20))
    plot = Text("\n".join(text_plot(d.curves, d.evidence.best_epoch, width=width)))
    plot.highlight_regex(f"[{TRAIN_MARK}]", "blue")
    plot.highlight_regex(f"[{VAL_MARK}]", "red")
    plot.highlight_regex(f"[{BEST_MARK}▲]", "green")
    out.print(Panel(plot, title=f"{safe(d.run.path)}: {d.verdict}", expand=False))
    out.print(f"[bold]{safe(d.prescription.summary)}[/]", highlight=False)
    for line in d.prescription.lines():
        out.print(f"  -> {safe(line)}", highlight=False)
    for note in d.judgement.reasons[1:] + tuple(d.curves.notes) + tuple(d.run.warnings):
        out.print(f"  [dim]note: {safe(note)}[/]", highlight=False)


def _print_errors(errors: list[tuple[str, str]]) -> None:
    from rich.table import Table

    table = Table(title="unreadable logs")
    table.add_column("path", no_wrap=True, min_width=12)
    table.add_column("reason")
    for path, reason in errors:
        table.add_row(safe(path), safe(reason))
    out.print(table)


def _json_document(report: DiagnoseReport) -> str:
    return json.dumps(
        {
            "runs": [d.to_dict() for d in report.diagnoses],
            "errors": [{"path": path, "reason": reason} for path, reason in report.errors],
        },
        indent=2,
        allow_nan=False,
    )


def _write_recipe(report: DiagnoseReport, target: Path, force: bool) -> None:
    from lightreg.diagnose.patch import write_recipe

    if len(report.diagnoses) != 1:
        user_error([f"--write-recipe needs exactly one run; PATH holds {len(report.diagnoses)}"])
    d = report.diagnoses[0]
    if d.run.config_source != "recipe" or d.run.config is None:
        source = d.run.config_source or "no config"
        user_error(
            [f"--write-recipe: {d.run.path} was not trained from a lightreg recipe ({source})"]
        )
    try:
        write_recipe(d.run.config, d.prescription.changes, target, force=force)
    except (FileExistsError, OSError, ValueError) as error:
        user_error([f"--write-recipe: {error}"])
    err.print(f"wrote {safe(target)} ({len(d.prescription.changes)} change(s))", highlight=False)


def _png_dir_problems(png: Path) -> list[str]:
    """Why ``--png DIR`` can never be a folder (a file, ``/dev/null``, a path through a file)."""
    if png.exists() and not png.is_dir():
        return [f"--png: {png} is not a folder"]
    blocker = next((parent for parent in png.parents if parent.exists()), None)
    if blocker is not None and not blocker.is_dir():
        return [f"--png: {png} is not a folder: {blocker} is a file"]
    return []


def _write_pngs(report: DiagnoseReport, png: Path, force: bool) -> None:
    from lightreg.diagnose.render import save_pngs

    try:
        written = save_pngs(report.diagnoses, png, overwrite=force)
    except FileExistsError as error:
        user_error([f"--png: {error.filename} exists (use --force to overwrite)"])
    except OSError as error:
        where = error.filename or png
        user_error([f"--png: {where}: cannot write ({error.strerror or error})"])
    err.print(f"wrote {len(written)} PNG(s) to {safe(png)}", highlight=False)


def _report_problems(target: Path, force: bool) -> list[str]:
    """Why ``--report FILE.html`` cannot be written: it exists (without --force), no folder."""
    if target.exists() and not force:
        return [f"--report: {target} exists (use --force to overwrite)"]
    if not target.parent.is_dir():
        return [f"--report: {target}: cannot write (no folder {target.parent})"]
    return []


def _write_report(report: DiagnoseReport, paths: list[Path], target: Path, force: bool) -> None:
    from lightreg.diagnose.report import ReportEntry, write_report

    entries = [ReportEntry(d.run.path, d.run, d) for d in report.diagnoses]
    title = "lightreg diagnose: " + ", ".join(str(path) for path in paths)
    try:
        write_report(target, entries, title=title, overwrite=force)
    except FileExistsError:
        user_error([f"--report: {target} exists (use --force to overwrite)"])
    except OSError as error:
        user_error([f"--report: {target}: cannot write ({error.strerror or error})"])
    err.print(f"wrote {safe(target)} ({len(entries)} run(s))", highlight=False)


def _with_cli_remedy(report: DiagnoseReport) -> DiagnoseReport:
    """Size refusals say which option raises the limit, instead of the library's field name."""

    def reword(reason: str) -> str:
        return reason.replace(RAISE_THE_LIMIT, "use --max-file-mb to read it")

    report.errors = [(path, reword(reason)) for path, reason in report.errors]
    report.empty_paths = [
        (path, [reword(reason) for reason in reasons]) for path, reasons in report.empty_paths
    ]
    return report


def diagnose(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Run folders, log files, folders holding runs, or checkpoints (.ckpt/.pt/.pth).",
            show_default=False,
        ),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document to stdout, nothing else.")
    ] = False,
    weights: Annotated[
        bool,
        typer.Option(
            "--weights",
            help="Read the PATHs' weights (.ckpt/.pt/.pth files, or a run folder's best "
            "checkpoint): per-layer spectra; implied when every PATH is such a file.",
        ),
    ] = False,
    plot: Annotated[
        bool, typer.Option("--plot", help="Draw each run's curves (always for a single run).")
    ] = False,
    png: Annotated[
        Path | None,
        typer.Option(
            help="Write one learning-curve PNG per run into DIR (needs matplotlib); "
            "an existing PNG is kept unless --force.",
            metavar="DIR",
        ),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            help="Exit 1 when a run gets one of these verdicts (comma-separated).",
            metavar="VERDICTS",
        ),
    ] = None,
    write_recipe: Annotated[
        Path | None,
        typer.Option(
            help="Write the run's recipe with the prescription applied (one run only).",
            metavar="OUT.yaml",
        ),
    ] = None,
    report_html: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write one self-contained HTML page (curves, verdicts) for all runs.",
            metavar="FILE.html",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Let --write-recipe, --png and --report overwrite existing files."
        ),
    ] = False,
    train_metric: Annotated[
        str | None, typer.Option(help="Training loss name (overrides detection).")
    ] = None,
    val_metric: Annotated[
        str | None, typer.Option(help="Validation loss name (overrides detection).")
    ] = None,
    gl_threshold: Annotated[
        float | None,
        typer.Option(help="Prechelt GL (%) above which val loss counts as rising. (default 5)"),
    ] = None,
    min_epochs: Annotated[
        int | None,
        typer.Option(help="Fewer validation points than this: insufficient_data. (default 3)"),
    ] = None,
    max_file_mb: Annotated[
        float,
        typer.Option(
            help="Refuse log files larger than this many MiB (each named on one line).",
            min=0.001,
        ),
    ] = MAX_FILE_BYTES / 2**20,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            "-t",
            help="Any rule threshold, KEY=VALUE (repeatable); the README lists them (Verdicts and their rules).",
            metavar="KEY=VALUE",
        ),
    ] = None,
) -> None:
    """Judge training logs: overfitting, underfitting, good fit, diverging, still improving.

    Reads Lightning CSVLogger folders, TensorBoard event files, Keras CSV histories, MLflow runs.
    Given checkpoint files (.ckpt/.pt/.pth) or --weights, reads each Linear/Conv layer's
    spectrum instead (power-law alpha, spectral norm, stable rank): see docs/weights.md.
    Exit codes: 0 done, 1 a --fail-on verdict was found, 2 bad arguments, nothing readable,
    or a --png/--write-recipe/--report file that exists (without --force) or cannot be written.
    """
    logs_only = {
        "--plot": plot,
        "--png": png is not None,
        "--fail-on": fail_on is not None,
        "--write-recipe": write_recipe is not None,
        "--report": report_html is not None,
        "--force": force,
        "--train-metric": train_metric is not None,
        "--val-metric": val_metric is not None,
        "--gl-threshold": gl_threshold is not None,
        "--min-epochs": min_epochs is not None,
        "--max-file-mb": max_file_mb != MAX_FILE_BYTES / 2**20,
        "--threshold": bool(threshold),
    }
    if weights_mode(paths, weights, logs_only):
        diagnose_weights_command(paths, json_output)
        return
    fail_verdicts, problems = _parse_fail_on(fail_on)
    thresholds, threshold_problems = _parse_thresholds(threshold or [], gl_threshold, min_epochs)
    problems += threshold_problems
    problems += [f"{path}: no such file or folder" for path in paths if not path.exists()]
    if png is not None and importlib.util.find_spec("matplotlib") is None:
        problems.append("--png needs matplotlib: pip install 'lightreg[plot]'")
    elif png is not None:
        problems += _png_dir_problems(png)
    if write_recipe is not None and write_recipe.exists() and not force:
        problems.append(f"--write-recipe: {write_recipe} exists (use --force to overwrite)")
    if report_html is not None:
        problems += _report_problems(report_html, force)
    if problems or thresholds is None:
        user_error(problems)
    config = DiagnoseConfig(thresholds, train_metric, val_metric, int(max_file_mb * 2**20))
    report = _with_cli_remedy(diagnose_paths(paths, config))
    if report.empty_paths:
        user_error(
            f"{path}: nothing readable" + (f" ({reasons[0]})" if reasons else "")
            for path, reasons in report.empty_paths
        )
    missing = missing_overrides([d.run for d in report.diagnoses], config)
    if missing:
        user_error(
            f"metric '{name}' is in none of the runs{_did_you_mean(name, seen)}"
            for name, seen in missing
        )
    if png is not None:
        _write_pngs(report, png, force)
    if write_recipe is not None:
        _write_recipe(report, write_recipe, force)
    if report_html is not None:
        _write_report(report, paths, report_html, force)
    if json_output:
        typer.echo(_json_document(report))
    else:
        _print_table(report.diagnoses)
        if plot or len(report.diagnoses) == 1:
            for d in report.diagnoses:
                _print_details(d)
        if report.errors:
            _print_errors(report.errors)
    if any(d.verdict in fail_verdicts for d in report.diagnoses):
        raise typer.Exit(code=1)
