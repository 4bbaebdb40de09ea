"""Does constant edge padding change any score of a crop that lies inside the image?

Scores the same files through ``harness predict --json`` twice with one trained checkpoint, its
recorded crop rule set once to ``pad: reflect`` (the old fill) and once to ``pad: constant`` (black),
and compares the per-face scores: faces whose crop box lies inside the frame, and faces whose box
leaves it. Numbers, not pass/fail.

    python benchmarks/bench_padding.py --checkpoint runs/<id> DEMO_DIR/original_sequences DEMO_DIR/manipulated_sequences
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _frame_size(path: str) -> tuple[int, int]:
    import cv2

    image = cv2.imread(path)
    if image is None:
        capture = cv2.VideoCapture(path)
        ok, image = capture.read()
        capture.release()
        if not ok:
            raise SystemExit(f"cannot read {path}")
    return image.shape[1], image.shape[0]


def _predict(checkpoint: Path, pad: str, paths: list[str], frames: int, workdir: Path) -> dict:
    """predict's JSON with the checkpoint's crop rule set to ``pad``."""
    from harness.training.checkpoint import resolve

    folder = workdir / pad
    shutil.copytree(resolve(checkpoint), folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["crop"] = {**meta.get("crop", {}), "pad": pad}
    (folder / "model.json").write_text(json.dumps(meta))
    out = subprocess.run([sys.executable, "-m", "harness", "predict", *paths, "-c", str(folder), "--json",
                          "--frames", str(frames), "--device", "cpu"], capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {pad: _predict(args.checkpoint, pad, args.paths, args.frames, Path(tmp)) for pad in ("reflect", "constant")}
    inside, edge, files = [], [], []
    for old, new in zip(runs["reflect"]["files"], runs["constant"]["files"]):
        assert old["path"] == new["path"]
        if old["score"] is None or new["score"] is None:
            continue
        files.append(abs(old["score"] - new["score"]))
        width, height = _frame_size(old["path"])
        for f_old, f_new in zip(old["frames"], new["frames"]):
            for a, b in zip(f_old["faces"], f_new["faces"]):
                x0, y0, x1, y1 = a["crop_box"]
                within = x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height
                (inside if within else edge).append(abs(a["score"] - b["score"]))
    report = {
        "files_scored": len(files), "file_score_max_abs_diff": max(files, default=None),
        "faces_inside": len(inside), "inside_max_abs_diff": max(inside, default=None),
        "faces_past_edge": len(edge), "edge_mean_abs_diff": float(np.mean(edge)) if edge else None,
        "edge_max_abs_diff": max(edge, default=None),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
