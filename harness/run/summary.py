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


def comparison_table(models: list[tuple[dict[str, Any], str]], report: dict[str, Any] | None) -> Any:
    """Several models scored on one test set (`harness evaluate --checkpoint A --checkpoint B ...`):
    per dataset and group, each model's video AUC with its 95% CI and, for every model after the
    first, ΔAUC against the first with its paired bootstrap CI and DeLong p (``report``:
    harness.evaluation.compare.compare_runs of the same models, in order). ``models``: (results,
    run folder) each. Models are numbered, their names in the caption, to keep 80 columns."""
    from rich import box
    from rich.table import Table

    deltas = _delta_rows(report)
    table = Table(title="video-level AUC %, 95% CI; ΔAUC vs #1: paired bootstrap 95% CI, DeLong p",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0), caption_justify="left")
    for col in ("dataset", "group", "model", "n"):
        table.add_column(col, no_wrap=True)
    for col in ("AUC", "ΔAUC", "p"):
        table.add_column(col, justify="right", no_wrap=True)
    for dname, group in _dataset_groups([results for results, _ in models]):
        for i, (results, _) in enumerate(models):
            auc = results["datasets"].get(dname, {}).get("groups", {}).get(group, {}).get("video", {}).get("auc")
            delta, p = _delta_cells(deltas.get((i, dname, group)), i)
            table.add_row(dname if i == 0 else "", short_group(group) if i == 0 else "", f"#{i + 1}",
                          str(auc.get("n", "-")) if auc else "-", _fmt(auc), delta, p, end_section=i == len(models) - 1)
    table.caption = "\n".join(_comparison_notes(models, report))
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


def _delta_cells(row: dict[str, Any] | None, index: int) -> tuple[str, str]:
    if index == 0:
        return "baseline", ""
    if row is None:
        return "-", "-"
    if "undefined" in row:
        return "n/a", "-"  # fewer than two reals or fakes: DeLong's test is not defined
    return f"{100 * row['delta']:+.1f} [{100 * row['ci_low']:+.1f},{100 * row['ci_high']:+.1f}]", f"{row['p']:.3g}"


def _comparison_notes(models: list[tuple[dict[str, Any], str]], report: dict[str, Any] | None) -> list[str]:
    from harness.reporting.results import SMALL_N_MARK, SMALL_N_NOTE

    notes = [f"#{i}: {results['name']} ({folder})" for i, (results, folder) in enumerate(models, 1)]
    apart = sorted({(i, r["dataset"], r["only_a"], r["only_b"]) for i, comp in enumerate((report or {}).get("comparisons", []), 2)
                    for r in comp["rows"] if r["only_a"] or r["only_b"]})
    notes += [f"#{i} vs #1 on {d}: ΔAUC on the videos both scored ({b} scored by #{i} only, {a} by #1 only)"
              for i, d, a, b in apart]
    if any(SMALL_N_MARK in _fmt(auc) for auc in _aucs(models)):
        notes.append(SMALL_N_NOTE)
    return notes + sorted({b["face_detection"] for m, _ in models for b in m["datasets"].values() if b.get("face_detection")})


def _aucs(models: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    return [levels.get("video", {}).get("auc") or {} for results, _ in models for block in results["datasets"].values()
            for levels in block.get("groups", {}).values()]
