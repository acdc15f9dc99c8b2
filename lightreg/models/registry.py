"""Which LightningModule a recipe's ``model.type`` builds, and the input layout it takes.

New model types register here; the runner calls :func:`build_model` and nothing else.

Example:
    >>> from lightreg.recipe import Recipe
    >>> layout_for("lstm_layernorm")
    'sequence'
    >>> model = build_model(Recipe(name="x"), input_shape=(64,), num_classes=10)
    >>> type(model).__name__
    'MLPClassifier'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from lightreg.data.datamodule import Layout
from lightreg.models.base import ClassifierModule
from lightreg.recipe.schema import Recipe

Builder = Callable[[Recipe, tuple[int, ...], int, dict[str, Any]], ClassifierModule]


def _training_kwargs(recipe: Recipe) -> dict[str, Any]:
    return {
        "lr": recipe.optim.lr,
        "optimizer": recipe.optim.name,
        "momentum": recipe.optim.momentum,
        "weight_decay": recipe.regularization.weight_decay,
        "label_smoothing": recipe.regularization.label_smoothing,
        "scheduler": recipe.optim.scheduler,
        "max_epochs": recipe.trainer.max_epochs,
        "sam_rho": recipe.regularization.sam_rho,
    }


def _build_mlp(
    recipe: Recipe, input_shape: tuple[int, ...], num_classes: int, training: dict[str, Any]
) -> ClassifierModule:
    from lightreg.models.mlp import MLPClassifier

    cfg, reg = recipe.model, recipe.regularization
    return MLPClassifier(
        in_features=math.prod(input_shape),
        num_classes=num_classes,
        hidden=list(cfg.hidden),
        dropout=reg.dropout,
        output_dropout=reg.output_dropout,
        batch_norm=cfg.batch_norm,
        bn_position=cfg.bn_position,
        activation=cfg.activation,
        residual=cfg.residual,
        **training,
    )


def _build_cnn(
    recipe: Recipe, input_shape: tuple[int, ...], num_classes: int, training: dict[str, Any]
) -> ClassifierModule:
    from lightreg.models.cnn import CNNClassifier

    cfg, reg = recipe.model, recipe.regularization
    channels, *size = input_shape  # (C, H, W) images or (C, L) signals
    return CNNClassifier(
        in_channels=channels,
        image_size=tuple(size),
        num_classes=num_classes,
        channels=list(cfg.channels),
        convs_per_block=cfg.convs_per_block,
        head=list(cfg.head),
        dropout=reg.dropout,
        progressive_dropout=cfg.progressive_dropout,
        output_dropout=reg.output_dropout,
        batch_norm=cfg.batch_norm,
        bn_position=cfg.bn_position,
        activation=cfg.activation,
        kernel_size=cfg.kernel_size,
        stride=cfg.stride,
        padding=cfg.padding,
        pool=cfg.pool,
        block=cfg.block,
        drop_path=reg.drop_path,
        dropblock=reg.dropblock.rate,
        dropblock_size=reg.dropblock.block_size,
        **training,
    )


def _build_lstm(
    recipe: Recipe, input_shape: tuple[int, ...], num_classes: int, training: dict[str, Any]
) -> ClassifierModule:
    from lightreg.models.lstm import LSTMClassifier

    cfg = recipe.model
    return LSTMClassifier(
        input_size=input_shape[-1],
        num_classes=num_classes,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=recipe.regularization.dropout,
        recurrent_dropout=cfg.recurrent_dropout,
        batch_norm=cfg.batch_norm,
        readout=cfg.readout,
        embedding=cfg.embedding,
        steps=input_shape[0],  # (T, F) sequences
        **training,
    )


MODELS: dict[str, tuple[Layout, Builder]] = {
    "mlp": ("flat", _build_mlp),
    "cnn": ("image", _build_cnn),
    "lstm_layernorm": ("sequence", _build_lstm),
}


def layout_for(model_type: str) -> Layout:
    """The sample layout (``flat``, ``image``, ``sequence``) a model type takes.

    Example:
        >>> layout_for("mlp"), layout_for("cnn")
        ('flat', 'image')
    """
    return MODELS[model_type][0]


def build_model(recipe: Recipe, input_shape: tuple[int, ...], num_classes: int) -> ClassifierModule:
    """The LightningModule for ``recipe.model``, wired to its regularization and optimizer.

    Raises:
        ValueError: for a model type with no builder registered.

    Example:
        >>> recipe = Recipe(name="x", model={"type": "cnn", "channels": [4]})
        >>> type(build_model(recipe, input_shape=(1, 8, 8), num_classes=10)).__name__
        'CNNClassifier'
        >>> build_model(recipe, input_shape=(1, 40), num_classes=10).features[0][0]  # a signal
        Conv1d(1, 4, kernel_size=(3,), stride=(1,), padding=(1,), bias=False)
    """
    if recipe.model.type not in MODELS:
        raise ValueError(f"model.type {recipe.model.type!r} has no builder; known: {list(MODELS)}")
    _, builder = MODELS[recipe.model.type]
    return builder(recipe, input_shape, num_classes, _training_kwargs(recipe))
