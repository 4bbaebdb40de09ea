"""The detector: a backbone plugin + the shared Swin-Unet decoder + the detection heads (Fig. 4)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Sequence

import torch
from torch import nn

from harness.extend.defaults import defaults
from harness.models.decoder import SwinUnetDecoder
from harness.models.heads import DetectionHeads

STRIDES = (4, 8, 16, 32)
#: build_model's own options: they may ride in a run's backbone_options but never reach the plugin
DECODER_OPTIONS = ("decoder_depths", "decoder_dim")


class ModelOutput(NamedTuple):
    """Everything the losses, evaluator and predictor need (all logits: apply sigmoid for P_*).

    logit: (N,) fake logit, P_C = sigmoid(logit).
    token_logits: (N, 1, H/32, W/32), P_m = sigmoid(token_logits).
    token_features: (N, H/32 * W/32, C) per-token encoder features (what the classifier pools).
    mask_logits: (N, 1, H, W), P_M = sigmoid(mask_logits).
    token_embeddings: (N, H/32 * W/32, D) the projection head's tokens (the default L_m's space).
    pooled: (N, C) the pooled feature the classifier reads (the collapse guard watches its spread).
    """

    logit: torch.Tensor
    token_logits: torch.Tensor
    token_features: torch.Tensor
    mask_logits: torch.Tensor
    token_embeddings: torch.Tensor | None = None
    pooled: torch.Tensor | None = None


class DetectorModel(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: SwinUnetDecoder, config: dict[str, Any]) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = DetectionHeads(int(encoder.channels[3]))
        self.decoder = decoder
        self.config = config  # build_model(**config) rebuilds this architecture

    def forward(self, x: torch.Tensor, masks: bool = True) -> ModelOutput:
        """Every head; with ``masks=False`` the fake logit alone (the rest None): no decoder, no
        token heads, and the same logit bits (the encoder and the class head run alike)."""
        features = self.encoder(x)
        if not masks:
            return ModelOutput(logit=self.heads.classify(features[3]), token_logits=None, token_features=None, mask_logits=None)
        return ModelOutput(mask_logits=self.decoder(features), **self.heads(features[3]))


def forward_heads(model: nn.Module, x: torch.Tensor, masks: bool = True) -> Any:
    """``model(x)`` computing only the heads the caller needs: the mask head (P_M) when ``masks``,
    else only what gives ``logit``. A harness detector skips its decoder; any other network (an
    imported one) runs whole, its ``mask_logits`` then unread."""
    if isinstance(model, DetectorModel):
        return model(x, masks=masks)
    return model(x)


def _check_encoder(encoder: nn.Module, name: str, img_size: int) -> None:
    """Check the values of a backbone plugin's ``channels`` and ``strides`` (the contract check
    found both), and that its maps have them, with a message naming the plugin."""
    channels = encoder.channels
    if not isinstance(encoder, nn.Module) or channels is None or len(tuple(channels)) != 4:
        raise TypeError(
            f"backbone {name!r} must be an nn.Module declaring channels=(c4, c8, c16, c32); "
            f"got {type(encoder).__name__} with channels={channels!r}"
        )
    if tuple(encoder.strides) != STRIDES:
        raise TypeError(f"backbone {name!r} must declare strides={STRIDES}, got {encoder.strides!r}")
    was_training = encoder.training
    encoder.eval()  # no BatchNorm statistics update from the probe
    try:
        with torch.no_grad():
            maps = encoder(torch.zeros(1, 3, img_size, img_size))
    finally:
        encoder.train(was_training)
    got = [tuple(m.shape[1:]) for m in maps]
    want = [(c, img_size // s, img_size // s) for c, s in zip(channels, STRIDES)]
    if got != want:
        raise ValueError(f"backbone {name!r} at img_size={img_size} returned maps {got}, expected (C, H, W) {want}")


def build_model(
    backbone: str = defaults().backbone,
    pretrained: bool | str = False,
    img_size: int = 224,
    decoder_depths: Sequence[int] = (2, 2, 2),
    decoder_dim: int = 48,
    **backbone_options: Any,
) -> DetectorModel:
    """Assemble a detector around the backbone plugin ``backbone``.

    ``pretrained`` only initialises the encoder (timm download if True, a local file if a path);
    it is kept out of ``model.config`` so that rebuilding from a checkpoint never re-downloads:
    ``build_model(**model.config)`` then ``load_state_dict``. Run results record it.
    """
    import harness

    if not isinstance(img_size, int) or img_size < 32 or img_size % 32:
        raise ValueError(f"img_size must be a multiple of 32, got {img_size!r}")
    config: dict[str, Any] = {
        "backbone": backbone,
        "img_size": img_size,
        "decoder_depths": [int(d) for d in decoder_depths],
        "decoder_dim": int(decoder_dim),
        **backbone_options,
    }
    try:
        json.dumps(config)
    except TypeError as exc:
        raise ValueError(f"backbone options must be JSON-serialisable so checkpoints can rebuild the model: {exc}") from exc
    encoder = harness.plugin("backbone", backbone, pretrained=pretrained, img_size=img_size, **backbone_options)
    _check_encoder(encoder, backbone, img_size)
    decoder = SwinUnetDecoder(tuple(int(c) for c in encoder.channels), img_size, decoder_dim, config["decoder_depths"])
    return DetectorModel(encoder, decoder, config)
