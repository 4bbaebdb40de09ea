"""`harness predict` on the command line with a real (tiny, untrained) checkpoint bundle: JSON on
stdout that validates, exit statuses, bad inputs, checkpoints that cannot load, overlays, Grad-CAM++."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fixtures.builders import tiny_swin_run
from harness.cli import build_app
from harness.data.video import write_video
from harness.predict import validate
from harness.training.checkpoint import MODEL_FILE, MODEL_META

IMG = 64
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(build_app(), ["predict", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A run folder holding checkpoint/ of a tiny Swin detector, as the trainer writes it."""
    return tiny_swin_run(tmp_path_factory.mktemp("run"), IMG)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    from harness.data.sample_face import astronaut_face

    root = tmp_path_factory.mktemp("cli-media")
    face, _ = astronaut_face(160, margin=0.6)
    frames = []
    for t in range(6):
        frame = np.full((224, 224, 3), 70, np.uint8)
        frame[20 + t : 180 + t, 30:190] = face
        frames.append(frame)
    write_video(root / "clip.mp4", frames)
    cv2.imwrite(str(root / "face.jpg"), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "wall.png"), np.full((100, 100, 3), 200, np.uint8))
    (root / "truncated.mp4").write_bytes((root / "clip.mp4").read_bytes()[:300])
    return root


def test_json_on_stdout_validates_and_bad_files_exit_nonzero(bundle, media):
    result = invoke(media / "clip.mp4", media / "face.jpg", media / "wall.png", media / "truncated.mp4",
                    "--checkpoint", bundle, "--frames", 4, "--json")
    assert result.exit_code == 1  # two inputs could not be scored
    report = json.loads(result.stdout)  # stdout holds the JSON document and nothing else
    validate(report)
    by_name = {Path(f["path"]).name: f for f in report["files"]}
    clip = by_name["clip.mp4"]
    assert clip["status"] == "ok" and clip["kind"] == "video" and clip["frames_analysed"] == 4
    assert all(len(fr["faces"]) == 1 and 0 <= fr["score"] <= 1 for fr in clip["frames"])
    assert clip["score"] == pytest.approx(np.mean([fr["score"] for fr in clip["frames"]]), abs=1e-5)
    assert clip["verdict"] == ("fake" if clip["score"] >= 0.5 else "real")
    assert by_name["face.jpg"]["status"] == "ok" and by_name["face.jpg"]["kind"] == "image"
    assert by_name["wall.png"]["status"] == "no_face"
    assert by_name["truncated.mp4"]["status"] == "unreadable"
    assert report["checkpoint"]["backbone"] == "swin" and report["checkpoint"]["crop"]["size"] == 128
    # each bad file gets one line on stderr, naming it
    lines = [l for l in result.stderr.splitlines() if "wall.png" in l or "truncated.mp4" in l]
    assert len(lines) == 2


def test_human_output_is_a_table_and_exit_zero_when_all_scored(bundle, media):
    result = invoke(media / "clip.mp4", "-c", bundle / "checkpoint" / MODEL_FILE, "--frames", 2, "--threshold", 0.0)
    assert result.exit_code == 0, result.output
    assert "FAKE" in result.output and "1 scored (1 fake, 0 real), 0 failed" in result.output


def test_folder_input_is_expanded(bundle, media, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((media / "face.jpg").read_bytes())
    (folder / "notes.txt").write_text("not media")
    result = invoke(folder, "-c", bundle, "--json")
    assert result.exit_code == 0
    assert [Path(f["path"]).name for f in json.loads(result.stdout)["files"]] == ["a.jpg"]


def test_out_and_explain_write_overlays_video_sheet_and_gradcam(bundle, media, tmp_path):
    out = tmp_path / "out"
    result = invoke(media / "clip.mp4", "-c", bundle, "--frames", 3, "--out", out, "--explain", "--top", 2, "--json")
    assert result.exit_code == 0, result.stderr
    outputs = json.loads(result.stdout)["files"][0]["outputs"]
    assert Path(outputs["folder"]) == out / "clip"
    assert len(outputs["overlays"]) == 3 and all(Path(p).is_file() for p in outputs["overlays"])
    assert Path(outputs["video"]).stat().st_size > 0
    sheet = cv2.imread(outputs["contact_sheet"])
    assert sheet.shape[1] == 6 + 4 * (192 + 6)  # face, P_M, overlay, Grad-CAM++
    assert len(outputs["explain"]) == 2
    cam = cv2.imread(outputs["explain"][0])
    assert cam.shape == (256, 3 * 256, 3)  # face | overlay | map, enlarged from the 64 px input


def test_gradcam_maps_are_normalised_and_follow_the_input(bundle, media):
    from harness.data.sample_face import astronaut_face
    from harness.predict.explain import GradCamPlusPlus
    from harness.training.checkpoint import load_model

    model, _ = load_model(bundle, "cpu")
    face, _ = astronaut_face(IMG)
    other = np.ascontiguousarray(face[:, ::-1])
    maps = GradCamPlusPlus(model)([face, other])
    assert maps.shape == (2, IMG, IMG) and maps.dtype == np.float32
    assert 0.0 <= maps.min() and maps.max() <= 1.0 and maps.max() > 0.5
    assert not np.allclose(maps[0], maps[1])
    assert all(p.grad is None for p in model.parameters())  # no gradients left behind


def test_backbone_not_installed_is_one_line_and_exit_2(bundle, media, tmp_path):
    broken = tmp_path / "ckpt"
    broken.mkdir()
    (broken / MODEL_FILE).write_bytes((bundle / "checkpoint" / MODEL_FILE).read_bytes())
    meta = json.loads((bundle / "checkpoint" / MODEL_META).read_text())
    meta["model"]["backbone"] = "effnet-b9000"
    (broken / MODEL_META).write_text(json.dumps(meta))
    result = invoke(media / "face.jpg", "-c", broken)
    assert result.exit_code == 2
    assert "effnet-b9000" in result.output and "not installed" in result.output
    as_json = invoke(media / "face.jpg", "-c", broken, "--json")
    report = json.loads(as_json.stdout)
    validate(report)
    assert as_json.exit_code == 2 and "effnet-b9000" in report["error"] and report["files"] == []


def test_pickled_checkpoint_is_refused(media, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    torch.save({"state_dict": {}}, folder / "model.pt")
    result = invoke(media / "face.jpg", "-c", folder)
    assert result.exit_code == 2 and MODEL_FILE in result.output


def test_bad_threshold_exits_2_naming_the_option(bundle, media):
    result = invoke(media / "face.jpg", "-c", bundle, "--threshold", 1.5)
    assert result.exit_code == 2 and "--threshold" in result.output


def test_root_cli_mounts_predict():
    result = runner.invoke(build_app(), ["predict", "--help"])
    assert result.exit_code == 0 and "--checkpoint" in result.output and "--explain" in result.output


def test_detector_option_overrides_the_checkpoints(bundle, media, monkeypatch):
    """--detector NAME and --detector-option KEY=VALUE pick the face detector; the report says which."""
    import harness

    made = []
    real_plugin = harness.plugin

    def spy(kind, name, **options):
        if kind == "face_detector":
            made.append((name, options))
        return real_plugin(kind, name, **options)

    monkeypatch.setattr(harness, "plugin", spy)
    result = invoke(media / "face.jpg", "-c", bundle, "--json", "--frames", "1", "--detector", "dlib",
                    "--detector-option", "upsample=0", "--detector-option", "min_score=-1.5")
    assert result.exit_code == 0, result.output
    assert made == [("dlib", {"upsample": 0, "min_score": -1.5})]
    ckpt = json.loads(result.stdout)["checkpoint"]
    assert (ckpt["face_detector"], ckpt["face_detector_options"], ckpt["trained_face_detector"]) == (
        "dlib", {"upsample": 0, "min_score": -1.5}, "dlib")
    validate(json.loads(result.stdout))

    made.clear()
    assert invoke(media / "face.jpg", "-c", bundle, "--json", "--frames", "1").exit_code == 0
    assert made == [("dlib", {})]  # default: the checkpoint's detector
    typo = invoke(media / "face.jpg", "-c", bundle, "--detector", "dlb")
    assert typo.exit_code == 2 and "did you mean 'dlib'" in typo.output
    bad = invoke(media / "face.jpg", "-c", bundle, "--detector-option", "upsample")
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
    wrong = invoke(media / "face.jpg", "-c", bundle, "--detector-option", "colour=1")
    said = " ".join(wrong.output.split())
    assert wrong.exit_code == 2 and "--face-detector-option: 'colour' is not an option of face detector 'dlib'" in said
    assert "its options: upsample, min_score" in said


def test_a_bar_follows_the_inputs_and_the_time_to_the_first_result_is_reported(bundle, media, monkeypatch):
    monkeypatch.setenv("HARNESS_PROGRESS", "1")  # the bar is drawn off a terminal too
    result = invoke(media / "face.jpg", media / "wall.png", "--checkpoint", bundle, "--frames", 2, "--json")
    json.loads(result.stdout)  # the bar and the timing line stay off stdout
    said = result.stderr
    assert said.count("first result after") == 1  # once, at the first input
    timing = said[said.index("first result after"):].split("\n", 1)[0]
    assert all(part in timing for part in ("start-up", "model", "first input"))
    assert "scoring" in said and "2/2" in said  # every input counted, the unscorable one included
