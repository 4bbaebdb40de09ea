"""The detector with every backbone plugin: shapes, gradients, the shared decoder, config, weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import harness
from harness.models import MEAN, STD, DetectorLoss, build_model, to_tensor
from harness.models.decoder import SwinUnetDecoder
from harness.models.detector import _check_encoder

BACKBONES = ("swin", "swin-s", "resnet50", "vit-s", "efficientnet-b4", "mobilenetv2", "efficientnet-lite0")
SIZE = 64
# The first layer each encoder applies to the image: gradients must reach it.
FIRST_LAYER = {
    "swin": "encoder.model.patch_embed.proj.weight",
    "swin-s": "encoder.model.patch_embed.proj.weight",
    "resnet50": "encoder.model.conv1.weight",
    "vit-s": "encoder.model.patch_embed.proj.weight",
    "efficientnet-b4": "encoder.model.conv_stem.weight",
    "mobilenetv2": "encoder.features.0.0.weight",
    "efficientnet-lite0": "encoder.model.conv_stem.weight",
}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: build_model(name, img_size=SIZE) for name in BACKBONES}


def _batch(n=2, size=SIZE):
    torch.manual_seed(1)
    x = torch.randn(n, 3, size, size)
    masks = torch.zeros(n, 1, size, size)
    masks[0, :, size // 4 : size // 2, size // 4 : 3 * size // 4] = 1.0
    return x, torch.tensor([1.0, 0.0]), masks


@pytest.mark.parametrize("name", BACKBONES)
def test_forward_backward_shapes_and_gradient_reaches_first_layer(models, name):
    model = models[name]
    model.zero_grad(set_to_none=True)
    x, labels, masks = _batch()
    out = model(x)
    h = SIZE // 32
    assert out.logit.shape == (2,)
    assert out.token_logits.shape == (2, 1, h, h)
    assert out.token_features.shape[:2] == (2, h * h)
    assert out.token_embeddings.shape[:2] == (2, h * h)
    assert out.pooled.shape[0] == 2
    assert out.mask_logits.shape == (2, 1, SIZE, SIZE)
    # every term on (L_t opted in, token losses allowed on this small grid) so every head trains
    total, _ = DetectorLoss(delta=1.0, min_grid=1)(out, labels, masks)
    total.backward()
    grads = dict(model.named_parameters())
    first = grads[FIRST_LAYER[name]].grad
    assert first is not None and first.abs().sum() > 0
    # Every parameter is used (DDP without find_unused_parameters needs it).
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused


def test_one_decoder_class_for_every_backbone(models):
    types = {type(m.decoder) for m in models.values()}
    assert types == {SwinUnetDecoder}
    channels = {name: tuple(m.encoder.channels) for name, m in models.items()}
    assert channels["swin"] == (96, 192, 384, 768)
    assert channels["resnet50"] == (256, 512, 1024, 2048)
    assert channels["vit-s"] == (96, 192, 384, 384)
    assert channels["efficientnet-b4"] == (32, 56, 160, 448)
    assert channels["mobilenetv2"] == (24, 32, 96, 1280)
    assert channels["efficientnet-lite0"] == (24, 40, 112, 320)


def test_swin_at_224_px():
    torch.manual_seed(0)
    model = build_model("swin", img_size=224).eval()
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, 224, 224))
    assert out.logit.shape == (1,)
    assert out.token_logits.shape == (1, 1, 7, 7)
    assert out.token_features.shape == (1, 49, 768)
    assert out.mask_logits.shape == (1, 1, 224, 224)


def test_config_rebuilds_the_same_architecture_deterministically():
    torch.manual_seed(0)
    model = build_model("swin", img_size=SIZE, decoder_dim=16, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
    config = json.loads(json.dumps(model.config))
    assert config == {
        "backbone": "swin", "img_size": SIZE, "decoder_depths": [2, 2, 2], "decoder_dim": 16,
        "embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1],
    }
    torch.manual_seed(0)
    again = build_model(**config)
    torch.manual_seed(0)
    twice = build_model(**config)
    assert again.state_dict().keys() == model.state_dict().keys()
    for (k, a), b in zip(again.state_dict().items(), twice.state_dict().values()):
        assert torch.equal(a, b), k


def test_tiny_swin_options_pass_through_and_windows_fit():
    model = build_model("swin", img_size=96, embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), decoder_dim=16)
    assert model.encoder.channels == (24, 48, 96, 192)
    assert model.config["embed_dim"] == 24
    out = model(torch.zeros(1, 3, 96, 96))  # 96 px: window 3 tiles the 3x3 stride-32 map
    assert out.mask_logits.shape == (1, 1, 96, 96)


def _tiny(pretrained=False, embed_dim=24):
    return harness.plugin(
        "backbone", "swin", pretrained=pretrained, img_size=64, embed_dim=embed_dim, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)
    )


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_local_weights_file_loads_exactly(tmp_path, fmt):
    torch.manual_seed(3)
    source = _tiny()
    state = source.model.state_dict()
    path = tmp_path / f"w.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"model": state}, path)  # training-checkpoint wrapper is unwrapped
    torch.manual_seed(4)
    loaded = _tiny(pretrained=str(path))
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_local_weights_mismatch_and_missing_file_fail_clearly(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in _tiny(embed_dim=32).model.state_dict().items()}, str(path))
    with pytest.raises(ValueError, match="shape mismatches.*same architecture"):
        _tiny(pretrained=str(path))
    with pytest.raises(FileNotFoundError, match="pretrained=True"):
        _tiny(pretrained=str(tmp_path / "nope.pth"))


def test_bad_sizes_and_bad_backbones_are_rejected():
    with pytest.raises(ValueError, match="multiple of 32"):
        build_model("resnet50", img_size=100)
    with pytest.raises(KeyError, match="swin"):
        build_model("swim", img_size=64)

    class ThreeChannels(torch.nn.Module):  # has the members (the registry checks that), wrong values
        channels = (8, 16, 32)
        strides = (4, 8, 16, 32)

        def forward(self, x):
            return [x]

    with pytest.raises(TypeError, match=r"'mine'.*channels=\(c4, c8, c16, c32\)"):
        _check_encoder(ThreeChannels(), "mine", 64)

    class WrongShapes(torch.nn.Module):
        channels = (1, 1, 1, 1)
        strides = (4, 8, 16, 32)

        def forward(self, x):
            return [x[:, :1]] * 4

    with pytest.raises(ValueError, match="'wrong'.*expected"):
        _check_encoder(WrongShapes(), "wrong", 64)


def test_to_tensor_normalises_and_rejects_floats():
    batch = np.zeros((2, 4, 4, 3), np.uint8)
    batch[..., 0] = 255
    x = to_tensor(batch)
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx((1 - MEAN[0]) / STD[0], rel=1e-5)
    assert x[0, 1, 0, 0].item() == pytest.approx(-MEAN[1] / STD[1], rel=1e-5)
    with pytest.raises(ValueError, match=r"uint8 RGB batch shaped \(N, H, W, 3\)"):
        to_tensor(batch.astype(np.float32))
