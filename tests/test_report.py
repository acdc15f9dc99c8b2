"""The HTML report (``lightreg.diagnose.report``, ``lightreg diagnose --report``): offline,
escaped, refuses to overwrite; the page in a real browser is in ``test_report_browser.py``."""

from __future__ import annotations

import html
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.diagnose.engine import diagnose, diagnose_paths
from lightreg.diagnose.report import ReportEntry, build_figure, write_report
from lightreg.diagnose.run import Run

FIXTURES = Path(__file__).parent / "fixtures" / "verdicts"
HOSTILE = "</script><script>alert(1)</script>"
runner = CliRunner()


def fixture_entries(*names: str) -> list[ReportEntry]:
    """One entry per verdict fixture (real Lightning / Keras logs), labelled by its folder."""
    entries = []
    for name in names:
        (d,) = diagnose_paths([FIXTURES / name]).diagnoses
        entries.append(ReportEntry(name, d.run, d))
    return entries


def hostile_entry() -> ReportEntry:
    run = Run(
        HOSTILE,
        "keras_csv",
        {
            "loss": {0: 1.0, 1: 0.6, 2: 0.4, 3: 0.3},
            "val_loss": {0: 1.1, 1: 0.8, 2: 0.9, 3: 1.2},
            f"val_{HOSTILE}_acc": {0: 0.5, 1: 0.6, 2: 0.6, 3: 0.55},
        },
        warnings=[HOSTILE],
    )
    return ReportEntry(HOSTILE, run, diagnose(run))


class _Resources(HTMLParser):
    """Every tag name, and every URL the page would load (script/img/iframe src, link href)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if (name == "src" or (tag == "link" and name == "href")) and value is not None:
                self.urls.append(value)


def parse(page: Path) -> _Resources:
    parser = _Resources()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_page_is_self_contained_and_offline(tmp_path: Path) -> None:
    page = write_report(
        tmp_path / "report.html", fixture_entries("overfitting", "good_fit"), title="two runs"
    )
    found = parse(page)
    assert found.urls == [], found.urls  # no script, stylesheet or image loaded from anywhere
    text = page.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in text and len(text) > 1_000_000  # plotly.js itself is inlined
    assert "overfitting" in text and "good_fit" in text


def test_page_shows_verdicts_decisions_and_recipe_diff(tmp_path: Path) -> None:
    entries = fixture_entries("overfitting", "keras_good_fit")
    decisions = ["round 1: overfitting (GL 31%) -> dropout 0 -> 0.3"]
    diff = "--- round 0\n+++ round 1\n-  dropout: 0.0\n+  dropout: 0.3\n"
    text = write_report(
        tmp_path / "r.html", entries, title="autofit", decisions=decisions, recipe_diff=diff
    ).read_text(encoding="utf-8")
    assert "<title>autofit</title>" in text
    assert "round 1: overfitting (GL 31%) -&gt; dropout 0 -&gt; 0.3" in text
    assert '<span class="del">-  dropout: 0.0</span>' in text
    assert '<span class="add">+  dropout: 0.3</span>' in text
    overfit = entries[0].diagnosis
    for line in overfit.judgement.reasons + tuple(overfit.prescription.lines()[:1]):
        assert html.escape(line) in text


def test_sections_without_content_are_left_out(tmp_path: Path) -> None:
    text = write_report(tmp_path / "r.html", fixture_entries("good_fit"), title="t").read_text()
    assert 'id="decisions"' not in text and 'id="recipe-diff"' not in text


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    benign = write_report(tmp_path / "a.html", fixture_entries("good_fit"), title="t")
    hostile = write_report(
        tmp_path / "b.html",
        [hostile_entry()],
        title=HOSTILE,
        decisions=[HOSTILE],
        recipe_diff=f"+{HOSTILE}\n",
    )
    text = hostile.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "</script><script>" not in text
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert parse(hostile).tags.count("script") == parse(benign).tags.count("script")


def test_figure_groups_each_entry_and_marks_the_best_epoch() -> None:
    entries = fixture_entries("overfitting", "keras_good_fit")
    figure = build_figure(entries)
    groups = {trace.legendgroup for trace in figure.data}
    assert len(groups) == 2  # clicking a legend item toggles its whole entry
    for entry in entries:
        best = entry.diagnosis.evidence.best_epoch
        curves = entry.diagnosis.curves
        (star,) = [
            t
            for t in figure.data
            if t.legendgrouptitle.text == entry.label
            and t.name.startswith("best epoch")
            and t.yaxis == "y"
        ]
        assert list(star.x) == [best] and list(star.y) == [curves.val[best]]
        (val,) = [
            t
            for t in figure.data
            if t.legendgrouptitle.text == entry.label and t.name == "val loss"
        ]
        assert list(val.x) == sorted(curves.val) and "epoch %{x}" in val.hovertemplate
    accuracy = [t for t in figure.data if t.yaxis == "y2" and t.name == "val acc"]
    assert len(accuracy) == 2  # both runs log accuracy: a second panel


def test_figure_without_accuracy_has_one_panel_and_skips_nonfinite() -> None:
    run = Run("r", "keras_csv", {"loss": {0: 1.0, 1: float("nan")}, "val_loss": {0: 1.0, 1: 2.0}})
    figure = build_figure([ReportEntry("r", run, diagnose(run))])
    assert {t.yaxis for t in figure.data} == {"y"}
    (train,) = [t for t in figure.data if t.name == "train loss"]
    assert list(train.x) == [0]


def test_hover_text_is_literal_for_plotly() -> None:
    """Plotly reads names as pseudo-HTML and ``%{...}`` as template fields: neither may apply."""
    run = Run("r", "keras_csv", {"loss": {0: 1.0, 1: 0.5}, "val_loss": {0: 1.0, 1: 0.8}})
    figure = build_figure([ReportEntry("<b>%{y}</b>", run, diagnose(run))])
    (val,) = [t for t in figure.data if t.name == "val loss"]
    assert val.legendgrouptitle.text == "&lt;b&gt;&#37;{y}&lt;/b&gt;"
    assert val.hovertemplate.startswith("&lt;b&gt;&#37;{y}&lt;/b&gt;<br>")


def test_existing_file_is_kept_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    target.write_text("mine")
    with pytest.raises(FileExistsError):
        write_report(target, fixture_entries("good_fit"), title="t", overwrite=False)
    assert target.read_text() == "mine"


def test_plotly_only_to_write_a_page_and_never_torch(tmp_path: Path) -> None:
    """``lightreg diagnose`` starts without plotly; writing a page imports neither torch nor
    lightning (the diagnose path runs where they are absent)."""
    code = (
        "import sys; from pathlib import Path; import lightreg.cli.diagnose\n"
        "from lightreg.diagnose.engine import diagnose_paths\n"
        "from lightreg.diagnose.report import ReportEntry, write_report\n"
        "assert 'plotly' not in sys.modules, 'plotly imported at start-up'\n"
        f"(d,) = diagnose_paths([{str(FIXTURES / 'good_fit')!r}]).diagnoses\n"
        f"write_report(Path({str(tmp_path / 'r.html')!r}), [ReportEntry('r', d.run, d)], title='t')\n"
        "assert 'plotly' in sys.modules\n"
        "assert not {'torch', 'lightning', 'pytorch_lightning'} & set(sys.modules), 'torch'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_cli_report_writes_the_page_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = runner.invoke(app, ["diagnose", str(FIXTURES), "--report", str(target), "--json"])
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    for run in ("overfitting/version_0", "keras_good_fit/history.csv", "diverging/version_0"):
        assert run in text
    assert f"wrote {target}" in result.stderr
    before = target.stat().st_mtime_ns
    again = runner.invoke(app, ["diagnose", str(FIXTURES), "--report", str(target)])
    assert again.exit_code == 2 and again.stdout == ""
    assert again.stderr.strip() == f"error: --report: {target} exists (use --force to overwrite)"
    assert target.stat().st_mtime_ns == before
    forced = runner.invoke(app, ["diagnose", str(FIXTURES), "--report", str(target), "--force"])
    assert forced.exit_code == 0, forced.output


def test_cli_report_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "report.html"
    result = runner.invoke(app, ["diagnose", str(FIXTURES / "good_fit"), "--report", str(target)])
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: --report: {target}: cannot write") and not target.exists()
