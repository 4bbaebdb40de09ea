"""The DeeperForensics-1.0 perturbations on face crops, the --perturb parser, and the robustness block."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness.evaluation.perturb import Condition, PerturbSpecError, h264_roundtrip, parse_conditions, perturb_video
from harness.vocab.conditions import DISTORTIONS


def crop(seed: int = 0, size: int = 64) -> np.ndarray:
    """A textured RGB crop: smooth colour gradients plus fine noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([x * 3, y * 3, (x + y) * 2], -1) % 200 + 30
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def test_spec_all_is_seven_distortions_at_five_levels_in_table_order():
    conditions = parse_conditions("all")
    assert len(conditions) == 35
    assert [c.name for c in conditions[::5]] == list(DISTORTIONS)
    assert parse_conditions("jpeg:1-5,blur:3") == [Condition("blur", 3)] + [Condition("jpeg", lv) for lv in range(1, 6)]
    assert parse_conditions("noise, noise:2") == [Condition("noise", lv) for lv in range(1, 6)]  # merged
    assert parse_conditions("") == [] and parse_conditions(None) == []


@pytest.mark.parametrize("spec, says", [("jpg:1", "unknown distortion 'jpg'"), ("jpeg:6", "out of 1-5"),
                                        ("blur:a", "not numbers"), ("blur:4-2", "out of 1-5")])
def test_bad_spec_names_the_valid_values(spec, says):
    with pytest.raises(PerturbSpecError) as info:
        parse_conditions(spec)
    assert says in str(info.value) and "saturation, contrast, block, noise, blur, jpeg, video" in str(info.value)


def test_reference_parameters_per_level():
    # perturbation/add_distortion_to_video.py of DeeperForensics-1.0
    assert [Condition("video", lv).param for lv in range(1, 6)] == [30, 32, 35, 38, 40]
    assert [Condition("blur", lv).param for lv in range(1, 6)] == [7, 9, 13, 17, 21]
    assert [Condition("jpeg", lv).param for lv in range(1, 6)] == [2, 3, 4, 5, 6]
    assert Condition("saturation", 5).param == 0.0 and Condition("noise", 5).param == 0.05


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_every_distortion_changes_the_crop_more_at_level_5_and_keeps_its_shape(name):
    image = crop()
    diffs = []
    for level in (1, 5):
        out = perturb_video([image] * 3, [0] * 3, Condition(name, level), 0, "ffpp/x/c23/000")
        assert len(out) == 3 and all(o.shape == image.shape and o.dtype == np.uint8 for o in out)
        diffs.append(np.abs(out[1].astype(int) - image).mean())
    assert 0 < diffs[0] < diffs[1], diffs


def test_saturation_level_5_is_grey_and_contrast_scales_values():
    image = crop()
    grey = perturb_video([image], [0], Condition("saturation", 5), 0, "u")[0].astype(int)
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 1 and np.abs(grey[..., 1] - grey[..., 2]).max() <= 1
    dark = perturb_video([image], [0], Condition("contrast", 5), 0, "u")[0]
    assert np.array_equal(dark, (image.astype(np.float32) * 0.35).astype(np.uint8))


def test_random_distortions_are_seeded_per_video_and_condition():
    image = crop()
    for name in ("noise", "block"):
        c = Condition(name, 3)
        a = perturb_video([image], [0], c, 0, "video-a")[0]
        assert np.array_equal(a, perturb_video([image], [0], c, 0, "video-a")[0])  # rerun: same pixels
        assert not np.array_equal(a, perturb_video([image], [0], c, 0, "video-b")[0])  # another video
        assert not np.array_equal(a, perturb_video([image], [0], c, 1, "video-a")[0])  # another seed


def test_video_compression_runs_a_real_h264_round_trip_per_face_track():
    frames = [crop(i, 48) for i in range(6)]
    once = h264_roundtrip(frames, 40)
    assert len(once) == 6 and all(np.array_equal(a, b) for a, b in zip(once, h264_roundtrip(frames, 40)))
    assert np.abs(once[0].astype(int) - frames[0]).mean() > np.abs(h264_roundtrip(frames, 30)[0].astype(int) - frames[0]).mean()
    odd = h264_roundtrip([crop(0, 47)] * 2, 30)  # yuv420p needs even sides: padded, cut back
    assert odd[0].shape == (47, 47, 3)
    # two faces per frame: each track encoded on its own, output in the input's order
    mixed = perturb_video([frames[0], crop(9, 32), frames[1], crop(8, 32)], [0, 1, 0, 1], Condition("video", 1), 0, "u")
    assert [m.shape[0] for m in mixed] == [48, 32, 48, 32]


# --------------------------------------------------------------------------------------------
# The robustness block on a model whose score the distortions must move
# --------------------------------------------------------------------------------------------
class SharpnessModel(torch.nn.Module):
    """Logit = high-frequency energy + mean brightness: fakes here are sharper, brightness is random
    per video. Blur and JPEG (down/up-scaling) remove the sharpness the model ranks by."""

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        grey = x.mean(1, keepdim=True)
        high = (grey[..., 1:, :] - grey[..., :-1, :]).abs().mean((1, 2, 3)) + (grey[..., 1:] - grey[..., :-1]).abs().mean((1, 2, 3))
        logit = 4 * high + grey.mean((1, 2, 3))
        return SimpleNamespace(logit=logit, mask_logits=torch.zeros(x.shape[0], 1, x.shape[2], x.shape[3]))


@dataclass
class Face:
    image: np.ndarray
    frame_index: int
    face_index: int = 0
    mask: None = None


class Cache:
    def __init__(self, n: int = 8, frames: int = 3, size: int = 64):
        rng = np.random.default_rng(0)
        self.videos, self._faces = [], {}
        for i in range(2 * n):
            label = i % 2
            uid = f"toy/{'fake' if label else 'real'}/{i}"
            level = rng.uniform(60, 190)
            faces = []
            for f in range(frames):
                smooth = np.full((size, size, 3), level) + rng.normal(0, 3, (size, size, 3))
                texture = rng.normal(0, 25 if label else 6, (size, size, 1))  # fakes: fine texture
                faces.append(Face(np.clip(smooth + texture, 0, 255).astype(np.uint8), f))
            self._faces[uid] = faces
            self.videos.append(SimpleNamespace(uid=uid, label=label, method="toyfake" if label else "original", status="done",
                                               path=f"{uid}.mp4"))

    def faces(self, uid: str, frames: int | None = None) -> list[Face]:
        assert frames is not None  # a reader that scores asks for its frame count
        return self._faces[uid]


def _robustness(model: torch.nn.Module, cache: "Cache", spec: str) -> tuple[dict, object]:
    """The robustness block of ``cache`` under ``spec``, after the clean scores it reuses."""
    from dataclasses import replace

    from harness.evaluation.robustness import robustness_block
    from harness.evaluation.runner import EvalSetup, score_videos
    from harness.vocab.config import EvalConfig

    setup = EvalSetup(eval=EvalConfig(frames_per_video=3, bootstrap=100), img_size=64, seed=0)
    clean = score_videos(model, cache, cache.videos, setup, torch.device("cpu"), show=False)
    setup = replace(setup, perturb=tuple(parse_conditions(spec)))
    return robustness_block(model, cache, cache.videos, setup, torch.device("cpu"), clean, show=False), clean


def test_blur_and_jpeg_level_5_lower_the_auc_and_reruns_repeat_it():
    from harness.evaluation.robustness import APPLIED_TO

    cache = Cache()
    block, _ = _robustness(SharpnessModel(), cache, "jpeg:5,blur:5,contrast:1")
    assert block["applied_to"] == APPLIED_TO and block["videos"] == 16
    clean = block["clean"]["value"]
    assert clean == 1.0
    for name in ("jpeg", "blur"):
        assert block["conditions"][name]["5"]["auc"]["value"] < clean
        assert block["mean_over_levels"][name] == {"auc": block["conditions"][name]["5"]["auc"]["value"], "levels": 1}
    again, _ = _robustness(SharpnessModel(), cache, "jpeg:5,blur:5,contrast:1")
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in block.items() if k != "seconds"}


class CountingModel(SharpnessModel):
    """SharpnessModel that counts the faces it scores and sees the mask head asked or not."""

    def __init__(self) -> None:
        super().__init__()
        self.faces = 0

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        self.faces += x.shape[0]
        return super().forward(x)


def test_robustness_reuses_the_clean_scores_and_scores_each_condition_once_through_the_runner():
    """No second clean pass: the faces scored are the conditions' only, and the clean column is the
    clean scores' AUC; a perturbed condition's scores are the runner's aggregation of the model's
    probabilities on that condition's crops."""
    from harness.evaluation.runner import AGGREGATORS

    cache, model = Cache(n=4), CountingModel()
    block, clean = _robustness(model, cache, "jpeg:5,noise:3")
    faces = sum(len(cache.faces(v.uid, 3)) for v in cache.videos)
    assert model.faces == 3 * faces  # the clean pass (by the caller) and two conditions: no second clean pass
    labels = [clean.label[u] for u in sorted(clean.video)]
    from sklearn.metrics import roc_auc_score

    assert block["clean"]["value"] == roc_auc_score(labels, [clean.video[u] for u in sorted(clean.video)])
    condition = parse_conditions("noise:3")[0]
    by_hand = {}
    for video in cache.videos:
        faces_of = cache.faces(video.uid, 3)
        crops = perturb_video([f.image for f in faces_of], [f.face_index for f in faces_of], condition, 0, video.uid)
        with torch.no_grad():
            from harness.models.inputs import model_input

            probs = torch.sigmoid(SharpnessModel()(model_input(crops, 64, "cpu")).logit).numpy()
        by_hand[video.uid] = AGGREGATORS["mean"](np.array([float(p) for p in probs]))  # one face per frame
    assert block["conditions"]["noise"]["3"]["auc"]["value"] == roc_auc_score(labels, [by_hand[u] for u in sorted(by_hand)])
