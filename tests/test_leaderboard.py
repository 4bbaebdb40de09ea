"""The leaderboard renderer: paper-shaped tables, CIs, marked reference rows, escaping, determinism, CLI."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.reporting import leaderboard as L
from harness.evaluation.groups import evaluate_groups
from harness.reporting.results import load_results, validate, write_results
from harness.extend.types import ScoreSet
from harness_plugins.evaluators.classification import auc
from test_results_factory import FFPP_METHODS, dataset_entry, ffpp_entry, make_results, metric

NASTY = "my|run *bold* _it_ `code` <script>alert(1)</script> [link](x) & ~x~"


def runs() -> list[dict]:
    full = make_results(
        "r-full",
        "swin full",
        blender_options={"multi_part": True, "local_deformation": True},
        datasets={
            "ffpp": ffpp_entry(0.991, 0.952, 0.973, 0.914, pixel={m: 0.9 for m in FFPP_METHODS}),
            "celebdf": dataset_entry({"all": 0.812}, compression=None),
            "dfdcp": dataset_entry({"all": 0.701}, compression=None, frame_offset=None),
            "dfdc": dataset_entry({"all": 0.655}, compression=None),
        },
    )
    resnet = make_results("r-resnet", "resnet50 full", backbone="resnet50",
                          blender_options={"multi_part": True, "local_deformation": True},
                          datasets={"ffpp": ffpp_entry(0.95, 0.93, 0.94, 0.90, frame_offset=None)})
    ablated = make_results("r-base", "base", blender_options={"multi_part": False, "local_deformation": False},
                           datasets={"ffpp": ffpp_entry(0.90, 0.85, 0.88, 0.80, compression="c40", failures=8)})
    sbi = make_results("r-sbi", "sbi baseline", blender="sbi",
                       datasets={"celebdf": dataset_entry({"all": 0.9}, compression=None)})
    demo = make_results("r-demo", NASTY, demo=True,
                        datasets={"folder": dataset_entry({"all": 0.5}, compression=None, frame_offset=None)})
    demo["datasets"]["folder"]["groups"]["all"]["video"]["auc"] = metric(None, undefined="only fakes in the folder")
    return [full, resnet, ablated, sbi, demo]


def section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def row(text: str, first_cells: str) -> list[str]:
    """The cells of the table row starting with ``first_cells`` (escaped pipes are not separators)."""
    line = next(l for l in text.splitlines() if l.startswith("| " + first_cells))
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_render_is_deterministic_whatever_the_input_order() -> None:
    data = runs()
    first = L.render(data)
    shuffled = data[:]
    random.Random(0).shuffle(shuffled)
    assert L.render(shuffled) == first
    assert L.render(json.loads(json.dumps(data))) == first
    assert first.endswith("\n") and not first.endswith("\n\n")


def test_table1_ffpp_per_method_with_cis_and_reference_row() -> None:
    text = section(L.render(runs()), "## Table 1")
    assert "#### Video-level AUC (%), FF++ test set, compression c23" in text
    assert "#### Video-level AUC (%), FF++ test set, compression c40" in text
    assert "#### Frame-level AUC (%), FF++ test set, compression c23" in text
    assert "| Method | Blender | Backbone | FF++ DF | FF++ F2F | FF++ FS | FF++ NT |" in text
    assert row(text, "swin full")[3:] == ["99.1 [98.1, 100.0] (n=280)", "95.2 [94.2, 96.2] (n=280)", "97.3 [96.3, 98.3] (n=280)", "91.4 [90.4, 92.4] (n=280)"]
    reference = row(text, "Xu et al. 2025 *(reported, paper Table 1)*")
    assert reference[3:] == ["99.95", "98.82", "99.88", "99.13"]
    assert "test compression is not stated" in text
    assert "sbi baseline" not in text  # no FF++ results


def test_table2_cross_dataset_with_sbi_and_laa_net_reference_rows() -> None:
    text = section(L.render(runs()), "## Table 2")
    assert "| Method | Blender | Backbone | CDF | DFDCP | DFDC |" in text
    assert row(text, "swin full")[3:] == ["81.2 [80.2, 82.2] (n=280)", "70.1 [69.1, 71.1] (n=280)", "65.5 [64.5, 66.5] (n=280)"]
    assert row(text, "sbi baseline")[3:] == ["90.0 [89.0, 91.0] (n=280)", "-", "-"]
    assert row(text, "Xu et al. 2025 *(reported, paper Table 2)*")[3:] == ["87.52", "72.25", "80.34"]
    assert row(text, "SBI *(reported, SBI, CVPR 2022)*")[3:] == ["93.18", "86.15", "72.42"]
    assert row(text, "LAA-Net + SBI *(reported, LAA-Net, CVPR 2024)*")[3:] == ["95.4", "-", "-"]
    frame = text[text.index("#### Frame-level") :]
    assert "reported" not in frame  # the papers report video-level numbers only
    assert row(frame, "swin full")[3:] == ["79.2 [78.2, 80.2] (n=8960)", "-", "63.5 [62.5, 64.5] (n=8960)"]


def test_table3_backbones_and_table4_ablation() -> None:
    text = L.render(runs())
    table3 = section(text, "## Table 3")
    names = [l.split("|")[2].strip() for l in table3.splitlines() if l.startswith("| ") and "Backbone" not in l]
    assert "base" not in names  # ablated runs are not the paper's full method
    assert row(table3, "resnet50 | resnet50 full")[2:] == ["95.0 [94.0, 96.0] (n=280)", "93.0 [92.0, 94.0] (n=280)", "94.0 [93.0, 95.0] (n=280)", "90.0 [89.0, 91.0] (n=280)"]
    assert row(table3, "vit-s | Xu et al. 2025 *(reported, paper Table 3)*")[2:] == ["97.0", "95.3", "96.2", "95.4"]
    table4 = section(text, "## Table 4")
    assert "| Multi-Part | Local Displacement Deformation | Method | Backbone |" in table4
    c40 = table4[table4.index("compression c40") :]
    assert row(c40, " |  | base")[4:] == ["90.0 [89.0, 91.0] (n=280)", "85.0 [84.0, 86.0] (n=280)", "88.0 [87.0, 89.0] (n=280)", "80.0 [79.0, 81.0] (n=280)"]
    assert row(table4, "✓ | ✓ | swin full")[3] == "swin"
    assert row(table4, "✓ |  | Xu et al. 2025 *(reported, paper Table 4)*")[4:] == ["97.0", "95.3", "96.2", "95.4"]
    assert "repeats its Table 3 ResNet50 row" in table4


def test_localization_all_metrics_and_caveats() -> None:
    text = L.render(runs())
    loc = section(text, "## Localization")
    assert "| Method | Group | Pixel AUC | IoU@0.5 | F1@0.5 | Frames |" in loc
    assert row(loc, "swin full | Deepfakes") [2:] == ["90.0 [89.0, 91.0]", "60.0 [59.0, 61.0]", "70.0 [69.0, 71.0]", "4480"]
    everything = section(text, "## All detection metrics")
    assert row(everything, "swin full | Deepfakes | frame")[3:] == [
        "97.1 [96.1, 98.1]", "97.6 [96.6, 98.6]", "0.9 [0.0, 1.9]", "92.1 [91.1, 93.1]", "8960"
    ]
    caveats = section(text, "## Counts and caveats")
    assert row(caveats, "base | FaceForensics++ | c40")[5:8] == ["280", "272", "8"]
    assert "(decode error) and 3 more listed in the results file" in caveats
    assert "undefined (only fakes in the folder)" in caveats
    assert "demo data: not a benchmark" in caveats


def test_user_names_are_escaped() -> None:
    text = L.render(runs())
    assert "<script>" not in text and "&lt;script&gt;" in text
    escaped = L.escape(NASTY)
    assert escaped == (
        r"my\|run \*bold\* \_it\_ \`code\` &lt;script&gt;alert(1)&lt;/script&gt; \[link\](x) &amp; \~x\~"
    )
    demo_row = row(section(text, "## All detection metrics"), escaped)
    assert len(demo_row) == 8  # the pipe in the name did not split the cell
    assert demo_row[3] == "n/a"
    assert L.escape("two\nlines") == "two lines"


def seeded(seed: int, cdf_auc: float, name: str = "swin full", backbone: str = "swin") -> dict:
    run = make_results(f"r-{backbone}-s{seed}", name, backbone=backbone, created=f"2025-03-0{seed + 1}T12:00:00+00:00",
                       datasets={"celebdf": dataset_entry({"all": cdf_auc}, compression=None)})
    run["config"]["seed"] = seed
    run["seeds"] = {"train": seed, "eval": seed, "bootstrap": seed}
    return run


def test_seeds_of_one_setup_show_their_spread_and_are_told_apart() -> None:
    runs_ = [seeded(0, 0.90), seeded(1, 0.92), seeded(2, 0.97), seeded(0, 0.5, backbone="resnet50")]
    text = L.render(runs_, reference={"rows": []})
    spread = section(text, "## Spread over training seeds")
    cells = row(spread, "swin full | Celeb-DF v2")
    # mean 93.0; sample SD sqrt((3^2 + 1^2 + 4^2) / 2) = 3.6; the resnet50 run is another setup
    assert cells[:7] == ["swin full", "Celeb-DF v2", "all", "0, 1, 2", "93.0", "3.6", "90.0 to 97.0"]
    # next to the spread, each seed's own value and bootstrap CI
    assert cells[7].startswith("0: 90.0") and "; 1: 92.0" in cells[7] and "; 2: 97.0" in cells[7]
    assert len([l for l in spread.splitlines() if l.startswith("| swin full")]) == 1
    table2 = section(text, "## Table 2")
    for label, auc_text in (("seed 1", "92.0"), ("seed 2", "97.0"), ("r-swin-s0", "90.0"), ("r-resnet50-s0", "50.0")):
        # a name and seed that two runs share falls back to the run id
        assert row(table2, f"swin full ({label})")[3].startswith(auc_text)
    # one seed per setup: no spread section
    assert "## Spread over training seeds" not in L.render([seeded(0, 0.9)], reference={"rows": []})


def test_reference_rows_can_be_left_out_and_empty_input_renders() -> None:
    text = L.render([], reference={"rows": []})
    assert "(reported, paper" not in text and "0 run(s)" in text
    shipped = L.render([])
    assert "99.95" in shipped and "93.18" in shipped and "*No results files yet." in shipped


def test_reference_file_holds_the_reported_numbers() -> None:
    ref = L.load_reference()
    values = {(r["table"], r["source"], r["backbone"], json.dumps(r.get("options"), sort_keys=True)): r["values"] for r in ref["rows"]}
    ffpp = {"Deepfakes": 99.95, "Face2Face": 98.82, "FaceSwap": 99.88, "NeuralTextures": 99.13}
    resnet = {"Deepfakes": 96.1, "Face2Face": 94.2, "FaceSwap": 95.8, "NeuralTextures": 94.2}
    vit = {"Deepfakes": 97.0, "Face2Face": 95.3, "FaceSwap": 96.2, "NeuralTextures": 95.4}
    assert values[("ffpp", "paper", "swin", "null")] == ffpp
    assert values[("cross", "paper", "swin", "null")] == {"celebdf": 87.52, "dfdcp": 72.25, "dfdc": 80.34}
    assert values[("cross", "sbi", "efficientnet-b4", "null")] == {"celebdf": 93.18, "dfdcp": 86.15, "dfdc": 72.42}
    assert values[("cross", "laa-net", "efficientnet-b4", "null")] == {"celebdf": 95.4}
    assert values[("backbones", "paper", "resnet50", "null")] == resnet
    assert values[("backbones", "paper", "vit-s", "null")] == vit
    assert values[("backbones", "paper", "swin", "null")] == ffpp
    off = json.dumps({"local_deformation": False, "multi_part": False}, sort_keys=True)
    mp = json.dumps({"local_deformation": False, "multi_part": True}, sort_keys=True)
    both = json.dumps({"local_deformation": True, "multi_part": True}, sort_keys=True)
    assert values[("ablation", "paper", "swin", off)] == resnet
    assert values[("ablation", "paper", "swin", mp)] == vit
    assert values[("ablation", "paper", "swin", both)] == ffpp
    assert all(r["level"] == "video" and r["metric"] == "auc" for r in ref["rows"])


def test_end_to_end_from_scores_to_markdown(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    groups = ["original"] * 30 + [m for m in FFPP_METHODS for _ in range(10)]
    labels = np.array([0 if g == "original" else 1 for g in groups])
    scores = ScoreSet("video", [f"v{i}" for i in range(70)], labels, rng.random(70) * 0.5 + 0.5 * labels, groups)
    results = make_results("e2e", "end to end")
    results["datasets"]["ffpp"]["groups"] = evaluate_groups([auc(n_boot=100)], seed=0, video=scores)
    write_results(results, tmp_path / "results")
    (tmp_path / "results" / "junk.json").write_text("[]")
    with pytest.warns(UserWarning, match="junk.json"):
        out = L.write_leaderboard(tmp_path / "results", tmp_path / "board" / "LEADERBOARD.md")
    text = out.read_text(encoding="utf-8")
    cell = row(section(text, "## Table 1"), "end to end")[3]
    value = results["datasets"]["ffpp"]["groups"]["Deepfakes"]["video"]["auc"]
    assert cell == f"{value['value'] * 100:.1f} [{value['ci_low'] * 100:.1f}, {value['ci_high'] * 100:.1f}] (n=40)"
    assert re.fullmatch(r"\d+\.\d \[\d+\.\d, \d+\.\d\] \(n=40\)", cell)


def test_cli_writes_and_checks(tmp_path: Path) -> None:
    from harness.cli import build_app

    app = build_app()
    results_dir = tmp_path / "results"
    write_results(make_results(), results_dir)
    out = tmp_path / "LEADERBOARD.md"
    cli = CliRunner()
    done = cli.invoke(app, ["leaderboard", "--results", str(results_dir), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text(encoding="utf-8") == L.render([make_results()], link_from=tmp_path, source=results_dir)
    assert cli.invoke(app, ["leaderboard", "--results", str(results_dir), "--out", str(out), "--check"]).exit_code == 0
    out.write_text("stale\n")
    stale = cli.invoke(app, ["leaderboard", "--results", str(results_dir), "--out", str(out), "--check"])
    assert stale.exit_code == 1 and "out of date" in stale.output
    missing = cli.invoke(app, ["leaderboard", "--results", str(tmp_path / "nope"), "--out", str(out)])
    assert missing.exit_code == 2 and "no such folder" in missing.output


def test_a_board_names_the_folder_it_was_built_from(tmp_path: Path) -> None:
    from harness.cli import build_app

    results_dir = tmp_path / "runs" / "results"
    write_results(make_results(), results_dir)
    beside, elsewhere = tmp_path / "runs" / "LEADERBOARD.md", tmp_path / "boards" / "L.md"
    for out in (beside, elsewhere):
        assert CliRunner().invoke(build_app(), ["leaderboard", "--results", str(results_dir), "--out", str(out)]).exit_code == 0
    assert "from ./results/*.json (next to this file)." in beside.read_text(encoding="utf-8").splitlines()[2]
    assert "from ../runs/results/*.json (relative to this file)." in elsewhere.read_text(encoding="utf-8").splitlines()[2]


@pytest.mark.parametrize("where", ["outside the project", "an empty folder"])
def test_no_results_is_one_line_naming_where_it_looked(where: str, tmp_path: Path, monkeypatch) -> None:
    from fixtures.cli_checks import one_line_exit_2
    from harness.cli import build_app

    monkeypatch.chdir(tmp_path)
    args = ["leaderboard"]
    if where == "an empty folder":
        (tmp_path / "empty").mkdir()
        args += ["--results", "empty", "--out", "L.md"]
    line = one_line_exit_2(CliRunner().invoke(build_app(), args), "no results in", "--results DIR")
    assert ("leaderboards/results (no such folder)" if where == "outside the project" else "empty (no *.json file in it)") in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if where == "outside the project" else ["empty"])


def test_shipped_leaderboard_is_rendered_from_the_shipped_results() -> None:
    """The repository's leaderboard must be exactly what its results files render to (no hand edits,
    no stale file after a renderer change: rerun `harness leaderboard`)."""
    root = Path(__file__).resolve().parents[1] / "leaderboards"
    results = load_results(root / "results")
    for path in sorted((root / "results").glob("*.json")):
        validate(json.loads(path.read_text()), source=str(path))  # every shipped file is schema-valid
    assert (root / "LEADERBOARD.md").read_text(encoding="utf-8") == L.render(results, link_from=root, source=root / "results")


def test_the_significance_marks_are_the_ones_the_caller_passes_in() -> None:
    """The board computes no test itself: evaluation's column_marks (or any test) is passed in, and
    each video-AUC column carries the marks it returns; without one, no column is marked."""
    asked = []

    def marks(rows, values, dataset, group, link_from):
        asked.append((dataset, group))
        return ["best" if i == 0 else "tied" for i in range(len(rows))]

    plain, marked = L.render(runs()), L.render(runs(), significance=marks)
    assert "▲" not in plain and "≈" not in plain
    assert ("ffpp", "Deepfakes") in asked and ("celebdf", "all") in asked
    from harness.reporting.board_tables import MARK_LEGEND

    assert " ▲ |" in marked and " ≈ |" in marked and MARK_LEGEND in marked and MARK_LEGEND not in plain
