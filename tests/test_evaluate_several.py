"""`harness evaluate` with several --checkpoint, through the real command line: a harness model, a
MesoNet .h5 and a DeepfakeBench file scored on face crops (`--face-detector none`) in one command,
one run folder each (the same folder as evaluated alone), faces cut once per distinct crop rule,
and one table whose numbers are the results' AUCs and `harness compare`'s paired ΔAUC and DeLong p.
A model that fails is one line and the others are scored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.builders import deepfakebench_file, face_crops, mesonet_h5, tiny_swin_run
from harness.cli import build_app

runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {"harness": tiny_swin_run(folder / "run", 64), "mesonet": mesonet_h5(folder / "Meso4_DF.h5"),
            "deepfakebench": deepfakebench_file(folder / "meso4_best.pth", "meso4"),
            "test_csv": face_crops(folder / "crops", n=6)}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """One runs folder and cache for the module: a model scored by an earlier test is reported as
    already evaluated (its folder is the same), so later tests cost little."""
    return tmp_path_factory.mktemp("work")


def evaluate(tmp_path: Path, *args: object):
    common = ["--face-detector", "none", "--device", "cpu", "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "home"]
    return runner.invoke(build_app(), ["evaluate", *map(str, args), *map(str, common)])


def checkpoints(models: dict[str, Path], *names: str) -> list[str]:
    forms = {"harness": str(models["harness"]), "mesonet": f"mesonet:{models['mesonet']}",
             "deepfakebench": f"deepfakebench:{models['deepfakebench']}"}
    return [part for name in names for part in ("--checkpoint", forms.get(name, name))]


def table_rows(output: str) -> dict[tuple[str, str], list[str]]:
    """(group, model number) -> the cells after them, from the printed comparison table."""
    table = output[output.index("video-level AUC %, 95% CI; ΔAUC"):]
    rows, group = {}, None
    for line in table.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        match = re.search(r"(?:^|\s)#(\d)\s", line)  # a row; the caption's "#1: name" is no row
        if not match:
            continue
        if cells[0] == "folder":
            group = cells[1]
        rows[group, match.group(1)] = line[match.end():].split()
    return rows


def test_three_checkpoints_print_one_comparison_table(models, work):
    from harness.evaluation.compare import compare_runs, load_run

    names = ("harness", "mesonet", "deepfakebench")
    result = evaluate(work, *checkpoints(models, *names), "--test-csv", models["test_csv"])
    assert result.exit_code == 0, result.output
    by_importer = {json.loads(f.read_text())["provenance"]["origin"].get("importer", "harness"): f.parent
                   for f in (work / "runs").glob("eval-*/results.json")}
    folders = [by_importer[name] for name in names]  # one run folder per model, in the command's order
    # faces cut once per distinct crop rule: the harness model's 128 px, the two imports' 256 px
    assert sorted(p.name.split("-")[1] for p in (work / "home" / "faces").iterdir()) == ["crop128", "crop256"]
    third = result.output.split("checkpoint 3/3")[1]
    assert re.search(r"preprocessed: videos 6, skipped 6, done 0", third), third  # the second 256 px model cut nothing
    rows = table_rows(result.output)
    results = [json.loads((f / "results.json").read_text()) for f in folders]
    report = compare_runs([load_run(f, work) for f in folders], intersect=True)  # what `harness compare` gives
    for group in ("all", "fake"):
        for i, one in enumerate(results, 1):
            auc = one["datasets"]["folder"]["groups"][group]["video"]["auc"]
            assert rows[group, str(i)][1] == f"{100 * auc['value']:.1f}", (group, i, rows)
        assert rows[group, "1"][-1] == "baseline"
        for i, comp in enumerate(report["comparisons"], 2):
            row = next(r for r in comp["rows"] if r["group"] == group)
            assert rows[group, str(i)][-3] == f"{100 * row['delta']:+.1f}" and rows[group, str(i)][-1] == f"{row['p']:.3g}"
    assert "Meso4 (Meso4_DF.h5, evaluated here)" in result.output and "DeepfakeBench meso4" in result.output
    # the same model evaluated alone: the same folder, reported as already evaluated
    alone = evaluate(work, *checkpoints(models, "mesonet"), "--test-csv", models["test_csv"])
    assert alone.exit_code == 0 and f"{folders[1].name} already evaluated" in " ".join(alone.output.split())


def test_a_model_that_fails_is_one_line_and_the_others_are_scored(models, work):
    result = evaluate(work, *checkpoints(models, "harness", str(work / "nowhere.pth"), "deepfakebench"),
                      "--test-csv", models["test_csv"])
    assert result.exit_code == 2, result.output
    failed = [line for line in result.output.splitlines() if "nowhere.pth" in line]
    assert failed[0].startswith("failed: ") and "no checkpoint at" in failed[0]
    assert result.output.rstrip().splitlines()[-1].startswith("error: 1 of 3 checkpoints failed (")
    scored = [p.parent.name for p in (work / "runs").glob("eval-*/results.json")]
    assert any(n.startswith("eval-run-") for n in scored) and any(n.startswith("eval-deepfakebench-meso4-") for n in scored)
    rows = table_rows(result.output)
    assert set(rows) == {("all", "1"), ("all", "2"), ("fake", "1"), ("fake", "2")}


def test_several_checkpoints_refuse_a_repeat_a_name_and_other_test_data(models, tmp_path):
    from dataclasses import replace

    from harness.run.several import Planned, check_same_test_data
    from harness.vocab.config import RunConfig
    from harness.run.paths import RunError

    for args, words in ((checkpoints(models, "mesonet", "mesonet"), "given twice"),
                        ([*checkpoints(models, "mesonet", "deepfakebench"), "--name", "x"], "--name names one evaluation")):
        result = evaluate(tmp_path, *args, "--test-csv", models["test_csv"])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and words in lines[0], result.output
    assert not (tmp_path / "runs").exists()
    base = RunConfig()
    plans = [Planned("a", None, base, None), Planned("b", None, replace(base, test_datasets=["celebdf"]), None)]
    with pytest.raises(RunError, match="different test data .*a: ffpp, celebdf, dfdc, dfdcp; b: celebdf"):
        check_same_test_data(plans)
    check_same_test_data([plans[0], Planned("c", None, replace(base, eval=replace(base.eval, frames_per_video=4)), None)])


def test_a_dry_run_of_several_prints_each_id_and_writes_nothing(models, tmp_path):
    args = [*checkpoints(models, "mesonet", "deepfakebench"), "--test-csv", models["test_csv"], "--dry-run"]
    result = evaluate(tmp_path, *args)
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)
    assert [p["run_id"].split("-")[1] for p in planned] == ["meso4", "deepfakebench"]
    assert [p["crop"]["crop_size"] for p in planned] == [256, 256] and planned[0]["run_id"] != planned[1]["run_id"]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "home").exists()
