"""`harness leaderboard --significance`: rows not significantly different from a column's best."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from harness.cli import build_app
from harness.reporting.results import write_results
from test_results_factory import dataset_entry, make_results


def run_with_scores(tmp: Path, name: str, scores: np.ndarray | None, labels: np.ndarray) -> dict:
    """A results dict whose run folder holds scores/celebdf.csv (None: no run folder); the scores are
    squashed into [0, 1] (a scores file holds nothing else) without changing their order."""
    scores = None if scores is None else 1 / (1 + np.exp(-scores))
    auc = roc_auc_score(labels, scores) if scores is not None else 0.7
    run = make_results(f"run-{name}", name, datasets={"celebdf": dataset_entry({"all": float(auc)}, compression=None)})
    if scores is not None:
        folder = tmp / name
        (folder / "scores").mkdir(parents=True)
        rows = "".join(f"v{i},{lab},{'fake' if lab else 'real'},{float(s)!r}\n" for i, (lab, s) in enumerate(zip(labels, scores)))
        (folder / "scores" / "celebdf.csv").write_text("uid,label,group,score\n" + rows)
        run["figures"] = {"run_dir": folder.as_posix(), "files": []}
    return run


def test_marks_best_tied_worse_and_untestable_rows(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 150)
    strong = 2.0 * labels + rng.normal(size=300)
    runs = [
        run_with_scores(tmp_path, "strong", strong, labels),
        run_with_scores(tmp_path, "close", strong + 0.05 * rng.normal(size=300), labels),
        run_with_scores(tmp_path, "weak", 0.3 * labels + rng.normal(size=300), labels),
        run_with_scores(tmp_path, "elsewhere", None, labels),  # its run folder is not on this machine
    ]
    results = tmp_path / "results"
    for run in runs:
        write_results(run, results)
    out = tmp_path / "LB.md"
    result = CliRunner().invoke(build_app(), ["leaderboard", "--results", str(results), "--out", str(out), "--significance"])
    assert result.exit_code == 0, result.output
    table = out.read_text().split("## Table 2", 1)[1].split("\n## ", 1)[0].split("#### Frame-level", 1)[0]
    cell = {line.split("|")[1].strip(): line.split("|")[4].strip() for line in table.splitlines() if line.startswith("| ")}
    # the two near-identical runs: one is the best, the other not significantly different from it
    assert sorted([cell["strong"][-1], cell["close"][-1]]) == ["≈", "▲"] and cell["elsewhere"].endswith("?")
    assert cell["weak"][-1] not in "▲≈?"  # significantly worse: no mark
    assert any(k.startswith("SBI") and v.endswith("?") for k, v in cell.items())  # a paper's row: not testable
    assert "DeLong's test, p ≥ 0.05" in table
    # without the option nothing is marked
    CliRunner().invoke(build_app(), ["leaderboard", "--results", str(results), "--out", str(out)])
    assert "▲" not in out.read_text()


def test_a_sources_view_holds_its_own_reals_only(tmp_path):
    """The significance marks test the rows' own views (harness.extend.views.view_masks): a
    source (reals and fakes) against itself, a method (fakes only) against every real."""
    from harness.evaluation.significance import _view

    path = tmp_path / "folder.csv"
    rows = [("c0", 0, "cam"), ("c1", 1, "cam"), ("g0", 0, "gan"), ("g1", 1, "gan"), ("d0", 1, "Deepfakes")]
    path.write_text("uid,label,group,score\n" + "".join(f"{u},{l},{g},0.5\n" for u, l, g in rows))
    assert set(_view(path, "cam")) == {"c0", "c1"}
    assert set(_view(path, "Deepfakes")) == {"c0", "g0", "d0"} and len(_view(path, "all")) == 5
