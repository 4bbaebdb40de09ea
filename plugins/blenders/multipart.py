"""The paper's multi-part local-deformation self-blender (Xu et al., Sci. Rep. 2025, Fig. 1, Eq. 1-6).

One real face is copied twice and each copy is augmented (colour, sharpen/downscale, JPEG): the
source ``Is`` and the target ``It``. The target gets local displacement warps (Eq. 1-5) around
landmark anchors (mouth corners, eye corners, brows, nose wings, jaw line), giving ``It'``. Region
masks (eyes, mouth, nose, whole face with forehead), each resized in the paper's range, are
rasterised as a rotated-grid mosaic (see ``grid_mask``) and composited:

    fake = Is * (1 - mask) + It' * mask        mask: 1 = altered

This is Eq. 6, O = Is*M + It'*(1-M), with the paper's M = 1 - mask: the paper keeps "the external
features of the source face and the internal features of the target face", so the altered
(white) mosaic region carries the deformed target and everything outside it is the source copy.
Where the mask is 0 the fake equals ``Is`` exactly.

Ablation switches (Table 4): ``multi_part=False`` uses the whole-face region only;
``local_deformation=False`` skips the warps. The record says which ran.

For the REAL counterpart of a training pair: ``real, result = blender.pair(face, lm, rng)`` gives
the source copy ``Is`` as the real (the pair then differs only inside the mask, as in SBI), or
``blender.augment_real(face, rng)`` draws an independent real with the source copy's augmentation;
either way reals and the outside of fakes share one distribution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.api import BlendResult, Register, hookimpl

from .augment import CopyAugment
from .blend_ops import composite, mask_box
from .deform import warp_disc
from .grid_mask import mosaic_mask
from .inputs import check_face, check_inputs
from .regions import SCALE_RANGES, base_polygons, face_size, scaled, up_axis

PARTS = ("eyes", "nose", "mouth")

#: Warp groups: anchors (landmark indices), move and radius ranges as fractions of the face size,
#: and how the move is directed ("up": along the face's up axis, sign drawn; "in": towards the
#: nose tip, i.e. slimming; "out": away from the nose centre line, sign drawn).
WARPS: dict[str, dict[str, Any]] = {
    "mouth_corners": {"anchors": (48, 54), "move": (0.02, 0.05), "radius": (0.12, 0.18), "dir": "up"},
    "eye_corners": {"anchors": (36, 45), "move": (0.012, 0.03), "radius": (0.07, 0.11), "dir": "up"},
    "brows": {"anchors": (19, 24), "move": (0.015, 0.035), "radius": (0.09, 0.13), "dir": "up"},
    "nose_wings": {"anchors": (31, 35), "move": (0.01, 0.025), "radius": (0.06, 0.09), "dir": "out"},
    "jaw": {"anchors": (4, 12), "move": (0.02, 0.05), "radius": (0.15, 0.22), "dir": "in"},
}
#: Which warps are visible through which region (a warp outside the mask would not show).
WARPS_FOR_REGION = {
    "eyes": ("eye_corners", "brows"),
    "nose": ("nose_wings",),
    "mouth": ("mouth_corners",),
    "face": tuple(WARPS),
}
#: The largest warp move of any group, as a fraction of the face size (pads the target's box).
MAX_MOVE = max(spec["move"][1] for spec in WARPS.values())


def _r(v: float, nd: int = 3) -> float:
    return round(float(v), nd)


class MultipartBlender:
    """Multi-part local-deformation self-blender; ``blender(face, landmarks68, rng) -> BlendResult``.

    Options (constructor kwargs):
        multi_part: draw eyes/nose/mouth parts (else whole face only), Table 4 switch.
        local_deformation: apply Eq. 1-2 warps to the target copy, Table 4 switch.
        face_prob: with multi_part, chance a sample uses the whole face instead of parts.
        part_prob: chance each part joins when parts are used (at least one always does).
        max_warps: at most this many warp groups per sample (each moves one or both sides).
        ref_size: crop size the paper's pixel ranges refer to; cell sizes scale with crop / ref_size.
        cell_px, angle_deg, opacity: the mosaic's ranges (paper: 4-16 px, +-5 deg, 85-100 %).
        soften: Gaussian edge blur sigma range, as a fraction of the cell size.
    """

    name = "multipart"

    def __init__(
        self,
        multi_part: bool = True,
        local_deformation: bool = True,
        face_prob: float = 0.35,
        part_prob: float = 0.5,
        max_warps: int = 2,
        ref_size: float = 224.0,
        cell_px: tuple[float, float] = (4.0, 16.0),
        angle_deg: float = 5.0,
        opacity: tuple[float, float] = (0.85, 1.0),
        soften: tuple[float, float] = (0.0, 0.6),
    ) -> None:
        if not 0.0 <= face_prob <= 1.0 or not 0.0 <= part_prob <= 1.0:
            raise ValueError("multipart: face_prob and part_prob must be probabilities in [0, 1]")
        if max_warps < 1:
            raise ValueError(f"multipart: max_warps must be >= 1, got {max_warps}")
        if ref_size <= 0 or min(cell_px) <= 0 or not 0 < opacity[0] <= opacity[1] <= 1:
            raise ValueError("multipart: ref_size and cell_px must be > 0, opacity within (0, 1]")
        self.multi_part = bool(multi_part)
        self.local_deformation = bool(local_deformation)
        self.face_prob = float(face_prob)
        self.part_prob = float(part_prob)
        self.max_warps = int(max_warps)
        self.ref_size = float(ref_size)
        self.cell_px = (float(cell_px[0]), float(cell_px[1]))
        self.angle_deg = float(angle_deg)
        self.opacity = (float(opacity[0]), float(opacity[1]))
        self.soften = (float(soften[0]), float(soften[1]))
        # Built once; per-call randomness comes only from the rng passed to __call__.
        self.source_augment = CopyAugment()
        self.target_augment = CopyAugment()

    def augment_real(self, face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The augmented real counterpart: the source copy's augmentation applied to ``face``."""
        return self.source_augment(check_face(face, "multipart.augment_real"), rng)[0]

    # -- the pieces --------------------------------------------------------------------------
    def _choose_regions(self, rng: np.random.Generator) -> list[str]:
        if not self.multi_part or rng.random() < self.face_prob:
            return ["face"]
        parts = [p for p in PARTS if rng.random() < self.part_prob]
        if not parts:
            parts = [PARTS[int(rng.integers(len(PARTS)))]]
        return [parts[i] for i in rng.permutation(len(parts))]  # the order they are applied in

    def _warps(
        self, target: np.ndarray, lm: np.ndarray, regions: list[str], rng: np.random.Generator,
        origin: tuple[int, int] = (0, 0),
    ) -> list[dict]:
        """Warp ``target`` (a crop whose top-left sits at ``origin`` in the face) in place."""
        choices = sorted({g for r in regions for g in WARPS_FOR_REGION[r]})
        k = int(rng.integers(1, min(self.max_warps, len(choices)) + 1))
        groups = [choices[i] for i in rng.choice(len(choices), size=k, replace=False)]
        size = face_size(lm)
        up = up_axis(lm)
        done = []
        for group in groups:
            spec = WARPS[group]
            move = float(rng.uniform(*spec["move"])) * size
            radius = float(rng.uniform(*spec["radius"])) * size
            sign = 1.0 if rng.random() < 0.5 else -1.0
            side = int(rng.integers(3))  # 0: both sides (symmetric), 1/2: one side only
            anchors = spec["anchors"] if side == 0 else (spec["anchors"][side - 1],)
            for idx in anchors:
                c = lm[idx].astype(np.float64)
                if spec["dir"] == "up":
                    direction = up * sign
                elif spec["dir"] == "in":
                    v = lm[30] - c
                    direction = v / max(float(np.hypot(*v)), 1e-6)
                else:
                    v = c - (lm[27] + lm[33]) / 2
                    direction = sign * v / max(float(np.hypot(*v)), 1e-6)
                m = c + direction * move
                shift = np.array(origin, np.float64)
                if warp_disc(target, c - shift, m - shift, radius):
                    done.append({"group": group, "anchor": int(idx), "c": [_r(c[0], 2), _r(c[1], 2)],
                                 "m": [_r(m[0], 2), _r(m[1], 2)], "r": _r(radius, 2)})
        return done

    # -- the blender ---------------------------------------------------------------------------
    def __call__(self, face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> BlendResult:
        return self.pair(face, landmarks, rng)[1]

    def pair(
        self, face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, BlendResult]:
        """(augmented real, fake): the real is the source copy ``Is``, so the pair differs only
        where the mask is non-zero. Cheaper than ``augment_real`` + ``__call__`` (one copy fewer)."""
        face, lm = check_inputs(face, landmarks, rng, "multipart")
        h, w = face.shape[:2]
        regions = self._choose_regions(rng)
        scales = {r: float(rng.uniform(*SCALE_RANGES[r])) for r in regions}
        polygons = {r: [scaled(p, scales[r]) for p in base_polygons(lm, r)] for r in regions}
        px = min(h, w) / self.ref_size
        cell = float(rng.uniform(*self.cell_px)) * px
        angle = float(rng.uniform(-self.angle_deg, self.angle_deg))
        opacity = float(rng.uniform(*self.opacity))
        phase = (float(rng.random()), float(rng.random()))
        sigma = float(rng.uniform(*self.soften)) * cell
        mask, info = mosaic_mask(polygons, (h, w), cell, angle, phase, opacity, sigma)
        fallback = False
        if not mask.any() and regions != ["face"]:
            # The drawn parts all fell outside the crop: use the whole face so the sample is a fake.
            fallback = True
            regions = ["face"]
            scales = {"face": 1.0}
            polygons = {"face": base_polygons(lm, "face")}
            mask, info = mosaic_mask(polygons, (h, w), cell, angle, phase, opacity, sigma)

        source, source_aug = self.source_augment(face, rng)
        # The target only shows inside the mask: augment and warp just the mask's box, padded by
        # the largest warp move so every sample a warp reads lies inside the crop we made.
        box = mask_box(mask)
        x0, y0, x1, y1 = box
        pad = int(np.ceil(MAX_MOVE * face_size(lm))) + 3
        x0, y0, x1, y1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)
        if x1 <= x0 or y1 <= y0:  # empty mask (landmarks mostly off the crop): nothing to paste
            x0, y0, x1, y1 = 0, 0, w, h
        target, target_aug = self.target_augment(np.ascontiguousarray(face[y0:y1, x0:x1]), rng)
        warps = self._warps(target, lm, regions, rng, origin=(x0, y0)) if self.local_deformation else []
        fake = composite(source, target, mask, origin=(x0, y0), box=box)

        record: dict[str, Any] = {
            "blender": "multipart",
            "multi_part": self.multi_part,
            "local_deformation": self.local_deformation,
            "regions": [{"name": r, "scale": _r(scales[r]), "cells": info["cells"][r]} for r in regions],
            "mosaic": {"cell_px": _r(cell, 2), "angle_deg": _r(angle, 2), "opacity": _r(opacity),
                       "soften_sigma_px": _r(sigma, 2), "pixel_fill": info["pixel_fill"]},
            "warps": warps,
            "augment": {"source": source_aug, "target": target_aug, "target_box": [x0, y0, x1, y1]},
            "composite": "fake = source*(1-mask) + warped_target*mask (paper Eq. 6, M = 1 - mask)",
            "mask_area": _r(float(mask.mean()), 4),
        }
        if fallback:
            record["fallback"] = "parts outside crop; whole face used"
        return source, BlendResult(image=fake, mask=mask, record=record)


#: `harness run --preset NAME` (or `ablation`: all four, the paper's Table 4): multi-part x local deformation.
PRESETS: dict[str, dict[str, bool]] = {
    "base": {"multi_part": False, "local_deformation": False},
    "deform": {"multi_part": False, "local_deformation": True},
    "multipart": {"multi_part": True, "local_deformation": False},
    "full": {"multi_part": True, "local_deformation": True},
}


@hookimpl
def register_blenders(register: Register) -> None:
    register(
        "multipart",
        MultipartBlender,
        "multi-part local-deformation self-blend (Xu et al. 2025): eyes/nose/mouth/face mosaics + Eq. 1-2 warps",
        presets=PRESETS,
    )
