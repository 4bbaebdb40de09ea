"""The `deepfakebench` importer against independent references with DeepfakeBench's key names and
forward rules: timm's ``legacy_xception`` (xception, core; spsl with the phase channel, f3net with
the FAD head written here from DeepfakeBench's definition), efficientnet_pytorch's B4 with the
plain stem (efficientnetb4), and torch.nn.functional on the file's tensors (meso4,
meso4Inception). Each is saved as DeepfakeBench's trainer saves it (a flat state dict) and the
harness's scores on its one scoring path equal the reference's softmax[:, 1] within 1e-5. Bad
files are one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from fixtures.cli_checks import refused_writing_nothing
from harness.cli import build_app

runner = CliRunner()
SIZE = 256


def faces(n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    out = [np.clip(128 + 90 * np.cos((i + 2) * 4 * xx * yy)[..., None] + rng.normal(0, 25 + 10 * i, (SIZE, SIZE, 3)), 0, 255)
           for i in range(n)]
    return np.stack(out).astype(np.uint8)


def normalised(batch: np.ndarray) -> torch.Tensor:
    """DeepfakeBench's input: /255, then Normalize(mean=0.5, std=0.5)."""
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0
    return (x - 0.5) / 0.5


def random_batchnorms(module: torch.nn.Module, seed: int = 0) -> None:
    """Every BatchNorm away from identity, so that a swapped statistic would show in the scores."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 0.5 + torch.rand(c, generator=g)
            m.bias.data = 0.1 * torch.randn(c, generator=g)
            m.running_mean.data = 0.1 * torch.randn(c, generator=g)
            m.running_var.data = 0.5 + 1.5 * torch.rand(c, generator=g)


def spread_head(linear: torch.nn.Linear, pooled: torch.Tensor) -> None:
    """A 2-class head whose fake-minus-real logit on ``pooled`` spans about [-1, 1] (no saturation)."""
    d = pooled @ (linear.weight[1] - linear.weight[0])
    scale = 1.0 / max(float((d - d.mean()).abs().max()), 1e-6) if len(d) > 1 else 1.0 / max(float(d.abs()[0]), 1e-6)
    linear.weight.data *= scale
    linear.bias.data = torch.tensor([0.0, -float(d.mean()) * scale])


def dfb_file(state: dict, path: Path, prefix: str = "") -> Path:
    """What DeepfakeBench's trainer writes: torch.save(model.state_dict()) (``module.`` under DDP)."""
    torch.save({prefix + k: v.clone() for k, v in state.items()}, path)
    return path


def harness_scores(tmp_path: Path, checkpoint: str, crops: np.ndarray) -> tuple[np.ndarray, dict]:
    """Import through the CLI, then score on the harness's one path (evaluate's and predict's)."""
    from harness.evaluation.runner import predict_faces
    from harness.models.bundle import input_scale, load_model

    out = tmp_path / "bundle"
    result = runner.invoke(build_app(), ["import", checkpoint, "--out", str(out)])
    assert result.exit_code == 0, result.output
    model, meta = load_model(out)
    scores, _ = predict_faces(model, list(crops), meta["img_size"], "cpu", 4, input_scale(meta))
    return scores, meta


# ------------------------------------------------------------------------------------------------
# Xception family: timm's legacy_xception under DeepfakeBench's names
# ------------------------------------------------------------------------------------------------
def timm_xception(in_chans: int = 3, seed: int = 0) -> torch.nn.Module:
    import timm

    torch.manual_seed(seed)
    model = timm.create_model("legacy_xception", pretrained=False, num_classes=2, in_chans=in_chans).eval()
    random_batchnorms(model, seed)
    return model


def xception_state(model: torch.nn.Module) -> dict:
    """legacy_xception's keys as DeepfakeBench's Xception backbone has them: ``backbone.``, head
    ``last_linear``, plus its unused ``adjust_channel`` (random)."""
    state = {f"backbone.{'last_linear' + k[2:] if k.startswith('fc.') else k}": v for k, v in model.state_dict().items()}
    adjust = torch.nn.Sequential(torch.nn.Conv2d(2048, 512, 1, 1), torch.nn.BatchNorm2d(512), torch.nn.ReLU())
    state.update({f"backbone.adjust_channel.{k}": v for k, v in adjust.state_dict().items()})
    return state


def xception_reference(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's forward (features with the last ReLU, average pool, fc) with a head spread on ``x``."""
    with torch.no_grad():
        features = model.forward_features(x)
        spread_head(model.fc, features.mean((2, 3)))
        return model.forward_head(features).softmax(1)[:, 1]


@pytest.fixture(scope="module")
def xception_file(tmp_path_factory) -> tuple[Path, np.ndarray]:
    crops = faces(2)
    model = timm_xception()
    expected = xception_reference(model, normalised(crops)).numpy()
    return dfb_file(xception_state(model), tmp_path_factory.mktemp("dfb") / "xception_best.pth"), expected


def test_xception_scores_equal_timm_legacy_xception(tmp_path, xception_file):
    path, expected = xception_file
    scores, meta = harness_scores(tmp_path, f"deepfakebench:{path}", faces(2))
    assert np.abs(scores - expected).max() < 1e-5, (scores, expected)
    assert abs(expected[0] - expected[1]) > 1e-3
    assert meta["model"]["arch"] == "xception" and meta["input"]["scale"] == "symmetric"
    assert "file name" in meta["origin"]["recognised_by"] and meta["training"]["datasets"] == ["ffpp"]


def test_xception_and_core_share_a_key_set_the_name_or_the_option_decides(tmp_path, xception_file):
    from harness.models.bundle import load_meta
    from harness_plugins.importers.deepfakebench import choose

    path, _ = xception_file
    (tmp_path / "model.pth").symlink_to(path)
    assert choose(["xception", "core"], None, Path("core_best.pth"), "xception")[0] == "core"
    assert choose(["xception", "core"], None, Path("xception_best.pth"), "xception")[0] == "xception"
    line = _refused(tmp_path, ["import", "deepfakebench", str(tmp_path / "model.pth"), "--out", str(tmp_path / "out")])
    assert "xception and core" in line and "?arch=xception" in line
    result = runner.invoke(build_app(), ["import", f"deepfakebench:{tmp_path / 'model.pth'}?arch=core", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    meta = load_meta(tmp_path / "b")
    assert meta["model"]["arch"] == "core" and meta["origin"]["options"] == {"arch": "core"}


def phase_reference(x: torch.Tensor) -> torch.Tensor:
    """DeepfakeBench's SPSL phase_without_amplitude, one face at a time (a batch of one)."""
    out = []
    for face in x.split(1):
        grey = torch.mean(face, dim=1, keepdim=True)
        spectrum = torch.fft.fftn(grey)
        out.append(torch.real(torch.fft.ifftn(torch.exp(1j * torch.angle(spectrum)))))
    return torch.cat(out)


def test_spsl_scores_equal_timm_on_image_and_phase(tmp_path):
    crops = faces(1)
    model = timm_xception(in_chans=4, seed=1)
    x = normalised(crops)
    expected = xception_reference(model, torch.cat((x, phase_reference(x)), 1)).numpy()
    path = dfb_file(xception_state(model), tmp_path / "spsl_best.pth")
    scores, meta = harness_scores(tmp_path, str(path), crops)  # detected: deepfakebench, spsl by its 4-channel stem
    assert meta["model"]["arch"] == "spsl" and np.abs(scores - expected).max() < 1e-5, (scores, expected)


def fad_state(size: int = SIZE, seed: int = 2) -> dict:
    """F3Net's FAD head as DeepfakeBench defines it (DCT matrix, band filters, learnable parts)."""
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    dct = np.where(i == 0, np.sqrt(1.0 / size), np.sqrt(2.0 / size)) * np.cos((j + 0.5) * np.pi * i / size)
    bands = [(0, size // 2.82), (size // 2.82, size // 2), (size // 2, size * 2), (0, size * 2)]
    g = torch.Generator().manual_seed(seed)
    state = {"FAD_head._DCT_all": torch.tensor(dct).float(), "FAD_head._DCT_all_T": torch.tensor(dct).float().T.contiguous()}
    for k, (start, end) in enumerate(bands):
        state[f"FAD_head.filters.{k}.base"] = torch.tensor(((i + j) <= end) & ((i + j) >= start)).float()
        state[f"FAD_head.filters.{k}.learnable"] = 0.1 * torch.randn(size, size, generator=g)
    return state


def fad_reference(state: dict, x: torch.Tensor) -> torch.Tensor:
    d, dt = state["FAD_head._DCT_all"], state["FAD_head._DCT_all_T"]
    freq = d @ x @ dt
    bands = [dt @ (freq * (state[f"FAD_head.filters.{k}.base"] + 2 * torch.sigmoid(state[f"FAD_head.filters.{k}.learnable"]) - 1)) @ d
             for k in range(4)]
    return torch.cat(bands, 1)


def test_f3net_scores_equal_timm_on_the_fad_bands(tmp_path):
    crops = faces(1)
    model = timm_xception(in_chans=12, seed=2)
    fad = fad_state()
    expected = xception_reference(model, fad_reference(fad, normalised(crops))).numpy()
    path = dfb_file({**xception_state(model), **fad}, tmp_path / "f3net_best.pth")
    scores, meta = harness_scores(tmp_path, f"deepfakebench:{path}", crops)
    assert meta["model"]["arch"] == "f3net" and np.abs(scores - expected).max() < 1e-5, (scores, expected)


# ------------------------------------------------------------------------------------------------
# EfficientNet-B4: efficientnet_pytorch with DeepfakeBench's stem and head
# ------------------------------------------------------------------------------------------------
def test_efficientnetb4_scores_equal_efficientnet_pytorch(tmp_path):
    from efficientnet_pytorch import EfficientNet

    torch.manual_seed(4)
    net = EfficientNet.from_name("efficientnet-b4")
    net._conv_stem = torch.nn.Conv2d(3, 48, kernel_size=3, stride=2, bias=False)
    net._fc = torch.nn.Identity()
    head = torch.nn.Linear(1792, 2)
    random_batchnorms(net, 4)
    net.eval()
    crops = faces(2)
    with torch.no_grad():
        pooled = F.adaptive_avg_pool2d(net.extract_features(normalised(crops)), (1, 1)).flatten(1)
        spread_head(head, pooled)
        expected = head(pooled).softmax(1)[:, 1].numpy()
    state = {**{f"backbone.efficientnet.{k}": v for k, v in net.state_dict().items()},
             **{f"backbone.last_layer.{k}": v for k, v in head.state_dict().items()}}
    path = dfb_file(state, tmp_path / "effnb4_best.pth")
    scores, meta = harness_scores(tmp_path, str(path), crops)
    assert meta["model"]["arch"] == "efficientnetb4" and np.abs(scores - expected).max() < 1e-5, (scores, expected)


# ------------------------------------------------------------------------------------------------
# MesoNet as DeepfakeBench trains it: functional forward on the file's own tensors
# ------------------------------------------------------------------------------------------------
def _bn(state: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, state[f"{name}.running_mean"], state[f"{name}.running_var"], state[f"{name}.weight"],
                        state[f"{name}.bias"], False, 0.0, 1e-5)


def meso_state(inception: bool, seed: int = 5) -> dict:
    g = torch.Generator().manual_seed(seed)
    shapes = {"conv1": (8, 3, 3, 3), "conv2": (8, 8, 5, 5), "conv3": (16, 8, 5, 5), "conv4": (16, 16, 5, 5)}
    bns = {"bn1": 8, "bn2": 16}
    if inception:
        shapes = {"conv1": (16, 12, 5, 5), "conv2": (16, 16, 5, 5)}
        bns = {"bn1": 16, "Incption1_bn": 11, "Incption2_bn": 12}
        for block, cin, (a, b, c, d) in ((1, 3, (1, 4, 4, 2)), (2, 11, (2, 4, 4, 2))):
            shapes.update({f"Incption{block}_conv1": (a, cin, 1, 1), f"Incption{block}_conv2_1": (b, cin, 1, 1),
                           f"Incption{block}_conv2_2": (b, b, 3, 3), f"Incption{block}_conv3_1": (c, cin, 1, 1),
                           f"Incption{block}_conv3_2": (c, c, 3, 3), f"Incption{block}_conv4_1": (d, cin, 1, 1),
                           f"Incption{block}_conv4_2": (d, d, 3, 3)})
    state = {f"{k}.weight": torch.randn(s, generator=g) / np.sqrt(np.prod(s[1:])) for k, s in shapes.items()}
    for name, c in bns.items():
        state.update({f"{name}.weight": 0.5 + torch.rand(c, generator=g), f"{name}.bias": 0.1 * torch.randn(c, generator=g),
                      f"{name}.running_mean": 0.1 * torch.randn(c, generator=g),
                      f"{name}.running_var": 0.5 + torch.rand(c, generator=g), f"{name}.num_batches_tracked": torch.tensor(0)})
    state.update({"fc1.weight": torch.randn(16, 1024, generator=g) / 32, "fc1.bias": torch.zeros(16),
                  "fc2.weight": torch.randn(2, 16, generator=g), "fc2.bias": torch.zeros(2)})
    return state


def meso_reference(state: dict, x: torch.Tensor, inception: bool) -> torch.Tensor:
    """DeepfakeBench's networks/mesonet.py forward, written with torch.nn.functional."""
    conv = lambda name, x, pad=0, dil=1: F.conv2d(x, state[f"{name}.weight"], padding=pad, dilation=dil)  # noqa: E731
    if inception:
        for block in (1, 2):
            p = f"Incption{block}_"
            branches = [conv(p + "conv1", x), conv(p + "conv2_2", conv(p + "conv2_1", x), 1),
                        conv(p + "conv3_2", conv(p + "conv3_1", x), 2, 2), conv(p + "conv4_2", conv(p + "conv4_1", x), 3, 3)]
            x = F.max_pool2d(_bn(state, p + "bn", torch.cat(branches, 1)), 2)
        x = F.max_pool2d(_bn(state, "bn1", F.relu(conv("conv1", x, 2))), 2)
        x = F.max_pool2d(_bn(state, "bn1", F.relu(conv("conv2", x, 2))), 4)
    else:
        x = F.max_pool2d(_bn(state, "bn1", F.relu(conv("conv1", x, 1))), 2)
        x = F.max_pool2d(_bn(state, "bn1", F.relu(conv("conv2", x, 2))), 2)
        x = F.max_pool2d(_bn(state, "bn2", F.relu(conv("conv3", x, 2))), 2)
        x = F.max_pool2d(_bn(state, "bn2", F.relu(conv("conv4", x, 2))), 4)
    x = F.leaky_relu(F.linear(x.reshape(len(x), -1), state["fc1.weight"], state["fc1.bias"]), 0.1)
    return F.linear(x, state["fc2.weight"], state["fc2.bias"]).softmax(1)[:, 1]


@pytest.mark.parametrize("arch", ["meso4", "meso4Inception"])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_meso_scores_equal_deepfakebench_forward_and_a_ddp_prefix_is_accepted(tmp_path, arch, prefix):
    inception = arch == "meso4Inception"
    state = meso_state(inception)
    crops = faces(3)
    expected = meso_reference(state, normalised(crops), inception).numpy()
    path = dfb_file({f"backbone.{k}": v for k, v in state.items()}, tmp_path / "trained.pth", prefix)
    scores, meta = harness_scores(tmp_path, f"deepfakebench:{path}", crops)
    assert meta["model"]["arch"] == arch and meta["origin"]["ddp_prefix"] == bool(prefix)
    assert np.abs(scores - expected).max() < 1e-5 and np.ptp(expected) > 1e-3, (scores, expected)


def test_the_bundle_records_deepfakebenchs_aligned_crop_cut_at_the_input_size(tmp_path):
    """The crop DeepfakeBench trained on (dlib, 5 landmarks aligned to the ArcFace template at scale
    1.3, the largest face), cut at the model's 256 px input: its loader's INTER_CUBIC resize and the
    harness's resize both leave such a crop as it is, so the recorded rule is the whole story."""
    import cv2

    from harness.data.crop import CropRule, resize_crop
    from harness.models.bundle import load_meta

    path = dfb_file({f"backbone.{k}": v for k, v in meso_state(False).items()}, tmp_path / "meso4_best.pth")
    result = runner.invoke(build_app(), ["import", str(path), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    meta = load_meta(tmp_path / "b")
    rule = CropRule.from_dict(meta["crop"])
    assert rule == CropRule(detector="dlib", basis="aligned5", template="deepfakebench", scale=1.3, crop_size=256, min_area=1.0)
    assert rule.crop_size == meta["img_size"] and rule.pad == "constant"  # warpAffine's black border
    assert meta["origin"]["importer_version"] == "2" and "recorded here as" not in meta["origin"]["crop_rule"]
    crop = faces(1)[0]
    assert np.array_equal(cv2.resize(crop, (256, 256), interpolation=cv2.INTER_CUBIC), crop)
    assert np.array_equal(resize_crop(crop, meta["img_size"]), crop)


# ------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written
# ------------------------------------------------------------------------------------------------
def _refused(tmp_path: Path, args: list[str]) -> str:
    return refused_writing_nothing(args, tmp_path / "out")


def test_an_unsupported_detector_is_named_with_the_supported_list(tmp_path):
    path = dfb_file({"encoder_f.conv1.weight": torch.zeros(2), "head_spe.mlp.0.weight": torch.zeros(2)}, tmp_path / "ucf_best.pth")
    line = _refused(tmp_path, ["import", str(path), "--out", str(tmp_path / "out")])  # detected as deepfakebench's
    assert "ucf is not supported" in line and "supported: xception, core, spsl, f3net, efficientnetb4, meso4, meso4Inception" in line


def test_a_key_set_that_matches_no_detector_is_one_line(tmp_path):
    path = dfb_file({"backbone.layer1.0.conv1.weight": torch.zeros(2)}, tmp_path / "resnet.pth")
    line = _refused(tmp_path, ["evaluate", "--checkpoint", f"deepfakebench:{path}"])
    assert "match no DeepfakeBench detector" in line and "backbone.layer1.0.conv1.weight" in line


def test_an_arch_that_does_not_fit_the_file_and_an_unknown_arch_are_one_line(tmp_path):
    path = dfb_file({f"backbone.{k}": v for k, v in meso_state(False).items()}, tmp_path / "m.pth")
    line = _refused(tmp_path, ["import", f"deepfakebench:{path}?arch=core", "--out", str(tmp_path / "out")])
    assert "arch=core does not fit" in line and "meso4" in line
    line = _refused(tmp_path, ["import", f"deepfakebench:{path}?arch=capsule_net", "--out", str(tmp_path / "out")])
    assert "'capsule_net' is not supported" in line and "meso4Inception" in line


@pytest.mark.slow
def test_predict_takes_a_deepfakebench_file_with_options(tmp_path, monkeypatch):
    import cv2

    from harness.data.sample_face import astronaut_face
    from harness.predict import validate

    monkeypatch.chdir(tmp_path)
    path = dfb_file({f"backbone.{k}": v for k, v in meso_state(False).items()}, tmp_path / "weights.pth")
    face, _ = astronaut_face(160, margin=0.6)
    frame = np.full((224, 224, 3), 70, np.uint8)
    frame[20:180, 30:190] = face
    cv2.imwrite("face.png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = runner.invoke(build_app(), ["predict", "face.png", "--checkpoint", f"deepfakebench:{path}?arch=meso4", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    validate(report)
    assert report["checkpoint"]["importer"] == "deepfakebench" and report["files"][0]["status"] == "ok"
