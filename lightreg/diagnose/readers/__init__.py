"""Log readers for ``lightreg diagnose``: training logs on disk -> :class:`~lightreg.diagnose.run.Run`.

Formats: Lightning CSVLogger, TensorBoard event files, Keras CSVLogger, MLflow file store. No torch,
no lightning; numpy only once TensorBoard files are read.

Example:
    >>> from lightreg.diagnose.readers import read_runs
    >>> runs, errors = read_runs(["tests/fixtures/readers/lightning_tb"])
    >>> runs[0].format, sorted(runs[0].series), errors
    ('tensorboard', ['train_loss_epoch', 'val_loss'], [])
"""

from lightreg.diagnose.readers.errors import ReadError
from lightreg.diagnose.readers.read import read_runs

__all__ = ["ReadError", "read_runs"]
