"""The three losses against hand-computed values, and the local-diversity forms' reachability."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.models import DetectorLoss, ModelOutput
from harness.models.losses import (
    classification_loss,
    local_diversity_loss,
    mask_loss,
    similarity_target,
    token_loss,
    token_targets,
)


def _bce(p: float, y: float) -> float:
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def _sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _out(token_logits=None, token_features=None, mask_logits=None, logit=None, n=1, grid=(2, 2), size=8):
    t = grid[0] * grid[1]
    return ModelOutput(
        logit=torch.zeros(n) if logit is None else logit,
        token_logits=torch.zeros(n, 1, *grid) if token_logits is None else token_logits,
        token_features=F.normalize(torch.ones(n, t, 3), dim=-1) if token_features is None else token_features,
        mask_logits=torch.zeros(n, 1, size, size) if mask_logits is None else mask_logits,
    )


def test_classification_loss_matches_hand_value():
    got = classification_loss(torch.tensor([0.0, 2.0, -1.0]), torch.tensor([0, 1, 1]))
    want = (_bce(0.5, 0) + _bce(_sig(2.0), 1) + _bce(_sig(-1.0), 1)) / 3
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_mask_loss_matches_hand_value_including_soft_targets():
    logits = torch.tensor([[[[0.0, 1.0], [-2.0, 3.0]]]])
    masks = torch.tensor([[[[0.0, 1.0], [0.25, 0.0]]]])
    want = (_bce(0.5, 0) + _bce(_sig(1.0), 1) + _bce(_sig(-2.0), 0.25) + _bce(_sig(3.0), 0)) / 4
    assert mask_loss(logits, masks).item() == pytest.approx(want, rel=1e-6)


def test_token_targets_are_area_averages_on_the_token_grid():
    masks = torch.zeros(1, 1, 8, 8)
    masks[0, 0, :4, :4] = 1.0  # top-left token fully altered
    masks[0, 0, 4:6, 4:8] = 1.0  # bottom-right token half altered
    assert token_targets(masks, (2, 2)).tolist() == [[1.0, 0.0, 0.0, 0.5]]


def test_token_loss_matches_hand_value():
    masks = torch.zeros(1, 1, 8, 8)
    masks[0, 0, 4:6, 4:8] = 1.0  # gt = (0, 0, 0, 0.5)
    out = _out(token_logits=torch.tensor([[[[0.0, 1.0], [-1.0, 2.0]]]]))
    want = (_bce(0.5, 0) + _bce(_sig(1.0), 0) + _bce(_sig(-1.0), 0) + _bce(_sig(2.0), 0.5)) / 4
    assert token_loss(out, masks).item() == pytest.approx(want, rel=1e-6)


def test_similarity_target_is_one_minus_abs_difference():
    sim = similarity_target(torch.tensor([[1.0, 0.0, 0.5]]))
    assert sim[0].tolist() == [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.5, 0.5, 1.0]]


def test_local_loss_cosine_hand_value():
    # Two tokens (grid 1x2); gt = (1, 0) so Sim_gt = [[1, 0], [0, 1]].
    masks = torch.zeros(1, 1, 8, 8)
    masks[0, 0, :, :4] = 1.0
    feats = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # orthogonal: Sim_pred off-diagonal = 0.5
    out = _out(token_logits=torch.zeros(1, 1, 1, 2), token_features=feats)
    # |1-1|, |0-0.5|, |0-0.5|, |1-1| -> mean 0.25
    assert local_diversity_loss(out, masks, "cosine").item() == pytest.approx(0.25)


def test_local_loss_literal_and_token_hand_values():
    masks = torch.zeros(1, 1, 8, 8)
    masks[0, 0, :, :4] = 1.0
    out = _out(token_logits=torch.tensor([[[[0.0, math.log(3.0)]]]]))  # P_m = (0.5, 0.75)
    p = [0.5, 0.75]
    gt = [[1, 0], [0, 1]]
    literal = sum(abs(gt[i][j] - _sig(p[i] * p[j])) for i in range(2) for j in range(2)) / 4
    token = sum(abs(gt[i][j] - (1 - abs(p[i] - p[j]))) for i in range(2) for j in range(2)) / 4
    assert local_diversity_loss(out, masks, "literal").item() == pytest.approx(literal, rel=1e-6)
    assert local_diversity_loss(out, masks, "token").item() == pytest.approx(token, rel=1e-6)


def _two_region_mask(n=2):
    masks = torch.zeros(n, 1, 16, 16)
    masks[:, :, 4:12, 4:12] = 1.0  # 4x4 grid: the centre 2x2 tokens fully altered
    masks[-1] = 0.0  # the last image is real: all-zero mask
    return masks


def test_local_loss_is_zero_when_similarities_agree():
    masks = _two_region_mask()
    gt = token_targets(masks, (4, 4))  # (2, 16) of 0/1
    v = torch.tensor([1.0, 0.0, 0.0])
    feats = torch.where(gt.unsqueeze(-1) > 0.5, -v, v)  # opposite inside/outside
    out = _out(token_features=feats, n=2, grid=(4, 4), size=16)
    assert local_diversity_loss(out, masks, "cosine").item() == pytest.approx(0.0, abs=1e-7)
    saturated = _out(token_logits=(gt * 60 - 30).view(2, 1, 4, 4), n=2, grid=(4, 4), size=16)
    assert local_diversity_loss(saturated, masks, "token").item() == pytest.approx(0.0, abs=1e-6)


def _fit(form: str, masks: torch.Tensor, steps: int = 200) -> float:
    """Minimise L_m over free token logits/features (the best any network could output)."""
    torch.manual_seed(0)
    n = masks.shape[0]
    logits = torch.randn(n, 1, 4, 4, requires_grad=True)
    feats = torch.randn(n, 16, 8, requires_grad=True)
    opt = torch.optim.Adam([logits, feats], lr=0.1)
    for _ in range(steps):
        out = _out(token_logits=logits, token_features=F.normalize(feats, dim=-1), n=n, grid=(4, 4), size=16)
        loss = local_diversity_loss(out, masks, form)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def test_default_local_loss_reaches_zero_but_the_literal_one_cannot():
    masks = _two_region_mask()
    assert _fit("cosine", masks) < 1e-3
    literal = _fit("literal", masks)
    # Every literal Sim_pred entry lies in (0.5, sigmoid(1)); targets are 0 or 1.
    assert literal > 1 - _sig(1.0) - 1e-3
    real_only = torch.zeros(1, 1, 16, 16)  # all targets 1: still bounded away from 0
    assert _fit("literal", real_only) >= 1 - _sig(1.0) - 1e-4


def test_detector_loss_weights_and_parts():
    torch.manual_seed(0)
    masks = _two_region_mask()
    out = _out(
        logit=torch.tensor([1.5, -0.5]),
        token_logits=torch.randn(2, 1, 4, 4),
        token_features=F.normalize(torch.randn(2, 16, 5), dim=-1),
        mask_logits=torch.randn(2, 1, 16, 16),
        n=2,
        grid=(4, 4),
        size=16,
    )
    labels = torch.tensor([1.0, 0.0])
    total, parts = DetectorLoss(alpha=0.5, beta=2.0, gamma=3.0, delta=0.25)(out, labels, masks[:, 0])  # (N, H, W) ok
    assert set(parts) == {"cls", "mask", "local", "token"}
    assert parts["token"].item() == pytest.approx(token_loss(out, masks).item())
    assert parts["cls"].item() == pytest.approx(classification_loss(out.logit, labels).item())
    assert parts["mask"].item() == pytest.approx(mask_loss(out.mask_logits, masks).item())
    assert parts["local"].item() == pytest.approx(local_diversity_loss(out, masks).item())
    want = 0.5 * parts["cls"] + 2.0 * parts["mask"] + 3.0 * parts["local"] + 0.25 * parts["token"]
    assert total.item() == pytest.approx(want.item(), rel=1e-6)


def test_detector_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="sim_form"):
        DetectorLoss(sim_form="dot")
    with pytest.raises(ValueError, match="gamma"):
        DetectorLoss(gamma=-1)
    with pytest.raises(ValueError, match="resize masks"):
        DetectorLoss()(_out(size=16), torch.zeros(1), torch.zeros(1, 1, 8, 8))
