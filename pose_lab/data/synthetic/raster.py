"""The mannequin's body-part table and the z-buffered capsule rasteriser (NumPy only).

The mannequin is built on the 17 Human3.6M joints plus derived *anchor* points
(head, hair, hands, toes, face points and details, placed by :mod:`.scenes`):
21 tapered capsules (pelvis, abdomen, chest, shoulders, torso sides, neck,
limbs, hands, feet), an oval head and hair, listed in ``_PARTS``, and the
*details* of ``_DETAILS``: a face (eyes with their whites, brows, nose, mouth,
ears) centred on the points that the COCO face keypoints are projected from,
flat mittens with a thumb that give the hands an orientation, and shoe soles
with a heel.

Every capsule is rasterised where it projects, with a depth per pixel
(``depth = axis depth - radius * sqrt(1 - u^2)``, ``u`` the normalised distance
to the projected axis); a **z-buffer** (:class:`_Canvas`) keeps the nearest
surface, so limbs occlude each other and people occlude people. Pixels are
Lambert-shaded with a per-image light and optionally striped; :func:`_compose`
colours them over a background, :func:`_visibility` reads keypoint visibility
from the z-buffer and :func:`_boxes_from_masks` gives COCO boxes. The details
are small, so they are drawn together, several per image in one call
(:func:`_draw_details`; the nearest sample of each pixel wins, as in the z-buffer).

Pixel coordinates have integer values at pixel centres (``image[r, c]`` is
centred on ``(x=c, y=r)``). A scanline rasteriser evaluates only the covered
pixels, for all images of a batch at once.
"""

from __future__ import annotations

import numpy as np

from .appearance import (  # colour parts
    BROWC, EARC, EYEC, HAIRC, LOWER, MOUTHC, NOSEC, PANTS, SCLERA, SHIRT, SHOES, SKIN, SLEEVE, SOLE,
)

__all__ = ["PART_NAMES", "NUM_PARTS"]

# --------------------------------------------------------------------------
# joints, anchors and the body-part table
# --------------------------------------------------------------------------
HIP, RHIP, RKNEE, RFOOT, LHIP, LKNEE, LFOOT, SPINE, THORAX, NECK, HEAD = range(11)
LSHO, LELB, LWRI, RSHO, RELB, RWRI = range(11, 17)

# Derived anchor points, appended after the 17 joints.
(HEAD_A, HEAD_B, HAIR, LHAND, RHAND, LTOE, RTOE,
 NOSE, LEYE, REYE, LEAR, REAR) = range(17, 29)
# Details: face points in the head frame (after the five COCO face points),
# thumbs, heels and soles.
(NOSE_B, LEYE_A, LEYE_B, REYE_A, REYE_B, LBROW_A, LBROW_B, RBROW_A, RBROW_B, MOUTH_L, MOUTH_R,
 LEAR_A, LEAR_B, REAR_A, REAR_B) = range(29, 44)
(LTHUMB_A, LTHUMB_B, RTHUMB_A, RTHUMB_B, LPALM_A, LPALM_B, RPALM_A, RPALM_B,
 LHEEL, LSOLE, RHEEL, RSOLE) = range(44, 56)
BODY_ANCHORS = 29  # joints and the anchors of the body parts (crops are framed on these)
NUM_ANCHORS = 56
# The joint each anchor moves with under lens distortion.
ANCHOR_HOST = np.array(list(range(17)) + [NECK, HEAD, HEAD, LWRI, RWRI, LFOOT, RFOOT]
                       + [NECK] * (REAR_B + 1 - NOSE)
                       + [LWRI, LWRI, RWRI, RWRI] * 2 + [LFOOT, LFOOT, RFOOT, RFOOT])

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
    ("l_hand", LWRI, LHAND, 28.0, 23.0, SKIN, False),
    ("r_upper_arm", RSHO, RELB, 47.0, 39.0, SHIRT, True),
    ("r_forearm", RELB, RWRI, 38.0, 30.0, SLEEVE, True),
    ("r_hand", RWRI, RHAND, 28.0, 23.0, SKIN, False),
    ("l_thigh", LHIP, LKNEE, 80.0, 54.0, PANTS, False),
    ("l_shin", LKNEE, LFOOT, 52.0, 38.0, LOWER, False),
    ("l_foot", LFOOT, LTOE, 40.0, 34.0, SHOES, False),
    ("r_thigh", RHIP, RKNEE, 80.0, 54.0, PANTS, False),
    ("r_shin", RKNEE, RFOOT, 52.0, 38.0, LOWER, False),
    ("r_foot", RFOOT, RTOE, 40.0, 34.0, SHOES, False),
)
# Details, drawn together after the parts: name, anchor a, anchor b, radius at a,
# radius at b, colour part, radius unit (True: the head sphere's radius, False:
# mm times the build), smallest radius in pixels. The eyes (iris spheres), the
# nose tip and the ears are centred on the COCO face points; their smallest
# radius keeps the pixel nearest to the keypoint on the feature in small images.
_DETAILS = (
    ("l_sole", LHEEL, LSOLE, 24.0, 18.0, SOLE, False, 0.0),
    ("r_sole", RHEEL, RSOLE, 24.0, 18.0, SOLE, False, 0.0),
    ("l_palm", LPALM_A, LPALM_B, 22.0, 20.0, SKIN, False, 0.0),
    ("r_palm", RPALM_A, RPALM_B, 22.0, 20.0, SKIN, False, 0.0),
    ("l_thumb", LTHUMB_A, LTHUMB_B, 15.0, 12.0, SKIN, False, 0.0),
    ("r_thumb", RTHUMB_A, RTHUMB_B, 15.0, 12.0, SKIN, False, 0.0),
    ("l_ear", LEAR_A, LEAR_B, 0.13, 0.12, EARC, True, 0.75),
    ("r_ear", REAR_A, REAR_B, 0.13, 0.12, EARC, True, 0.75),
    ("l_brow", LBROW_A, LBROW_B, 0.05, 0.04, BROWC, True, 0.0),
    ("r_brow", RBROW_A, RBROW_B, 0.05, 0.04, BROWC, True, 0.0),
    ("l_eye_white", LEYE_A, LEYE_B, 0.065, 0.065, SCLERA, True, 0.0),
    ("r_eye_white", REYE_A, REYE_B, 0.065, 0.065, SCLERA, True, 0.0),
    ("l_eye", LEYE, LEYE, 0.08, 0.08, EYEC, True, 1.0),
    ("r_eye", REYE, REYE, 0.08, 0.08, EYEC, True, 1.0),
    ("nose", NOSE_B, NOSE, 0.07, 0.13, NOSEC, True, 0.75),
    ("mouth", MOUTH_L, MOUTH_R, 0.06, 0.06, MOUTHC, True, 0.5),
)
PART_NAMES = tuple(p[0] for p in _PARTS + _DETAILS)
NUM_PARTS = len(PART_NAMES)
_PA = np.array([p[1] for p in _PARTS])
_PB = np.array([p[2] for p in _PARTS])
_PRA = np.array([p[3] for p in _PARTS], dtype=np.float32)
_PRB = np.array([p[4] for p in _PARTS], dtype=np.float32)
_PCOL = np.array([p[5] for p in _PARTS + _DETAILS])  # colour part of every part id
_PSTRIPE = np.array([p[6] for p in _PARTS])
_DA = np.array([p[1] for p in _DETAILS])
_DB = np.array([p[2] for p in _DETAILS])
_DRA = np.array([p[3] for p in _DETAILS], dtype=np.float32)
_DRB = np.array([p[4] for p in _DETAILS], dtype=np.float32)
_DHEAD = np.array([p[6] for p in _DETAILS])
_DMINPX = np.array([p[7] for p in _DETAILS], dtype=np.float32)


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

    ys: (R,) row centres; the rest (R,) (or any shapes that broadcast). Returns
    (left, right) float32 arrays (R,); empty rows have left = +inf, right = -inf.

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
                   axial_len, overlap=False, view=None):
    """Rasterise one group of capsules, at most one per image (img unique) unless ``overlap``.

    a2, b2: (m, 2) endpoints in pixels; za, zb: (m,) depths (mm); ra, rb: (m,)
    radii in pixels; Ra, Rb: radii in mm; pid: (m,) global part ids; light:
    (m, 3) unit vectors toward the light (camera frame); stripes: (m,) amplitude,
    (m,) cycles per mm along the axis; axial_len: (m,) axis length in mm.

    Scanline: each image row's covered x-interval is computed analytically, and
    only covered pixels are evaluated (work proportional to the area drawn).
    The rows are ragged (each capsule's own rows, ``cap`` gives the capsule of a
    row), so capsules of very different heights cost no padding. Per-pixel
    parameters are expanded from per-row tables with ``np.repeat``;
    masks are applied with ``flatnonzero`` + gathers (boolean indexing with
    random masks is several times slower in NumPy). With ``overlap`` several
    capsules may cover a pixel: ``np.minimum.at`` takes the nearest sample of
    each pixel into the z-buffer and only the samples that set it are written.

    Depth model: each pixel sees the capsule's cross-section (a sphere around
    the nearest axis point) along the optical axis, a good approximation near
    the image centre. ``view`` (m, 2), the direction ``(X/Z, Y/Z)`` of each
    capsule from the camera, makes it the intersection along that line of sight
    instead (an oblique view): the surface point seen at a pixel and its depth
    then match the perspective projection of points on the surface to about a
    millimetre, which the head needs to carry the face details, however far
    off-centre it is.
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
        view = None if view is None else view[sel]
    m = len(img)
    # ragged rows: capsule i covers image rows y0[i] .. y1[i]
    nrows = y1 - y0 + 1
    cap = np.repeat(np.arange(m, dtype=np.int64), nrows)  # capsule of each row
    first_row = np.cumsum(nrows) - nrows
    yi = y0[cap] + (_arange_i64(cap.size) - first_row[cap])  # image row
    ys = yi.astype(np.float32)
    ax, ay = a2[cap, 0], a2[cap, 1]
    left, right = _row_spans(ys, ax, ay, b2[cap, 0], b2[cap, 1], ra[cap], rb[cap])
    xs0 = np.maximum(np.ceil(left), 0)
    xs1 = np.minimum(np.floor(right), W - 1)
    lens = xs1 - xs0 + 1
    lens[~(lens > 0)] = 0  # empty rows (inf spans)
    lens = lens.astype(np.int64)
    N = int(lens.sum())
    if N == 0:
        return
    xs0 = np.where(lens > 0, xs0, 0).astype(np.int64)
    excl = np.cumsum(lens) - lens  # exclusive cumsum: output offset of each row
    base = xs0 - excl  # per row: x of the row's first pixel minus its output offset
    row_flat = img.astype(np.int64)[cap] * (H * W) + yi * W + base
    flat = np.repeat(row_flat, lens)
    flat += _arange_i64(N)
    # per-row table (K, rows) -> per-pixel (K, N)
    d = (b2 - a2).astype(np.float32)
    dd = np.maximum(d[:, 0] ** 2 + d[:, 1] ** 2, 1e-6)
    stripes = bool(np.any(stripe_amp > 0))
    inst_rows = [d[:, 0] / dd, d[:, 1] / dd, d[:, 0], d[:, 1], ra, rb - ra, za, zb - za,
                 Ra, Rb - Ra, light[:, 0], light[:, 1], light[:, 2]]
    if stripes:
        inst_rows += [stripe_amp, axial_len * stripe_freq]
    kv = len(inst_rows)
    if view is not None:
        inst_rows += [view[:, 0], view[:, 1]]
    K = len(inst_rows)
    rows = np.empty((K + 2, cap.size), np.float32)
    rows[:K] = np.stack(inst_rows).astype(np.float32)[:, cap]
    rows[K] = base - ax  # px at the row's first pixel
    rows[K + 1] = ys - ay
    tab = np.repeat(rows, lens, axis=1)
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
    if view is not None:
        # the unit normal (ex + vx s, ey + vy s, s): on the line of sight (vx, vy, 1)
        # through the pixel's point of the cross-section's disc, front solution
        vx, vy = tab[kv], tab[kv + 1]
        ev = ex * vx + ey * vy
        q = 1.0 + vx * vx + vy * vy
        nz *= q
        nz += ev * ev
        np.maximum(nz, 0.0, out=nz)
        np.sqrt(nz, out=nz)
        nz += ev
        nz /= q  # = -s
        ex -= vx * nz
        ey -= vy * nz
    else:
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
    if overlap:
        # nearest sample per pixel: an unbuffered minimum into the z-buffer, then
        # the samples that set it (equal depths: the later one is written last)
        zold = cv.z[flat]
        np.minimum.at(cv.z, flat, depth)
        sel = np.flatnonzero((depth < zold) & (depth == cv.z[flat]))
        if sel.size == 0:
            return
        flat = flat[sel]
    else:
        sel = np.flatnonzero(depth < cv.z[flat])
        if sel.size == 0:
            return
        flat = flat[sel]
        cv.z[flat] = depth[sel]
    inst = np.repeat(cap, lens)[sel]
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
            view = _view(anchors3d[g, ia], anchors3d[g, ib]) if k in (7, 8) else None
            _draw_capsules(cv, img_of_person[g], a2, b2, za, zb, ra, rb, Ra, Rb,
                           pid_base[g] + k, light[g], amp, freq, axial, view=view)
    _draw_details(cv, anchors2d, anchors3d, img_of_person, pid_base, build, light, px_per_mm,
                  head_r)


def _draw_details(cv, anchors2d, anchors3d, img_of_person, pid_base, build, light, px_per_mm,
                  head_r):
    """Draw the ``_DETAILS`` of all P people in one call (several per image)."""
    P, F = anchors2d.shape[0], len(_DETAILS)
    if P == 0:
        return
    unit = np.where(_DHEAD, head_r[:, None], build[:, None]).astype(np.float32)  # (P, F)
    Ra = (_DRA * unit).ravel()
    Rb = (_DRB * unit).ravel()
    ra = np.maximum(Ra * px_per_mm[:, _DA].ravel(), np.tile(_DMINPX, P))
    rb = np.maximum(Rb * px_per_mm[:, _DB].ravel(), np.tile(_DMINPX, P))
    none = np.zeros(P * F, np.float32)  # no stripes
    pid = (pid_base[:, None] + len(_PARTS) + np.arange(F)).ravel()
    a3, b3 = anchors3d[:, _DA], anchors3d[:, _DB]
    _draw_capsules(cv, np.repeat(img_of_person, F), anchors2d[:, _DA].reshape(-1, 2),
                   anchors2d[:, _DB].reshape(-1, 2), a3[..., 2].ravel(), b3[..., 2].ravel(),
                   ra, rb, Ra, Rb, pid, np.repeat(light, F, axis=0), none, none, none,
                   overlap=True, view=_view(a3, b3).reshape(-1, 2))


def _view(a3, b3):
    """(..., 2) direction (X/Z, Y/Z) of the midpoints of capsules a3-b3 (..., 3) from the camera."""
    mid = 0.5 * (a3 + b3)
    return (mid[..., :2] / np.maximum(mid[..., 2:3], 1e-3)).astype(np.float32)



# --------------------------------------------------------------------------
# composing, visibility, boxes, projection
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
