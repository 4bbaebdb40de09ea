"""`harness predict`: verdict, per-frame and per-face scores, localization overlays, Grad-CAM++.

From Python::

    from harness.predict import PredictOptions, predict
    report = predict(["clip.mp4"], "runs/<id>", PredictOptions(out=Path("out"), explain=True))
"""

from harness.predict.inference import FaceResult, FrameResult, MediaResult, Predictor, PredictSetupError, collect_inputs
from harness.predict.overlay import paste_mask, render_frame
from harness.predict.report import build_report, media_report, validate
from harness.predict.run import PredictOptions, predict, predict_files

__all__ = [
    "FaceResult", "FrameResult", "MediaResult", "Predictor", "PredictSetupError", "collect_inputs",
    "paste_mask", "render_frame", "build_report", "media_report", "validate",
    "PredictOptions", "predict", "predict_files",
]
