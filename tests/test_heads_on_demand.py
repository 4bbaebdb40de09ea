"""Heads on demand: a forward pass asked for the classification alone skips the mask head (the UNet
decoder) and gives the same class scores, bit for bit, as the full pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.evaluation.runner import predict_faces
from harness.models.detector import build_model, forward_heads

#: the built-in backbone families the demo and the tests train (tiny inputs, no pretrained weights)
FAMILIES = ("mobilenetv2", "resnet50", "swin", "vit-s")


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (80, 80, 3), dtype=np.uint8) for _ in range(5)]


def _decoder_calls(model: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    model.decoder.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("backbone", FAMILIES)
def test_the_class_scores_are_the_same_bits_with_and_without_the_mask_head(backbone, crops):
    torch.manual_seed(0)
    model = build_model(backbone, pretrained=False, img_size=64).eval()
    calls = _decoder_calls(model)
    x = torch.from_numpy(np.stack([c[:64, :64] for c in crops])).permute(0, 3, 1, 2).float().div(255)
    with torch.no_grad():
        full, alone = forward_heads(model, x, masks=True), forward_heads(model, x, masks=False)
    assert len(calls) == 1  # the decoder ran for the full pass only
    assert full.mask_logits is not None and alone.mask_logits is None
    assert torch.equal(full.logit, alone.logit)
    # through evaluation's and predict's scoring (batches of 2: a partial last batch too)
    probs, masks = predict_faces(model, crops, 64, torch.device("cpu"), batch_size=2)
    probs_alone, no_masks = predict_faces(model, crops, 64, torch.device("cpu"), batch_size=2, masks=False)
    assert masks is not None and masks.shape == (5, 64, 64) and no_masks is None
    assert len(calls) == 1 + 3  # three batches with the mask head, none without
    assert probs.dtype == probs_alone.dtype and np.array_equal(probs, probs_alone)


def test_a_network_without_the_option_runs_whole_and_its_masks_are_not_read():
    """An imported network's forward takes only x: asked for the class alone it runs as it is."""
    from types import SimpleNamespace

    class Imported(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> SimpleNamespace:
            return SimpleNamespace(logit=x.mean((1, 2, 3)), mask_logits=x[:, :1])

    crops = [np.full((32, 32, 3), v, np.uint8) for v in (10, 200)]
    probs, masks = predict_faces(Imported(), crops, 32, torch.device("cpu"), masks=False)
    assert masks is None and probs.shape == (2,)
    assert np.array_equal(probs, predict_faces(Imported(), crops, 32, torch.device("cpu"))[0])
