"""The three training losses (Eq. 14-20): L = alpha * L_C + beta * L_M + gamma * L_m.

L_C (Eq. 14): binary cross-entropy of the fake logit against the image label (0 real, 1 fake).
L_M (Eq. 19): per-pixel binary cross-entropy of the mask logits against the blend mask (all zero
for real images), averaged over pixels and images.
L_m (Eq. 15-18), local diversity: gt = the blend mask area-averaged onto the H/32 token grid,
Sim_gt = 1 - |gt_i - gt_j| over all token pairs, and L_m = mean |Sim_gt - Sim_pred| (Eq. 18 uses
the absolute difference, so we do too).

Why the default Sim_pred is not the paper's literal one
-------------------------------------------------------
Read literally, Sim_pred = sigmoid(P_m P_m^T) with P_m = sigmoid(token logit) a scalar in (0, 1) per
token, so every entry sigmoid(p_i p_j) lies in (sigmoid(0), sigmoid(1)) = (0.5, 0.731). The targets
Sim_gt are 1 inside a region and 0 across the blend boundary, so the loss can never fall below
0.269 on a real image (all targets 1) and is larger still on a fake: it cannot meet its targets and
its gradient keeps pushing every P_m towards 1 whatever the mask says. ``sim_form`` chooses:

* ``"cosine"`` (default): Sim_pred = (1 + cos(f_i, f_j)) / 2 of the L2-normalised per-token encoder
  features (the paper's "dot product of feature vectors", Eq. 15, mapped to [0, 1]). It reaches
  exactly 1 for parallel and 0 for opposite features, so L_m can be 0.
* ``"token"``: Sim_pred = 1 - |P_m_i - P_m_j| with P_m = sigmoid(token logits): the same form as
  Sim_gt, met when P_m equals gt (approached as the logits saturate).
* ``"literal"``: sigmoid(P_m P_m^T) exactly as printed, kept for ablations.

The token map P_m itself
------------------------
The paper downsamples GT to gt "which ... serves as the label for P_m" (training step 2) but
writes no separate term for it. We add L_t = BCE(P_m, gt) weighted by ``delta`` (default 1; set 0
for the three printed terms only). It also keeps the token head trained under the cosine form,
which does not read P_m: a parameter without gradient would stop DDP
(``find_unused_parameters=False``) and leave P_m an untrained output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.models.detector import ModelOutput

SIM_FORMS = ("cosine", "token", "literal")


def classification_loss(logit: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_C: BCE between sigmoid(logit) (N,) and labels (N,) in {0, 1}."""
    return F.binary_cross_entropy_with_logits(logit, labels.to(logit.dtype))


def mask_loss(mask_logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """L_M: mean per-pixel BCE between sigmoid(mask_logits) (N,1,H,W) and masks (N,1,H,W) in [0, 1]."""
    return F.binary_cross_entropy_with_logits(mask_logits, masks.to(mask_logits.dtype))


def token_targets(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """gt: masks (N,1,H,W) area-averaged onto the token grid, flattened to (N, h*w)."""
    return F.adaptive_avg_pool2d(masks, grid).flatten(1)


def similarity_target(gt: torch.Tensor) -> torch.Tensor:
    """Eq. 17: Sim_gt = 1 - |gt_i - gt_j|, (N, T) -> (N, T, T)."""
    return 1.0 - (gt.unsqueeze(2) - gt.unsqueeze(1)).abs()


def similarity_pred(out: ModelOutput, sim_form: str = "cosine") -> torch.Tensor:
    """Sim_pred (N, T, T) in the chosen form (see the module docstring)."""
    if sim_form == "cosine":
        f = out.token_features
        return (1.0 + f @ f.transpose(1, 2)) / 2.0
    p = torch.sigmoid(out.token_logits.flatten(1))  # P_m, (N, T)
    if sim_form == "token":
        return 1.0 - (p.unsqueeze(2) - p.unsqueeze(1)).abs()
    if sim_form == "literal":
        return torch.sigmoid(p.unsqueeze(2) * p.unsqueeze(1))  # Eq. 16 with scalar P_m
    raise ValueError(f"sim_form must be one of {SIM_FORMS}, got {sim_form!r}")


def _token_gt(out: ModelOutput, masks: torch.Tensor) -> torch.Tensor:
    """gt on the token grid of ``out`` (N, h*w): the label of P_m shared by L_m and L_t."""
    return token_targets(masks.to(out.token_logits.dtype), tuple(out.token_logits.shape[-2:]))


def _local_from_gt(out: ModelOutput, gt: torch.Tensor, sim_form: str) -> torch.Tensor:
    return (similarity_target(gt) - similarity_pred(out, sim_form)).abs().mean()


def _token_from_gt(out: ModelOutput, gt: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(out.token_logits, gt.view_as(out.token_logits))


def local_diversity_loss(out: ModelOutput, masks: torch.Tensor, sim_form: str = "cosine") -> torch.Tensor:
    """L_m (Eq. 18): mean |Sim_gt - Sim_pred| over token pairs and images."""
    return _local_from_gt(out, _token_gt(out, masks), sim_form)


def _as_masks(masks: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if masks.dim() == 3:
        masks = masks.unsqueeze(1)
    if masks.shape != like.shape:
        raise ValueError(
            f"masks must be (N, H, W) or (N, 1, H, W) matching the mask logits {tuple(like.shape)}, "
            f"got {tuple(masks.shape)}; resize masks to the model's img_size (all zeros for real images)"
        )
    return masks


def token_loss(out: ModelOutput, masks: torch.Tensor) -> torch.Tensor:
    """L_t: BCE between P_m = sigmoid(token logits) and gt (the mask area-averaged per token)."""
    return _token_from_gt(out, _token_gt(out, masks))


class DetectorLoss(nn.Module):
    """``DetectorLoss(alpha, beta, gamma, sim_form, delta)(out, labels, masks) -> (total, parts)``.

    alpha, beta, gamma weight L_C, L_M, L_m (Eq. 20); delta weights L_t (see the module
    docstring). ``parts`` holds the detached ``"cls"``, ``"mask"``, ``"local"`` and ``"token"``
    values for logging.
    """

    def __init__(
        self, alpha: float = 1.0, beta: float = 1.0, gamma: float = 1.0, sim_form: str = "cosine", delta: float = 1.0
    ) -> None:
        super().__init__()
        if sim_form not in SIM_FORMS:
            raise ValueError(f"sim_form must be one of {SIM_FORMS}, got {sim_form!r}")
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma), ("delta", delta)):
            if value < 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {value}")
        self.alpha, self.beta, self.gamma, self.delta = float(alpha), float(beta), float(gamma), float(delta)
        self.sim_form = sim_form

    def forward(
        self, out: ModelOutput, labels: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        masks = _as_masks(masks, out.mask_logits)
        l_cls = classification_loss(out.logit, labels)
        l_mask = mask_loss(out.mask_logits, masks)
        gt = _token_gt(out, masks)  # pooled once for L_m and L_t
        l_local = _local_from_gt(out, gt, self.sim_form)
        l_token = _token_from_gt(out, gt)
        total = self.alpha * l_cls + self.beta * l_mask + self.gamma * l_local + self.delta * l_token
        parts = {"cls": l_cls, "mask": l_mask, "local": l_local, "token": l_token}
        return total, {k: v.detach() for k, v in parts.items()}
