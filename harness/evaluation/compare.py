"""Compare runs scored on the same test videos: per dataset and group, the AUC difference with a paired
stratified bootstrap 95 % CI, DeLong's p-value (harness/evaluation/paired.py) and the shared count.

Reads only run folders: ``scores/<dataset>.csv`` (uid, label, group, score per video), written by
every run's evaluation, and ``results.json`` for the run's name and bootstrap seed.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.common.errors import HarnessError
from harness.reporting.scores import ReportError, Scores, read_scores
from harness.vocab.folder import RunFolder



class CompareError(HarnessError, ValueError):
    """Runs that cannot be compared; the message says why and what to do."""


@dataclass
class RunScores:
    folder: Path
    name: str
    datasets: dict[str, Scores]


def load_run(path: Path, runs_dir: Path) -> RunScores:
    """A run folder (or its id under ``runs_dir``) with its per-video score files."""
    folder = path if path.is_dir() else runs_dir / path
    if not folder.is_dir():
        raise CompareError(f"no run folder {path} (nor {runs_dir / path}); pass runs/<id> or an id under --runs-dir")
    files = sorted(RunFolder(folder).scores.glob("*.csv"))
    if not files:
        raise CompareError(f"{folder} has no {RunFolder.SCORES}/<dataset>.csv: finish the run (its evaluation writes them)")
    name = folder.name
    results = RunFolder(folder).results
    if results.is_file():
        try:
            name = str(json.loads(results.read_text(encoding="utf-8")).get("name") or name)
        except ValueError:
            pass  # the scores are what is compared; the name is only a label
    datasets = {}
    for f in files:
        try:
            datasets[f.stem] = read_scores(f)  # validated: one row per uid, labels 0/1, scores in [0, 1]
        except ReportError as exc:
            raise CompareError(str(exc)) from None
    return RunScores(folder, name, datasets)


def _pair(a: Scores, b: Scores) -> tuple[list[str], np.ndarray, list[str], np.ndarray, np.ndarray, int, int]:
    """Shared uids (sorted) with labels, groups and both runs' scores; counts only in a, only in b."""
    ia = {u: i for i, u in enumerate(a.uids)}
    ib = {u: i for i, u in enumerate(b.uids)}
    shared = sorted(set(ia) & set(ib))
    labels = np.array([a.labels[ia[u]] for u in shared], int)
    other = np.array([b.labels[ib[u]] for u in shared], int)
    if (labels != other).any():
        bad = [u for u, x, y in zip(shared, labels, other) if x != y][:3]
        raise CompareError(f"the runs disagree on the label of {int((labels != other).sum())} video(s) ({', '.join(bad)}): "
                           "they were scored against different label files")
    groups = [a.groups[ia[u]] for u in shared]
    other_groups = [b.groups[ib[u]] for u in shared]
    if groups != other_groups:
        bad = [u for u, x, y in zip(shared, groups, other_groups) if x != y]
        raise CompareError(f"the runs disagree on the group of {len(bad)} video(s) ({', '.join(bad[:3])}): "
                           "they were scored against different label files")
    sa = np.array([a.scores[ia[u]] for u in shared], np.float64)
    sb = np.array([b.scores[ib[u]] for u in shared], np.float64)
    return shared, labels, groups, sa, sb, len(ia) - len(shared), len(ib) - len(shared)


def compare_pair(a: RunScores, b: RunScores, intersect: bool = False, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """One row per dataset both runs scored and per group: ΔAUC (b - a), its paired CI, DeLong's p."""
    from harness.extend.views import view_masks
    from harness.evaluation.paired import delong_test, paired_bootstrap

    rows = []
    common = sorted(set(a.datasets) & set(b.datasets))
    if not common:
        raise CompareError(f"{a.folder} and {b.folder} share no test dataset "
                           f"({', '.join(sorted(a.datasets))} vs {', '.join(sorted(b.datasets))})")
    for dataset in common:
        shared, labels, groups, sa, sb, only_a, only_b = _pair(a.datasets[dataset], b.datasets[dataset])
        if (only_a or only_b) and not intersect:
            raise CompareError(
                f"{dataset}: the runs scored different videos ({only_a} only in {a.folder.name}, {only_b} only in "
                f"{b.folder.name}, {len(shared)} shared); pass --intersect to compare on the shared ones")
        for group, keep in view_masks(labels, groups).items():  # the results tables' views
            y, xa, xb = labels[keep], sa[keep], sb[keep]
            row: dict[str, Any] = {"dataset": dataset, "group": group, "videos": int(keep.sum()),
                                   "fakes": int(y.sum()), "reals": int((y == 0).sum()),
                                   "only_a": only_a, "only_b": only_b}
            try:
                test = delong_test(y, xa, xb)
            except ValueError as exc:
                rows.append({**row, "undefined": str(exc)})
                continue
            rng = np.random.default_rng([seed, zlib.crc32(f"compare/{dataset}/{group}".encode())])
            low, high = paired_bootstrap(y, xa, xb, rng, n_boot)
            rows.append({**row, "auc_a": test.auc_a, "auc_b": test.auc_b, "delta": test.delta, "ci_low": low,
                         "ci_high": high, "z": test.z if np.isfinite(test.z) else None, "p": test.p})
    return rows


def compare_runs(runs: list[RunScores], intersect: bool = False, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Every later run against the first (the baseline)."""
    if len({r.name for r in runs}) < len(runs):  # same names (e.g. seeds of one setup): tell them apart by folder
        runs = [RunScores(r.folder, f"{r.name} ({r.folder.name})", r.datasets) for r in runs]
    base = runs[0]
    return {
        "baseline": {"run": base.folder.as_posix(), "name": base.name},
        "method": {"delta": "AUC(run) - AUC(baseline), video level", "ci": f"paired stratified bootstrap, {n_boot} draws, 95 %",
                   "p": "DeLong et al. 1988, two-sided", "seed": seed},
        "comparisons": [{"run": r.folder.as_posix(), "name": r.name, "rows": compare_pair(base, r, intersect, n_boot, seed)}
                        for r in runs[1:]],
    }


def to_markdown(report: dict[str, Any]) -> str:
    from harness.reporting.board_rows import escape

    def pct(v: float) -> str:
        return f"{100 * v:.1f}"

    lines = [f"# Paired comparison against {escape(report['baseline']['name'])}", "",
             "ΔAUC = AUC(run) − AUC(baseline), video level, on the videos both runs scored; 95 % CI from a paired "
             "stratified bootstrap; p from DeLong's test for correlated ROC AUCs.", ""]
    for comp in report["comparisons"]:
        lines += [f"## {escape(comp['name'])} vs {escape(report['baseline']['name'])}", "",
                  "| Dataset | Group | Shared videos | AUC baseline | AUC run | ΔAUC [95% CI] | DeLong p |",
                  "|:---|:---|---:|---:|---:|---:|---:|"]
        for r in comp["rows"]:
            head = f"| {escape(r['dataset'])} | {escape(r['group'])} | {r['videos']} |"
            if "undefined" in r:
                lines.append(f"{head} - | - | n/a ({escape(r['undefined'])}) | - |")
                continue
            lines.append(f"{head} {pct(r['auc_a'])} | {pct(r['auc_b'])} | {100 * r['delta']:+.1f} "
                         f"[{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}] | {r['p']:.3g} |")
        skipped = {(r["only_a"], r["only_b"]) for r in comp["rows"] if r["only_a"] or r["only_b"]}
        if skipped:
            lines += ["", "--intersect: videos scored by one run only were left out "
                      + "; ".join(f"({a} baseline only, {b} run only)" for a, b in sorted(skipped)) + "."]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
