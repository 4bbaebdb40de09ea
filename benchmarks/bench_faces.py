"""Face-detector recall and speed on hard frames: small, dark, blurred, rotated, JPEG-compressed.

Frames are made from the public-domain astronaut face (``harness.data.sample_face``): the face,
feathered into a textured 640x360 background at a random position, is

* scaled so that it is 40 to 200 px across (jaw to jaw, the landmark box width);
* darkened (a dim room: the whole frame times 0.3, 0.15 or 0.1, plus sensor noise);
* blurred (Gaussian, sigma 2 and 3.5 px at 100 px);
* rotated in plane by 15 and 30 degrees;
* JPEG-compressed at quality 30 and 10;
* and DFDC-like: 70 px, dark x0.3, JPEG 50.

A face counts as found when a box's centre lies in the true face box and its size is within 0.5-2x
the true box's. Each detector sees the same frames: dlib HOG without upsampling (the pipeline's first, coarse
pass), dlib HOG with upsample 1 (the plugin's default), dlib's CNN, and the fallback (HOG, then HOG
on a brightened frame when it is dark, then the CNN); RetinaFace too when its package and weights
are installed. Speed is frames per CPU-second of this process with OMP_NUM_THREADS=1, i.e. frames/s
per core on a machine shared with others, boxes and 68 landmarks included. Numbers, not pass/fail.

Run: ``python benchmarks/bench_faces.py`` (``--frames 8 --detectors dlib,dlib-cnn --json out.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WIDTH, HEIGHT = 640, 360
#: name -> (face px across, transforms)
CONDITIONS: dict[str, dict] = {
    "40 px": {"size": 40},
    "50 px": {"size": 50},
    "60 px": {"size": 60},
    "80 px": {"size": 80},
    "120 px": {"size": 120},
    "200 px": {"size": 200},
    "dark x0.3 (100 px)": {"size": 100, "dark": 0.3},
    "dark x0.15 (100 px)": {"size": 100, "dark": 0.15},
    "dark x0.1 (100 px)": {"size": 100, "dark": 0.1},
    "blur s2 (100 px)": {"size": 100, "blur": 2.0},
    "blur s3.5 (100 px)": {"size": 100, "blur": 3.5},
    "rotate 15 (100 px)": {"size": 100, "rotate": 15},
    "rotate 30 (100 px)": {"size": 100, "rotate": 30},
    "jpeg q30 (100 px)": {"size": 100, "jpeg": 30},
    "jpeg q10 (100 px)": {"size": 100, "jpeg": 10},
    "DFDC-like: 70 px dark x0.3 jpeg q50": {"size": 70, "dark": 0.3, "jpeg": 50},
}


def background(rng: np.random.Generator) -> np.ndarray:
    """A smooth colour gradient with low-frequency texture (a wall, a room)."""
    import cv2

    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    base = np.stack([90 + 40 * np.sin(xx / 97.0), 100 + 30 * np.cos(yy / 61.0), 110 + 0.05 * xx], -1)
    noise = cv2.resize(rng.normal(0, 25, (HEIGHT // 16, WIDTH // 16, 3)).astype(np.float32), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def make_frame(condition: dict, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """One test frame and the true face box (the landmark box) in frame pixels."""
    import cv2

    from harness.data.sample_face import astronaut_face

    face, lm = astronaut_face(256)
    face, lm = np.array(face), np.array(lm)
    angle = float(condition.get("rotate", 0)) * (1 if rng.random() < 0.5 else -1)
    span = float(lm[:, 0].max() - lm[:, 0].min())
    scale = condition["size"] / span
    # Feathered ellipse around the face: no hard square edge for a detector to latch onto.
    alpha = np.zeros((256, 256), np.float32)
    cv2.ellipse(alpha, (128, 136), (118, 128), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 6)
    matrix = cv2.getRotationMatrix2D((128, 128), angle, scale)
    side = int(np.ceil(256 * scale * 1.5)) + 2
    matrix[:, 2] += (side / 2 - 128)
    patch = cv2.warpAffine(face, matrix, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    a = cv2.warpAffine(alpha, matrix, (side, side), flags=cv2.INTER_LINEAR)[..., None]
    pts = np.c_[lm, np.ones(len(lm))] @ matrix.T
    x = int(rng.integers(0, max(1, WIDTH - side)))
    y = int(rng.integers(0, max(1, HEIGHT - side)))
    frame = background(rng).astype(np.float32)
    region = frame[y : y + side, x : x + side]
    h, w = region.shape[:2]
    region[:] = a[:h, :w] * patch[:h, :w] + (1 - a[:h, :w]) * region
    pts += (x, y)
    if "blur" in condition:
        frame = cv2.GaussianBlur(frame, (0, 0), condition["blur"])
    if "dark" in condition:
        frame = frame * condition["dark"] + rng.normal(0, 3.0, frame.shape)
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    if "jpeg" in condition:
        ok, buf = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(condition["jpeg"])])
        frame = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    box = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
    return frame, box


def found(faces: list, truth: tuple[float, float, float, float]) -> bool:
    tx0, ty0, tx1, ty1 = truth
    tside = np.sqrt((tx1 - tx0) * (ty1 - ty0))
    for f in faces:
        x0, y0, x1, y1 = f.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        side = np.sqrt(max(0.0, x1 - x0) * max(0.0, y1 - y0))
        if tx0 <= cx <= tx1 and ty0 <= cy <= ty1 and 0.5 <= side / max(tside, 1e-6) <= 2.0:
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="frames per condition")
    parser.add_argument("--detectors", default="dlib:upsample=0,dlib,dlib-cnn,dlib-fallback,retinaface",
                        help="detector plugins, NAME or NAME:OPTION=INT")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()

    import harness

    detectors = {}
    for name in [d.strip() for d in args.detectors.split(",") if d.strip()]:
        plugin, _, opt = name.partition(":")
        options = {k: int(v) for k, v in (o.split("=") for o in opt.split(";") if o)}
        try:
            detectors[name] = harness.plugin("face_detector", plugin, **options)
        except Exception as exc:  # noqa: BLE001 - an optional detector that is not installed
            print(f"skipping {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    rng = np.random.default_rng(args.seed)
    frames = {c: [make_frame(spec, rng) for _ in range(args.frames)] for c, spec in CONDITIONS.items()}
    for det in detectors.values():  # warm up: models loaded outside the timing
        det.detect(frames["120 px"][0][0])

    recall: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for name, det in detectors.items():
        recall[name], total = {}, 0.0
        for cond, items in frames.items():
            hits = 0
            for frame, truth in items:
                start = time.process_time()
                faces = det.detect(frame)
                total += time.process_time() - start
                hits += found(faces, truth)
            recall[name][cond] = hits / len(items)
        seconds[name] = total
        print(f"{name}: done ({total:.1f} CPU s)", flush=True)

    n = sum(len(v) for v in frames.values())
    names = list(detectors)
    width = max(len(c) for c in CONDITIONS) + 2
    print(f"\nrecall over {args.frames} frames per condition ({WIDTH}x{HEIGHT} frames; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")
    print("condition".ljust(width) + "".join(f"{n_:>17}" for n_ in names))
    for cond in CONDITIONS:
        print(cond.ljust(width) + "".join(f"{100 * recall[d][cond]:>16.0f}%" for d in names))
    print("all".ljust(width) + "".join(f"{100 * np.mean(list(recall[d].values())):>16.0f}%" for d in names))
    print("frames/s (1 core)".ljust(width) + "".join(f"{n / seconds[d]:>17.2f}" for d in names))
    for d in names:
        calls = getattr(detectors[d], "calls", None)
        if calls is not None:
            print(f"{d}: which pass found the faces, over its boxes() calls (warm-up included): {calls}")
    if args.json:
        args.json.write_text(json.dumps({"frames_per_condition": args.frames, "size": [WIDTH, HEIGHT], "recall": recall,
                                         "fps_per_core": {d: n / seconds[d] for d in names}}, indent=2))


if __name__ == "__main__":
    main()
