"""Find a run's checkpoint, load it with ``torch.load(weights_only=True)`` only, and read it.

A file is read as it is. A folder (a lightreg run, or a Lightning ``version_N``) gives one
checkpoint, chosen among the weights files in it and in its ``checkpoints/`` subfolder:

1. ``best.ckpt`` (a lightreg run's best epoch);
2. the only checkpoint besides ``last.ckpt``, or the only one at all;
3. the best checkpoint that ``ModelCheckpoint`` recorded (``best_model_path``) in the newest one;
4. otherwise the folder is refused, its checkpoints named.

Every problem is a :class:`WeightsError` whose message is one line naming the file. Nothing is
ever unpickled beyond what ``weights_only=True`` allows: a file that needs more (a pickled
``nn.Module``, an ``argparse.Namespace`` in the hyperparameters) is refused.

Example:
    >>> import tempfile, torch
    >>> folder = Path(tempfile.mkdtemp())
    >>> torch.save(torch.nn.Linear(64, 32).state_dict(), folder / "model.pt")
    >>> found = diagnose_weights(folder)
    >>> found.checkpoint.name, found.picked, [layer.name for layer in found.report.layers]
    ('model.pt', 'the only checkpoint', ['weight'])
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from lightreg.run_files import BEST_CHECKPOINT, LAST_CHECKPOINT
from lightreg.text import short_repr
from lightreg.weights import CHECKPOINT_SUFFIXES, is_checkpoint_file
from lightreg.weights.spectrum import WeightsReport, analyze_state_dict

CHECKPOINTS_FOLDER = "checkpoints"
"""Where Lightning's ``ModelCheckpoint`` writes inside a ``version_N`` folder."""

_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


class WeightsError(ValueError):
    """A checkpoint that cannot be found, loaded or read; the message is one line naming it.

    Example:
        >>> str(WeightsError("model.pt: empty or truncated file"))
        'model.pt: empty or truncated file'
    """


@dataclass(frozen=True)
class LoadedWeights:
    """A checkpoint's state dict and what the file says about it.

    Attributes:
        checkpoint: the file read.
        source: ``"lightning"`` (a Lightning checkpoint's ``state_dict``), ``"state_dict"`` (a
            plain one), or ``"state_dict['KEY']"`` (one level down, as in
            ``torch.save({"model_state_dict": ...})``).
        state_dict: the tensors, by key.
        epoch: the checkpoint's epoch (Lightning's, 0-based), None when it has none.
        global_step: Lightning's optimizer step count, None when it has none.
        picked: why this file, when a folder was given (None for a file).

    Example:
        >>> LoadedWeights(Path("m.pt"), "state_dict", {}, None, None, None).source
        'state_dict'
    """

    checkpoint: Path
    source: str
    state_dict: Mapping[str, object]
    epoch: int | None
    global_step: int | None
    picked: str | None


@dataclass(frozen=True)
class WeightsDiagnosis:
    """One checkpoint, loaded and read: what :func:`diagnose_weights` returns.

    Example:
        >>> import tempfile, torch
        >>> path = Path(tempfile.mkdtemp()) / "m.pt"
        >>> torch.save(torch.nn.Linear(64, 32).state_dict(), path)
        >>> diagnose_weights(path).to_dict()["layers"][0]["shape"]
        [32, 64]
    """

    path: Path
    loaded: LoadedWeights
    report: WeightsReport

    @property
    def checkpoint(self) -> Path:
        """The file read (``path`` itself, or the one picked in the folder ``path``).

        Example:
            >>> WeightsDiagnosis(Path("m.pt"), LoadedWeights(Path("m.pt"), "state_dict", {},
            ...     None, None, None), WeightsReport([])).checkpoint
            PosixPath('m.pt')
        """
        return self.loaded.checkpoint

    @property
    def picked(self) -> str | None:
        """Why this checkpoint was picked in the folder given (None for a file).

        Example:
            >>> WeightsDiagnosis(Path("m.pt"), LoadedWeights(Path("m.pt"), "state_dict", {},
            ...     None, None, None), WeightsReport([])).picked is None
            True
        """
        return self.loaded.picked

    def to_dict(self) -> dict[str, object]:
        """The JSON record of one model (the schema in docs/weights.md).

        Example:
            >>> record = WeightsDiagnosis(Path("m.pt"), LoadedWeights(Path("m.pt"),
            ...     "state_dict", {}, None, None, None), WeightsReport([])).to_dict()
            >>> record["path"], record["summary"]["verdict"]
            ('m.pt', 'too_small')
        """
        return {
            "path": str(self.path),
            "checkpoint": str(self.checkpoint),
            "picked": self.picked,
            "source": self.loaded.source,
            "epoch": self.loaded.epoch,
            "global_step": self.loaded.global_step,
            "layers": [layer.to_dict() for layer in self.report.layers],
            "summary": self.report.summary.to_dict(),
        }


def _torch_load(path: Path) -> object:
    """``torch.load(weights_only=True)``, every failure turned into a one-line WeightsError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        needed = _UNSUPPORTED_GLOBAL.search(str(error))
        if needed:
            raise WeightsError(
                f"{path}: refused: it holds {needed.group(1)}, more than tensors and plain "
                "containers, and lightreg loads weights with torch.load(weights_only=True) only"
            ) from None
        raise WeightsError(f"{path}: not a PyTorch checkpoint (unreadable pickle)") from None
    except EOFError:
        raise WeightsError(f"{path}: empty or truncated file") from None
    except OSError as error:
        raise WeightsError(f"{path}: cannot read it ({error.strerror or error})") from None
    except RuntimeError as error:
        reason = str(error).split(". ")[0]
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({reason})") from None
    except Exception as error:  # noqa: BLE001 - a hostile file can raise anything from pickle
        raise WeightsError(f"{path}: not a PyTorch checkpoint ({type(error).__name__})") from None


def _tensor_count(value: object) -> int:
    if not isinstance(value, Mapping):
        return 0
    return sum(isinstance(item, torch.Tensor) for item in value.values())


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _state_dict(path: Path, content: object, picked: str | None) -> LoadedWeights:
    """Where the tensors are: Lightning's ``state_dict``, the top level, or one level down."""
    if not isinstance(content, Mapping):
        raise WeightsError(
            f"{path}: holds a {type(content).__name__}, not a state dict or a checkpoint"
        )
    epoch, step = _int_or_none(content.get("epoch")), _int_or_none(content.get("global_step"))
    if isinstance(content.get("state_dict"), Mapping):
        source = (
            "lightning" if "pytorch-lightning_version" in content else "state_dict['state_dict']"
        )
        return LoadedWeights(path, source, content["state_dict"], epoch, step, picked)
    if _tensor_count(content):
        return LoadedWeights(path, "state_dict", content, epoch, step, picked)
    nested = max(content, key=lambda key: _tensor_count(content[key]), default=None)
    if nested is None or not _tensor_count(content[nested]):
        keys = ", ".join(short_repr(key, 40) for key in list(content)[:8])
        raise WeightsError(f"{path}: no tensors in it, nor one level down (keys: {keys or 'none'})")
    return LoadedWeights(
        path, f"state_dict[{short_repr(nested, 40)}]", content[nested], epoch, step, picked
    )


def _recorded_best(checkpoint: object, candidates: list[Path]) -> Path | None:
    """The candidate that a ``ModelCheckpoint`` state in ``checkpoint`` records as best."""
    callbacks = checkpoint.get("callbacks") if isinstance(checkpoint, Mapping) else None
    if not isinstance(callbacks, Mapping):
        return None
    by_name = {candidate.name: candidate for candidate in candidates}
    for key, state in callbacks.items():
        if str(key).startswith("ModelCheckpoint") and isinstance(state, Mapping):
            best = Path(str(state.get("best_model_path") or "")).name
            if best in by_name:
                return by_name[best]
    return None


def _below(folder: Path, limit: int = 3) -> list[str]:
    """Up to ``limit`` weights files anywhere below ``folder``, for the refusal's hint."""
    found: list[str] = []
    for path in folder.rglob("*"):
        if is_checkpoint_file(path):
            found.append(str(path.relative_to(folder)))
            if len(found) == limit:
                break
    return found


def find_checkpoint(folder: Path) -> tuple[Path, str]:
    """The checkpoint a folder stands for, and why (the rules in the module's docstring).

    Raises:
        WeightsError: no checkpoint in the folder or its ``checkpoints/``, or several and
            none recorded as the best.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("best.ckpt", "last.ckpt"):
        ...     _ = (folder / name).write_bytes(b"")
        >>> find_checkpoint(folder)[0].name, find_checkpoint(folder)[1]
        ('best.ckpt', "lightreg's best epoch")
    """
    candidates = sorted(
        path
        for place in (folder, folder / CHECKPOINTS_FOLDER)
        if place.is_dir()
        for path in place.iterdir()
        if is_checkpoint_file(path)
    )
    suffixes = ", ".join(f"*{suffix}" for suffix in CHECKPOINT_SUFFIXES)
    if not candidates:
        below = _below(folder)
        hint = f"; below it: {', '.join(below)} (give one, or its folder)" if below else ""
        raise WeightsError(
            f"{folder}: no checkpoint ({suffixes}) in it or in its {CHECKPOINTS_FOLDER}/ "
            f"folder{hint}"
        )
    best = folder / BEST_CHECKPOINT
    if best in candidates:
        return best, "lightreg's best epoch"
    if len(candidates) == 1:
        return candidates[0], "the only checkpoint"
    others = [path for path in candidates if path.name != LAST_CHECKPOINT]
    if len(others) == 1:
        return others[0], f"the only checkpoint besides {LAST_CHECKPOINT}"
    newest = max(candidates, key=lambda path: path.stat().st_mtime)
    try:
        recorded = _recorded_best(_torch_load(newest), candidates)
    except WeightsError:  # an unreadable newest file records nothing; it is not the one asked for
        recorded = None
    if recorded is not None:
        return recorded, f"the best that ModelCheckpoint recorded in {newest.name}"
    names = ", ".join(str(path.relative_to(folder)) for path in candidates[:6])
    more = f" and {len(candidates) - 6} more" if len(candidates) > 6 else ""
    raise WeightsError(
        f"{folder}: {len(candidates)} checkpoints and none recorded as the best "
        f"({names}{more}): give one"
    )


def load_weights(path: Path) -> LoadedWeights:
    """Load a checkpoint file, or the one a folder stands for (see :func:`find_checkpoint`).

    Raises:
        WeightsError: the path is missing, unreadable, refused by ``weights_only=True``, or
            holds no state dict.

    Example:
        >>> import tempfile, torch
        >>> path = Path(tempfile.mkdtemp()) / "m.pt"
        >>> torch.save({"epoch": 3, "model_state_dict": torch.nn.Linear(2, 2).state_dict()}, path)
        >>> loaded = load_weights(path)
        >>> loaded.source, loaded.epoch, sorted(loaded.state_dict)
        ("state_dict['model_state_dict']", 3, ['bias', 'weight'])
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: no such file or folder")
    picked = None
    if path.is_dir():
        path, picked = find_checkpoint(path)
    return _state_dict(path, _torch_load(path), picked)


def diagnose_weights(path: Path | str) -> WeightsDiagnosis:
    """Load ``path`` (a checkpoint, or a folder holding one) and read every Linear/Conv weight.

    Raises:
        WeightsError: as :func:`load_weights`, or when no tensor is a layer weight.

    Example:
        >>> import tempfile, torch
        >>> path = Path(tempfile.mkdtemp()) / "m.pt"
        >>> torch.save(torch.nn.Conv2d(3, 16, 3).state_dict(), path)
        >>> diagnose_weights(path).report.layers[0].kind
        'conv'
    """
    loaded = load_weights(Path(path))
    report = analyze_state_dict(loaded.state_dict)
    if not report.layers:
        raise WeightsError(
            f"{loaded.checkpoint}: no Linear/Conv weight in it ({_tensor_count(loaded.state_dict)} "
            "tensor(s), none a weight of 2 or more dimensions)"
        )
    return WeightsDiagnosis(Path(path), loaded, report)
