"""The probe of issue 21, bounded inputs and the smaller tracebacks: JSON and CSV readers cap size
and nesting and answer in one line (exit 2), never a RecursionError or MemoryError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.cli_checks import one_line_exit_2
from harness.cli import build_app

runner = CliRunner()
DEEP = "[" * 100_000 + "]" * 100_000


def test_config_from_an_endless_stream_is_one_line():
    one_line_exit_2(runner.invoke(build_app(), ["run", "--config", "/dev/zero", "--dry-run"]), "/dev/zero", "larger than")


def test_a_deeply_nested_config_is_one_line(tmp_path):
    (tmp_path / "deep.json").write_text(DEEP)
    one_line_exit_2(runner.invoke(build_app(), ["run", "--config", str(tmp_path / "deep.json"), "--dry-run"]),
                     "deep.json", "nests deeper")


def test_a_deeply_nested_protocol_file_is_one_line(tmp_path):
    (tmp_path / "deep.json").write_text(DEEP)
    (tmp_path / "results").mkdir()
    result = runner.invoke(build_app(), ["leaderboard", "--results", str(tmp_path / "results"), "--out",
                                         str(tmp_path / "L.md"), "--protocol", str(tmp_path / "deep.json")])
    one_line_exit_2(result, "deep.json", "nests deeper")


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
    one_line_exit_2(result, str(csv), needle)
    assert not (tmp_path / "cache").exists()


def test_bounded_readers_refuse_size_and_depth_in_one_line(tmp_path):
    from harness.common.bounded import InputFileError, read_bounded_text, read_json

    big = tmp_path / "big.json"
    big.write_text(" " * 2048)
    with pytest.raises(InputFileError, match="larger than"):
        read_bounded_text(big, "file", max_bytes=1024)
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"a": [[[[{"b": 1}]]]]}))
    assert read_json(nested, "x", max_depth=10) == {"a": [[[[{"b": 1}]]]]}
    with pytest.raises(InputFileError, match="nests deeper than 3"):
        read_json(nested, "x", max_depth=3)


def test_a_weights_file_torch_refuses_is_one_line_in_our_words(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.pth").write_bytes(b"not a torch file")
    result = runner.invoke(build_app(), ["run", "--data", "demo", "--pretrained", str(tmp_path / "evil.pth")])
    line = one_line_exit_2(result, "evil.pth", "never loaded")
    assert "weights_only=False" not in line and "will likely succeed" not in line
    assert not (tmp_path / "runs").exists()


def test_harness_plugins_naming_nothing_says_to_correct_the_variable():
    import subprocess
    import sys

    env = {**__import__("os").environ, "HARNESS_PLUGINS": "nosuch"}
    out = subprocess.run([sys.executable, "-m", "harness", "plugins"], env=env, capture_output=True, text=True,
                         timeout=120)
    text = " ".join((out.stdout + out.stderr).split())
    assert "correct HARNESS_PLUGINS (or unset it)" in text
    assert "uninstall ?" not in text and "(package ?)" not in text


def test_an_audio_only_mp4_is_reported_as_having_no_video_stream(tmp_path):
    import av
    import numpy as np

    data = tmp_path / "data"
    data.mkdir()
    with av.open(str(data / "voice.mp4"), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    (data / "test.csv").write_text("path,label\nvoice.mp4,1\n")
    result = runner.invoke(build_app(), ["preprocess", "--test-csv", str(data / "test.csv"), "--cache",
                                         str(tmp_path / "cache")])
    text = " ".join(result.output.split())
    assert "Traceback" not in text
    assert "no video stream" in text and "index out of range" not in text


def test_the_summary_says_why_a_metric_is_undefined():
    from harness.reporting.notes import end_notes

    reason = "needs both real and fake items; got 0 real and 4 fake"
    undefined = {"value": None, "ci_low": None, "ci_high": None, "n": 4, "undefined": reason}
    results = {"config": {"pretrained": False}, "training": {},
               "datasets": {"folder": {"groups": {"all": {"video": {"auc": undefined, "ap": undefined}}}}}}
    assert f"note: folder: video AUC and AP shown as '-': {reason}" in end_notes(results, None)
