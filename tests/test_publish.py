"""A run never changes tracked files: results go to runs/, the shipped leaderboard changes on --publish only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import build_app
from harness.reporting.results import write_results
from test_results_factory import dataset_entry, make_results

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(build_app(), [str(a) for a in args], catch_exceptions=False)


def test_run_writes_under_runs_by_default(monkeypatch, tmp_path):
    import harness.run.stages as pipeline

    seen = []
    monkeypatch.setattr(pipeline, "run", lambda cfg, paths, **kw: seen.append(paths))
    assert invoke("run", "--data", "demo").exit_code == 0
    assert invoke("run", "--data", "demo", "--runs-dir", tmp_path / "mine", "--publish").exit_code == 0
    default, custom = seen
    assert (default.runs_dir, default.results_dir, default.leaderboard, default.publish) == (
        Path("runs"), Path("runs/results"), Path("runs/LEADERBOARD.md"), False)
    assert (custom.results_dir, custom.leaderboard, custom.publish) == (
        tmp_path / "mine" / "results", tmp_path / "mine" / "LEADERBOARD.md", True)
    written = ["runs/results/x.json", "runs/LEADERBOARD.md", "runs/x/checkpoint/model.safetensors"]
    ignored = subprocess.run(["git", "check-ignore", *written], cwd=ROOT, capture_output=True, text=True)
    if ignored.returncode != 128:  # 128: not a git checkout (an unpacked sdist)
        assert ignored.stdout.split() == written  # what a run writes is git-ignored


def test_publish_copies_a_run_and_renders_the_board(tmp_path):
    run_dir = tmp_path / "runs" / "r-mine"
    results = make_results("r-mine", "my run", datasets={"celebdf": dataset_entry({"all": 0.8}, compression=None)})
    write_results(results, tmp_path / "runs" / "results")
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(results))
    shipped, board = tmp_path / "lb" / "results", tmp_path / "lb" / "LEADERBOARD.md"
    shipped.mkdir(parents=True)
    out = invoke("leaderboard", "--results", shipped, "--out", board, "--publish", run_dir)
    assert out.exit_code == 0, out.output
    assert [p.name for p in shipped.glob("*.json")] == [f"{results['created'][:10]}_r-mine.json"]
    assert "my run" in board.read_text()
    assert invoke("leaderboard", "--results", shipped, "--out", board, "--check").exit_code == 0

    nothing = invoke("leaderboard", "--results", shipped, "--out", board, "--publish", tmp_path / "nowhere")
    assert nothing.exit_code == 2 and "no results to publish" in nothing.output
    (tmp_path / "bad.json").write_text("{}")
    bad = invoke("leaderboard", "--results", shipped, "--out", board, "--publish", tmp_path / "bad.json")
    assert bad.exit_code == 2 and "nothing published" in bad.output


def test_published_figures_are_copied_next_to_the_board_and_linked_from_it(tmp_path):
    run_dir = tmp_path / "runs" / "r-fig"
    (run_dir / "figures").mkdir(parents=True)
    (run_dir / "figures" / "roc_celebdf.png").write_bytes(b"\x89PNG fake")
    (run_dir / "report.md").write_text("# report\n![roc](figures/roc_celebdf.png)\n")
    results = make_results("r-fig", "figured run", datasets={"celebdf": dataset_entry({"all": 0.8}, compression=None)})
    results["figures"] = {"run_dir": "runs/r-fig", "report": "report.md", "files": ["figures/roc_celebdf.png", "figures/missing.png"]}
    (run_dir / "results.json").write_text(json.dumps(results))
    shipped, board = tmp_path / "lb" / "results", tmp_path / "lb" / "LEADERBOARD.md"
    shipped.mkdir(parents=True)
    out = invoke("leaderboard", "--results", shipped, "--out", board, "--publish", run_dir)
    assert out.exit_code == 0, out.output
    copied = tmp_path / "lb" / "figures" / "r-fig"
    assert (copied / "figures" / "roc_celebdf.png").read_bytes() == b"\x89PNG fake"
    assert (copied / "report.md").is_file()
    text = board.read_text()
    assert "(figures/r-fig/report.md)" in text and "(figures/r-fig/figures/roc_celebdf.png)" in text
    assert "missing" not in text  # only files that exist are shipped and linked
    assert invoke("leaderboard", "--results", shipped, "--out", board, "--check").exit_code == 0
