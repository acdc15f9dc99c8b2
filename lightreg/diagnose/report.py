"""One self-contained HTML page for a set of runs: learning curves, verdicts, decisions, recipe diff.

The page opens offline: plotly draws the curves with its JavaScript inlined (no CDN, no network),
and plotly is imported only when a page is written, so ``lightreg diagnose`` starts without it.
Each entry's train (dashed) and validation (solid) loss, and accuracy when logged, are overlaid
across entries in one colour per entry; a star marks the best epoch; hovering shows the epoch and
the value; clicking an entry in the legend hides or shows all of its curves.

Every text that comes from logs or callers (labels, run paths, metric names, reasons, decisions,
the diff) is escaped: a run named ``</script><script>alert(1)</script>`` is shown, never run.

Example:
    >>> import tempfile
    >>> from lightreg.diagnose.engine import diagnose
    >>> run = Run("runs/a", "keras_csv", {"loss": {0: 1.0, 1: 0.6}, "val_loss": {0: 1.1, 1: 0.8}})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     page = write_report(Path(folder) / "report.html",
    ...                         [ReportEntry("round 0", run, diagnose(run))], title="demo")
    ...     "<h1>demo</h1>" in page.read_text(encoding="utf-8")
    True
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lightreg.diagnose.engine import Diagnosis
from lightreg.diagnose.run import Run
from lightreg.text import printable

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

_VERDICT_COLOR = {
    "good_fit": "#1a7f37",
    "still_improving": "#0969da",
    "overfitting": "#cf222e",
    "underfitting": "#9a6700",
    "insufficient_data": "#6e7781",
    "diverging": "#8250df",
}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #d0d7de; padding: 0.35rem 0.5rem; text-align: left;
         vertical-align: top; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.verdict { font-weight: 600; white-space: nowrap; }
ul { margin: 0; padding-left: 1.1rem; }
.note { color: #6e7781; }
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; }
.add { color: #1a7f37; } .del { color: #cf222e; } .hunk { color: #8250df; }
"""


@dataclass(frozen=True)
class ReportEntry:
    """One run on the page: its label (a legend entry), its metric series and its diagnosis.

    Example:
        >>> from lightreg.diagnose.engine import diagnose
        >>> run = Run("runs/a", "keras_csv", {"loss": {0: 1.0}})
        >>> ReportEntry("round 0", run, diagnose(run)).diagnosis.verdict
        'insufficient_data'
    """

    label: str
    run: Run
    diagnosis: Diagnosis


def _text(value: object) -> str:
    """``value`` as literal HTML text: control characters visible, markup escaped."""
    return html.escape(printable(str(value)))


def _plotly_text(value: object) -> str:
    """``value`` as literal plotly text: its pseudo-HTML escaped, ``%{...}`` no template field."""
    return html.escape(printable(str(value)), quote=False).replace("%", "&#37;")


def _finite(series: dict[int, float]) -> tuple[list[int], list[float]]:
    points = [(epoch, value) for epoch, value in sorted(series.items()) if math.isfinite(value)]
    return [epoch for epoch, _ in points], [value for _, value in points]


def _hover(label: str, metric: str | None, what: str) -> str:
    return f"{label}<br>{_plotly_text(metric)}<br>{what} %{{x}}: %{{y:.4g}}<extra></extra>"


def _add_entry(figure: Figure, index: int, entry: ReportEntry, color: str, rows: int) -> None:
    """``entry``'s traces on the first ``rows`` panels (loss, accuracy), in one legend group."""
    label = _plotly_text(entry.label)
    c = entry.diagnosis.curves
    best = entry.diagnosis.evidence.best_epoch
    panels = (
        ("loss", c.train_metric, c.train, c.val_metric, c.val),
        ("acc", c.train_acc_metric, c.train_acc, c.val_acc_metric, c.val_acc),
    )[:rows]
    for row, (quantity, train_name, train, val_name, val) in enumerate(panels, start=1):
        common = {
            "legendgroup": str(index),
            "legendgrouptitle_text": label,
            "showlegend": row == 1,  # the accuracy traces toggle with their group's loss traces
            "row": row,
            "col": 1,
        }
        for split, metric, series, dash in (
            ("train", train_name, train, "dash"),
            ("val", val_name, val, "solid"),
        ):
            epochs, values = _finite(series)
            if metric and epochs:
                figure.add_scatter(
                    x=epochs,
                    y=values,
                    name=f"{split} {quantity}",
                    mode="lines+markers",
                    line={"color": color, "dash": dash, "width": 2},
                    marker={"size": 4},
                    hovertemplate=_hover(label, metric, "epoch"),
                    **common,
                )
        if best is not None and math.isfinite(val.get(best, math.nan)):
            figure.add_scatter(
                x=[best],
                y=[val[best]],
                name=f"best epoch {best}",
                mode="markers",
                marker={"color": color, "symbol": "star", "size": 14, "line": {"width": 1}},
                hovertemplate=_hover(label, val_name, "best epoch"),
                **common,
            )


def build_figure(entries: Sequence[ReportEntry]) -> Figure:
    """The plotly figure of the page: a loss panel, and an accuracy panel when any entry has one.

    Traces of one entry share its colour and a legend group titled by its label (clicking one
    toggles them all); train is dashed, validation solid, NaN/inf points left out; a star marks
    the best epoch (lowest validation loss) on each panel.

    Example:
        >>> from lightreg.diagnose.engine import diagnose
        >>> run = Run("r", "keras_csv", {"loss": {0: 1.0, 1: 0.6}, "val_loss": {0: 1.1, 1: 0.8}})
        >>> [trace.name for trace in build_figure([ReportEntry("r", run, diagnose(run))]).data]
        ['train loss', 'val loss', 'best epoch 1']
    """
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    with_acc = any(e.diagnosis.curves.train_acc or e.diagnosis.curves.val_acc for e in entries)
    rows = 2 if with_acc else 1
    figure = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("loss", "accuracy")[:rows],
    )
    palette = qualitative.Plotly
    for index, entry in enumerate(entries):
        _add_entry(figure, index, entry, palette[index % len(palette)], rows)
    figure.update_xaxes(title_text="epoch", row=rows, col=1)
    figure.update_layout(
        template="plotly_white",
        height=380 * rows + 80,
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        legend={"groupclick": "togglegroup"},
        hovermode="closest",
    )
    return figure


def _number(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def _items(lines: Sequence[str], css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return "".join(f"<li{cls}>{_text(line)}</li>" for line in lines)


def _verdict_rows(entries: Sequence[ReportEntry]) -> str:
    rows = []
    for entry in entries:
        d = entry.diagnosis
        e = d.evidence
        color = _VERDICT_COLOR.get(d.verdict, "#1f2328")
        why = (
            _items(d.judgement.reasons)
            + _items(d.prescription.lines())
            + _items([*d.curves.notes, *entry.run.warnings], "note")
        )
        best = "-" if e.best_epoch is None else str(e.best_epoch)
        rows.append(
            "<tr>"
            f"<td>{_text(entry.label)}<br><span class=note>{_text(entry.run.path)}"
            f" ({_text(entry.run.format)})</span></td>"
            f'<td class=verdict style="color:{color}">{_text(d.verdict)}</td>'
            f"<td class=num>{best} / {e.epochs}</td>"
            f"<td class=num>{_number(e.final_train_loss)} / {_number(e.final_val_loss)}</td>"
            f"<td class=num>{_number(e.final_val_acc)}</td>"
            f"<td class=num>{_number(e.gl, '.1f')}</td>"
            f"<td><b>{_text(d.prescription.summary)}</b><ul>{why}</ul></td>"
            "</tr>"
        )
    head = "".join(
        f"<th>{name}</th>"
        for name in (
            "run",
            "verdict",
            "best / epochs",
            "final train / val loss",
            "final val acc",
            "GL %",
            "why and what to change",
        )
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _diff_lines(diff: str) -> str:
    def css(line: str) -> str:
        if line.startswith(("+++", "---", "@@")):
            return "hunk"
        return {"+": "add", "-": "del"}.get(line[:1], "")

    lines = []
    for line in diff.splitlines():
        cls = css(line)
        lines.append(f'<span class="{cls}">{_text(line)}</span>' if cls else _text(line))
    return "\n".join(lines)


def write_report(
    path: Path,
    entries: Sequence[ReportEntry],
    *,
    title: str,
    decisions: Sequence[str] = (),
    recipe_diff: str = "",
    overwrite: bool = True,
) -> Path:
    """Write the page for ``entries`` to ``path`` and return ``path``.

    Args:
        path: the HTML file to write (its folder must exist).
        entries: the runs, in legend order.
        title: the page's title and heading.
        decisions: lines listed in order under "Decisions" (left out when empty).
        recipe_diff: a unified diff shown under "Recipe diff" (left out when empty).
        overwrite: replace an existing ``path``; when false, an existing file is kept.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        OSError: ``path`` cannot be written.

    Example:
        >>> import tempfile
        >>> from lightreg.diagnose.engine import diagnose
        >>> run = Run("r", "keras_csv", {"loss": {0: 1.0, 1: 0.6}, "val_loss": {0: 1.1, 1: 0.8}})
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     page = write_report(Path(folder) / "r.html", [ReportEntry("r", run, diagnose(run))],
        ...                         title="x", decisions=["round 1: keep"])
        ...     "<li>round 1: keep</li>" in page.read_text(encoding="utf-8")
        True
    """
    figure = build_figure(entries)
    plot = figure.to_html(
        full_html=False,
        include_plotlyjs=True,
        default_width="100%",
        # no plotly logo link, no "Share chart" button (it uploads the data to Plotly Cloud)
        config={
            "displaylogo": False,
            "responsive": True,
            "modeBarButtonsToRemove": ["sendChartToCloud"],
        },
    )
    sections = [
        f"<h1>{_text(title)}</h1>",
        f'<section id="curves"><h2>Learning curves</h2>{plot}</section>',
        f'<section id="verdicts"><h2>Verdicts</h2>{_verdict_rows(entries)}</section>',
    ]
    if decisions:
        sections.append(
            f'<section id="decisions"><h2>Decisions</h2><ol>{_items(decisions)}</ol></section>'
        )
    if recipe_diff:
        sections.append(
            f'<section id="recipe-diff"><h2>Recipe diff</h2><pre>{_diff_lines(recipe_diff)}</pre></section>'
        )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    with path.open("w" if overwrite else "x", encoding="utf-8") as handle:
        handle.write(page)
    return path
