"""One experiment, one identity: the run id depends on what decides the results, never on how or
where the run executes (device, workers, data root, display name, cache, runs folder, loggers)."""

from __future__ import annotations

import json

from tests.test_rerun_config import dry_run

PUBLISHED_DEMO_ID = "multipart-mobilenetv2-3c6d94b901"


def _id(*args: str) -> str:
    runs, _ = dry_run("--data", "demo", *args)
    assert len(runs) == 1
    return runs[0]["run_id"]


def test_execution_settings_do_not_change_the_run_id(tmp_path):
    base = _id()
    assert base == PUBLISHED_DEMO_ID  # the shipped leaderboard's demo entry keeps its id
    for args in (["--device", "cpu"], ["--workers", "3"], ["--root", str(tmp_path)], ["--name", "my run"],
                 ["--cache-dir", str(tmp_path / "cache")], ["--runs-dir", str(tmp_path / "runs")],
                 ["--logger", "jsonl"]):
        assert _id(*args) == base, args


def test_experiment_fields_change_the_run_id():
    base = _id()
    for args in (["--seed", "1"], ["--backbone", "efficientnet-lite0"], ["--blender", "sbi"], ["--img-size", "160"],
                 ["--max-steps", "151"], ["--eval-frames", "8"]):
        assert _id(*args) != base, args


def test_a_run_resumed_with_other_execution_settings_records_them(tmp_path):
    """The execution settings still travel with the run: the dry run's config holds the ones given."""
    runs, _ = dry_run("--data", "demo", "--device", "cpu", "--workers", "3", "--name", "mine")
    config = runs[0]["config"]
    assert (config["device"], config["train"]["workers"], config["name"]) == ("cpu", 3, "mine")
    assert json.dumps(config)  # JSON as printed
