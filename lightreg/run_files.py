"""Names of the files in a run directory (``<logging.dir>/<name>/version_N/``).

Plain constants, importable by the CLI and the diagnose readers without pydantic or torch.

Example:
    >>> RECIPE_FILE, BEST_CHECKPOINT, LAST_CHECKPOINT
    ('recipe.yaml', 'best.ckpt', 'last.ckpt')
"""

from __future__ import annotations

from pathlib import Path

RECIPE_FILE = "recipe.yaml"
BEST_CHECKPOINT = "best.ckpt"
LAST_CHECKPOINT = "last.ckpt"


def claim_next_dir(parent: Path, prefix: str, start: int = 0) -> Path:
    """Create and return ``parent/<prefix>N`` for the lowest free ``N >= start``, atomically.

    ``mkdir`` without ``exist_ok`` either creates the folder or fails because another process
    already has it; on a clash the next number is tried. Two processes that call this at the same
    moment never get the same folder.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> [claim_next_dir(root, "version_").name for _ in range(2)]
        ['version_0', 'version_1']
    """
    parent.mkdir(parents=True, exist_ok=True)
    taken = [
        int(suffix)
        for entry in parent.glob(f"{prefix}*")
        if (suffix := entry.name[len(prefix) :]).isdigit()
    ]
    number = max([start - 1, *taken]) + 1
    while True:
        candidate = parent / f"{prefix}{number}"
        try:
            candidate.mkdir()
        except FileExistsError:
            number += 1
            continue
        return candidate
