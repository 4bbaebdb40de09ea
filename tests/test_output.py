"""Output for terminals and pipes: tables and listings on stdout, logs on stderr; at 80 and at 200
columns no table cuts a name, a number or a path (every cell's text, or each of its parts where a
narrow table stacks them, appears whole on one line); a pipe gets whole rows, no colour, no rules."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from fixtures.tiny_demo import TINY, harness_env
from harness.cli import build_app
from harness.common.ui import Column, Listing, cell, print_table, table_lines

WIDTHS = (80, 200)
ELLIPSIS = "…"


def invoke(*args: object, width: int | None = None, env: dict[str, str] | None = None):
    """The real command line in-process; stdout and stderr apart (CliRunner's streams are pipes)."""
    return CliRunner().invoke(build_app(), [str(a) for a in args], catch_exceptions=False,
                              env={"COLUMNS": str(width) if width else None, **(env or {})})  # None: unset


def parts(table: Listing, optional: bool = True) -> list[str]:
    """What must appear whole: every part of every cell (a narrow table may stack them); without
    ``optional``, only those of the columns a narrow table keeps."""
    keep = [optional or not column.optional for column in table.columns]
    return [p for row in table.rows for c, k in zip(row, keep) if k for p in c.parts if p]


def assert_whole(texts: list[str], output: str) -> None:
    lines = output.splitlines()
    missing = [t for t in texts if not any(t in line for line in lines)]
    assert not missing, f"cut or missing: {missing[:5]}\n{output}"
    assert ELLIPSIS not in output


# -- the layout (harness/common/ui.py) ----------------------------------------------------------
def sample_table() -> Listing:
    table = Listing([Column("name"), Column("score", right=True), Column("path", optional=True),
                     Column("description", prose=True)], title="a table", key_columns=1)
    for i in range(3):
        table.add_row(f"efficientnet-lite{i}", cell(f"{i}0.5", f"[{i}0.1,{i}0.9]", "n<10"),
                      f"/very/long/path/number/{i}/" + "x" * 40, "free text " * 8 + "pip install 'pkg[extra]'")
    return table


@pytest.mark.parametrize("width", [10, 30, 60, 80, 120, 200, 400, None])
def test_every_layout_keeps_every_part_whole(width):
    table = sample_table()
    lines = [line.plain for line in table_lines(table, width)]
    text = "\n".join(lines)
    assert_whole(parts(table, optional=False), text)
    assert "/very/long/path/number/2/" + "x" * 40 in text or f"not shown at {width} columns: path" in text
    assert "pkg[extra]" in text  # cell text is data, never markup


def test_the_layouts_in_turn():
    """Wide: one line a row. Then free text beneath its row, stacked parts, an optional column left
    out (and said so), and last one record per row."""
    table = sample_table()

    def plain(width):
        return [line.plain for line in table_lines(table, width)]

    assert len(plain(None)) == 2 + 3 and all("free text" in line for line in plain(None)[2:])
    below = plain(110)
    assert any(line.startswith("    free text") for line in below) and all(len(line) <= 110 for line in below
                                                                           if not line.startswith("    "))
    assert "not shown at 60 columns: path (a wider terminal shows them)" in plain(60)
    assert [line for line in plain(60) if line.startswith("efficientnet")][0].split() == ["efficientnet-lite0", "00.5"]
    records = plain(20)
    assert "efficientnet-lite1" in records and any(line.split() == ["score", "10.5", "[10.1,10.9]", "n<10"] for line in records)


def test_a_terminal_gets_colour_and_a_rule_a_pipe_neither(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # a CI runner or an earlier test may set it
    terminal, pipe = io.StringIO(), io.StringIO()
    print_table(sample_table(), Console(file=terminal, force_terminal=True, width=80))
    print_table(sample_table(), Console(file=pipe, width=80))
    assert "\x1b[" in terminal.getvalue() and "─" in terminal.getvalue()
    assert "\x1b[" not in pipe.getvalue() and "─" not in pipe.getvalue()
    assert len(pipe.getvalue().splitlines()) == 2 + 3  # no COLUMNS: a pipe has no width


def test_a_column_nothing_has_is_left_out():
    table = Listing([Column("a"), Column("IoU"), Column("out")])
    table.add_row("x", "-", "")
    table.add_row("y", "0.5", "")
    assert [c.header for c in table.without_empty("IoU", "out").columns] == ["a", "IoU"]


# -- every command that prints a table, through the CLI ------------------------------------------
def test_plugins_pipe_holds_whole_rows_and_fits_80_columns():
    """`harness plugins | grep swin` finds swin's whole row; at 80 columns no name is cut (b4 and
    lite0 stay apart) and the columns left out are named."""
    rows = json.loads(invoke("plugins", "--json").stdout)["plugins"]
    piped = invoke("plugins")
    assert piped.exit_code == 0 and "\x1b[" not in piped.stdout
    swin = [line for line in piped.stdout.splitlines() if re.search(r" swin +0", line)]
    assert len(swin) == 1 and all(w in swin[0] for w in ("backbone", "timm_backbones", "Swin-T"))
    for width in WIDTHS:
        result = invoke("plugins", width=width)
        assert result.exit_code == 0 and result.stderr == ""
        assert_whole([r[k] for r in rows for k in ("name", "kind", "version", "description")], result.stdout)
        assert all(len(line) <= width for line in result.stdout.splitlines() if not line.startswith("    "))
    assert "efficientnet-b4 " in invoke("plugins", width=80).stdout
    assert "not shown at 80 columns: plugin (--json lists them)" in invoke("plugins", width=80).stdout


def test_datasets_doctor_keeps_every_path_whole(tmp_path, only_plugins):
    from harness.commands.datasets import collect_reports, doctor_table

    only_plugins("ffpp,celebdf,dfdc,dfdcp,folder")
    root = tmp_path / ("a-data-root-" + "deep" * 12)
    root.mkdir()  # a --root that does not exist is refused
    expected = parts(doctor_table(collect_reports(root)))
    assert any(str(root) in p for p in expected)
    for width in WIDTHS:
        result = invoke("datasets", "--root", root, width=width)
        assert_whole(expected, result.stdout)


@pytest.fixture(scope="module")
def finished(tiny_demo, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the tiny demo's seed-0 run folder, in a runs folder of its own."""
    runs = tmp_path_factory.mktemp("finished") / "runs"
    shutil.copytree(tiny_demo.seed0, runs / tiny_demo.seed0.name)
    return runs, runs / tiny_demo.seed0.name


def test_results_table_whole_at_80_and_200_columns(tiny_demo, finished):
    """`harness run` of a finished run prints its results table on stdout (the line saying so on
    stderr): n as reals/fakes, every number whole, the publish command whole on one line."""
    from harness.run.summary import summary_table

    runs, run_dir = finished
    results = tiny_demo.results(0)
    expected = parts(summary_table(results))
    auc = results["datasets"]["ffpp"]["groups"]["all"]["video"]["auc"]
    for width in WIDTHS:
        result = invoke("run", *TINY, "--seed", "0", "--runs-dir", runs, width=width, env=harness_env(tiny_demo.cache))
        assert result.exit_code == 0, result.output
        assert "already finished" in result.stderr and "already finished" not in result.stdout
        assert_whole(expected, result.stdout)
        assert f"{auc['n_real']}/{auc['n_fake']}" in result.stdout and "n real/fake" in result.stdout
        grid = [line for line in result.stdout.splitlines() if line.startswith(("dataset ", "ffpp "))]
        assert grid and all(len(line) <= width for line in grid)
        assert f"to add it to the shipped leaderboard: harness leaderboard --publish {run_dir}" in result.stdout.splitlines()


def test_no_mask_head_leaves_out_pixel_iou(tiny_demo):
    from harness.evaluation.stage import NO_MASK_HEAD
    from harness.run.summary import IOU, summary_table

    results = tiny_demo.results(0)
    block = results["datasets"]["ffpp"]
    block["localization"] = NO_MASK_HEAD
    for metrics in block["groups"].values():
        metrics.pop("pixel", None)
    table = summary_table(results)
    assert IOU not in [c.header for c in table.columns] and IOU not in table.title
    assert f"{IOU}: {NO_MASK_HEAD}" in table.notes
    assert IOU in [c.header for c in summary_table(tiny_demo.results(0)).columns]


def test_predict_keeps_paths_and_scores_whole(tiny_demo):
    video = sorted((tiny_demo.cache / "demo").rglob("original_sequences/**/000.mp4"))[0]
    args = ("predict", video, "--checkpoint", tiny_demo.seed0, "--frames", "2")
    said = {}
    for width in reversed(WIDTHS):  # 200 columns first: its row gives the score to find whole at 80
        result = invoke(*args, width=width)
        assert result.exit_code == 0, result.output
        assert "--threshold overrides it" in result.stderr and "--threshold overrides" not in result.stdout
        said[width] = result.stdout
    row = next(line for line in said[200].splitlines() if line.startswith(str(video)))
    score = re.search(r"\s(\d\.\d{3})\s", row).group(1)
    for width in WIDTHS:
        assert_whole([str(video), score, "1 scored"], said[width])


def test_preprocess_summary_and_json(tmp_path):
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / f"face_{i}.png")
    (tmp_path / "test.csv").write_text("path,label\nface_0.png,real\nface_1.png,fake\nface_2.png,fake\n")
    base = ("preprocess", "--test-csv", tmp_path / "test.csv", "--detector", "none", "--crop-size", "48", "--frames", "1",
            "--cache-dir", tmp_path / ("cache-" + "long" * 15))
    summary = json.loads(invoke(*base, "--json").stdout)
    assert summary["done"] == 3
    for width in WIDTHS:
        result = invoke(*base, width=width)
        assert result.exit_code == 0, result.output
        assert_whole([summary["cache_root"], "already done (skipped)"], result.stdout)
        assert re.search(r"already done \(skipped\) +3$", result.stdout, re.M)


def test_compare_rows_are_whole_at_any_width(tiny_demo):
    args = ("compare", tiny_demo.seed0, tiny_demo.seed1, "--bootstrap", "100")
    rows = json.loads(invoke(*args, "--json").stdout)["comparisons"][0]["rows"]
    narrow, wide = (invoke(*args, width=w).stdout for w in WIDTHS)
    assert narrow == wide  # markdown: one line per row, whatever the terminal
    table = [line for line in narrow.splitlines() if line.startswith("| ffpp |")]
    assert len(table) == len(rows)


def test_a_subprocess_pipe_gets_no_colour():
    """The real process, stdout a pipe: no escape codes even with a terminal's COLUMNS."""
    env = harness_env(Path("/nonexistent-cache"))
    env["COLUMNS"] = "80"
    proc = subprocess.run([sys.executable, "-m", "harness", "plugins", "--kind", "backbone"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "\x1b[" not in proc.stdout and "swin-s" in proc.stdout


def test_a_stage_heading_in_a_log_is_a_plain_line(capsys):
    from harness.common.ui import heading

    heading("1/4 preprocess [x]")
    err = capsys.readouterr().err
    assert err == "== 1/4 preprocess [x] ==\n"  # no rule drawn to a width, no markup read
