"""The mannequin's body-part table and the z-buffered capsule rasteriser (NumPy only).

The mannequin is built on the 17 Human3.6M joints plus derived *anchor* points
(head, hair, hands, toes, face points, placed by :mod:`.scenes`): 21 tapered
capsules (pelvis, abdomen, chest, shoulders, torso sides, neck, limbs, hands,
feet), an oval head and hair, listed in ``_PARTS``.

Every capsule is rasterised where it projects, with a depth per pixel
(``depth = axis depth - radius * sqrt(1 - u^2)``, ``u`` the normalised distance
to the projected axis); a **z-buffer** (:class:`_Canvas`) keeps the nearest
surface, so limbs occlude each other and people occlude people. Pixels are
Lambert-shaded with a per-image light and optionally striped; :func:`_compose`
colours them over a background, :func:`_visibility` reads keypoint visibility
from the z-buffer and :func:`_boxes_from_masks` gives COCO boxes.

Pixel coordinates have integer values at pixel centres (``image[r, c]`` is
centred on ``(x=c, y=r)``). A scanline rasteriser evaluates only the covered
pixels, for all images of a batch at once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PART_NAMES", "NUM_PARTS"]

# --------------------------------------------------------------------------
# joints, anchors and the body-part table
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
