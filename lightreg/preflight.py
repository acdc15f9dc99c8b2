"""What a recipe asks of this machine that it cannot give: checked before Lightning starts.

The schema checks a recipe on its own; these checks need the machine (is there a GPU, is
deepspeed installed) or the training loop (what is logged during fit), and run at ``fit`` time.

Example:
    >>> from lightreg.recipe import resolve_recipe
    >>> preflight_problems(resolve_recipe({"name": "x", "trainer": {"accelerator": "cpu"}}))
    []
"""

from __future__ import annotations

import importlib.util

from lightreg.recipe.schema import Recipe, monitor_on_test_split


def preflight_problems(recipe: Recipe) -> list[str]:
    """One line per setting this machine (or a training run) cannot honour, naming the fix.

    Example:
        >>> from lightreg.recipe import resolve_recipe
        >>> recipe = resolve_recipe({"name": "x", "early_stopping": {"monitor": "test_loss"}})
        >>> preflight_problems(recipe)[0].split(":")[0]
        "early_stopping.monitor = 'test_loss'"
    """
    import torch

    trainer = recipe.trainer
    test_split = monitor_on_test_split(recipe.early_stopping.monitor)
    problems = [test_split] if test_split else []
    has_cuda = torch.cuda.is_available()
    if trainer.accelerator in ("gpu", "cuda") and not has_cuda:
        problems.append(
            f"trainer.accelerator = '{trainer.accelerator}': no CUDA GPU on this machine; "
            "use --set trainer.accelerator=cpu"
        )
    on_cpu = trainer.accelerator == "cpu" or (trainer.accelerator == "auto" and not has_cuda)
    if trainer.precision == "16-mixed" and on_cpu:
        problems.append(
            "trainer.precision = '16-mixed' needs a GPU; on CPU use --set trainer.precision=bf16-mixed"
        )
    if trainer.shards_weights and on_cpu:
        problems.append(
            f"trainer.strategy = '{trainer.strategy}' needs GPUs; on CPU use --set trainer.strategy=ddp"
        )
    if trainer.strategy == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        problems.append(
            "trainer.strategy = 'deepspeed': deepspeed is not installed (pip install deepspeed)"
        )
    return problems
