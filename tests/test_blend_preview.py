"""The Fig. 7-style preview grid and `harness blend preview`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import build_app
from harness.commands.blend import blend_app as app
from harness.data.sample_face import astronaut_face, crop_face
from harness.reporting.preview import _BAND, _GAP, caption, face_from_image, render_preview
from harness_plugins.blenders.multipart import MultipartBlender
from harness_plugins.blenders.sbi import SBIBlender

build_app()  # mounts `blend` as the real CLI does, with its guard: a user error is one line, exit 2


@pytest.fixture
def only_blenders(only_plugins):
    only_plugins("multipart,sbi,dlib_faces")


def _grid_shape(size: int, n: int, blenders: int) -> tuple[int, int, int]:
    return (blenders * (_BAND + 2 * size + _GAP), (n + 1) * size + n * _GAP, 3)


def test_render_preview_layout_and_content() -> None:
    face, lm = astronaut_face(96)
    grid = render_preview(face, lm, {"multipart": MultipartBlender(), "sbi": SBIBlender()}, n=3, seed=0)
    assert grid.shape == _grid_shape(96, 3, 2) and grid.dtype == np.uint8
    # Below the labels, the source tile is the face and every fake tile differs from it.
    top = _BAND + 20
    assert np.array_equal(grid[top : _BAND + 96, :96], face[20:])
    for k in range(1, 4):
        x = k * (96 + _GAP)
        assert not np.array_equal(grid[top : _BAND + 96, x : x + 96], face[20:])
        mask_tile = grid[_BAND + 96 + _GAP + 20 : _BAND + 2 * 96 + _GAP, x : x + 96]
        assert mask_tile.max() > 100 and mask_tile.min() == 0  # a mask with an inside and an outside
    again = render_preview(face, lm, {"multipart": MultipartBlender(), "sbi": SBIBlender()}, n=3, seed=0)
    assert np.array_equal(grid, again)


def test_render_preview_rejects_bad_arguments() -> None:
    face, lm = astronaut_face(96)
    with pytest.raises(ValueError, match="n must be"):
        render_preview(face, lm, {"sbi": SBIBlender()}, n=0)
    with pytest.raises(ValueError, match="at least one blender"):
        render_preview(face, lm, {}, n=2)


def test_caption_names_regions_warps_and_ratio() -> None:
    record = {"regions": [{"name": "eyes"}, {"name": "mouth"}], "warps": [{"group": "mouth_corners"}]}
    assert caption(record) == "eyes+mouth warp:mouth"
    assert caption({"regions": [{"name": "hull"}], "blend_ratio": 0.5}) == "hull ratio 0.5"


def test_cli_preview_default_face(tmp_path, only_blenders) -> None:
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(app, ["preview", "--out", str(out), "--n", "2", "--seed", "1", "--size", "64"])
    assert result.exit_code == 0, result.output
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape == _grid_shape(64, 2, 2)


def test_cli_preview_from_a_photo(tmp_path, only_blenders) -> None:
    from skimage import data

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(app, ["preview", str(photo), "--out", str(out), "--blender", "sbi", "--n", "1", "--size", "64"])
    assert result.exit_code == 0, result.output
    grid = cv2.imread(str(out))
    assert grid.shape == _grid_shape(64, 1, 1)
    # The source tile is a face crop in RGB order (skin: red above blue), not a BGR mix-up.
    tile = cv2.cvtColor(grid[_BAND + 24 : _BAND + 56, 16:48], cv2.COLOR_BGR2RGB).reshape(-1, 3).mean(0)
    assert tile[0] > tile[2]


def _text(output: str) -> str:
    """CLI output with rich's box drawing and line wrapping removed."""
    return " ".join(output.replace("│", " ").split())


def test_cli_preview_errors_are_clear(tmp_path, only_blenders) -> None:
    runner = CliRunner()
    typo = runner.invoke(app, ["preview", "--out", str(tmp_path / "g.png"), "--blender", "multpart"])
    assert typo.exit_code == 2 and "did you mean 'multipart'" in _text(typo.output)
    missing = runner.invoke(app, ["preview", str(tmp_path / "nope.png"), "--out", str(tmp_path / "g.png")])
    assert missing.exit_code == 2 and "not a file" in _text(missing.output)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 120, 3), 200, np.uint8))
    noface = runner.invoke(app, ["preview", str(blank), "--out", str(tmp_path / "g.png")])
    assert noface.exit_code == 2 and "no face" in _text(noface.output)
    assert not (tmp_path / "g.png").exists()


def test_crop_face_moves_landmarks_with_the_pixels() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    landmarks = np.array([[150, 110], [250, 110], [200, 230], [170, 160]], np.float32)
    image[158:163, 168:173] = 255  # a bright dot on the last landmark
    crop, crop_lm = crop_face(image, landmarks, 128, margin=0.25)
    assert crop.shape == (128, 128, 3)
    y, x = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    assert abs(x - crop_lm[3, 0]) <= 1.5 and abs(y - crop_lm[3, 1]) <= 1.5
    # The square side is the larger landmark extent (120 px) grown by 2 x 25 %: 180 px -> 128 px,
    # centred across, so the 100 px wide landmarks sit (180 - 100) / 2 px in from the left edge.
    assert crop_lm[:, 0].min() == pytest.approx((180 - 100) / 2 * 128 / 180, abs=0.5)
    assert crop_lm[:, 0].max() - crop_lm[:, 0].min() == pytest.approx(100 * 128 / 180, abs=0.5)


def test_render_preview_takes_registered_blender_names(only_blenders) -> None:
    face, lm = astronaut_face(64)
    by_name = render_preview(face, lm, ["sbi"], n=1, seed=3)
    assert np.array_equal(by_name, render_preview(face, lm, {"sbi": SBIBlender()}, n=1, seed=3))


class _FixedDetector:
    """A face detector plugin that 'finds' the astronaut's landmarks wherever it is asked."""

    name = "fixed"
    calls: list[str] = []

    def __init__(self, tag: str = "default") -> None:
        self.tag = tag

    def detect(self, frame: np.ndarray):
        from harness.data.sample_face import astronaut_landmarks
        from harness.extend.types import Face

        _FixedDetector.calls.append(self.tag)
        return [Face(box=(0.0, 0.0, 1.0, 1.0), score=1.0, landmarks=astronaut_landmarks())]


@pytest.fixture
def fixed_detector(only_plugins, monkeypatch: pytest.MonkeyPatch):
    """Only sbi loads, plus a face detector "fixed" registered by a test module; the run config's
    default detector is "fixed"."""
    import dataclasses
    import sys
    import types

    import harness.vocab.config
    from harness import hookimpl
    from harness.extend import registry

    only_plugins("sbi")
    module = types.ModuleType("fixed_detector_plugin")

    @hookimpl
    def register_face_detectors(register):
        register("fixed", _FixedDetector, "test detector")

    module.register_face_detectors = register_face_detectors
    monkeypatch.setitem(sys.modules, module.__name__, module)
    registry.register_module(module, "fixed_detector_plugin")
    @dataclasses.dataclass
    class FixedConfig(harness.vocab.config.RunConfig):
        face_detector: str = "fixed"

    monkeypatch.setattr(harness.vocab.config, "RunConfig", FixedConfig)
    _FixedDetector.calls.clear()
    yield


def test_face_from_image_defaults_to_the_run_configs_detector(tmp_path, fixed_detector) -> None:
    from skimage import data

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    face, lm = face_from_image(str(photo), 64)
    assert _FixedDetector.calls == ["default"] and face.shape == (64, 64, 3)
    assert np.allclose(lm, astronaut_face(64)[1])
    face_from_image(str(photo), 64, detector=_FixedDetector("given"))
    assert _FixedDetector.calls[-1] == "given"
    result = CliRunner().invoke(app, ["preview", str(photo), "--out", str(tmp_path / "g.png"), "--n", "1", "--size", "64"])
    assert result.exit_code == 0, result.output
    assert "sbi, 1 fakes each" in result.output  # the default: every registered blender
    unknown = CliRunner().invoke(app, ["preview", str(photo), "--out", str(tmp_path / "g2.png"), "--detector", "fixd"])
    assert unknown.exit_code == 2 and "did you mean 'fixed'" in _text(unknown.output)
