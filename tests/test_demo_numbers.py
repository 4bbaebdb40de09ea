"""The shipped numbers are the product's numbers: the README's demo block, the docs figure and the
shipped leaderboard row come from one demo run (`make demo-artifacts` writes all three), and these
tests fail when they drift apart. They read files only; nothing trains."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.reporting.demo_numbers import (DemoNumbersError, check_readme, docs_figures, find_block, render_block,
                                            shipped_demo_files)
from test_results_factory import dataset_entry, make_results

ROOT = Path(__file__).resolve().parents[1]


def _shipped_copy(tmp_path: Path) -> Path:
    """The README and the shipped results, copied so a test can damage them."""
    (tmp_path / "leaderboards").mkdir()
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "leaderboards" / "results", tmp_path / "leaderboards" / "results")
    return tmp_path / "README.md"


def test_the_readme_quotes_the_shipped_demo_run_and_the_docs_show_it() -> None:
    published = check_readme(ROOT / "README.md")
    assert shipped_demo_files(ROOT / "leaderboards" / "results") == [published]
    for target, source in docs_figures(json.loads(published.read_text()), ROOT).items():
        assert target.read_bytes() == source.read_bytes(), f"{target} is not the shipped run's figure {source}"


def test_a_number_the_shipped_results_do_not_hold_is_caught(tmp_path: Path) -> None:
    readme = _shipped_copy(tmp_path)
    block = find_block(readme.read_text())
    auc = block.split("**")[1]  # the first quoted number
    wrong = "12.5" if auc != "12.5" else "99.9"
    readme.write_text(readme.read_text().replace(block, block.replace(f"**{auc}**", f"**{wrong}**", 1)))
    with pytest.raises(DemoNumbersError, match=re.escape(f"{wrong} (results: {auc})")):
        check_readme(readme)


def test_a_second_shipped_demo_row_or_a_missing_block_is_caught(tmp_path: Path) -> None:
    readme = _shipped_copy(tmp_path)
    (published,) = shipped_demo_files(tmp_path / "leaderboards" / "results")
    shutil.copy(published, published.with_name("2020-01-01_other-demo.json"))
    with pytest.raises(DemoNumbersError, match="the shipped demo results are"):
        check_readme(readme)
    readme.write_text(readme.read_text().replace(find_block(readme.read_text()), "AUC 100 on everything"))
    with pytest.raises(DemoNumbersError, match="holds 0 demo-numbers blocks"):
        check_readme(readme)


def _demo_run(run_dir: Path, f2f: float) -> Path:
    """A finished demo run folder (results and its ROC figure) without training one."""
    results = make_results("multipart-mobilenetv2-0123456789", "demo", demo=True, datasets={
        "ffpp": dataset_entry({"Deepfakes": 1.0, "Face2Face": f2f, "all": 0.98}, pixel={"all": 0.8})})
    results["training"] = {"steps": 150}
    results["figures"] = {"run_dir": str(run_dir), "files": ["figures/roc_ffpp.png"]}
    (run_dir / "figures").mkdir(parents=True)
    (run_dir / "figures" / "roc_ffpp.png").write_bytes(b"\x89PNG roc " + str(f2f).encode())
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


def test_demo_artifacts_replaces_the_demo_row_and_rewrites_readme_and_docs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "leaderboards" / "results").mkdir(parents=True)
    other = make_results("swin-multipart-real", "a real run")
    (repo / "leaderboards" / "results" / "2025-03-01_swin-multipart-real.json").write_text(json.dumps(other))
    (repo / "README.md").write_text("# x\n\nbefore\n<!-- demo-numbers: begin -->\nold numbers\n<!-- demo-numbers: end -->\nafter\n")
    for f2f in (0.875, 0.969):  # the second publication replaces the first demo row
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "demo_artifacts.py"), "--repo", str(repo),
                               "--run", str(_demo_run(tmp_path / f"run-{f2f}", f2f))], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    published = check_readme(repo / "README.md")
    text = (repo / "README.md").read_text()
    assert "**96.9** on the expression warp (Face2Face)" in text and "87.5" not in text
    assert text.startswith("# x\n\nbefore\n") and text.endswith("\nafter\n")
    assert sorted(p.name for p in (repo / "leaderboards" / "results").glob("*.json")) == [
        "2025-03-01_multipart-mobilenetv2-0123456789.json", "2025-03-01_swin-multipart-real.json"]
    assert (repo / "docs" / "demo_roc.png").read_bytes() == b"\x89PNG roc 0.969"
    assert "a real run" in (repo / "leaderboards" / "LEADERBOARD.md").read_text()
    assert published.name == "2025-03-01_multipart-mobilenetv2-0123456789.json"


def test_the_block_is_rendered_from_the_results_alone() -> None:
    results = make_results("r", demo=True, datasets={"ffpp": dataset_entry({"Deepfakes": 0.5, "Face2Face": 1.0, "all": 0.75},
                                                                            pixel={"all": 0.7})})
    results["training"] = {"steps": 7}
    results["hardware"].update(threads=2, cpu_kernels="AVX2")
    block = render_block(results, "leaderboards/results/x.json")
    assert "**50.0** on the face swap (Deepfakes) and **100.0** on the expression warp (Face2Face)" in block
    assert "pixel IoU **40.0 %**" in block and "7 training steps" in block and "(2 torch threads, AVX2 kernels)" in block
