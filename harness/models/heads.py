"""Heads on the encoder's stride-32 map F (Eq. 8-10).

Class: adaptive average pooling then one linear layer to a single *fake* logit, trained with binary
cross-entropy. This is the paper's 2-way FC + softmax (Eq. 9, 14) in its equivalent one-logit
form: softmax over (z_real, z_fake) equals sigmoid(z_fake - z_real).

Token map P_m: one linear layer per token to a logit (sigmoid gives P_m, Eq. 10).

Token features: the same per-token vectors of F, L2-normalised, for the cosine form of the local
diversity loss (no extra parameters, so no weight goes unused whichever loss form is chosen).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DetectionHeads(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.cls = nn.Linear(channels, 1)
        self.token = nn.Linear(channels, 1)

    def forward(self, f32: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, C, h, w) -> logit (N,), token logits (N, 1, h, w), token features (N, h*w, C)."""
        tokens = f32.flatten(2).transpose(1, 2)  # (N, h*w, C)
        logit = self.cls(tokens.mean(dim=1)).squeeze(1)
        n, _, h, w = f32.shape
        token_logits = self.token(tokens).transpose(1, 2).reshape(n, 1, h, w)
        return logit, token_logits, F.normalize(tokens, dim=-1)
