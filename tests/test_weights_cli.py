"""``lightreg diagnose CHECKPOINT`` and ``--weights``: tables, JSON (docs/weights.md), errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from lightreg.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "fixtures" / "verdicts"
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, ["diagnose", *map(str, args)])


def mlp_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Conv2d(8, 24, 3), nn.Linear(48, 10))
    return model.state_dict()


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": mlp_state(), "epoch": 4, "global_step": 40}, path)
    return path


def test_a_checkpoint_gets_a_table_and_a_verdict(checkpoint: Path) -> None:
    result = invoke(checkpoint)
    assert result.exit_code == 0, result.output
    assert "weights of" in result.output and "epoch 4, step 40" in result.output
    for name, shape in [("0", "48x64"), ("2", "24x8x3x3"), ("3", "10x48")]:
        assert re.search(rf"│ {name} +│ {shape} ", result.output), result.output
    assert "too small to judge" in result.output  # the 10-output head
    assert re.search(r"(typical|trained|mixed).*mean alpha \d", result.output)


def test_json_follows_the_documented_schema(checkpoint: Path) -> None:
    result = invoke(checkpoint, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    docs = (ROOT / "docs" / "weights.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)```", docs, re.S).group(1))
    (model,) = document["models"]
    documented = example["models"][0]
    assert document.keys() == example.keys()
    assert model.keys() == documented.keys()
    assert model["summary"].keys() == documented["summary"].keys()
    assert all(layer.keys() == documented["layers"][0].keys() for layer in model["layers"])
    for key in [*model, *model["layers"][0], *model["summary"]]:
        assert f"`{key}`" in docs, f"{key} is not documented"
    assert [layer["shape"] for layer in model["layers"]] == [[48, 64], [24, 8, 3, 3], [10, 48]]
    assert (model["source"], model["epoch"], model["picked"]) == (
        "state_dict['state_dict']",
        4,
        None,
    )
    head = model["layers"][-1]
    assert (head["reading"], head["alpha"], head["tail"]) == ("too_small", None, None)
    assert sum(model["summary"]["counts"].values()) == 3


def test_weights_option_reads_a_run_folder_best_checkpoint(tmp_path: Path) -> None:
    torch.save({"state_dict": mlp_state(0), "epoch": 2}, tmp_path / "best.ckpt")
    torch.save({"state_dict": mlp_state(1), "epoch": 9}, tmp_path / "last.ckpt")
    result = invoke("--weights", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    (model,) = json.loads(result.stdout)["models"]
    assert (Path(model["checkpoint"]).name, model["epoch"]) == ("best.ckpt", 2)
    assert model["picked"] == "lightreg's best epoch"
    table = invoke("--weights", tmp_path)
    assert "best.ckpt, lightreg's best epoch" in table.output


def test_bad_files_are_one_line_each_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save(nn.Linear(2, 2), tmp_path / "module.pth")
    result = invoke(tmp_path / "empty.pt", tmp_path / "module.pth", tmp_path / "missing.ckpt")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines), result.output
    assert "empty.pt: empty or truncated file" in lines[0]
    assert "module.pth: refused" in lines[1] and "weights_only=True" in lines[1]
    assert "missing.ckpt: no such file or folder" in lines[2]
    assert "Traceback" not in result.output


def test_weights_and_logs_do_not_mix(checkpoint: Path) -> None:
    result = invoke(checkpoint, LOGS)
    assert result.exit_code == 2 and "is a checkpoint and" in result.output
    result = invoke(checkpoint, "--png", "out", "-t", "min_epochs=4")
    assert result.exit_code == 2
    assert "--png reads training logs, not weights" in result.output
    assert "--threshold reads training logs" in result.output


def test_names_from_files_are_shown_literally(tmp_path: Path) -> None:
    path = tmp_path / "x[bold]\x1b[31m.ckpt"
    torch.save({"blk[red].weight": torch.randn(40, 30)}, path)
    result = invoke(path)
    assert result.exit_code == 0, result.output
    assert "x[bold]\\x1b[31m.ckpt" in result.output and "blk[red]" in result.output
    assert "\x1b" not in result.output


def test_logs_path_never_imports_torch_with_the_weights_branch() -> None:
    code = f"""
import sys
from pathlib import Path
from typer.testing import CliRunner
import lightreg.weights
from lightreg.cli.diagnose_weights import weights_mode
from lightreg.cli.app import app
assert not weights_mode([Path({str(LOGS)!r})], False, {{}})
result = CliRunner().invoke(app, ["diagnose", {str(LOGS)!r}])
assert result.exit_code == 0, result.output
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lightning")))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
