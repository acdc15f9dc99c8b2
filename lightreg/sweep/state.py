"""The resumable sweep state: ``<sweep dir>/sweep.json``, rewritten after every run.

Each configuration is ``pending``, ``running`` (handed to a backend by a sweep that did not see
it end), ``done`` or ``failed``. A ``running`` configuration remembers which ``version_*`` folders
its run folder held before it started, so that ``--resume`` finds the folder its run made and
continues it from ``last.ckpt``.

Example:
    >>> from lightreg.sweep.plan import plan_sweep
    >>> state = SweepState.fresh(Path("/tmp/s/sweep.json"), plan_sweep("mlp", presets=["none"]))
    >>> [(run.slug, run.status) for run in state.runs]
    [('none', 'pending')]
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from lightreg.run_files import LAST_CHECKPOINT
from lightreg.sweep.plan import SweepPlan
from lightreg.text import short_repr

STATE_FILE = "sweep.json"
MAX_STATE_BYTES = 64 * 2**20
"""The largest ``sweep.json`` read back (a 100,000-configuration sweep writes about 40 MB)."""
Status = Literal["pending", "running", "done", "failed"]


def _versions(root: Path) -> list[int]:
    """The ``N`` of every ``version_N`` folder under ``root``, sorted."""
    names = [p.name.removeprefix("version_") for p in root.glob("version_*") if p.is_dir()]
    return sorted(int(n) for n in names if n.isdigit())


@dataclass
class RunState:
    """One configuration's progress.

    Example:
        >>> RunState("none", "runs/mlp-none", "abc").status
        'pending'
    """

    slug: str
    run_root: str
    fingerprint: str
    status: Status = "pending"
    run_dir: str | None = None
    versions_before: list[int] = field(default_factory=list)
    error: str | None = None

    def start(self) -> None:
        """Mark it running and note the run folders that exist already.

        Example:
            >>> run = RunState("none", "/no/such/runs", "abc", error="killed")
            >>> run.start()
            >>> run.status, run.versions_before, run.error
            ('running', [], None)
        """
        self.status = "running"
        self.versions_before = _versions(Path(self.run_root))
        self.error = None

    def partial_run(self) -> Path | None:
        """The newest run folder an interrupted run of this configuration left with a ``last.ckpt``.

        Example:
            >>> RunState("none", "/no/such", "abc", status="running").partial_run() is None
            True
        """
        if self.status != "running":
            return None
        made = [v for v in _versions(Path(self.run_root)) if v not in self.versions_before]
        for version in reversed(made):
            folder = Path(self.run_root) / f"version_{version}"
            if (folder / LAST_CHECKPOINT).is_file():
                return folder
        return None


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_text_or_null(value: object) -> bool:
    return value is None or isinstance(value, str)


def _is_versions(value: object) -> bool:
    return isinstance(value, list) and all(type(n) is int and n >= 0 for n in value)


_Check = tuple[Callable[[object], bool], str]
_RUN_FIELDS: dict[str, _Check] = {
    "slug": (_is_text, "a string"),
    "run_root": (_is_text, "a string"),
    "fingerprint": (_is_text, "a string"),
    "status": (lambda value: value in get_args(Status), f"one of {', '.join(get_args(Status))}"),
    "run_dir": (_is_text_or_null, "a string or null"),
    "versions_before": (_is_versions, "a list of version numbers (integers from 0)"),
    "error": (_is_text_or_null, "a string or null"),
}
_STATE_FIELDS: dict[str, _Check] = {
    "runs": (lambda value: isinstance(value, list), "a list"),
    "best_recipe": (_is_text_or_null, "a string or null"),
}
_RUN_REQUIRED = {
    f.name for f in fields(RunState) if f.default is MISSING and f.default_factory is MISSING
}


def _object_problem(
    where: str, data: object, checks: dict[str, _Check], required: set[str]
) -> str | None:
    """The first way ``data`` is not an object of ``checks``' fields, or ``None``."""
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        return f"{prefix}expected an object, got {short_repr(data)}"
    unknown = [key for key in data if key not in checks]
    if unknown:
        return f"{prefix}unknown field {short_repr(unknown[0])}"
    missing = sorted(required - data.keys())
    if missing:
        return f"{prefix}missing field {missing[0]!r}"
    for key, value in data.items():
        ok, expected = checks[key]
        if not ok(value):
            dot = f"{where}." if where else ""
            return f"{dot}{key}: expected {expected}, got {short_repr(value)}"
    return None


def _state_problem(data: Any) -> str | None:
    """The first field of a parsed ``sweep.json`` that a sweep did not write, or ``None``.

    Example:
        >>> _state_problem({"runs": [{"slug": "none", "run_root": "r", "fingerprint": 1}]})
        'runs[0].fingerprint: expected a string, got 1'
    """
    problem = _object_problem("", data, _STATE_FIELDS, {"runs"})
    if problem is not None:
        return problem
    seen: set[str] = set()
    for number, run in enumerate(data["runs"]):
        where = f"runs[{number}]"
        problem = _object_problem(where, run, _RUN_FIELDS, _RUN_REQUIRED)
        if problem is not None:
            return problem
        if run["slug"] in seen:
            return f"{where}.slug: {short_repr(run['slug'])} is given twice"
        seen.add(run["slug"])
    return None


@contextmanager
def hold_folder(folder: Path) -> Iterator[None]:
    """Make ``folder`` (parents too) and hold it for one sweep: a second sweep there is refused.

    The hold is an advisory ``flock`` on the folder, which the kernel releases when the process
    ends, even by ``kill -9``; so the check of ``sweep.json`` and the runs that follow belong to
    one sweep. (Where ``fcntl`` is missing, on Windows, nothing is held.)

    Raises:
        ValueError: when another sweep holds ``folder``.
        OSError: when ``folder`` cannot be made or opened.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp()) / "mlp-sweep"
        >>> with hold_folder(folder):
        ...     with hold_folder(folder):
        ...         pass
        Traceback (most recent call last):
        ...
        ValueError: ...: another sweep is running in this folder; wait for it, or use another folder
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"{folder}: another sweep is running in this folder; wait for it, or use another folder"
            ) from None
        yield
    finally:
        os.close(handle)


@dataclass
class SweepState:
    """Every configuration's :class:`RunState`, saved as JSON at ``path``.

    Example:
        >>> SweepState(Path("sweep.json"), []).unfinished()
        []
    """

    path: Path
    runs: list[RunState]
    best_recipe: str | None = None

    @classmethod
    def fresh(cls, path: Path, plan: SweepPlan) -> SweepState:
        """A state with every configuration of ``plan`` pending.

        Example:
            >>> from lightreg.sweep.plan import plan_sweep
            >>> plan = plan_sweep("mlp", presets=["none", "moderate"])
            >>> [run.slug for run in SweepState.fresh(Path("sweep.json"), plan).runs]
            ['none', 'moderate']
        """
        runs = [
            RunState(c.slug, str(c.recipe.logging.dir / c.recipe.name), c.fingerprint)
            for c in plan.configurations
        ]
        return cls(path, runs)

    @classmethod
    def load(cls, path: Path) -> SweepState:
        """Read a saved state.

        Raises:
            ValueError: when the file is not a sweep state.

        Example:
            >>> import tempfile
            >>> path = Path(tempfile.mkdtemp()) / "sweep.json"
            >>> SweepState(path, [RunState("none", "runs/x", "abc")]).save()
            >>> SweepState.load(path).runs[0].slug
            'none'
        """
        try:
            with path.open("rb") as file:
                text = file.read(MAX_STATE_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
        if len(text) > MAX_STATE_BYTES:
            raise ValueError(f"{path}: larger than {MAX_STATE_BYTES:,} bytes; not a sweep state")
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError(f"{path}: nested too deeply; not a sweep state") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not a readable sweep state ({exc})") from None
        problem = _state_problem(data)
        if problem is not None:
            raise ValueError(f"{path}: {problem}")
        runs = [RunState(**run) for run in data["runs"]]
        return cls(path, runs, data.get("best_recipe"))

    def save(self) -> None:
        """Write the state atomically (a crash leaves the old file or the new one).

        Example:
            >>> import tempfile
            >>> path = Path(tempfile.mkdtemp()) / "sub" / "sweep.json"
            >>> SweepState(path, [], best_recipe="best_recipe.yaml").save()
            >>> json.loads(path.read_text())
            {'runs': [], 'best_recipe': 'best_recipe.yaml'}
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"runs": [asdict(run) for run in self.runs], "best_recipe": self.best_recipe}
        partial = self.path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, self.path)

    def mismatches(self, plan: SweepPlan) -> list[str]:
        """Why ``plan`` is not the sweep this state was saved for (empty when it is).

        Example:
            >>> from lightreg.sweep.plan import plan_sweep
            >>> plan = plan_sweep("mlp", presets=["none"])
            >>> SweepState.fresh(Path("s.json"), plan).mismatches(plan)
            []
        """
        saved = {run.slug: run.fingerprint for run in self.runs}
        planned = {c.slug: c.fingerprint for c in plan.configurations}
        lines = [
            f"configuration {slug!r} is not in the saved sweep"
            for slug in planned.keys() - saved.keys()
        ]
        lines += [
            f"saved configuration {slug!r} is not planned now"
            for slug in saved.keys() - planned.keys()
        ]
        lines += [
            f"configuration {slug!r} resolves to a different recipe than when it was saved"
            for slug in planned.keys() & saved.keys()
            if planned[slug] != saved[slug]
        ]
        roots = {run.slug: run.run_root for run in self.runs}
        lines += [
            f"configuration {run.slug!r} keeps its runs in {run.run_root!r}, not in "
            f"{short_repr(roots[run.slug], limit=200)} as saved"
            for run in SweepState.fresh(self.path, plan).runs
            if run.slug in roots and roots[run.slug] != run.run_root
        ]
        return sorted(lines)

    def run(self, slug: str) -> RunState:
        """The state of configuration ``slug``.

        Example:
            >>> state = SweepState(Path("sweep.json"), [RunState("none", "r", "a"), RunState("x", "r", "b")])
            >>> state.run("x").fingerprint
            'b'
        """
        return next(run for run in self.runs if run.slug == slug)

    def unfinished(self) -> list[RunState]:
        """Configurations still to run: pending, interrupted (running) or failed.

        Example:
            >>> runs = [RunState("a", "r", "f", status="done"), RunState("b", "r", "f", status="failed")]
            >>> [run.slug for run in SweepState(Path("sweep.json"), runs).unfinished()]
            ['b']
        """
        return [run for run in self.runs if run.status != "done"]
