"""`harness predict` internals: paste-back geometry, the end-to-end chain with a colour-oracle model
(detector -> crop rule -> model -> paste-back -> IoU against a mask video), verdicts, the JSON
schema, pictures."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import harness
from harness.data.crop import crop_box, crop_image, crop_mask
from harness.data.video import read_frames_indexed, sample_indices, write_video
from harness.models import MEAN, STD, ModelOutput
from harness.predict import PredictOptions, Predictor, build_report, paste_mask, predict_files, validate
from harness.predict.outputs import output_names, suspicious_frames
from harness.predict.overlay import frame_heat, render_frame

IMG = 64
FRAMES = 8
PATCH = 24  # side of the "manipulated" magenta square, frame pixels


# ------------------------------------------------------------------------------------------------
# Synthetic media: the astronaut's face drifting in a 256 px frame; the fake has a magenta patch on
# the cheek, and its mask video marks exactly that patch.
# ------------------------------------------------------------------------------------------------
def _frames(fake: bool, n: int = 12) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from harness.data.sample_face import astronaut_face

    face, lm = astronaut_face(200, margin=0.6)
    frames, masks = [], []
    for t in range(n):
        dx, dy = 20 + t, 28 + (t % 4)
        frame = np.full((256, 256, 3), 90, np.uint8)
        frame[dy : dy + 200, dx : dx + 200] = face
        mask = np.zeros((256, 256), np.uint8)
        if fake:
            cx, cy = ((lm[30] + lm[2]) / 2 + [dx, dy]).astype(int)
            sl = np.s_[cy - PATCH // 2 : cy + PATCH // 2, cx - PATCH // 2 : cx + PATCH // 2]
            frame[sl] = (255, 0, 255)
            mask[sl] = 255
        frames.append(frame)
        masks.append(mask)
    return frames, masks


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    fake_frames, fake_masks = _frames(True)
    real_frames, _ = _frames(False)
    (root / "masks").mkdir()
    write_video(root / "fake.mp4", fake_frames)
    write_video(root / "masks" / "fake.mp4", fake_masks)
    write_video(root / "real.mp4", real_frames)
    cv2.imwrite(str(root / "still.png"), cv2.cvtColor(real_frames[0], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "blank.png"), np.full((120, 160, 3), 128, np.uint8))  # no face
    (root / "broken.mp4").write_bytes(b"this is not a video" * 10)
    return root


class ColourOracle(nn.Module):
    """Stands in for a trained model: P_M is 'how magenta is this pixel', P_C grows with the magenta
    area. What it marks in the crop must come back on the patch in the frame."""

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        rgb = x * std + mean
        r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
        magenta = torch.sigmoid(25 * (torch.minimum(r, b) - g - 0.45))
        frac = (magenta > 0.5).float().mean(dim=(1, 2, 3))
        n = x.shape[0]
        return ModelOutput(400 * (frac - 0.01), torch.zeros(n, 1, 2, 2), torch.zeros(n, 4, 8), 12 * (magenta - 0.5))


META = {"model": {"backbone": "oracle"}, "img_size": IMG, "face_detector": "dlib", "crop": {"size": 128, "margin": 0.3}, "run": {}}


@pytest.fixture(scope="module")
def oracle():
    return Predictor(ColourOracle(), META, harness.plugin("face_detector", "dlib"), "cpu")


def test_predictor_cuts_with_the_checkpoints_crop_rule():
    """The crop rule travels in the checkpoint: a recorded forehead is used; an old record without
    one gets the old default."""
    from harness.data.crop import CropRule

    detector = object()
    new = Predictor(ColourOracle(), {**META, "crop": CropRule(crop_size=96, forehead=0.5).to_dict()}, detector, "cpu")
    assert new.crop == CropRule(crop_size=96, forehead=0.5)
    old = Predictor(ColourOracle(), META, detector, "cpu")
    assert old.crop == CropRule(crop_size=128) and old.crop.forehead == 0.2


# ------------------------------------------------------------------------------------------------
# Geometry
# ------------------------------------------------------------------------------------------------
def test_known_square_in_crop_lands_on_known_frame_region():
    box = (40.0, 30.0, 140.0, 130.0)  # side 100 px, crop 64 px: scale 0.64
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 8:40] = 1.0
    pasted = paste_mask(mask, box, (200, 220))
    assert pasted.shape == (200, 220)
    expected = np.zeros((200, 220), bool)
    # crop pixel u came from frame x = x0 + u / 0.64: columns 8..40 -> 52.5..102.5, rows 16..48 -> 55..105
    expected[55:105, 53:103] = True
    got = pasted >= 0.5
    iou = (got & expected).sum() / (got | expected).sum()
    assert iou > 0.96
    assert got[60:100, 58:98].all()  # interior exact
    assert not got[:, :50].any() and not got[:, 106:].any() and not got[:50].any() and not got[110:].any()


def test_paste_back_inverts_the_crop_rule_on_a_real_face():
    from harness.data.sample_face import astronaut_face

    face, lm = astronaut_face(240, margin=0.5)
    frame = np.zeros((300, 320, 3), np.uint8)
    frame[30:270, 50:290] = face
    lm = lm + [50, 30]
    truth = np.zeros(frame.shape[:2], np.float32)
    cv2.fillConvexPoly(truth, cv2.convexHull(lm[48:60].astype(np.int32)), 1.0)  # the mouth
    box = crop_box(lm, margin=0.3)
    crop = crop_image(frame, box, IMG)
    assert crop.shape == (IMG, IMG, 3)
    back = paste_mask(crop_mask(truth, box, IMG), box, frame.shape) >= 0.5
    iou = (back & (truth > 0)).sum() / (back | (truth > 0)).sum()
    assert iou > 0.8  # a 64 px round trip of a ~40 px mouth: edges blur by under a crop pixel


def test_frame_heat_takes_the_max_over_faces():
    a = np.full((8, 8), 0.3, np.float32)
    b = np.full((8, 8), 0.9, np.float32)
    heat = frame_heat((50, 50), [(a, (0, 0, 30, 30)), (b, (20, 20, 50, 50))])
    assert heat[10, 10] == pytest.approx(0.3, abs=1e-5)
    assert heat[25, 25] == pytest.approx(0.9, abs=1e-5)  # overlap: the larger wins
    assert heat[45, 5] == 0.0


def test_paste_mask_rejects_a_non_square_mask():
    with pytest.raises(ValueError, match="square"):
        paste_mask(np.zeros((4, 5), np.float32), (0, 0, 10, 10), (20, 20))


# ------------------------------------------------------------------------------------------------
# The whole chain with the oracle
# ------------------------------------------------------------------------------------------------
def test_fake_is_flagged_and_its_mask_lands_on_the_patch(oracle, media):
    options = PredictOptions(frames=FRAMES, mask=media / "masks")
    blocks = predict_files(oracle, [media / "fake.mp4", media / "real.mp4"], options)
    fake, real = blocks
    assert fake["status"] == "ok" and fake["verdict"] == "fake" and fake["score"] > 0.9
    assert real["status"] == "ok" and real["verdict"] == "real" and real["score"] < 0.1
    # evenly spaced over the 12 decoded frames, all with their face
    assert [f["index"] for f in fake["frames"]] == sample_indices(12, FRAMES).tolist()
    assert fake["frames_total"] == 12 and fake["frames_with_face"] == FRAMES
    loc = fake["localization"]
    assert loc["frames_with_truth"] == FRAMES
    assert loc["iou"] > 0.6 and loc["recall"] > 0.8, loc
    assert loc["heat_in_mask"] > 0.5 > 0.05 > loc["heat_outside_mask"]
    assert real["localization"] == {"mask": None, "error": f"no mask named real.* in {media / 'masks'}"}
    report = build_report(blocks, 0.5, FRAMES, oracle, device="cpu")
    validate(json.loads(json.dumps(report)))
    assert report["summary"] == {"inputs": 2, "scored": 2, "failed": 0, "fake": 1, "real": 1}


def test_threshold_decides_the_verdict(oracle, media):
    low = oracle.analyse(media / "real.mp4", frames=2, threshold=0.0)
    high = oracle.analyse(media / "real.mp4", frames=2, threshold=1.0)
    assert low.score == pytest.approx(high.score)
    assert (low.verdict, high.verdict) == ("fake", "real")


def test_bad_files_get_their_own_status_and_the_others_still_score(oracle, media, tmp_path):
    paths = [media / "broken.mp4", media / "blank.png", tmp_path / "missing.mp4", media / "still.png"]
    blocks = predict_files(oracle, paths, PredictOptions(frames=4))
    status = {b["path"].rsplit("/", 1)[-1]: (b["status"], b["error"]) for b in blocks}
    assert status["missing.mp4"][0] == "unreadable" and "no such file" in status["missing.mp4"][1]
    assert status["broken.mp4"][0] == "unreadable" and "broken.mp4" in status["broken.mp4"][1]
    assert status["blank.png"][0] == "no_face" and "no face" in status["blank.png"][1]
    still = next(b for b in blocks if b["path"].endswith("still.png"))
    assert still["status"] == "ok" and still["kind"] == "image" and still["frames_analysed"] == 1
    report = build_report(blocks, 0.5, 4, oracle)
    validate(report)
    assert report["summary"]["failed"] == 3 and report["summary"]["scored"] == 1


def test_schema_rejects_a_scored_file_without_verdict(oracle, media):
    import jsonschema

    blocks = predict_files(oracle, [media / "still.png"], PredictOptions(frames=1))
    report = build_report(blocks, 0.5, 1, oracle)
    report["files"][0]["verdict"] = None
    with pytest.raises(jsonschema.ValidationError):
        validate(report)


def test_options_are_checked_with_the_option_named():
    from harness.predict import PredictSetupError

    for options, name in [(PredictOptions(threshold=1.5), "--threshold"), (PredictOptions(frames=0), "--frames"),
                          (PredictOptions(explain=True), "--out"), (PredictOptions(mask_kind="soft"), "--mask-kind")]:
        with pytest.raises(PredictSetupError, match=name):
            options.check()


# ------------------------------------------------------------------------------------------------
# Pictures
# ------------------------------------------------------------------------------------------------
def test_overlay_files_put_the_heat_on_the_patch(oracle, media, tmp_path):
    out = tmp_path / "out"
    blocks = predict_files(oracle, [media / "fake.mp4"], PredictOptions(frames=4, out=out, top=3))
    outputs = blocks[0]["outputs"]
    assert len(outputs["overlays"]) == 4 and len(outputs["explain"]) == 0
    frames, _ = read_frames_indexed(outputs["video"])
    assert len(frames) == 4
    import av

    with av.open(outputs["video"]) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    # the rendered frame is the 256 px frame drawn at 2x: the patch region is painted red-hot
    png = cv2.cvtColor(cv2.imread(outputs["overlays"][0]), cv2.COLOR_BGR2RGB)
    assert png.shape == (512, 512, 3)
    sheet = cv2.imread(outputs["contact_sheet"])
    assert sheet.shape[1] == 6 + 3 * (192 + 6) and sheet.shape[0] > 3 * 192  # 3 columns, 3 rows


def test_rendered_overlay_changes_only_where_the_mask_is_hot(oracle, media):
    result = oracle.analyse(media / "fake.mp4", frames=1)
    fr = result.frames[0]
    face = fr.faces[0]
    cold = render_frame(fr.frame, [], 0.5)
    hot = render_frame(fr.frame, fr.faces, 0.5)
    heat = cv2.resize(paste_mask(face.mask, face.crop_box, fr.frame.shape), hot.shape[1::-1])
    changed = np.abs(hot.astype(int) - cold.astype(int)).sum(2) > 30
    x0, y0, x1, y1 = (int(v * 2) for v in face.box)
    changed[max(0, y0 - 40) : y1 + 6, max(0, x0 - 6) : x1 + 6] &= heat[max(0, y0 - 40) : y1 + 6, max(0, x0 - 6) : x1 + 6] > 0.2  # drop box and label pixels
    assert changed.sum() > 0.5 * (heat > 0.5).sum()
    assert (heat[changed] > 0.2).mean() > 0.95


def test_output_names_are_distinct_for_same_named_fakes(tmp_path):
    a = tmp_path / "Deepfakes" / "c23" / "000_003.mp4"
    b = tmp_path / "Face2Face" / "c23" / "000_003.mp4"
    c = tmp_path / "Face2Face" / "c23" / "001.mp4"
    names = output_names([a, b, c])
    assert names[c] == "001"
    assert len({names[a], names[b]}) == 2 and names[a].startswith("Deepfakes")


def test_suspicious_frames_are_ordered_by_score(oracle, media):
    result = oracle.analyse(media / "fake.mp4", frames=3)
    result.frames[1].score = 0.99
    picks = suspicious_frames(result, 2)
    assert [fr.index for fr, _ in picks][0] == result.frames[1].index and len(picks) == 2


def test_unusable_device_is_a_setup_error(tmp_path):
    """One pick_device (harness.common.runtime) for training and predict; predict says it as a setup error."""
    from harness.predict import PredictSetupError
    from harness.common.runtime import pick_device

    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto", per_rank=False).index is None  # predict's auto: plain cuda or cpu
    with pytest.raises(PredictSetupError, match="--device"):
        Predictor.from_checkpoint(tmp_path, device="toaster")
    if not torch.cuda.is_available():
        with pytest.raises(PredictSetupError, match="no CUDA"):
            Predictor.from_checkpoint(tmp_path, device="cuda")


def test_predict_without_maps_runs_no_mask_head_and_gives_the_same_scores(media):
    """Without --out or --mask nothing needs P_M: the decoder does not run, each face's
    altered_fraction is null, and every score is the same bits as with the maps."""
    from harness.models import build_model

    torch.manual_seed(0)
    model = build_model("mobilenetv2", pretrained=False, img_size=IMG).eval()
    decoder_calls: list[int] = []
    model.decoder.register_forward_hook(lambda *_: decoder_calls.append(1))
    predictor = Predictor(model, META, harness.plugin("face_detector", "dlib"), "cpu")
    plain = predict_files(predictor, [media / "fake.mp4"], PredictOptions(frames=3))
    assert decoder_calls == []
    with_maps = predict_files(predictor, [media / "fake.mp4"], PredictOptions(frames=3, mask=media / "masks"))
    assert decoder_calls and with_maps[0]["localization"]["frames_with_truth"] == 3

    def scores(block: dict) -> list:
        return [block["score"]] + [[fr["score"]] + [f["score"] for f in fr["faces"]] for fr in block["frames"]]

    assert scores(plain[0]) == scores(with_maps[0])
    alone, full = (predictor.analyse(media / "fake.mp4", frames=3, maps=maps) for maps in (False, True))
    faces = [(f.score, f.mask is None) for result in (alone, full) for fr in result.frames for f in fr.faces]
    assert [s for s, _ in faces[: len(faces) // 2]] == [s for s, _ in faces[len(faces) // 2 :]]  # exact floats
    assert [m for _, m in faces] == [True] * (len(faces) // 2) + [False] * (len(faces) // 2)
    assert all(f["altered_fraction"] is None for fr in plain[0]["frames"] for f in fr["faces"])
    assert all(0 <= f["altered_fraction"] <= 1 for fr in with_maps[0]["frames"] for f in fr["faces"])
    validate(json.loads(json.dumps(build_report(plain, 0.5, 3, predictor, device="cpu"))))
