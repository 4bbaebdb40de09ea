"""`harness predict PATH... --checkpoint RUN`: verdict, scores, localization overlays, Grad-CAM++.

Exit status: 0 when every input was scored, 1 when at least one input could not be (unreadable,
no face: each gets one line and the others keep their results), 2 when nothing could run (the
checkpoint, its face detector or an option is unusable).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

import typer

from harness.extend.hookspecs import hookimpl

EXIT_SOME_FAILED = 1
EXIT_SETUP = 2


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _frame_line(block: dict[str, Any], limit: int = 32) -> str:
    scores = [_score(f["score"]) if f["score"] is not None else "none" for f in block["frames"][:limit]]
    more = f" ... (+{len(block['frames']) - limit})" if len(block["frames"]) > limit else ""
    return " ".join(scores) + more


# Long only by its typer option declarations (one per line); the body is short.
def predict_command(
    paths: List[Path] = typer.Argument(..., help="Videos, images, or folders of them (searched recursively)."),
    checkpoint: str = typer.Option(..., "--checkpoint", "-c", help="A run folder, its checkpoint folder, a folder written by `harness import`, or a foreign file as [IMPORTER:]FILE[?KEY=VALUE], as `harness evaluate --checkpoint` takes it (e.g. mesonet:Meso4_DF.h5, deepfakebench:ckpt.pth?arch=core)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", "-t", help="Verdict is 'fake' when the video score is at least this (default: the threshold the checkpoint calibrated on its validation self-blends, else 0.5)."),
    frames: int = typer.Option(32, "--frames", "-n", help="Frames per video, evenly spaced over the whole video."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write overlays, overlay video and contact sheet here (one folder per input); a new or empty folder unless --force."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out folder that is not empty (never an input)."),
    explain: bool = typer.Option(False, "--explain", help="Add Grad-CAM++ heatmaps of the classification output (needs --out)."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Ground-truth mask video/image (one input), or a folder of masks named like the inputs: adds IoU to the output."),
    mask_kind: str = typer.Option("binary", "--mask-kind", help="binary, or grey for rendered masks (FF++ NeuralTextures)."),
    top: int = typer.Option(8, "--top", help="Most suspicious frames on the contact sheet."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON document on stdout (schema: harness/schemas/predict.schema.json)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1 ..."),
    detector: Optional[str] = typer.Option(None, "--face-detector", help="Face detector plugin (dlib, retinaface ...; none: each image is one face, already cropped; default: the one the checkpoint was trained with)."),
    detector_option: Optional[List[str]] = typer.Option(None, "--face-detector-option", help="KEY=VALUE for the face detector (repeatable), e.g. upsample=2 or confidence=0.5."),
) -> None:
    """Score videos or images with a trained checkpoint: per-frame and per-face scores, video score and verdict."""
    began = time.perf_counter()
    from harness.models.threshold import FALLBACK
    from harness.predict.inference import Predictor, PredictSetupError
    from harness.predict.report import build_report
    from harness.predict.run import PredictOptions, predict_files
    from harness.common.ui import console

    options = PredictOptions(threshold=threshold, frames=frames, out=out, explain=explain, mask=mask, mask_kind=mask_kind, top=top,
                             force=force)

    def setup_failed(message: str) -> None:
        console.print(f"[bold red]error:[/bold red] {_escape(message)}", soft_wrap=True)
        if as_json:
            shown = threshold if threshold is not None and 0 <= threshold <= 1 else FALLBACK
            print(json.dumps(build_report([], shown, max(1, frames), error=message), indent=2))
        raise typer.Exit(EXIT_SETUP)

    try:
        _check_names(detector, checkpoint)  # first: a misspelt name reads and writes nothing
        options.check(options.inputs(paths, checkpoint))
        predictor = Predictor.from_checkpoint(checkpoint, device=device, detector=detector,
                                              detector_options=parse_options(detector_option or [], "--face-detector-option"))
        options.check_memory(predictor)
    except PredictSetupError as exc:
        setup_failed(str(exc))
    threshold, source = _announce(options, predictor)
    loaded = time.perf_counter()

    def show(result: Any, block: dict[str, Any]) -> None:
        if block["status"] != "ok":
            console.print(f"[bold red]{block['status']}:[/bold red] {_escape(block['error'])}", soft_wrap=True)
        elif not as_json:
            console.print(f"[dim]{_escape(block['path'])}: frame scores {_frame_line(block)}[/dim]", soft_wrap=True)

    try:
        with ScoringProgress(began, loaded) as scoring:
            blocks = predict_files(predictor, list(paths), options, on_inputs=scoring.start,
                                   on_result=lambda result, block: (show(result, block), scoring.done(block)))
    except PredictSetupError as exc:
        setup_failed(str(exc))
    report = build_report(blocks, threshold, frames, predictor, device=str(predictor.device), threshold_source=source)
    show_report(report, as_json)
    if not as_json:
        _after_table(threshold, source, out, console)
    if report["summary"]["failed"]:
        raise typer.Exit(EXIT_SOME_FAILED)


def _announce(options: Any, predictor: Any) -> tuple[float, str]:
    """The verdict threshold and where it came from (said on stderr), then how faces are found when
    no detector looks for them."""
    from harness.common.ui import console

    threshold, source = _verdict_threshold(options, predictor, console)
    if predictor.crop.detection_note():  # --face-detector none: no face was looked for
        console.print(_escape(predictor.crop.detection_note()), soft_wrap=True)
    return threshold, source


class ScoringProgress:
    """A bar over the inputs, and one line saying how long the first result took from the start of
    the command line: start-up (imports, options), loading the model, then the first input."""

    def __init__(self, began: float, loaded: float) -> None:
        from harness.common.ui import progress

        self.began, self.loaded = began, loaded
        self.bar = progress(transient=False)
        self.task: Any = None
        self.first: float | None = None

    def __enter__(self) -> ScoringProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def start(self, inputs: int) -> None:
        self.task = self.bar.add_task("scoring", total=inputs, info="")

    def done(self, block: dict[str, Any]) -> None:
        from harness.cli import STARTED
        from harness.common.ui import console

        if self.first is None:
            self.first = time.perf_counter()
            console.print(f"first result after {self.first - STARTED:.1f} s (start-up {self.began - STARTED:.1f} s, "
                          f"model {self.loaded - self.began:.1f} s, first input {self.first - self.loaded:.1f} s)")
        if self.task is not None:
            self.bar.update(self.task, advance=1, info=_escape(Path(block["path"]).name))


def _check_names(detector: str | None, checkpoint: str) -> None:
    """The face detector's name, then the importer the checkpoint names: one line with a suggestion."""
    from harness.common.errors import HarnessError
    from harness.models.importing import parse_spec
    from harness.predict.inference import PredictSetupError
    from harness.vocab.config_check import check_names

    try:
        check_names(face_detector=detector)
        parse_spec(checkpoint)
    except HarnessError as exc:
        raise PredictSetupError(str(exc)) from None


def _verdict_threshold(options: Any, predictor: Any, console: Any) -> tuple[float, str]:
    """(threshold, where it came from), set in ``options``: --threshold, else the checkpoint's
    calibrated one (the one results.json's accuracy uses too), else 0.5 and why; said on one line."""
    from harness.models.threshold import GIVEN, threshold_of

    if options.threshold is not None:
        return options.threshold, GIVEN
    options.threshold, source = threshold_of(predictor.meta)
    console.print(f"threshold {options.threshold:g}: {_escape(source)}; --threshold overrides it", soft_wrap=True)
    return options.threshold, source


def _after_table(threshold: float, source: str, out: Path | None, console: Any) -> None:
    """Where the verdicts' threshold came from, and (without --out) how to see where the face was altered."""
    console.print(f"verdict: fake when the score is >= {threshold:g} ({_escape(source)})", soft_wrap=True)
    if out is None:
        console.print("where: add --out DIR for each frame's localization overlay, an overlay video and a contact sheet "
                      "(--explain adds Grad-CAM++)", soft_wrap=True)


def parse_options(items: list[str], flag: str) -> dict[str, Any]:
    """``["upsample=2", "device=cpu"]`` -> ``{"upsample": 2, "device": "cpu"}`` (JSON values where they parse)."""
    from harness.predict.inference import PredictSetupError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PredictSetupError(f"{flag} {item!r}: give KEY=VALUE, e.g. {flag} upsample=2")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _escape(text: str | None) -> str:
    from rich.markup import escape

    return escape(text or "")


def show_report(report: dict[str, Any], as_json: bool) -> None:
    """The report on stdout: the JSON document alone, or the table of verdicts."""
    from harness.common.ui import print_table

    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        print_table(verdicts_table(report))


def verdicts_table(report: dict[str, Any]) -> Any:
    """One row per input: its whole path, verdict, score, faces/frames, and the IoU and output
    folder columns only when an input has one."""
    from harness.common.ui import Column, Listing, cell

    ckpt = report["checkpoint"] or {}
    table = Listing([Column("file"), Column("verdict"), Column("score", right=True), Column("faces/frames", right=True),
                     Column("IoU", right=True), Column("outputs")],
                    title=f"harness predict: {ckpt.get('backbone')} @ {ckpt.get('img_size')} px, threshold {report['threshold']:g}")
    for f in report["files"]:
        if f["status"] == "ok":
            verdict = cell("FAKE", style="bold red") if f["verdict"] == "fake" else cell("real", style="bold green")
        else:
            verdict = cell(f["status"], style="yellow")
        loc = f.get("localization") or {}
        iou = _score(loc.get("iou")) if loc.get("iou") is not None else ("-" if not loc or "error" not in loc else "no mask")
        outputs = (f.get("outputs") or {}).get("folder") or ""
        # the whole path: FF++ fakes share their names across methods
        table.add_row(f["path"], verdict, _score(f["score"]), f"{f['frames_with_face']}/{f['frames_analysed']}", iou, outputs)
    table = table.without_empty("IoU", "outputs")
    s = report["summary"]
    table.notes.append(f"{s['scored']} scored ({s['fake']} fake, {s['real']} real), {s['failed']} failed")
    table.notes += [f"mask: {f['path']}: {(f.get('localization') or {})['error']}" for f in report["files"]
                    if (f.get("localization") or {}).get("error")]
    return table


@hookimpl
def register_commands(app: typer.Typer) -> None:
    """Add `predict` to the root `harness` app (called by harness/cli.py)."""
    app.command("predict")(predict_command)
