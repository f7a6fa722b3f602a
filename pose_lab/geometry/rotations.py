"""Rotations (NumPy): axis-angle, quaternion ``(w, x, y, z)`` and matrix conversions,
rotations about an axis, uniform random rotations and :func:`look_at`.

Quaternions are scalar first with the Hamilton product; matrices act on column
vectors (see :mod:`pose_lab.geometry`)."""

from __future__ import annotations

import numpy as np

from ._checks import _as_rotation, _as_vectors, _shape


# --------------------------------------------------------------------------
# rotations
# --------------------------------------------------------------------------
def axis_angle_to_matrix(axis_angle) -> np.ndarray:
    """Rodrigues' formula: rotation vector ``(..., 3)`` (axis * angle, radians) -> ``(..., 3, 3)``.

    ``R = I + sin(t) K + (1 - cos(t)) K^2`` with ``K`` the cross-product matrix of
    the unit axis; Taylor-expanded near ``t = 0``.
    """
    aa = _as_vectors(axis_angle, "axis_angle", 3)
    theta2 = np.sum(aa * aa, axis=-1)
    theta = np.sqrt(theta2)
    small = theta2 < 1e-12
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(theta) / safe)  # sin(t)/t
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(theta)) / np.where(small, 1.0, theta2))
    K = _skew(aa)
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def _skew(v: np.ndarray) -> np.ndarray:
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = np.zeros_like(x)
    return np.stack(
        [np.stack([o, -z, y], -1), np.stack([z, o, -x], -1), np.stack([-y, x, o], -1)], axis=-2
    )


def quaternion_to_matrix(q) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` (scalar first), shape ``(..., 4)`` -> ``(..., 3, 3)``.

    The quaternion is normalised first; ``q`` and ``-q`` give the same matrix.
    ``quaternion_to_matrix(q) @ v`` equals rotating ``v`` by ``q v q*``.
    """
    q = _as_vectors(q, "quaternion", 4)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n < 1e-12):
        raise ValueError("quaternion of shape (..., 4) must be non-zero")
    w, x, y, z = np.moveaxis(q / n, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def matrix_to_quaternion(R) -> np.ndarray:
    """Rotation matrix ``(..., 3, 3)`` -> unit quaternion ``(w, x, y, z)`` with ``w >= 0``.

    Shepperd's method (pick the largest of ``w, x, y, z`` to divide by): stable
    for all rotations, including 180 degrees.
    """
    R = _as_rotation(R)
    m = R
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # 4*w^2, 4*x^2, 4*y^2, 4*z^2 (up to the common +1)
    cand = np.stack(
        [1 + tr, 1 + 2 * m[..., 0, 0] - tr, 1 + 2 * m[..., 1, 1] - tr, 1 + 2 * m[..., 2, 2] - tr], -1
    )
    idx = np.argmax(cand, axis=-1)
    s = np.sqrt(np.maximum(np.take_along_axis(cand, idx[..., None], -1)[..., 0], 1e-300)) * 2  # 4*|q_i|
    q_w = np.stack(
        [s / 4, (m[..., 2, 1] - m[..., 1, 2]) / s, (m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 1, 0] - m[..., 0, 1]) / s], -1
    )
    q_x = np.stack(
        [(m[..., 2, 1] - m[..., 1, 2]) / s, s / 4, (m[..., 0, 1] + m[..., 1, 0]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s], -1
    )
    q_y = np.stack(
        [(m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 0, 1] + m[..., 1, 0]) / s, s / 4, (m[..., 1, 2] + m[..., 2, 1]) / s], -1
    )
    q_z = np.stack(
        [(m[..., 1, 0] - m[..., 0, 1]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s, (m[..., 1, 2] + m[..., 2, 1]) / s, s / 4], -1
    )
    q = np.choose(idx[..., None], [q_w, q_x, q_y, q_z])
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(R) -> np.ndarray:
    """Rotation matrix ``(..., 3, 3)`` -> rotation vector ``(..., 3)`` with angle in ``[0, pi]``."""
    q = matrix_to_quaternion(R)
    v = q[..., 1:]
    sin_half = np.linalg.norm(v, axis=-1)
    angle = 2.0 * np.arctan2(sin_half, q[..., 0])
    small = sin_half < 1e-12
    factor = np.where(small, 2.0 / np.maximum(q[..., 0], 1e-12), angle / np.where(small, 1.0, sin_half))
    return v * factor[..., None]


def quaternion_multiply(q1, q2) -> np.ndarray:
    """Hamilton product ``q1 * q2`` of ``(w, x, y, z)`` quaternions (broadcast over ``...``).

    ``quaternion_to_matrix(q1 * q2) == quaternion_to_matrix(q1) @ quaternion_to_matrix(q2)``.
    """
    a = _as_vectors(q1, "q1", 4)
    b = _as_vectors(q2, "q2", 4)
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def quaternion_conjugate(q) -> np.ndarray:
    """``(w, -x, -y, -z)``: the inverse rotation of a unit quaternion."""
    q = _as_vectors(q, "quaternion", 4)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quaternion_rotate(q, v) -> np.ndarray:
    """Rotate vectors ``v`` ``(..., 3)`` by unit quaternions ``q`` ``(..., 4)`` (``q v q*``)."""
    q = _as_vectors(q, "quaternion", 4)
    v = _as_vectors(v, "v", 3)
    qv = q[..., 1:]
    uv = np.cross(qv, v)
    uuv = np.cross(qv, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def rotation_about_axis(axis, angle) -> np.ndarray:
    """Rotation by ``angle`` radians about ``axis`` (right-hand rule).

    Args:
        axis: ``"x"``, ``"y"``, ``"z"`` or a 3-vector (normalised here).
        angle: scalar or array of angles; the result has shape ``angle.shape + (3, 3)``.
    """
    if isinstance(axis, str):
        try:
            axis = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}[axis.lower()]
        except KeyError:
            raise ValueError(f"axis must be 'x', 'y', 'z' or a vector of shape (3,), got {axis!r}") from None
    ax = np.asarray(axis, dtype=np.float64)
    if ax.shape != (3,):
        raise ValueError(f"axis must be 'x', 'y', 'z' or a vector of shape (3,), got shape {_shape(ax)}")
    n = np.linalg.norm(ax)
    if n < 1e-12:
        raise ValueError("axis of shape (3,) must be non-zero")
    ang = np.asarray(angle, dtype=np.float64)
    return axis_angle_to_matrix((ax / n) * ang[..., None])


def random_rotation(n: int | None = None, rng=None) -> np.ndarray:
    """Rotations drawn uniformly (Haar measure) on SO(3).

    A normalised 4D standard Gaussian is a uniform unit quaternion, whose matrix
    is uniform on SO(3).

    Args:
        n: number of rotations; ``None`` returns a single ``(3, 3)`` matrix.
        rng: ``numpy.random.Generator``, an integer seed, or ``None``.

    Returns:
        ``(n, 3, 3)`` (or ``(3, 3)``) proper rotation matrices.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    size = 1 if n is None else int(n)
    if size < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    q = gen.standard_normal((size, 4))
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    q = q / np.maximum(norm, 1e-12)
    R = quaternion_to_matrix(q) if size else np.zeros((0, 3, 3))
    return R[0] if n is None else R


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World->camera rotation for a camera at ``eye`` looking at ``target``.

    Camera axes follow the convention of :mod:`pose_lab.geometry`: ``z`` forward (towards
    ``target``), ``x`` right, ``y`` down in the image; ``up`` is the world's up
    direction (Human3.6M: ``+z``). Use with ``T = eye``:
    ``Camera(..., R=look_at(eye, target), T=eye)``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    for name, v in (("eye", eye), ("target", target), ("up", up)):
        if v.shape != (3,):
            raise ValueError(f"{name} must have shape (3,), got {_shape(v)}")
    z = target - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("eye and target must differ")
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("viewing direction is parallel to 'up'; pick another up vector")
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=0)
