"""The robustness conditions' names: DeeperForensics-1.0's seven distortions, their five severity
levels and their column titles, read by harness.evaluation.perturb (which applies them) and by the
leaderboard (which lays out their table)."""

from __future__ import annotations

LEVELS = (1, 2, 3, 4, 5)

#: name -> (parameter per level 1..5, what it is, DeeperForensics' short code)
DISTORTIONS: dict[str, tuple[tuple[float, ...], str, str]] = {
    "saturation": ((0.4, 0.3, 0.2, 0.1, 0.0), "colour saturation (chroma scale)", "CS"),
    "contrast": ((0.85, 0.725, 0.6, 0.475, 0.35), "colour contrast (pixel scale)", "CC"),
    "block": ((16, 32, 48, 64, 80), "block-wise occlusion (8x8 grey blocks)", "BW"),
    "noise": ((0.001, 0.002, 0.005, 0.01, 0.05), "white Gaussian noise (variance, YCbCr)", "GNC"),
    "blur": ((7, 9, 13, 17, 21), "Gaussian blur (kernel size)", "GB"),
    "jpeg": ((2, 3, 4, 5, 6), "JPEG (down/up-scale factor)", "JPEG"),
    "video": ((30, 32, 35, 38, 40), "video compression (H.264 CRF)", "VC"),
}
#: column titles (LipForensics' table order)
TITLES = {"saturation": "Saturation", "contrast": "Contrast", "block": "Block", "noise": "Noise", "blur": "Blur",
          "jpeg": "JPEG", "video": "Video comp."}
