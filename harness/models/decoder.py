"""The shared Swin-Unet decoder (Eq. 11-13): one class for every backbone.

Encoder maps at strides 4/8/16/32 with any declared channels are first normalised and projected by
a linear layer to the decoder's widths ``(D, 2D, 4D, 8D)``. From the stride-32 bottleneck, each
stage does a linear patch expansion (Linear w -> 4w', pixel-shuffle rearrange to 2x resolution with
w' channels), concatenates the matching encoder stage, fuses with a linear layer back to w' and
runs a stage of (shifted-)window attention blocks. A final x4 linear expansion gives H x W x 1
logits (sigmoid -> P_M).

It is lean on purpose: widths are half of Swin-T's by default (D=48 vs 96) and the final x4
expansion is one linear layer + pixel shuffle, so a training step costs little more
than the encoder's (see benchmarks/bench_models.py).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def auto_window(side: int, largest: int = 7) -> int:
    """The largest window <= ``largest`` that tiles a ``side`` x ``side`` map."""
    return max(w for w in range(1, largest + 1) if side % w == 0)


def _shuffle(x: torch.Tensor, scale: int) -> torch.Tensor:
    """NHWC (N, H, W, s*s*C) -> (N, s*H, s*W, C): the rearrange of Swin-Unet's patch expanding."""
    n, h, w, c = x.shape
    c_out = c // (scale * scale)
    x = x.view(n, h, w, scale, scale, c_out).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h * scale, w * scale, c_out)


class PatchExpand(nn.Module):
    """Eq. 11: Linear(w_in -> 4 w_out), rearrange to 2x resolution, LayerNorm."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.expand = nn.Linear(dim_in, 4 * dim_out, bias=False)
        self.norm = nn.LayerNorm(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(_shuffle(self.expand(x), 2))


class DecoderStage(nn.Module):
    """Expand, concat the skip, fuse with a linear layer (Eq. 12), then window-attention blocks."""

    def __init__(self, dim_in: int, dim: int, depth: int, resolution: int, head_dim: int, mlp_ratio: float) -> None:
        super().__init__()
        from timm.models.swin_transformer import SwinTransformerStage

        self.expand = PatchExpand(dim_in, dim)
        self.fuse = nn.Linear(2 * dim, dim)
        self.blocks = (
            SwinTransformerStage(
                dim=dim,
                out_dim=dim,
                input_resolution=(resolution, resolution),
                depth=depth,
                downsample=False,
                num_heads=max(1, dim // head_dim),
                window_size=auto_window(resolution),
                mlp_ratio=mlp_ratio,
            )
            if depth > 0
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.fuse(torch.cat([self.expand(x), skip], dim=-1))
        return self.blocks(x)


class SwinUnetDecoder(nn.Module):
    """Encoder pyramid (4 NCHW maps, strides 4..32) -> mask logits (N, 1, H, W).

    ``in_channels``: the backbone's declared channels. ``dim``: decoder width D at stride 4
    (widths are D, 2D, 4D, 8D at strides 4, 8, 16, 32). ``depths``: blocks per decoder stage at
    strides 16, 8, 4 (the paper: 2, 2, 2). ``head_dim``: channels per attention head (64 keeps
    the head count, and with it CPU cost of the many small window matmuls, low).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        img_size: int,
        dim: int = 48,
        depths: Sequence[int] = (2, 2, 2),
        head_dim: int = 64,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError(f"the decoder needs 4 encoder channel counts, got {tuple(in_channels)}")
        if len(depths) != 3:
            raise ValueError(f"decoder_depths needs 3 entries (strides 16, 8, 4), got {tuple(depths)}")
        widths = (dim, 2 * dim, 4 * dim, 8 * dim)
        # Project every encoder stage to the decoder's width; LayerNorm evens out backbones whose
        # stage outputs are un-normalised (ResNet's post-ReLU maps, Swin's residual stream).
        self.skips = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(c), nn.Linear(c, w) if c != w else nn.Identity())
            for c, w in zip(in_channels, widths)
        )
        self.stages = nn.ModuleList(
            DecoderStage(widths[i + 1], widths[i], depth, img_size // (4 * 2**i), head_dim, mlp_ratio)
            for i, depth in zip((2, 1, 0), depths)
        )
        # Final x4 expansion + the linear layer to one logit (Eq. 13), fused: a linear layer to 16
        # values per stride-4 token, pixel-shuffled into its 4x4 pixels. Two stacked linear layers
        # would compose into this one anyway, and nothing runs at full resolution.
        self.final_norm = nn.LayerNorm(dim)
        self.final_expand = nn.Linear(dim, 16)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        maps = [proj(f.permute(0, 2, 3, 1)) for proj, f in zip(self.skips, features)]  # NHWC
        x = maps[3]
        for stage, skip in zip(self.stages, (maps[2], maps[1], maps[0])):
            x = stage(x, skip)
        x = _shuffle(self.final_expand(self.final_norm(x)), 4)  # (N, H, W, 1)
        return x.permute(0, 3, 1, 2)  # (N, 1, H, W); sigmoid -> P_M
