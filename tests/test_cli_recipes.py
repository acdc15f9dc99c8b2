"""``lightreg recipes list|show|copy`` and its no-torch start-up."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.recipe import shipped_recipes

runner = CliRunner()


def test_list_names_every_shipped_recipe_with_its_description():
    result = runner.invoke(app, ["recipes", "list"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for name in shipped_recipes():
        assert name in result.stdout
    assert "MLP on scikit-learn's digits" in result.stdout


def test_show_prints_the_file_exactly():
    result = runner.invoke(app, ["recipes", "show", "mlp"])
    assert result.exit_code == 0, result.output
    assert result.stdout == shipped_recipes()["mlp"]


def test_show_unknown_name_suggests_the_closest():
    result = runner.invoke(app, ["recipes", "show", "mpl"])
    assert result.exit_code == 2
    assert "no shipped recipe 'mpl'; did you mean 'mlp'?" in result.stderr


def test_copy_writes_and_refuses_to_overwrite_without_force(tmp_path):
    dest = tmp_path / "mine.yaml"
    result = runner.invoke(app, ["recipes", "copy", "mlp", str(dest)])
    assert result.exit_code == 0, result.output
    assert dest.read_text() == shipped_recipes()["mlp"]

    dest.write_text("name: edited\n")
    refused = runner.invoke(app, ["recipes", "copy", "mlp", str(dest)])
    assert refused.exit_code == 2
    assert "already exists; pass --force" in refused.stderr
    assert dest.read_text() == "name: edited\n"

    forced = runner.invoke(app, ["recipes", "copy", "mlp", str(dest), "--force"])
    assert forced.exit_code == 0, forced.output
    assert dest.read_text() == shipped_recipes()["mlp"]


def test_copy_into_a_folder_uses_the_recipe_name(tmp_path):
    result = runner.invoke(app, ["recipes", "copy", "mlp.yaml", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mlp.yaml").read_text() == shipped_recipes()["mlp"]


def test_recipes_commands_import_neither_torch_nor_lightning(tmp_path):
    commands = [
        ["recipes", "list"],
        ["recipes", "show", "mlp"],
        ["recipes", "copy", "mlp", str(tmp_path / "r.yaml")],
    ]
    code = (
        "import sys\n"
        "from lightreg.cli.app import app\n"
        f"for argv in {json.dumps(commands)}:\n"
        "    try:\n"
        "        app(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, (argv, exc.code)\n"
        "heavy = sorted(m for m in ('torch', 'lightning') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "HEAVY=\n" in done.stdout, done.stdout + done.stderr
