"""`harness predict` throughput: seconds per 32-frame video on CPU, per backbone.

Generates a 720p H.264 clip (the public-domain astronaut face drifting on a 1280x720 canvas) in a
temporary folder, saves an untrained checkpoint bundle per backbone at the paper's 224 px (timing
does not depend on the weights), and measures with warm models:

* ``score``: decode + detect + landmarks + crop + model, i.e. ``Predictor.analyse`` (what `--json`
  costs), split into its model part (``model``) and the rest;
* ``out``: writing the per-frame overlays, the H.264 overlay video and the contact sheet (``--out``);
* ``explain``: Grad-CAM++ of the 8 contact-sheet faces (``--explain``).

Target: a 32-frame video scored in under 10 s on 2 CPU cores with Swin-T (a practitioner checking
one clip waits seconds, not minutes). Run: ``python benchmarks/bench_predict.py``
(``--backbones swin,resnet50,vit-s --threads 2 --repeat 2 --json out.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path


from bench_preprocess import make_clip  # the same synthetic 720p H.264 clip

TARGET_SECONDS = 10.0


def bench_backbone(name: str, clip: Path, tmp: Path, frames: int, repeat: int) -> dict:

    from harness.models import build_model
    from harness.predict import Predictor
    from harness.predict.explain import GradCamPlusPlus
    from harness.predict.outputs import suspicious_frames, write_outputs
    from harness.training.checkpoint import save_model

    model = build_model(name, img_size=224)
    meta = {"model": model.config, "img_size": 224, "face_detector": "dlib", "crop": {"size": 256, "margin": 0.3}, "run": {}}
    save_model(tmp / name, model, meta)
    del model
    predictor = Predictor.from_checkpoint(tmp / name, device="cpu")
    predictor.analyse(clip, frames=2)  # warm: detector models, allocator, first-call overheads

    model_seconds: list[float] = []
    original = predictor.score_crops

    def timed(crops):
        t = time.perf_counter()
        out = original(crops)
        model_seconds.append(time.perf_counter() - t)
        return out

    predictor.score_crops = timed
    score, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = predictor.analyse(clip, frames=frames)
        score.append(time.perf_counter() - t)
    assert result is not None and result.ok, result.error if result else "no result"

    t = time.perf_counter()
    write_outputs(result, tmp / f"out-{name}", 0.5, None, top=8)
    out_s = time.perf_counter() - t
    explainer = GradCamPlusPlus(predictor.model)
    crops = [face.crop for _, face in suspicious_frames(result, 8)]
    explainer(crops[:1])  # warm
    t = time.perf_counter()
    explainer(crops)
    explain_s = time.perf_counter() - t
    return {
        "backbone": name,
        "frames": len(result.frames),
        "faces": sum(len(fr.faces) for fr in result.frames),
        "score_s": round(statistics.median(score), 3),
        "model_s": round(statistics.median(model_seconds), 3),
        "decode_detect_crop_s": round(statistics.median(score) - statistics.median(model_seconds), 3),
        "out_s": round(out_s, 3),
        "explain_8_faces_s": round(explain_s, 3),
        "total_with_out_and_explain_s": round(statistics.median(score) + out_s + explain_s, 3),
        "params_m": round(sum(p.numel() for p in predictor.model.parameters()) / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", default="swin,resnet50,vit-s")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2 = the target machine)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clip = make_clip(tmp / "clip.mp4")
        for name in [b.strip() for b in args.backbones.split(",") if b.strip()]:
            row = bench_backbone(name, clip, tmp, args.frames, args.repeat)
            rows.append(row)
            print(json.dumps(row), flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    summary = {"target_s": TARGET_SECONDS, "threads": args.threads, "cpus": os.cpu_count(), "load_avg_1m": load,
               "video": "1280x720 H.264, 120 frames, one face", "rows": rows}
    print(f"\nseconds per {args.frames}-frame 720p video, {args.threads} torch threads (load avg {load:.1f}):")
    print(f"{'backbone':10} {'score':>7} {'model':>7} {'detect':>7} {'--out':>7} {'explain':>8}  target {TARGET_SECONDS:g} s")
    for r in rows:
        flag = "ok" if r["score_s"] <= TARGET_SECONDS else "SLOW"
        print(f"{r['backbone']:10} {r['score_s']:7.2f} {r['model_s']:7.2f} {r['decode_detect_crop_s']:7.2f} {r['out_s']:7.2f} {r['explain_8_faces_s']:8.2f}  {flag}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
