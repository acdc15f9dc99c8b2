"""Recipe schema, presets, overrides and error messages."""

from __future__ import annotations

import textwrap

import pytest

from lightreg.presets import PRESETS, expand_preset
from lightreg.recipe import Recipe, RecipeError, load_recipe, recipe_to_yaml, resolve_recipe
from lightreg.recipe.overrides import apply_overrides, parse_value


def problems_of(raw: dict, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(RecipeError) as info:
        resolve_recipe(raw, overrides)
    return info.value.problems


def test_minimal_recipe_gets_defaults():
    recipe = resolve_recipe({"name": "tiny"})
    assert recipe.model.type == "mlp"
    assert recipe.regularization.preset == "none"
    assert recipe.early_stopping.patience == 10


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"regularization": {"dropuot": 0.1}},
            "regularization.dropuot: unknown key; did you mean 'dropout'?",
        ),
        ({"modle": {}}, "modle: unknown key; did you mean 'model'?"),
        (
            {"model": {"type": "mlp", "hiden": [3]}},
            "model.hiden: unknown key; did you mean 'hidden'?",
        ),
        (
            {"regularization": {"dropout": 1.5}},
            "regularization.dropout: input should be less than 1 (got 1.5)",
        ),
        (
            {"regularization": {"weight_decay": -1e-4}},
            "regularization.weight_decay: input should be greater than or equal to 0 (got -0.0001)",
        ),
        (
            {"early_stopping": {"patience": -1}},
            "early_stopping.patience: input should be greater than or equal to 0 (got -1)",
        ),
        (
            {"trainer": {"strategy": "dpp"}},
            "did you mean 'ddp'?",
        ),
        (
            {"model": {"type": "cnnx"}},
            "model.type: unknown type 'cnnx'; expected one of mlp, cnn, lstm_layernorm; "
            "did you mean 'cnn'?",
        ),
        (
            {"data": {"dataset": "csv", "path": "does/not/exist.csv"}},
            "data: path 'does/not/exist.csv': no such file",
        ),
        (
            {"data": {"dataset": "wine"}, "model": {"type": "cnn"}},
            "recipe: model.type 'cnn' needs image data",
        ),
        (
            {"trainer": {"devices": "abc"}},
            "trainer.devices: input should be a valid integer",
        ),
        (
            {"regularization": {"overfitting_monitor": {"criterion": "UP", "threshold": 0.5}}},
            "regularization.overfitting_monitor: threshold = 0.5 with criterion UP: expected a "
            "whole number of rising strips >= 1",
        ),
        (
            {"regularization": {"cutmix_alpha": 1.0}},
            "recipe: regularization.cutmix_alpha = 1 cuts boxes out of images; model.type 'mlp'",
        ),
        (
            {"early_stopping": {"monitor": "val_accuracy"}},
            "early_stopping.monitor: 'val_accuracy' is not a metric the models log; "
            "did you mean 'val_acc'?",
        ),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(raw, expected):
    problems = problems_of({"name": "x", **raw})
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected) or expected in problems[0]


def test_all_problems_reported_at_once():
    raw = {
        "name": "x",
        "regularization": {"dropuot": 0.1, "dropout": 2.0},
        "trainer": {"max_epochs": 0},
    }
    problems = problems_of(raw, ("oops",))
    assert len(problems) == 4
    assert any(p.startswith("--set 'oops'") for p in problems)
    assert any(p.startswith("trainer.max_epochs") for p in problems)


def test_missing_name_is_reported():
    assert problems_of({}) == ["name: required key is missing"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.4", 0.4),
        ("1e-4", 1e-4),
        ("20", 20),
        ("true", True),
        ("null", None),
        ("[64, 32]", [64, 32]),
    ],
)
def test_override_values_are_typed(text, value):
    assert parse_value(text) == value


def test_overrides_set_nested_keys_and_are_typed_by_schema():
    recipe = resolve_recipe(
        {"name": "x"}, ["regularization.dropout=0.4", "trainer.max_epochs=20", "model.hidden=[8]"]
    )
    assert recipe.regularization.dropout == 0.4
    assert recipe.trainer.max_epochs == 20
    assert recipe.model.hidden == [8]


def test_override_into_a_scalar_is_reported():
    _, problems = apply_overrides({"seed": 1}, ["seed.value=3"])
    assert problems == ["--set seed.value: seed is 1, not a section with keys"]


@pytest.mark.parametrize("preset", ["conservative", "moderate", "aggressive"])
def test_presets_follow_the_chapter_and_fill_only_missing_keys(preset):
    values = PRESETS[preset]
    recipe = resolve_recipe({"name": "x", "regularization": {"preset": preset}})
    assert recipe.regularization.dropout == values["regularization"]["dropout"]
    assert recipe.regularization.weight_decay == values["regularization"]["weight_decay"]
    assert recipe.early_stopping.patience == values["early_stopping"]["patience"]
    assert recipe.regularization.augment == values["regularization"]["augment"]
    override = resolve_recipe(
        {"name": "x", "regularization": {"preset": preset}}, ["regularization.dropout=0.05"]
    )
    assert override.regularization.dropout == 0.05


def test_preset_numbers_match_the_chapter_tables():
    table = {
        name: PRESETS[name]["regularization"] for name in ("conservative", "moderate", "aggressive")
    }
    assert [t["weight_decay"] for t in table.values()] == [1e-5, 1e-4, 1e-3]
    assert [t["dropout"] for t in table.values()] == [0.2, 0.3, 0.5]
    assert [t["label_smoothing"] for t in table.values()] == [0.0, 0.05, 0.1]
    assert [PRESETS[n]["early_stopping"]["patience"] for n in table] == [20, 15, 10]


def test_preset_skips_augmentation_for_tabular_data():
    expanded = expand_preset({"data": {"dataset": "wine"}, "regularization": {"preset": "heavy"}})
    assert "augment" not in expanded["regularization"]  # unknown preset: left for the schema
    recipe = resolve_recipe(
        {"name": "x", "data": {"dataset": "wine"}, "regularization": {"preset": "aggressive"}}
    )
    assert recipe.regularization.augment is None


def test_augment_list_is_checked_against_albumentations():
    problems = problems_of(
        {
            "name": "x",
            "regularization": {
                "augment": [
                    {"HorizontalFlp": {"p": 0.5}},
                    {"CoarseDropout": {"num_holes_range": [3, 1]}},
                ]
            },
        }
    )
    assert problems[0] == (
        "regularization.augment[0]: unknown transform 'HorizontalFlp'; did you mean 'HorizontalFlip'?"
    )
    assert problems[1].startswith("regularization.augment[1].CoarseDropout: num_holes_range")


def test_load_recipe_reports_file_problems(tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad_yaml)
    with pytest.raises(RecipeError, match="no such recipe file; did you mean 'mlp'"):
        load_recipe("mpl")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(RecipeError, match="expected a mapping of sections"):
        load_recipe(scalar)


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(evil)


def test_dry_run_yaml_round_trips(tmp_path):
    recipe = resolve_recipe({"name": "x", "regularization": {"preset": "moderate"}})
    text = recipe_to_yaml(recipe)
    assert text.index("type: mlp") < text.index("hidden:")
    again = tmp_path / "again.yaml"
    again.write_text(text)
    assert load_recipe(again) == recipe


def test_shipped_recipes_validate(tmp_path):
    from lightreg.recipe import shipped_recipes

    names = shipped_recipes()
    assert {"mlp", "cnn", "lstm_layernorm", "image_folder"} <= set(names)
    assert {f"{n}_baseline" for n in ("mlp", "cnn", "lstm_layernorm")} <= set(names)
    for name, text in names.items():
        assert text.startswith("#"), f"{name}.yaml must start with a comment"
        assert f"lightreg fit recipes/{name}.yaml" in text.split("\nname:")[0]
        # the image_folder template needs a real folder; digits recipes ignore data.path
        assert isinstance(load_recipe(name, [f"data.path={tmp_path}"]), Recipe)


def test_recipe_file_with_user_csv(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b,label\n1,2,x\n3,4,y\n")
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(
        textwrap.dedent(
            f"""
            name: user
            data: {{dataset: csv, path: {data}, label_column: label}}
            """
        )
    )
    assert load_recipe(recipe_file).data.path == data


def test_sharded_strategies_refuse_per_weight_regularizers():
    problems = problems_of(
        {"name": "x", "trainer": {"strategy": "fsdp"}, "regularization": {"max_norm": 3.0}}
    )
    assert problems == [
        "recipe: trainer.strategy 'fsdp' shards the weights, which regularization.max_norm, "
        "early_stopping.restore_best_weights need whole; use strategy 'ddp', or turn them off"
    ]
    fine = resolve_recipe(
        {"name": "x", "trainer": {"strategy": "fsdp"}, "early_stopping": {"enabled": False}}
    )
    assert fine.trainer.strategy == "fsdp"
