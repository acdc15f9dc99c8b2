"""The ``lightreg`` typer app: one module per command, combined here.

Start-up stays fast: no command module imports torch or lightning at import time.

Example:
    $ lightreg --help
    $ lightreg fit recipes/mlp.yaml --set trainer.max_epochs=5
"""

from __future__ import annotations

import typer

from lightreg.cli import autofit as autofit_command
from lightreg.cli import diagnose as diagnose_command
from lightreg.cli import fit as fit_command
from lightreg.cli import sweep as sweep_command
from lightreg.cli import validate as validate_command
from lightreg.cli.recipes import recipes_app

app = typer.Typer(
    name="lightreg",
    help="Regularization for PyTorch Lightning: train from recipes, diagnose any run's logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("fit")(fit_command.fit)
app.command("validate")(validate_command.validate)
app.command("diagnose")(diagnose_command.diagnose)
app.command("sweep")(sweep_command.sweep)
app.command("autofit")(autofit_command.autofit)
app.add_typer(recipes_app, name="recipes")


def main() -> None:
    """Console-script entry point.

    Example:
        $ lightreg --help
        $ python -m lightreg validate recipes/mlp.yaml
    """
    app()
