"""Cameras for the synthetic engine: the Human3.6M rig and random cameras.

World frame as in Human3.6M and :mod:`pose_lab.geometry`: millimetres, ``z``
up, cameras returned as :class:`pose_lab.geometry.Camera` (``R`` world->camera,
``T`` camera centre).
"""

from __future__ import annotations

import zlib

import numpy as np

from pose_lab.geometry import (
    H36M_CAMERA_IDS,
    H36M_EXTRINSIC_PARAMS,
    H36M_INTRINSIC_PARAMS,
    Camera,
    h36m_cameras,
    look_at,
)

from .motion import CAPTURE_AREA

__all__ = ["h36m_rig", "random_camera", "varied_rig", "CAPTURE_CENTER", "CAPTURE_AREA"]

#: Centre of the floor area seen by all four Human3.6M cameras (world mm).
CAPTURE_CENTER = np.array([0.5 * (CAPTURE_AREA[0] + CAPTURE_AREA[1]), 0.5 * (CAPTURE_AREA[2] + CAPTURE_AREA[3]), 0.0])


def h36m_rig(subject: str = "S1") -> list[Camera]:
    """The four Human3.6M cameras for ``subject``.

    For the subjects with published calibration (S1, S5, S6, S7, S8, S9, S11)
    these are exactly the real cameras (:func:`pose_lab.geometry.h36m_cameras`:
    published intrinsics with distortion, the subject's extrinsics). For any
    other name the four cameras keep their real intrinsics and are placed at
    the mean of the published positions/orientations, perturbed by up to
    ~10 cm and ~1 degree deterministically from the name, like the small
    re-calibrations between the real sessions.

    Returns:
        list of 4 :class:`~pose_lab.geometry.Camera`, in
        :data:`pose_lab.geometry.H36M_CAMERA_IDS` order.
    """
    key = f"S{subject}" if isinstance(subject, (int, np.integer)) else str(subject)
    if key in H36M_EXTRINSIC_PARAMS:
        return h36m_cameras(key)
    rng = np.random.default_rng(zlib.crc32(key.encode("utf-8")))
    refs = [h36m_cameras(s) for s in H36M_EXTRINSIC_PARAMS]
    cams = []
    for i, cam_id in enumerate(H36M_CAMERA_IDS):
        T = np.mean([r[i].T for r in refs], axis=0) + rng.normal(0.0, 50.0, 3)
        # mean rotation: project the averaged matrix back onto SO(3)
        M = np.mean([r[i].R for r in refs], axis=0)
        U, _, Vt = np.linalg.svd(M)
        R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        ang = np.deg2rad(rng.uniform(0.0, 1.0))
        K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        dR = np.eye(3) + np.sin(ang) * K + (1 - np.cos(ang)) * K @ K
        intr = H36M_INTRINSIC_PARAMS[cam_id]
        cams.append(Camera(name=cam_id, focal=intr["focal"], center=intr["center"], radial=intr["radial"],
                           tangential=intr["tangential"], width=intr["width"], height=intr["height"],
                           R=dR @ R, T=T))
    return cams


def random_camera(rng=None, target=None, azimuth=None, distance=(3000.0, 6500.0), height=(600.0, 2400.0),
                  focal=(700.0, 1800.0), image_size=(1000, 1000), target_jitter: float = 150.0,
                  roll_deg: float = 3.0, distortion: bool = False, name: str = "random") -> Camera:
    """A random camera looking at a subject.

    Args:
        rng: ``numpy.random.Generator`` or int seed.
        target: point looked at (world mm); default :data:`CAPTURE_CENTER` raised to
            900 mm (a standing subject's pelvis). Pass e.g.
            ``seq.root_pos[t]`` to follow a subject.
        azimuth: fixed azimuth (radians, around the world ``z`` axis from
            ``+x``) or ``None`` for uniform in ``[-pi, pi)``; a ``(lo, hi)``
            tuple draws uniformly in that range.
        distance: ``(lo, hi)`` horizontal distance to the target, mm.
        height: ``(lo, hi)`` camera height above the floor, mm.
        focal: ``(lo, hi)`` focal length in pixels (``fx = fy``).
        image_size: ``(width, height)`` pixels; the principal point is the centre.
        target_jitter: s.d. (mm) of the aim point around ``target``.
        roll_deg: s.d. of a small roll about the optical axis, degrees.
        distortion: add small radial distortion (``k1`` in ``[-0.25, 0]``,
            like the Human3.6M lenses) or not.
        name: the camera's name.

    Returns:
        a :class:`~pose_lab.geometry.Camera` with ``z`` towards the target.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    target = np.array(CAPTURE_CENTER + [0.0, 0.0, 900.0] if target is None else target, dtype=np.float64)
    if target.shape != (3,):
        raise ValueError(f"target must have shape (3,), got {target.shape}")

    def draw(v):
        if v is None:
            return gen.uniform(-np.pi, np.pi)
        if np.ndim(v) == 0:
            return float(v)
        lo, hi = v
        if hi < lo:
            raise ValueError(f"range must be (lo, hi) with lo <= hi, got {v}")
        return gen.uniform(lo, hi)

    az = draw(azimuth)
    dist = draw(distance)
    h = draw(height)
    f = draw(focal)
    if dist <= 0 or f <= 0:
        raise ValueError(f"distance and focal must be positive, got distance={dist}, focal={f}")
    w, hgt = int(image_size[0]), int(image_size[1])
    eye = np.array([target[0] + dist * np.cos(az), target[1] + dist * np.sin(az), h])
    aim = target + gen.normal(0.0, target_jitter, 3)
    R = look_at(eye, aim)
    roll = np.deg2rad(gen.normal(0.0, roll_deg))
    c, s = np.cos(roll), np.sin(roll)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ R
    radial = (gen.uniform(-0.25, 0.0), gen.uniform(0.0, 0.2), 0.0) if distortion else (0.0, 0.0, 0.0)
    fy = f * gen.uniform(0.998, 1.002)
    return Camera(name=name, focal=(f, fy), center=(w / 2.0, hgt / 2.0), radial=radial, tangential=(0.0, 0.0),
                  width=w, height=hgt, R=R, T=eye)


def varied_rig(subject: str = "S1", seed: int = 0, n: int = 4, height=(500.0, 2600.0),
               distance=(3000.0, 6000.0)) -> list[Camera]:
    """A rig of ``n`` cameras around the capture area at varied heights and elevations.

    The option of :func:`~pose_lab.data.synthetic.generate_h36m` (``cameras="varied"``) for wider
    viewpoint coverage; the Human3.6M rig stays the default. Azimuths are spread evenly
    (random start, +-0.4 rad jitter), heights and distances drawn from the ranges, focal
    length 1050-1250 px on 1000 x 1000 images (about Human3.6M's), small radial
    distortion; each camera looks at the capture centre at pelvis height (+-15 cm).
    Deterministic in ``(subject, seed)``.

    Example:
        >>> cams = varied_rig("S9", seed=0)
        >>> [round(c.T[2]) for c in cams]        # doctest: +SKIP
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive number of cameras, got {n!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(str(subject).encode()), 0xCA3]))
    start = rng.uniform(-np.pi, np.pi)
    return [random_camera(rng, azimuth=start + 2 * np.pi * k / n + rng.uniform(-0.4, 0.4), distance=distance,
                          height=height, focal=(1050.0, 1250.0), distortion=True, name=f"{subject}-varied-{k}")
            for k in range(int(n))]
