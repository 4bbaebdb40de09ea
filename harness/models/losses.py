"""The training losses (Eq. 14-20): L = alpha * L_C + beta * L_M + gamma * L_m (+ delta * L_t).

L_C (Eq. 14): binary cross-entropy of the fake logit against the image label (0 real, 1 fake).
L_M (Eq. 19): per-pixel binary cross-entropy of the mask logits against the blend mask (all zero
for real images), averaged over pixels and images.
L_m (Eq. 15-18), local diversity: gt = the blend mask area-averaged onto the H/32 token grid,
Sim_gt = 1 - |gt_i - gt_j| over token pairs, and L_m = mean |Sim_gt - Sim_pred|.
L_t (opt-in, ``delta``): BCE of the token map P_m against gt, the label the paper gives P_m.

Where the defaults (``sim_form="proj"``, ``pairs="fakes-balanced"``, ``min_grid``, ``dice``) leave
the printed form, and the measurements behind each choice: docs/losses.md, "The losses, next to
the paper's Eq. 14-20". Every loss is computed in float32, whatever autocast produced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.models.detector import ModelOutput
from harness.vocab.config_check import PAIR_RULES, SIM_FORMS  # the words loss.sim_form and loss.pairs take


def classification_loss(logit: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_C: BCE between sigmoid(logit) (N,) and labels (N,) in {0, 1}."""
    return F.binary_cross_entropy_with_logits(logit, labels.to(logit.dtype))


def mask_loss(mask_logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """L_M: mean per-pixel BCE between sigmoid(mask_logits) (N,1,H,W) and masks (N,1,H,W) in [0, 1]."""
    return F.binary_cross_entropy_with_logits(mask_logits, masks.to(mask_logits.dtype))


def dice_loss(mask_logits: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Soft Dice, 1 - (2|P t| + 1) / (|P| + |t| + 1), averaged over the fakes (reals have no region
    to overlap; their pixels are L_M's). Added to L_M with weight ``dice``: BCE alone, with half the
    images all-zero, keeps P_M under 0.5 on small regions."""
    fake = labels > 0.5
    if not bool(fake.any()):
        return mask_logits.sum() * 0.0
    p = torch.sigmoid(mask_logits[fake]).flatten(1)
    t = masks[fake].flatten(1)
    return (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).mean()


def token_targets(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """gt: masks (N,1,H,W) area-averaged onto the token grid, flattened to (N, h*w)."""
    return F.adaptive_avg_pool2d(masks, grid).flatten(1)


def similarity_target(gt: torch.Tensor) -> torch.Tensor:
    """Eq. 17: Sim_gt = 1 - |gt_i - gt_j|, (N, T) -> (N, T, T)."""
    return 1.0 - (gt.unsqueeze(2) - gt.unsqueeze(1)).abs()


def _cosine_similarity(f: torch.Tensor) -> torch.Tensor:
    f = F.normalize(f, dim=-1)
    return (1.0 + f @ f.transpose(1, 2)) / 2.0


def similarity_pred(out: ModelOutput, sim_form: str = "proj") -> torch.Tensor:
    """Sim_pred (N, T, T) in [0, 1] in the chosen form (see SIM_FORMS)."""
    if sim_form == "proj":
        if out.token_embeddings is None:
            raise ValueError("sim_form='proj' needs the model's token_embeddings (the projection head)")
        return _cosine_similarity(out.token_embeddings)
    if sim_form == "cosine":
        return _cosine_similarity(out.token_features)
    p = torch.sigmoid(out.token_logits.flatten(1))  # P_m, (N, T)
    if sim_form == "token":
        return 1.0 - (p.unsqueeze(2) - p.unsqueeze(1)).abs()
    if sim_form == "literal":
        return torch.sigmoid(p.unsqueeze(2) * p.unsqueeze(1))  # Eq. 16 with scalar P_m
    raise ValueError(f"sim_form must be one of {SIM_FORMS}, got {sim_form!r}")


def _masked_mean(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the True entries of ``keep`` per image: (N, T, T) -> (N,)."""
    keep = keep.to(values.dtype)
    return (values * keep).sum((1, 2)) / keep.sum((1, 2)).clamp(min=1.0)


def _local_from_gt(
    out: ModelOutput, gt: torch.Tensor, sim_form: str, labels: torch.Tensor | None, pairs: str
) -> torch.Tensor:
    target = similarity_target(gt)
    error = (target - similarity_pred(out, sim_form)).abs()
    if pairs == "all":
        return error.mean()
    if pairs != "fakes-balanced":
        raise ValueError(f"pairs must be one of {PAIR_RULES}, got {pairs!r}")
    # A fake whose mask covers no token is all "same region": it would only reward uniformity.
    fake = gt.amax(dim=1) > 0 if labels is None else (labels > 0.5) & (gt.amax(dim=1) > 0)
    if not bool(fake.any()):
        return error.sum() * 0.0  # keeps the graph (and DDP's hooks) whole
    error, target = error[fake], target[fake]
    cross = target < 0.5
    same_term = _masked_mean(error, ~cross)
    balanced = 0.5 * same_term + 0.5 * _masked_mean(error, cross)
    return torch.where(cross.any(dim=(1, 2)), balanced, same_term).mean()


def _token_from_gt(out: ModelOutput, gt: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(out.token_logits, gt.view_as(out.token_logits))


def _token_gt(out: ModelOutput, masks: torch.Tensor) -> torch.Tensor:
    """gt on the token grid of ``out`` (N, h*w): the label of P_m shared by L_m and L_t."""
    return token_targets(masks.to(out.token_logits.dtype), tuple(out.token_logits.shape[-2:]))


def _as_masks(masks: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if masks.dim() == 3:
        masks = masks.unsqueeze(1)
    if masks.shape != like.shape:
        raise ValueError(
            f"masks must be (N, H, W) or (N, 1, H, W) matching the mask logits {tuple(like.shape)}, "
            f"got {tuple(masks.shape)}; resize masks to the model's img_size (all zeros for real images)"
        )
    return masks


def _float32(out: ModelOutput) -> ModelOutput:
    """Losses in float32 under autocast: bf16 sigmoids and cosines lose the small differences."""
    return ModelOutput(*(t.float() if isinstance(t, torch.Tensor) else t for t in out))


def token_losses_active(grid: tuple[int, int], min_grid: int) -> bool:
    """L_m and L_t need enough tokens to have a region and a boundary: at least min_grid a side."""
    return min(grid) >= min_grid


class DetectorLoss(nn.Module):
    """``DetectorLoss(alpha, beta, gamma, sim_form, delta, pairs, min_grid)(out, labels, masks)``
    -> ``(total, parts)``.

    alpha, beta, gamma weight L_C, L_M, L_m (Eq. 20); delta weights L_t (0: off); dice weights a
    soft Dice term over the fakes added to L_M (0: L_M is the printed BCE alone). ``parts`` holds
    the detached ``"cls"``, ``"mask"``, ``"local"`` and ``"token"`` values for logging (the token
    terms read 0 when the grid is below ``min_grid``).
    """

    def __init__(
        self, alpha: float = 1.0, beta: float = 1.0, gamma: float = 1.0, sim_form: str = "proj",
        delta: float = 0.0, pairs: str = "fakes-balanced", min_grid: int = 4, dice: float = 1.0,
    ) -> None:
        super().__init__()
        if sim_form not in SIM_FORMS:
            raise ValueError(f"sim_form must be one of {SIM_FORMS}, got {sim_form!r}")
        if pairs not in PAIR_RULES:
            raise ValueError(f"pairs must be one of {PAIR_RULES}, got {pairs!r}")
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma), ("delta", delta), ("dice", dice)):
            if value < 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {value}")
        self.alpha, self.beta, self.gamma, self.delta = float(alpha), float(beta), float(gamma), float(delta)
        self.sim_form, self.pairs, self.min_grid, self.dice = sim_form, pairs, int(min_grid), float(dice)

    def forward(
        self, out: ModelOutput, labels: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = _float32(out)
        masks = _as_masks(masks, out.mask_logits).float()
        labels = labels.float()
        l_cls = classification_loss(out.logit, labels)
        l_mask = mask_loss(out.mask_logits, masks)
        if self.dice:
            l_mask = l_mask + self.dice * dice_loss(out.mask_logits, masks, labels)
        zero = out.logit.new_zeros(())
        l_local = l_token = zero
        if token_losses_active(tuple(out.token_logits.shape[-2:]), self.min_grid):
            gt = _token_gt(out, masks)  # pooled once for L_m and L_t
            if self.gamma:
                l_local = _local_from_gt(out, gt, self.sim_form, labels, self.pairs)
            if self.delta:
                l_token = _token_from_gt(out, gt)
        total = self.alpha * l_cls + self.beta * l_mask + self.gamma * l_local + self.delta * l_token
        parts = {"cls": l_cls, "mask": l_mask, "local": l_local, "token": l_token}
        return total, {k: v.detach() for k, v in parts.items()}
