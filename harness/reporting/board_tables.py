"""The leaderboard's tables, as the protocol lays them out (``groups`` and ``datasets`` tables), with
the significance marks the caller passes in (harness.reporting.leaderboard renders the page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from harness.extend.types import ALL
from harness.reporting.leaderboard_protocol import BoardProtocol, TableSpec
from harness.reporting.board_rows import (
    LEVELS,
    LEVEL_TEXT,
    MISSING,
    _compression,
    _compression_text,
    _has_level,
    _interleave,
    _lead_cell,
    _metric,
    _number,
    _reference_lead_cell,
    _reference_notes,
    _reference_rows,
    _reported,
    _select,
    _table,
    escape,
    format_metric,
)


# ------------------------------------------------------------------------------------------------
# The protocol's tables
# ------------------------------------------------------------------------------------------------
def _table_head(table: TableSpec) -> list[str]:
    return [table.title, ""] + [line for text in table.intro for line in (text, "")]


def _heading(table: TableSpec, level: str, protocol: BoardProtocol, where: str = "") -> str:
    metric, title = table.metric
    unit = " (%)" if metric in protocol.percent else ""
    return f"#### {LEVEL_TEXT[level]} {title}{unit}, {table.where}" + (f", {where}" if where else "")


def _group_subtable(
    runs: list[Mapping[str, Any]],
    reference: Mapping[str, Any],
    table: TableSpec,
    protocol: BoardProtocol,
    key: tuple[str, str | None],
    significance: ColumnMarks | None = None,
    link_from: Path | None = None,
) -> list[str]:
    """One (level, compression) sub-table of a ``groups`` table; compression ``None``: reference
    rows alone ("as reported")."""
    level, compression = key
    dataset, metric = str(table.dataset), table.metric[0]
    groups = [g for g, _ in table.columns]
    shown = [run for run in runs
             if (_compression(run, dataset) or "") == compression and _has_level(run, dataset, groups, level, metric)]
    cells = [[format_metric(_metric(run, dataset, g, level, metric), metric, protocol.percent, with_n=True) for g in groups]
             for run in shown]
    refs = _reference_rows(reference, table, level)
    ref_cells = [[_reported(r.get("values", {}).get(g)) for g in groups] for r in refs]
    legend = _mark_cells(shown, cells, ref_cells, [(dataset, g) for g in groups], level, metric, link_from, significance) if significance else []
    run_rows = [[_lead_cell(run, f, [dataset]) for _, f in table.lead] + c for run, c in zip(shown, cells)]
    ref_rows = [[_reference_lead_cell(r, f) for _, f in table.lead] + c for r, c in zip(refs, ref_cells)]
    rows = _interleave(shown, run_rows, refs, ref_rows)
    where = "as reported" if compression is None else _compression_text(compression or None)
    header = [title for title, _ in table.lead] + [title for _, title in table.columns]
    lines = [_heading(table, level, protocol, where), ""]
    return lines + _table(header, rows, text_columns=len(table.lead)) + legend + _reference_notes(reference, refs)


def _groups_table(
    runs: list[Mapping[str, Any]], reference: Mapping[str, Any], table: TableSpec, protocol: BoardProtocol, **marks: Any
) -> list[str]:
    """One sub-table per (level, compression) of the table's dataset: both go in the heading."""
    runs = _select(runs, table)
    dataset, groups = str(table.dataset), [g for g, _ in table.columns]
    found = {
        (LEVELS.index(level), _compression(r, dataset) or "")
        for r in runs
        for level in LEVELS
        if _has_level(r, dataset, groups, level, table.metric[0])
    }
    keys: list[tuple[str, str | None]] = [(LEVELS[i], c) for i, c in sorted(found)]
    if not keys:  # no runs yet: the reported numbers alone
        keys = [(level, None) for level in LEVELS if _reference_rows(reference, table, level)]
    lines = [line for key in keys for line in _group_subtable(runs, reference, table, protocol, key, **marks)]
    return _table_head(table) + (lines or [table.empty, ""])


def _dataset_column(runs: list[Mapping[str, Any]], dataset: str, title: str) -> str:
    """A dataset's column title, with the compressions its runs were tested at."""
    seen = sorted({_compression(r, dataset) for r in runs if dataset in r.get("datasets", {})} - {None})
    return title + (f" ({escape('/'.join(seen))})" if seen else "")


def _datasets_subtable(
    runs: list[Mapping[str, Any]], reference: Mapping[str, Any], table: TableSpec, protocol: BoardProtocol, level: str,
    significance: ColumnMarks | None = None, link_from: Path | None = None,
) -> list[str]:
    """One level of a ``datasets`` table: a column per dataset, its ``all`` group."""
    names, metric = [d for d, _ in table.columns], table.metric[0]
    runs = [r for r in runs if any(_metric(r, d, ALL, level, metric) for d in names)]
    refs = _reference_rows(reference, table, level)
    if not runs and not refs:
        return []
    header = [title for title, _ in table.lead] + [_dataset_column(runs, d, title) for d, title in table.columns]
    cells = [[format_metric(_metric(run, d, ALL, level, metric), metric, protocol.percent, with_n=True) for d in names]
             for run in runs]
    ref_cells = [[_reported(r.get("values", {}).get(d)) for d in names] for r in refs]
    legend = _mark_cells(runs, cells, ref_cells, [(d, ALL) for d in names], level, metric, link_from, significance) if significance else []
    run_rows = [[_lead_cell(run, f, names) for _, f in table.lead] + c for run, c in zip(runs, cells)]
    ref_rows = [[_reference_lead_cell(r, f) for _, f in table.lead] + c for r, c in zip(refs, ref_cells)]
    rows = _interleave(runs, run_rows, refs, ref_rows)
    lines = [_heading(table, level, protocol), ""]
    return lines + _table(header, rows, text_columns=len(table.lead)) + legend + _reference_notes(reference, refs)


def _datasets_table(
    runs: list[Mapping[str, Any]], reference: Mapping[str, Any], table: TableSpec, protocol: BoardProtocol, **marks: Any
) -> list[str]:
    runs = _select(runs, table)
    lines = [line for level in LEVELS for line in _datasets_subtable(runs, reference, table, protocol, level, **marks)]
    return _table_head(table) + (lines or [table.empty, ""])


TABLE_RENDERERS = {"groups": _groups_table, "datasets": _datasets_table}

#: The significance test the caller passes in (harness.evaluation.significance.column_marks): per
#: run, its mark in one column from (runs, the column's values, dataset, group, link_from).
ColumnMarks = Callable[[list[Mapping[str, Any]], list[Optional[float]], str, str, Optional[Path]], list[Optional[str]]]

#: --significance marks (video-level AUC columns): best, not significantly different from it, not testable
MARK_TEXT = {"best": " ▲", "tied": " ≈", "untestable": " ?"}
MARK_LEGEND = ("▲ best measured row in its column; ≈ not significantly different from it (DeLong's test, p ≥ 0.05, on the videos "
               "both runs scored); ? not testable: no per-video scores (a paper's reported row, or a run folder not "
               "on this machine).")


def _mark_cells(runs: list[Mapping[str, Any]], cells: list[list[str]], ref_cells: list[list[str]],
                columns: list[tuple[str, str]], level: str, metric: str, link_from: Path | None,
                column_marks: ColumnMarks) -> list[str]:
    """Append the significance marks to ``cells`` (runs) and ``ref_cells`` (reported rows) in place;
    the legend lines. Only video-level AUC columns are tested (DeLong's test compares AUCs)."""
    if level != "video" or metric != "auc":
        return []
    for col, (dataset, group) in enumerate(columns):
        values = [_number((_metric(r, dataset, group, level, metric) or {}).get("value")) for r in runs]
        for row, mark in zip(cells, column_marks(runs, values, dataset, group, link_from)):
            row[col] += MARK_TEXT[mark] if mark else ""
        for row in ref_cells:
            row[col] += MARK_TEXT["untestable"] if row[col] != MISSING else ""
    return [MARK_LEGEND, ""]
