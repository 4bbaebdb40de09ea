"""The frames asked are the frames scored, through the real commands (issue 31, item 1): `harness
evaluate` (with --perturb), `harness run` and `harness predict` on caches that hold more frames of a
video than asked and fewer, against the same commands on an empty cache."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from fixtures.tiny_demo import TINY, TinyDemo, harness
from harness.data.cache import FaceCache, faces_cache_root
from harness.data.crop import CropRule
from harness.data.video import sample_indices

pytestmark = pytest.mark.slow

PERTURB = "jpeg:2"


def _evaluate(root: Path, cache: Path, checkpoint: Path, frames: int, out: str) -> Path:
    """`harness evaluate` of the demo checkpoint (its demo scale comes from the checkpoint)."""
    harness("evaluate", "--checkpoint", checkpoint, "--eval-frames", str(frames), "--perturb", PERTURB,
            "--runs-dir", out, cache=cache, cwd=root)
    (folder,) = [p.parent for p in (root / out).glob("eval-*/results.json")]
    return folder


def _scores(folder: Path) -> dict[str, str]:
    return {row["uid"]: row["score"] for row in csv.DictReader(open(folder / "scores" / "ffpp.csv"))}


def _block(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())["datasets"]["ffpp"]


def _same_numbers(a: Path, b: Path) -> None:
    """Two evaluations gave the same numbers: every video's score, every group, the robustness table."""
    first, second = _block(a), _block(b)
    assert _scores(a) == _scores(b)
    assert first["groups"] == second["groups"] and first["counts"] == second["counts"]
    drop = {"seconds"}
    assert ({k: v for k, v in first["robustness"].items() if k not in drop}
            == {k: v for k, v in second["robustness"].items() if k not in drop})


def _empty_cache(tiny_demo: TinyDemo, to: Path) -> Path:
    """The demo tree of the shared run's cache, without a face crop."""
    shutil.copytree(tiny_demo.cache / "demo", to / "demo")
    return to


@pytest.fixture(scope="module")
def scored(tiny_demo: TinyDemo, tmp_path_factory) -> dict:
    """Evaluations at 5 and 2 frames on a copy of the shared cache (its test videos cached at 3
    frames), and at 2 frames on an empty one."""
    root = tmp_path_factory.mktemp("frames-asked")
    filled = tiny_demo.copy_cache(root / "filled")
    empty = _empty_cache(tiny_demo, root / "empty")
    out = {"root": root, "filled": filled, "empty": empty}
    out["filled5"] = _evaluate(root, filled, tiny_demo.seed0, 5, "filled5")  # the cache held 3: fewer
    out["filled2"] = _evaluate(root, filled, tiny_demo.seed0, 2, "filled2")  # it holds 3 and 5: more
    out["empty2"] = _evaluate(root, empty, tiny_demo.seed0, 2, "empty2")
    out["cache_of"] = {"filled5": filled, "filled2": filled, "empty2": empty}
    return out


def _rule(folder: Path) -> CropRule:
    return CropRule.from_dict(json.loads((folder / "results.json").read_text())["config"]["crop"])


def test_evaluate_scores_exactly_the_frames_asked_whatever_the_cache_holds(scored):
    for key, frames in (("filled5", 5), ("filled2", 2), ("empty2", 2)):
        block = _block(scored[key])
        assert block["frames_per_video"] == frames
        with FaceCache(faces_cache_root(_rule(scored[key]), scored["cache_of"][key]), create=False) as cache:
            videos = [cache.status(uid, frames=frames) for uid in _scores(scored[key])]
            expected = sum(len(sample_indices(v.frames_total, frames)) for v in videos)
            for video in videos:  # the frames scored are the linspace indices of the request, nothing else
                asked = sample_indices(video.frames_total, frames).tolist()
                assert [i for i, _ in cache.frames(video.uid, frames=frames)] == asked
                assert {f.frame_index for f in cache.faces(video.uid, frames=frames)} <= set(asked)
        assert block["counts"]["frames"] == expected == frames * block["counts"]["videos_scored"]
        assert block["counts"]["videos_scored"] == 12  # the tiny demo's test set: its scale came from the checkpoint


def test_evaluate_and_perturb_on_a_cache_with_more_frames_give_an_empty_caches_numbers(scored):
    _same_numbers(scored["filled2"], scored["empty2"])  # the cache held 3 and 5 frames of each video
    # the frame count asked is the count scored: 12 test videos at 2 and at 5 frames (less a face not found)
    frames = {name: _block(scored[name])["counts"] for name in ("filled2", "filled5")}
    assert [c["frames"] for c in frames.values()] == [12 * 2, 12 * 5]


def test_a_run_on_a_cache_holding_other_frame_counts_gives_the_empty_caches_results(tiny_demo, scored, tmp_path):
    """The shared seed-0 run (3 test frames, every frame of a training video) again, on a cache that
    holds its test videos at 2 and 5 frames (fewer and more) and its training videos at 4 only."""
    from harness.data.preprocess import preprocess
    from harness.vocab.config import RunConfig
    from harness.run.datasets import open_datasets, training_splits
    from harness.run.stages import crop_rule, demo_options

    cache = scored["empty"]
    config = RunConfig.from_dict(json.loads((tiny_demo.seed0 / "config.json").read_text()))
    datasets = open_datasets(config, demo_options(config, cache, show=False))
    splits = training_splits(config, datasets)
    preprocess(splits.train + splits.val + list(datasets["ffpp"].records("test")),
               faces_cache_root(crop_rule(config), cache), crop_rule(config), frames={"test": 5, "default": 4},
               progress=False)
    harness("run", *TINY, "--seed", "0", "--runs-dir", tmp_path / "runs", cache=cache, cwd=tmp_path)
    (folder,) = [p.parent for p in (tmp_path / "runs").glob("*/results.json")]
    assert folder.name == tiny_demo.seed0.name
    results = json.loads((folder / "results.json").read_text())
    block, shared = results["datasets"]["ffpp"], tiny_demo.results(0)["datasets"]["ffpp"]
    assert block["counts"]["frames"] == 3 * block["counts"]["videos_scored"]
    assert block["counts"] == shared["counts"] and block["groups"] == shared["groups"]
    assert _scores(folder) == _scores(tiny_demo.seed0)


def test_predict_cuts_the_frames_and_faces_the_cache_serves_that_request(tiny_demo, scored):
    with FaceCache(faces_cache_root(_rule(scored["filled5"]), scored["filled"]), create=False) as cache:
        video = next(v for v in cache.videos(split="test", frames=5) if v.status == "done")
        served = cache.faces(video.uid, frames=5)
    proc = harness("predict", "--checkpoint", tiny_demo.seed0, video.path, "--frames", "5", "--json",
                   cache=scored["filled"], cwd=scored["root"])
    (found,) = json.loads(proc.stdout)["files"]
    assert [f["index"] for f in found["frames"]] == sample_indices(video.frames_total, 5).tolist()
    assert found["frames_analysed"] == 5 and found["frames_total"] == video.frames_total
    boxes = [[round(float(v), 2) for v in face.crop_box] for face in served]
    assert [face["crop_box"] for f in found["frames"] for face in f["faces"]] == boxes
