"""The end-of-run table in the terminal: one row per dataset and group, 80 columns wide."""

from __future__ import annotations

from typing import Any


def short_group(group: str) -> str:
    """The paper's short name of a group (protocol.json's ``short_names``), so the table fits 80 columns."""
    from harness.reporting.leaderboard_protocol import load_protocol

    return load_protocol().short_names.get(group, group)


def summary_table(results: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    from harness.reporting.results import SMALL_N_MARK, SMALL_N_NOTE

    # A light box, short group names and unwrapped numbers keep one row per line in an
    # 80-column terminal or CI log.
    table = Table(title=f"{results['name']}  (video-level AUC / AP / pixel IoU %, 95% CI; n = videos)",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("dataset", "group", "n"):
        table.add_column(col, no_wrap=True)
    for col in ("AUC", "AP", "pixel IoU"):
        table.add_column(col, justify="right", no_wrap=True)
    small = False
    for dname, block in results["datasets"].items():
        for group, metrics in block["groups"].items():
            video = metrics.get("video", {})
            auc, ap = video.get("auc"), video.get("ap")
            iou = metrics.get("pixel", {}).get("iou")
            n = auc.get("n") if auc else None
            table.add_row(
                dname, short_group(group), str(n if n is not None else block["counts"]["videos_scored"]),
                _fmt(auc), _fmt(ap), block.get("localization") or _fmt(iou),  # "n/a (no mask head)", never 0
            )
            small = small or SMALL_N_MARK in _fmt(auc) + _fmt(ap)
    detection = sorted({b["face_detection"] for b in results["datasets"].values() if b.get("face_detection")})
    notes = ([SMALL_N_NOTE] if small else []) + detection  # `--face-detector none`: no face was looked for
    if notes:
        table.caption = "\n".join(notes)
    return table


def _fmt(metric: dict[str, Any] | None) -> str:
    from harness.reporting.results import ci_note

    if not metric or metric.get("value") is None or metric["value"] != metric["value"]:
        return "-"
    low, high = metric.get("ci_low"), metric.get("ci_high")
    ci = f" [{100 * low:.1f},{100 * high:.1f}]" if low is not None and high is not None and low == low and high == high else ""
    note = ci_note(metric)
    return f"{100 * metric['value']:.1f}{ci}" + (f" {note}" if note else "")
