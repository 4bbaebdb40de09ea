"""The local displacement deformation (paper Eq. 1-2) and bilinear interpolation (Eq. 3-5)."""

from __future__ import annotations

import numpy as np
import pytest

from harness_plugins.blenders.deform import (
    bilinear_sample,
    displacement_field,
    displacement_weight,
    warp_disc,
)

C = np.array([40.0, 30.0])
R = 12.0


def _circle(r: float, n: int = 64) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return C + r * np.stack([np.cos(t), np.sin(t)], axis=1)


def test_weight_is_zero_on_and_outside_the_circle() -> None:
    m = C + [3.0, -2.0]
    assert np.allclose(displacement_weight(_circle(R), C, m, R), 0.0, atol=1e-12)
    assert np.all(displacement_weight(_circle(R * 1.5), C, m, R) == 0.0)


def test_weight_at_the_centre_follows_eq1_and_tends_to_one() -> None:
    m = C + [0.0, 6.0]  # a large move: Eq. 1 gives (r^2 / (r^2 + |m-c|^2))^2 at the centre
    assert displacement_weight(C, C, m, R) == pytest.approx((R**2 / (R**2 + 36.0)) ** 2)
    small = C + [0.0, 0.01 * R]  # the paper's "full weight at the centre" for a small move
    assert displacement_weight(C, C, small, R) == pytest.approx(1.0, abs=3e-4)


def test_weight_falls_from_centre_to_circle() -> None:
    m = C + [0.5, 0.5]
    radii = np.linspace(0, R, 25)
    pts = C + np.stack([radii, np.zeros_like(radii)], axis=1)
    alpha = displacement_weight(pts, C, m, R)
    assert np.all(np.diff(alpha) < 0)
    assert alpha[0] > 0.98 and alpha[-1] == pytest.approx(0.0, abs=1e-12)


def test_displacement_at_centre_is_m_minus_c() -> None:
    m = C + [0.05, -0.08]
    u = displacement_field(C, C, m, R)
    assert np.allclose(C - u, m - C, rtol=1e-3, atol=1e-6)  # x - u = alpha (m - c), alpha ~ 1
    big = C + [4.0, 0.0]  # for any move, exactly alpha(c) * (m - c)
    assert np.allclose(C - displacement_field(C, C, big, R), displacement_weight(C, C, big, R) * (big - C))


def test_identity_when_m_equals_c() -> None:
    grid = np.stack(np.meshgrid(np.arange(20.0, 60.0), np.arange(10.0, 50.0)), axis=-1)
    pts = np.concatenate([grid.reshape(-1, 2), _circle(R)])  # includes points exactly on the circle
    u = displacement_field(pts, C, C, R)
    assert np.all(np.isfinite(u))
    assert np.array_equal(u, pts)


def test_bilinear_is_exact_on_a_linear_ramp() -> None:
    ys, xs = np.mgrid[0:32, 0:48].astype(np.float64)
    ramp = 3.0 * xs - 2.0 * ys + 7.0
    rgb = np.stack([ramp, 2 * ramp, -ramp], axis=2)
    rng = np.random.default_rng(0)
    u = np.stack([rng.uniform(0, 47, 500), rng.uniform(0, 31, 500)], axis=1)
    expected = 3.0 * u[:, 0] - 2.0 * u[:, 1] + 7.0
    assert np.allclose(bilinear_sample(ramp, u), expected, atol=1e-9)
    assert np.allclose(bilinear_sample(rgb, u), np.stack([expected, 2 * expected, -expected], 1), atol=1e-9)


def test_bilinear_weights_are_the_opposite_areas() -> None:
    img = np.zeros((2, 2))
    img[0, 1] = 1.0  # only neighbour (x1, y0) is lit: its weight is fx * (1 - fy) (Eq. 3)
    assert bilinear_sample(img, np.array([0.25, 0.4])) == pytest.approx(0.25 * 0.6)


def _smooth_image() -> np.ndarray:
    ys, xs = np.mgrid[0:64, 0:80].astype(np.float64)
    img = 127 + 60 * np.sin(xs / 7.0) * np.cos(ys / 9.0) + ys
    return np.clip(np.stack([img, img[::-1], 255 - img], axis=2), 0, 255).astype(np.uint8)


def test_warp_disc_matches_the_equations_and_leaves_the_outside_alone() -> None:
    img = _smooth_image()
    out = img.copy()
    m = C + [2.5, -3.0]
    assert warp_disc(out, C, m, R)
    ys, xs = np.mgrid[0:64, 0:80].astype(np.float64)
    pts = np.stack([xs, ys], axis=-1)
    expected = bilinear_sample(img, displacement_field(pts, C, m, R))
    # cv2.remap's bilinear uses 1/32 px fixed-point weights: allow a couple of levels.
    assert np.abs(out.astype(float) - expected).max() <= 3.0
    outside = np.hypot(xs - C[0], ys - C[1]) >= R
    assert np.array_equal(out[outside], img[outside])
    assert not np.array_equal(out, img)


def test_warp_pushes_content_from_c_towards_m() -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    img[30:33, 30:33] = 255  # a bright dot at (31, 31)
    c, m = np.array([31.0, 31.0]), np.array([31.0, 26.0])
    warp_disc(img, c, m, 20.0)
    ys, xs = np.nonzero(img[:, :, 0] > 100)
    assert ys.mean() < 28.0 and abs(xs.mean() - 31.0) < 0.5


def test_warp_disc_outside_the_image_is_a_no_op() -> None:
    img = _smooth_image()
    out = img.copy()
    assert not warp_disc(out, np.array([-50.0, -50.0]), np.array([-48.0, -50.0]), 10.0)
    assert np.array_equal(out, img)
    # a circle that is only partly inside still warps without error
    assert warp_disc(out, np.array([2.0, 3.0]), np.array([5.0, 3.0]), 10.0)
