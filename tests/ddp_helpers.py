"""Tiny models and data for the callback tests, and the 2-process CPU DDP script.

Run as a script (``python tests/ddp_helpers.py OUTDIR``), it trains a tiny classifier with
``EarlyStopping(restore_best_weights=True)`` and ``MaxNorm`` on 2 CPU processes (DDP, gloo) and
saves each rank's final weights and callback state to ``OUTDIR/rank{r}.pt``. The validation
loss is scripted, and different on each rank (``val_loss`` is logged without ``sync_dist``), so
the callbacks must average it over ranks to agree on the best epoch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

QUIET = {
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
    "logger": False,
}


class TinyClassifier(pl.LightningModule):
    """An ordinary classifier: nothing in it knows about lightreg."""

    def __init__(self, in_features: int = 4, num_classes: int = 3, lr: float = 0.1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.lr = lr
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, 8),
            nn.LayerNorm(8),
            nn.ReLU(),
            nn.Linear(8, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y), on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class ScriptedValLoss(TinyClassifier):
    """Logs ``val_losses[epoch]`` as ``val_loss`` (``rank1_val_losses`` on ranks >= 1).

    Keeps a copy of the weights after every epoch's validation in ``weights_at_epoch``.
    """

    def __init__(
        self,
        val_losses: Sequence[float],
        rank1_val_losses: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.val_losses = list(val_losses)
        self.rank1_val_losses = list(rank1_val_losses or val_losses)
        self.weights_at_epoch: dict[int, dict[str, torch.Tensor]] = {}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        values = self.val_losses if self.global_rank == 0 else self.rank1_val_losses
        self.log("val_loss", torch.tensor(values[self.current_epoch]), on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            state = self.state_dict()
            self.weights_at_epoch[self.current_epoch] = {k: v.clone() for k, v in state.items()}


def loader(n: int = 32, batch_size: int = 8, shape: Sequence[int] = (4,), classes: int = 3):
    """A seeded random classification DataLoader (list batches [x, y])."""
    generator = torch.Generator().manual_seed(n)
    x = torch.randn(n, *shape, generator=generator)
    y = torch.randint(classes, (n,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def main(outdir: str) -> None:
    from lightreg.callbacks import EarlyStopping, MaxNorm

    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    # Alone, rank 0 would keep epoch 1 and rank 1 epoch 2; their mean is best at epoch 2.
    model = ScriptedValLoss([1.0, 0.5, 0.7, 0.8, 0.9, 1.0], [1.0, 0.9, 0.4, 0.8, 0.9, 1.0], lr=0.5)
    stop = EarlyStopping("val_loss", patience=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=6,
        callbacks=[stop, MaxNorm(0.5)],
        **QUIET,
    )
    trainer.fit(model, loader(64), loader(16))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    best = model.weights_at_epoch[stop.best_epoch] if stop.best_epoch is not None else None
    result = {
        "state": state,
        "best_epoch": stop.best_epoch,
        "stopped_epoch": stop.stopped_epoch,
        "best_state": best,
        "max_row_norm": max(
            float(m.weight.norm(dim=1).max()) for m in model.modules() if isinstance(m, nn.Linear)
        ),
    }
    torch.save(result, Path(outdir) / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1])
