"""Render the leaderboard markdown from results JSON files alone, deterministically.

Which tables there are, which datasets and groups they show and which metrics make which column
is data, not code: ``harness/reference/protocol.json`` lays out the paper's tables (Table 1: FF++
per method, Table 2: cross-dataset, Table 3: backbones, Table 4: ablation), read through
``harness.reporting.leaderboard_protocol``; this module names no dataset, blender or metric. After the
tables come localization numbers, every metric per group, each run's provenance and the
counts/caveats. Cells read ``99.1 [98.2, 99.8]``: the value and its bootstrap 95 % CI in percent.
Numbers reported by papers come from ``harness/reference/paper_results.json`` and are shown as
marked reference rows, never mixed in as measurements. Every name a user chose (runs, plugins,
datasets, groups) is escaped.

The same results give the same bytes: runs are sorted by (name, created, run_id), dicts are walked
in sorted order, and nothing depends on the clock or the file system order.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, Optional

from harness.common.files import atomic_write_text
from harness.reporting.leaderboard_protocol import OPTION_PREFIX, BoardProtocol, TableSpec, load_protocol
from harness.extend.types import ALL
from harness.reporting.results import SMALL_N_NOTE, ci_note, load_results
from harness.vocab.config import EXECUTION_FIELDS

REFERENCE_PATH = Path(__file__).resolve().parents[1] / "reference" / "paper_results.json"

LEVELS = ("video", "frame")
LEVEL_TEXT = {
    "video": "Video-level",
    "frame": "Frame-level",
}
DEMO_FLAG = "demo data: not a benchmark"
MISSING = "-"
MAX_FAILURES_SHOWN = 5


# ------------------------------------------------------------------------------------------------
# Formatting
# ------------------------------------------------------------------------------------------------
def escape(text: Any) -> str:
    """Markdown- and HTML-safe text for a table cell or list item (user-chosen names)."""
    text = " ".join(str(text).split())  # no newline may break a table row
    text = html.escape(text, quote=False)  # & < >
    return "".join("\\" + c if c in "\\|*_`[]~" else c for c in text)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def format_metric(metric: Mapping[str, Any] | None, name: str, percent: Collection[str] | None = None,
                  with_n: bool = False) -> str:
    """``99.1 [98.2, 99.8]`` (percent metrics) or ``0.123 [0.100, 0.150]``; ``n/a`` when undefined;
    then ``n<10`` or ``no CI (1 real)`` where the CI is unreliable or absent (results.ci_note), and
    with ``with_n`` the item count: ``(n=280)``.

    ``percent``: the metrics printed as percentages; default: the shipped protocol's."""
    if not metric:
        return MISSING
    value = _number(metric.get("value"))
    if value is None:
        return "n/a"
    percent = load_protocol().percent if percent is None else percent
    scale, spec = (100.0, ".1f") if name in percent else (1.0, ".3g")
    text = format(value * scale, spec)
    low, high = _number(metric.get("ci_low")), _number(metric.get("ci_high"))
    if low is not None and high is not None:
        text += f" [{format(low * scale, spec)}, {format(high * scale, spec)}]"
    note = ci_note(metric)
    if note:
        text += f" {escape(note)}"
    if with_n and isinstance(metric.get("n"), int):
        text += f" (n={metric['n']})"
    return text


def _reported(value: Any) -> str:
    number = _number(value)
    return MISSING if number is None else repr(number)  # as printed: 99.95, 97.0, 95.4


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> list[str]:
    """A GFM table: the first ``text_columns`` columns left-aligned, numbers right-aligned."""
    align = [":---"] * text_columns + ["---:"] * (len(header) - text_columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _options_text(options: Mapping[str, Any]) -> str:
    if not options:
        return ""
    return ", ".join(f"{escape(k)}={escape(json.dumps(options[k], sort_keys=True))}" for k in sorted(options))


def _first_n(metrics: Mapping[str, Any]) -> str:
    """The sample count of a level's metrics (they share it), or ``-``."""
    n = next((m.get("n") for m in metrics.values() if isinstance(m, Mapping)), None)
    return MISSING if n is None else str(n)


# ------------------------------------------------------------------------------------------------
# Reading runs
# ------------------------------------------------------------------------------------------------
def _sort_key(run: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(run.get("name", "")), str(run.get("created", "")), str(run.get("run_id", "")))


#: config keys ("section.key" inside a section) that do not change a run's numbers: its seed and how
#: and where it ran (EXECUTION_FIELDS); runs equal but for these are seeds of one setup
NOT_RESULT_KEYS = ("seed", *EXECUTION_FIELDS)
DISPLAY = "display_name"  # set by render() on its own copies of the runs


def _setup_key(run: Mapping[str, Any]) -> str:
    """The run's configuration without its seed (and other keys that do not change results)."""
    cfg = dict(run.get("config", {}))
    for dotted in NOT_RESULT_KEYS:
        section, _, key = dotted.rpartition(".")
        if section:
            cfg[section] = dict(cfg.get(section, {}))  # a copy (a run without the section keys as an empty one)
        (cfg[section] if section else cfg).pop(key, None)
    return json.dumps([run.get("name"), cfg], sort_keys=True, default=str)


def _seed(run: Mapping[str, Any]) -> Any:
    return run.get("config", {}).get("seed", run.get("seeds", {}).get("train"))


def _with_display_names(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``runs`` whose label names the seed (or run id) wherever two runs share a name."""
    def name_of(run: Mapping[str, Any]) -> str:
        return str(run.get("name", run.get("run_id", "?")))

    names = Counter(name_of(r) for r in runs)
    name_seeds = Counter((name_of(r), str(_seed(r))) for r in runs)
    out = []
    for run in runs:
        name = name_of(run)
        if names[name] > 1:
            unique = name_seeds[(name, str(_seed(run)))] == 1
            name += f" (seed {_seed(run)})" if unique else f" ({run.get('run_id')})"
        out.append({**run, DISPLAY: name})
    return out


def _run_label(run: Mapping[str, Any], distinct: bool = True) -> str:
    """The run's name, marked when demo; ``distinct`` adds the seed or run id that tells apart
    runs sharing a name (a seed-spread row stands for all of them, so it leaves that out)."""
    label = escape((run.get(DISPLAY) if distinct else None) or run.get("name", run.get("run_id", "?")))
    if run.get("demo"):
        label += f" *({DEMO_FLAG})*"
    return label


def _metric(run: Mapping[str, Any], dataset: str, group: str, level: str, name: str) -> Mapping[str, Any] | None:
    entry = run.get("datasets", {}).get(dataset)
    if not entry:
        return None
    return entry.get("groups", {}).get(group, {}).get(level, {}).get(name)


def _compression(run: Mapping[str, Any], dataset: str) -> str | None:
    return run.get("datasets", {}).get(dataset, {}).get("compression")


def _compression_text(compression: str | None) -> str:
    return "compression not recorded" if compression is None else f"compression {escape(compression)}"


def _has_level(run: Mapping[str, Any], dataset: str, groups: Iterable[str], level: str, metric: str) -> bool:
    return any(_metric(run, dataset, g, level, metric) for g in groups)


def _switch(run: Mapping[str, Any], key: str) -> Any:
    return run.get("config", {}).get("blender_options", {}).get(key)


def _switch_cell(value: Any) -> str:
    if value is None:
        return "default"
    return "✓" if value else ""


def _field(run: Mapping[str, Any], name: str) -> Any:
    """A protocol field of a run: ``option:KEY`` (a blender option) or a config key."""
    if name.startswith(OPTION_PREFIX):
        return _switch(run, name[len(OPTION_PREFIX):])
    return run.get("config", {}).get(name)


def _lead_cell(run: Mapping[str, Any], name: str, tested: Iterable[str] = ()) -> str:
    if name == "method":
        return _run_label(run) + _overlap_note(run, tested)
    if name.startswith(OPTION_PREFIX):
        return _switch_cell(_field(run, name))
    return escape(run["config"][name])


def _select(runs: list[Mapping[str, Any]], table: TableSpec) -> list[Mapping[str, Any]]:
    """The runs ``table`` shows, in its order (``order_by`` fields, then name/created/run id).
    An ``option:`` field orders off before on ("default" counts as on, like a missing switch)."""
    def wanted(run: Mapping[str, Any]) -> bool:
        return all(str(_field(run, k)) == v for k, v in table.select_equal) and all(
            _field(run, k) is not False for k in table.select_not_false
        )

    def order(run: Mapping[str, Any]) -> tuple[Any, ...]:
        keys = tuple(
            _field(run, k) is not False if k.startswith(OPTION_PREFIX) else str(_field(run, k)) for k in table.order_by
        )
        return keys + _sort_key(run)

    return sorted((r for r in runs if wanted(r)), key=order)


# ------------------------------------------------------------------------------------------------
# Evaluated checkpoints (`harness evaluate`): their rows sit under the paper row they re-measure
# ------------------------------------------------------------------------------------------------
def _paper_row(run: Mapping[str, Any]) -> str | None:
    """The reference source (paper_results.json ``source``) an evaluated checkpoint re-measures."""
    origin = (run.get("provenance") or {}).get("origin") or {}
    return str(origin["paper_row"]) if origin.get("paper_row") else None


def _overlap_note(run: Mapping[str, Any], tested: Iterable[str]) -> str:
    """For an evaluated checkpoint: a note when a dataset it was trained on is among those shown."""
    training = (run.get("provenance") or {}).get("training") or {}
    trained = [str(d) for d in training.get("datasets", [])]
    both = [d for d in dict.fromkeys(tested) if d in trained and d in run.get("datasets", {})]
    if not both:
        return ""
    return f" *(trained on {escape(', '.join(both))} {escape(training.get('split', 'train'))} split: tested on its own training dataset)*"


def provenance_line(record: Mapping[str, Any]) -> str:
    """An evaluated checkpoint's origin and training data (markdown, escaped): report.md and the run list."""
    origin, training = record.get("origin") or {}, record.get("training") or {}
    if is_imported(record):
        return escape(imported_text(record))
    source = f"run {origin['harness_run']}" if origin.get("harness_run") else f"{origin.get('file', '?')} ({origin.get('source', '')})"
    return (f"evaluated checkpoint: {escape(source)}, weights sha256 {escape(str(record.get('sha256', ''))[:16])}; "
            f"trained on {escape(', '.join(training.get('datasets', [])) or '?')} {escape(training.get('split', ''))} "
            f"(as the checkpoint records it); heads: {escape(', '.join(record.get('heads', [])))}")


def is_imported(record: Mapping[str, Any] | None) -> bool:
    """Whether a results file's ``provenance`` is that of a model imported from elsewhere."""
    return bool(((record or {}).get("origin") or {}).get("importer"))


def imported_text(record: Mapping[str, Any]) -> str:
    """An imported model's provenance in plain text, the one wording of the console, report.md and
    the leaderboard: importer (version, options), file and its sha256, architecture, training data
    as the importer knows it, and that the harness trained nothing."""
    origin, training = record.get("origin") or {}, record.get("training") or {}
    version = f" v{origin['importer_version']}" if origin.get("importer_version") else ""
    options = "".join(f" {k}={v}" for k, v in sorted((origin.get("options") or {}).items()))
    source = f" ({origin['source']})" if origin.get("source") else ""
    datasets = ", ".join(str(d) for d in training.get("datasets") or []) or "unknown data"
    split = f" {training['split']}" if training.get("split") else ""
    known = f": {training['recorded_by']}" if training.get("recorded_by") else ""
    return (f"evaluated checkpoint: {origin.get('file', '?')} imported with {origin.get('importer')}{version}{options} as "
            f"{origin.get('architecture') or 'its network'}{source}; file sha256 {str(origin.get('file_sha256', ''))[:16]}, "
            f"weights sha256 {str(record.get('sha256', ''))[:16]}; trained on {datasets}{split} as the importer knows it"
            f"{known}; no harness training recipe; heads: {', '.join(record.get('heads', []))}")


def _interleave(runs: list[Mapping[str, Any]], run_rows: list[list[str]], refs: list[Mapping[str, Any]],
                ref_rows: list[list[str]]) -> list[list[str]]:
    """Measured rows, then each reference row directly followed by the evaluated checkpoints that
    re-measure that paper (``provenance.origin.paper_row`` = the row's ``source``)."""
    sources = {str(r.get("source")) for r in refs}
    tied = [i for i, run in enumerate(runs) if _paper_row(run) in sources]
    rows = [row for i, row in enumerate(run_rows) if i not in tied]
    for ref, ref_row in zip(refs, ref_rows):
        rows.append(ref_row)
        rows += [run_rows[i] for i in tied if _paper_row(runs[i]) == str(ref.get("source"))]
    return rows


# ------------------------------------------------------------------------------------------------
# Reference rows
# ------------------------------------------------------------------------------------------------
def _reference_label(row: Mapping[str, Any]) -> str:
    return f"{escape(row.get('label', '?'))} *(reported, {escape(row.get('cite', '?'))})*"


def _reference_lead_cell(row: Mapping[str, Any], name: str) -> str:
    if name == "method":
        return _reference_label(row)
    if name.startswith(OPTION_PREFIX):
        return _switch_cell(row.get("options", {}).get(name[len(OPTION_PREFIX):], False))
    return escape(row.get(name, ""))


def _reference_rows(reference: Mapping[str, Any], table: TableSpec, level: str) -> list[Mapping[str, Any]]:
    return [
        r for r in reference.get("rows", [])
        if r.get("table") == table.id and r.get("level", "video") == level
        and r.get("metric", table.metric[0]) == table.metric[0]
    ]


def _reference_notes(reference: Mapping[str, Any], rows: list[Mapping[str, Any]]) -> list[str]:
    """One italic paragraph per cited source and per row note, under a table with reference rows."""
    notes = []
    sources = reference.get("sources", {})
    for key in dict.fromkeys(str(r.get("source")) for r in rows):  # in row order
        source = sources.get(key)
        if source:
            notes.append(f"Reference rows ({escape(key)}): {escape(source.get('citation', ''))}; "
                         f"{escape(source.get('protocol', ''))}. No confidence interval was reported.")
    for row in rows:
        if row.get("note"):
            notes.append(f"Note: {escape(row['note'])}.")
    return [line for note in notes for line in (f"*{note}*", "")]


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


# ------------------------------------------------------------------------------------------------
# Sections after the tables
# ------------------------------------------------------------------------------------------------
def _group_order(groups: Iterable[str], protocol: BoardProtocol) -> list[str]:
    known = protocol.groups
    groups = set(groups)
    return [g for g in known if g in groups] + sorted(groups - set(known) - {ALL}) + ([ALL] if ALL in groups else [])


def _dataset_order(names: Iterable[str], protocol: BoardProtocol) -> list[str]:
    known = list(protocol.titles)
    names = set(names)
    return [d for d in known if d in names] + sorted(names - set(known))


def _dataset_title(name: str, protocol: BoardProtocol) -> str:
    return escape(protocol.titles.get(name, name))


def _localization_rows(run: Mapping[str, Any], dataset: str, protocol: BoardProtocol) -> list[list[str]]:
    block = run.get("datasets", {}).get(dataset, {})
    groups = block.get("groups", {})
    if block.get("localization"):  # a model without a mask head: said so, never a 0
        return [[_run_label(run), escape(ALL)] + [escape(block["localization"])] * len(protocol.pixel_columns) + [MISSING]]
    rows = []
    for group in _group_order((g for g, lv in groups.items() if "pixel" in lv), protocol):
        pixel = groups[group]["pixel"]
        cells = [format_metric(pixel.get(k), k, protocol.percent) for k, _ in protocol.pixel_columns]
        rows.append([_run_label(run), escape(group)] + cells + [_first_n(pixel)])
    return rows


def _localization(runs: list[Mapping[str, Any]], protocol: BoardProtocol) -> list[str]:
    lines = ["## Localization: predicted mask P_M against the forgery masks", ""]
    lines += ["Pixel level, fake frames that have a mask. Pixel AUC over all pixels; IoU and F1 of P_M >= 0.5, "
              "averaged over frames. The paper shows localization only as pictures, so there are no reference rows.", ""]
    datasets = _dataset_order({d for r in runs for d, e in r.get("datasets", {}).items()
                               if e.get("localization") or any("pixel" in lv for lv in e.get("groups", {}).values())}, protocol)
    header = ["Method", "Group"] + [t for _, t in protocol.pixel_columns] + ["Frames"]
    for dataset in datasets:
        rows = [row for run in runs for row in _localization_rows(run, dataset, protocol)]
        compressions = sorted({str(_compression(r, dataset)) for r in runs if dataset in r.get("datasets", {})})
        lines += [f"#### {_dataset_title(dataset, protocol)} (%), compression {escape('/'.join(compressions))}", ""]
        lines += _table(header, rows, text_columns=2)
    if not datasets:
        lines += [protocol.text("no_localization", "*No localization results yet (they need a dataset with masks).*"), ""]
    return lines


def _metric_rows(run: Mapping[str, Any], dataset: str, extra: list[str], protocol: BoardProtocol) -> list[list[str]]:
    """One row per (group, level) of ``run`` on ``dataset``: the score columns, then ``extra``."""
    groups = run.get("datasets", {}).get(dataset, {}).get("groups", {})
    names = [k for k, _ in protocol.score_columns] + extra
    rows = []
    for group in _group_order(groups, protocol):
        for level in LEVELS:
            metrics = groups[group].get(level)
            if metrics:
                cells = [format_metric(metrics.get(k), k, protocol.percent) for k in names]
                rows.append([_run_label(run), escape(group), level] + cells + [_first_n(metrics)])
    return rows


def _metrics_table(runs: list[Mapping[str, Any]], dataset: str, protocol: BoardProtocol) -> list[str]:
    extra = sorted(
        {name for r in runs for lv in r.get("datasets", {}).get(dataset, {}).get("groups", {}).values()
         for level in LEVELS for name in lv.get(level, {})} - {k for k, _ in protocol.score_columns}
    )
    header = ["Method", "Group", "Level"] + [t for _, t in protocol.score_columns] + [escape(e) for e in extra] + ["n"]
    rows = [row for run in runs for row in _metric_rows(run, dataset, extra, protocol)]
    return [f"#### {_dataset_title(dataset, protocol)}", ""] + _table(header, rows, text_columns=3) if rows else []


def _all_metrics(runs: list[Mapping[str, Any]], protocol: BoardProtocol) -> list[str]:
    lines = ["## All detection metrics", ""]
    lines += ["Per dataset and group (`all`, or one method's fakes against all reals). EER in % (lower is better).", ""]
    datasets = _dataset_order({d for r in runs for d in r.get("datasets", {})}, protocol)
    tables = [line for dataset in datasets for line in _metrics_table(runs, dataset, protocol)]
    return lines + (tables or ["*No results yet.*", ""])


def _figure_links(run: Mapping[str, Any], link_from: Path | None) -> str:
    """Markdown links to the run's report and figures (recorded in results["figures"] by the run),
    relative to the leaderboard's folder ``link_from``; "" when the run recorded none."""
    import os
    from urllib.parse import quote

    figures = run.get("figures")
    if not isinstance(figures, Mapping) or not isinstance(figures.get("run_dir"), str):
        return ""
    base = Path(figures["run_dir"])

    shipped = figures.get("relative_to") == "leaderboard"  # published: copied next to the board

    def href(name: str) -> str:
        target = base / name
        if link_from is not None and not target.is_absolute() and not shipped:
            target = Path(os.path.relpath(target, link_from))
        return quote(target.as_posix())

    links = []
    if isinstance(figures.get("report"), str):
        links.append(f"[report]({href(figures['report'])})")
    for name in figures.get("files", []):
        if isinstance(name, str):
            links.append(f"[{escape(Path(name).stem.replace('_', ' '))}]({href(name)})")
    return "  - figures: " + ", ".join(links) if links else ""


def _run_lines(run: Mapping[str, Any], link_from: Path | None = None) -> list[str]:
    """The provenance of one run as a nested list item."""
    cfg, git, hw = run.get("config", {}), run.get("git", {}), run.get("hardware", {})
    seeds, timings, versions = run.get("seeds", {}), run.get("timings", {}), run.get("versions", {})
    commit = git.get("commit")
    code = "not a git checkout" if commit is None else escape(commit[:12])
    if git.get("dirty"):
        code += " (uncommitted changes)"
    flag = f" *({DEMO_FLAG})*" if run.get("demo") else ""
    blender_opts = _options_text(cfg.get("blender_options", {})) or "defaults"
    backbone_opts = _options_text(cfg.get("backbone_options", {})) or "defaults"
    model = (f"  - blender {escape(cfg.get('blender'))} ({blender_opts}); backbone {escape(cfg.get('backbone'))} "
             f"({backbone_opts}), pretrained {escape(json.dumps(cfg.get('pretrained')))}, {escape(cfg.get('img_size'))} px; "
             f"face detector {escape(cfg.get('face_detector'))}")
    if is_imported(run.get("provenance")):  # not trained here: its network and input, no recipe
        model = f"  - {imported_model_line(run)}"
    lines = [
        f"- **{escape(run.get(DISPLAY) or run.get('name'))}**{flag}: run {escape(run.get('run_id'))}, {escape(run.get('created'))}",
        model,
        "  - seeds: " + ", ".join(f"{escape(k)} {escape(seeds[k])}" for k in sorted(seeds))
        + f"; checkpoint selection: {escape(run.get('selection_rule'))}",
        f"  - code {code}; " + ", ".join(f"{escape(k)} {escape(versions[k])}" for k in sorted(versions)),
        f"  - hardware: {escape(hw.get('cpu'))}, GPU {escape(hw.get('gpu') or 'none')}; time: "
        + ", ".join(f"{escape(k)} {_seconds(timings[k])}" for k in sorted(timings)),
    ]
    if run.get("provenance"):  # `harness evaluate`: an existing checkpoint, scored here
        lines.append("  - " + provenance_line(run["provenance"]))
    plugins = sorted(run.get("plugins", []), key=lambda p: (str(p.get("kind")), str(p.get("name"))))
    if plugins:
        lines.append("  - plugins: " + ", ".join(
            f"{escape(p.get('kind'))} {escape(p.get('name'))} ({escape(p.get('package'))} {escape(p.get('version'))})"
            for p in plugins
        ))
    figures = _figure_links(run, link_from)
    if figures:
        lines.append(figures)
    return lines


def imported_model_line(results: Mapping[str, Any]) -> str:
    """An imported model's network and input (markdown): in place of blender, backbone and recipe."""
    cfg, origin = results.get("config") or {}, ((results.get("provenance") or {}).get("origin") or {})
    scale = (results.get("provenance") or {}).get("input_scale", "?")
    return (f"model {escape(origin.get('architecture') or cfg.get('backbone'))} (imported with {escape(origin.get('importer'))}), "
            f"{escape(cfg.get('img_size'))} px, input scale {escape(scale)}; face detector {escape(cfg.get('face_detector'))}")


def _runs_section(runs: list[Mapping[str, Any]], link_from: Path | None = None) -> list[str]:
    lines = ["## Runs", ""]
    if not runs:
        return lines + ["*No results files yet. Run `harness run`, then `harness leaderboard`.*", ""]
    for run in runs:
        lines += _run_lines(run, link_from)
    return lines + [""]


def _spread_rows(group: list[Mapping[str, Any]], protocol: BoardProtocol) -> list[list[str]]:
    """Mean, SD and range of each video-level metric value the seeds of one setup all have."""
    metric, first = protocol.spread[0], group[0]
    label = _run_label(first, distinct=False)
    seeds = ", ".join(escape(_seed(r)) for r in group)
    rows = []
    for dataset in _dataset_order(first.get("datasets", {}), protocol):
        for split in _group_order(first["datasets"][dataset].get("groups", {}), protocol):
            found = [_metric(r, dataset, split, "video", metric) for r in group]
            values = [_number((m or {}).get("value")) for m in found]
            if any(v is None for v in values):
                continue  # a seed without this number: no spread to show
            mean = sum(values) / len(values)
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            each = "; ".join(f"{escape(_seed(r))}: {format_metric(m, metric, protocol.percent)}" for r, m in zip(group, found))
            rows.append([label, _dataset_title(dataset, protocol), escape(split), seeds, f"{100 * mean:.1f}",
                         f"{100 * sd:.1f}", f"{100 * min(values):.1f} to {100 * max(values):.1f}", each])
    return rows


def _seed_spread(runs: list[Mapping[str, Any]], protocol: BoardProtocol) -> list[str]:
    """Mean, sample standard deviation and range of each video-level metric over the seeds of one setup:
    the bootstrap CI covers test-set sampling, this covers training randomness."""
    setups: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        setups.setdefault(_setup_key(run), []).append(run)
    rows = []
    for key in sorted(setups, key=lambda k: _sort_key(setups[k][0])):
        group = sorted(setups[key], key=lambda r: (0, _seed(r), "") if isinstance(_seed(r), int) else (1, 0, str(_seed(r))))
        if len({str(_seed(r)) for r in group}) >= 2:
            rows += _spread_rows(group, protocol)
    if not rows:
        return []
    lines = ["## Spread over training seeds", "",
             f"Runs with the same configuration and name but different seeds, one row per setup. Video-level {protocol.spread[1]} "
             "(%): mean, sample standard deviation and range over the seeds, then each seed's value with its bootstrap 95 % CI. "
             "The spread comes from training; the brackets come from resampling the test set.", ""]
    return lines + _table(["Method", "Dataset", "Group", "Seeds", "Mean", "SD", "Range", "Each seed [95% CI]"], rows,
                          text_columns=4)


def _robustness_row(run: Mapping[str, Any], block: Mapping[str, Any], names: list[str]) -> list[str]:
    """Clean AUC with its CI, each distortion's mean over its levels (the level count when not all
    five were scored), and the average of those means."""
    means = block.get("mean_over_levels", {})
    cells, values = [], []
    for name in names:
        entry = means.get(name) or {}
        value = _number(entry.get("auc"))
        if value is None:
            cells.append(MISSING)
            continue
        values.append(value)
        levels = entry.get("levels", 5)
        cells.append(f"{100 * value:.1f}" + (f" ({levels} of 5 levels)" if levels != 5 else ""))
    average = f"{100 * sum(values) / len(values):.1f}" if values else MISSING
    if values and len(values) < len(names):
        average += f" ({len(values)} of {len(names)})"
    return [_run_label(run), format_metric(block.get("clean"), "auc", ("auc",))] + cells + [average]


def _robustness(runs: list[Mapping[str, Any]], protocol: BoardProtocol) -> list[str]:
    """Per test dataset with robustness blocks, laid out like LipForensics' table: clean, then each
    DeeperForensics-1.0 distortion's mean over its levels, then their average (video AUC %)."""
    from harness.vocab.conditions import DISTORTIONS, TITLES

    lines: list[str] = []
    datasets = {d for r in runs for d, b in r.get("datasets", {}).items() if b.get("robustness")}
    for dataset in _dataset_order(datasets, protocol):
        rows = [r for r in runs if r.get("datasets", {}).get(dataset, {}).get("robustness")]
        names = [n for n in DISTORTIONS if any(n in r["datasets"][dataset]["robustness"].get("conditions", {}) for r in rows)]
        where = escape(rows[0]["datasets"][dataset]["robustness"].get("applied_to", ""))
        lines += [f"## Robustness (video AUC, {_dataset_title(dataset, protocol)} test)", "",
                  "Video-level AUC (%) under the seven DeeperForensics-1.0 distortions (Jiang et al., CVPR 2020), each "
                  f"averaged over its severity levels as in LipForensics (Haliassos et al., CVPR 2021). Applied to {where}. "
                  "Clean carries the bootstrap 95 % CI; per-level numbers and CIs are in each run's report.", ""]
        header = ["Method", "Clean"] + [escape(TITLES.get(n, n)) for n in names] + ["Average"]
        lines += _table(header, [_robustness_row(r, r["datasets"][dataset]["robustness"], names) for r in rows])
    return lines


def _seconds(value: Any) -> str:
    number = _number(value)
    return MISSING if number is None else f"{number:.0f} s"


COUNT_KEYS = ("videos", "videos_scored", "videos_failed", "videos_no_face", "frames", "frames_no_face")


def _count_row(run: Mapping[str, Any], dataset: str, entry: Mapping[str, Any], protocol: BoardProtocol) -> list[str]:
    counts = entry.get("counts", {})
    aggregation = f"video {escape(entry.get('video_aggregation'))}, frame {escape(entry.get('frame_aggregation'))}"
    return [_run_label(run), _dataset_title(dataset, protocol), escape(entry.get("compression") or "-"),
            aggregation, escape(entry.get("frames_per_video"))] + [escape(counts.get(k, MISSING)) for k in COUNT_KEYS]


def _count_notes(run: Mapping[str, Any], dataset: str, entry: Mapping[str, Any], protocol: BoardProtocol) -> list[str]:
    """The videos not scored (the first few) and every undefined metric of one run on one dataset."""
    where = f"{_run_label(run)}, {_dataset_title(dataset, protocol)}"
    notes = []
    failures = entry.get("failures", [])
    if failures:
        shown = "; ".join(f"{escape(f.get('uid'))} ({escape(f.get('cause'))})" for f in failures[:MAX_FAILURES_SHOWN])
        hidden = len(failures) - MAX_FAILURES_SHOWN
        more = f" and {hidden} more listed in the results file" if hidden > 0 else ""
        notes.append(f"- {where}: not scored: {shown}{more}")
    for group in _group_order(entry.get("groups", {}), protocol):
        for level in ("video", "frame", "pixel"):
            undefined = [(name, m) for name, m in sorted(entry["groups"][group].get(level, {}).items())
                         if isinstance(m, Mapping) and m.get("undefined")]
            notes += [f"- {where}, {escape(group)}, {level} {escape(name)}: undefined ({escape(m['undefined'])})"
                      for name, m in undefined]
    return notes


def _caveats(runs: list[Mapping[str, Any]], protocol: BoardProtocol) -> list[str]:
    lines = ["## Counts and caveats", ""]
    lines += ["Videos or frames without a face, and videos that failed to decode, are counted here, never scored "
              "0.5 or dropped silently.", ""]
    header = ["Method", "Dataset", "Compression", "Aggregation", "Frames/video", "Videos", "Scored", "Failed",
              "No face (videos)", "Frames", "No face (frames)"]
    pairs = [(run, dataset) for run in runs for dataset in _dataset_order(run.get("datasets", {}), protocol)]
    rows = [_count_row(run, d, run["datasets"][d], protocol) for run, d in pairs]
    notes = [note for run, d in pairs for note in _count_notes(run, d, run["datasets"][d], protocol)]
    if rows:
        lines += _table(header, rows, text_columns=4)
    demo = [r for r in runs if r.get("demo")]
    if demo:
        lines += [f"**Demo runs ({DEMO_FLAG}):** " + ", ".join(escape(r.get("name")) for r in demo)
                  + ". They ran on small generated data to show the pipeline works; their numbers mean nothing.", ""]
    if notes:
        lines += notes + [""]
    if not rows and not demo:
        lines += ["*No results yet.*", ""]
    return lines


# ------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------
def load_reference(path: Path = REFERENCE_PATH) -> dict[str, Any]:
    """The reported numbers shipped with the harness (reference rows)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


#: what every rendered board says near its top (INTRO): the mark of a file the harness may re-render
GENERATED_MARK = "<!-- Generated by `harness leaderboard`"
INTRO = (
    "# Leaderboard",
    "",
    GENERATED_MARK + " from {source}. Do not edit by hand. -->",
    "",
    "{n} run(s). Cells are percentages with the stratified bootstrap 95 % confidence interval in "
    "brackets and the items scored (videos; frames at frame level): `value [low, high] (n=N)`; "
    + escape(SMALL_N_NOTE) + ". Rows in italics marked *(reported, ...)* are numbers printed by papers, "
    "not measured here. Video-level scores aggregate a video's frame scores (how: see Counts and caveats).",
    "",
)


def render(
    results: list[dict[str, Any]],
    reference: Mapping[str, Any] | None = None,
    link_from: Path | None = None,
    protocol: BoardProtocol | None = None,
    significance: ColumnMarks | None = None,
    source: Path | None = None,
) -> str:
    """The leaderboard markdown of ``results`` (validated results dicts). ``reference=None`` uses the
    shipped reference rows; pass ``{"rows": []}`` for none. ``link_from``: the folder the markdown is
    written to, so links to run figures are relative to it. ``protocol``: the tables and names
    (default: the shipped ``protocol.json``). ``significance``: the test that marks in each video-AUC
    column the rows not significantly different from its best (evaluation's ``column_marks``; None: no marks). ``source``: the
    results folder, named in the header relative to ``link_from``. Same input, same bytes."""
    reference = load_reference() if reference is None else reference
    protocol = load_protocol() if protocol is None else protocol
    runs = _with_display_names(sorted(results, key=_sort_key))
    lines = [line.format(n=len(runs), source=source_name(source, link_from)) for line in INTRO]
    for table in protocol.tables:
        lines += TABLE_RENDERERS[table.kind](runs, reference, table, protocol, significance=significance, link_from=link_from)
    lines += _seed_spread(runs, protocol) + _robustness(runs, protocol) + _localization(runs, protocol) + _all_metrics(runs, protocol)
    lines += _runs_section(runs, link_from) + _caveats(runs, protocol)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def source_name(source: Path | None, link_from: Path | None) -> str:
    """How a board's header names the results folder it was built from: relative to the board's own
    folder (``./results`` beside it), so the same files give the same bytes wherever it is rendered from."""
    if source is None:
        return "the results files given to it"
    rel = Path(os.path.relpath(Path(source).resolve(), Path(link_from or ".").resolve())).as_posix()
    return f"{rel}/*.json (relative to this file)" if rel.startswith("..") else f"./{rel}/*.json (next to this file)"


def write_leaderboard(results_dir: Path, out: Path, protocol: BoardProtocol | None = None) -> Path:
    """Render every valid results file of ``results_dir`` into ``out`` (written atomically)."""
    text = render(load_results(Path(results_dir)), link_from=Path(out).parent, protocol=protocol, source=Path(results_dir))
    return write_markdown(text, Path(out))


def is_generated_board(path: Path) -> bool:
    """``path`` is a leaderboard the harness rendered (its mark in the first lines), so rendering it
    again loses nothing; any other file is the user's and is never overwritten without --force."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return GENERATED_MARK in head


def write_markdown(text: str, out: Path) -> Path:
    """Write ``text`` to ``out`` atomically (a reader never sees half a leaderboard)."""
    return atomic_write_text(Path(out), text)
