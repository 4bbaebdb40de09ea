"""The `harness predict --json` document (validated by harness/schemas/predict.schema.json)."""

from __future__ import annotations

import math
from typing import Any

from harness.extend.defaults import defaults
from harness.predict.inference import MediaResult, Predictor

SCHEMA_VERSION = "harness.predict/1"


def _num(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(float(value), 6)


def _box(box: tuple[float, ...]) -> list[float]:
    return [round(float(v), 2) for v in box]


def media_report(result: MediaResult, outputs: dict[str, Any] | None = None, localization: dict[str, Any] | None = None) -> dict[str, Any]:
    """One input's block: status, verdict, video score, per-frame and per-face scores."""
    frames = []
    for fr in result.frames:
        faces = [
            {
                "box": _box(f.box),
                "crop_box": _box(f.crop_box),
                "detector_score": _num(f.detector_score),
                "score": _num(f.score),
                # of the crop, P_M >= 0.5; None when no map was made (neither --out nor --mask)
                "altered_fraction": None if f.mask is None else _num(float((f.mask >= 0.5).mean())),
            }
            for f in fr.faces
        ]
        frames.append({"index": fr.index, "score": _num(fr.score), "faces": faces})
    return {
        "path": str(result.path),
        "kind": result.kind,
        "status": result.status,
        "error": result.error,
        "score": _num(result.score),
        "verdict": result.verdict,
        "frames_total": result.frames_total,
        "frames_analysed": len(result.frames),
        "frames_with_face": result.frames_with_face,
        "frames": frames,
        "outputs": outputs,
        "localization": localization,
    }


def checkpoint_info(predictor: Predictor) -> dict[str, Any]:
    meta = predictor.meta
    return {
        "path": str(predictor.checkpoint) if predictor.checkpoint else None,
        "backbone": (meta.get("model") or {}).get("backbone") or meta.get("architecture"),  # an imported network: its name
        "img_size": predictor.img_size,
        "face_detector": predictor.detector_name,
        "face_detector_options": dict(predictor.detector_options),
        "trained_face_detector": meta.get("face_detector", defaults().legacy_face_detector),
        "crop": {"size": predictor.crop.crop_size, "margin": predictor.crop.margin, "forehead": predictor.crop.forehead,
                 "basis": predictor.crop.basis},
        "plugins": meta.get("plugins", []),
        "harness_version": meta.get("harness_version"),
        # an imported model: who converted it, and where its maps come from (Grad-CAM++ without a mask head)
        "importer": meta.get("importer"),
        "mask_source": predictor.mask_source,
    }


def build_report(
    files: list[dict[str, Any]],
    threshold: float,
    frames: int,
    predictor: Predictor | None = None,
    error: str | None = None,
    device: str | None = None,
    threshold_source: str | None = None,
) -> dict[str, Any]:
    """The whole document; ``error`` is set (and ``files`` may be empty) when nothing could run.
    ``threshold_source``: where the verdicts' threshold came from (calibrated, default, --threshold)."""
    from harness import __version__

    ok = [f for f in files if f["status"] == "ok"]
    return {
        "schema": SCHEMA_VERSION,
        "harness_version": __version__,
        "checkpoint": checkpoint_info(predictor) if predictor is not None else None,
        "device": device,
        "threshold": threshold,
        "threshold_source": threshold_source,
        "frames_requested": frames,
        "frame_aggregation": predictor.frame_aggregation if predictor else None,
        "video_aggregation": predictor.video_aggregation if predictor else None,
        "error": error,
        "files": files,
        "summary": {
            "inputs": len(files),
            "scored": len(ok),
            "failed": len(files) - len(ok),
            "fake": sum(1 for f in ok if f["verdict"] == "fake"),
            "real": sum(1 for f in ok if f["verdict"] == "real"),
        },
    }


SCHEMA_FILE = "predict.schema.json"


def schema() -> dict[str, Any]:
    from harness.common.schema_check import load_schema

    return load_schema(SCHEMA_FILE)


def validate(document: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError (the first problem by field) when ``document`` does not
    follow the documented schema."""
    from harness.common.schema_check import schema_errors

    errors = schema_errors(document, SCHEMA_FILE)
    if errors:
        raise errors[0]
