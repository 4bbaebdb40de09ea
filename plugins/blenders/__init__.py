"""Built-in self-blenders: ``multipart`` (the paper's method) and ``sbi`` (the CVPR 2022 baseline).

multipart.py / sbi.py   the blenders and their ``register_blenders`` hooks (entry points)
regions.py              eye / nose / mouth / whole-face polygons from 68 landmarks
grid_mask.py            the rotated-grid "mosaic" mask rasteriser
deform.py               Eq. 1-5: displacement weight and field, bilinear sampling, one-disc warp
augment.py              per-copy colour / frequency / JPEG augmentation drawn from the rng
blend_ops.py            compositing; inputs.py: input checks (the preview grid is harness.reporting.preview)
"""
