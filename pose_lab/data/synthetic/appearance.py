"""The mannequin's looks: per-subject colours, stripes and build, and random backgrounds.

Skin and hair come from fixed tone tables; shirts, trousers and shoes are random,
with short sleeves, shorts and stripes some of the time. The face and shoe
details (eyes, sclera, nose, mouth, ears, brows, soles) have colours derived from
skin, hair and shoes with a fixed contrast (:func:`_part_colors`), the same for
the left and the right side. Backgrounds mix smooth
colour noise, a two-colour gradient, an optional floor, random rectangles and
discs, and fine colour grain (crops of fixed noise tiles). NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Appearance"]

# Colour parts: the 7 colours of an :class:`Appearance`, then the detail colours
# that :func:`_part_colors` derives from them.
SKIN, HAIRC, SHIRT, SLEEVE, PANTS, LOWER, SHOES = range(7)
EYEC, SCLERA, NOSEC, MOUTHC, EARC, BROWC, SOLE = range(7, 14)
NUM_COLOR_PARTS = 14

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


# Detail colours: fixed RGB for the eyes (iris and pupil) and the white of the
# eyes; per-channel factors of the skin for the nose (a shade darker), the mouth
# (darker red) and the ears (a little darker and redder than the head, whose
# shading then outlines them); factors of the hair for the brows and of the
# shoes for the soles.
_EYE_RGB = np.array([34, 26, 24], np.float32)
_SCLERA_RGB = np.array([236, 232, 222], np.float32)
_NOSE_TINT = np.array([0.88, 0.8, 0.78], np.float32)
_MOUTH_TINT = np.array([0.72, 0.36, 0.38], np.float32)
_EAR_TINT = np.array([0.9, 0.72, 0.7], np.float32)
_BROW_SCALE = np.float32(0.8)
_SOLE_SCALE = np.float32(0.5)


def _part_colors(colors):
    """(n, 7, 3) appearance colours -> (n, NUM_COLOR_PARTS, 3) with the detail colours."""
    colors = np.asarray(colors, np.float32)
    n = colors.shape[0]
    skin = colors[:, SKIN]
    out = np.empty((n, NUM_COLOR_PARTS, 3), np.float32)
    out[:, :7] = colors
    out[:, EYEC] = _EYE_RGB
    out[:, SCLERA] = _SCLERA_RGB
    out[:, NOSEC] = skin * _NOSE_TINT
    out[:, MOUTHC] = skin * _MOUTH_TINT
    out[:, EARC] = skin * _EAR_TINT
    out[:, BROWC] = colors[:, HAIRC] * _BROW_SCALE
    out[:, SOLE] = colors[:, SHOES] * _SOLE_SCALE
    return out


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
