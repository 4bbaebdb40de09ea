"""Heads on the encoder's stride-32 map F (Eq. 8-10).

Class: adaptive average pooling then one linear layer to a single *fake* logit, trained with binary
cross-entropy. This is the paper's 2-way FC + softmax (Eq. 9, 14) in its equivalent one-logit
form: softmax over (z_real, z_fake) equals sigmoid(z_fake - z_real).

Token map P_m: one linear layer per token to a logit (sigmoid gives P_m, Eq. 10).

Token embeddings: a small projection head (Linear-GELU-Linear) per token, the space in which the
default local-diversity loss measures similarity. Measuring it on the features the classifier
pools instead lets "all tokens parallel" satisfy L_m and collapses the pooled feature (docs/losses.md).
The raw per-token features and the pooled feature are returned too, for the "cosine" ablation and
for the trainer's collapse guard.
"""

from __future__ import annotations

import torch
from torch import nn

PROJ_DIM = 64


class DetectionHeads(nn.Module):
    def __init__(self, channels: int, proj_dim: int = PROJ_DIM) -> None:
        super().__init__()
        self.cls = nn.Linear(channels, 1)
        self.token = nn.Linear(channels, 1)
        hidden = max(proj_dim, min(channels, 256))
        self.proj = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, proj_dim))

    def forward(self, f32: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, C, h, w) -> logit (N,), token logits (N, 1, h, w), token features (N, h*w, C),
        token embeddings (N, h*w, proj_dim) and the pooled feature (N, C)."""
        tokens, pooled = _tokens(f32)
        n, _, h, w = f32.shape
        return {
            "logit": self._logit(pooled),
            "token_logits": self.token(tokens).transpose(1, 2).reshape(n, 1, h, w),
            "token_features": tokens,
            "token_embeddings": self.proj(tokens),
            "pooled": pooled,
        }

    def classify(self, f32: torch.Tensor) -> torch.Tensor:
        """The fake logit (N,) alone: the same operations as ``forward``'s, so the same bits."""
        return self._logit(_tokens(f32)[1])

    def _logit(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.cls(pooled).squeeze(1)


def _tokens(f32: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, h, w) -> the tokens (N, h*w, C) and their mean, the pooled feature (N, C)."""
    tokens = f32.flatten(2).transpose(1, 2)
    return tokens, tokens.mean(dim=1)
