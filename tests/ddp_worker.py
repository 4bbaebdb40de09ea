"""Run by `torchrun --nproc-per-node N tests/ddp_worker.py CACHE RUN_DIR OUT` from test_training.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.training_helpers import NO_DROP_PATH, tiny_config, trainer_for  # noqa: E402


def main() -> None:
    cache, run_dir, out = (Path(a) for a in sys.argv[1:4])
    torch.set_num_threads(1)
    trainer = trainer_for(tiny_config(NO_DROP_PATH, max_steps=3), run_dir, cache)
    outcome = trainer.fit(resume=False)
    if trainer.rank == 0:
        ddp = isinstance(trainer.model, torch.nn.parallel.DistributedDataParallel)
        out.write_text(json.dumps({"world": trainer.world, "ddp": ddp, "losses": [h["loss"] for h in outcome.history]}))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
