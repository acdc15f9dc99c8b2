"""The callbacks from a LightningCLI config, as a user adds them to an existing project."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import yaml
from ddp_helpers import TinyClassifier, loader
from lightning.pytorch.cli import LightningCLI

from lightreg.callbacks import MaxNorm, WeightPenalty

torch.set_num_threads(1)


class TinyData(pl.LightningDataModule):
    def __init__(self, n: int = 32) -> None:
        super().__init__()
        self.n = n

    def train_dataloader(self):
        return loader(self.n)

    def val_dataloader(self):
        return loader(8)


class BigSteps(TinyClassifier):
    def __init__(self, lr: float = 2.0) -> None:
        super().__init__(lr=lr)


def test_callbacks_from_a_lightning_cli_config(tmp_path):
    config = {
        "trainer": {
            "max_epochs": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "callbacks": [
                {"class_path": "lightreg.callbacks.MaxNorm", "init_args": {"max_value": 0.25}},
                {"class_path": "lightreg.callbacks.WeightPenalty", "init_args": {"l2": 1e-3}},
                {
                    "class_path": "lightreg.callbacks.EarlyStopping",
                    "init_args": {"monitor": "val_loss", "patience": 2},
                },
            ],
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = LightningCLI(
        BigSteps,
        TinyData,
        args=["--config", str(path), "--trainer.default_root_dir", str(tmp_path)],
        run=False,
        save_config_callback=None,
    )
    max_norm = next(c for c in cli.trainer.callbacks if isinstance(c, MaxNorm))
    assert max_norm.max_value == 0.25
    assert any(isinstance(c, WeightPenalty) and c.l2 == 1e-3 for c in cli.trainer.callbacks)
    cli.trainer.fit(cli.model, cli.datamodule)
    norms = torch.cat(
        [m.weight.norm(dim=1) for m in cli.model.modules() if isinstance(m, torch.nn.Linear)]
    )
    assert norms.max() <= 0.25 * (1 + 1e-6)
