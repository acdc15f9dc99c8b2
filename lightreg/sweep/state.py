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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from lightreg.run_files import LAST_CHECKPOINT
from lightreg.sweep.plan import SweepPlan

STATE_FILE = "sweep.json"
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
            data = json.loads(path.read_text(encoding="utf-8"))
            runs = [RunState(**run) for run in data["runs"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable sweep state ({exc})") from None
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
