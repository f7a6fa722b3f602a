"""A fast NumPy renderer of shaded mannequins: person crops, multi-person scenes, COCO files.

The mannequin is built on the 17 Human3.6M joints (:data:`pose_lab.skeletons.H36M17`)
given in **camera coordinates (mm)**: 21 tapered capsules (pelvis, abdomen,
chest, shoulders, torso sides, neck, limbs, hands, feet), an oval head and
hair (on the back of the head, so the facing direction is visible). Every part is
rasterised where it projects, with a depth per pixel
(``depth = axis depth - radius * sqrt(1 - u^2)``, ``u`` the normalised distance
to the projected axis); a **z-buffer** keeps the nearest surface, so limbs
occlude each other and people occlude people. Pixels are Lambert-shaded with a
per-image light, coloured per subject (skin, hair, shirt, trousers, shoes,
short/long sleeves, shorts), optionally striped, and composited over a varied
background (gradients, smooth colour noise, random rectangles and discs, floor
and horizon, fine noise).

Conventions
-----------
* 2D coordinates are pixels with **integer values at pixel centres**
  (``image[r, c]`` is centred on ``(x=c, y=r)``), the convention of
  :mod:`pose_lab.heatmaps`.
* Cameras are pinhole (``u = f X / Z + c``, :func:`pose_lab.geometry.project_pinhole`)
  for crops and scenes. :func:`render_pose` also accepts a
  :class:`pose_lab.geometry.Camera` with Human3.6M distortion: joints are then
  projected with :func:`pose_lab.geometry.project_to_2d` and the capsules are
  drawn between the distorted joints (their radii from the pinhole scale).
* Visibility comes from the z-buffer: a keypoint is *visible* (COCO ``v = 2``)
  when the nearest surface at its pixel is at most its own depth inside the
  body (the body radius there plus a margin, 30-45 mm for the face points) in
  front of it, *occluded* (``v = 1``) otherwise, and ``v = 0`` outside the
  image. ``x, y`` are always the true projections, also for ``v = 0`` (the COCO
  writer stores ``0, 0, 0`` for those, as the official files do).
* COCO-17 keypoints: the 12 limb points are the H36M joints; the nose, eyes and
  ears are points on the rendered head sphere, placed from the head's
  orientation exactly as the motion engine defines them
  (:func:`pose_lab.data.synthetic.motion.coco_keypoints_3d`); without a head
  orientation the head faces the body's front.
* Boxes are COCO ``[x, y, w, h]`` of the silhouette in mask convention: ``x``
  the first covered column, ``w`` the number of columns (``pycocotools.mask.toBbox``).
* Determinism: every function takes ``seed`` (int or ``numpy.random.Generator``);
  the same arguments and seed give byte-identical output.

Speed: :func:`render_crops` renders whole batches with a few dozen NumPy calls
per body part for all crops at once; a scanline rasteriser evaluates only the
covered pixels. About 0.4-0.6 ms per 128x128 crop on one core, pose generation
included (``benchmarks/bench_render.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_lab.skeletons import COCO17, H36M17

__all__ = [
    "render_crops",
    "render_scene",
    "render_scenes",
    "render_pose",
    "write_coco_dataset",
    "sample_appearance",
    "Appearance",
    "mask_to_rle",
    "rle_area",
    "PART_NAMES",
    "COCO_CATEGORY",
]

# --------------------------------------------------------------------------
# joints and body model
# --------------------------------------------------------------------------
HIP, RHIP, RKNEE, RFOOT, LHIP, LKNEE, LFOOT, SPINE, THORAX, NECK, HEAD = range(11)
LSHO, LELB, LWRI, RSHO, RELB, RWRI = range(11, 17)

# Derived anchor points, appended after the 17 joints.
(HEAD_A, HEAD_B, HAIR, LHAND, RHAND, LTOE, RTOE,
 NOSE, LEYE, REYE, LEAR, REAR) = range(17, 29)
NUM_ANCHORS = 29

# Colour parts.
SKIN, HAIRC, SHIRT, SLEEVE, PANTS, LOWER, SHOES = range(7)

# name, anchor a, anchor b, radius at a (mm), radius at b (mm), colour part, stripes allowed
_PARTS = (
    ("pelvis", RHIP, LHIP, 92.0, 92.0, PANTS, False),
    ("abdomen", HIP, SPINE, 112.0, 118.0, SHIRT, True),
    ("chest", SPINE, THORAX, 122.0, 108.0, SHIRT, True),
    ("shoulders", LSHO, RSHO, 60.0, 60.0, SHIRT, True),
    ("side_l", LSHO, LHIP, 62.0, 78.0, SHIRT, True),
    ("side_r", RSHO, RHIP, 62.0, 78.0, SHIRT, True),
    ("neck", THORAX, NECK, 48.0, 44.0, SKIN, False),
    ("head", HEAD_A, HEAD_B, 88.0, 90.0, SKIN, False),
    ("hair", HAIR, HAIR, 88.0, 88.0, HAIRC, False),
    ("l_upper_arm", LSHO, LELB, 47.0, 39.0, SHIRT, True),
    ("l_forearm", LELB, LWRI, 38.0, 30.0, SLEEVE, True),
    ("l_hand", LWRI, LHAND, 34.0, 28.0, SKIN, False),
    ("r_upper_arm", RSHO, RELB, 47.0, 39.0, SHIRT, True),
    ("r_forearm", RELB, RWRI, 38.0, 30.0, SLEEVE, True),
    ("r_hand", RWRI, RHAND, 34.0, 28.0, SKIN, False),
    ("l_thigh", LHIP, LKNEE, 80.0, 54.0, PANTS, False),
    ("l_shin", LKNEE, LFOOT, 52.0, 38.0, LOWER, False),
    ("l_foot", LFOOT, LTOE, 40.0, 34.0, SHOES, False),
    ("r_thigh", RHIP, RKNEE, 80.0, 54.0, PANTS, False),
    ("r_shin", RKNEE, RFOOT, 52.0, 38.0, LOWER, False),
    ("r_foot", RFOOT, RTOE, 40.0, 34.0, SHOES, False),
)
PART_NAMES = tuple(p[0] for p in _PARTS)
NUM_PARTS = len(_PARTS)
_PA = np.array([p[1] for p in _PARTS])
_PB = np.array([p[2] for p in _PARTS])
_PRA = np.array([p[3] for p in _PARTS], dtype=np.float32)
_PRB = np.array([p[4] for p in _PARTS], dtype=np.float32)
_PCOL = np.array([p[5] for p in _PARTS])
_PSTRIPE = np.array([p[6] for p in _PARTS])

# COCO-17 keypoints as anchors, and how deep inside the body each one lies
# (mm): the visibility test tolerates that much surface in front of it.
_COCO_ANCHORS = np.array([NOSE, LEYE, REYE, LEAR, REAR, LSHO, RSHO, LELB, RELB,
                          LWRI, RWRI, LHIP, RHIP, LKNEE, RKNEE, LFOOT, RFOOT])
_COCO_TOL = np.array([30, 30, 30, 45, 45, 95, 95, 80, 80, 70, 70, 125, 125, 95, 95, 80, 80],
                     dtype=np.float32)
_H36M_TOL = np.array([150, 125, 95, 80, 125, 95, 80, 150, 140, 70, 70, 95, 80, 70, 95, 80, 70],
                     dtype=np.float32)

#: The official COCO person category (keypoint names and 1-based skeleton).
COCO_CATEGORY = {
    "supercategory": "person",
    "id": 1,
    "name": "person",
    "keypoints": list(COCO17.joint_names),
    "skeleton": [[a + 1, b + 1] for a, b in COCO17.edges],
}

_SKIN_TONES = np.array(
    [[255, 224, 196], [241, 194, 160], [224, 172, 135], [198, 134, 94], [161, 102, 70],
     [120, 76, 50], [88, 56, 38], [234, 190, 160]], dtype=np.float32)
_HAIR_TONES = np.array(
    [[20, 16, 14], [60, 40, 28], [110, 75, 45], [170, 130, 80], [220, 195, 140],
     [130, 130, 130], [90, 30, 20]], dtype=np.float32)


@dataclass(frozen=True)
class Appearance:
    """Per-subject look: RGB colours (0-255) of the 7 colour parts, stripes, build.

    ``colors`` has shape ``(7, 3)`` in the order skin, hair, shirt, sleeve
    (forearms: shirt or skin), trousers, lower legs (trousers or skin), shoes.
    ``stripes``: ``(amplitude, period_mm)``, amplitude 0 for a plain shirt.
    ``build``: radius multiplier (slim 0.85 .. broad 1.2).
    """

    colors: np.ndarray
    stripes: tuple = (0.0, 60.0)
    build: float = 1.0


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _sample_colors(rng, n):
    """Colour table (n, 7, 3) float32 and stripe/build parameters."""
    skin = _SKIN_TONES[rng.integers(0, len(_SKIN_TONES), n)] * rng.uniform(0.9, 1.05, (n, 1))
    hair = _HAIR_TONES[rng.integers(0, len(_HAIR_TONES), n)] * rng.uniform(0.8, 1.2, (n, 1))
    shirt = rng.uniform(10, 245, (n, 3))
    pants = rng.uniform(10, 200, (n, 3)) * rng.uniform(0.4, 1.0, (n, 1))
    shoes = rng.uniform(5, 120, (n, 3))
    short_sleeve = rng.random(n) < 0.35
    shorts = rng.random(n) < 0.2
    sleeve = np.where(short_sleeve[:, None], skin, shirt)
    lower = np.where(shorts[:, None], skin, pants)
    colors = np.stack([skin, hair, shirt, sleeve, pants, lower, shoes], axis=1)
    stripe_amp = np.where(rng.random(n) < 0.3, rng.uniform(0.15, 0.4, n), 0.0)
    stripe_period = rng.uniform(35, 110, n)
    build = rng.uniform(0.85, 1.2, n)
    return (np.clip(colors, 0, 255).astype(np.float32), stripe_amp.astype(np.float32),
            stripe_period.astype(np.float32), build.astype(np.float32))


def sample_appearance(seed=None) -> Appearance:
    """Draw one subject's appearance (colours, stripes, build)."""
    c, a, p, b = _sample_colors(_rng(seed), 1)
    return Appearance(colors=c[0], stripes=(float(a[0]), float(p[0])), build=float(b[0]))


# --------------------------------------------------------------------------
# anchors (derived 3D points) and keypoints
# --------------------------------------------------------------------------
def _unit(v, eps=1e-6):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


# Face points on the head sphere in the head frame (x forward, y left, z up), in
# units of the sphere radius, and the sphere itself: the motion engine's
# definition (pose_lab.data.synthetic.motion.head_sphere / coco_keypoints_3d),
# repeated here so that the renderer also works with hand-made poses.
_FACE_PTS = np.array([(1.05, 0.0, -0.30), (0.82, 0.34, 0.02), (0.82, -0.34, 0.02),
                      (-0.10, 0.97, -0.05), (-0.10, -0.97, -0.05)], np.float32)
_HEAD_CENTRE = np.array([-0.07, 0.0, 0.74], np.float32)  # x Neck/Nose->Head length
_HEAD_RADIUS = 0.95  # x Neck/Nose->Head length


def _body_head_rotation(j):
    """Head frame (columns forward, left, up) from the body when none is given."""
    right = _unit(j[..., RHIP, :] - j[..., LHIP, :])
    up_b = _unit(j[..., THORAX, :] - j[..., HIP, :])
    fwd_b = _unit(np.cross(up_b, right))
    up_h = _unit(j[..., HEAD, :] - j[..., NECK, :])
    fwd_h = _unit(fwd_b - np.sum(fwd_b * up_h, -1, keepdims=True) * up_h)
    left_h = np.cross(up_h, fwd_h)
    return np.stack([fwd_h, left_h, up_h], axis=-1)


def _head_model(j, head_rotation=None):
    """Head sphere centre (..., 3), radius (...,), face points (..., 5, 3) and frame."""
    Rh = _body_head_rotation(j) if head_rotation is None else np.asarray(head_rotation, np.float32)
    L = np.linalg.norm(j[..., HEAD, :] - j[..., NECK, :], axis=-1)
    c = j[..., NECK, :] + np.einsum("...ij,j->...i", Rh, _HEAD_CENTRE) * L[..., None]
    r = _HEAD_RADIUS * L
    face = c[..., None, :] + np.einsum("...ij,kj->...ki", Rh, _FACE_PTS) * r[..., None, None]
    return c, r, face, Rh


def _anchors(joints, head_rotation=None, build=None):
    """(..., 17, 3) camera-frame joints -> (..., NUM_ANCHORS, 3) anchor points (mm), head radius.

    ``head_rotation`` (..., 3, 3): the head frame (columns forward, left, up)
    in the same frame as the joints; default: facing the body's front.
    """
    j = np.asarray(joints, dtype=np.float32)
    lead = j.shape[:-2]
    c, r, face, Rh = _head_model(j, head_rotation)
    fwd_h, up_h = Rh[..., :, 0], Rh[..., :, 2]
    right = _unit(j[..., RHIP, :] - j[..., LHIP, :])
    up_b = _unit(j[..., THORAX, :] - j[..., HIP, :])
    fwd_b = _unit(np.cross(up_b, right))
    rr = r[..., None]
    a = np.empty(lead + (NUM_ANCHORS, 3), np.float32)
    a[..., :17, :] = j
    a[..., HEAD_A, :] = c - 0.12 * rr * up_h
    a[..., HEAD_B, :] = c + 0.12 * rr * up_h
    a[..., HAIR, :] = c + 0.25 * rr * up_h - 0.25 * rr * fwd_h
    for wri, elb, hand in ((LWRI, LELB, LHAND), (RWRI, RELB, RHAND)):
        a[..., hand, :] = j[..., wri, :] + 80.0 * _unit(j[..., wri, :] - j[..., elb, :])
    for ank, kne, toe in ((LFOOT, LKNEE, LTOE), (RFOOT, RKNEE, RTOE)):
        shin = _unit(j[..., ank, :] - j[..., kne, :])
        ff = _unit(fwd_b - np.sum(fwd_b * shin, -1, keepdims=True) * shin)
        a[..., toe, :] = j[..., ank, :] + 135.0 * ff + 35.0 * shin
    a[..., NOSE:REAR + 1, :] = face
    return a, r.astype(np.float32)


# --------------------------------------------------------------------------
# the rasteriser
# --------------------------------------------------------------------------
class _Canvas:
    """Z-buffer, part-id and intensity buffers for up to B images of H x W.

    Reused across batches (``reset``) so that large buffers are not allocated
    (and page-faulted) again for every batch.
    """

    def __init__(self, B, H, W):
        self.cap, self.H, self.W = B, H, W
        n = B * H * W
        self._z = np.empty(n, np.float32)
        self._pid = np.empty(n, np.int32)
        self._shade = np.empty(n, np.float32)
        self._bg = np.empty((B, H, W, 3), np.float32)
        self.reset(B)

    def reset(self, B):
        if B > self.cap:
            raise ValueError(f"canvas holds {self.cap} images, {B} requested")
        self.B = B
        n = B * self.H * self.W
        self.z = self._z[:n]
        self.pid = self._pid[:n]
        self.shade = self._shade[:n]
        self.bg = self._bg[:B]
        self.z.fill(np.inf)
        self.pid.fill(-1)
        self.drawn = []  # flat indices written by each draw call
        return self


_AR_I64 = np.arange(1 << 16, dtype=np.int64)
_AR_F32 = _AR_I64.astype(np.float32)


def _arange_i64(n):
    """Cached ``np.arange(n)`` (int64 view; do not modify)."""
    global _AR_I64, _AR_F32
    if n > _AR_I64.size:
        _AR_I64 = np.arange(max(n, 2 * _AR_I64.size), dtype=np.int64)
        _AR_F32 = _AR_I64.astype(np.float32)
    return _AR_I64[:n]


def _arange_f32(n):
    """Cached ``np.arange(n, dtype=float32)`` (exact up to 2**24)."""
    _arange_i64(n)
    return _AR_F32[:n]


def _row_spans(ys, ax, ay, bx, by, ra, rb):
    """x-interval covered on each row by a tapered capsule (convex hull of two discs).

    ys: (m, Ph) row centres; the rest (m, 1). Returns (left, right) float32
    arrays (m, Ph); empty rows have left = +inf, right = -inf.

    The shape is the union of the two end discs and the quadrilateral
    ``a +- ra n, b +- rb n`` (``n`` the unit normal of ``ab``); being convex,
    its intersection with a row is one interval: the min/max over the pieces.
    """
    inf = np.float32(np.inf)
    # discs (2, m, Ph)
    cx = np.stack([ax, bx])
    cy = np.stack([ay, by])
    r = np.stack([ra, rb])
    h2 = r * r - (ys[None] - cy) ** 2
    ok = h2 > 0
    half = np.sqrt(np.where(ok, h2, 0.0))
    left = np.where(ok, cx - half, inf).min(axis=0)
    right = np.where(ok, cx + half, -inf).max(axis=0)
    # quadrilateral edges (4, m, 1)
    dx, dy = bx - ax, by - ay
    ln = np.maximum(np.sqrt(dx * dx + dy * dy), 1e-6)
    nx, ny = -dy / ln, dx / ln
    Px = np.stack([ax + ra * nx, bx + rb * nx, bx - rb * nx, ax - ra * nx])
    Py = np.stack([ay + ra * ny, by + rb * ny, by - rb * ny, ay - ra * ny])
    Qx = np.roll(Px, -1, axis=0)
    Qy = np.roll(Py, -1, axis=0)
    ey = Qy - Py
    flat_edge = np.abs(ey) <= 1e-6
    slope = (Qx - Px) / np.where(flat_edge, 1.0, ey)
    ysb = ys[None]
    ok = (ysb >= np.minimum(Py, Qy)) & (ysb <= np.maximum(Py, Qy)) & ~flat_edge
    x = Px + (ysb - Py) * slope
    np.minimum(left, np.where(ok, x, inf).min(axis=0), out=left)
    np.maximum(right, np.where(ok, x, -inf).max(axis=0), out=right)
    return left.astype(np.float32), right.astype(np.float32)


def _draw_capsules(cv, img, a2, b2, za, zb, ra, rb, Ra, Rb, pid, light, stripe_amp, stripe_freq,
                   axial_len):
    """Rasterise one group of capsules, at most one per image (img unique).

    a2, b2: (m, 2) endpoints in pixels; za, zb: (m,) depths (mm); ra, rb: (m,)
    radii in pixels; Ra, Rb: radii in mm; pid: (m,) global part ids; light:
    (m, 3) unit vectors toward the light (camera frame); stripes: (m,) amplitude,
    (m,) cycles per mm along the axis; axial_len: (m,) axis length in mm.

    Scanline: each image row's covered x-interval is computed analytically, and
    only covered pixels are evaluated (work proportional to the area drawn).
    Per-pixel parameters are expanded from per-row tables with ``np.repeat``;
    masks are applied with ``flatnonzero`` + gathers (boolean indexing with
    random masks is several times slower in NumPy).
    """
    H, W = cv.H, cv.W
    rmax = np.maximum(ra, rb)
    y0 = np.floor(np.minimum(a2[:, 1], b2[:, 1]) - rmax).astype(np.int64)
    y1 = np.ceil(np.maximum(a2[:, 1], b2[:, 1]) + rmax).astype(np.int64)
    y0 = np.clip(y0, 0, H)
    y1 = np.clip(y1, -1, H - 1)
    keep = (y1 >= y0) & (za > 0) & (zb > 0)
    if not np.any(keep):
        return
    if not np.all(keep):
        sel = np.nonzero(keep)[0]
        img, a2, b2, za, zb, ra, rb, Ra, Rb, pid, light = (
            v[sel] for v in (img, a2, b2, za, zb, ra, rb, Ra, Rb, pid, light))
        stripe_amp, stripe_freq, axial_len = stripe_amp[sel], stripe_freq[sel], axial_len[sel]
        y0, y1 = y0[sel], y1[sel]
    m = len(img)
    Ph = int((y1 - y0).max()) + 1
    yi = y0[:, None] + np.arange(Ph)  # (m, Ph) int
    ys = yi.astype(np.float32)
    ax, ay = a2[:, 0:1], a2[:, 1:2]
    bx, by = b2[:, 0:1], b2[:, 1:2]
    left, right = _row_spans(ys, ax, ay, bx, by, ra[:, None], rb[:, None])
    xs0 = np.maximum(np.ceil(left), 0)
    xs1 = np.minimum(np.floor(right), W - 1)
    lens = xs1 - xs0 + 1
    lens[~(lens > 0) | (yi > y1[:, None])] = 0  # empty rows (inf spans) and rows past y1
    lens = lens.astype(np.int64).ravel()
    N = int(lens.sum())
    if N == 0:
        return
    xs0 = np.where(lens.reshape(xs0.shape) > 0, xs0, 0).astype(np.int64).ravel()
    excl = np.cumsum(lens) - lens  # exclusive cumsum: output offset of each row
    base = xs0 - excl  # per row: x of the row's first pixel minus its output offset
    row_flat = (img.astype(np.int64)[:, None] * (H * W) + yi * W).ravel() + base
    flat = np.repeat(row_flat, lens)
    flat += _arange_i64(N)
    # per-row table (K, m * Ph) -> per-pixel (K, N)
    d = (b2 - a2).astype(np.float32)
    dd = np.maximum(d[:, 0] ** 2 + d[:, 1] ** 2, 1e-6)
    stripes = bool(np.any(stripe_amp > 0))
    inst_rows = [d[:, 0] / dd, d[:, 1] / dd, d[:, 0], d[:, 1], ra, rb - ra, za, zb - za,
                 Ra, Rb - Ra, light[:, 0], light[:, 1], light[:, 2]]
    if stripes:
        inst_rows += [stripe_amp, axial_len * stripe_freq]
    K = len(inst_rows)
    rows = np.empty((K + 2, m, Ph), np.float32)
    rows[:K] = np.stack(inst_rows).astype(np.float32)[:, :, None]
    rows[K] = (base.reshape(m, Ph) - ax).astype(np.float32)  # px at the row's first pixel
    rows[K + 1] = ys - ay
    tab = np.repeat(rows.reshape(K + 2, m * Ph), lens, axis=1)
    px = tab[K]
    px += _arange_f32(N)
    py = tab[K + 1]
    t = px * tab[0]
    t += py * tab[1]
    np.clip(t, 0.0, 1.0, out=t)
    ex = px - t * tab[2]
    ey = py - t * tab[3]
    rr = tab[5] * t
    rr += tab[4]
    np.maximum(rr, 1e-3, out=rr)
    ex /= rr
    ey /= rr
    nz = 1.0 - ex * ex
    nz -= ey * ey
    np.maximum(nz, 0.0, out=nz)
    np.sqrt(nz, out=nz)
    depth = tab[9] * t
    depth += tab[8]
    depth *= nz
    np.subtract(tab[6] + t * tab[7], depth, out=depth)
    # Lambert shading with the normal (ex/r, ey/r, -nz) of the capsule surface.
    shade = ex * tab[10]
    shade += ey * tab[11]
    shade -= nz * tab[12]
    np.maximum(shade, 0.0, out=shade)
    shade *= 0.62
    shade += 0.38
    if stripes:
        phase = t * tab[14]
        phase -= np.floor(phase)
        # shade *= 1 - amp where phase < 0.5 (arithmetic, no np.where)
        shade *= 1.0 - tab[13] * (phase < 0.5)
    win = depth < cv.z[flat]
    sel = np.flatnonzero(win)
    if sel.size == 0:
        return
    flat = flat[sel]
    cv.z[flat] = depth[sel]
    inst = np.repeat(np.repeat(np.arange(m, dtype=np.int64), Ph), lens)[sel]
    cv.pid[flat] = pid[inst]
    cv.shade[flat] = shade[sel]
    cv.drawn.append(flat)


def _rasterise(cv, anchors2d, anchors3d, img_of_person, pid_base, build, light, stripe_amp,
               stripe_period, px_per_mm, head_r):
    """Draw P people: anchors2d (P, A, 2), anchors3d (P, A, 3) camera mm.

    img_of_person (P,) image index, pid_base (P,) first global part id,
    build/stripe_* (P,), light (P, 3), px_per_mm (P, A) pixel scale per anchor.
    People sharing an image are drawn in separate calls per part (the z-buffer
    resolves overlaps), so each call's image indices are unique.
    """
    P = anchors2d.shape[0]
    # rank of each person within its image (0, 1, 2...) -> separate draw calls
    order = np.argsort(img_of_person, kind="stable")
    rank = np.empty(P, np.int64)
    sorted_img = img_of_person[order]
    start = np.r_[0, np.nonzero(np.diff(sorted_img))[0] + 1]
    counts = np.diff(np.r_[start, P])
    rank[order] = np.arange(P) - np.repeat(start, counts)
    groups = [np.nonzero(rank == k)[0] for k in range(int(rank.max()) + 1)] if P else []
    for k, part in enumerate(_PARTS):
        ia, ib = _PA[k], _PB[k]
        for g in groups:
            a2 = anchors2d[g, ia]
            b2 = anchors2d[g, ib]
            za = anchors3d[g, ia, 2]
            zb = anchors3d[g, ib, 2]
            Ra = _PRA[k] * build[g]
            Rb = _PRB[k] * build[g]
            if k in (7, 8):  # head and hair: radius from the head sphere
                Ra = Rb = (0.93 if k == 7 else 0.9) * head_r[g]
            ra = Ra * px_per_mm[g, ia]
            rb = Rb * px_per_mm[g, ib]
            amp = stripe_amp[g] if _PSTRIPE[k] else np.zeros(len(g), np.float32)
            freq = 1.0 / stripe_period[g]
            axial = np.linalg.norm(anchors3d[g, ib] - anchors3d[g, ia], axis=-1)
            _draw_capsules(cv, img_of_person[g], a2, b2, za, zb, ra, rb, Ra, Rb,
                           pid_base[g] + k, light[g], amp, freq, axial)


# --------------------------------------------------------------------------
# backgrounds
# --------------------------------------------------------------------------
_NOISE_LEVELS = (0.0, 5.0, 10.0, 18.0)  # grain amplitudes (grey levels)
_NOISE_TILES = None


def _noise_tiles():
    """Fixed (levels, 512, 512 * 3) colour-noise tiles, uniform in [-a, a] (built once)."""
    global _NOISE_TILES
    if _NOISE_TILES is None:
        base = np.random.default_rng(12345).uniform(-1.0, 1.0, (512, 512 * 3)).astype(np.float32)
        _NOISE_TILES = np.stack([np.float32(a) * base for a in _NOISE_LEVELS])
    return _NOISE_TILES


def _bilinear_matrix(n_out, n_in):
    """(n_out, n_in) linear interpolation matrix (align-corners)."""
    pos = np.linspace(0, n_in - 1, n_out)
    i0 = np.clip(np.floor(pos).astype(int), 0, n_in - 2) if n_in > 1 else np.zeros(n_out, int)
    w = pos - i0
    M = np.zeros((n_out, n_in), np.float32)
    M[np.arange(n_out), i0] += 1 - w
    if n_in > 1:
        M[np.arange(n_out), i0 + 1] += w
    return M


def _backgrounds(rng, B, H, W, horizon=None, out=None):
    """B random backgrounds (B, H, W, 3) float32 in [0, 255].

    A smooth colour field (bilinear upsampling of a coarse random g x g grid)
    blended with a two-colour linear gradient, optionally a floor below
    ``horizon`` (row per image), up to 4 random rectangles and discs, and fine
    colour grain. The smooth field and the gradient are one batched matrix
    product (they are both linear in the row/column interpolation weights).
    Values stay inside [0, 255] by construction (no clipping pass): colours are
    drawn inside ``[a, 255 - a]`` for a grain amplitude ``a``.
    """
    g = int(rng.integers(2, 6))
    level = rng.integers(0, len(_NOISE_LEVELS), B)
    amp = np.asarray(_NOISE_LEVELS, np.float32)[level]
    lo = amp[:, None]
    span = (255.0 - 2.0 * amp)[:, None]
    mix = rng.uniform(0, 1, B).astype(np.float32)
    coarse = rng.uniform(0, 1, (B, g, g, 3)).astype(np.float32)
    c0 = rng.uniform(0, 1, (B, 3)).astype(np.float32)
    c1 = rng.uniform(0, 1, (B, 3)).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi, B)
    ca, sa = np.cos(ang), np.sin(ang)
    # projection onto the gradient direction, in [0, 1] over the image: gx[w] + gy[h]
    ext = np.abs(ca) * (W - 1) + np.abs(sa) * (H - 1) + 1e-6
    off = np.minimum(ca * (W - 1), 0) + np.minimum(sa * (H - 1), 0)
    gx = ((ca[:, None] * np.arange(W) - off[:, None]) / ext[:, None]).astype(np.float32)  # (B, W)
    gy = ((sa[:, None] * np.arange(H)) / ext[:, None]).astype(np.float32)  # (B, H)
    My = _bilinear_matrix(H, g)
    Mx = _bilinear_matrix(W, g)
    # A: (B, g + 2, W * 3); rows 0..g-1 the x-interpolated grid rows (times mix),
    # row g the gradient's x part + constant, row g + 1 the gradient step per y unit.
    A = np.empty((B, g + 2, W, 3), np.float32)
    A[:, :g] = np.matmul(Mx, coarse) * (mix * span[:, 0])[:, None, None, None]
    wgt = ((1.0 - mix) * span[:, 0])[:, None]
    dc = (c1 - c0) * wgt
    A[:, g] = gx[:, :, None] * dc[:, None, :] + (c0 * wgt + lo)[:, None, :]
    A[:, g + 1] = dc[:, None, :]
    Y = np.empty((B, H, g + 2), np.float32)
    Y[:, :, :g] = My
    Y[:, :, g] = 1.0
    Y[:, :, g + 1] = gy
    if out is None:
        out = np.empty((B, H, W, 3), np.float32)
    bg = out
    np.matmul(Y, A.reshape(B, g + 2, W * 3), out=bg.reshape(B, H, W * 3))
    if horizon is not None:
        floor = rng.uniform(0.1, 0.75, (B, 3)).astype(np.float32)
        for b in range(B):
            h0 = int(np.clip(horizon[b] + 1, 0, H))
            if h0 < H:
                fade = 0.75 + 0.25 * (np.arange(H - h0, dtype=np.float32) / H)
                bg[b, h0:] = (fade[:, None] * floor[b] * span[b] + lo[b])[:, None, :]
    # random shapes: up to 4 rectangles / discs per image, drawn over each other
    n_shapes = 4
    active = rng.random((B, n_shapes)) < 0.5
    is_disc = rng.random((B, n_shapes)) < 0.5
    cx = rng.uniform(0, W, (B, n_shapes))
    cy = rng.uniform(0, H, (B, n_shapes))
    sx = rng.uniform(0.05, 0.35, (B, n_shapes)) * W
    sy = rng.uniform(0.05, 0.35, (B, n_shapes)) * H
    col = rng.uniform(0, 1, (B, n_shapes, 3)).astype(np.float32) * span[:, :, None] + lo[:, :, None]
    for b, s in zip(*np.nonzero(active)):
        xa, xb = int(max(cx[b, s] - sx[b, s], 0)), int(min(cx[b, s] + sx[b, s] + 1, W))
        ya, yb = int(max(cy[b, s] - sy[b, s], 0)), int(min(cy[b, s] + sy[b, s] + 1, H))
        if xa >= xb or ya >= yb:
            continue
        if is_disc[b, s]:
            ux = (np.arange(xa, xb) - cx[b, s]) / sx[b, s]
            uy = (np.arange(ya, yb) - cy[b, s]) / sy[b, s]
            m = (uy[:, None] ** 2 + ux[None, :] ** 2) < 1.0
            bg[b, ya:yb, xa:xb][m] = col[b, s]
        else:
            bg[b, ya:yb, xa:xb] = col[b, s]
    # fine colour grain: crops of a fixed noise tile at random offsets
    tiles = _noise_tiles()
    th, tw = tiles.shape[1], tiles.shape[2] // 3
    hh, ww = min(H, th), min(W, tw)
    oy = rng.integers(0, th - hh + 1, B)
    ox = rng.integers(0, tw - ww + 1, B)
    flat = bg.reshape(B, H, W * 3)
    for b in np.nonzero(level > 0)[0]:
        flat[b, :hh, :3 * ww] += tiles[level[b], oy[b]:oy[b] + hh, 3 * ox[b]:3 * (ox[b] + ww)]
    return bg


# --------------------------------------------------------------------------
# composing
# --------------------------------------------------------------------------
def _compose(cv, palette, bg, out=None):
    """Final uint8 images: shaded part colours over ``bg`` (float32, [0, 255])."""
    B, H, W = cv.B, cv.H, cv.W
    flat_bg = bg.reshape(-1, 3)
    if cv.drawn:
        idx = np.concatenate(cv.drawn)  # every pixel written (repeats are harmless)
        cols = np.take(palette, cv.pid[idx], axis=0)
        cols *= cv.shade[idx][:, None]
        px12 = np.dtype((np.void, 12))  # one RGB float32 triple as a single item
        flat_bg.view(px12).reshape(-1)[idx] = cols.view(px12).reshape(-1)
    img = np.empty((B, H, W, 3), np.uint8) if out is None else out
    np.copyto(img.reshape(-1, 3), flat_bg, casting="unsafe")
    return img


def _visibility(cv, img, pts2d, depth, tol):
    """COCO flags (P, K): 0 outside the image, 1 occluded, 2 visible."""
    H, W = cv.H, cv.W
    xr = np.floor(pts2d[..., 0] + 0.5).astype(np.int64)
    yr = np.floor(pts2d[..., 1] + 0.5).astype(np.int64)
    inside = (xr >= 0) & (xr < W) & (yr >= 0) & (yr < H) & np.isfinite(pts2d).all(-1) & (depth > 0)
    flat = img[:, None] * (H * W) + np.clip(yr, 0, H - 1) * W + np.clip(xr, 0, W - 1)
    zfront = cv.z[flat]
    visible = zfront >= depth - tol
    return np.where(inside, np.where(visible, 2, 1), 0).astype(np.int32)


def _boxes_from_masks(masks):
    """(N, H, W) bool -> (N, 4) COCO boxes [x, y, w, h] (pixel-edge extents), zeros if empty."""
    N = masks.shape[0]
    rows = masks.any(axis=2)
    cols = masks.any(axis=1)
    has = rows.any(axis=1)
    H, W = masks.shape[1:]
    y0 = np.argmax(rows, axis=1)
    y1 = H - np.argmax(rows[:, ::-1], axis=1)
    x0 = np.argmax(cols, axis=1)
    x1 = W - np.argmax(cols[:, ::-1], axis=1)
    box = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.float32)
    box[~has] = 0
    return box.reshape(N, 4)


def _pinhole(points, f, c):
    """points (..., 3) camera mm, f (..., 2), c (..., 2) -> (..., 2) pixels."""
    return points[..., :2] / points[..., 2:3] * f + c


def _render_people(joints_cam, img_of_person, focal, center, n_images, H, W, rng,
                   head_rotation=None, joints_2d=None, appearance=None, horizon=None,
                   background=None, canvas=None, out_images=None, person_map=True):
    """Core: render P people into n_images images.

    joints_cam: (P, 17, 3) camera mm. focal, center: (n_images, 2) pinhole
    intrinsics. joints_2d: optional (P, 17, 2) projections to use instead of
    the pinhole ones (e.g. with lens distortion). Returns a dict of arrays.
    """
    P = joints_cam.shape[0]
    colors, s_amp, s_per, build = _sample_colors(rng, P)
    if appearance is not None:
        for p, app in enumerate(appearance):
            if app is not None:
                colors[p] = np.asarray(app.colors, np.float32)
                s_amp[p], s_per[p] = app.stripes
                build[p] = app.build
    anchors, head_r = _anchors(joints_cam, head_rotation=head_rotation, build=build)  # (P, A, 3)
    f = focal[img_of_person][:, None, :].astype(np.float32)
    c = center[img_of_person][:, None, :].astype(np.float32)
    anchors2d = _pinhole(anchors, f, c)
    if joints_2d is not None:
        # move derived anchors with the distortion offset of their host joint
        host = np.array(list(range(17)) + [NECK, HEAD, HEAD, LWRI, RWRI, LFOOT, RFOOT,
                                           NECK, NECK, NECK, NECK, NECK])
        delta = np.asarray(joints_2d, np.float32) - anchors2d[:, :17]
        anchors2d = anchors2d + delta[:, host]
    px_per_mm = (0.5 * (f[..., 0] + f[..., 1]) / np.maximum(anchors[..., 2], 1e-3)).astype(np.float32)
    # light: mostly frontal-above, random side
    lx = rng.uniform(-0.8, 0.8, n_images)
    ly = rng.uniform(-0.9, 0.3, n_images)
    light_img = _unit(np.stack([lx, ly, -np.ones(n_images)], -1)).astype(np.float32)
    light = light_img[img_of_person]
    cv = (canvas if canvas is not None else _Canvas(n_images, H, W)).reset(n_images)
    pid_base = (np.arange(P) * NUM_PARTS).astype(np.int32)
    _rasterise(cv, anchors2d.astype(np.float32), anchors, img_of_person, pid_base, build, light,
               s_amp, s_per, px_per_mm, head_r)
    palette = colors[:, _PCOL, :].reshape(P * NUM_PARTS, 3)
    if background is None:
        bg = _backgrounds(rng, n_images, H, W, horizon=horizon, out=cv.bg)
    else:
        bg = cv.bg
        bg[...] = np.clip(np.asarray(background, np.float32), 0, 255)
    images = _compose(cv, palette, bg, out=out_images)
    if person_map:
        pmap = np.full(n_images * H * W, -1, np.int32)
        if cv.drawn:
            idx = np.concatenate(cv.drawn)
            pmap[idx] = cv.pid[idx] // NUM_PARTS
        pmap = pmap.reshape(n_images, H, W)
    else:
        pmap = None
    coco_xy = anchors2d[:, _COCO_ANCHORS]
    coco_z = anchors[:, _COCO_ANCHORS, 2]
    coco_v = _visibility(cv, img_of_person, coco_xy, coco_z, _COCO_TOL[None] * build[:, None])
    h36m_xy = anchors2d[:, :17]
    h36m_v = _visibility(cv, img_of_person, h36m_xy, anchors[:, :17, 2],
                         _H36M_TOL[None] * build[:, None])
    return dict(
        images=images,
        person_map=pmap,
        silhouette=cv.pid.reshape(n_images, H, W) >= 0,
        keypoints=np.concatenate([coco_xy, coco_v[..., None].astype(np.float32)], -1),
        keypoints_3d=anchors[:, _COCO_ANCHORS],
        joints_2d=h36m_xy,
        visibility_h36m=h36m_v,
        colors=colors,
    )


# --------------------------------------------------------------------------
# poses
# --------------------------------------------------------------------------
def _fallback_poses(n, rng):
    """A small built-in random pose sampler (world frame, z up, mm, feet on z=0).

    Used only when :mod:`pose_lab.data.synthetic`'s motion engine is not
    available. Joint rotations are drawn within rough limits.
    """
    off = np.array([
        [0, 0, 0], [-130, 0, 0], [0, 0, -440], [0, 0, -430], [130, 0, 0], [0, 0, -440],
        [0, 0, -430], [0, 0, 230], [0, 0, 250], [0, 25, 120], [0, -10, 110],
        [150, 0, -20], [0, 0, -280], [0, 0, -250], [-150, 0, -20], [0, 0, -280], [0, 0, -250],
    ], np.float64)
    # in this rest frame x = person's left?  We want right = +x: mirror so RHip is +x
    off[:, 0] *= -1.0
    parents = H36M17.parents
    scale = rng.uniform(0.85, 1.1, n)

    def rot(axis, ang):
        axis = np.asarray(axis, np.float64)
        c, s = np.cos(ang), np.sin(ang)
        x, y, z = axis
        C = 1 - c
        return np.stack([
            np.stack([c + x * x * C, x * y * C - z * s, x * z * C + y * s], -1),
            np.stack([y * x * C + z * s, c + y * y * C, y * z * C - x * s], -1),
            np.stack([z * x * C - y * s, z * y * C + x * s, c + z * z * C], -1),
        ], -2)

    local = np.broadcast_to(np.eye(3), (n, 17, 3, 3)).copy()
    U = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    X, Y, Z = (1, 0, 0), (0, 1, 0), (0, 0, 1)
    local[:, 0] = rot(Z, U(-np.pi, np.pi)) @ rot(X, U(-0.15, 0.25))
    for hip in (RHIP, LHIP):
        local[:, hip] = rot(X, U(-0.4, 1.6)) @ rot(Y, U(-0.3, 0.3))
    for knee in (RKNEE, LKNEE):
        local[:, knee] = rot(X, U(-2.0, 0.0))
    local[:, SPINE] = rot(X, U(-0.15, 0.5)) @ rot(Y, U(-0.25, 0.25)) @ rot(Z, U(-0.4, 0.4))
    local[:, THORAX] = rot(X, U(-0.1, 0.3))
    local[:, NECK] = rot(Z, U(-0.8, 0.8)) @ rot(X, U(-0.3, 0.4))
    for sho, sgn in ((LSHO, 1), (RSHO, -1)):
        local[:, sho] = rot(X, U(-0.8, 2.8)) @ rot(Y, sgn * U(0.0, 1.6))
    for elb in (LELB, RELB):
        local[:, elb] = rot(X, U(0.0, 2.3))
    G = np.empty((n, 17, 3, 3))
    pos = np.zeros((n, 17, 3))
    for jdx, p in enumerate(parents):
        if p < 0:
            G[:, jdx] = local[:, jdx]
            continue
        pos[:, jdx] = pos[:, p] + np.einsum("nij,j->ni", G[:, p], off[jdx]) * scale[:, None]
        G[:, jdx] = G[:, p] @ local[:, jdx]
    pos[..., 2] -= pos[:, [RFOOT, LFOOT], 2].min(axis=1)[:, None] - 80.0
    return pos.astype(np.float32), np.zeros((n, 3), np.float32)


TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")


def _motion():
    """The motion engine module, or None when it is not available."""
    try:
        from pose_lab.data.synthetic import motion
    except Exception:  # noqa: BLE001 - any import problem: use the built-in sampler
        return None
    return motion if hasattr(motion, "random_poses") else None


def _pose_arrays(poses):
    """Given poses (an array or a ``MotionSequence``) -> ``(joints (N, 17, 3), head (N, 3, 3) or None)``."""
    head = None
    if hasattr(poses, "joints") and hasattr(poses, "head_rotation"):
        head = np.asarray(poses.head_rotation, np.float32).reshape(-1, 3, 3)
        poses = poses.joints
    arr = np.asarray(poses, np.float32)
    H36M17.check(arr, "poses", 3)
    arr = arr.reshape(-1, 17, 3)
    if not np.all(np.isfinite(arr)):
        raise ValueError("poses contain NaN or inf coordinates; expected finite mm values")
    return arr, head


def _sample_poses(n, rng, poses=None, subjects=TRAIN_SUBJECTS, actions=None):
    """World-frame poses (z up, mm) for ``n`` people.

    Returns ``(joints (n, 17, 3), head_rotation (n, 3, 3) or None, actions (n,) or None)``.

    * ``poses`` given: an array ``(N, 17, 3)`` or a motion ``MotionSequence``
      (then its head rotations are used), cycled to ``n``.
    * else the motion engine: :func:`random_poses` spread over ``subjects``
      (one call per subject, ~60 us per pose), or, with ``actions`` (a list of
      action names, or True for all), random frames of generated sequences
      (10 s per sequence, up to 100 frames drawn from each).
    * without the motion engine, a small built-in sampler (random poses only).
    """
    if poses is not None:
        arr, head = _pose_arrays(poses)
        idx = np.arange(n) % arr.shape[0]
        return arr[idx], (None if head is None else head[idx]), None
    motion = _motion()
    if motion is None:
        if actions:
            raise ValueError("actions need the motion engine (pose_lab.data.synthetic.motion)")
        pos, _ = _fallback_poses(n, rng)
        return pos, None, None
    subjects = list(subjects)
    if not subjects:
        raise ValueError("subjects must name at least one subject, e.g. ('S1', 'S5')")
    joints, heads, acts = [], [], []
    if actions:
        names = list(motion.ACTIONS) if actions is True else [str(a) for a in actions]
        unknown = sorted(set(names) - set(motion.ACTIONS))
        if unknown:
            raise ValueError(f"unknown actions {unknown}; expected names from {list(motion.ACTIONS)}")
        per_seq = 100
        left = n
        while left > 0:
            k = min(per_seq, left)
            act = names[int(rng.integers(len(names)))]
            subj = subjects[int(rng.integers(len(subjects)))]
            seq = motion.generate_sequence(act, subj, n_frames=500, seed=int(rng.integers(2**31 - 1)))
            fr = np.sort(rng.choice(len(seq), size=k, replace=k > len(seq)))
            joints.append(seq.joints[fr])
            heads.append(seq.head_rotation[fr])
            acts += [act] * k
            left -= k
        order = rng.permutation(n)
        return (np.concatenate(joints)[order].astype(np.float32),
                np.concatenate(heads)[order].astype(np.float32), np.array(acts)[order])
    counts = np.bincount(rng.integers(0, len(subjects), n), minlength=len(subjects))
    for subj, k in zip(subjects, counts):
        if k == 0:
            continue
        seq = motion.random_poses(int(k), seed=int(rng.integers(2**31 - 1)), subject=subj)
        joints.append(seq.joints)
        heads.append(seq.head_rotation)
    order = rng.permutation(n)
    return (np.concatenate(joints)[order].astype(np.float32),
            np.concatenate(heads)[order].astype(np.float32), None)


def _world_to_cam_view(joints_w, rng, head_rot=None, elev=(-0.15, 0.5), roll=(-0.12, 0.12),
                       dist=(3500.0, 7000.0)):
    """Random camera orbiting each pose (any heading, elevation, slight roll).

    Returns camera-frame joints (mm), R (world->camera), T (camera centres,
    world mm; :class:`pose_lab.geometry.Camera` convention) and the head
    rotations in the camera frame.
    """
    n = joints_w.shape[0]
    root = joints_w[:, HIP].astype(np.float64)
    psi = rng.uniform(-np.pi, np.pi, n)
    th = rng.uniform(*elev, n)
    rl = rng.uniform(*roll, n)
    D = rng.uniform(*dist, n)
    fwd = np.stack([np.cos(th) * np.cos(psi), np.cos(th) * np.sin(psi), -np.sin(th)], -1)
    up = np.array([0.0, 0.0, 1.0])
    right = _unit(np.cross(fwd, up))
    down = np.cross(fwd, right)
    cr, sr = np.cos(rl)[:, None], np.sin(rl)[:, None]
    right, down = cr * right + sr * down, -sr * right + cr * down
    R = np.stack([right, down, fwd], axis=1)  # (n, 3, 3) world -> camera
    T = root - D[:, None] * fwd  # camera centres
    cam = np.einsum("nij,nkj->nki", R, joints_w - T[:, None, :])
    hr = None if head_rot is None else np.einsum("nij,njk->nik", R, head_rot)
    return cam.astype(np.float32), R, T, hr


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def render_crops(n, size=128, seed=0, *, poses=None, subjects=TRAIN_SUBJECTS, actions=None,
                 batch_size=128, fill=(0.6, 0.85), jitter=0.08):
    """Render ``n`` person-centred crops of a random mannequin.

    Each crop shows one person seen by a random camera (any heading, elevation
    -9..29 degrees, slight roll, 3.5-7 m away) whose focal length makes the
    person span ``fill`` of the crop, with the body's centre jittered by
    ``jitter * size``. Poses come from the motion engine
    (:func:`pose_lab.data.synthetic.motion.random_poses` over ``subjects``,
    or frames of :func:`~pose_lab.data.synthetic.motion.generate_sequence`
    when ``actions`` is given), or from ``poses``.

    Args:
        n: number of crops.
        size: crop side in pixels (64-256 typical).
        seed: int or ``numpy.random.Generator``.
        poses: optional world poses (H36M17, mm, z up): an array ``(N, 17, 3)``
            or a ``MotionSequence`` (its head orientation is used), cycled.
        subjects: subjects whose bodies the random poses use (default the
            Human3.6M training subjects; use ``("S9", "S11")`` for a test split).
        actions: ``None`` (random poses), ``True`` (all actions) or a list of
            action names: crops are then frames of generated sequences and the
            result has ``actions``.
        batch_size: crops rendered per vectorised batch (part of the random
            stream: keep it fixed for reproducibility).
        fill: range of the person's larger extent as a fraction of ``size``.
        jitter: centre jitter as a fraction of ``size``.

    Returns:
        dict with ``images`` (n, size, size, 3) uint8; ``keypoints`` (n, 17, 3)
        float32 COCO-17 ``x, y, v``; ``joints_2d`` (n, 17, 2) H36M17 pixels;
        ``visibility_h36m`` (n, 17) int32 (0/1/2); ``joints_3d`` (n, 17, 3)
        camera-frame mm; ``keypoints_3d`` (n, 17, 3) COCO-17 camera-frame mm;
        ``masks`` (n, size, size) uint8 silhouettes; ``boxes`` (n, 4) COCO
        ``[x, y, w, h]`` of the silhouette; ``focal`` (n, 2) and ``center``
        (n, 2) pinhole intrinsics (pixels); ``R`` (n, 3, 3), ``T`` (n, 3) the
        world->camera extrinsics (:class:`pose_lab.geometry.Camera`
        convention: ``X_cam = R (X_world - T)``); ``actions`` (n,) str when
        ``actions`` is given.

    Example:
        >>> d = render_crops(4, size=64, seed=0)
        >>> d["images"].shape, d["keypoints"].shape
        ((4, 64, 64, 3), (4, 17, 3))
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    size = int(size)
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = int(batch_size)
    rng = _rng(seed)
    res = {
        "images": np.empty((n, size, size, 3), np.uint8),
        "keypoints": np.empty((n, 17, 3), np.float32),
        "keypoints_3d": np.empty((n, 17, 3), np.float32),
        "joints_2d": np.empty((n, 17, 2), np.float32),
        "visibility_h36m": np.empty((n, 17), np.int32),
        "joints_3d": np.empty((n, 17, 3), np.float32),
        "masks": np.empty((n, size, size), np.uint8),
        "boxes": np.empty((n, 4), np.float32),
        "focal": np.empty((n, 2), np.float32),
        "center": np.empty((n, 2), np.float32),
        "R": np.empty((n, 3, 3), np.float32),
        "T": np.empty((n, 3), np.float32),
    }
    if n == 0:
        return res
    jw_all, head_all, acts = _sample_poses(n, rng, poses, subjects=subjects, actions=actions)
    if acts is not None:
        res["actions"] = acts
    canvas = _Canvas(min(batch_size, n), size, size)
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        sl = slice(start, start + m)
        hw = None if head_all is None else head_all[sl]
        cam, R, T, hr = _world_to_cam_view(jw_all[sl], rng, head_rot=hw)
        # frame: focal so that the pose's extent (+ body radius) fills the crop
        anc, _ = _anchors(cam, head_rotation=hr)
        xy = anc[..., :2] / anc[..., 2:3]  # normalised image coordinates
        margin = 110.0 / cam[:, HIP, 2]  # ~ body radius beyond the joints
        lo = xy.min(1) - margin[:, None]
        hi = xy.max(1) + margin[:, None]
        ext = (hi - lo).max(1)
        fr = rng.uniform(*fill, m)
        f = (fr * size / ext).astype(np.float32)
        mid = 0.5 * (lo + hi)
        shift = rng.uniform(-jitter, jitter, (m, 2)) * size
        c = ((size - 1) / 2.0 + shift - f[:, None] * mid).astype(np.float32)
        focal = np.stack([f, f], -1)
        out = _render_people(cam, np.arange(m), focal, c, m, size, size, rng,
                             head_rotation=hr, canvas=canvas, out_images=res["images"][sl],
                             person_map=False)
        sil = out["silhouette"]
        res["keypoints"][sl] = out["keypoints"]
        res["keypoints_3d"][sl] = out["keypoints_3d"]
        res["joints_2d"][sl] = out["joints_2d"]
        res["visibility_h36m"][sl] = out["visibility_h36m"]
        res["joints_3d"][sl] = cam
        np.copyto(res["masks"][sl], sil, casting="unsafe")
        res["boxes"][sl] = _boxes_from_masks(sil)
        res["focal"][sl] = focal
        res["center"][sl] = c
        res["R"][sl] = R
        res["T"][sl] = T
    return res


def render_pose(joints_cam, camera, image_size=None, seed=0, *, appearance=None,
                head_rotation=None, background=None):
    """Render given people from a given camera (one image).

    Args:
        joints_cam: ``(P, 17, 3)`` or ``(17, 3)`` H36M17 camera-frame joints (mm).
        camera: a :class:`pose_lab.geometry.Camera` (its distortion is applied to
            the joints with :func:`pose_lab.geometry.project_to_2d`) or a tuple
            ``(focal, center)`` for a pinhole camera.
        image_size: ``(height, width)``; default the camera's size.
        seed: int or Generator (appearance, light, background).
        appearance: optional list of :class:`Appearance`, one per person (None
            entries are drawn at random).
        head_rotation: optional ``(P, 3, 3)`` head frames in the camera frame
            (columns forward, left, up; e.g. ``camera.R @ seq.head_rotation``);
            default: the head faces the body's front.
        background: optional RGB colour or ``(H, W, 3)`` image instead of a random one.

    Returns:
        dict with ``image`` (H, W, 3) uint8, ``keypoints`` (P, 17, 3) COCO,
        ``keypoints_3d`` (P, 17, 3) camera mm, ``joints_2d`` (P, 17, 2),
        ``visibility_h36m`` (P, 17), ``masks`` (P, H, W) uint8 (visible part of
        each person), ``boxes`` (P, 4).
    """
    from pose_lab import geometry

    j = np.asarray(joints_cam, np.float32)
    if j.ndim == 2:
        j = j[None]
    H36M17.check(j, "joints_cam", 3)
    if not np.all(np.isfinite(j)):
        raise ValueError("joints_cam contains NaN or inf; expected finite camera-frame mm")
    if np.any(j[..., 2] <= 0):
        raise ValueError("joints_cam has joints with depth Z <= 0 (behind the camera)")
    P = j.shape[0]
    joints_2d = None
    if isinstance(camera, geometry.Camera):
        focal = camera.focal.astype(np.float32)
        center = camera.center.astype(np.float32)
        if np.any(camera.radial != 0) or np.any(camera.tangential != 0):
            joints_2d = geometry.project_to_2d(j.astype(np.float64), camera).astype(np.float32)
        if image_size is None:
            image_size = (camera.height, camera.width)
    else:
        focal, center = camera
        focal = np.broadcast_to(np.asarray(focal, np.float32), (2,))
        center = np.broadcast_to(np.asarray(center, np.float32), (2,))
        if image_size is None:
            raise ValueError("image_size=(height, width) is required with a (focal, center) camera")
    H, W = int(image_size[0]), int(image_size[1])
    if appearance is not None and len(appearance) != P:
        raise ValueError(f"appearance: expected {P} entries (one per person), got {len(appearance)}")
    hr = None if head_rotation is None else np.asarray(head_rotation, np.float32).reshape(P, 3, 3)
    rng = _rng(seed)
    out = _render_people(j, np.zeros(P, np.int64), focal[None], center[None], 1, H, W, rng,
                         head_rotation=hr, joints_2d=joints_2d,
                         appearance=appearance, background=background)
    masks = (out["person_map"][0][None] == np.arange(P)[:, None, None])
    return dict(image=out["images"][0], keypoints=out["keypoints"],
                keypoints_3d=out["keypoints_3d"], joints_2d=out["joints_2d"],
                visibility_h36m=out["visibility_h36m"], masks=masks.astype(np.uint8),
                boxes=_boxes_from_masks(masks))


def render_scenes(n, image_size=(256, 256), num_people=(1, 4), seed=0, *, poses=None,
                  subjects=TRAIN_SUBJECTS, focal_range=(0.9, 1.6), distance=(2500.0, 8000.0)):
    """Render ``n`` multi-person images from a camera at eye height.

    People stand on the floor (``z = 0``) at random positions in the field of
    view, ``distance`` mm away, with random headings; they may occlude each
    other and be cut by the image border.

    Args:
        n: number of images.
        image_size: ``(height, width)``.
        num_people: int or ``(min, max)`` inclusive.
        seed: int or Generator.
        poses: optional world poses ``(N, 17, 3)`` or a ``MotionSequence`` (cycled).
        subjects: subjects of the random poses.
        focal_range: focal length as a multiple of the image width.
        distance: range of the people's distance to the camera (mm).

    Returns:
        list of dicts, one per image: ``image`` (H, W, 3) uint8, ``keypoints``
        (P, 17, 3) COCO, ``keypoints_3d`` (P, 17, 3) camera mm, ``joints_2d``
        (P, 17, 2), ``joints_3d`` (P, 17, 3) camera mm, ``visibility_h36m``
        (P, 17), ``masks`` (P, H, W) uint8 instance masks (visible part),
        ``boxes`` (P, 4) COCO boxes, ``focal``, ``center``.
    """
    H, W = int(image_size[0]), int(image_size[1])
    rng = _rng(seed)
    lo, hi = (num_people, num_people) if np.isscalar(num_people) else num_people
    if int(lo) < 0 or int(hi) < int(lo):
        raise ValueError(f"num_people must be an int >= 0 or (min, max), got {num_people!r}")
    counts = rng.integers(int(lo), int(hi) + 1, n)
    P = int(counts.sum())
    img_of = np.repeat(np.arange(n), counts)
    if P:
        jw, hw, _ = _sample_poses(P, rng, poses, subjects=subjects)
    else:
        jw, hw = np.zeros((0, 17, 3), np.float32), None
    jw = jw.astype(np.float64)
    # center each pose on its root in x, y and put its lowest joint just above the floor
    jw[..., :2] -= jw[:, HIP:HIP + 1, :2]
    jw[..., 2] -= jw[..., 2].min(axis=1, keepdims=True) - 70.0
    yaw = rng.uniform(-np.pi, np.pi, P)
    cy_, sy_ = np.cos(yaw), np.sin(yaw)
    Rz = np.zeros((P, 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = cy_, -sy_, sy_, cy_, 1
    jw = np.einsum("pij,pkj->pki", Rz, jw)
    hw = None if hw is None else np.einsum("pij,pjk->pik", Rz, hw)
    # camera per image at 1.2-2 m height looking along +y, pitched down a little
    f = rng.uniform(*focal_range, n) * W
    cam_h = rng.uniform(1200, 2000, n)
    pitch = rng.uniform(0.0, 0.25, n)
    depth = rng.uniform(*distance, P)
    x_ndc = rng.uniform(-0.45, 0.45, P)
    pos = np.stack([x_ndc * depth * W / f[img_of], depth, np.zeros(P)], -1)
    jw = jw + pos[:, None, :]
    fwd = np.stack([np.zeros(n), np.cos(pitch), -np.sin(pitch)], -1)
    right = np.tile(np.array([1.0, 0.0, 0.0]), (n, 1))
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd], 1)
    T = np.stack([np.zeros(n), np.zeros(n), cam_h], -1)
    cam = np.einsum("pij,pkj->pki", R[img_of], jw - T[img_of][:, None, :]).astype(np.float32)
    hc = None if hw is None else np.einsum("pij,pjk->pik", R[img_of], hw)
    focal = np.stack([f, f], -1).astype(np.float32)
    center = np.tile(np.array([(W - 1) / 2.0, (H - 1) / 2.0], np.float32), (n, 1))
    horizon = np.floor(center[:, 1] - f * np.tan(pitch)).astype(int)
    out = _render_people(cam, img_of, focal, center, n, H, W, rng, head_rotation=hc,
                         horizon=horizon)
    scenes = []
    first = np.r_[0, np.cumsum(counts)[:-1]]
    for i in range(n):
        ids = np.arange(first[i], first[i] + counts[i])
        pm = out["person_map"][i]
        masks = pm[None] == ids[:, None, None]
        scenes.append(dict(
            image=out["images"][i], keypoints=out["keypoints"][ids], joints_2d=out["joints_2d"][ids],
            joints_3d=cam[ids], keypoints_3d=out["keypoints_3d"][ids],
            visibility_h36m=out["visibility_h36m"][ids], masks=masks.astype(np.uint8),
            boxes=_boxes_from_masks(masks), focal=focal[i], center=center[i]))
    return scenes


def render_scene(image_size=(256, 256), num_people=(1, 4), seed=0, **kwargs):
    """One multi-person image; see :func:`render_scenes`."""
    return render_scenes(1, image_size=image_size, num_people=num_people, seed=seed, **kwargs)[0]


# --------------------------------------------------------------------------
# COCO writer
# --------------------------------------------------------------------------
def mask_to_rle(mask):
    """Binary mask (H, W) -> COCO uncompressed RLE ``{"counts": [...], "size": [H, W]}``.

    Column-major (Fortran) order, starting with a run of zeros, as pycocotools
    expects (``pycocotools.mask.frPyObjects`` accepts it).
    """
    m = np.asarray(mask, bool)
    flat = m.ravel(order="F").astype(np.int8)
    change = np.nonzero(np.diff(flat))[0] + 1
    bounds = np.r_[0, change, flat.size]
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"counts": [int(c) for c in counts], "size": [int(m.shape[0]), int(m.shape[1])]}


def rle_area(rle):
    """Foreground pixel count of an uncompressed RLE."""
    return int(sum(rle["counts"][1::2]))


def _save_image(path, image, fmt):
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(image))
    if fmt == "png":
        im.save(path, format="PNG", optimize=False, compress_level=6)
    else:
        im.save(path, format="JPEG", quality=92)


#: Scenes rendered per call by :func:`write_coco_dataset` (bounds its memory:
#: a whole 12k-image split rendered at once needs over 24 GB).
WRITE_CHUNK = 256


def _scenes_in_chunks(num_images, seed=0, poses=None, chunk=None, **kwargs):
    """Yield :func:`render_scenes` output ``chunk`` images at a time from one Generator.

    Up to ``chunk`` images this is exactly ``render_scenes(num_images, seed=seed, ...)``;
    beyond, the chunks draw from the same Generator in turn and ``poses``
    (cycled over the people) continue where the previous chunk stopped.
    """
    chunk = int(chunk or WRITE_CHUNK)
    rng = _rng(seed)
    joints, head = _pose_arrays(poses) if poses is not None else (None, None)
    offset = 0
    for start in range(0, int(num_images), chunk):
        part = None
        if joints is not None:
            k = offset % joints.shape[0]
            part = np.roll(joints, -k, axis=0)
            if head is not None:
                from types import SimpleNamespace

                part = SimpleNamespace(joints=part, head_rotation=np.roll(head, -k, axis=0))
        scenes = render_scenes(min(chunk, int(num_images) - start), seed=rng, poses=part, **kwargs)
        offset += sum(int(sc["keypoints"].shape[0]) for sc in scenes)
        yield from scenes


def write_coco_dataset(out_dir, num_images, split="train", seed=0, *, image_size=(256, 256),
                       num_people=(1, 3), image_format="jpg", poses=None, subjects=TRAIN_SUBJECTS):
    """Write a synthetic COCO keypoints dataset in the official schema.

    Layout (like the real COCO 2017 folders)::

        out_dir/annotations/person_keypoints_{split}.json
        out_dir/{split}/000000000001.jpg ...

    The JSON holds ``info``, ``licenses``, ``images`` (id, file_name, width,
    height, license), ``annotations`` (id, image_id, category_id=1,
    keypoints as 51 ints ``x, y, v`` with ``0, 0, 0`` for unlabelled points,
    num_keypoints, bbox ``[x, y, w, h]``, area = silhouette pixels,
    segmentation as uncompressed RLE, iscrowd=0) and ``categories`` (the official
    person category: 17 keypoint names and the 1-based skeleton). People whose
    silhouette is empty are left out; people with fewer than ``min_keypoints``
    labelled keypoints are kept with their counts (as in COCO, where
    ``num_keypoints`` may be 0).

    Keypoint coordinates are written with 2 decimals (real COCO has integers);
    pixel centres are at integers, the kit's convention.

    Scenes are rendered :data:`WRITE_CHUNK` images at a time, so memory stays
    bounded for any ``num_images`` (up to one chunk, the output equals that of
    :func:`render_scenes` with the same seed).

    Writing is atomic: everything goes to a temporary folder inside ``out_dir``
    which then replaces ``annotations/person_keypoints_{split}.json`` and
    ``{split}/``.

    Args:
        out_dir: target folder (created).
        num_images: number of images.
        split: split name (``"train"``, ``"val"``...).
        seed: int or Generator.
        image_size: ``(height, width)`` of the images.
        num_people: people per image, int or ``(min, max)``.
        image_format: ``"jpg"`` or ``"png"``.
        poses: optional world poses ``(N, 17, 3)`` (or a ``MotionSequence``) for the people.
        subjects: subjects of the random poses (e.g. ``("S9", "S11")`` for a val split).

    Returns:
        Path of the annotation file.
    """
    fmt = str(image_format).lower().lstrip(".")
    if fmt in ("jpeg",):
        fmt = "jpg"
    if fmt not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    split = str(split)
    if not split or "/" in split or split.startswith("."):
        raise ValueError(f"split must be a plain folder name, got {split!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{split}_", dir=out_dir))
    try:
        (tmp / split).mkdir()
        (tmp / "annotations").mkdir()
        scenes = _scenes_in_chunks(num_images, image_size=image_size, num_people=num_people, seed=seed,
                                   poses=poses, subjects=subjects)
        images, anns = [], []
        ann_id = 1
        for i, sc in enumerate(scenes):
            image_id = i + 1
            fname = f"{image_id:012d}.{fmt}"
            _save_image(tmp / split / fname, sc["image"], "png" if fmt == "png" else "jpeg")
            H, W = sc["image"].shape[:2]
            images.append({"id": image_id, "file_name": fname, "width": int(W), "height": int(H),
                           "license": 0, "date_captured": ""})
            for p in range(sc["keypoints"].shape[0]):
                mask = sc["masks"][p].astype(bool)
                area = int(mask.sum())
                if area == 0:
                    continue
                kp = sc["keypoints"][p].astype(np.float64)
                v = kp[:, 2].astype(int)
                flat = []
                for (x, y), vv in zip(kp[:, :2], v):
                    if vv > 0:
                        flat += [round(float(x), 2), round(float(y), 2), int(vv)]
                    else:
                        flat += [0, 0, 0]
                box = sc["boxes"][p]
                anns.append({
                    "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                    "keypoints": flat, "num_keypoints": int((v > 0).sum()),
                    "bbox": [float(b) for b in box], "area": float(area),
                    "segmentation": mask_to_rle(mask),
                })
                ann_id += 1
        data = {
            "info": {"description": "pose_lab synthetic mannequins (COCO keypoints format)",
                     "version": "1.0", "year": 2025, "contributor": "pose_lab",
                     "url": "", "date_created": ""},
            "licenses": [{"id": 0, "name": "CC0 1.0 (synthetic, generated by pose_lab)",
                          "url": "https://creativecommons.org/publicdomain/zero/1.0/"}],
            "images": images,
            "annotations": anns,
            "categories": [dict(COCO_CATEGORY)],
        }
        ann_name = f"person_keypoints_{split}.json"
        with open(tmp / "annotations" / ann_name, "w") as fh:
            json.dump(data, fh)
        # swap into place
        (out_dir / "annotations").mkdir(exist_ok=True)
        final_imgs = out_dir / split
        if final_imgs.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old_{split}_", dir=out_dir))
            os.replace(final_imgs, old / split)
            os.replace(tmp / split, final_imgs)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp / split, final_imgs)
        os.replace(tmp / "annotations" / ann_name, out_dir / "annotations" / ann_name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "annotations" / ann_name
