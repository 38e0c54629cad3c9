"""The training configuration, as the trainer's code names it: :mod:`resnet_lab.train_config` (floor 1, below the
classroom's bounds, which read it too)."""

from ..train_config import (DEVICES, MAX_KEEP_BUDGET_MB, MAX_KEEP_EVERY, OPTIMIZERS, SCHEDULES,  # noqa: F401
                            TrainConfig)

__all__ = ["DEVICES", "MAX_KEEP_BUDGET_MB", "MAX_KEEP_EVERY", "OPTIMIZERS", "SCHEDULES", "TrainConfig"]
