"""lightreg: regularization for PyTorch Lightning.

The top-level package stays light (no torch import), so that ``lightreg --help`` and
``lightreg diagnose`` start fast. Import the library from its modules::

    from lightreg.callbacks import WeightPenalty, MaxNorm, EarlyStopping
"""

__version__ = "0.1.0"
