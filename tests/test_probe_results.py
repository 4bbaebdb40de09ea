"""The probe of issue 21, item 3 and the `harness report` tracebacks: a results file cannot hold an
impossible number (metrics and CIs in [0, 1], the value inside its CI); `harness leaderboard`,
`--publish` and `harness report` refuse one in one line naming the file and the field; a run
folder's damaged files are one line too, and a report never shows figures whose data is gone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.cli_checks import one_line_exit_2
from harness.cli import build_app
from harness.reporting.results import write_results
from test_plots import fake_run
from test_results_factory import make_results

runner = CliRunner()


def _edit(path: Path, **metric: float) -> None:
    data = json.loads(path.read_text())
    data["datasets"]["ffpp"]["groups"]["Deepfakes"]["video"]["auc"].update(metric)
    path.write_text(json.dumps(data))


IMPOSSIBLE = {
    "value_above_1": ({"value": 7.5}, "maximum"),
    "negative_ci": ({"ci_low": -0.2}, "minimum"),
    "value_outside_ci": ({"value": 0.2, "ci_low": 0.5, "ci_high": 0.9}, "outside its interval"),
}


@pytest.mark.parametrize("case", sorted(IMPOSSIBLE))
def test_leaderboard_refuses_an_impossible_metric(case, tmp_path):
    edit, reason = IMPOSSIBLE[case]
    path = write_results(make_results(), tmp_path / "results")
    _edit(path, **edit)
    out = tmp_path / "LEADERBOARD.md"
    result = runner.invoke(build_app(), ["leaderboard", "--results", str(tmp_path / "results"), "--out", str(out)])
    one_line_exit_2(result, str(path), "datasets/ffpp/groups/Deepfakes/video/auc", reason)
    assert not out.exists()


def test_publish_refuses_an_impossible_metric_and_publishes_nothing(tmp_path):
    path = write_results(make_results(), tmp_path / "mine")
    _edit(path, value=7.5)
    shipped = tmp_path / "shipped"
    result = runner.invoke(build_app(), ["leaderboard", "--publish", str(path), "--results", str(shipped),
                                         "--out", str(tmp_path / "L.md")])
    one_line_exit_2(result, str(path), "auc/value", "nothing published")
    assert not shipped.exists() and not (tmp_path / "L.md").exists()


def test_report_refuses_an_impossible_metric(tmp_path):
    run = fake_run(tmp_path)
    _edit(run / "results.json", value=7.5)
    one_line_exit_2(runner.invoke(build_app(), ["report", str(run)]), "results.json", "auc/value")


def test_report_on_a_truncated_results_file_is_one_line(tmp_path):
    run = fake_run(tmp_path)
    text = (run / "results.json").read_text()
    (run / "results.json").write_text(text[: len(text) // 2])
    one_line_exit_2(runner.invoke(build_app(), ["report", str(run)]), "results.json", "not valid JSON")


def test_report_on_a_truncated_examples_file_is_one_line(tmp_path):
    run = fake_run(tmp_path)
    npz = run / "examples" / "ffpp.npz"
    npz.write_bytes(npz.read_bytes()[:200])
    one_line_exit_2(runner.invoke(build_app(), ["report", str(run)]), "ffpp.npz", "truncated")


def test_report_on_a_non_numeric_score_is_one_line(tmp_path):
    run = fake_run(tmp_path)
    csv = run / "scores" / "ffpp.csv"
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("score")] = "high"
    csv.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    one_line_exit_2(runner.invoke(build_app(), ["report", str(run)]), "ffpp.csv")


def test_report_drops_figures_whose_scores_are_gone(tmp_path):
    run = fake_run(tmp_path, with_examples=False)
    assert runner.invoke(build_app(), ["report", str(run)]).exit_code == 0
    assert (run / "figures" / "roc_ffpp.png").is_file()
    (run / "scores" / "ffpp.csv").unlink()
    result = runner.invoke(build_app(), ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert not list((run / "figures").glob("*_ffpp.*"))
    assert "roc_ffpp" not in (run / "report.md").read_text()


def test_report_drops_a_partial_last_log_line_with_a_warning(tmp_path):
    run = fake_run(tmp_path)
    with open(run / "train_log.jsonl", "a") as fh:
        fh.write('{"step": 41, "epoch": 2, "lo')
    result = runner.invoke(build_app(), ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "partial last line" in result.output
    assert (run / "figures" / "training.png").is_file()


def test_deeply_nested_json_is_one_line_for_report_and_leaderboard(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    results = tmp_path / "results"
    results.mkdir()
    (results / "deep.json").write_text(deep)
    one_line_exit_2(runner.invoke(build_app(), ["leaderboard", "--results", str(results), "--out",
                                                 str(tmp_path / "L.md")]), "deep.json", "nests deeper")
    run = fake_run(tmp_path)
    (run / "results.json").write_text(deep)
    one_line_exit_2(runner.invoke(build_app(), ["report", str(run)]), "results.json", "nests deeper")


def test_a_finished_run_with_a_damaged_results_file_is_one_line(tmp_path, monkeypatch):
    from harness.run.demo_run import demo_config
    from harness.run.stages import run_id

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / run_id(demo_config())
    run.mkdir(parents=True)
    (run / "results.json").write_text('{"schema_version": 1, "run_')  # cut short
    result = runner.invoke(build_app(), ["run", "--data", "demo"])
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and "results.json" in lines[0] and "--no-resume" in lines[0]
