"""The `mesonet` importer against an independent MesoNet: Keras 3 (torch backend) builds Meso4 and
MesoInception4 as MesoNet's classifiers.py does, their weights are written into an .h5 with the
published files' layout (h5py: ``layer_names`` in model order, per-layer ``weight_names``, layer
names offset as in the published files), and the harness's scores (its one scoring path) equal
Keras's own, ``1 - p``, within 1e-5. Bad .h5 files are one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fixtures.cli_checks import refused_writing_nothing
from harness.cli import build_app

runner = CliRunner()
SIZE = 256
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras 3 on numpy 2


def keras_meso(arch: str):
    """MesoNet's Meso4 / MesoInception4 (DariusAf/MesoNet classifiers.py), built with Keras 3."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    from keras import layers as L

    def inception(x, a, b, c, d):
        x1 = L.Conv2D(a, (1, 1), padding="same", activation="relu")(x)
        x2 = L.Conv2D(b, (1, 1), padding="same", activation="relu")(x)
        x2 = L.Conv2D(b, (3, 3), padding="same", activation="relu")(x2)
        x3 = L.Conv2D(c, (1, 1), padding="same", activation="relu")(x)
        x3 = L.Conv2D(c, (3, 3), dilation_rate=2, padding="same", activation="relu")(x3)
        x4 = L.Conv2D(d, (1, 1), padding="same", activation="relu")(x)
        x4 = L.Conv2D(d, (3, 3), dilation_rate=3, padding="same", activation="relu")(x4)
        return L.Concatenate(axis=-1)([x1, x2, x3, x4])

    def block(x, filters, kernel, pool):
        x = L.Conv2D(filters, (kernel, kernel), padding="same", activation="relu")(x)
        return L.MaxPooling2D(pool_size=(pool, pool), padding="same")(L.BatchNormalization()(x))

    x = keras.Input(shape=(SIZE, SIZE, 3))
    if arch == "meso4":
        y = block(block(x, 8, 3, 2), 8, 5, 2)
    else:
        y = L.MaxPooling2D(pool_size=(2, 2), padding="same")(L.BatchNormalization()(inception(x, 1, 4, 4, 2)))
        y = L.MaxPooling2D(pool_size=(2, 2), padding="same")(L.BatchNormalization()(inception(y, 2, 4, 4, 2)))
    y = block(block(y, 16, 5, 2), 16, 5, 4)
    y = L.Dropout(0.5)(L.Flatten()(y))
    y = L.LeakyReLU(negative_slope=0.1)(L.Dense(16)(y))
    y = L.Dense(1, activation="sigmoid")(L.Dropout(0.5)(y))
    model = keras.Model(inputs=x, outputs=y)
    randomise(model)
    spread_head(model, keras)
    return model


def randomise(model) -> None:
    """Weights whose every part shows in the output: BatchNorm statistics and scales away from
    (0, 1), a head that leaves the sigmoid unsaturated."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        values = [np.asarray(w) for w in layer.get_weights()]
        if not values:
            continue
        if type(layer).__name__ == "BatchNormalization":
            c = values[0].shape
            values = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c), rng.uniform(0.05, 0.3, c)]
        else:
            values = [rng.normal(0, 1.0 / np.sqrt(np.prod(v.shape[:-1]) or 1), v.shape) for v in values]
        layer.set_weights([v.astype(np.float32) for v in values])


def spread_head(model, keras) -> None:
    """Scale the last Dense so that its pre-sigmoid output on ``faces()`` has mean 0 and std 2."""
    features = np.asarray(keras.Model(model.inputs, model.layers[-2].output).predict(faces() / 255.0, verbose=0))
    kernel, _ = model.layers[-1].get_weights()
    z = features @ kernel
    kernel = kernel * (2.0 / max(float(z.std()), 1e-6))
    model.layers[-1].set_weights([kernel.astype(np.float32), np.array([-float((features @ kernel).mean())], np.float32)])


def write_published_h5(model, path: Path, offset: int = 4) -> None:
    """The layout of MesoNet's weights/*.h5 (Keras 2.1.5 ``save_weights``): root ``layer_names``
    in model order, one group per layer with ``weight_names``; names offset (``conv2d_5`` ...)."""
    import h5py

    def offset_name(name: str) -> str:
        base, _, number = name.rpartition("_")
        n = int(number) if number.isdigit() and base else 0
        return f"{base if number.isdigit() and base else name}_{n + offset + 1}"

    names = [offset_name(layer.name) for layer in model.layers]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.1.5"
        for name, layer in zip(names, model.layers):
            group = f.create_group(name)
            weight_names = [f"{name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = [w.encode() for w in weight_names]
            for w_name, value in zip(weight_names, layer.get_weights()):
                group.create_dataset(w_name, data=np.asarray(value, dtype=np.float32))


def faces(n: int = 6) -> np.ndarray:
    """RGB uint8 'faces' that differ in content and contrast (the scores must tell them apart)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    out = []
    for i in range(n):
        base = 127 + 100 * np.sin((i + 1) * 3 * xx + i * yy)[..., None] * np.array([1.0, 0.6 - 0.2 * i, 0.3])
        out.append(np.clip(base + rng.normal(0, 20 + 8 * i, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.fixture(scope="module")
def meso_files(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """arch -> (the .h5 in the published layout, Keras's fake probabilities 1 - p of ``faces()``)."""
    folder = tmp_path_factory.mktemp("mesonet")
    out = {}
    for arch, name in (("meso4", "Meso4_DF.h5"), ("mesoinception4", "MesoInception_F2F")):
        model = keras_meso(arch)
        write_published_h5(model, folder / name)
        real = np.asarray(model.predict(faces().astype(np.float32) / 255.0, verbose=0))[:, 0]
        out[arch] = (folder / name, 1.0 - real)
    return out


@pytest.mark.parametrize("arch", ["meso4", "mesoinception4"])
def test_imported_mesonet_scores_equal_keras(tmp_path, meso_files, arch):
    from harness.evaluation.runner import predict_faces
    from harness.models.bundle import input_scale, load_model

    path, expected = meso_files[arch]
    result = runner.invoke(build_app(), ["import", "mesonet", str(path), "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 0, result.output
    model, meta = load_model(tmp_path / "bundle")
    assert meta["model"]["arch"] == arch and meta["img_size"] == SIZE and meta["input"]["scale"] == "unit"
    scores, masks = predict_faces(model, list(faces()), meta["img_size"], "cpu", 4, input_scale(meta))
    assert masks is None  # a classifier: no mask head
    assert np.abs(scores - expected).max() < 1e-5, (scores, expected)
    assert expected.max() - expected.min() > 1e-3  # the comparison can tell the faces apart
    origin = meta["origin"]
    assert origin["importer"] == "mesonet" and origin["file"] == path.name and len(origin["file_sha256"]) == 64
    assert origin["architecture"] == {"meso4": "Meso4", "mesoinception4": "MesoInception4"}[arch]
    assert meta["training"]["datasets"] == (["mesonet-deepfake"] if "DF" in path.name else ["faceforensics"])


def test_a_file_without_suffix_is_recognised_and_its_architecture_chosen_by_option(tmp_path, meso_files):
    path, _ = meso_files["mesoinception4"]  # "MesoInception_F2F", as published: no .h5
    from harness.models.importing import detect

    assert detect(path) == "mesonet"
    result = runner.invoke(build_app(), ["import", f"{path}?arch=meso4", "--out", str(tmp_path / "b")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "not a MesoNet Meso4 weights file" in lines[0] and "22 layers" in lines[0]
    assert not (tmp_path / "b").exists()


def _refused(tmp_path: Path, args: list[str]) -> str:
    return refused_writing_nothing(args, tmp_path / "out")


def test_an_h5_that_is_not_mesonet_is_one_line(tmp_path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["layer_names"] = [b"dense_1"]
        group = f.create_group("dense_1")
        group.attrs["weight_names"] = [b"dense_1/kernel:0", b"dense_1/bias:0"]
        group.create_dataset("dense_1/kernel:0", data=np.zeros((4, 2), np.float32))
        group.create_dataset("dense_1/bias:0", data=np.zeros(2, np.float32))
    line = _refused(tmp_path, ["import", "mesonet", str(tmp_path / "other.h5"), "--out", str(tmp_path / "out")])
    assert "not a MesoNet weights file" in line and "Meso4 has 10" in line and "MesoInception4 has 22" in line
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    line = _refused(tmp_path, ["evaluate", "--checkpoint", str(tmp_path / "plain.h5")])  # detected, then refused
    assert "layer_names" in line and "mesonet" in line


def test_a_truncated_h5_is_one_line(tmp_path, meso_files):
    path, _ = meso_files["meso4"]
    cut = tmp_path / "Meso4_DF.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    line = _refused(tmp_path, ["import", "mesonet", str(cut), "--out", str(tmp_path / "out")])
    assert "truncated or damaged" in line and str(cut) in line


def test_an_option_mesonet_does_not_take_is_one_line_listing_its_options(tmp_path, meso_files):
    path, _ = meso_files["meso4"]
    line = _refused(tmp_path, ["import", f"mesonet:{path}?archh=meso4", "--out", str(tmp_path / "out")])
    assert "'archh' is not an option of importer 'mesonet'" in line and "did you mean 'arch'" in line
    line = _refused(tmp_path, ["import", f"mesonet:{path}?arch=meso5", "--out", str(tmp_path / "out")])
    assert "'meso5' is not supported" in line and "meso4, mesoinception4" in line


@pytest.mark.slow
def test_evaluate_and_predict_take_mesonet_file(tmp_path, tiny_demo, meso_files, monkeypatch):
    """`harness evaluate --checkpoint mesonet:FILE` on the tiny demo and `harness predict` with the
    same form: one score per face on the one path; the results say where the model came from and
    carry no harness training recipe."""
    import shutil

    from fixtures.tiny_demo import harness

    path, _ = meso_files["meso4"]
    tiny_demo.copy_cache(tmp_path / "cache")
    proc = harness("evaluate", "--checkpoint", f"mesonet:{path}", "--data", "demo", "--demo-scale", "tiny", "--eval-frames", "2",
                   cache=tmp_path / "cache", cwd=tmp_path)
    console = " ".join((proc.stdout + proc.stderr).split())
    assert "encoder weights" not in console and "imported with mesonet v2 as Meso4" in console
    folder = next((tmp_path / "runs").glob("eval-meso4-*"))
    results = json.loads((folder / "results.json").read_text())
    record = results["provenance"]["origin"]
    assert record["importer"] == "mesonet" and record["architecture"] == "Meso4" and record["file"] == path.name
    assert "train" not in results["config"] and "pretrained" not in results["config"] and "loss" not in results["config"]
    report = (folder / "report.md").read_text()
    assert "pretrained" not in report and "Meso4\\_DF.h5 imported with mesonet v2 as Meso4" in report
    board = (tmp_path / "runs" / "LEADERBOARD.md").read_text()
    run_list = board[board.index("- **Meso4 (Meso4"):]
    assert "Meso4\\_DF.h5 imported with mesonet v2" in run_list and "pretrained" not in run_list
    frame = faces(1)[0]
    import cv2

    cv2.imwrite(str(tmp_path / "frame.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    shutil.rmtree(tmp_path / "cache" / "imported", ignore_errors=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(build_app(), ["predict", str(tmp_path / "frame.png"), "--checkpoint", f"mesonet:{path}", "--json"])
    assert result.exit_code in (0, 1), result.output  # a noise image may hold no face: the form is accepted
    report = json.loads(result.output[result.output.index("{"):])
    assert report["checkpoint"]["importer"] == "mesonet"


def test_the_recorded_crop_is_mesonets_upright_crop_on_the_sample_face():
    """The bundle records MesoNet's own crop (basis ``upright``), cut at the model's input size: on
    the sample face it is the square MesoNet's pipeline.py cuts, centred between the nose tip and
    bridge means, side 2.2 x max(eye distance, eyes-to-mouth) x 1.3, its edges along and across the
    eyes-to-mouth line."""
    from pathlib import Path as P

    from harness.data.crop import CropRule
    from harness_plugins.importers.mesonet import bundle_meta

    meta = bundle_meta("meso4", P("Meso4_DF.h5"))
    rule = CropRule.from_dict(meta["crop"])
    assert (rule.basis, rule.scale, rule.crop_size, rule.min_area) == ("upright", 1.3, meta["img_size"], 1.0)
    assert "recorded here as" not in meta["origin"]["crop_rule"]  # no stand-in rule any more
    data = json.loads((P(__file__).resolve().parents[1] / "harness/reference/sample_face_landmarks.json").read_text())
    lm = np.asarray(data["landmarks"] if isinstance(data, dict) else data, dtype=float)
    eyes = (lm[36:42].mean(0), lm[42:48].mean(0))
    top_lip = [*range(48, 55), 64, 63, 62, 61, 60]  # face_recognition's lips, which MesoNet averages
    bottom_lip = [*range(54, 60), 48, 60, 67, 66, 65, 64]
    mouth = (lm[top_lip].mean(0) + lm[bottom_lip].mean(0)) / 2
    side = 2.2 * max(np.linalg.norm(eyes[1] - eyes[0]), np.linalg.norm(mouth - (eyes[0] + eyes[1]) / 2)) * 1.3
    centre = lm[31:36].mean(0) / 2 + lm[27:31].mean(0) / 2
    top_left, top_right, bottom_left = np.asarray(rule.box(lm)).reshape(3, 2)
    assert np.linalg.norm(top_right - top_left) == pytest.approx(side, rel=1e-6)
    assert np.linalg.norm(bottom_left - top_left) == pytest.approx(side, rel=1e-6)
    assert (top_right + bottom_left) / 2 == pytest.approx(centre, abs=1e-6)
    down = (bottom_left - top_left) / side
    axis = (mouth - (eyes[0] + eyes[1]) / 2) / np.linalg.norm(mouth - (eyes[0] + eyes[1]) / 2)
    assert abs(float(down @ axis)) > 0.99  # the crop's vertical is the eyes-to-mouth line
