"""The leaderboard's layout is data: the renderer names no dataset, group or blender, and a protocol
file of a plugin's own adds its dataset's display name, groups and tables."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.reporting import leaderboard as L
from harness.reporting.leaderboard_protocol import (
    PROTOCOL_PATH,
    ProtocolError,
    load_protocol,
    merge_protocols,
    parse_protocol,
)
from harness.reporting.results import write_results
from test_leaderboard import row, runs, section
from test_results_factory import dataset_entry, make_results

ROOT = Path(__file__).resolve().parents[1]

#: a plugin's dataset "deeperforensics" with two groups and a table of its own
EXTRA = {
    "datasets": {"dfo": {"title": "DeeperForensics-1.0", "groups": ["end_to_end", "reenact"]}},
    "tables": [
        {
            "id": "dfo-methods", "kind": "groups", "dataset": "dfo", "metric": ["auc", "AUC"],
            "title": "## DeeperForensics per method", "where": "DF-1.0 test set",
            "columns": [["end_to_end", "E2E"], ["reenact", "Reenact"]],
            "lead": [["Method", "method"], ["Backbone", "backbone"]],
        }
    ],
}


def _dfo_run() -> dict:
    return make_results("r-dfo", "dfo run", datasets={
        "dfo": dataset_entry({"reenact": 0.81, "end_to_end": 0.77, "all": 0.79}, compression=None),
    })


def _string_constants(path: Path) -> set[str]:
    """Every string literal of a module except docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings}


def test_the_renderer_names_no_dataset_group_or_blender_of_the_protocol() -> None:
    shipped = json.loads(PROTOCOL_PATH.read_text(encoding="utf-8"))
    names = set(shipped["datasets"]) | {g for d in shipped["datasets"].values() for g in d.get("groups", [])}
    names |= {v for t in shipped["tables"] for v in t.get("select", {}).get("equal", {}).values()}
    names |= {t["id"] for t in shipped["tables"]} | {"FF++", "sbi"}
    literals = _string_constants(ROOT / "harness" / "reporting" / "leaderboard.py")
    assert not {s for s in literals for n in names if n in s}


def test_the_shipped_protocol_lays_out_the_papers_four_tables() -> None:
    protocol = load_protocol()
    assert [t.id for t in protocol.tables] == ["ffpp", "cross", "backbones", "ablation"]
    assert list(protocol.titles) == ["ffpp", "celebdf", "dfdcp", "dfdc"]
    assert protocol.groups == ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
    assert load_protocol() is load_protocol()  # read once


def test_a_plugin_protocol_adds_its_dataset_title_groups_and_table(tmp_path: Path) -> None:
    extra = tmp_path / "dfo.json"
    extra.write_text(json.dumps(EXTRA))
    protocol = load_protocol([extra])
    text = L.render([_dfo_run()], reference={"rows": []}, protocol=protocol)
    table = section(text, "## DeeperForensics per method")
    assert "#### Video-level AUC (%), DF-1.0 test set, compression not recorded" in table
    assert row(table, "dfo run")[2:] == ["77.0 [76.0, 78.0] (n=280)", "81.0 [80.0, 82.0] (n=280)"]
    everything = section(text, "## All detection metrics")
    assert "#### DeeperForensics-1.0" in everything
    groups = [l.split("|")[2].strip() for l in everything.splitlines() if l.startswith("| dfo run")]
    assert groups[::2] == ["end\\_to\\_end", "reenact", "all"]  # the protocol's order, then "all"
    # the shipped tables are still there, and the shipped protocol is untouched
    assert "## Table 1: in-dataset evaluation on FF++" in text
    assert "DeeperForensics" not in L.render([_dfo_run()], reference={"rows": []})


def test_without_the_plugin_protocol_the_dataset_shows_by_its_name() -> None:
    text = L.render([_dfo_run()], reference={"rows": []})
    assert "#### dfo" in section(text, "## All detection metrics")
    # groups nobody named: sorted, "all" last
    groups = [l.split("|")[2].strip() for l in section(text, "## All detection metrics").splitlines()
              if l.startswith("| dfo run")]
    assert groups[::2] == ["end\\_to\\_end", "reenact", "all"]


def test_merging_replaces_by_name_and_id_and_copies() -> None:
    base = json.loads(PROTOCOL_PATH.read_text(encoding="utf-8"))
    renamed = {"datasets": {"ffpp": {"title": "FF++ (c23)"}},
               "tables": [{**base["tables"][1], "title": "## Cross"}],
               "metrics": {"score_columns": [["ap", "Average precision"], ["brier", "Brier"]], "percent": ["brier"]}}
    merged = merge_protocols(base, renamed)
    assert merged["datasets"]["ffpp"] == {"title": "FF++ (c23)", "groups": base["datasets"]["ffpp"]["groups"]}
    assert [t["id"] for t in merged["tables"]] == ["ffpp", "cross", "backbones", "ablation"]
    assert merged["tables"][1]["title"] == "## Cross"
    assert merged["metrics"]["score_columns"][1] == ["ap", "Average precision"]
    assert merged["metrics"]["score_columns"][-1] == ["brier", "Brier"] and "brier" in merged["metrics"]["percent"]
    assert base["tables"][1]["title"].startswith("## Table 2")  # the base dict was not changed
    text = L.render(runs(), protocol=parse_protocol(merged))
    assert "## Cross" in text and "## Table 2" not in text and "#### FF++ (c23)" in text


def test_the_table_rows_follow_the_protocol_selection(tmp_path: Path) -> None:
    data = json.loads(PROTOCOL_PATH.read_text(encoding="utf-8"))
    data["tables"][2]["select"] = {"equal": {"backbone": "resnet50"}}  # Table 3: resnet50 runs only
    text = L.render(runs(), protocol=parse_protocol(data))
    table3 = section(text, "## Table 3")
    assert row(table3, "resnet50 | resnet50 full")
    assert "swin full" not in table3


@pytest.mark.parametrize(
    "broken, message",
    [
        ({"tables": [{"id": "x", "kind": "pie", "title": "t"}]}, "kind must be one of"),
        ({"tables": [{"id": "x", "kind": "groups", "title": "t"}]}, "names its 'dataset'"),
        ({"tables": [{"id": "x", "kind": "datasets", "title": "t", "lead": [["M", "colour"]]}]}, "unknown field 'colour'"),
        ({"tables": [{"kind": "datasets", "title": "t"}]}, "needs 'id'"),
        ({"metrics": {"score_columns": ["auc"]}}, "list of \\[name, title\\] pairs"),
    ],
)
def test_a_broken_protocol_is_refused_with_the_key(broken: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_protocol(broken, "my.json")


def test_cli_protocol_option(tmp_path: Path) -> None:
    from harness.cli import build_app

    results = tmp_path / "results"
    write_results(_dfo_run(), results)
    extra = tmp_path / "dfo.json"
    extra.write_text(json.dumps(EXTRA))
    out = tmp_path / "LEADERBOARD.md"
    cli, app = CliRunner(), build_app()
    base = ["leaderboard", "--results", str(results), "--out", str(out)]
    done = cli.invoke(app, base + ["--protocol", str(extra)])
    assert done.exit_code == 0, done.output
    assert "## DeeperForensics per method" in out.read_text(encoding="utf-8")
    assert cli.invoke(app, base + ["--protocol", str(extra), "--check"]).exit_code == 0
    assert cli.invoke(app, base + ["--check"]).exit_code == 1  # without it the board differs
    (tmp_path / "bad.json").write_text("{not json")
    bad = cli.invoke(app, base + ["--protocol", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "bad.json" in bad.output
    both = cli.invoke(app, base + ["--protocol", str(extra), "--publish", str(tmp_path)])
    assert both.exit_code == 2 and "--publish" in both.output
