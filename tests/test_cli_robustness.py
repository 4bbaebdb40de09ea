"""Through the real CLI: `harness run --perturb` on the tiny demo (robustness block, figure, report and
leaderboard sections), `harness evaluate --perturb` on its checkpoint (the run's numbers again, under
its own id) and `harness compare` (ΔAUC, paired CI, DeLong's p)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.tiny_demo import PERTURB, TinyDemo
from fixtures.tiny_demo import harness as _harness
from harness.cli import build_app


@pytest.fixture(scope="module")
def runs(tiny_demo: TinyDemo, tmp_path_factory) -> dict:
    """The shared tiny demo (two seeds scored under four perturbations) and seed 0's checkpoint
    scored again by `harness evaluate --perturb` into a folder of this module."""
    root = tmp_path_factory.mktemp("robust")
    cache = tiny_demo.copy_cache(root / "cache")
    evaluate = ["evaluate", "--checkpoint", tiny_demo.seed0, "--demo-scale", "tiny", "--perturb", PERTURB,
                "--runs-dir", root / "evaluated"]
    _harness(*evaluate, cache=cache, cwd=root)
    return {"root": root, "cache": cache, "seed0": tiny_demo.seed0, "seed1": tiny_demo.seed1, "board": tiny_demo.runs,
            "evaluated": next((root / "evaluated").glob("eval-*/results.json")).parent, "evaluate": evaluate}


def harness(*args: str, runs: dict):
    return _harness(*args, cache=runs["cache"], cwd=runs["root"], check=False)


@pytest.mark.slow
def test_perturb_writes_the_block_figure_report_and_leaderboard_section(runs):
    from harness.reporting.results import validate

    results = json.loads((runs["seed0"] / "results.json").read_text())
    validate(results)
    block = results["datasets"]["ffpp"]
    rob = block["robustness"]
    assert rob["applied_to"] == "cached test face crops at scoring time; detection fixed"
    assert rob["clean"]["value"] == block["groups"]["all"]["video"]["auc"]["value"]  # same scoring path as the table
    assert set(rob["conditions"]) == {"jpeg", "blur", "noise", "video"}
    assert rob["conditions"]["video"]["5"]["param"] == 40 and rob["conditions"]["jpeg"]["5"]["param"] == 6
    assert all(0 <= lv["auc"]["value"] <= 1 for levels in rob["conditions"].values() for lv in levels.values())
    assert rob["mean_over_levels"]["blur"]["levels"] == 1
    assert (runs["seed0"] / "figures" / "robustness_ffpp.png").stat().st_size > 1000
    assert "figures/robustness_ffpp.png" in results["figures"]["files"]
    report = (runs["seed0"] / "report.md").read_text()
    assert "## Robustness" in report and "| jpeg |" in report and "](figures/robustness_ffpp.png)" in report
    board = (runs["board"] / "LEADERBOARD.md").read_text()
    section = board.split("## Robustness (video AUC, FaceForensics++ test)", 1)[1].split("\n## ", 1)[0]
    assert "| Method | Clean | Noise | Blur | JPEG | Video comp. | Average |" in section
    assert section.count("(seed 0)") == 1 and section.count("(seed 1)") == 1


@pytest.mark.slow
def test_evaluate_perturb_on_the_checkpoint_gives_the_runs_robustness_numbers(runs):
    """`harness evaluate --perturb` scores the run's checkpoint again from scratch (another process,
    another folder): the same clean and perturbed numbers, its own figure and report section."""
    def numbers(folder: Path) -> dict:
        rob = json.loads((folder / "results.json").read_text())["datasets"]["ffpp"]["robustness"]
        rob.pop("seconds")
        return rob

    assert numbers(runs["evaluated"]) == numbers(runs["seed0"])
    assert (runs["evaluated"] / "figures" / "robustness_ffpp.png").is_file()
    assert "## Robustness" in (runs["evaluated"] / "report.md").read_text()


@pytest.mark.slow
def test_evaluate_perturb_has_its_own_id_and_the_clean_evaluation_keeps_its_own(runs):
    def dry_run_id(*extra: str) -> str:
        args = [str(a) for a in runs["evaluate"][:5]] + list(extra) + ["--dry-run"]
        result = CliRunner().invoke(build_app(), args, env={"HARNESS_CACHE": str(runs["cache"])})
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["run_id"]

    clean, perturbed = dry_run_id(), dry_run_id("--perturb", PERTURB)
    assert perturbed != clean and runs["evaluated"].name == perturbed
    assert dry_run_id("--perturb", "jpeg:5") != perturbed


@pytest.mark.slow
def test_compare_prints_delta_auc_its_ci_and_delong_p(runs):
    out = harness("compare", str(runs["seed0"]), str(runs["seed1"]), runs=runs)
    assert out.returncode == 0, out.stderr
    assert "ΔAUC [95% CI]" in out.stdout and "DeLong p" in out.stdout
    row = next(line for line in out.stdout.splitlines() if line.startswith("| ffpp | all |"))
    assert row.split("|")[3].strip() == "12"  # tiny demo: 4 reals + 2 x 4 fakes, all shared
    data = json.loads(harness("compare", str(runs["seed0"]), str(runs["seed1"]), "--json", runs=runs).stdout)
    rows = {r["group"]: r for r in data["comparisons"][0]["rows"]}
    assert set(rows) == {"all", "Deepfakes", "Face2Face"}
    r = rows["all"]
    assert r["ci_low"] <= r["delta"] <= r["ci_high"] and 0 <= r["p"] <= 1
    assert abs(r["delta"] - (r["auc_b"] - r["auc_a"])) < 1e-12


@pytest.mark.slow
def test_a_run_compared_with_itself_differs_by_zero_with_p_one(runs):
    out = harness("compare", str(runs["seed0"]), str(runs["evaluated"]), "--json", runs=runs)
    assert out.returncode == 0, out.stderr
    for r in json.loads(out.stdout)["comparisons"][0]["rows"]:
        assert r["delta"] == 0 and r["p"] == 1 and r["ci_low"] == r["ci_high"] == 0


@pytest.mark.slow
def test_runs_scored_on_different_videos_are_refused_unless_intersect(runs, tmp_path):
    other = tmp_path / "fewer"
    shutil.copytree(runs["seed1"], other)
    csv = other / "scores" / "ffpp.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:1] + lines[2:]))  # one video fewer
    refused = harness("compare", str(runs["seed0"]), str(other), runs=runs)
    assert refused.returncode == 2 and refused.stdout == ""
    message = " ".join(refused.stderr.split())
    assert "different videos (1 only in" in message and "--intersect" in message and "Traceback" not in message
    ok = harness("compare", str(runs["seed0"]), str(other), "--intersect", "--json", runs=runs)
    assert ok.returncode == 0, ok.stderr
    rows = json.loads(ok.stdout)["comparisons"][0]["rows"]
    assert rows[0]["videos"] == 11 and rows[0]["only_a"] == 1


def test_bad_perturb_value_is_one_line_naming_the_valid_ones(tmp_path):
    result = CliRunner().invoke(build_app(), ["run", "--data", "demo", "--perturb", "jpeg:9", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "--perturb 'jpeg:9'" in text and "saturation, contrast, block" in text
    assert not any(tmp_path.iterdir())  # refused before any work


def test_compare_refuses_a_folder_without_scores(tmp_path):
    (tmp_path / "a").mkdir()
    result = CliRunner().invoke(build_app(), ["compare", str(tmp_path / "a"), str(tmp_path / "a")])
    assert result.exit_code == 2 and "scores/<dataset>.csv" in result.output


def test_compare_takes_the_results_tables_views_of_sources(tmp_path):
    """A group holding reals and fakes is a source: its reals against its own fakes only, in
    `harness compare` as in the results tables (harness.extend.views.view_masks); a group of
    fakes only is a method: its fakes against every real."""
    for name, shift in (("a", 0.0), ("b", 0.3)):
        rows = [("c0", 0, "cam", 0.2), ("c1", 0, "cam", 0.6), ("c2", 1, "cam", 0.5 + shift / 2), ("c3", 1, "cam", 0.7),
                ("g0", 0, "gan", 0.1), ("g1", 0, "gan", 0.4), ("g2", 1, "gan", 0.3 + shift), ("g3", 1, "gan", 0.9),
                ("d0", 1, "Deepfakes", 0.8), ("d1", 1, "Deepfakes", 0.35 + shift)]
        (tmp_path / name / "scores").mkdir(parents=True)
        (tmp_path / name / "scores" / "folder.csv").write_text(
            "uid,label,group,score\n" + "".join(f"{u},{l},{g},{s!r}\n" for u, l, g, s in rows))
    result = CliRunner().invoke(build_app(), ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["group"]: r for r in json.loads(result.stdout)["comparisons"][0]["rows"]}
    assert (rows["cam"]["videos"], rows["cam"]["reals"], rows["cam"]["fakes"]) == (4, 2, 2)  # its own reals only
    assert (rows["gan"]["videos"], rows["gan"]["reals"]) == (4, 2)
    assert (rows["Deepfakes"]["videos"], rows["Deepfakes"]["reals"], rows["Deepfakes"]["fakes"]) == (6, 4, 2)  # every real
    assert rows["all"]["videos"] == 10


def test_every_groups_delta_auc_compares_the_aucs_of_the_two_runs_results_tables(tmp_path):
    """`harness compare` and the results tables take one set of views (groups.score_views): for
    every group, the two AUCs of its ΔAUC are the video AUCs the two runs' tables hold. Sources
    (a group with reals and fakes) and methods (fakes only) both."""
    import numpy as np

    from harness.evaluation.runner import EvalSetup, VideoScores, compute_metrics, write_scores
    from harness.vocab.config import EvalConfig

    rng = np.random.default_rng(7)
    groups = ["cam"] * 8 + ["gan"] * 8 + ["original"] * 6 + ["Deepfakes"] * 6
    labels = [0, 1] * 8 + [0] * 6 + [1] * 6
    tables = {}
    for name, noise in (("a", 0.35), ("b", 0.2)):
        scores = VideoScores()
        for i, (group, label) in enumerate(zip(groups, labels)):
            uid = f"folder/{group}/{i:03d}"
            scores.video[uid] = float(np.clip(0.5 + (label - 0.5) * 0.4 + rng.normal(0, noise), 0, 1))
            scores.label[uid], scores.method[uid], scores.path[uid] = label, group, f"{uid}.mp4"
        write_scores(scores, "folder", tmp_path / name)
        tables[name] = compute_metrics(scores, EvalSetup(eval=EvalConfig(bootstrap=10)))
    result = CliRunner().invoke(build_app(), ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["group"]: r for r in json.loads(result.stdout)["comparisons"][0]["rows"]}
    assert set(rows) == set(tables["a"]) == {"all", "cam", "gan", "Deepfakes"}
    for group, row in rows.items():
        assert row["auc_a"] == pytest.approx(tables["a"][group]["video"]["auc"]["value"], abs=1e-12), group
        assert row["auc_b"] == pytest.approx(tables["b"][group]["video"]["auc"]["value"], abs=1e-12), group
        assert row["videos"] == tables["a"][group]["video"]["auc"]["n"]
