"""Results files: environment capture, per-group evaluation, schema validation, atomic writing, loading."""

from __future__ import annotations

import io
import json
import platform
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from harness.evaluation.groups import evaluate_groups
from harness.extend.views import score_views
from harness.reporting import results as R
from harness.extend.types import MaskSet, ScoreSet
from harness_plugins.evaluators.classification import accuracy, ap, auc, eer
from harness_plugins.evaluators.localization import LocalizationEvaluator
from test_results_factory import make_results

REPO = Path(R.__file__).resolve().parent.parent


def test_schema_is_a_valid_json_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(R.schema())
    assert R.schema()["properties"]["schema_version"]["const"] == R.SCHEMA_VERSION


def _fake_torch(gpu: str | None) -> types.SimpleNamespace:
    """Stands in for torch (whose import takes seconds) with or without a CUDA device."""
    cuda = types.SimpleNamespace(
        is_available=lambda: gpu is not None, get_device_name=lambda i: gpu, device_count=lambda: 2 if gpu else 0
    )
    return types.SimpleNamespace(cuda=cuda, version=types.SimpleNamespace(cuda="12.4" if gpu else None))


def test_collect_environment_records_versions_and_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(None))
    env = R.collect_environment()
    assert set(env) == {"versions", "git", "hardware"}
    versions = env["versions"]
    assert versions["python"] == platform.python_version()
    assert versions["numpy"] == np.__version__
    for key in ("torch", "timm", "albumentations", "harness", "cv2", "dlib", "sklearn"):
        assert key in versions
    assert versions["harness"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode == 0:
        assert env["git"]["commit"] == head.stdout.strip()
        assert isinstance(env["git"]["dirty"], bool)
    assert env["hardware"]["cpu_count"] >= 1
    assert env["hardware"]["gpu"] is None and env["hardware"]["cuda"] is None


def test_hardware_reports_the_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch("NVIDIA H100"))
    hw = R.hardware()
    assert (hw["gpu"], hw["cuda"], hw["gpu_count"]) == ("NVIDIA H100", "12.4", 2)


def test_git_state_is_null_outside_the_harness_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "_git", lambda *args: "/some/other/project\n")
    assert R.git_state() == {"commit": None, "dirty": None}
    monkeypatch.setattr(R, "_git", lambda *args: None)  # git missing or not a repository
    assert R.git_state() == {"commit": None, "dirty": None}


def test_write_results_is_canonical_strict_json(tmp_path: Path) -> None:
    results = make_results()
    metric = results["datasets"]["ffpp"]["groups"]["all"]["video"]["auc"]
    metric.update(value=float("nan"), ci_low=np.float64("nan"), ci_high=float("inf"), undefined="test")
    metric["n"] = np.int64(5)
    path = R.write_results(results, tmp_path / "out")
    assert path == tmp_path / "out" / "2025-03-01_run-0001.json"
    text = path.read_text(encoding="utf-8")

    def reject(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    loaded = json.loads(text, parse_constant=reject)
    written = loaded["datasets"]["ffpp"]["groups"]["all"]["video"]["auc"]
    assert written == {"value": None, "ci_low": None, "ci_high": None, "n": 5, "undefined": "test"}
    assert text == json.dumps(loaded, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [path.name]  # no temp file left
    R.validate(loaded)


def test_write_results_overwrites_the_same_run_atomically(tmp_path: Path) -> None:
    first = R.write_results(make_results(name="first"), tmp_path)
    second = R.write_results(make_results(name="second"), tmp_path)
    assert first == second
    assert json.loads(second.read_text())["name"] == "second"
    assert len(list(tmp_path.iterdir())) == 1
    # the same run redone on a later day replaces its file; another run id is left alone
    other = R.write_results(make_results("run-0001-b", name="other"), tmp_path)
    later = R.write_results(make_results(name="later", created="2025-04-02T08:00:00+00:00"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([later.name, other.name])
    assert later != first and json.loads(later.read_text())["name"] == "later"


def test_invalid_results_name_the_field_and_write_nothing(tmp_path: Path) -> None:
    results = make_results()
    del results["seeds"]["bootstrap"]
    results["datasets"]["ffpp"]["counts"]["videos"] = -1
    with pytest.raises(R.ResultsError) as err:
        R.write_results(results, tmp_path)
    message = str(err.value)
    assert "run-0001" in message
    assert "seeds: 'bootstrap' is a required property" in message
    assert "datasets/ffpp/counts/videos: -1 is less than the minimum of 0" in message
    assert list(tmp_path.iterdir()) == []


def test_validate_rejects_an_inverted_interval() -> None:
    results = make_results()
    results["datasets"]["ffpp"]["groups"]["Deepfakes"]["video"]["auc"].update(ci_low=0.9, ci_high=0.8)
    with pytest.raises(R.ResultsError, match="Deepfakes/video/auc: ci_low 0.9 > ci_high 0.8"):
        R.validate(results)


def test_load_results_skips_and_names_bad_files(tmp_path: Path) -> None:
    R.write_results(make_results("b-run"), tmp_path)
    R.write_results(make_results("a-run"), tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "wrong.json").write_text(json.dumps({"schema_version": 1}))
    (tmp_path / "notes.txt").write_text("ignored: not a .json file")
    with pytest.warns(UserWarning) as caught:
        loaded = R.load_results(tmp_path)
    assert [r["run_id"] for r in loaded] == ["a-run", "b-run"]
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.json" in messages and "wrong.json" in messages and "'run_id' is a required property" in messages
    with pytest.raises(FileNotFoundError, match="--results DIR"):
        R.load_results(tmp_path / "missing")


def _score_set(level: str = "video") -> ScoreSet:
    rng = np.random.default_rng(0)
    groups = ["original"] * 40 + ["Deepfakes"] * 20 + ["FaceSwap"] * 20
    labels = np.array([0 if g == "original" else 1 for g in groups])
    values = np.clip(rng.normal(0.3 + 0.4 * labels, 0.2), 0, 1)
    values[40:60] += 0.1  # Deepfakes easier than FaceSwap
    ids = [f"ffpp/{g}/c23/{i:03d}" for i, g in enumerate(groups)]
    return ScoreSet(level, ids, labels, np.clip(values, 0, 1), groups)


def test_score_views_pit_each_method_against_all_reals() -> None:
    views = score_views(_score_set())
    assert list(views) == ["all", "Deepfakes", "FaceSwap"]
    assert len(views["all"].ids) == 80
    for method in ("Deepfakes", "FaceSwap"):
        view = views[method]
        assert len(view.ids) == 60 and int(view.labels.sum()) == 20
        assert set(view.groups) == {"original", method}
    bad = _score_set()
    bad.groups[0] = "all"
    with pytest.raises(ValueError, match="'all' is reserved"):
        score_views(bad)


def test_evaluate_groups_fills_a_valid_results_block_reproducibly() -> None:
    evaluators = [auc(n_boot=50), ap(n_boot=50), eer(n_boot=50), accuracy(n_boot=50), LocalizationEvaluator(n_boot=20)]
    truth = np.zeros((8, 8), np.float32)
    truth[2:6, 2:6] = 1
    masks = MaskSet([truth * 0.8 + 0.1] * 4, [truth] * 4, ["Deepfakes", "Deepfakes", "FaceSwap", "FaceSwap"])
    groups = evaluate_groups(evaluators, seed=3, video=_score_set(), frame=_score_set("frame"), masks=masks)
    assert sorted(groups) == ["Deepfakes", "FaceSwap", "all"]
    assert set(groups["all"]) == {"video", "frame", "pixel"}
    assert set(groups["Deepfakes"]["video"]) == {"auc", "ap", "eer", "accuracy"}
    assert groups["Deepfakes"]["video"]["auc"]["n"] == 60
    assert groups["FaceSwap"]["pixel"]["iou"]["n"] == 2 and groups["all"]["pixel"]["iou"]["n"] == 4
    assert groups["Deepfakes"]["video"]["auc"]["value"] > groups["FaceSwap"]["video"]["auc"]["value"]
    # Same seed, evaluators in another order: the same numbers.
    again = evaluate_groups(list(reversed(evaluators)), seed=3, video=_score_set(), frame=_score_set("frame"), masks=masks)
    assert again == groups
    results = make_results()
    results["datasets"]["ffpp"]["groups"] = groups
    R.validate(results)


def test_end_of_run_summary_fits_80_columns_without_cutting_numbers() -> None:
    from rich.console import Console

    from harness.common.ui import print_table
    from harness.run.summary import summary_table

    results = make_results()
    results["datasets"]["celebdf"] = results["datasets"]["ffpp"]
    console = Console(width=80, record=True, file=io.StringIO())
    print_table(summary_table(results), console, width=80)
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines) and not any("…" in line for line in lines)
    at = next(i for i, line in enumerate(lines) if line.split()[:2] == ["ffpp", "NT"])
    auc = results["datasets"]["ffpp"]["groups"]["NeuralTextures"]["video"]["auc"]
    # a narrow table stacks the CI under its value, in the same column
    assert lines[at].split()[3] == f"{100 * auc['value']:.1f}"
    assert lines[at + 1].split()[0] == f"[{100 * auc['ci_low']:.1f},{100 * auc['ci_high']:.1f}]"
