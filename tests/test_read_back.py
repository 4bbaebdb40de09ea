"""Issue 31, item 6: files read back are validated.

A scores file holds one row per video, labels 0 or 1 and finite scores in [0, 1] (`harness compare`,
`harness report`, `--publish` and the significance marks read it through one reader); two compared
runs agree on the labels and groups of the videos they share; a results file is held to its own
scores file (a report never draws other scores under its AUC, an edited AUC is never published); an
undefined metric (NaN) is never published with an interval."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.cli_checks import one_line_exit_2
from fixtures.tiny_demo import TinyDemo
from harness.cli import build_app
from harness.reporting.results import write_results
from test_plots import fake_run
from test_results_factory import dataset_entry, make_results

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(build_app(), [str(a) for a in args])


def _rows(run: Path) -> tuple[str, list[list[str]]]:
    header, *rows = (run / "scores" / "ffpp.csv").read_text().splitlines()
    return header, [row.split(",") for row in rows]


def _write(run: Path, header: str, rows: list[list[str]]) -> None:
    (run / "scores" / "ffpp.csv").write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n")


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, Path]:
    """Two finished run folders with the same test videos (scores/ffpp.csv: uid,label,group,score)."""
    return fake_run(tmp_path / "a", with_examples=False), fake_run(tmp_path / "b", with_examples=False)


def test_the_two_runs_compare_as_they_are(two_runs):
    result = invoke("compare", *two_runs, "--json")
    assert result.exit_code == 0, result.output  # the damage below is what each refusal is about


def _with(row: list[str], header: str, **values: str) -> list[str]:
    """``row`` with the named columns of ``header`` set (the scores file's columns by name)."""
    names = header.split(",")
    return [values.get(name, cell) for name, cell in zip(names, row)]


DAMAGED = {
    "a video listed twice": (lambda h, rows: rows + [_with(rows[0], h, score="0.99")], "2 times"),
    "a score above 1": (lambda h, rows: [_with(rows[0], h, score="7.5"), *rows[1:]], "the score 7.5"),
    "a negative score": (lambda h, rows: [_with(rows[0], h, score="-3"), *rows[1:]], "the score -3.0"),
    "a NaN score": (lambda h, rows: [_with(rows[0], h, score="nan"), *rows[1:]], "not a finite number"),
    "a label that is not 0 or 1": (lambda h, rows: [_with(rows[0], h, label="2"), *rows[1:]], "the label 2"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_compare_refuses_a_damaged_scores_file(two_runs, case):
    damage, reason = DAMAGED[case]
    header, rows = _rows(two_runs[1])
    _write(two_runs[1], header, damage(header, rows))
    one_line_exit_2(invoke("compare", *two_runs), str(two_runs[1] / "scores" / "ffpp.csv"), reason)


def test_compare_refuses_runs_that_disagree_on_a_videos_group(two_runs):
    header, rows = _rows(two_runs[1])
    label, group = header.split(",").index("label"), header.split(",").index("group")
    fake = next(i for i, row in enumerate(rows) if row[label] == "1" and row[group] == "Deepfakes")
    rows[fake] = _with(rows[fake], header, group="Face2Face")
    _write(two_runs[1], header, rows)
    one_line_exit_2(invoke("compare", *two_runs), "disagree on the group of 1 video(s)", rows[fake][0])


def test_report_never_draws_other_scores_under_the_results_auc(tmp_path):
    run = fake_run(tmp_path, with_examples=False)
    header, rows = _rows(run)
    real = next(i for i, row in enumerate(rows) if row[header.split(",").index("label")] == "0")
    rows[real] = _with(rows[real], header, score="0.99")  # a real now outscores every fake: the curve is no longer the recorded AUC's
    _write(run, header, rows)
    line = one_line_exit_2(invoke("report", run), "results.json records video AUC 0.9375", "scores/ffpp.csv")
    assert "gives AUC" in line
    assert not (run / "figures" / "roc_ffpp.png").exists()
    assert not (run / "report.md").exists()


def test_report_refuses_a_scores_file_missing_a_video(tmp_path):
    run = fake_run(tmp_path, with_examples=False)
    header, rows = _rows(run)
    _write(run, header, rows[1:])
    one_line_exit_2(invoke("report", run), "results.json", "scores/ffpp.csv", "over 11 videos")


def test_publish_refuses_a_results_file_edited_away_from_its_scores(tmp_path):
    run = fake_run(tmp_path, with_examples=False)
    shipped, board = tmp_path / "shipped", tmp_path / "LEADERBOARD.md"
    results = json.loads((run / "results.json").read_text())
    results["datasets"]["ffpp"]["groups"]["all"]["video"]["auc"].update(value=0.99, ci_high=1.0)
    (run / "results.json").write_text(json.dumps(results))
    one_line_exit_2(invoke("leaderboard", "--publish", run, "--results", shipped, "--out", board),
                    "records video AUC 0.9900", "gives AUC 0.9375", "nothing published")
    assert not shipped.exists() and not board.exists()


@pytest.mark.slow
def test_publish_holds_a_real_run_to_its_own_scores(tiny_demo: TinyDemo, tmp_path):
    """The issue's case: a run's results edited to AUC 0.99 while its scores give what the run measured."""
    run = tmp_path / tiny_demo.seed0.name
    shutil.copytree(tiny_demo.seed0, run)
    shipped, board = tmp_path / "shipped", tmp_path / "LEADERBOARD.md"
    measured = json.loads((run / "results.json").read_text())["datasets"]["ffpp"]["groups"]["all"]["video"]["auc"]["value"]
    edited = tmp_path / "edited"
    shutil.copytree(run, edited)
    results = json.loads((edited / "results.json").read_text())
    results["datasets"]["ffpp"]["groups"]["all"]["video"]["auc"].update(value=0.99, ci_low=0.98, ci_high=1.0)
    (edited / "results.json").write_text(json.dumps(results))
    one_line_exit_2(invoke("leaderboard", "--publish", edited, "--results", shipped, "--out", board),
                    "records video AUC 0.9900", f"gives AUC {measured:.4f}", "nothing published")
    assert not shipped.exists()
    published = invoke("leaderboard", "--publish", run, "--results", shipped, "--out", board)
    assert published.exit_code == 0, published.output  # the run as it finished is held to its scores and passes


def test_nan_is_never_published_with_an_interval(tmp_path):
    results = make_results("r-nan", "nan", datasets={"celebdf": dataset_entry({"all": 0.8}, compression=None)})
    results["datasets"]["celebdf"]["groups"]["all"]["video"]["auc"].update(value=None)  # undefined, CI kept
    mine = tmp_path / "mine"
    mine.mkdir()
    path = mine / "r-nan.json"
    path.write_text(json.dumps(results))
    shipped = tmp_path / "shipped"
    one_line_exit_2(invoke("leaderboard", "--publish", path, "--results", shipped, "--out", tmp_path / "L.md"),
                    "celebdf/groups/all/video/auc", "undefined", "nothing published")
    assert not shipped.exists()
    text = path.read_text().replace('"value": null', '"value": NaN', 1)
    path.write_text(text)
    one_line_exit_2(invoke("leaderboard", "--publish", path, "--results", shipped, "--out", tmp_path / "L.md"),
                    "undefined", "nothing published")
    results["datasets"]["celebdf"]["groups"]["all"]["video"]["auc"].update(ci_low=None, ci_high=None)
    path.write_text(json.dumps(results))  # undefined without an interval: what an evaluator writes
    assert invoke("leaderboard", "--publish", path, "--results", shipped, "--out", tmp_path / "L.md").exit_code == 0


def test_the_significance_marks_refuse_a_damaged_scores_file(tmp_path):
    run = fake_run(tmp_path, with_examples=False)
    results = json.loads((run / "results.json").read_text())
    results["figures"] = {"run_dir": run.as_posix(), "files": []}
    other = make_results("r-other", "other", datasets={"ffpp": json.loads(json.dumps(results["datasets"]["ffpp"]))})
    other["datasets"]["ffpp"]["groups"]["all"]["video"]["auc"].update(value=0.9, ci_low=0.8, ci_high=0.95)
    folder = tmp_path / "results"
    write_results(results, folder)
    write_results(other, folder)
    header, rows = _rows(run)
    _write(run, header, rows + [rows[0]])
    one_line_exit_2(invoke("leaderboard", "--results", folder, "--out", tmp_path / "L.md", "--significance"),
                    "scores/ffpp.csv", "2 times")
