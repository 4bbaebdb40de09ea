"""Messages that send the user the right way: advice that can work, flags that exist, resume hints."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from fixtures.builders import build_ffpp
from harness.cli import build_app
from harness.extend.types import DatasetLayoutError
from harness_plugins.datasets.ffpp import FFPP

runner = CliRunner()


def _rename_levels(root: Path, old: str, new: str) -> None:
    for level in root.rglob(old):
        if level.is_dir():
            level.rename(level.with_name(new))


def test_ffpp_upper_case_compression_folders_are_used(tmp_path):
    root = build_ffpp(tmp_path / "f", masks=False)
    _rename_levels(root, "c23", "C23")  # as some download mirrors lay it out
    records = list(FFPP(root, compression="c23").records("test"))
    assert len(records) == 10 and all(r.path.is_file() for r in records)


def test_ffpp_missing_level_advice_names_a_compression_that_works(tmp_path):
    root = build_ffpp(tmp_path / "f", masks=False)
    _rename_levels(root, "c23", "C40")
    problems = FFPP(root, compression="c23")._layout_problems()
    text = " ".join(problems)
    assert "--compression c40" in text and "compression=one of those" not in text
    assert list(FFPP(root, compression="c40").records("test"))  # and that advice works


def test_missing_videos_advice_names_a_real_cli_flag_that_works(tmp_path, monkeypatch):
    root = build_ffpp(tmp_path / "f", masks=False)
    (root / "manipulated_sequences" / "FaceSwap" / "c23" / "videos" / "006_007.mp4").unlink()
    try:
        list(FFPP(root).records("test"))
    except DatasetLayoutError as exc:
        assert "--allow-missing" in str(exc) and "dataset_options" in str(exc)
    else:
        raise AssertionError("missing videos were not reported")
    import harness.data.preprocess as pre

    seen = {}

    def fake_preprocess(records, cache, **kwargs):
        seen["records"] = list(records)
        return pre.PreprocessSummary(cache_root=str(cache))

    monkeypatch.setattr(pre, "preprocess", fake_preprocess)
    result = runner.invoke(build_app(), ["preprocess", "ffpp", "--root", str(root), "--allow-missing", "--cache", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert len(seen["records"]) == 9


def test_ctrl_c_in_preprocess_says_rerun_to_resume(tmp_path, monkeypatch):
    root = build_ffpp(tmp_path / "f", masks=False)
    import harness.data.preprocess as pre

    def interrupted(records, cache, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pre, "preprocess", interrupted)
    result = runner.invoke(build_app(), ["preprocess", "ffpp", "--root", str(root), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 130
    assert "run the same command again to resume" in result.output and "Traceback" not in result.output
