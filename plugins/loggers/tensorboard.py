"""TensorBoard logger: ``runs/<id>/tensorboard/`` event files (``torch.utils.tensorboard``).

Optional: ``pip install 'deepfake-harness[tensorboard]'``. Select it with ``harness run --logger
tensorboard`` and view with ``tensorboard --logdir runs``. Tags follow timm / DeepfakeBench usage:
``train/loss``, ``train/<term>`` for each loss term, ``train/lr``, ``val/auc``; the x axis is the
optimizer step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.api import HarnessError, RunFolder, hookimpl

#: record keys that are not scalars to plot
NOT_SCALARS = {"step", "epoch"}


class TensorBoardUnavailable(HarnessError, RuntimeError):
    """The tensorboard package is missing; the message says what to install."""


class TensorBoardLogger:
    def __init__(self, run_dir: Path, config: Any = None, flush_secs: int = 30) -> None:
        writer_cls = self.check()
        self.log_dir = RunFolder(run_dir).tensorboard
        self.writer = writer_cls(log_dir=str(self.log_dir), flush_secs=flush_secs)
        if config is not None and hasattr(config, "to_dict"):
            import json

            # the run's configuration as text, next to the curves (TensorBoard's TEXT tab)
            self.writer.add_text("config", "```\n" + json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str) + "\n```", 0)

    @staticmethod
    def check() -> Any:
        """SummaryWriter, or TensorBoardUnavailable saying what to install."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise TensorBoardUnavailable(
                "the tensorboard logger needs the tensorboard package: pip install 'deepfake-harness[tensorboard]' "
                f"(or pip install tensorboard) ({exc})"
            ) from None
        return SummaryWriter

    def log(self, record: dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        for key, value in record.items():
            if key in NOT_SCALARS or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            tag = "val/auc" if key == "val_auc" else f"val/{key[4:]}" if key.startswith("val_") else f"train/{key}"
            self.writer.add_scalar(tag, float(value), step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


@hookimpl
def register_loggers(register):
    register("tensorboard", TensorBoardLogger, "TensorBoard event files in runs/<id>/tensorboard (pip install 'deepfake-harness[tensorboard]')",
             check=TensorBoardLogger.check)
