"""The training recipe as `harness run` options: --recipe, --optimizer, --lr, --weight-decay, --warmup,
--sam-rho; recorded in the config (results) and named in the report; the published run ids stay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import build_app
from harness.vocab.config import TrainConfig
from harness.vocab.recipes import RECIPES, describe, recipe_name
from harness.training.trainer import _lr_lambda

runner = CliRunner()
#: the published demo run (leaderboards/results): its id must not move when options are added
PUBLISHED_DEMO_ID = "multipart-mobilenetv2-3c6d94b901"


def dry_run(*args: str) -> dict:
    result = runner.invoke(build_app(), ["run", "--data", "demo", *args, "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (only,) = json.loads(result.stdout)["runs"]
    return only


def test_new_settings_at_their_neutral_value_keep_the_published_run_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dry_run()["run_id"] == PUBLISHED_DEMO_ID
    assert dry_run("--warmup", "0")["run_id"] == PUBLISHED_DEMO_ID
    warm = dry_run("--warmup", "10")
    assert warm["run_id"] != PUBLISHED_DEMO_ID and warm["config"]["train"]["warmup"] == 10
    assert list(tmp_path.iterdir()) == []


def test_recipe_sets_every_optimizer_setting_and_single_options_change_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paper = dry_run("--recipe", "paper")["config"]["train"]
    assert {k: paper[k] for k in RECIPES["paper"]} == RECIPES["paper"]
    assert paper["max_steps"] == 150  # the demo's length stays: a recipe is the optimizer only
    tuned = dry_run("--recipe", "paper", "--lr", "0.002", "--weight-decay", "0.01", "--warmup", "5", "--sam-rho", "0")
    train = tuned["config"]["train"]
    assert (train["optimizer"], train["lr"], train["weight_decay"], train["warmup"], train["sam_rho"]) == ("sgd", 0.002, 0.01, 5, 0.0)
    assert recipe_name(train) == "custom" and recipe_name(paper) == "paper"
    assert dry_run("--optimizer", "sgd", "--lr", "0.001")["config"]["train"]["optimizer"] == "sgd"


@pytest.mark.parametrize("args, says", [
    (["--recipe", "sgd"], "--recipe 'sgd' is not a recipe; use one of: adamw, paper"),
    (["--optimizer", "adam"], "--optimizer 'adam': use one of sgd, adamw"),
    (["--lr", "0"], "--lr 0.0: the learning rate must be > 0"),
    (["--warmup", "-1"], "--warmup -1: must be >= 0"),
])
def test_bad_recipe_options_are_refused_in_one_line(args, says):
    result = runner.invoke(build_app(), ["run", "--data", "demo", *args, "--dry-run"])
    assert result.exit_code == 2
    assert says in result.output and len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_the_default_is_a_named_recipe_and_the_paper_one_option_away():
    assert recipe_name(TrainConfig()) == "adamw"
    assert describe(RECIPES["paper"]).startswith("paper (SGD (momentum 0.9) lr 0.001")
    assert recipe_name({"optimizer": "sgd", "lr": 0.001}) == "paper"  # recorded before warmup existed


def test_warmup_ramps_the_learning_rate_linearly_then_follows_the_schedule():
    factor = _lr_lambda(TrainConfig(warmup=4, lr_schedule="constant"), total_steps=100)
    assert [factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = _lr_lambda(TrainConfig(warmup=0), total_steps=100)
    assert cosine(0) == 1.0 and cosine(100) == pytest.approx(0.0)


def test_the_report_names_the_recipe(tmp_path):
    from test_results_factory import make_results

    run = tmp_path / "run-0001"
    run.mkdir()
    results = make_results("run-0001")
    results["config"]["train"] = {**TrainConfig().__dict__, **RECIPES["paper"]}
    (run / "results.json").write_text(json.dumps(results))
    result = runner.invoke(build_app(), ["report", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "- recipe paper (SGD (momentum 0.9) lr 0.001, weight decay 0.0, SAM rho 0.05, warmup 0 steps, cosine)" in (run / "report.md").read_text()
