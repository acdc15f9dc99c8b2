"""``lightreg sweep``: the chapter's progressive regularization search and lr x l2 x dropout grid.

Plan the configurations (presets x grid), run them on a backend (local, parallel, or Ray Tune),
diagnose each run with :mod:`lightreg.diagnose`, rank them, and keep the winner's recipe.
Importing this package imports neither torch nor lightning (the runs import them).

Example:
    >>> from lightreg.sweep import plan_sweep
    >>> len(plan_sweep("mlp", presets=["none", "moderate"]).configurations)
    2
"""

from lightreg.sweep.backends import (
    BackendError,
    Job,
    JobResult,
    LocalBackend,
    RayBackend,
    SweepInterrupted,
)
from lightreg.sweep.driver import BEST_RECIPE, diagnose_sweep, run_sweep, write_best_recipe
from lightreg.sweep.plan import Configuration, SweepPlan, plan_sweep
from lightreg.sweep.rank import Entry, rank
from lightreg.sweep.state import STATE_FILE, RunState, SweepState, hold_folder

__all__ = [
    "BEST_RECIPE",
    "STATE_FILE",
    "BackendError",
    "Configuration",
    "Entry",
    "Job",
    "JobResult",
    "LocalBackend",
    "RayBackend",
    "RunState",
    "SweepInterrupted",
    "SweepPlan",
    "SweepState",
    "diagnose_sweep",
    "hold_folder",
    "plan_sweep",
    "rank",
    "run_sweep",
    "write_best_recipe",
]
