"""What the end of a run says under its numbers: where the encoder's weights came from, and whether
the model collapsed to one output (every validation image alike, or one score for every test video).

A collapsed run still has a results file (AUC 50 [50, 50] is a number); these lines make sure the
reader of the summary knows it means the model learned nothing, not that the fakes were hard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.vocab.folder import RunFolder

#: a model collapsed when its validation features and scores spread less than these (the trainer
#: measures the spread; these lines say what it means)
FEATURE_SPREAD_FLOOR = 0.02
SCORE_SPREAD_FLOOR = 0.01
#: test scores closer together than this are one value (a model that ignores its input)
SAME_SCORE = 1e-6


def weights_line(training: dict[str, Any], pretrained: Any) -> str:
    """``encoder weights: ...`` from the results' training.init_weights record."""
    record = training.get("init_weights")
    if isinstance(record, dict) and record.get("file"):
        digest = str(record.get("sha256") or "")[:12]
        return f"encoder weights: {record.get('source', '?')}, {record['file']}" + (f" (sha256 {digest}...)" if digest else "")
    if pretrained in (False, None, "none"):
        return "encoder weights: random initialisation (--pretrained none; the paper starts from ImageNet)"
    return f"encoder weights: {pretrained}"


def collapse_lines(results: dict[str, Any], run_dir: Path | None) -> list[str]:
    """One warning per sign of collapse: validation spreads under the trainer's floors, or a test
    dataset whose videos all got the same score (read from the run folder's scores/ files)."""
    lines = []
    spread = (results.get("training") or {}).get("validation_spread")
    if isinstance(spread, dict) and spread.get("feature_spread", 1) < FEATURE_SPREAD_FLOOR \
            and spread.get("score_spread", 1) < SCORE_SPREAD_FLOOR:
        lines.append(f"validation collapsed: every image gave nearly the same feature (spread "
                     f"{spread['feature_spread']:.4f}) and score (std {spread['score_spread']:.4f}); the "
                     "detector learned nothing: train longer, or from ImageNet weights (--pretrained imagenet)")
    for dataset, score in _constant_scores(run_dir):
        lines.append(f"{dataset}: every test video got the same score {score:.6f}, so its AUC is chance, not "
                     "a measurement: the model ignores its input (too few steps, or random weights)")
    return lines


def _constant_scores(run_dir: Path | None) -> list[tuple[str, float]]:
    from harness.reporting.scores import ReportError, read_scores

    found = []
    for path in sorted(RunFolder(run_dir).scores.glob("*.csv")) if run_dir else []:
        try:
            scores = read_scores(path).scores
        except ReportError:
            continue
        if len(scores) > 1 and float(scores.max() - scores.min()) < SAME_SCORE:
            found.append((path.stem, float(scores[0])))
    return found


def undefined_lines(results: dict[str, Any]) -> list[str]:
    """Why a dataset's video-level metrics show "-" in the table (e.g. a test CSV of fakes only)."""
    lines = []
    for dataset, block in (results.get("datasets") or {}).items():
        video = (((block or {}).get("groups") or {}).get("all") or {}).get("video") or {}
        reasons: dict[str, list[str]] = {}
        for name, metric in video.items():
            if isinstance(metric, dict) and metric.get("undefined"):
                reasons.setdefault(str(metric["undefined"]), []).append(name.upper())
        for reason, names in reasons.items():
            lines.append(f"{dataset}: video {' and '.join(names)} shown as '-': {reason}")
    return lines


def end_notes(results: dict[str, Any], run_dir: Path | None) -> list[str]:
    """The lines printed after the summary table (markup-free)."""
    from harness.reporting.board_rows import imported_text, is_imported

    training = results.get("training") or {}
    pretrained = (results.get("config") or {}).get("pretrained")
    provenance = results.get("provenance")
    # an imported model: where it came from, never the encoder weights of a recipe it did not have
    first = imported_text(provenance) if is_imported(provenance) else weights_line(training, pretrained)
    return [first, *(f"note: {line}" for line in undefined_lines(results)),
            *(f"warning: {line}" for line in collapse_lines(results, run_dir))]


def predict_hint(run_dir: Path) -> str | None:
    """The `harness predict` command on a real test file of the run (the demo's too, under the cache
    home), with ``--out`` for the overlays that show where: the most confidently caught test fake of
    the first scores file that names its files, else its first video. None when no file is here."""
    import shlex

    checkpoint = _scored_checkpoint(run_dir)
    media = _example_file(run_dir)
    if checkpoint is None or media is None:
        return None
    out = f"predict-{Path(media).stem}"
    return (f"try it on one test file: harness predict {shlex.quote(media)} --checkpoint {shlex.quote(str(checkpoint))} "
            f"--out {shlex.quote(out)}")


def _scored_checkpoint(run_dir: Path) -> Path | None:
    """The model a run folder scored: its own checkpoint/, or the one an evaluation names."""
    import json

    folder = RunFolder(run_dir)
    if folder.checkpoint.is_dir():
        return Path(run_dir)
    try:
        named = json.loads(folder.evaluation.read_text(encoding="utf-8")).get("checkpoint")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(named) if isinstance(named, str) and Path(named).exists() else None


def _example_file(run_dir: Path) -> str | None:
    from harness.reporting.scores import ReportError, read_scores

    for path in sorted(RunFolder(run_dir).scores.glob("*.csv")):
        try:
            scores = read_scores(path)
        except ReportError:
            continue
        rows = [(int(label), float(score), media) for media, label, score in zip(scores.paths, scores.labels, scores.scores)
                if media and Path(media).is_file()]
        if rows:
            fakes = [r for r in rows if r[0] == 1]
            return max(fakes, key=lambda r: (r[1], r[2]))[2] if fakes else rows[0][2]
    return None
