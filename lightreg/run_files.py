"""Names of the files in a run directory (``<logging.dir>/<name>/version_N/``).

Plain constants, importable by the CLI and the diagnose readers without pydantic or torch.

Example:
    >>> RECIPE_FILE, LAST_CHECKPOINT
    ('recipe.yaml', 'last.ckpt')
"""

RECIPE_FILE = "recipe.yaml"
LAST_CHECKPOINT = "last.ckpt"
