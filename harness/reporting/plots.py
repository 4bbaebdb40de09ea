"""Figures of a run, drawn from the files in its run folder alone (so they can be redrawn later):

    results.json               metrics with their bootstrap CIs (legends)
    train_log.jsonl            one line per step (loss terms, lr) and per validation (val_auc)
    scores/<dataset>.csv       one row per scored test video: uid, label, group, score
    examples/<dataset>.npz     the most and least confident test fakes: frame, truth mask, P_M

They go to ``runs/<id>/figures/``: ``roc_<dataset>`` and ``pr_<dataset>`` (PNG + SVG, one curve per
group), ``scores_<dataset>.png`` (real/fake score histograms), ``training.png`` and
``examples_<dataset>.png``. harness/reporting/report.py puts them with the run's numbers in ``report.md``.
Matplotlib runs headless (``Figure`` + Agg, never pyplot's global state).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from harness.extend.types import ALL
# the one reader of scores files (validated), and its error, where the figures' callers import them
from harness.reporting.scores import ReportError, Scores, check_against_results, read_scores  # noqa: F401
from harness.vocab.folder import RunFolder

#: keys of a train_log.jsonl line that are not plotted as a loss term
NOT_LOSS_TERMS = {"step", "epoch", "lr", "val_auc", "time"}
#: the results' "all" group (every item of a dataset)


def read_log(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(step records, validation records) of a train_log.jsonl; a step logged twice (redone after a
    resume) keeps its last record."""
    steps: dict[int, dict[str, Any]] = {}
    vals: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return [], []
    from harness.common.bounded import read_jsonl
    from harness.common.ui import console

    for record in read_jsonl(path, warn=lambda text: console.print(f"[yellow]warning:[/yellow] {text}")):
        if not isinstance(record.get("step", 0), int):
            continue
        if "val_auc" in record:
            vals[int(record.get("step", 0))] = record
        elif "loss" in record:
            steps[int(record["step"])] = record
    return [steps[k] for k in sorted(steps)], [vals[k] for k in sorted(vals)]


def _metric(results: dict[str, Any] | None, dataset: str, group: str, name: str) -> dict[str, Any] | None:
    if not results:
        return None
    return results.get("datasets", {}).get(dataset, {}).get("groups", {}).get(group, {}).get("video", {}).get(name)


def _pct(metric: dict[str, Any] | None, fallback: float | None = None) -> str:
    """``97.1 [95.0, 99.0]`` from a results metric (value and CI, then ``n<10`` or ``no CI (1 real)``
    where the CI is unreliable or absent: harness.reporting.results.ci_note), else the fallback value alone."""
    from harness.reporting.results import ci_note

    if metric and metric.get("value") is not None and metric["value"] == metric["value"]:
        low, high = metric.get("ci_low"), metric.get("ci_high")
        ci = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None and low == low and high == high else ""
        note = ci_note(metric)
        return f"{100 * metric['value']:.1f}{ci}" + (f" {note}" if note else "")
    return "-" if fallback is None or fallback != fallback else f"{100 * fallback:.1f}"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def wrapped(text: str, width_in: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points (a title is
    wrapped, never cut at the figure's edges)."""
    import textwrap

    chars = max(16, int(width_in * 72 / (0.6 * fontsize)))  # a character is about 0.6 em wide
    return "\n".join(textwrap.wrap(text, chars, break_long_words=False, break_on_hyphens=False)) or text


def _title(ax: Any, text: str, fontsize: float = 9) -> None:
    """An axes title wrapped to the axes' width."""
    width = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(wrapped(text, width, fontsize), fontsize=fontsize)


def _suptitle(fig: Any, text: str, fontsize: float = 10) -> None:
    fig.suptitle(wrapped(text, fig.get_figwidth() * 0.95, fontsize), fontsize=fontsize)


def single_value(ax: Any, x: float, y: float) -> None:
    """A panel with one data point shows its value as text: a lone dot on an axis from 142 to 158
    says nothing."""
    ax.text(0.5, 0.5, f"{y:.4g} at step {x:g}\n(the one value logged)", ha="center", va="center",
            fontsize=9, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Any, path: Path, svg: bool = False) -> list[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    out = [path]
    if svg:
        import matplotlib

        # text stays text (searchable, editable); a fixed salt: same data, same bytes
        with matplotlib.rc_context({"svg.hashsalt": "harness", "svg.fonttype": "none"}):
            fig.savefig(path.with_suffix(".svg"), metadata={"Date": None, "Creator": None})
        out.append(path.with_suffix(".svg"))
    return out


def _name(dataset: str, results: dict[str, Any] | None) -> str:
    name = (results or {}).get("name", "")
    return f"{dataset}" + (f" - {name}" if name else "")


def draw_curves(dataset: str, scores: Scores, results: dict[str, Any] | None, out_dir: Path) -> list[Path]:
    """ROC and PR curves, one per group, the AUC / AP and their 95 % CI in the legend."""
    from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

    out: list[Path] = []
    views = {g: v for g, v in scores.views().items() if len(set(v[0].tolist())) == 2}
    for kind in ("roc", "pr"):
        fig = _figure(5.5, 4.6)
        ax = fig.subplots()
        for group, (y, s) in views.items():
            n = len(y)
            if kind == "roc":
                fpr, tpr, _ = roc_curve(y, s)
                value = _pct(_metric(results, dataset, group, "auc"), roc_auc_score(y, s))
                ax.plot(fpr, tpr, lw=2 if group == ALL else 1.2, label=f"{group}: AUC {value} (n={n})")
            else:
                precision, recall, _ = precision_recall_curve(y, s)
                value = _pct(_metric(results, dataset, group, "ap"))
                ax.step(recall, precision, where="post", lw=2 if group == ALL else 1.2, label=f"{group}: AP {value} (n={n})")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
            ax.set(xlabel="false positive rate", ylabel="true positive rate")
        else:
            ax.set(xlabel="recall", ylabel="precision")
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
        _title(ax, f"{'ROC' if kind == 'roc' else 'Precision-recall'} (video level): {_name(dataset, results)}")
        if views:
            ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left", title="95% bootstrap CI", title_fontsize=7)
        ax.grid(alpha=0.3)
        out += _save(fig, out_dir / f"{kind}_{dataset}.png", svg=True)
    return out


def draw_histogram(dataset: str, scores: Scores, results: dict[str, Any] | None, out_dir: Path) -> list[Path]:
    return _save(histogram_figure(dataset, scores, results), out_dir / f"scores_{dataset}.png")


def verdict_threshold(dataset: str, results: dict[str, Any] | None) -> tuple[float, str]:
    """The threshold of the dataset's verdicts (its results block's, as `harness predict` uses it),
    else the run configuration's eval.threshold (results written before the block recorded one)."""
    block = ((results or {}).get("datasets") or {}).get(dataset) or {}
    record = block.get("threshold")
    if isinstance(record, dict) and isinstance(record.get("value"), (int, float)):
        return float(record["value"]), str(record.get("source", ""))
    value = (((results or {}).get("config") or {}).get("eval") or {}).get("threshold", 0.5)
    return float(value), "the run's eval.threshold"


def histogram_figure(dataset: str, scores: Scores, results: dict[str, Any] | None) -> Any:
    """Video scores of the reals and of each fake group, on shared bins over [0, 1], with the verdict
    threshold drawn; the count axis has whole numbers only."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(5.5, 3.8)
    ax = fig.subplots()
    bins = np.linspace(0, 1, 26)
    groups = np.asarray(scores.groups, dtype=object)
    real = scores.scores[scores.labels == 0]
    ax.hist(real, bins=bins, alpha=0.6, label=f"real (n={len(real)})", color="tab:blue")
    for i, g in enumerate(sorted(set(groups[scores.labels == 1].tolist()))):
        fake = scores.scores[(scores.labels == 1) & (groups == g)]
        ax.hist(fake, bins=bins, alpha=0.5, histtype="stepfilled", label=f"fake {g} (n={len(fake)})", color=f"C{i + 1}")
    threshold, source = verdict_threshold(dataset, results)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1,
               label=f"threshold {threshold:.3g}" + (" (calibrated)" if source.startswith("calibrated") else ""))
    ax.set(xlabel="video score (fake probability)", ylabel="videos", xlim=(0, 1))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no half videos
    _title(ax, f"Score histogram: {_name(dataset, results)}")
    ax.legend(fontsize=7)
    return fig


def draw_training(steps: list[dict[str, Any]], vals: list[dict[str, Any]], out_dir: Path, title: str = "") -> list[Path]:
    fig = training_figure(steps, vals, title)
    return [] if fig is None else _save(fig, out_dir / "training.png")


def training_figure(steps: list[dict[str, Any]], vals: list[dict[str, Any]], title: str = "") -> Any:
    """Each loss term, the learning rate and the validation AUC against the optimizer step (None
    when nothing was logged); a panel of one logged value shows it as text."""
    terms = [k for k in steps[0] if k not in NOT_LOSS_TERMS and isinstance(steps[0][k], (int, float))] if steps else []
    terms = [k for k in terms if _term_on(steps, k)]  # a switched-off term (weight 0, grid too small) gets no empty panel
    panels = terms + (["lr"] if steps and "lr" in steps[0] else []) + (["val_auc"] if vals else [])
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = _figure(3.4 * cols, 2.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax, key in zip(axes, panels):
        label = {"lr": "learning rate", "loss": "loss (total)", "val_auc": "validation AUC (self-blends)"}.get(key, f"loss term: {key}")
        _title(ax, label)
        points = [(r["step"], r["val_auc"]) for r in vals] if key == "val_auc" else [(r["step"], r.get(key, float("nan"))) for r in steps]
        if len(points) == 1:
            single_value(ax, *points[0])
            continue
        _training_panel(ax, key, points)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if title:
        _suptitle(fig, f"Training: {title}")
    return fig


def _training_panel(ax: Any, key: str, points: list[tuple[float, float]]) -> None:
    """One curve of the training figure: the validation AUC as dots, a loss term with its moving average."""
    x, y = [p[0] for p in points], [p[1] for p in points]
    if key == "val_auc":
        ax.plot(x, y, marker="o", color="tab:green")
        ax.set(ylim=(0, 1.02))
    else:
        ax.plot(x, y, lw=0.8, alpha=0.5 if key != "lr" else 1.0, color="tab:orange" if key == "lr" else "tab:blue")
        if key != "lr" and len(y) >= 10:  # a moving average over ~5 % of the steps
            w = max(2, len(y) // 20)
            smooth = np.convolve(np.nan_to_num(np.asarray(y, float)), np.ones(w) / w, mode="valid")
            ax.plot(x[w - 1 :], smooth, lw=1.5, color="tab:blue")
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _term_on(steps: list[dict[str, Any]], key: str) -> bool:
    """A loss term that was computed: some step logged a finite value other than 0."""
    return any(isinstance(r.get(key), (int, float)) and math.isfinite(r[key]) and r[key] != 0 for r in steps)


def draw_examples(dataset: str, path: Path, results: dict[str, Any] | None, out_dir: Path) -> list[Path]:
    """Columns: the most confident test fakes (highest score) then the least; rows: face crop,
    ground-truth mask (where the dataset has one), P_M."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as data:
            frames, truth, has_truth, pred = data["frames"], data["truth"], data["has_truth"], data["pred"]
            scores, groups = data["scores"], data["groups"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ReportError(f"{path} is truncated or not the examples file the run wrote ({type(exc).__name__}); "
                          "restore it or delete it to draw the report without it") from None
    order = np.argsort(-scores, kind="stable")  # most confident first
    n = len(order)
    if n == 0:
        return []
    fig = _figure(1.45 * n + 0.6, 4.9)
    axes = np.asarray(fig.subplots(3, n, squeeze=False))
    half = (n + 1) // 2
    for col, i in enumerate(order):
        which = "most" if col < half else "least"
        axes[0, col].imshow(frames[i])
        axes[0, col].set_title(wrapped(f"{which} confident {groups[i]} {scores[i]:.2f}", 1.4, 7), fontsize=7)
        if has_truth[i]:
            axes[1, col].imshow(truth[i], cmap="gray", vmin=0, vmax=255)
        else:
            axes[1, col].text(0.5, 0.5, "no mask", ha="center", va="center", fontsize=7, transform=axes[1, col].transAxes)
        axes[2, col].imshow(pred[i], cmap="inferno", vmin=0, vmax=255)
        for row in range(3):
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
    for row, label in enumerate(("face", "truth", "P_M")):
        axes[row, 0].set_ylabel(label, fontsize=8)
    _suptitle(fig, f"Localization examples (test fakes): {_name(dataset, results)}", 9)
    return _save(fig, out_dir / f"examples_{dataset}.png")


def draw_robustness(dataset: str, block: dict[str, Any], results: dict[str, Any] | None, out_dir: Path) -> list[Path]:
    """Video AUC against severity (levels 1-5), one line per distortion, clean as a dashed line
    (a results ``robustness`` block, harness/evaluation/robustness.py)."""
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    clean = (block.get("clean") or {}).get("value")
    if clean is not None:
        ax.axhline(100 * clean, color="black", linestyle="--", linewidth=1, label=f"clean {100 * clean:.1f}")
    for name, levels in block.get("conditions", {}).items():
        points = sorted((int(lv), entry["auc"]["value"]) for lv, entry in levels.items() if entry["auc"].get("value") is not None)
        if points:
            mean = (block.get("mean_over_levels", {}).get(name) or {}).get("auc")
            label = name + (f" (mean {100 * mean:.1f})" if mean is not None else "")
            ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o", label=label)
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.set_xlabel("severity level (DeeperForensics-1.0)")
    ax.set_ylabel("video AUC (%)")
    _title(ax, f"Robustness: {_name(dataset, results)}", 10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, out_dir / f"robustness_{dataset}.png", svg=True)


def draw_run(run_dir: Path, results: dict[str, Any] | None = None) -> list[Path]:
    """Draw every figure the run folder has the data for into ``run_dir/figures``; returns the
    files written (PNG first, then SVG where written). ``results`` defaults to results.json."""
    run_dir = Path(run_dir)
    if results is None and RunFolder(run_dir).results.is_file():
        from harness.reporting.results import read_results_file

        results = read_results_file(RunFolder(run_dir).results)
    out_dir = RunFolder(run_dir).figures
    written: list[Path] = []
    steps, vals = read_log(RunFolder(run_dir).log)
    written += draw_training(steps, vals, out_dir, (results or {}).get("name", ""))
    recorded = {safe_figure_name(d): d for d in (results or {}).get("datasets", {})}
    for path in sorted(RunFolder(run_dir).scores.glob("*.csv")):
        scores = read_scores(path)
        if path.stem in recorded:  # a legend never puts the results' AUC on a curve of other scores
            check_against_results(scores, path, results or {}, recorded[path.stem], RunFolder(run_dir).results)
        written += draw_curves(path.stem, scores, results, out_dir)
        written += draw_histogram(path.stem, scores, results, out_dir)
    for path in sorted(RunFolder(run_dir).examples.glob("*.npz")):
        written += draw_examples(path.stem, path, results, out_dir)
    for dataset, block in sorted((results or {}).get("datasets", {}).items()):
        if block.get("robustness"):
            written += draw_robustness(safe_figure_name(dataset), block["robustness"], results, out_dir)
    _remove_stale(out_dir, written)
    return written


def safe_figure_name(dataset: str) -> str:
    """The file-name form of a dataset name, as scores/<dataset>.csv uses it."""
    from harness.vocab.folder import file_stem

    return file_stem(dataset)


def _remove_stale(out_dir: Path, written: list[Path]) -> None:
    """Figures not redrawn now lost their data (a scores file deleted): a report must not show them."""
    if not out_dir.is_dir():
        return
    for figure in [*out_dir.glob("*.png"), *out_dir.glob("*.svg")]:
        if figure not in written:
            figure.unlink()


def figure_index(run_dir: Path) -> dict[str, list[str]]:
    """``{dataset or "training": [PNG paths relative to the run folder]}`` of the figures present,
    in display order (training, then per dataset ROC, PR, scores, examples)."""
    out_dir = RunFolder(run_dir).figures
    index: dict[str, list[str]] = {}
    if (out_dir / "training.png").is_file():
        index["training"] = [f"{RunFolder.FIGURES}/training.png"]
    datasets = sorted({p.stem.split("_", 1)[1] for p in out_dir.glob("*_*.png")})
    for dataset in datasets:
        files = [f"{RunFolder.FIGURES}/{kind}_{dataset}.png" for kind in ("roc", "pr", "scores", "examples", "robustness")]
        present = [f for f in files if (Path(run_dir) / f).is_file()]
        if present:
            index[dataset] = present
    return index
