"""Hostile names reach the terminal as visible text: no rich markup, no escape sequences, no crash.

Run folders, metric names, paths and messages come from the user's disk; each one below used to
crash ``diagnose`` (exit 1, which CI reads as a ``--fail-on`` hit), hide itself as a hyperlink, or
send raw control characters to the terminal. ``--png`` errors used to be tracebacks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lightreg.cli.app import app

FIXTURES = Path(__file__).parent / "fixtures" / "verdicts"
GOOD_FIT = FIXTURES / "good_fit" / "version_0"
OVERFITTING = FIXTURES / "overfitting" / "version_0"
runner = CliRunner()
WIDE = {"COLUMNS": "300"}  # no path cell is cut short with an ellipsis

# folder name (may hold "/", then it is nested folders) -> how the run path must be shown
HOSTILE = {
    "x[/bold]": "x[/bold]/version_0",
    "[link=http://e]y": "[link=http:/e]y/version_0",
    "a\x1b[31mb": r"a\x1b[31mb/version_0",
    "n\nl": r"n\nl/version_0",
    "c\x9b31md": r"c\x9b31md/version_0",  # the one-byte CSI some terminals obey
}


def invoke(*args: object, env: dict[str, str] | None = None):
    return runner.invoke(app, ["diagnose", *map(str, args)], env=env or WIDE)


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def assert_clean(output: str) -> None:
    assert "\x1b" not in output and "\x9b" not in output, repr(output)
    assert "Traceback" not in output


def test_safe_escapes_markup_and_shows_control_characters() -> None:
    from lightreg.cli.console import safe

    assert safe("x[/bold]") == r"x\[/bold]"
    assert safe("[link=http://e]y") == r"\[link=http://e]y"
    assert safe("a\x1b[31mb\n") == r"a\x1b[31mb\n"
    assert safe(os.fsdecode(b"bad\xff")) == r"bad\xff"


@pytest.mark.parametrize(("name", "shown"), sorted(HOSTILE.items()))
@pytest.mark.parametrize("plot", [False, True], ids=["table", "plot"])
def test_hostile_run_folder_is_shown_literally(
    tmp_path: Path, name: str, shown: str, plot: bool
) -> None:
    copy_run(GOOD_FIT, tmp_path / name / "version_0")
    copy_run(OVERFITTING, tmp_path / "other" / "version_0")
    result = invoke(tmp_path, *(["--plot"] if plot else []))
    assert result.exit_code == 0, (result.output, result.exception)
    assert shown in result.stdout, result.stdout
    assert_clean(result.output)
    assert f"{shown}: good_fit" in result.stdout if plot else True


@pytest.mark.parametrize(("name", "shown"), sorted(HOSTILE.items()))
def test_hostile_run_folder_in_a_narrow_terminal(tmp_path: Path, name: str, shown: str) -> None:
    copy_run(GOOD_FIT, tmp_path / name / "version_0")
    copy_run(OVERFITTING, tmp_path / "other" / "version_0")
    result = invoke(tmp_path, env={"COLUMNS": "100"})  # prescriptions printed below the table
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"{shown}: keep the current regularization" in result.stdout, result.stdout
    assert_clean(result.output)


def test_fail_on_still_reads_the_verdict_with_a_hostile_name(tmp_path: Path) -> None:
    copy_run(OVERFITTING, tmp_path / "x[/bold]" / "version_0")
    result = invoke(tmp_path, "--fail-on", "good_fit")
    assert result.exit_code == 0, (result.output, result.exception)
    result = invoke(tmp_path, "--fail-on", "overfitting")
    assert result.exit_code == 1, (result.output, result.exception)
    assert "x[/bold]/version_0" in result.stdout


def test_non_utf8_run_folder(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path) + b"/bad\xff"
    os.mkdir(folder)
    copy_run(GOOD_FIT, Path(os.fsdecode(folder)) / "version_0")
    result = invoke(tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert r"bad\xff/version_0" in result.stdout
    pngs = tmp_path.parent / f"{tmp_path.name}_png"
    result = invoke(tmp_path, "--png", pngs)
    assert result.exit_code == 0, (result.output, result.exception)
    assert [p.name for p in pngs.iterdir()] == ["bad___version_0.png"]


def test_hostile_metric_names_in_legend_and_notes(tmp_path: Path) -> None:
    run = tmp_path / "version_0"
    run.mkdir()
    train, val = "tr[/b]\x1bain", "v[link=http://e]al\x07x"
    rows = [f'epoch,step,"{train}","{val}"']
    for epoch in range(8):
        rows += [
            f"{epoch},{epoch},{2 / (epoch + 1):.4f},",
            f"{epoch},{epoch},,{1 / (epoch + 2):.4f}",
        ]
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    result = invoke(run, "--train-metric", train, "--val-metric", val, "--png", tmp_path / "png")
    assert result.exit_code == 0, (result.output, result.exception)
    assert r"tr[/b]\x1bain" in result.stdout and r"v[link=http://e]al\x07x" in result.stdout
    assert_clean(result.output)


def test_unreadable_log_table_escapes_path_and_reason(tmp_path: Path) -> None:
    copy_run(GOOD_FIT, tmp_path / "good" / "version_0")
    broken = tmp_path / "x[/bold]\x1b" / "version_0"
    broken.mkdir(parents=True)
    (broken / "metrics.csv").write_text("")
    result = invoke(tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert r"x[/bold]\x1b/version_0" in result.stdout and "empty file" in result.stdout
    assert_clean(result.output)


def test_user_error_shows_control_characters(tmp_path: Path) -> None:
    result = invoke(tmp_path / "a\x1b[31mb[/bold]" / "missing")
    assert result.exit_code == 2
    assert r"a\x1b[31mb[/bold]/missing: no such file or folder" in result.stderr
    assert_clean(result.output)


def test_write_recipe_message_escapes_the_target(tmp_path: Path) -> None:
    (tmp_path / "x[").mkdir()
    target = tmp_path / "x[" / "bold]\x1b.yaml"
    result = invoke(OVERFITTING, "--write-recipe", target)
    assert result.exit_code == 0, (result.output, result.exception)
    assert target.is_file() and r"x[/bold]\x1b.yaml" in result.stderr
    assert_clean(result.output)


def test_recipes_copy_message_escapes_the_target(tmp_path: Path) -> None:
    target = tmp_path / "a\x1b[31m[b].yaml"
    result = runner.invoke(app, ["recipes", "copy", "mlp", str(target)], env=WIDE)
    assert result.exit_code == 0, (result.output, result.exception)
    assert target.is_file() and r"a\x1b[31m[b].yaml" in result.stdout
    assert_clean(result.output)


def test_recipes_unknown_name_is_shown_literally() -> None:
    result = runner.invoke(app, ["recipes", "show", "m\x1b[/b]"])
    assert result.exit_code == 2 and r"no shipped recipe 'm\x1b[/b]'" in result.stderr
    assert_clean(result.output)


def test_lint_warning_is_shown_literally(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from lightreg.cli.lint_report import report_lint
    from lightreg.recipe import Recipe, lint

    finding = lint.LintFinding("test-rule", "monitor 'v[/b]\x1bal' is odd")
    monkeypatch.setattr(lint, "lint_recipe", lambda recipe: [finding])
    report_lint(Recipe(name="x"), strict=False)
    captured = capsys.readouterr()
    assert r"warning: monitor 'v[/b]\x1bal' is odd" in captured.err
    assert_clean(captured.err)


# --png: every bad target is one line and exit code 2; nothing already written is lost


def test_png_into_a_file_or_dev_null_is_a_user_error(tmp_path: Path) -> None:
    a_file = tmp_path / "curves"
    a_file.write_text("keep me")
    for target in (a_file, Path("/dev/null"), a_file / "sub"):
        result = invoke(GOOD_FIT, "--png", target)
        assert result.exit_code == 2, (target, result.output, result.exception)
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
        assert f"--png: {target}" in line and "not a folder" in line, line
        assert_clean(result.output)
    assert a_file.read_text() == "keep me"


def test_png_into_an_unwritable_folder_is_a_user_error(tmp_path: Path) -> None:
    result = invoke(GOOD_FIT, "--png", "/proc/lightreg-curves")
    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith("error: --png: /proc/lightreg-curves") and "cannot write" in line
    assert_clean(result.output)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_png_into_a_read_only_folder_is_a_user_error(tmp_path: Path) -> None:
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    result = invoke(GOOD_FIT, "--png", read_only)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--png" in result.stderr and "cannot write" in result.stderr
    assert_clean(result.output)


def test_png_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    result = invoke(GOOD_FIT, "--png", tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    (existing,) = tmp_path.iterdir()
    existing.write_bytes(b"an earlier plot")
    result = invoke(GOOD_FIT, "--png", tmp_path)
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"--png: {existing} exists (use --force to overwrite)" in result.stderr
    assert result.stdout == "", "refused before printing anything"
    assert existing.read_bytes() == b"an earlier plot"
    result = invoke(GOOD_FIT, "--png", tmp_path, "--force")
    assert result.exit_code == 0, (result.output, result.exception)
    assert existing.read_bytes().startswith(b"\x89PNG")
