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
