"""The leaderboard's cells and rows, shared by its tables and its sections: how a number, a run and
a reference row are written (harness.reporting.leaderboard renders the page)."""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping

from harness.reporting.leaderboard_protocol import OPTION_PREFIX, TableSpec, load_protocol
from harness.reporting.results import ci_note
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
