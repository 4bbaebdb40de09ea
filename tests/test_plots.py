"""Run figures and `harness report`: drawn from the run folder's files alone, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from harness.cli import build_app
from harness.evaluation.runner import EXAMPLE_SIZE, VideoScores, keep_extremes, write_scores
from harness.reporting.plots import read_log, read_scores
from test_results_factory import ffpp_entry, make_results

runner = CliRunner()
METHODS = ("Deepfakes", "Face2Face")


def invoke(*args: str):
    return runner.invoke(build_app(), list(args), catch_exceptions=False)


#: video scores of fake_run's 4 reals then 8 fakes (Deepfakes, Face2Face alternating): AUC 30/32
FAKE_RUN_SCORES = (0.2, 0.35, 0.5, 0.65, 0.6, 0.55, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def fake_run(tmp_path: Path, with_examples: bool = True) -> Path:
    """A finished run folder as `harness run` leaves it: config, log, results, scores, examples."""
    run = tmp_path / "runs" / "demo-run-0123456789"
    run.mkdir(parents=True)
    results = make_results("demo-run-0123456789", "multipart+mobilenetv2", datasets={"ffpp": ffpp_entry(0.93, 0.88, 0.9, 0.85)})
    groups = results["datasets"]["ffpp"]["groups"]
    for group in set(groups) - {"all", *METHODS}:  # the scores below hold these groups only
        del groups[group]
    for group in groups:  # what the scores give (4 reals at 0.2-0.65; one fake of each method below 0.65)
        groups[group]["video"]["auc"] = {"value": 0.9375, "ci_low": 0.88, "ci_high": 0.97, "n": 12 if group == "all" else 8}
    (run / "results.json").write_text(json.dumps(results))
    (run / "config.json").write_text(json.dumps(results["config"]))
    lines = [{"step": s, "epoch": 1, "lr": 5e-4 * (1 - s / 40), "loss": 2.0 - s / 30, "cls": 0.7 - s / 100,
              "mask": 0.5, "local": 0.3, "token": 0.0} for s in range(1, 41)]
    lines.insert(20, {"step": 20, "epoch": 1, "val_auc": 0.7})
    lines.append({"step": 40, "epoch": 2, "val_auc": 0.9})
    (run / "train_log.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    rng = np.random.default_rng(0)
    scores = VideoScores()
    for i in range(12):
        label = int(i >= 4)
        uid = f"ffpp/{'real' if not label else METHODS[i % 2]}/{i:03d}"
        scores.video[uid] = FAKE_RUN_SCORES[i]
        scores.label[uid] = label
        scores.method[uid] = "original" if not label else METHODS[i % 2]
        if label and with_examples:
            crop = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
            truth = np.zeros((EXAMPLE_SIZE, EXAMPLE_SIZE), np.uint8)
            truth[20:70, 20:70] = 255
            pm = rng.integers(0, 255, (EXAMPLE_SIZE, EXAMPLE_SIZE), dtype=np.uint8)
            crop = crop[:EXAMPLE_SIZE, :EXAMPLE_SIZE]
            scores.examples.append((scores.video[uid], uid, scores.method[uid], crop, truth if i % 2 else None, pm))
            scores.examples = keep_extremes(scores.examples, k=3)
    write_scores(scores, "ffpp", run)
    return run


def test_examples_keep_only_the_most_and_least_confident():
    examples = [(float(s), f"v{s}") for s in np.random.default_rng(1).permutation(100)]
    kept = [e[0] for e in keep_extremes(examples, k=4)]
    assert kept == [0, 1, 2, 3, 96, 97, 98, 99]


def test_scores_file_round_trips(tmp_path):
    run = fake_run(tmp_path)
    scores = read_scores(run / "scores" / "ffpp.csv")
    assert len(scores.uids) == 12 and scores.labels.sum() == 8
    views = scores.views()
    assert set(views) == {"all", *METHODS}
    assert len(views["Deepfakes"][0]) == 4 + 4  # every real + its own fakes
    with np.load(run / "examples" / "ffpp.npz") as data:
        assert data["frames"].shape == (6, EXAMPLE_SIZE, EXAMPLE_SIZE, 3)  # 3 most + 3 least confident
        assert data["has_truth"].any() and not data["has_truth"].all()
    steps, vals = read_log(run / "train_log.jsonl")
    assert len(steps) == 40 and [v["val_auc"] for v in vals] == [0.7, 0.9]


def test_report_redraws_every_figure_from_the_run_folder(tmp_path):
    run = fake_run(tmp_path)
    result = invoke("report", str(run))
    assert result.exit_code == 0, result.output
    figures = run / "figures"
    expected = ["training.png", "roc_ffpp.png", "pr_ffpp.png", "scores_ffpp.png", "examples_ffpp.png"]
    for name in expected:
        with Image.open(figures / name) as img:
            img.verify()
        with Image.open(figures / name) as img:
            assert img.format == "PNG" and img.width >= 300 and img.height >= 250, (name, img.size)
    # The legends carry the AUC with the CI from results.json (SVG keeps text as text).
    roc = (figures / "roc_ffpp.svg").read_text()
    assert "AUC 93.8 [88.0, 97.0]" in roc and "Deepfakes" in roc and "Face2Face" in roc
    report = (run / "report.md").read_text()
    assert report.startswith("# Run report: multipart+mobilenetv2")
    for name in expected:
        assert f"](figures/{name})" in report
    assert "| ffpp | all | 12 | 93.8 [88.0, 97.0] |" in report


def test_report_is_reproducible_and_accepts_a_run_id(tmp_path):
    run = fake_run(tmp_path)
    assert invoke("report", str(run)).exit_code == 0
    first = {p.name: p.read_bytes() for p in (run / "figures").iterdir()}
    result = invoke("report", run.name, "--runs-dir", str(run.parent))
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in (run / "figures").iterdir()} == first


def test_report_on_a_run_without_scores_draws_the_training_curves_only(tmp_path):
    run = tmp_path / "half-done"
    run.mkdir()
    (run / "train_log.jsonl").write_text("".join(json.dumps({"step": s, "epoch": 1, "lr": 1e-3, "loss": 1.0 / s}) + "\n" for s in range(1, 6)))
    result = invoke("report", str(run))
    assert result.exit_code == 0, result.output
    assert [p.name for p in (run / "figures").iterdir()] == ["training.png"]
    assert "not finished" in (run / "report.md").read_text()


def test_report_refuses_what_is_not_a_run_folder(tmp_path):
    result = runner.invoke(build_app(), ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no run folder" in result.output
    result = runner.invoke(build_app(), ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.output


def test_leaderboard_links_each_runs_figures(tmp_path, monkeypatch):
    """Links are relative to the leaderboard's folder (run_dir is recorded relative to where the run ran)."""
    from harness.reporting.results import write_results

    monkeypatch.chdir(tmp_path)
    results = make_results("r-figs", "figs <b>", datasets={"ffpp": ffpp_entry()})
    results["figures"] = {"run_dir": "runs/r-figs", "report": "report.md",
                          "files": ["figures/training.png", "figures/roc_ffpp.png"]}
    write_results(results, tmp_path / "results")
    out = Path("leaderboards") / "LEADERBOARD.md"
    result = invoke("leaderboard", "--results", str(tmp_path / "results"), "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    line = next(l for l in text.splitlines() if l.startswith("  - figures:"))
    assert line == ("  - figures: [report](../runs/r-figs/report.md), [training](../runs/r-figs/figures/training.png), "
                    "[roc ffpp](../runs/r-figs/figures/roc_ffpp.png)")
    assert "figs &lt;b&gt;" in text


def test_every_curve_has_the_tables_auc_and_n(tmp_path):
    """Sources with their own reals (compared only with them) and a fakes-only method (against every
    real): each ROC legend's AUC and n equal the report table's, and the drawn data give that AUC."""
    import html
    import re

    from sklearn.metrics import roc_auc_score

    from harness.evaluation.runner import EvalSetup, compute_metrics
    from harness.vocab.config import EvalConfig
    from harness.reporting.plots import read_scores

    run = tmp_path / "runs" / "src-run-0123456789"
    run.mkdir(parents=True)
    rng = np.random.default_rng(3)
    scores = VideoScores()
    plan = {"clips": (12, 4), "photos": (3, 9), "swaps": (0, 5)}  # group: (reals, fakes)
    for group, (n_real, n_fake) in plan.items():
        for i in range(n_real + n_fake):
            uid = f"mix/{group}/{i:03d}"
            label = int(i >= n_real)
            # the "photos" reals score high: against every real this source would look different
            base = 0.8 if group == "photos" and not label else 0.3 + 0.4 * label
            scores.video[uid] = float(np.clip(base + rng.normal(0, 0.2), 0, 1))
            scores.label[uid], scores.method[uid] = label, group
    write_scores(scores, "mix", run)
    groups = compute_metrics(scores, EvalSetup(eval=EvalConfig(bootstrap=50)))
    results = make_results("src-run-0123456789", "sources", datasets={"mix": {**ffpp_entry(), "groups": groups}})
    (run / "results.json").write_text(json.dumps(results, default=float))
    assert invoke("report", str(run)).exit_code == 0

    table = {m[0]: (int(m[1]), m[2]) for m in re.findall(r"^\| mix \| (\S+) \| (\d+) \| ([^|]+?) \|", (run / "report.md").read_text(), re.M)}
    legend = {m[0]: (int(m[2]), html.unescape(m[1])) for m in re.findall(r">(\S+): AUC ([^<]+?) \(n=(\d+)\)<", (run / "figures" / "roc_mix.svg").read_text())}
    assert set(legend) == set(table) == {"all", *plan}
    assert legend == table
    views = read_scores(run / "scores" / "mix.csv").views()
    for group, (y, s) in views.items():
        assert len(y) == groups[group]["video"]["auc"]["n"]
        assert roc_auc_score(y, s) == pytest.approx(groups[group]["video"]["auc"]["value"])
    assert len(views["photos"][0]) == 12 and len(views["swaps"][0]) == 15 + 5


def test_small_groups_mark_their_ci_and_one_item_classes_have_none(tmp_path):
    """Through `harness report` and `harness leaderboard`, and the run's terminal summary: below 10
    reals or fakes the CI is marked unreliable; with one real (or fake) there is no CI, and why."""
    import io

    from rich.console import Console

    from harness.vocab.config import EvalConfig
    from harness.evaluation.runner import EvalSetup, compute_metrics
    from harness.common.ui import print_table
    from harness.run.summary import summary_table
    from harness.reporting.results import SMALL_N_NOTE, write_results

    rng = np.random.default_rng(5)
    scores = VideoScores()
    plan = {"big": (12, 12), "few": (5, 12), "solo": (1, 4)}  # group: (reals, fakes), each its own source
    for group, (n_real, n_fake) in plan.items():
        for i in range(n_real + n_fake):
            uid, label = f"celebdf/{group}/{i:03d}", int(i >= n_real)
            scores.video[uid] = float(np.clip(0.3 + 0.4 * label + rng.normal(0, 0.2), 0, 1))
            scores.label[uid], scores.method[uid] = label, group
    groups = compute_metrics(scores, EvalSetup(eval=EvalConfig(bootstrap=50)))
    solo = groups["solo"]["video"]["auc"]
    assert (solo["n_real"], solo["n_fake"]) == (1, 4) and np.isnan(solo["ci_low"]) and "1 real item" in solo["no_ci"]
    assert (groups["few"]["video"]["auc"]["n_real"], groups["big"]["video"]["auc"]["n_fake"]) == (5, 12)

    run = tmp_path / "runs" / "small-0123456789"
    run.mkdir(parents=True)
    write_scores(scores, "celebdf", run)
    results = make_results("small-0123456789", "small", datasets={"celebdf": {**ffpp_entry(), "groups": groups}})
    path = write_results(results, tmp_path / "results")
    (run / "results.json").write_text(path.read_text())
    assert invoke("report", str(run)).exit_code == 0
    report = (run / "report.md").read_text()
    rows = {line.split("|")[2].strip(): line.split("|")[4].strip() for line in report.splitlines() if line.startswith("| celebdf |")}
    assert rows["solo"].endswith(" no CI (1 real)") and "[" not in rows["solo"]
    assert rows["few"].endswith("] n<10") and rows["all"].endswith("]") and rows["big"].endswith("]")
    assert SMALL_N_NOTE in report

    board = tmp_path / "LEADERBOARD.md"
    assert invoke("leaderboard", "--results", str(tmp_path / "results"), "--out", str(board)).exit_code == 0
    table2 = board.read_text().split("## Table 2", 1)[1].split("\n## ", 1)[0]
    cell = next(line.split("|")[4].strip() for line in table2.splitlines() if line.startswith("| small"))
    assert cell.endswith(" (n=46)"), cell  # the "all" group: 18 reals + 28 fakes

    out = io.StringIO()
    print_table(summary_table(json.loads(path.read_text())), Console(file=out, width=200), width=200)
    text = out.getvalue()
    assert "no CI (1 real)" in text and "] n<10" in text and SMALL_N_NOTE in text


def test_a_switched_off_loss_term_gets_no_training_panel(tmp_path):
    """A term logged as 0 at every step (weight 0, or L_m below its token grid) is off: the figure
    is the one drawn without that term at all, not one with an empty panel."""
    def log(folder: Path, token: dict) -> Path:
        run = tmp_path / folder
        run.mkdir()
        (run / "train_log.jsonl").write_text("".join(
            json.dumps({"step": s, "epoch": 1, "lr": 1e-3, "loss": 1.0 / s, "cls": 0.5 / s, **token}) + "\n" for s in range(1, 12)))
        assert invoke("report", str(run)).exit_code == 0
        return run / "figures" / "training.png"

    off, absent, on = log(Path("off"), {"token": 0.0}), log(Path("absent"), {}), log(Path("on"), {"token": 0.1})
    assert off.read_bytes() == absent.read_bytes()
    assert Image.open(on).size != Image.open(off).size  # a real term adds its panel (4 panels: a second row)


# ------------------------------------------------------------------------------------------------
# figures a reader trusts: read from the figure objects (matplotlib artists), not pixels
# ------------------------------------------------------------------------------------------------
def _scores_of(labels: list[int], values: list[float]):
    from harness.reporting.scores import Scores

    return Scores([f"v{i}" for i in range(len(labels))], np.array(labels), ["original" if y == 0 else "Deepfakes" for y in labels],
                  np.array(values, dtype=float))


def test_a_panel_of_one_logged_value_shows_it_as_text_not_a_lone_dot():
    from harness.reporting.plots import training_figure

    steps = [{"step": s, "epoch": 1, "lr": 1e-3, "loss": 1.0 / s} for s in range(1, 6)]
    fig = training_figure(steps, [{"step": 150, "epoch": 1, "val_auc": 0.6875}])
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    val = panels["validation AUC (self-blends)"]
    assert len(val.lines) == 0 and [t.get_text() for t in val.texts] == ["0.6875 at step 150\n(the one value logged)"]
    assert len(panels["loss (total)"].lines) == 1 and len(panels["loss (total)"].texts) == 0  # five values: a curve
    two = training_figure(steps, [{"step": 2, "val_auc": 0.6}, {"step": 5, "val_auc": 0.8}])
    val = {ax.get_title(): ax for ax in two.axes}["validation AUC (self-blends)"]
    assert len(val.texts) == 0 and list(val.lines[0].get_ydata()) == [0.6, 0.8]
    one_step = training_figure(steps[:1], [])
    assert all(len(ax.lines) == 0 and len(ax.texts) == 1 for ax in one_step.axes if ax.get_visible())


def test_the_score_histogram_counts_whole_videos_and_draws_the_verdict_threshold():
    from harness.reporting.plots import histogram_figure

    scores = _scores_of([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.45, 0.5, 0.7, 0.9])
    results = {"name": "demo", "datasets": {"ffpp": {"threshold": {"value": 0.4626, "source": "calibrated at the EER of 8 validation images"}}}}
    fig = histogram_figure("ffpp", scores, results)
    (ax,) = fig.axes
    fig.canvas.draw()
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)  # 0, 1, 2 ... never 0.5
    (line,) = [l for l in ax.lines if l.get_label().startswith("threshold")]
    assert list(line.get_xdata()) == [0.4626, 0.4626] and line.get_label() == "threshold 0.463 (calibrated)"
    old = histogram_figure("ffpp", scores, {"config": {"eval": {"threshold": 0.5}}})  # results without the record
    assert [l.get_xdata()[0] for l in old.axes[0].lines if l.get_label().startswith("threshold")] == [0.5]


def test_long_titles_are_wrapped_whole_not_cut():
    from harness.reporting.plots import histogram_figure, training_figure

    name = "multipart[deform=True,parts=3,scale=0.9]+efficientnet-lite0 seed 2 on my own videos at 224 px"
    fig = histogram_figure("celebdf", _scores_of([0, 1], [0.2, 0.8]), {"name": name})
    title = fig.axes[0].get_title()
    assert "\n" in title and " ".join(title.split()) == f"Score histogram: celebdf - {name}"
    fig.canvas.draw()
    box, frame = fig.axes[0].title.get_window_extent(), fig.bbox
    assert box.x0 >= frame.x0 and box.x1 <= frame.x1  # inside the figure: nothing cut at either end
    steps = [{"step": s, "lr": 1e-3, "loss": 1.0} for s in range(1, 4)]
    sup = training_figure(steps, [], title=name)._suptitle.get_text()
    assert "\n" in sup and " ".join(sup.split()) == f"Training: {name}"
