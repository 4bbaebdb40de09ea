"""Training-step and inference throughput per backbone on CPU, full detector vs bare encoder; and
inference faces/s and peak memory of every importable architecture beside the harness's own.

The bare encoder is the same backbone plugin (the timm model read out at its four stages) with a
pooled-logit BCE on its stride-32 map; the full model adds the heads, the shared Swin-Unet decoder
and the three losses. Their ratio is the decoder's + losses' cost.

Target: the full Swin-UNet training step (forward + backward, SAM excluded: it doubles both
sides alike) costs at most 1.35x the bare Swin-T encoder's step at the same batch and size.

    python benchmarks/bench_models.py                      # all backbones, 224 px, batch 8
    python benchmarks/bench_models.py --backbones swin --repeats 5
    python benchmarks/bench_models.py --only infer         # the inference table alone

The inference table scores a batch of faces through the harness's one scoring path (resize, scale,
forward, sigmoid: harness.evaluation.runner.predict_faces) at each model's own input size, each
model in a fresh process so that its peak resident memory (ru_maxrss: weights, activations,
imports) is its own. Importable models are built with random weights (no file needed): the cost is
the architecture's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import torch
import torch.nn.functional as F

TARGET_RATIO = 1.35


def _time(fn, warmup: int, repeats: int) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def bench(backbone: str, size: int, batch: int, warmup: int, repeats: int) -> dict[str, float]:
    from harness.models import DetectorLoss, build_model

    torch.manual_seed(0)
    model = build_model(backbone, img_size=size)
    encoder = model.encoder
    pool_head = torch.nn.Linear(encoder.channels[3], 1)
    loss_fn = DetectorLoss()
    x = torch.randn(batch, 3, size, size)
    labels = (torch.arange(batch) % 2).float()
    masks = torch.zeros(batch, 1, size, size)
    masks[1::2, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0

    def full_step() -> None:
        model.zero_grad(set_to_none=True)
        total, _ = loss_fn(model(x), labels, masks)
        total.backward()

    def bare_step() -> None:
        encoder.zero_grad(set_to_none=True)
        logit = pool_head(encoder(x)[3].mean(dim=(2, 3))).squeeze(1)
        F.binary_cross_entropy_with_logits(logit, labels).backward()

    def full_infer() -> None:
        with torch.inference_mode():
            model(x)

    def bare_infer() -> None:
        with torch.inference_mode():
            encoder(x)

    def flops(fn) -> float:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            fn()
        return counter.get_total_flops()

    model.train()
    # Load-independent cross-check: counted matmul/conv FLOPs of the two training steps.
    flop_ratio = flops(full_step) / flops(bare_step)
    # Interleave so background load hits both sides alike.
    t_bare = _time(bare_step, warmup, repeats)
    t_full = _time(full_step, warmup, repeats)
    t_bare = min(t_bare, _time(bare_step, 0, repeats))
    t_full = min(t_full, _time(full_step, 0, repeats))
    model.eval()
    i_bare = _time(bare_infer, warmup, repeats)
    i_full = _time(full_infer, warmup, repeats)
    return {
        "train_full": batch / t_full,
        "train_bare": batch / t_bare,
        "train_ratio": t_full / t_bare,
        "flop_ratio": flop_ratio,
        "infer_full": batch / i_full,
        "infer_bare": batch / i_bare,
        "infer_ratio": i_full / i_bare,
    }


#: (label, importer, build options, input px, input scale): every importable architecture, as its
#: importer records it in the bundle
IMPORTABLE: list[tuple[str, str, dict, int, str]] = (
    [(f"mesonet {a}", "mesonet", {"arch": a}, 256, "unit") for a in ("meso4", "mesoinception4")]
    + [(f"deepfakebench {a}", "deepfakebench", {"arch": a}, 256, "symmetric")
       for a in ("xception", "core", "spsl", "f3net", "efficientnetb4", "meso4", "meso4Inception")]
    + [("sbi efficientnet-b4", "sbi", {}, 380, "unit")]
)


def infer_one(spec: str, faces: int, batch: int, repeats: int) -> dict[str, float]:
    """Faces/s and peak RSS of one model (run in its own process): ``importer|options-json|px|scale``
    or ``|backbone|px|imagenet`` for a harness backbone's full detector."""
    import resource

    import numpy as np

    from harness.evaluation.runner import predict_faces

    importer, options, size, scale = spec.split("|")
    torch.manual_seed(0)
    if importer:
        from harness.extend import registry

        model = registry.create("importer", importer).build(json.loads(options))
    else:
        from harness.models import build_model

        model = build_model(options, img_size=int(size))
    model.eval()
    crops = list(np.random.default_rng(0).integers(0, 256, (faces, int(size), int(size), 3), dtype=np.uint8))
    run = lambda: predict_faces(model, crops, int(size), "cpu", batch, scale)  # noqa: E731
    with torch.inference_mode():
        seconds = _time(run, 1, repeats)
    return {"faces_per_s": faces / seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def inference_table(backbones: list[str], size: int, faces: int, batch: int, repeats: int, threads: int) -> None:
    print(f"\nInference on CPU, {threads} threads, {faces} faces in batches of {batch}: the harness's scoring path; "
          "one process per model")
    header = f"{'model':<34} {'px':>4} {'faces/s':>8} {'peak RSS MiB':>13}"
    print(header + "\n" + "-" * len(header))
    rows = [(f"harness {b} (full detector)", f"|{b}|{size}|imagenet", size) for b in backbones]
    rows += [(label, f"{importer}|{json.dumps(options)}|{px}|{scale}", px) for label, importer, options, px, scale in IMPORTABLE]
    for label, spec, px in rows:
        cmd = [sys.executable, __file__, "--infer-one", spec, "--faces", str(faces), "--batch", str(batch),
               "--repeats", str(repeats), "--threads", str(threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(f"{label:<34} {px:>4} failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:80]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{label:<34} {px:>4} {r['faces_per_s']:>8.2f} {r['peak_rss_mib']:>13.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["swin", "swin-s", "resnet50", "vit-s"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--only", choices=["train", "infer"], help="one of the two tables (default: both)")
    parser.add_argument("--faces", type=int, default=16, help="faces scored per repeat in the inference table")
    parser.add_argument("--infer-one", help=argparse.SUPPRESS)  # one model, in its own process
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    if args.infer_one:
        print(json.dumps(infer_one(args.infer_one, args.faces, args.batch, args.repeats)))
        return
    if args.only != "train":
        inference_table(args.backbones, args.size, args.faces, args.batch, args.repeats, args.threads)
    if args.only == "infer":
        return

    print(f"CPU, {args.threads} threads, {args.size} px, batch {args.batch}; images/s (higher is better)")
    header = f"{'backbone':<10} {'train full':>10} {'train bare':>10} {'ratio':>6} {'FLOPx':>6}   {'infer full':>10} {'infer bare':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    results = {}
    for name in args.backbones:
        r = results[name] = bench(name, args.size, args.batch, args.warmup, args.repeats)
        print(
            f"{name:<10} {r['train_full']:>10.2f} {r['train_bare']:>10.2f} {r['train_ratio']:>6.2f} {r['flop_ratio']:>6.2f}   "
            f"{r['infer_full']:>10.2f} {r['infer_bare']:>10.2f} {r['infer_ratio']:>6.2f}",
            flush=True,
        )
    if "swin" in results:
        ratio = results["swin"]["train_ratio"]
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        print(
            f"\nSwin-UNet training step / bare Swin-T step = {ratio:.2f}x time, "
            f"{results['swin']['flop_ratio']:.2f}x FLOPs: {verdict} the {TARGET_RATIO}x target (time). "
            "Time ratios need an otherwise idle machine."
        )


if __name__ == "__main__":
    main()
