"""From the demo to `harness predict` (issue 33, item 5): the scores files name each test video's
file, `run` and `evaluate` end with a `predict` command on one of them that runs as printed, and the
results' accuracy uses the threshold `predict` uses (the checkpoint's calibrated one), recorded with
where it came from."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from fixtures.tiny_demo import TinyDemo, harness
from harness.reporting.notes import predict_hint
from harness.reporting.scores import read_scores


@pytest.mark.slow
def test_scores_files_carry_each_videos_media_file(tiny_demo: TinyDemo):
    scores = read_scores(tiny_demo.seed0 / "scores" / "ffpp.csv")
    assert len(scores.paths) == len(scores.uids) > 0
    demo_tree = (tiny_demo.cache / "demo").resolve()
    for uid, path in zip(scores.uids, scores.paths):
        assert Path(path).is_file() and Path(path).resolve().is_relative_to(demo_tree), (uid, path)
        assert Path(path).stem in uid  # the row's own video


@pytest.mark.slow
def test_results_accuracy_uses_the_calibrated_threshold_predict_uses(tiny_demo: TinyDemo):
    from sklearn.metrics import accuracy_score

    record = json.loads((tiny_demo.seed0 / "checkpoint" / "model.json").read_text())["threshold"]
    block = tiny_demo.results(0)["datasets"]["ffpp"]
    n = record["n_real"] + record["n_fake"]
    assert block["threshold"] == {"value": record["value"], "source": f"calibrated at the EER of {n} validation images "
                                  f"({record['n_real']} real, {record['n_fake']} self-blended fakes)"}
    scores = read_scores(tiny_demo.seed0 / "scores" / "ffpp.csv")
    expected = accuracy_score(scores.labels, (scores.scores >= record["value"]).astype(int))
    assert block["groups"]["all"]["video"]["accuracy"]["value"] == pytest.approx(expected)


@pytest.mark.slow
def test_a_run_ends_with_a_predict_command_on_one_of_its_test_fakes(tiny_demo: TinyDemo):
    hint = predict_hint(tiny_demo.seed0)
    assert hint is not None and hint.startswith("try it on one test file: harness predict ")
    args = shlex.split(hint.split(": ", 1)[1])
    media = Path(args[2])
    scores = read_scores(tiny_demo.seed0 / "scores" / "ffpp.csv")
    fakes = [(s, p) for s, p, label in zip(scores.scores, scores.paths, scores.labels) if label == 1]
    assert str(media) == max(fakes)[1]  # the most confidently caught test fake
    assert args[3:] == ["--checkpoint", str(tiny_demo.seed0), "--out", f"predict-{media.stem}"]


@pytest.mark.slow
def test_evaluate_prints_a_predict_command_that_runs_as_printed(tiny_demo: TinyDemo, tmp_path):
    cache = tiny_demo.copy_cache(tmp_path / "cache")
    done = harness("evaluate", "--checkpoint", tiny_demo.seed0, "--runs-dir", "runs", cache=cache, cwd=tmp_path)
    lines = [line for line in done.stdout.splitlines() + done.stderr.splitlines() if "harness predict " in line]
    assert len(lines) == 1, done.stdout + done.stderr
    command = shlex.split(lines[0].split(": ", 1)[1])
    assert command[:2] == ["harness", "predict"] and Path(command[2]).is_file()
    assert command[4] == str(tiny_demo.seed0.resolve()) or Path(command[4]).resolve() == (tiny_demo.seed0 / "checkpoint").resolve()
    predicted = harness(*command[1:], "--frames", "2", cache=cache, cwd=tmp_path)
    out = tmp_path / command[-1]
    assert out.is_dir() and any(out.rglob("*.png")), predicted.stdout
    said = " ".join((predicted.stdout + predicted.stderr).split())
    assert "fake when the score is >= " in said and "calibrated at the EER of" in said
    assert "add --out DIR" not in said  # it has its overlays


def test_a_scores_file_without_paths_still_reads(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("uid,label,group,score\na,0,original,0.2\nb,1,fake,0.7\n")
    scores = read_scores(path)
    assert scores.paths == ["", ""] and np.allclose(scores.scores, [0.2, 0.7])
