"""Kept for imports from before the move: the process-group helpers live in ``harness.runtime``
(predict and evaluation use them without importing training)."""

from harness.runtime import (  # noqa: F401
    all_gather_objects, barrier, init_from_env, is_main, mean_scalar, pick_device, rank, world_size,
)
