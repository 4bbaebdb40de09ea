"""A run's report.md: one page with its setup, its numbers per dataset and group, robustness, and
its figures (drawn by harness/reporting/plots.py). `harness report RUN` writes it again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.extend.types import ALL
from harness.reporting.board_sections import imported_model_line
from harness.reporting.board_rows import escape, is_imported, provenance_line
from harness.reporting.plots import _pct, draw_run, figure_index
from harness.reporting.results import SMALL_N_MARK, SMALL_N_NOTE
from harness.vocab.folder import RunFolder


def _report_setup(run_dir: Path, results: dict[str, Any] | None) -> list[str]:
    """The report's title and the run's setup (from results.json, else config.json)."""
    cfg = (results or {}).get("config")
    if cfg is None and RunFolder(run_dir).config.is_file():
        from harness.common.bounded import read_json

        cfg = read_json(RunFolder(run_dir).config, "run config")
        cfg = cfg if isinstance(cfg, dict) else {}
    cfg = cfg or {}
    name = (results or {}).get("name") or cfg.get("name") or run_dir.name
    lines = [f"# Run report: {escape(name)}", ""]
    if results and results.get("demo"):
        lines += [f"> {escape(results.get('note') or 'demo data: not a benchmark')}", ""]
    lines += [
        f"- run: `{escape(run_dir.name)}`" + (f", finished {escape(results.get('created'))}" if results else " (no results.json: not finished)"),
        f"- blender {escape(cfg.get('blender', '?'))}, backbone {escape(cfg.get('backbone', '?'))}, "
        f"pretrained {escape(json.dumps(cfg.get('pretrained')))}, {escape(cfg.get('img_size', '?'))} px, "
        f"face detector {escape(cfg.get('face_detector', '?'))}",
        f"- trained on {escape(cfg.get('train_dataset', '?'))}, seed {escape(cfg.get('seed', '?'))}",
    ]
    if results and results.get("provenance"):  # `harness evaluate`: where the model came from, not training
        lines[-1] = "- " + provenance_line(results["provenance"])
        if is_imported(results["provenance"]):  # its network and input in place of blender, backbone, pretrained
            lines[-2] = "- " + imported_model_line(results)
    else:
        if isinstance(cfg.get("train"), dict):
            from harness.vocab.recipes import describe

            lines.append(f"- recipe {escape(describe(cfg['train']))}")
        if results:
            tr = results.get("training", {})
            lines.append(f"- {escape(tr.get('steps'))} steps; checkpoint selection: {escape(results.get('selection_rule'))}"
                         + (f"; final loss {tr['final_loss']:.4f}" if isinstance(tr.get("final_loss"), (int, float)) else ""))
    return lines + [""]


def _report_dataset(dataset: str, block: dict[str, Any]) -> list[str]:
    """One dataset's table rows (a row per group, "all" first) and its counts line."""
    lines = []
    groups = block.get("groups", {})
    for group in sorted(groups, key=lambda g: (g != ALL, g)):  # "all" first, as in the legends
        metrics = groups[group]
        video, frame, pixel = metrics.get("video", {}), metrics.get("frame", {}), metrics.get("pixel", {})
        n = (video.get("auc") or {}).get("n")
        lines.append(f"| {escape(dataset)} | {escape(group)} | {'-' if n is None else n} | {_pct(video.get('auc'))} | "
                     f"{_pct(video.get('ap'))} | {_pct(frame.get('auc'))} | {escape(block.get('localization')) if block.get('localization') else _pct(pixel.get('iou'))} |")
    c = block.get("counts", {})
    detection = f" {escape(block['face_detection'])}." if block.get("face_detection") else ""  # `--face-detector none`
    return lines + ["", f"{escape(dataset)}: {c.get('videos_scored', '?')} of {c.get('videos', '?')} videos scored, "
                    f"{c.get('videos_no_face', 0)} without a face, {c.get('videos_failed', 0)} failed.{detection}", ""]


def _report_robustness(results: dict[str, Any]) -> list[str]:
    """Per dataset with a robustness block: video AUC per distortion and level, the mean over levels, clean."""
    lines: list[str] = []
    for dataset, block in results.get("datasets", {}).items():
        rob = block.get("robustness")
        if not rob:
            continue
        if not lines:
            lines = ["## Robustness", "",
                     f"Video AUC (%), bootstrap 95 % CI, under the DeeperForensics-1.0 distortions; applied to "
                     f"{escape(rob.get('applied_to', ''))}.", ""]
        lines += [f"### {escape(dataset)}: clean {_pct(rob.get('clean'))}", "",
                  "| Distortion | Level 1 | Level 2 | Level 3 | Level 4 | Level 5 | Mean |", "|---|---:|---:|---:|---:|---:|---:|"]
        for name, levels in rob.get("conditions", {}).items():
            cells = [_pct((levels.get(str(lv)) or {}).get("auc")) if str(lv) in levels else "-" for lv in range(1, 6)]
            mean = (rob.get("mean_over_levels", {}).get(name) or {}).get("auc")
            lines.append(f"| {escape(name)} | " + " | ".join(cells) + f" | {_pct(None, mean)} |")
        seconds = rob.get("seconds", {})
        lines += ["", f"{rob.get('videos', '?')} videos; {seconds.get('total', '?')} s in all, "
                  f"{seconds.get('per_condition', '?')} s per condition.", ""]
    return lines


def _report_figures(run_dir: Path) -> list[str]:
    index = figure_index(run_dir)
    if not index:
        return ["*No figures: the run folder has no train_log.jsonl, scores/ or examples/ yet.*", ""]
    lines = ["## Figures", ""]
    titles = {"roc": "ROC", "pr": "Precision-recall", "scores": "Score histogram", "examples": "Localization examples",
              "robustness": "AUC against perturbation severity"}
    for key, files in index.items():
        lines += [f"### {'Training' if key == 'training' else escape(key)}", ""]
        for f in files:
            kind = Path(f).stem.split("_", 1)[0]
            lines += [f"![{titles.get(kind, 'Training curves')}]({f})", ""]
    return lines


def write_report(run_dir: Path, redraw: bool = True) -> Path:
    """``run_dir/report.md``: one page with the run's setup, numbers and figures (redrawn first)."""
    from harness.common.files import atomic_write_text

    run_dir = Path(run_dir)
    results_path = RunFolder(run_dir).results
    if results_path.is_file():
        from harness.reporting.results import read_results_file

        results = read_results_file(results_path)  # truncated or impossible numbers: one line, nothing drawn
    else:
        results = None
    if redraw:
        draw_run(run_dir, results)
    lines = _report_setup(run_dir, results)
    if results:
        lines += ["## Numbers", "", "Percentages, stratified bootstrap 95 % CI in brackets; n = videos.", "",
                  "| Dataset | Group | n | Video AUC | Video AP | Frame AUC | Pixel IoU |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for dataset, block in results.get("datasets", {}).items():
            lines += _report_dataset(dataset, block)
        if any(SMALL_N_MARK in line for line in lines):
            lines += [f"*{SMALL_N_NOTE}.*", ""]
        lines += _report_robustness(results)
    lines += _report_figures(run_dir)
    while lines and lines[-1] == "":
        lines.pop()
    return atomic_write_text(RunFolder(run_dir).report, "\n".join(lines) + "\n")
