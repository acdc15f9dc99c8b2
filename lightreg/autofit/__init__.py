"""``lightreg autofit``: the closed loop of fit, diagnose, apply the prescription, refit.

Importing this package imports neither torch nor lightning (the runs import them).

Example:
    >>> from lightreg.autofit import Settings, pick, ranked_patches, start_autofit
    >>> Settings().rounds
    6
"""

from lightreg.autofit.candidates import (
    Candidate,
    candidates,
    canonical,
    fingerprint,
    ranked_patches,
)
from lightreg.autofit.loop import (
    REPORT_FILE,
    AutofitInterrupted,
    best_recipe_text,
    decision_lines,
    recipe_diff,
    run_autofit,
    run_recipe,
    start_autofit,
)
from lightreg.autofit.state import (
    AUTOFIT_FILE,
    AutofitError,
    AutofitState,
    Outcome,
    Round,
    Settings,
    Trial,
)
from lightreg.autofit.stop import NO_IMPROVEMENT_ROUNDS, Stop, pick, stop_after

__all__ = [
    "AUTOFIT_FILE",
    "NO_IMPROVEMENT_ROUNDS",
    "REPORT_FILE",
    "AutofitError",
    "AutofitInterrupted",
    "AutofitState",
    "Candidate",
    "Outcome",
    "Round",
    "Settings",
    "Stop",
    "Trial",
    "best_recipe_text",
    "candidates",
    "canonical",
    "decision_lines",
    "fingerprint",
    "pick",
    "ranked_patches",
    "recipe_diff",
    "run_autofit",
    "run_recipe",
    "start_autofit",
    "stop_after",
]
