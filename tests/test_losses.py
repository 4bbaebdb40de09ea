"""The three losses against hand-computed values, and the local-diversity forms' reachability."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.models import DetectorLoss, ModelOutput
from harness.models import losses as L
from harness.models.losses import (
    classification_loss,
    dice_loss,
    mask_loss,
    similarity_target,
    token_targets,
)


def local_diversity_loss(out, masks, sim_form="proj", labels=None, pairs="all"):
    """L_m (Eq. 18) alone, as DetectorLoss computes it (test helper: the loss computes gt once)."""
    return L._local_from_gt(out, L._token_gt(out, masks), sim_form, labels, pairs)


def token_loss(out, masks):
    """L_t alone, as DetectorLoss computes it."""
    return L._token_from_gt(out, L._token_gt(out, masks))


def _bce(p: float, y: float) -> float:
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def _sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _out(token_logits=None, token_features=None, mask_logits=None, logit=None, n=1, grid=(2, 2), size=8, embeddings=None):
    t = grid[0] * grid[1]
    features = F.normalize(torch.ones(n, t, 3), dim=-1) if token_features is None else token_features
    return ModelOutput(
        logit=torch.zeros(n) if logit is None else logit,
        token_logits=torch.zeros(n, 1, *grid) if token_logits is None else token_logits,
        token_features=features,
        mask_logits=torch.zeros(n, 1, size, size) if mask_logits is None else mask_logits,
        token_embeddings=features if embeddings is None else embeddings,
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
    assert _fit("proj", masks) < 1e-3
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
    total, parts = DetectorLoss(alpha=0.5, beta=2.0, gamma=3.0, delta=0.25, dice=0.0)(out, labels, masks[:, 0])  # (N, H, W) ok
    assert total.dtype == torch.float32
    assert set(parts) == {"cls", "mask", "local", "token"}
    assert parts["token"].item() == pytest.approx(token_loss(out, masks).item())
    assert parts["cls"].item() == pytest.approx(classification_loss(out.logit, labels).item())
    assert parts["mask"].item() == pytest.approx(mask_loss(out.mask_logits, masks).item())
    want_local = local_diversity_loss(out, masks, "proj", labels, "fakes-balanced")
    assert parts["local"].item() == pytest.approx(want_local.item())
    want = 0.5 * parts["cls"] + 2.0 * parts["mask"] + 3.0 * parts["local"] + 0.25 * parts["token"]
    assert total.item() == pytest.approx(want.item(), rel=1e-6)


def test_detector_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="sim_form"):
        DetectorLoss(sim_form="dot")
    with pytest.raises(ValueError, match="gamma"):
        DetectorLoss(gamma=-1)
    with pytest.raises(ValueError, match="resize masks"):
        DetectorLoss()(_out(size=16), torch.zeros(1), torch.zeros(1, 1, 8, 8))


def _batch_mostly_real(n_real=3):
    """n_real reals then one fake whose centre 2x2 tokens (of 4x4) are altered."""
    masks = torch.zeros(n_real + 1, 1, 16, 16)
    masks[-1, :, 4:12, 4:12] = 1.0
    labels = torch.zeros(n_real + 1)
    labels[-1] = 1.0
    return masks, labels


def test_identical_tokens_are_not_a_minimum_of_the_default_local_loss():
    masks, labels = _batch_mostly_real()
    n = masks.shape[0]
    same = F.normalize(torch.ones(n, 16, 4), dim=-1)  # every token of every image alike: collapse
    gt = token_targets(masks, (4, 4))
    v = torch.tensor([1.0, 0.0, 0.0, 0.0])
    agree = torch.where(gt.unsqueeze(-1) > 0.5, -v, v)  # inside / outside the blend opposite
    collapsed = local_diversity_loss(_out(embeddings=same, n=n, grid=(4, 4), size=16), masks, "proj", labels, "fakes-balanced")
    ideal = local_diversity_loss(_out(embeddings=agree, n=n, grid=(4, 4), size=16), masks, "proj", labels, "fakes-balanced")
    # Balanced pairs: half the weight on cross-region pairs, whose target is 0 and prediction 1.
    assert collapsed.item() == pytest.approx(0.5, abs=1e-6)
    assert ideal.item() == pytest.approx(0.0, abs=1e-6)
    # The printed form over every pair of a mostly-real batch barely penalises the collapse.
    printed = local_diversity_loss(_out(embeddings=same, n=n, grid=(4, 4), size=16), masks, "proj", labels, "all")
    assert printed.item() < 0.1


def test_fakes_balanced_ignores_reals_and_handles_a_batch_without_fakes():
    masks, labels = _batch_mostly_real()
    n = masks.shape[0]
    torch.manual_seed(0)
    base = torch.randn(n, 16, 4)
    other = base.clone()
    other[0] = torch.randn(16, 4)  # a real image's tokens change
    a = local_diversity_loss(_out(embeddings=base, n=n, grid=(4, 4), size=16), masks, "proj", labels, "fakes-balanced")
    b = local_diversity_loss(_out(embeddings=other, n=n, grid=(4, 4), size=16), masks, "proj", labels, "fakes-balanced")
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    feats = torch.randn(n, 16, 4, requires_grad=True)
    none = local_diversity_loss(_out(embeddings=feats, n=n, grid=(4, 4), size=16), masks * 0, "proj", labels * 0, "fakes-balanced")
    assert none.item() == 0.0
    none.backward()  # still part of the graph
    assert feats.grad is not None and float(feats.grad.abs().sum()) == 0.0


def test_token_losses_are_off_below_the_minimum_grid():
    masks, labels = _batch_mostly_real()
    n = masks.shape[0]
    small = F.adaptive_avg_pool2d(masks, (8, 8))
    emb = torch.randn(n, 4, 4, requires_grad=True)
    out = _out(embeddings=emb, token_logits=torch.randn(n, 1, 2, 2), n=n, grid=(2, 2), size=8)
    total, parts = DetectorLoss(delta=1.0)(out, labels, small)
    assert parts["local"].item() == 0.0 and parts["token"].item() == 0.0
    _, on = DetectorLoss(delta=1.0, min_grid=2)(out, labels, small)
    assert on["local"].item() > 0 and on["token"].item() > 0


def test_losses_are_float32_under_bfloat16_outputs():
    masks, labels = _batch_mostly_real()
    n = masks.shape[0]
    torch.manual_seed(0)
    out = _out(
        logit=torch.randn(n).bfloat16(), token_logits=torch.randn(n, 1, 4, 4).bfloat16(),
        token_features=torch.randn(n, 16, 4).bfloat16(), mask_logits=torch.randn(n, 1, 16, 16).bfloat16(),
        n=n, grid=(4, 4), size=16,
    )
    total, parts = DetectorLoss(delta=1.0)(out, labels, masks)
    assert total.dtype == torch.float32 and all(v.dtype == torch.float32 for v in parts.values())
    full = ModelOutput(*(t.float() if t is not None else None for t in out))
    total32, _ = DetectorLoss(delta=1.0)(full, labels, masks)
    assert total.item() == pytest.approx(total32.item(), rel=1e-5)


def test_dice_term_scores_overlap_on_fakes_only():
    masks, labels = _batch_mostly_real()
    n = masks.shape[0]
    perfect = (masks * 60 - 30)  # P_M = the mask on every image
    out = _out(mask_logits=perfect, n=n, grid=(4, 4), size=16)
    assert dice_loss(out.mask_logits, masks, labels).item() == pytest.approx(0.0, abs=1e-6)
    empty = _out(mask_logits=torch.full((n, 1, 16, 16), -30.0), n=n, grid=(4, 4), size=16)
    # nothing predicted on the fake: 1 - 1/(64 + 1)
    assert dice_loss(empty.mask_logits, masks, labels).item() == pytest.approx(1 - 1 / 65, rel=1e-5)
    _, plain = DetectorLoss(dice=0.0)(empty, labels, masks)
    _, with_dice = DetectorLoss(dice=2.0)(empty, labels, masks)
    assert with_dice["mask"].item() == pytest.approx(plain["mask"].item() + 2 * (1 - 1 / 65), rel=1e-5)
