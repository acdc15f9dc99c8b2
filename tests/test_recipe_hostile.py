"""Hostile and absurd recipes: each is refused with one line and exit code 2, fast, no traceback."""

from __future__ import annotations

import time
import typing

import pytest
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.recipe import RecipeError, load_recipe, resolve_recipe
from lightreg.recipe.schema import OptimConfig

runner = CliRunner()


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(RecipeError) as info:
        resolve_recipe(raw)
    return info.value.problems


LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{chr(ord(name) - 1)}'] * 9)}]\n" for name in "bcdefghi"
)
"""The 542-byte "billion laughs": 9**9 strings once every alias is expanded."""


def _refused(args: list[str]) -> str:
    """Run the CLI; assert exit 2 with exactly one error line and no traceback; return the line."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _refused_everywhere(recipe: str, *overrides: str) -> str:
    """The one error line, the same from ``validate`` and ``fit --dry-run``."""
    sets = [part for value in overrides for part in ("--set", value)]
    line = _refused(["validate", recipe, *sets])
    assert _refused(["fit", recipe, "--dry-run", *sets]) == line
    return line


HOSTILE_YAML = [
    pytest.param(
        "name: x\ntrainer: {max_epochs: 3}\nseed: 1\ntrainer:\n  max_epochs: 30\n",
        "duplicate key 'trainer' at lines 2 and 4",
        id="A6-duplicate-section",
    ),
    pytest.param(
        "name: x\ntrainer:\n  max_epochs: 3\n  max_epochs: 30\n",
        "duplicate key 'trainer.max_epochs' at lines 3 and 4",
        id="A6-duplicate-nested-key",
    ),
    pytest.param(
        "name: x\n" + LAUGHS,
        "more than 100,000 values once aliases are expanded",
        id="B1-billion-laughs",
    ),
    pytest.param("name: x\nseed: &s [*s]\n", "alias *s refers to itself", id="B1-recursive-alias"),
    pytest.param(
        "name: x\ndeep:\n  " + "- " * 5000 + "x\n",
        "line 3: nested deeper than 100 levels",
        id="B4-5000-deep-block",
    ),
    pytest.param(
        "name: x\ndeep: " + "[" * 5000 + "]" * 5000 + "\n",
        "line 2: not valid YAML (exceeded maximum nesting depth)",
        id="B4-5000-deep-flow",
    ),
    pytest.param("name: x\nseed: 4294967296\n", "seed: input should be less than", id="C-seed"),
    pytest.param(
        "name: x\ndata: {batch_size: " + "1" + "0" * 100 + "}\n",
        "data.batch_size: input should be less than or equal to 65536",
        id="C-batch-size-1e100",
    ),
    pytest.param(
        "name: x\nmodel: {hidden: [100000000000]}\n",
        "model.hidden[0]: input should be less than or equal to 65536",
        id="C-hidden-1e11",
    ),
    pytest.param(
        'name: x\nlogging: {dir: "runs\\0x"}\n',
        "logging.dir: must not contain a NUL byte",
        id="C-nul-in-logging-dir",
    ),
    pytest.param(
        'name: x\ndata: {dataset: csv, path: "a\\0.csv"}\n',
        "data.path: must not contain a NUL byte",
        id="C-nul-in-data-path",
    ),
    pytest.param(
        "name: x\ntrainer: {devices: [0, -1]}\n",
        "trainer.devices: device ids must be 0 to 1023 (got [0, -1])",
        id="C-negative-device",
    ),
    pytest.param(
        "name: x\nregularization: {mixup_alpha: .inf}\n",
        "regularization.mixup_alpha: must be a finite number (got inf)",
        id="C-inf-float",
    ),
    pytest.param(
        "name: x\noptim: {lr: .nan}\n", "optim.lr: must be a finite number (got nan)", id="C-nan-lr"
    ),
    pytest.param(
        "name: x\nmodel: {type: cnn}\nregularization: {augment: [{Blur: {blur_limit: 100000000000000000000}}]}\n",
        "regularization.augment[0].Blur: fails on an 8x8x1 image",
        id="C-augment-fails-when-applied",
    ),
    pytest.param(
        "name: x\nmodel: {type: cnn}\nregularization: {augment: [{GaussNoise: {std_range: high}}]}\n",
        "regularization.augment[0].GaussNoise: std_range",
        id="C-augment-wrong-type",
    ),
    pytest.param(
        "name: x\nregularization: {augment: [{RandomCrop: {height: 6, width: 6}}]}\n",
        "regularization.augment[0].RandomCrop: turns an 8x8x1 image into 6x6x1",
        id="C-augment-changes-the-shape",
    ),
]


@pytest.mark.parametrize(("text", "expected"), HOSTILE_YAML)
def test_hostile_recipe_is_one_line_exit_2_in_validate_and_fit(text, expected, tmp_path):
    recipe = tmp_path / "hostile.yaml"
    recipe.write_text(text)
    started = time.perf_counter()
    line = _refused_everywhere(str(recipe))
    assert expected in line, line
    assert line.startswith(f"error: {recipe}: "), line
    assert len(line) < 400, line
    assert time.perf_counter() - started < 30  # minutes and tens of GB before


def test_a_50_mb_recipe_is_refused_at_once_naming_file_size_and_limit(tmp_path):
    recipe = tmp_path / "huge.yaml"
    with recipe.open("wb") as file:
        file.truncate(50 * 1024 * 1024)  # sparse: costs no disk
    started = time.perf_counter()
    line = _refused_everywhere(str(recipe))
    assert time.perf_counter() - started < 2
    assert line == f"error: {recipe}: 52,428,800 bytes, over the 1,048,576-byte limit"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("seed=[&a [1,1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], "
         "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], "
         "[*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]]",
         "--set seed: line 1: more than 100,000 values once aliases are expanded"),
        ("trainer={max_epochs: 3, max_epochs: 30}",
         "--set trainer: duplicate key 'max_epochs' at lines 1 and 1; keep one"),
        ("seed=" + "[" * 200 + "]" * 200, "--set seed: line 1: nested deeper than 100 levels"),
    ],
)  # fmt: skip
def test_hostile_override_value_is_one_line(override, expected):
    line = _refused_everywhere("mlp", override)
    assert line == f"error: shipped recipe 'mlp': {expected}", line


def test_int_precision_is_read_as_its_string_form():
    assert resolve_recipe({"name": "x", "trainer": {"precision": 32}}).trainer.precision == "32"
    assert load_recipe("mlp", ["trainer.precision=32"]).trainer.precision == "32"
    assert resolve_recipe({"name": "x", "trainer": {"precision": 16}}).trainer.precision == (
        "16-mixed"
    )  # Lightning's own reading of 16
    with pytest.raises(RecipeError, match=r"trainer.precision: input should be '32', '16-mixed'"):
        resolve_recipe({"name": "x", "trainer": {"precision": 8}})


def test_every_float_field_refuses_non_finite_values():
    problems = []
    for key, value in [("optim.momentum", "-.inf"), ("trainer.gradient_clip_val", ".nan")]:
        with pytest.raises(RecipeError) as info:
            load_recipe("mlp", [f"{key}={value}"])
        problems += info.value.problems
    assert [p.split(": ", 1)[1] for p in problems] == [
        "optim.momentum: must be a finite number (got -inf)",
        "trainer.gradient_clip_val: must be a finite number (got nan)",
    ]


def test_test_split_monitor_rule_has_one_message_in_linter_and_preflight():
    pytest.importorskip("torch")
    from lightreg.preflight import preflight_problems
    from lightreg.recipe.lint import lint_recipe

    recipe = resolve_recipe({"name": "x", "early_stopping": {"monitor": "test_acc"}})
    (finding,) = [f for f in lint_recipe(recipe) if f.rule == "early-stopping-on-test"]
    assert finding.message in preflight_problems(recipe)
    assert finding.message.startswith("early_stopping.monitor = 'test_acc': the test split is")


def test_optimizer_names_come_from_one_tuple():
    pytest.importorskip("torch")
    from lightreg.models.base import ClassifierModule
    from lightreg.optim import OPTIMIZER_NAMES

    assert typing.get_args(OptimConfig.model_fields["name"].annotation) == OPTIMIZER_NAMES
    with pytest.raises(ValueError, match="`optimizer` can be " + ", ".join(OPTIMIZER_NAMES)):
        ClassifierModule(num_classes=2, optimizer="lion")


def test_diagnose_skips_a_bombed_config_with_a_warning(tmp_path):
    from lightreg.diagnose.readers.hparams import find_config

    (tmp_path / "recipe.yaml").write_text("name: x\n" + LAUGHS)
    (tmp_path / "hparams.yaml").write_text("lr: 0.1\nlr: 0.2\n")
    config, source, warnings = find_config(tmp_path)
    assert (config, source) == (None, None)
    assert warnings == [
        "config not read: recipe.yaml: line 7: more than 100,000 values once aliases are expanded",
        "config not read: hparams.yaml: duplicate key 'lr' at lines 1 and 2; keep one",
    ]


def test_diagnose_json_stays_small_on_a_bombed_recipe(tmp_path):
    run = tmp_path / "runs" / "version_0"
    run.mkdir(parents=True)
    rows = "".join(f"{epoch},{epoch},{1 - epoch / 10},{1 - epoch / 20}\n" for epoch in range(6))
    (run / "metrics.csv").write_text("epoch,step,train_loss,val_loss\n" + rows)
    (run / "recipe.yaml").write_text("name: x\n" + LAUGHS)
    result = runner.invoke(app, ["diagnose", str(tmp_path / "runs"), "--json"])
    assert result.exit_code == 0, result.output
    assert len(result.output) < 20_000
    assert "more than 100,000 values" in result.output


def test_validate_prints_a_markup_like_recipe_path_literally(tmp_path):
    folder = tmp_path / "x["
    folder.mkdir()
    recipe = folder / "bold].yaml"
    recipe.write_text("name: x\n")
    result = runner.invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 0, result.output
    assert f"ok {recipe}: recipe 'x' is valid" in result.output


def test_unknown_keys_and_values_are_shown_bounded_and_printable():
    raw = {"name": "x", "regularization": {"k\x1b[31m" * 20_000: 1}, "model": {"type": "z" * 10**6}}
    problems = problems_of(raw)
    assert len(problems) == 2 and all(len(p) < 400 and "\x1b" not in p for p in problems), problems
    assert problems[1].startswith("regularization.k\\x1b[31mk"), problems


@pytest.mark.parametrize("preset", [[1], {"a": 1}])
def test_a_preset_that_is_not_a_name_is_a_schema_error(preset):
    (problem,) = problems_of({"name": "x", "regularization": {"preset": preset}})
    assert problem.startswith("regularization.preset: input should be 'none', 'conservative'")
