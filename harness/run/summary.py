"""The end-of-run table: one row per dataset and group, printed whole at any width (harness/common/ui.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.common.ui import Cell, Column, Listing, cell

IOU = "pixel IoU"


def short_group(group: str) -> str:
    """The paper's short name of a group (protocol.json's ``short_names``), so the table fits 80 columns."""
    from harness.reporting.leaderboard_protocol import load_protocol

    return load_protocol().short_names.get(group, group)


def summary_table(results: dict[str, Any]) -> Listing:
    """The results as a table: n as reals/fakes, each metric as value, CI and mark (stacked when
    narrow), and no pixel IoU column when no dataset of the run has one (a model without a mask head)."""
    from harness.reporting.results import SMALL_N_MARK, SMALL_N_NOTE

    table = Listing([Column("dataset"), Column("group"), Column("n real/fake", right=True), Column("AUC", right=True),
                     Column("AP", right=True), Column(IOU, right=True)], key_columns=2)
    reasons = []
    for dname, block in results["datasets"].items():
        for group, metrics in sorted(block["groups"].items(), key=lambda item: item[0] != "all"):  # "all" first
            video = metrics.get("video", {})
            iou = metrics.get("pixel", {}).get("iou")
            if iou is None and block.get("localization"):  # "n/a (no mask head)": never 0
                reasons.append(block["localization"])
            table.add_row(dname, short_group(group), _count(video.get("auc"), block), _fmt(video.get("auc")),
                          _fmt(video.get("ap")), _fmt(iou) if iou is not None or not block.get("localization") else cell("n/a"))
    table = table.without_empty(IOU, empty=("", "-", "n/a"))
    shown = [c.header for c in table.columns]
    table.title = f"{results['name']}  (video-level {' / '.join(h for h in ('AUC', 'AP', IOU) if h in shown)} %, 95% CI)"
    small = any(SMALL_N_MARK in c.text for row in table.rows for c in row)
    detection = sorted({b["face_detection"] for b in results["datasets"].values() if b.get("face_detection")})
    # `--face-detector none`: no face was looked for
    table.notes = ([SMALL_N_NOTE] if small else []) + [f"{IOU}: {r}" for r in sorted(set(reasons))] + detection
    return table


def _count(auc: dict[str, Any] | None, block: dict[str, Any]) -> str:
    """``reals/fakes`` scored in the group (the total where a results file predates the class counts)."""
    if auc and isinstance(auc.get("n_real"), int) and isinstance(auc.get("n_fake"), int):
        return f"{auc['n_real']}/{auc['n_fake']}"
    n = auc.get("n") if auc else None
    return str(n if n is not None else block["counts"]["videos_scored"])


def _fmt(metric: dict[str, Any] | None) -> Cell:
    """Percent value, 95% CI and its mark (``n<10``, ``no CI (1 real)``), as parts a narrow table stacks."""
    from harness.reporting.results import ci_note

    if not metric or metric.get("value") is None or metric["value"] != metric["value"]:
        return cell("-")
    low, high = metric.get("ci_low"), metric.get("ci_high")
    ci = f"[{100 * low:.1f},{100 * high:.1f}]" if low is not None and high is not None and low == low and high == high else ""
    return cell(f"{100 * metric['value']:.1f}", ci, ci_note(metric))


def comparison_table(models: list[tuple[dict[str, Any], str]], report: dict[str, Any] | None) -> Listing:
    """Several models scored on one test set (`harness evaluate --checkpoint A --checkpoint B ...`):
    per dataset and group, each model's video AUC with its 95% CI and, for every model after the
    first, ΔAUC against the first with its paired bootstrap CI and DeLong p (``report``:
    harness.evaluation.compare.compare_runs of the same models, in order). ``models``: (results,
    run folder) each. Models are numbered, their names in the notes, to keep 80 columns."""
    deltas = _delta_rows(report)
    table = Listing([Column("dataset"), Column("group"), Column("model"), Column("n", right=True),
                     Column("AUC", right=True), Column("ΔAUC", right=True), Column("p", right=True)], key_columns=3,
                    title="video-level AUC %, 95% CI; ΔAUC vs #1: paired bootstrap 95% CI, DeLong p")
    for dname, group in _dataset_groups([results for results, _ in models]):
        for i, (results, _) in enumerate(models):
            auc = results["datasets"].get(dname, {}).get("groups", {}).get(group, {}).get("video", {}).get("auc")
            delta, p = _delta_cells(deltas.get((i, dname, group)), i)
            table.add_row(dname, short_group(group), f"#{i + 1}", str(auc.get("n", "-")) if auc else "-", _fmt(auc), delta, p)
    table.notes = _comparison_notes(models, report)
    return table


def _dataset_groups(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Every (dataset, group) any model scored, in the order the models' results list them."""
    seen: dict[tuple[str, str], None] = {}
    for one in results:
        for dname, block in one["datasets"].items():
            for group in block.get("groups", {}):
                seen.setdefault((dname, group), None)
    return list(seen)


def _delta_rows(report: dict[str, Any] | None) -> dict[tuple[int, str, str], dict[str, Any]]:
    """compare_runs' rows by (model index, dataset, group); model 0 is the baseline."""
    rows = {}
    for i, comp in enumerate((report or {}).get("comparisons", []), 1):
        for row in comp["rows"]:
            rows[i, row["dataset"], row["group"]] = row
    return rows


def _delta_cells(row: dict[str, Any] | None, index: int) -> tuple[Cell, str]:
    if index == 0:
        return cell("baseline"), ""
    if row is None:
        return cell("-"), "-"
    if "undefined" in row:
        return cell("n/a"), "-"  # fewer than two reals or fakes: DeLong's test is not defined
    return cell(f"{100 * row['delta']:+.1f}", f"[{100 * row['ci_low']:+.1f},{100 * row['ci_high']:+.1f}]"), f"{row['p']:.3g}"


def _comparison_notes(models: list[tuple[dict[str, Any], str]], report: dict[str, Any] | None) -> list[str]:
    from harness.reporting.results import SMALL_N_MARK, SMALL_N_NOTE

    notes = [f"#{i}: {results['name']} ({folder})" for i, (results, folder) in enumerate(models, 1)]
    apart = sorted({(i, r["dataset"], r["only_a"], r["only_b"]) for i, comp in enumerate((report or {}).get("comparisons", []), 2)
                    for r in comp["rows"] if r["only_a"] or r["only_b"]})
    notes += [f"#{i} vs #1 on {d}: ΔAUC on the videos both scored ({b} scored by #{i} only, {a} by #1 only)"
              for i, d, a, b in apart]
    if any(SMALL_N_MARK in _fmt(auc).text for auc in _aucs(models)):
        notes.append(SMALL_N_NOTE)
    return notes + sorted({b["face_detection"] for m, _ in models for b in m["datasets"].values() if b.get("face_detection")})


def _aucs(models: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    return [levels.get("video", {}).get("auc") or {} for results, _ in models for block in results["datasets"].values()
            for levels in block.get("groups", {}).values()]



def outcome_lines(run_dir: Path, results_file: Path, board: Path | None, report: Path | None) -> list[str]:
    """Where a run's files are, one path a line."""
    return ([f"report: {report}"] if report else []) + [f"results: {results_file}"] + \
        ([f"leaderboard: {board}"] if board else []) + [f"run folder: {run_dir}"]


def print_outcome(results: dict[str, Any], run_dir: Path, results_file: Path, board: Path | None,
                  report: Path | None, hint: bool) -> None:
    """The end of a run or evaluation: its table and where its files are on stdout, its warnings on
    stderr; ``hint``: the command that publishes it, whole on one line (it is pasted)."""
    from harness.common.ui import console, print_table, say
    from harness.reporting.notes import end_notes

    print_table(summary_table(results))
    for line in end_notes(results, run_dir):  # where the weights came from; a collapsed model said here, not only in the log
        say(line, "bold yellow" if line.startswith("warning") else None, to=console)
    for line in outcome_lines(run_dir, results_file, board, report):
        say(line)
    if hint:
        say(f"to add it to the shipped leaderboard: harness leaderboard --publish {run_dir}", "dim")
