"""Issue 31, item 2: an evaluation's id is a hash of everything that determines its numbers.

The bundle's identity is its tensors and its model.json (stable across saves of identical content:
the save's nonce is not part of it); an edited model.json, another demo scale or other test files
are another id; the results record what the id is a hash of; a model.json beside another run's
weights is refused; one `evaluate` process per id; `--publish` never replaces a published row with
other numbers under the same id."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fixtures.cli_checks import one_line_exit_2
from fixtures.tiny_demo import TinyDemo
from fixtures.tiny_demo import harness as _harness
from harness.cli import build_app
from harness.reporting.results import write_results
from test_results_factory import dataset_entry, make_results

runner = CliRunner()
META = {"model": {"backbone": "tiny"}, "img_size": 64, "run": {"seed": 0}}


# ------------------------------------------------------------------------------------------------
# The bundle's identity
# ------------------------------------------------------------------------------------------------
def _save(folder: Path, model: torch.nn.Module, meta: dict, step: int = 3) -> Path:
    from harness.training.checkpoint import save_checkpoint

    save_checkpoint(folder, model, meta, {"optimizer": {}}, {"global_step": step}, run_key="abc")
    return folder


def test_the_bundle_sha256_is_stable_across_saves_of_identical_tensors(tmp_path):
    from harness.common.digest import sha256_file
    from harness.models.bundle import MODEL_FILE, bundle_identity, bundle_sha256

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    one, two = _save(tmp_path / "one", model, META), _save(tmp_path / "two", model, META, step=9)
    assert sha256_file(one / MODEL_FILE) != sha256_file(two / MODEL_FILE)  # the file holds the save's nonce and step
    assert bundle_sha256(one) == bundle_sha256(two)  # its identity does not
    assert bundle_identity(one).run_key == "abc"
    with torch.no_grad():
        model.bias[0] += 1e-6
    assert bundle_sha256(_save(tmp_path / "three", model, META)) != bundle_sha256(one)  # one value changed


def test_a_model_only_bundle_names_its_run_and_an_unstamped_one_says_so(tmp_path):
    from harness.run.evaluate import open_checkpoint, provenance
    from harness.models.bundle import CheckpointError, run_stamp
    from harness.training.checkpoint import save_model

    save_model(tmp_path / "best", torch.nn.Linear(4, 2), META, run_key=run_stamp(META["run"]))  # best-val's bundle
    assert open_checkpoint(str(tmp_path / "best")).identity.run_key == run_stamp(META["run"])
    save_model(tmp_path / "other", torch.nn.Linear(4, 2), META, run_key=run_stamp({"seed": 1}))
    with pytest.raises(CheckpointError, match="saved by another run"):
        open_checkpoint(str(tmp_path / "other"))
    save_model(tmp_path / "old", torch.nn.Linear(4, 2), META)  # saved before stamps existed
    found = open_checkpoint(str(tmp_path / "old"))
    assert found.identity.run_key is None
    assert provenance(found)["origin_check"].startswith("model.json alone")


def test_the_bundle_sha256_covers_model_json(tmp_path):
    from harness.models.bundle import bundle_identity

    folder = _save(tmp_path / "b", torch.nn.Linear(4, 2), META)
    before = bundle_identity(folder)
    (folder / "model.json").write_text(json.dumps({**META, "input": {"scale": "unit"}}))
    after = bundle_identity(folder)
    assert after.tensors == before.tensors and after.model_json != before.model_json and after.sha256 != before.sha256
    (folder / "model.json").write_text(json.dumps(META, indent=4))  # the same content, written otherwise
    assert bundle_identity(folder).sha256 == before.sha256


def test_a_truncated_weights_file_is_one_line(tmp_path):
    from harness.models.bundle import CheckpointError, bundle_sha256

    folder = _save(tmp_path / "b", torch.nn.Linear(64, 64), META)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated"):
        bundle_sha256(folder)


# ------------------------------------------------------------------------------------------------
# Evaluation ids through the real CLI, on copies of the shared tiny demo
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tiny_demo: TinyDemo, tmp_path_factory) -> dict:
    """Copies of the tiny demo's two runs and its cache, and seed 0's checkpoint evaluated once."""
    root = tmp_path_factory.mktemp("identity")
    cache = tiny_demo.copy_cache(root / "cache")
    seed0, seed1 = root / "seed0", root / "seed1"
    shutil.copytree(tiny_demo.seed0, seed0)
    shutil.copytree(tiny_demo.seed1, seed1)
    _harness("evaluate", "--checkpoint", seed0, "--demo-scale", "tiny", "--runs-dir", root / "evaluated", cache=cache, cwd=root)
    evaluated = next((root / "evaluated").glob("eval-*/results.json")).parent
    return {"root": root, "cache": cache, "seed0": seed0, "seed1": seed1, "evaluated": evaluated,
            "seed0_id": tiny_demo.seed0.name, "seed1_id": tiny_demo.seed1.name}


def _dry_run(work: dict, checkpoint: Path, *extra: str) -> dict:
    result = runner.invoke(build_app(), ["evaluate", "--checkpoint", str(checkpoint), "--dry-run", *extra],
                           env={"HARNESS_CACHE": str(work["cache"])})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_the_results_record_what_the_id_is_a_hash_of(work):
    from harness.common.digest import sha256_json
    from harness.data.demo import DEMO_VERSION

    results = json.loads((work["evaluated"] / "results.json").read_text())
    identity = results["identity"]
    planned = _dry_run(work, work["seed0"], "--demo-scale", "tiny")
    assert results["run_id"] == planned["run_id"] == work["evaluated"].name
    assert results["run_id"].endswith("-" + sha256_json(identity)[:10])  # the id is a hash of the recorded identity
    assert identity == planned["identity"]
    assert identity["bundle_sha256"] == results["provenance"]["sha256"] == planned["sha256"]
    assert identity["crop"] == results["config"]["crop"]
    assert identity["eval"]["eval"]["frames_per_video"] == 3 and identity["eval"]["demo"] is True
    assert identity["test"]["ffpp"]["demo_version"] == DEMO_VERSION and identity["test"]["ffpp"]["demo"]["test_pairs"] == 2
    assert results["provenance"]["origin"] == {"harness_run": work["seed0_id"]}
    assert "stamp" in results["provenance"]["origin_check"]


@pytest.mark.slow
def test_an_edited_model_json_is_another_evaluation(work, tmp_path):
    """The issue's case: an edited input scale was "already evaluated" and served the old scores."""
    run = tmp_path / "seed0"
    shutil.copytree(work["seed0"], run)
    before = _dry_run(work, run, "--demo-scale", "tiny")
    meta_path = run / "checkpoint" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "input": {"scale": "unit"}}))
    after = _dry_run(work, run, "--demo-scale", "tiny")
    assert after["run_id"] != before["run_id"] and after["sha256"] != before["sha256"]
    assert after["identity"]["tensors_sha256"] == before["identity"]["tensors_sha256"]
    meta_path.write_text(json.dumps(meta, indent=1))  # the same content again: the same id
    assert _dry_run(work, run, "--demo-scale", "tiny")["run_id"] == before["run_id"]


@pytest.mark.slow
def test_the_demo_scale_is_part_of_the_id(work):
    tiny = _dry_run(work, work["seed0"], "--demo-scale", "tiny")
    default = _dry_run(work, work["seed0"], "--demo-scale", "default")  # left out: the checkpoint's (tiny)
    assert _dry_run(work, work["seed0"])["run_id"] == tiny["run_id"]
    assert tiny["run_id"] != default["run_id"]
    assert tiny["identity"]["test"]["ffpp"]["demo"] != default["identity"]["test"]["ffpp"]["demo"]


@pytest.mark.slow
def test_the_test_files_content_and_labels_are_part_of_the_id(work, tmp_path):
    videos = next((work["cache"] / "demo").iterdir())
    real = videos / "original_sequences" / "youtube" / "c23" / "videos" / "006.mp4"
    fake = next((videos / "manipulated_sequences").glob("*/c23/videos/006_007.mp4"))
    shutil.copy(real, tmp_path / "a.mp4")
    shutil.copy(fake, tmp_path / "b.mp4")
    csv = tmp_path / "test.csv"
    csv.write_text("path,label\na.mp4,0\nb.mp4,1\n")

    def run_id() -> str:
        return _dry_run(work, work["seed0"], "--test-csv", str(csv))["run_id"]

    base = run_id()
    assert run_id() == base
    csv.write_text("path,label\na.mp4,0\nb.mp4,0\n")  # a label changed
    assert run_id() != base
    csv.write_text("path,label\na.mp4,0\nb.mp4,1\n")
    assert run_id() == base
    shutil.copy(real, tmp_path / "b.mp4")  # the same name, other content
    stat = (tmp_path / "b.mp4").stat()
    os.utime(tmp_path / "b.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert run_id() != base


@pytest.mark.slow
def test_a_model_json_beside_another_runs_weights_is_refused(work, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(work["seed0"] / "checkpoint" / "model.json", mixed / "model.json")
    shutil.copy(work["seed1"] / "checkpoint" / "model.safetensors", mixed / "model.safetensors")
    result = runner.invoke(build_app(), ["evaluate", "--checkpoint", str(mixed), "--demo-scale", "tiny", "--dry-run"],
                           env={"HARNESS_CACHE": str(work["cache"])})
    one_line_exit_2(result, str(mixed), f"names run {work['seed0_id']}", "saved by another run", "different checkpoints")


@pytest.mark.slow
def test_a_second_evaluate_on_the_same_id_refuses_naming_the_owner(work, tmp_path):
    """A live owner (this test process, as another evaluation would be) holds the id's lock."""
    from harness.data.claims import host_id

    runs = tmp_path / "runs"
    rid = _dry_run(work, work["seed1"], "--demo-scale", "tiny")["run_id"]
    (runs / rid).mkdir(parents=True)
    (runs / rid / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": host_id(), "heartbeat": time.time()}))
    proc = _harness("evaluate", "--checkpoint", work["seed1"], "--demo-scale", "tiny", "--runs-dir", runs,
                    cache=work["cache"], cwd=work["root"], check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"in use by pid {os.getpid()}" in lines[0] and rid in lines[0], proc.stderr
    assert not (runs / rid / "results.json").exists() and not (runs / rid / "scores").exists()


# ------------------------------------------------------------------------------------------------
# Publishing: one id, one set of numbers
# ------------------------------------------------------------------------------------------------
def _publish(path: Path, shipped: Path, board: Path):
    return runner.invoke(build_app(), ["leaderboard", "--publish", str(path), "--results", str(shipped), "--out", str(board)])


def test_publish_refuses_other_numbers_under_a_published_id(tmp_path):
    shipped, board = tmp_path / "shipped", tmp_path / "LEADERBOARD.md"
    first = make_results("eval-x-0123456789", "x", datasets={"celebdf": dataset_entry({"all": 0.594}, compression=None)})
    path = write_results(first, tmp_path / "mine")
    assert _publish(path, shipped, board).exit_code == 0
    published = next(shipped.glob("*.json"))
    again = make_results("eval-x-0123456789", "x", created="2025-04-01T12:00:00+00:00",
                         datasets={"celebdf": dataset_entry({"all": 0.594}, compression=None)})
    assert _publish(write_results(again, tmp_path / "again"), shipped, board).exit_code == 0  # the same numbers: fine
    published = next(shipped.glob("*.json"))
    other = make_results("eval-x-0123456789", "x", datasets={"celebdf": dataset_entry({"all": 0.531}, compression=None)})
    line = one_line_exit_2(_publish(write_results(other, tmp_path / "other"), shipped, board),
                           "already publishes run eval-x-0123456789 with other numbers", "auc/value", "nothing published")
    assert str(published) in line
    assert [p.name for p in shipped.glob("*.json")] == [published.name]
    assert json.loads(published.read_text())["datasets"]["celebdf"]["groups"]["all"]["video"]["auc"]["value"] == 0.594


def test_a_bundle_is_read_and_hashed_once_and_refused_when_changed_since(tiny_demo, tmp_path, monkeypatch):
    """One bundle type for every command: opened (model.json read, tensors hashed) once, loaded as a
    copy without hashing again; a bundle rewritten between the two is refused, not scored under the
    identity it had."""
    from harness.models import bundle as b

    folder = Path(shutil.copytree(b.resolve(tiny_demo.seed0), tmp_path / "checkpoint"))
    hashed = []
    real = b._tensor_parts
    monkeypatch.setattr(b, "_tensor_parts", lambda path: hashed.append(path) or real(path))
    opened = b.open_bundle(folder)
    loaded = opened.load("cpu")
    assert len(hashed) == 1 and loaded.model is not None and opened.model is None
    assert loaded.sha256 == opened.sha256 == b.bundle_sha256(folder)
    os.utime(folder / b.MODEL_FILE, ns=(0, 0))  # rewritten since it was hashed
    with pytest.raises(b.CheckpointError, match="changed while it was being evaluated"):
        opened.load("cpu")
