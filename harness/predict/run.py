"""`harness predict` without the command line: score files, write pictures, build the JSON report."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.common import faults
from harness.predict.inference import DEFAULT_FRAMES, MediaResult, Predictor, PredictSetupError, collect_inputs
from harness.predict.report import build_report, media_report


@dataclass
class PredictOptions:
    threshold: float | None = None  # None: the checkpoint's calibrated threshold (set before scoring)
    frames: int = DEFAULT_FRAMES
    out: Path | None = None  # write overlays, overlay video and contact sheet here
    explain: bool = False  # Grad-CAM++ column / PNGs (needs out)
    mask: Path | None = None  # ground-truth mask file, or folder of masks named like the inputs
    mask_kind: str = "binary"
    top: int = 8  # frames on the contact sheet
    force: bool = False  # replace an existing --out folder that is not empty

    def check(self, inputs: Sequence[Path] = ()) -> None:
        """Reject bad arguments with a message naming the option and the fix (the numbers by the
        rules every command shares: harness/vocab/config_check.py); ``inputs`` (the files, folders,
        mask and checkpoint read) are never inside, equal to or around ``out``."""
        from harness.vocab.config_check import ConfigError, Range, check_number

        try:
            if self.threshold is not None:
                check_number(self.threshold, Range(0, 1, fix="a probability of fake"), "threshold", "--threshold")
            check_number(self.frames, Range(1, fix="frames per video, evenly spaced (default 32)"), "frames", "--frames", integer=True)
            check_number(self.top, Range(1, fix="frames on the contact sheet (default 8)"), "top", "--top", integer=True)
        except ConfigError as exc:
            raise PredictSetupError(str(exc)) from None
        if self.mask_kind not in ("binary", "grey"):
            raise PredictSetupError(f"--mask-kind must be 'binary' or 'grey' (NeuralTextures renders), got {self.mask_kind!r}")
        if self.explain and self.out is None:
            raise PredictSetupError("--explain writes heatmap images: give --out DIR too")
        if self.out is not None:
            from harness.common.files import OutputError, check_output

            try:
                check_output(self.out, "--out", folder=True, force=self.force, inputs=inputs)
            except OutputError as exc:
                raise PredictSetupError(str(exc)) from None

    def inputs(self, paths: Sequence[Path], checkpoint: Path | None) -> list[Path]:
        """What a predict reads: the inputs, the mask and the checkpoint (``out`` must keep clear of them)."""
        return [Path(p) for p in (*paths, self.mask, checkpoint) if p is not None]

    def check_memory(self, predictor: Predictor) -> None:
        """One video's frames (a crop and a mask each, at the model's side) fit in this machine's memory."""
        from harness.vocab.config_check import ConfigError, check_fits_memory

        side = predictor.img_size
        try:
            check_fits_memory(self.frames, 7 * side**2 + 3 * predictor.crop.crop_size**2, "--frames",
                              f"one video's {self.frames} frames at {side} px")
        except ConfigError as exc:
            raise PredictSetupError(str(exc)) from None


def predict_files(
    predictor: Predictor,
    paths: list[Path],
    options: PredictOptions,
    on_result: Callable[[MediaResult, dict[str, Any]], None] | None = None,
    on_inputs: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Score every input (folders expanded); one report block per file, bad files included.

    ``on_inputs(n)`` is called once the inputs are listed (n files, unreadable ones included) and
    ``on_result(result, block)`` after each file (progress, tables). Arrays of a file are
    released before the next one is read, so memory holds one input at a time. Each input's
    pictures are written to a temporary folder moved into place when they are complete, so a stop
    keeps the finished inputs whole; with ``force`` over a folder that holds files, the new folder
    replaces it only when every input is done (the old one is kept whole until then)."""
    from harness.common.files import OutputError, output_folder
    from harness.models.threshold import threshold_of

    inputs = options.inputs(paths, predictor.checkpoint)
    options.check(inputs)
    if options.threshold is None:
        options.threshold = threshold_of(predictor.meta)[0]
    out = Path(options.out) if options.out is not None else None
    if out is None or not out.is_dir() or not any(out.iterdir()):  # new or empty: nothing there to lose
        return _score_files(predictor, paths, options, on_result, on_inputs)
    try:
        with output_folder(out, "--out", force=options.force, inputs=inputs) as tmp:
            blocks = _score_files(predictor, paths, replace(options, out=tmp), on_result, on_inputs)
    except OutputError as exc:  # a full disk when the pictures are moved into place
        raise PredictSetupError(str(exc)) from None
    return _rebased(blocks, str(tmp), str(options.out))


def _rebased(value: Any, tmp: str, out: str) -> Any:
    """``value`` (a report block) with paths under the temporary folder ``tmp`` moved to ``out``."""
    if isinstance(value, str):
        return value.replace(tmp, out)
    if isinstance(value, dict):
        return {k: _rebased(v, tmp, out) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebased(v, tmp, out) for v in value]
    return value


def _score_files(predictor: Predictor, paths: list[Path], options: PredictOptions,
                 on_result: Callable[[MediaResult, dict[str, Any]], None] | None,
                 on_inputs: Callable[[int], None] | None) -> list[dict[str, Any]]:
    from harness.predict.outputs import output_names

    files, problems = collect_inputs(paths)
    if on_inputs:
        on_inputs(len(files) + len(problems))
    blocks: list[dict[str, Any]] = []
    for path, message in problems:
        missing = MediaResult(path=path, status="unreadable", error=message)
        block = media_report(missing)
        blocks.append(block)
        if on_result:
            on_result(missing, block)
    names = output_names(files)
    explainer = None
    if options.explain:
        from harness.predict.explain import GradCamPlusPlus

        explainer = GradCamPlusPlus(predictor.model, predictor.device)
    for path in files:
        faults.point("predict.file")
        result, block = _one_file(predictor, path, options, explainer, names[path], single_input=len(files) == 1)
        blocks.append(block)
        if on_result:
            on_result(result, block)
        result.frames = []  # drop the decoded frames before the next file
    return blocks


def _one_file(predictor: Predictor, path: Path, options: PredictOptions, explainer: Any, name: str,
              single_input: bool) -> tuple[MediaResult, dict[str, Any]]:
    """Score one input, write its pictures and compare with its mask; failures are its own block."""
    from harness.predict.outputs import write_outputs
    from harness.predict.truth import find_mask, localization_scores

    try:
        # the maps (the mask head, or Grad-CAM++) only for the pictures or the mask comparison
        maps = options.out is not None or options.mask is not None
        result = predictor.analyse(path, frames=options.frames, threshold=options.threshold, maps=maps)
    except PredictSetupError:
        raise  # the model cannot score (NaN scores): stop, no verdict for any file
    except Exception as exc:  # one odd file must not stop the others; say what it was
        result = MediaResult(path=path, status="error", error=f"{path}: {type(exc).__name__}: {exc}")
    if not result.ok:
        return result, media_report(result)
    outputs = localization = None
    folder = Path(options.out) / name if options.out is not None else None
    try:
        if folder is not None:
            from harness.common.files import output_folder

            with output_folder(folder, "--out") as tmp:  # complete, or not there
                outputs = write_outputs(result, tmp, options.threshold, explainer, options.top)
            outputs = _rebased(outputs, str(tmp), str(folder))
        mask_path, problem = find_mask(path, options.mask, single_input=single_input)
        if mask_path is not None:
            localization = localization_scores(result, mask_path, options.mask_kind)
        elif problem is not None:
            localization = {"mask": None, "error": problem}
    except Exception as exc:  # a full disk or an unwritable folder costs this input, not the batch
        where = f"writing its outputs to {folder}" if folder is not None and outputs is None else "comparing with its mask"
        result = MediaResult(path=path, status="error", frames_total=result.frames_total,
                             error=f"{path}: scored, but {where} failed ({type(exc).__name__}: {exc}); "
                                   "check that the folder is writable and has space")
        outputs = localization = None
    return result, media_report(result, outputs, localization)


def predict(paths: list[str | Path], checkpoint: str | Path, options: PredictOptions | None = None, device: str = "auto") -> dict[str, Any]:
    """Load ``checkpoint`` and score ``paths``: the JSON document of `harness predict --json`.
    Raises PredictSetupError when the checkpoint or the options cannot be used."""
    from harness.models.threshold import GIVEN, threshold_of

    options = options or PredictOptions()
    options.check(options.inputs([Path(p) for p in paths], Path(checkpoint)))
    predictor = Predictor.from_checkpoint(checkpoint, device=device)
    source = GIVEN if options.threshold is not None else threshold_of(predictor.meta)[1]
    blocks = predict_files(predictor, [Path(p) for p in paths], options)
    return build_report(blocks, options.threshold, options.frames, predictor, device=str(predictor.device),
                        threshold_source=source)
