"""Model assembly: backbone plugins + the shared Swin-Unet decoder + heads, the losses and SAM."""

from harness.models.detector import DetectorModel, ModelOutput, build_model
from harness.models.inputs import MEAN, STD, normalise, to_tensor
from harness.models.losses import DetectorLoss
from harness.models.sam import SAM

__all__ = ["DetectorModel", "ModelOutput", "build_model", "MEAN", "STD", "normalise", "to_tensor", "DetectorLoss", "SAM"]
