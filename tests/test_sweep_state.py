"""``sweep.json`` as a hostile or hand-edited file, and one sweep per folder at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_sweep_plan import base_recipe
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.recipe import load_recipe
from lightreg.sweep import Entry, SweepState, hold_folder, plan_sweep, write_best_recipe
from lightreg.sweep import state as state_module

runner = CliRunner()


def saved_state(tmp_path: Path) -> tuple[Path, dict]:
    """A valid sweep.json for presets none,moderate of the tiny recipe, and its JSON data."""
    plan = plan_sweep(base_recipe(tmp_path), presets=["none", "moderate"])
    path = plan.default_dir / "sweep.json"
    SweepState.fresh(path, plan).save()
    return path, json.loads(path.read_text())


def resume(tmp_path: Path):
    argv = ["sweep", str(tmp_path / "tiny.yaml"), "--presets", "none,moderate", "--resume"]
    return runner.invoke(app, argv)


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    ("edit", "field", "expected"),
    [
        (lambda d: d.update(runs={}), "runs", "a list"),
        (lambda d: d.update(best_recipe=3), "best_recipe", "a string or null"),
        (lambda d: d.update(extra=1), "unknown field 'extra'", ""),
        (lambda d: d["runs"][1].update(status="finished"), "runs[1].status", "one of pending"),
        (lambda d: d["runs"][0].update(slug=["none"]), "runs[0].slug", "a string"),
        (lambda d: d["runs"][0].update(versions_before=["0"]), "runs[0].versions_before", "list"),
        (lambda d: d["runs"][0].update(versions_before=[True]), "runs[0].versions_before", "list"),
        (lambda d: d["runs"][0].update(run_dir=7), "runs[0].run_dir", "a string or null"),
        (lambda d: d["runs"][0].update(error={"a": 1}), "runs[0].error", "a string or null"),
        (lambda d: d["runs"][1].pop("fingerprint"), "runs[1]: missing field 'fingerprint'", ""),
        (lambda d: d["runs"][1].update(colour="red"), "runs[1]: unknown field 'colour'", ""),
        (lambda d: d["runs"].append("x"), "runs[2]", "an object"),
        (lambda d: d["runs"][1].update(slug="none"), "runs[1].slug: 'none' is given twice", ""),
    ],
)
def test_a_hand_edited_state_is_refused_naming_the_file_and_the_field(
    tmp_path, edit, field, expected
):
    path, data = saved_state(tmp_path)
    edit(data)
    path.write_text(json.dumps(data))
    line = one_error_line(resume(tmp_path))
    assert line.startswith(f"error: {path}: {field}"), line
    assert expected in line, line


def test_a_state_that_is_not_an_object_is_refused(tmp_path):
    path, _ = saved_state(tmp_path)
    path.write_text("[1, 2]")
    line = one_error_line(resume(tmp_path))
    assert line.startswith(f"error: {path}: expected an object"), line


def test_a_moved_run_folder_is_a_mismatch(tmp_path):
    path, data = saved_state(tmp_path)
    data["runs"][0]["run_root"] = str(tmp_path / "elsewhere")
    path.write_text(json.dumps(data))
    result = resume(tmp_path)
    assert result.exit_code == 2, result.output
    assert "configuration 'none' keeps its runs in" in result.output


def test_a_deeply_nested_state_is_one_line(tmp_path):
    path, _ = saved_state(tmp_path)
    path.write_text("[" * 200_000)
    line = one_error_line(resume(tmp_path))
    assert line.startswith(f"error: {path}: ") and "nested too deeply" in line, line


def test_a_huge_state_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path, _ = saved_state(tmp_path)
    monkeypatch.setattr(state_module, "MAX_STATE_BYTES", 100)
    line = one_error_line(resume(tmp_path))
    assert line.startswith(f"error: {path}: larger than 100 bytes"), line


def test_a_valid_state_loads_back(tmp_path):
    path, data = saved_state(tmp_path)
    data["runs"][0].update(status="done", run_dir="runs/x/version_0", versions_before=[0, 2])
    path.write_text(json.dumps(data))
    loaded = SweepState.load(path)
    assert [(run.slug, run.status) for run in loaded.runs] == [
        ("none", "done"),
        ("moderate", "pending"),
    ]
    assert loaded.runs[0].versions_before == [0, 2]


def test_one_sweep_at_a_time_in_a_folder(tmp_path):
    path, _ = saved_state(tmp_path)
    with hold_folder(path.parent):
        line = one_error_line(resume(tmp_path))
        assert "another sweep is running in this folder" in line, line
        with pytest.raises(ValueError, match="another sweep is running"), hold_folder(path.parent):
            pass
    with hold_folder(path.parent):  # released when the first sweep ends
        pass


def test_a_sweep_folder_that_cannot_be_made_is_one_line(tmp_path):
    base_recipe(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["sweep", str(tmp_path / "tiny.yaml"), "--presets", "none", "--out", str(blocker / "s")]
    line = one_error_line(runner.invoke(app, argv))
    assert line.startswith(f"error: {blocker / 's'}: cannot make the sweep folder"), line


def test_a_run_folder_name_cannot_add_keys_to_the_best_recipe(tmp_path):
    path, _ = saved_state(tmp_path)
    plan = plan_sweep(tmp_path / "tiny.yaml", presets=["none", "moderate"])
    winner = Entry("none", "good_fit", run_dir=str(tmp_path / "x\nname: injected"))
    written = write_best_recipe(plan, SweepState.load(path), winner, path.parent)
    assert load_recipe(written).name == "tiny"
    assert "x\\nname: injected" in written.read_text().splitlines()[1]
