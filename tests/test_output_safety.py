"""Issue 31, items 4 and 9 (output paths) and the dry run that wrote: a user-named output never
destroys what is there. An existing file or non-empty folder is refused in one line (exit 2) unless
--force; an output equal to, inside or around an input is refused even with --force; a full disk or a
read-only folder is one line before any work, and leaves no temporary file; `evaluate --dry-run`
writes nothing. Through the real command line (typer's runner, or a subprocess for fault injection)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fixtures.cli_checks import one_line_exit_2
from fixtures.tiny_demo import harness_env
from harness.cli import build_app

runner = CliRunner()


def sbi_checkpoint(path: Path) -> Path:
    """A random EfficientNet-B4 saved as SBI's training saves it (what `harness import sbi` reads)."""
    from efficientnet_pytorch import EfficientNet

    torch.manual_seed(0)
    net = EfficientNet.from_name("efficientnet-b4", num_classes=2)
    torch.save({"model": {f"net.{k}": v for k, v in net.state_dict().items()}, "epoch": 1}, path)
    return path


@pytest.fixture(scope="module")
def sbi_tar(tmp_path_factory) -> Path:
    return sbi_checkpoint(tmp_path_factory.mktemp("sbi") / "FFc23.tar")


def invoke(*args: object):
    return runner.invoke(build_app(), [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> list[str]:
    """Every path under ``folder`` (hidden ones included), for "nothing was written" checks."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


class Proc:
    """A subprocess's result, read like typer's (``output``, ``exit_code``) for one_line_exit_2."""

    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.output, self.exit_code = proc.stdout + proc.stderr, proc.returncode


def cli(cwd: Path, *args: object, fault: str | None = None, prefix: list[str] | None = None) -> Proc:
    env = harness_env(cwd / "cache")
    if fault:
        env["HARNESS_FAULT"] = fault
    return Proc(subprocess.run([*(prefix or []), sys.executable, "-m", "harness", *map(str, args)], cwd=cwd, env=env,
                               capture_output=True, text=True, timeout=300))


#: run a command without the capabilities that let root write in a read-only folder (util-linux)
DROP_BYPASS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]


def read_only_folder(path: Path) -> tuple[Path, list[str]]:
    """A 0o500 folder and the command prefix under which it is read-only: none for a normal user;
    for root (who writes anywhere) setpriv without the permission-bypass capabilities. Skips where
    neither works."""
    path.mkdir()
    path.chmod(0o500)
    probe = [sys.executable, "-c", "import os, sys; sys.exit(os.access(sys.argv[1], os.W_OK))", str(path)]
    for prefix in ([], DROP_BYPASS):
        if prefix and not shutil.which(prefix[0]):
            continue
        if subprocess.run([*prefix, *probe], capture_output=True).returncode == 0:
            return path, prefix
    pytest.skip("no way to make a folder read-only for this user (root without setpriv)")


# ------------------------------------------------------------------------------------------------
# harness import --out
# ------------------------------------------------------------------------------------------------
def test_import_refuses_a_folder_with_files_and_keeps_them(sbi_tar, tmp_path):
    thesis = tmp_path / "work"
    thesis.mkdir()
    (thesis / "thesis.txt").write_text("three years")
    one_line_exit_2(invoke("import", "sbi", sbi_tar, "--out", thesis), "--out", "not empty", "--force")
    assert listing(thesis) == ["thesis.txt"] and (thesis / "thesis.txt").read_text() == "three years"
    assert [p.name for p in tmp_path.iterdir()] == ["work"]  # no hidden .work.old beside it


def test_import_refuses_an_existing_file_and_the_input_itself(sbi_tar, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    before = digest(sbi_tar)
    one_line_exit_2(invoke("import", "sbi", sbi_tar, "--out", notes), "--out", "is a file")
    one_line_exit_2(invoke("import", "sbi", sbi_tar, "--out", sbi_tar, "--force"), "is the input")
    one_line_exit_2(invoke("import", "sbi", sbi_tar, "--out", sbi_tar.parent, "--force"), "contains the input")
    assert notes.read_text() == "mine" and listing(tmp_path) == ["notes.txt"]
    assert digest(sbi_tar) == before and listing(sbi_tar.parent) == ["FFc23.tar"]  # no hidden .FFc23.tar.old


def test_import_out_inside_the_input_file_or_under_a_file_is_one_line(sbi_tar, tmp_path):
    one_line_exit_2(invoke("import", "sbi", sbi_tar, "--out", sbi_tar / "bundle"), "inside the input")
    (tmp_path / "notes.txt").write_text("mine")
    one_line_exit_2(invoke("import", "sbi", sbi_tar, "--out", tmp_path / "notes.txt" / "bundle"), "which is a file")
    assert listing(tmp_path) == ["notes.txt"]


def test_import_into_a_new_or_empty_folder_and_force_replaces_a_bundle(sbi_tar, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke("import", "sbi", sbi_tar, "--out", empty).exit_code == 0
    assert listing(empty) == ["model.json", "model.safetensors"]
    (empty / "extra.txt").write_text("old")
    one_line_exit_2(invoke("import", "sbi", sbi_tar, "--out", empty), "not empty")
    result = invoke("import", "sbi", sbi_tar, "--out", empty, "--force")
    assert result.exit_code == 0, result.output
    assert listing(empty) == ["model.json", "model.safetensors"]  # replaced whole
    assert listing(tmp_path) == ["empty", "empty/model.json", "empty/model.safetensors"]  # nothing parked or left


@pytest.mark.slow
def test_import_on_a_full_disk_is_one_line_and_leaves_nothing(sbi_tar, tmp_path):
    proc = cli(tmp_path, "import", "sbi", sbi_tar, "--out", "bundle", fault="files.output:1:ENOSPC")
    one_line_exit_2(proc, "--out bundle", "No space left on device")
    assert not (tmp_path / "bundle").exists() and not list(tmp_path.glob(".bundle*"))


# ------------------------------------------------------------------------------------------------
# the other commands' outputs
# ------------------------------------------------------------------------------------------------
def results_folder(path: Path) -> Path:
    """A results folder holding one results file (a board is rendered from results)."""
    import json

    from test_results_factory import make_results

    path.mkdir()
    (path / "run.json").write_text(json.dumps(make_results()))
    return path


def test_leaderboard_out_never_overwrites_a_users_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results_folder(tmp_path / "results")
    Path("README.md").write_text("my paper")
    one_line_exit_2(invoke("leaderboard", "--results", "results", "--out", "README.md"), "--out README.md", "--force")
    assert Path("README.md").read_text() == "my paper"
    assert invoke("leaderboard", "--results", "results", "--out", "LB.md").exit_code == 0
    again = invoke("leaderboard", "--results", "results", "--out", "LB.md")  # its own board: re-rendered
    assert again.exit_code == 0, again.output
    assert invoke("leaderboard", "--results", "results", "--out", "README.md", "--force").exit_code == 0
    assert "Generated by `harness leaderboard`" in Path("README.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LB.md", "README.md", "results"]


def test_leaderboard_out_under_a_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results_folder(tmp_path / "results")
    Path("notes.txt").write_text("mine")
    one_line_exit_2(invoke("leaderboard", "--results", "results", "--out", "notes.txt/LB.md"), "which is a file")
    assert Path("notes.txt").read_text() == "mine"


def test_blend_preview_never_overwrites_a_file_or_its_image(tmp_path):
    import cv2

    from harness.data.sample_face import astronaut_face

    face, _ = astronaut_face(128)
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    before = digest(photo)
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"my figure")
    args = ["blend", "preview", "--blender", "sbi", "--n", "1", "--size", "64"]
    one_line_exit_2(invoke(*args, "--out", grid), "--out", "--force")
    one_line_exit_2(invoke(*args, photo, "--out", photo, "--force"), "is the input")
    assert grid.read_bytes() == b"my figure" and digest(photo) == before
    assert invoke(*args, "--out", grid, "--force").exit_code == 0
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png", "grid.png"]


def test_predict_out_never_overwrites_a_folder_or_writes_inside_its_input(tmp_path):
    import cv2

    from fixtures.builders import tiny_swin_run
    from harness.data.sample_face import astronaut_face

    run = tiny_swin_run(tmp_path / "run", 64)
    media = tmp_path / "media"
    media.mkdir()
    face, _ = astronaut_face(160, margin=0.6)
    cv2.imwrite(str(media / "face.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["predict", media / "face.png", "--checkpoint", run, "--threshold", "0.5"]
    one_line_exit_2(invoke(*args, "--out", out), "--out", "not empty", "--force")
    one_line_exit_2(invoke("predict", media, "--checkpoint", run, "--out", media / "preds"), "inside the input")
    one_line_exit_2(invoke(*args, "--out", tmp_path, "--force"), "contains the input")
    assert listing(out) == ["notes.txt"] and listing(media) == ["face.png"]
    result = invoke(*args, "--out", out, "--force")
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["face"] and (out / "face" / "contact_sheet.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media", "out", "run"]  # nothing parked beside it


def test_datasets_json_never_overwrites_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("report.json").write_text("mine")
    (tmp_path / "data").mkdir()  # an empty data root: nothing found
    one_line_exit_2(invoke("datasets", "--root", tmp_path / "data", "--json", "report.json"), "--json-out report.json", "--force")
    assert Path("report.json").read_text() == "mine"
    assert invoke("datasets", "--root", tmp_path / "data", "--json", "doctor.json").exit_code == 0
    assert invoke("datasets", "--root", tmp_path / "data", "--json", "doctor.json").exit_code == 0  # its own: rewritten
    Path("list.json").write_text('[{"name": "mine"}]')  # JSON, but not a doctor's report
    one_line_exit_2(invoke("datasets", "--root", tmp_path / "data", "--json", "list.json"), "--json-out list.json")


def test_run_and_evaluate_refuse_a_users_file_as_leaderboard(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("paper.md").write_text("mine")
    base = ["run", "--data", "demo", "--demo-scale", "tiny", "--dry-run"]
    one_line_exit_2(invoke(*base, "--leaderboard", "paper.md"), "--leaderboard paper.md", "existing file")
    assert Path("paper.md").read_text() == "mine" and not Path("runs").exists()


# ------------------------------------------------------------------------------------------------
# a read-only folder: one line before any work (the results folder used to fail after the evaluation)
# ------------------------------------------------------------------------------------------------
READ_ONLY_CASES = {
    "import --out": (["import", "sbi", "{sbi}", "--out", "{ro}/bundle"], "--out"),
    "leaderboard --out": (["leaderboard", "--results", "results", "--out", "{ro}/LB.md"], "--out"),
    "run --runs-dir": (["run", "--data", "demo", "--demo-scale", "tiny", "--runs-dir", "{ro}/runs"], "--runs-dir"),
    "run --results-dir": (["run", "--data", "demo", "--demo-scale", "tiny", "--results-dir", "{ro}/results"], "--results-dir"),
    "evaluate --results-dir": (["evaluate", "--checkpoint", "run", "--test-csv", "test.csv", "--results-dir", "{ro}"],
                               "--results-dir"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(READ_ONLY_CASES))
def test_an_output_in_a_read_only_folder_is_refused_before_any_work(case, sbi_tar, tmp_path):
    from fixtures.builders import tiny_swin_run

    folder, prefix = read_only_folder(tmp_path / "ro")
    results_folder(tmp_path / "results")
    tiny_swin_run(tmp_path / "run", 64)
    (tmp_path / "test.csv").write_text("path,label\nnone.png,0\n")
    args, option = READ_ONLY_CASES[case]
    proc = cli(tmp_path, *[a.format(sbi=sbi_tar, ro=folder) for a in args], prefix=prefix)
    one_line_exit_2(proc, option, "read-only")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()  # nothing started
    folder.chmod(0o700)
    assert listing(folder) == []


# ------------------------------------------------------------------------------------------------
# --dry-run writes nothing
# ------------------------------------------------------------------------------------------------
def test_evaluate_dry_run_of_a_foreign_file_writes_nothing(sbi_tar, tmp_path, monkeypatch):
    import json

    from harness.run.evaluate import open_checkpoint

    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HARNESS_CACHE", str(home))
    for name in ("real.jpg", "fake.jpg"):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "test.csv").write_text("path,label\nreal.jpg,0\nfake.jpg,1\n")
    before = listing(tmp_path)
    result = invoke("evaluate", "--checkpoint", f"sbi:{sbi_tar}", "--test-csv", "test.csv", "--dry-run")
    assert result.exit_code == 0, result.output
    # no imported bundle and no digest memo in the cache, no runs/
    assert listing(tmp_path) == before == ["fake.jpg", "home", "real.jpg", "test.csv"]
    assert listing(sbi_tar.parent) == ["FFc23.tar"]
    # what it reports is what the real import gives: the same cache folder and weights
    shown, real = json.loads(result.stdout), open_checkpoint(f"sbi:{sbi_tar}")
    assert (shown["checkpoint"], shown["sha256"]) == (str(real.directory), real.sha256)
    assert home in real.directory.parents and real.directory.is_dir()


def test_one_safe_name_keeps_both_rules_that_name_folders_on_disk():
    """The face cache's rule (each odd character one ``_``, any script's letters kept) and a run folder's
    (ASCII only, runs squeezed, ends trimmed, never empty) are one function; neither rule changed."""
    from harness.common.files import safe_name
    from harness.vocab.folder import RunFolder, file_stem

    assert safe_name("FF++/DF é") == "FF___DF_é"
    assert file_stem("FF++/DF é") == "FF_DF" and file_stem("..") == "dataset" and file_stem("_a b._") == "a_b"
    assert RunFolder(Path("r")).scores_file("Celeb-DF v2") == Path("r/scores/Celeb-DF_v2.csv")
