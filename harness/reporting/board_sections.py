"""The leaderboard's sections after the tables: seed spread, robustness, localization, every metric,
the runs and their provenance, counts and caveats (harness.reporting.leaderboard renders the page)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness.extend.types import ALL
from harness.reporting.leaderboard_protocol import BoardProtocol
from harness.reporting.board_rows import (
    DEMO_FLAG,
    DISPLAY,
    LEVELS,
    MAX_FAILURES_SHOWN,
    MISSING,
    _compression,
    _first_n,
    _metric,
    _number,
    _options_text,
    _run_label,
    _seed,
    _setup_key,
    _sort_key,
    _table,
    escape,
    format_metric,
    is_imported,
    provenance_line,
)


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
