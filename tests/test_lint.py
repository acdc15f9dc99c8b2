"""The recipe linter: one recipe per rule, clean shipped recipes, and the CLI wiring."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.recipe import Recipe, load_recipe, resolve_recipe, shipped_recipes
from lightreg.recipe.lint import lint_recipe
from lightreg.recipe.schema import LSTMConfig

runner = CliRunner()
NO_BN = {"batch_norm": False}
LSTM = {"type": "lstm_layernorm"}


def _rules(raw: dict) -> list[str]:
    return [finding.rule for finding in lint_recipe(resolve_recipe({"name": "x", **raw}))]


@pytest.mark.parametrize(
    ("raw", "rules"),
    [
        ({}, []),
        (
            {"model": NO_BN, "regularization": {"dropout": 0.5, "l2": 1e-3}},
            ["heavy-dropout-heavy-l2"],
        ),
        (
            {"model": NO_BN, "regularization": {"dropout": 0.6, "weight_decay": 1e-2}},
            ["heavy-dropout-heavy-l2"],
        ),
        ({"model": NO_BN, "regularization": {"dropout": 0.4, "l2": 1e-2}}, []),
        ({"regularization": {"dropout": 0.6}}, ["bn-with-high-dropout"]),
        ({"regularization": {"dropout": 0.5}}, []),
        ({"data": {"batch_size": 4}}, ["bn-small-batch"]),
        ({"data": {"batch_size": 8}}, []),
        ({"model": NO_BN, "data": {"batch_size": 4}}, []),
        (
            {"optim": {"name": "adam"}, "regularization": {"weight_decay": 1e-4}},
            ["weight-decay-with-adam"],
        ),
        (
            {"optim": {"name": "rmsprop"}, "regularization": {"weight_decay": 1e-4}},
            ["weight-decay-with-adam"],
        ),
        ({"optim": {"name": "sgd"}, "regularization": {"weight_decay": 1e-4}}, []),
        ({"regularization": {"output_dropout": 0.2}}, ["output-dropout"]),
        ({"model": NO_BN, "regularization": {"dropout": 0.8}}, ["dropout-too-high"]),
        ({"model": NO_BN, "regularization": {"dropout": 0.7}}, []),
        ({"model": {**LSTM, "recurrent_dropout": 0.8}}, ["dropout-too-high"]),
        (
            {"regularization": {"mixup_alpha": 0.2, "label_smoothing": 0.1}},
            ["mixing-with-label-smoothing"],
        ),
        (
            {
                "model": {"type": "cnn"},
                "regularization": {"cutmix_alpha": 1.0, "label_smoothing": 0.1},
            },
            ["mixing-with-label-smoothing"],
        ),
        ({"regularization": {"mixup_alpha": 0.2}}, []),
        ({"early_stopping": {"monitor": "test_loss"}}, ["early-stopping-on-test"]),
        ({"early_stopping": {"monitor": "test_acc", "enabled": False}}, ["early-stopping-on-test"]),
    ],
)
def test_each_rule_fires_alone(raw, rules):
    assert _rules(raw) == rules


def test_batch_norm_with_layernorm_lstm():
    # LSTMConfig has no batch_norm field today, so only a hand-built model can carry one.
    model = LSTMConfig().model_copy(update={"batch_norm": True})
    recipe = Recipe(name="x").model_copy(update={"model": model})
    assert [finding.rule for finding in lint_recipe(recipe)] == ["bn-with-layernorm"]


def test_aggressive_preset_stacks_heavy_dropout_and_l2():
    # The chapter's aggressive preset is itself "heavy dropout + heavy L2" (Q7 advises against).
    assert _rules({"regularization": {"preset": "aggressive"}}) == ["heavy-dropout-heavy-l2"]


def test_messages_are_one_line_with_key_value_and_fix():
    recipe = resolve_recipe({"name": "x", "model": NO_BN, "regularization": {"dropout": 0.8}})
    (finding,) = lint_recipe(recipe)
    assert finding.message == (
        "regularization.dropout = 0.8 is above 0.7: most units are dropped and the model "
        "underfits; use 0.2-0.5"
    )


@pytest.mark.parametrize("name", sorted(shipped_recipes()))
def test_shipped_recipes_are_clean(name, tmp_path):
    # data.path is only read by image_folder/csv data; image_folder.yaml ships a placeholder.
    assert lint_recipe(load_recipe(name, [f"data.path={tmp_path}"])) == []


def test_validate_warns_on_stderr_and_strict_exits_2():
    argv = ["validate", "mlp", "--set", "regularization.output_dropout=0.2"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "warning: regularization.output_dropout = 0.2" in result.stderr
    assert "valid" in result.stdout
    strict = runner.invoke(app, [*argv, "--strict"])
    assert strict.exit_code == 2, strict.output
    assert "--strict" in strict.stderr and "valid" not in strict.stdout


def test_strict_validate_passes_a_clean_recipe():
    result = runner.invoke(app, ["validate", "mlp", "--strict"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


def test_fit_warns_at_start_and_strict_refuses():
    argv = ["fit", "mlp", "--dry-run", "--set", "data.batch_size=4"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "warning: data.batch_size = 4" in result.stderr
    assert "warning" not in result.stdout  # the resolved YAML stays clean on stdout
    strict = runner.invoke(app, [*argv, "--strict"])
    assert strict.exit_code == 2, strict.output
