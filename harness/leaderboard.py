"""Render the leaderboard markdown from results JSON files alone, deterministically.

Tables follow the paper: Table 1 (FF++ per method), Table 2 (cross-dataset), Table 3 (backbones),
Table 4 (ablation of the multi-part blender's switches), then localization numbers, every metric
per group, each run's provenance and the counts/caveats. Cells read ``99.1 [98.2, 99.8]``: the
value and its bootstrap 95 % CI in percent. Numbers reported by papers come from
``harness/reference/paper_results.json`` and are shown as marked reference rows, never mixed in
as measurements. Every name a user chose (runs, plugins, datasets, groups) is escaped.

The same results give the same bytes: runs are sorted by (name, created, run_id), dicts are walked
in sorted order, and nothing depends on the clock or the file system order.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from harness.files import atomic_write_text
from harness.results import ALL, load_results

REFERENCE_PATH = Path(__file__).parent / "reference" / "paper_results.json"

FFPP = "ffpp"
#: FF++ group name -> the paper's column name
FFPP_METHODS: tuple[tuple[str, str], ...] = (
    ("Deepfakes", "FF++ DF"),
    ("Face2Face", "FF++ F2F"),
    ("FaceSwap", "FF++ FS"),
    ("NeuralTextures", "FF++ NT"),
)
#: cross-dataset name -> the paper's column name (Table 2)
CROSS_DATASETS: tuple[tuple[str, str], ...] = (("celebdf", "CDF"), ("dfdcp", "DFDCP"), ("dfdc", "DFDC"))
DATASET_TITLES = {
    "ffpp": "FaceForensics++",
    "celebdf": "Celeb-DF v2",
    "dfdcp": "DFDC-Preview",
    "dfdc": "DFDC",
}
#: the paper's blender and its two ablation switches (Table 4)
PAPER_BLENDER = "multipart"
ABLATION_SWITCHES: tuple[tuple[str, str], ...] = (
    ("multi_part", "Multi-Part"),
    ("local_deformation", "Local Displacement Deformation"),
)
#: metrics stored as fractions and printed as percentages; others print as plain numbers
PERCENT_METRICS = {"auc", "ap", "eer", "accuracy", "pixel_auc", "iou", "f1"}
SCORE_COLUMNS = (("auc", "AUC"), ("ap", "AP"), ("eer", "EER"), ("accuracy", "Acc@0.5"))
PIXEL_COLUMNS = (("pixel_auc", "Pixel AUC"), ("iou", "IoU@0.5"), ("f1", "F1@0.5"))
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


def format_metric(metric: Mapping[str, Any] | None, name: str) -> str:
    """``99.1 [98.2, 99.8]`` (percent metrics) or ``0.123 [0.100, 0.150]``; ``n/a`` when undefined."""
    if not metric:
        return MISSING
    value = _number(metric.get("value"))
    if value is None:
        return "n/a"
    scale, spec = (100.0, ".1f") if name in PERCENT_METRICS else (1.0, ".3g")
    text = format(value * scale, spec)
    low, high = _number(metric.get("ci_low")), _number(metric.get("ci_high"))
    if low is not None and high is not None:
        text += f" [{format(low * scale, spec)}, {format(high * scale, spec)}]"
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


# ------------------------------------------------------------------------------------------------
# Reading runs
# ------------------------------------------------------------------------------------------------
def _sort_key(run: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(run.get("name", "")), str(run.get("created", "")), str(run.get("run_id", "")))


#: config keys that do not change a run's numbers: runs equal but for these are seeds of one setup
NOT_RESULT_KEYS = ("seed", "device", "data_root", "name")
DISPLAY = "display_name"  # set by render() on its own copies of the runs


def _setup_key(run: Mapping[str, Any]) -> str:
    """The run's configuration without its seed (and other keys that do not change results)."""
    cfg = {k: v for k, v in run.get("config", {}).items() if k not in NOT_RESULT_KEYS}
    train = dict(cfg.get("train", {}))
    train.pop("workers", None)
    cfg["train"] = train
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


def _has_level(run: Mapping[str, Any], dataset: str, groups: Iterable[str], level: str) -> bool:
    return any(_metric(run, dataset, g, level, "auc") for g in groups)


def _switch(run: Mapping[str, Any], key: str) -> Any:
    return run.get("config", {}).get("blender_options", {}).get(key)


def _switch_cell(value: Any) -> str:
    if value is None:
        return "default"
    return "✓" if value else ""


def _reference_label(row: Mapping[str, Any]) -> str:
    return f"{escape(row.get('label', '?'))} *(reported, {escape(row.get('cite', '?'))})*"


def _reference_rows(reference: Mapping[str, Any], table: str, level: str) -> list[Mapping[str, Any]]:
    return [r for r in reference.get("rows", []) if r.get("table") == table and r.get("level", "video") == level]


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
# Sections
# ------------------------------------------------------------------------------------------------
def _ffpp_subtables(
    runs: list[Mapping[str, Any]],
    reference: Mapping[str, Any],
    table: str,
    lead_columns: list[str],
    lead_cells: Callable[[Mapping[str, Any]], list[str]],
    ref_cells: Callable[[Mapping[str, Any]], list[str]],
) -> list[str]:
    """One sub-table per (level, FF++ compression): the level and compression go in the heading."""
    groups = [g for g, _ in FFPP_METHODS]
    keys = sorted(
        {
            (LEVELS.index(level), _compression(r, FFPP) or "")
            for r in runs
            for level in LEVELS
            if _has_level(r, FFPP, groups, level)
        }
    )
    refs = _reference_rows(reference, table, "video")
    if not keys and refs:
        keys = [(0, None)]
    lines: list[str] = []
    header = lead_columns + [title for _, title in FFPP_METHODS]
    for level_index, compression in keys:
        level = LEVELS[level_index]
        rows = []
        for run in runs:
            if (_compression(run, FFPP) or "") == compression and _has_level(run, FFPP, groups, level):
                cells = [format_metric(_metric(run, FFPP, g, level, "auc"), "auc") for g in groups]
                rows.append(lead_cells(run) + cells)
        shown = refs if level == "video" else []
        rows += [ref_cells(r) + [_reported(r.get("values", {}).get(g)) for g in groups] for r in shown]
        where = "as reported" if compression is None else _compression_text(compression or None)
        lines.append(f"#### {LEVEL_TEXT[level]} AUC (%), FF++ test set, {where}")
        lines.append("")
        lines += _table(header, rows, text_columns=len(lead_columns))
        lines += _reference_notes(reference, list(shown))
    if not lines:
        lines = ["*No FF++ results yet.*", ""]
    return lines


def _table1(runs: list[Mapping[str, Any]], reference: Mapping[str, Any]) -> list[str]:
    lines = ["## Table 1: in-dataset evaluation on FF++", ""]
    lines.append("Per method: all real test videos against that method's fakes. Training uses real videos only.")
    lines.append("")
    return lines + _ffpp_subtables(
        runs,
        reference,
        "ffpp",
        ["Method", "Blender", "Backbone"],
        lambda r: [_run_label(r), escape(r["config"]["blender"]), escape(r["config"]["backbone"])],
        lambda ref: [_reference_label(ref), escape(ref.get("blender", "")), escape(ref.get("backbone", ""))],
    )


def _table2(runs: list[Mapping[str, Any]], reference: Mapping[str, Any]) -> list[str]:
    lines = ["## Table 2: cross-dataset evaluation (trained on FF++)", ""]
    names = [d for d, _ in CROSS_DATASETS]
    for level in LEVELS:
        rows_runs = [r for r in runs if any(_metric(r, d, ALL, level, "auc") for d in names)]
        refs = _reference_rows(reference, "cross", level)
        if not rows_runs and not (refs and level == "video"):
            continue
        header = ["Method", "Blender", "Backbone"]
        for dataset, title in CROSS_DATASETS:
            seen = sorted({_compression(r, dataset) for r in rows_runs if dataset in r.get("datasets", {})} - {None})
            header.append(title + (f" ({escape('/'.join(seen))})" if seen else ""))
        rows = []
        for run in rows_runs:
            cells = [format_metric(_metric(run, d, ALL, level, "auc"), "auc") for d in names]
            rows.append([_run_label(run), escape(run["config"]["blender"]), escape(run["config"]["backbone"])] + cells)
        for ref in refs:
            rows.append(
                [_reference_label(ref), escape(ref.get("blender", "")), escape(ref.get("backbone", ""))]
                + [_reported(ref.get("values", {}).get(d)) for d in names]
            )
        lines += [f"#### {LEVEL_TEXT[level]} AUC (%), whole test sets", ""]
        lines += _table(header, rows, text_columns=3)
        lines += _reference_notes(reference, refs)
    if len(lines) == 2:
        lines += ["*No cross-dataset results yet.*", ""]
    return lines


def _is_full_method(run: Mapping[str, Any]) -> bool:
    return run["config"]["blender"] == PAPER_BLENDER and all(_switch(run, k) is not False for k, _ in ABLATION_SWITCHES)


def _table3(runs: list[Mapping[str, Any]], reference: Mapping[str, Any]) -> list[str]:
    lines = ["## Table 3: backbones on FF++ (the paper's blender, both switches on)", ""]
    chosen = sorted((r for r in runs if _is_full_method(r)), key=lambda r: (str(r["config"]["backbone"]), _sort_key(r)))
    return lines + _ffpp_subtables(
        chosen,
        reference,
        "backbones",
        ["Backbone", "Method"],
        lambda r: [escape(r["config"]["backbone"]), _run_label(r)],
        lambda ref: [escape(ref.get("backbone", "")), _reference_label(ref)],
    )


def _table4(runs: list[Mapping[str, Any]], reference: Mapping[str, Any]) -> list[str]:
    lines = ["## Table 4: ablation on FF++ (multi-part off/on x local displacement deformation off/on)", ""]
    lines += [f"Runs of the `{PAPER_BLENDER}` blender; a switch not recorded in the run's blender options reads "
              "\"default\".", ""]

    def order(run: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(_switch(run, k) is not False for k, _ in ABLATION_SWITCHES) + _sort_key(run)

    chosen = sorted((r for r in runs if r["config"]["blender"] == PAPER_BLENDER), key=order)
    switch_titles = [title for _, title in ABLATION_SWITCHES]
    return lines + _ffpp_subtables(
        chosen,
        reference,
        "ablation",
        switch_titles + ["Method", "Backbone"],
        lambda r: [_switch_cell(_switch(r, k)) for k, _ in ABLATION_SWITCHES]
        + [_run_label(r), escape(r["config"]["backbone"])],
        lambda ref: [_switch_cell(ref.get("options", {}).get(k, False)) for k, _ in ABLATION_SWITCHES]
        + [_reference_label(ref), escape(ref.get("backbone", ""))],
    )


def _group_order(groups: Iterable[str]) -> list[str]:
    known = [g for g, _ in FFPP_METHODS]
    groups = set(groups)
    return [g for g in known if g in groups] + sorted(groups - set(known) - {ALL}) + ([ALL] if ALL in groups else [])


def _dataset_order(names: Iterable[str]) -> list[str]:
    known = [FFPP] + [d for d, _ in CROSS_DATASETS]
    names = set(names)
    return [d for d in known if d in names] + sorted(names - set(known))


def _dataset_title(name: str) -> str:
    return escape(DATASET_TITLES.get(name, name))


def _localization(runs: list[Mapping[str, Any]]) -> list[str]:
    lines = ["## Localization: predicted mask P_M against the forgery masks", ""]
    lines += ["Pixel level, fake frames that have a mask. Pixel AUC over all pixels; IoU and F1 of P_M >= 0.5, "
              "averaged over frames. The paper shows localization only as pictures, so there are no reference rows.", ""]
    datasets = _dataset_order({d for r in runs for d, e in r.get("datasets", {}).items()
                               if any("pixel" in lv for lv in e.get("groups", {}).values())})
    for dataset in datasets:
        rows = []
        for run in runs:
            groups = run.get("datasets", {}).get(dataset, {}).get("groups", {})
            for group in _group_order(g for g, lv in groups.items() if "pixel" in lv):
                pixel = groups[group]["pixel"]
                n = next((m.get("n") for m in pixel.values() if isinstance(m, Mapping)), None)
                cells = [format_metric(pixel.get(k), k) for k, _ in PIXEL_COLUMNS]
                rows.append([_run_label(run), escape(group)] + cells + [MISSING if n is None else str(n)])
        compressions = sorted({str(_compression(r, dataset)) for r in runs if dataset in r.get("datasets", {})})
        lines += [f"#### {_dataset_title(dataset)} (%), compression {escape('/'.join(compressions))}", ""]
        lines += _table(["Method", "Group"] + [t for _, t in PIXEL_COLUMNS] + ["Frames"], rows, text_columns=2)
    if not datasets:
        lines += ["*No localization results yet (they need a dataset with masks, e.g. FF++).*", ""]
    return lines


def _all_metrics(runs: list[Mapping[str, Any]]) -> list[str]:
    lines = ["## All detection metrics", ""]
    lines += ["Per dataset and group (`all`, or one method's fakes against all reals). EER in % (lower is better).", ""]
    datasets = _dataset_order({d for r in runs for d in r.get("datasets", {})})
    for dataset in datasets:
        extra = sorted(
            {name for r in runs for lv in r.get("datasets", {}).get(dataset, {}).get("groups", {}).values()
             for level in LEVELS for name in lv.get(level, {})} - {k for k, _ in SCORE_COLUMNS}
        )
        header = ["Method", "Group", "Level"] + [t for _, t in SCORE_COLUMNS] + [escape(e) for e in extra] + ["n"]
        rows = []
        for run in runs:
            groups = run.get("datasets", {}).get(dataset, {}).get("groups", {})
            for group in _group_order(groups):
                for level in LEVELS:
                    metrics = groups[group].get(level)
                    if not metrics:
                        continue
                    n = next((m.get("n") for m in metrics.values() if isinstance(m, Mapping)), None)
                    cells = [format_metric(metrics.get(k), k) for k, _ in SCORE_COLUMNS]
                    cells += [format_metric(metrics.get(e), e) for e in extra]
                    rows.append([_run_label(run), escape(group), level] + cells + [MISSING if n is None else str(n)])
        if rows:
            lines += [f"#### {_dataset_title(dataset)}", ""] + _table(header, rows, text_columns=3)
    if len(lines) == 4:
        lines += ["*No results yet.*", ""]
    return lines


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
    lines = [
        f"- **{escape(run.get(DISPLAY) or run.get('name'))}**{flag}: run {escape(run.get('run_id'))}, {escape(run.get('created'))}",
        f"  - blender {escape(cfg.get('blender'))} ({blender_opts}); backbone {escape(cfg.get('backbone'))} "
        f"({backbone_opts}), pretrained {escape(json.dumps(cfg.get('pretrained')))}, {escape(cfg.get('img_size'))} px; "
        f"face detector {escape(cfg.get('face_detector'))}",
        "  - seeds: " + ", ".join(f"{escape(k)} {escape(seeds[k])}" for k in sorted(seeds))
        + f"; checkpoint selection: {escape(run.get('selection_rule'))}",
        f"  - code {code}; " + ", ".join(f"{escape(k)} {escape(versions[k])}" for k in sorted(versions)),
        f"  - hardware: {escape(hw.get('cpu'))}, GPU {escape(hw.get('gpu') or 'none')}; time: "
        + ", ".join(f"{escape(k)} {_seconds(timings[k])}" for k in sorted(timings)),
    ]
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


def _runs_section(runs: list[Mapping[str, Any]], link_from: Path | None = None) -> list[str]:
    lines = ["## Runs", ""]
    if not runs:
        return lines + ["*No results files yet. Run `harness run`, then `harness leaderboard`.*", ""]
    for run in runs:
        lines += _run_lines(run, link_from)
    return lines + [""]


def _seed_spread(runs: list[Mapping[str, Any]]) -> list[str]:
    """Mean, sample standard deviation and range of each video-level AUC over the seeds of one setup:
    the bootstrap CI covers test-set sampling, this covers training randomness."""
    setups: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        setups.setdefault(_setup_key(run), []).append(run)
    rows = []
    for key in sorted(setups, key=lambda k: _sort_key(setups[k][0])):
        group = sorted(setups[key], key=lambda r: (0, _seed(r), "") if isinstance(_seed(r), int) else (1, 0, str(_seed(r))))
        if len({str(_seed(r)) for r in group}) < 2:
            continue
        first = group[0]
        label = _run_label(first, distinct=False)
        seeds = ", ".join(escape(_seed(r)) for r in group)
        for dataset in _dataset_order(first.get("datasets", {})):
            for split in _group_order(first["datasets"][dataset].get("groups", {})):
                values = [_number((_metric(r, dataset, split, "video", "auc") or {}).get("value")) for r in group]
                if any(v is None for v in values):
                    continue  # a seed without this number: no spread to show
                mean = sum(values) / len(values)
                sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
                rows.append([label, _dataset_title(dataset), escape(split), seeds, f"{100 * mean:.1f}",
                             f"{100 * sd:.1f}", f"{100 * min(values):.1f} to {100 * max(values):.1f}"])
    if not rows:
        return []
    lines = ["## Spread over training seeds", "",
             "Runs with the same configuration and name but different seeds. Video-level AUC (%): mean, sample "
             "standard deviation and range over the seeds. This spread comes from training; the brackets in the "
             "tables above come from resampling the test set.", ""]
    return lines + _table(["Method", "Dataset", "Group", "Seeds", "Mean", "SD", "Range"], rows, text_columns=4)


def _seconds(value: Any) -> str:
    number = _number(value)
    return MISSING if number is None else f"{number:.0f} s"


def _caveats(runs: list[Mapping[str, Any]]) -> list[str]:
    lines = ["## Counts and caveats", ""]
    lines += ["Videos or frames without a face, and videos that failed to decode, are counted here, never scored "
              "0.5 or dropped silently.", ""]
    header = ["Method", "Dataset", "Compression", "Aggregation", "Frames/video", "Videos", "Scored", "Failed",
              "No face (videos)", "Frames", "No face (frames)"]
    rows, notes = [], []
    for run in runs:
        for dataset in _dataset_order(run.get("datasets", {})):
            entry = run["datasets"][dataset]
            counts = entry.get("counts", {})
            aggregation = (f"video {escape(entry.get('video_aggregation'))}, "
                           f"frame {escape(entry.get('frame_aggregation'))}")
            rows.append([_run_label(run), _dataset_title(dataset), escape(entry.get("compression") or "-"),
                         aggregation, escape(entry.get("frames_per_video"))]
                        + [escape(counts.get(k, MISSING)) for k in ("videos", "videos_scored", "videos_failed",
                                                                    "videos_no_face", "frames", "frames_no_face")])
            failures = entry.get("failures", [])
            if failures:
                shown = "; ".join(
                    f"{escape(f.get('uid'))} ({escape(f.get('cause'))})" for f in failures[:MAX_FAILURES_SHOWN]
                )
                hidden = len(failures) - MAX_FAILURES_SHOWN
                more = f" and {hidden} more listed in the results file" if hidden > 0 else ""
                notes.append(f"- {_run_label(run)}, {_dataset_title(dataset)}: not scored: {shown}{more}")
            for group in _group_order(entry.get("groups", {})):
                for level in ("video", "frame", "pixel"):
                    for name, metric in sorted(entry["groups"][group].get(level, {}).items()):
                        if isinstance(metric, Mapping) and metric.get("undefined"):
                            notes.append(f"- {_run_label(run)}, {_dataset_title(dataset)}, {escape(group)}, {level} "
                                         f"{escape(name)}: undefined ({escape(metric['undefined'])})")
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


def render(results: list[dict[str, Any]], reference: Mapping[str, Any] | None = None, link_from: Path | None = None) -> str:
    """The leaderboard markdown of ``results`` (validated results dicts). ``reference=None`` uses the
    shipped reference rows; pass ``{"rows": []}`` for none. ``link_from``: the folder the markdown is
    written to, so links to run figures are relative to it. Same input, same bytes."""
    if reference is None:
        reference = load_reference()
    runs = _with_display_names(sorted(results, key=_sort_key))
    lines = [
        "# Leaderboard",
        "",
        "<!-- Generated by `harness leaderboard` from leaderboards/results/*.json. Do not edit by hand. -->",
        "",
        f"{len(runs)} run(s). Cells are percentages with the stratified bootstrap 95 % confidence interval in "
        "brackets: `value [low, high]`. Rows in italics marked *(reported, ...)* are numbers printed by papers, "
        "not measured here. Video-level scores aggregate a video's frame scores (how: see Counts and caveats).",
        "",
    ]
    for section in (_table1, _table2, _table3, _table4):
        lines += section(runs, reference)
    for plain in (_seed_spread, _localization, _all_metrics, partial(_runs_section, link_from=link_from), _caveats):
        lines += plain(runs)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def write_leaderboard(results_dir: Path, out: Path) -> Path:
    """Render every valid results file of ``results_dir`` into ``out`` (written atomically)."""
    return write_markdown(render(load_results(Path(results_dir)), link_from=Path(out).parent), Path(out))


def write_markdown(text: str, out: Path) -> Path:
    """Write ``text`` to ``out`` atomically (a reader never sees half a leaderboard)."""
    return atomic_write_text(Path(out), text)
