"""Real/fake training pairs made on the fly from cached real faces.

Each item is one real face and its self-blended fake (same frame), so a batch of ``B`` items is
``B`` reals + ``B`` fakes: the convention recorded in results as ``batch = 2B images``.
Randomness comes only from ``numpy.random.default_rng([seed, epoch, index])``, so a sample is the
same whichever worker or process makes it, which is what makes resume and DDP reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch

from harness.common import faults
from harness.extend.contracts import capable
from harness.data.crop import resize_crop
from harness.extend.types import Blender


def _post_augment() -> A.Compose:
    # Applied alike to reals and fakes, so no augmentation can tell them apart by itself.
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5),
            A.ImageCompression(quality_range=(60, 100), p=0.3),
        ]
    )


@dataclass(frozen=True)
class TrainingItem:
    uid: str
    n_faces: int  # cached frames with a face (face_index 0, the largest face, is used)


class SelfBlendDataset(torch.utils.data.Dataset):
    """``frames_per_video`` items per real video per epoch; item -> (real, fake, mask) arrays."""

    def __init__(
        self,
        cache_root: str,
        videos: list[TrainingItem],
        blender: Blender,
        img_size: int,
        frames_per_video: int = 8,
        seed: int = 0,
    ) -> None:
        if not videos:
            raise ValueError("no cached training faces: preprocessing found no face in the training videos")
        self.cache_root = cache_root
        self.videos = videos
        self.blender = blender
        self.pairs = capable(blender, "blender", "pair")
        self.img_size = int(img_size)
        self.frames_per_video = int(frames_per_video)
        self.seed = int(seed)
        self.epoch = 0
        self._augment = _post_augment()
        self._cache: Any = None  # opened lazily: one SQLite connection per worker process

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos) * self.frames_per_video

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        return state

    def _pick_face(self, uid: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random cached frame's largest face: metadata from SQLite, one crop decoded."""
        if self._cache is None:
            from harness.data.cache import FaceCache

            self._cache = FaceCache(self.cache_root, create=False)
        rows = self._cache.face_rows(uid, face_index=0)
        row = rows[int(rng.integers(len(rows)))]
        return self._cache.load_image(row["file"]), row["landmarks"]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        video = self.videos[index % len(self.videos)]
        crop, crop_landmarks = self._pick_face(video.uid, rng)
        image, landmarks = resize_face(crop, crop_landmarks, self.img_size)
        if self.pairs:
            # The blender's own augmented real: the copy that forms the fake's outside, so real and
            # fake differ only inside the mask (SBI's convention).
            real, fake = self.blender.pair(image, landmarks, rng)
        else:
            real, fake = image, self.blender(image, landmarks, rng)
        mask = fake.mask.astype(np.float32)
        aug_seed = int(rng.integers(2**31))
        self._augment.set_random_seed(aug_seed)
        real = self._augment(image=real)["image"]
        self._augment.set_random_seed(aug_seed)  # same flip for the fake and its mask
        out = self._augment(image=fake.image, mask=mask)
        return real, out["image"], out["mask"].astype(np.float32), index


def quiet_worker(_: int) -> None:
    """DataLoader worker set-up: one thread each, so workers do not fight the training threads."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def resize_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize a square face crop (crop.resize_crop, as evaluation and predict do) and its landmarks to ``size``."""
    h, w = image.shape[:2]
    scale = np.array([size / w, size / h], np.float32)  # exactly 1 when already at size
    return resize_crop(image, size), np.asarray(landmarks, np.float32) * scale


def collate_pairs(items: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]) -> dict[str, torch.Tensor]:
    """Stack B (real, fake, mask) items into 2B images: reals first, then fakes.

    np.stack + torch.from_numpy: one copy, no per-element Python work.
    """
    faults.point("train.collate")
    reals = np.stack([it[0] for it in items])
    fakes = np.stack([it[1] for it in items])
    masks = np.stack([it[2] for it in items])
    b = len(items)
    images = torch.from_numpy(np.concatenate([reals, fakes]))  # (2B, H, W, 3) uint8
    all_masks = torch.from_numpy(np.concatenate([np.zeros_like(masks), masks]))[:, None]
    labels = torch.cat([torch.zeros(b), torch.ones(b)])
    return {"images": images, "masks": all_masks, "labels": labels, "index": torch.tensor([it[3] for it in items])}
