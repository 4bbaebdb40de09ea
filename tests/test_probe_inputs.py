"""The probe of issue 21, bounded inputs and the smaller tracebacks: JSON and CSV readers cap size
and nesting and answer in one line (exit 2), never a RecursionError or MemoryError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import build_app

runner = CliRunner()
DEEP = "[" * 100_000 + "]" * 100_000


def _one_line_exit_2(result, *needles: str) -> str:
    text = result.output
    assert "Traceback" not in text, text
    assert result.exit_code == 2, (result.exit_code, text)
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_config_from_an_endless_stream_is_one_line():
    _one_line_exit_2(runner.invoke(build_app(), ["run", "--config", "/dev/zero", "--dry-run"]), "/dev/zero", "larger than")


def test_a_deeply_nested_config_is_one_line(tmp_path):
    (tmp_path / "deep.json").write_text(DEEP)
    _one_line_exit_2(runner.invoke(build_app(), ["run", "--config", str(tmp_path / "deep.json"), "--dry-run"]),
                     "deep.json", "nests deeper")


def test_a_deeply_nested_protocol_file_is_one_line(tmp_path):
    (tmp_path / "deep.json").write_text(DEEP)
    (tmp_path / "results").mkdir()
    result = runner.invoke(build_app(), ["leaderboard", "--results", str(tmp_path / "results"), "--out",
                                         str(tmp_path / "L.md"), "--protocol", str(tmp_path / "deep.json")])
    _one_line_exit_2(result, "deep.json", "nests deeper")


def _folder(tmp_path: Path, csv_text: bytes) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    csv = tmp_path / "data" / "test.csv"
    csv.write_bytes(csv_text)
    return csv


@pytest.mark.parametrize("case,text,needle", [
    ("nul_byte", b"path,label\nvideos/a\x00b.mp4,1\n", "NUL byte"),
    ("semicolons", b"path;label\nvideos/a.mp4;1\nvideos/b.mp4;0\n", "separated by ';'"),
])
def test_a_test_csv_that_is_not_a_comma_separated_list_is_one_line(case, text, needle, tmp_path):
    csv = _folder(tmp_path, text)
    result = runner.invoke(build_app(), ["preprocess", "--test-csv", str(csv), "--cache", str(tmp_path / "cache")])
    _one_line_exit_2(result, str(csv), needle)
    assert not (tmp_path / "cache").exists()


def test_bounded_readers_refuse_size_and_depth_in_one_line(tmp_path):
    from harness.bounded import InputFileError, read_bounded_text, read_json

    big = tmp_path / "big.json"
    big.write_text(" " * 2048)
    with pytest.raises(InputFileError, match="larger than"):
        read_bounded_text(big, "file", max_bytes=1024)
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"a": [[[[{"b": 1}]]]]}))
    assert read_json(nested, "x", max_depth=10) == {"a": [[[[{"b": 1}]]]]}
    with pytest.raises(InputFileError, match="nests deeper than 3"):
        read_json(nested, "x", max_depth=3)
