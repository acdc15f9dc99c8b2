"""A look at the weights: per-layer spectra of a checkpoint, read as WeightWatcher reads them.

- :mod:`lightreg.weights.spectrum`: eigenvalues (torch), the power-law fit, a reading per layer,
  the model-level summary;
- :mod:`lightreg.weights.load`: find a run's checkpoint, load it with
  ``torch.load(weights_only=True)`` only, and read it.

This module itself imports neither torch nor the others, so that ``lightreg diagnose`` can tell a
checkpoint from a log (:func:`is_checkpoint_file`) without paying for torch.

Example:
    >>> from pathlib import Path
    >>> is_checkpoint_file(Path("runs/mlp/version_0/best.ckpt")), is_checkpoint_file(Path("x.csv"))
    (True, False)
    >>> from lightreg.weights.load import diagnose_weights  # doctest: +SKIP
    >>> print(diagnose_weights("runs/mlp/version_0").report.summary.line)  # doctest: +SKIP
    typical: all 3 judged layer(s) have alpha in [2, 6]; mean alpha 3.41
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")
"""File names that hold weights: Lightning checkpoints and ``torch.save`` files."""


def is_checkpoint_file(path: Path) -> bool:
    """Whether ``path`` names a weights file by its suffix (case-insensitive); folders are not.

    Example:
        >>> is_checkpoint_file(Path("model.PTH")), is_checkpoint_file(Path("metrics.csv"))
        (True, False)
    """
    return path.suffix.lower() in CHECKPOINT_SUFFIXES and not path.is_dir()
