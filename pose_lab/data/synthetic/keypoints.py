"""COCO-17 keypoints in 3D and their self-occlusion, from the synthetic skeleton.

Body keypoints (shoulders, elbows, wrists, hips, knees, ankles) are the
Human3.6M joints themselves; nose, eyes and ears are fixed points on a head
sphere attached to the head frame (:func:`head_sphere`), so they turn with the
head (:func:`coco_keypoints_3d`). :func:`coco_visibility` tells, per camera,
which keypoints are self-occluded: a body keypoint when the line of sight
passes through a body capsule other than its own limbs, a face keypoint when it
faces away from the camera or a capsule other than the head and neck covers
it (e.g. a hand in front of the face).
"""

from __future__ import annotations

import numpy as np

from pose_lab.skeletons import H36M17, H36M17_FROM_H36M32

from .body import joints17, sample_body, segment_segment_distance

__all__ = ["coco_keypoints_3d", "coco_visibility", "head_sphere"]


# Face points on the head sphere, in the head frame (x forward, y left, z up),
# in units of the sphere radius, relative to its centre.
_FACE = {
    0: (1.05, 0.0, -0.30),   # nose (tip, protruding)
    1: (0.82, 0.34, 0.02),   # left eye
    2: (0.82, -0.34, 0.02),  # right eye
    3: (-0.10, 0.97, -0.05),  # left ear
    4: (-0.10, -0.97, -0.05),  # right ear
}
# COCO body keypoint -> H36M17 joint
_COCO_BODY = {5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 11: 4, 12: 1, 13: 5, 14: 2, 15: 6, 16: 3}
# COCO body keypoint -> H36M32 joint
_COCO_BODY32 = {5: 17, 6: 25, 7: 18, 8: 26, 9: 19, 10: 27, 11: 6, 12: 1, 13: 7, 14: 2, 15: 8, 16: 3}


def _as17(joints):
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim >= 2 and joints.shape[-2] == 32 and joints.shape[-1] == 3:
        return joints17(joints)
    H36M17.check(joints, "joints_world", 3)
    return joints


def head_sphere(joints_world, head_rotation):
    """Centre ``(..., 3)`` and radius ``(...,)`` (mm) of the head sphere.

    The sphere is fixed in the head frame: its radius is 0.95 of the
    "Neck/Nose" -> "Head" bone length and its centre sits 0.74 of that bone
    above "Neck/Nose" along the head's up axis, slightly behind it.
    """
    j = _as17(joints_world)
    R = np.asarray(head_rotation, dtype=np.float64)
    L = np.linalg.norm(j[..., 10, :] - j[..., 9, :], axis=-1)
    c = j[..., 9, :] + np.einsum("...ij,j->...i", R, np.array([-0.07, 0.0, 0.74])) * L[..., None]
    return c, 0.95 * L


def coco_keypoints_3d(joints_world, head_rotation) -> np.ndarray:
    """COCO-17 keypoints in 3D from H36M joints and the head orientation.

    Body keypoints (shoulders, elbows, wrists, hips, knees, ankles) are the
    H36M joints themselves (see :data:`pose_lab.skeletons.COCO_TO_H36M`).
    Nose, eyes and ears are fixed points on a head sphere attached to the head
    frame (:func:`head_sphere`): they turn with the head.

    Args:
        joints_world: ``(..., 17, 3)`` H36M-17 or ``(..., 32, 3)`` H36M-32 joints (mm).
        head_rotation: ``(..., 3, 3)`` world rotation of the head
            (:attr:`~pose_lab.data.synthetic.motion.MotionSequence.head_rotation`).

    Returns:
        ``(..., 17, 3)`` COCO-17 keypoints (mm), in :data:`pose_lab.skeletons.COCO17` order.
    """
    j = _as17(joints_world)
    R = np.asarray(head_rotation, dtype=np.float64)
    if R.shape[-2:] != (3, 3) or R.shape[:-2] != j.shape[:-2]:
        raise ValueError(
            f"head_rotation: expected shape {j.shape[:-2] + (3, 3)} to match joints {j.shape}, got {R.shape}"
        )
    c, r = head_sphere(j, R)
    out = np.empty(j.shape[:-2] + (17, 3))
    for k, v in _FACE.items():
        out[..., k, :] = c + np.einsum("...ij,j->...i", R, np.array(v)) * r[..., None]
    for k, h in _COCO_BODY.items():
        out[..., k, :] = j[..., h, :]
    return out


def _capsules_for(body, n_joints):
    caps = body.capsules
    if n_joints == 17:   # keep the capsules whose ends exist in H36M17
        m = {j32: j17 for j17, j32 in enumerate(H36M17_FROM_H36M32)}
        m[11] = 0
        caps = tuple((n, m[a], m[b], r) for n, a, b, r in caps if a in m and b in m)
    return caps


def coco_visibility(joints_world, head_rotation, camera, body=None, margin: float | None = None) -> np.ndarray:
    """Self-occlusion of the COCO-17 keypoints seen from ``camera``.

    A body keypoint is occluded when the line of sight from the camera centre
    to it passes through a body capsule that does not end at the keypoint's
    own joint (the last ``margin`` mm before the keypoint are ignored, since
    joints lie inside their own limbs). A face keypoint is occluded when it
    faces away from the camera (its outward normal on the head sphere makes
    more than ~99 degrees with the direction to the camera) or a capsule other
    than the head and neck covers it (e.g. a hand in front of the face).
    Keypoints outside the image are *not* handled here.

    Args:
        joints_world: ``(T, 32, 3)`` (preferred: hands and feet included) or
            ``(T, 17, 3)`` joints in world mm; a single pose ``(J, 3)`` is accepted.
        head_rotation: ``(T, 3, 3)`` (or ``(3, 3)``).
        camera: a :class:`pose_lab.geometry.Camera` (its centre ``camera.T`` is used).
        body: the :class:`~pose_lab.data.synthetic.body.Body` that gives the
            capsule radii; default: radii from the average body of a
            1.70 m subject scaled to this skeleton's size.
        margin: mm ignored before the keypoint (default 3% of stature).

    Returns:
        bool array ``(T, 17)``: True = visible (not self-occluded).
    """
    J = np.asarray(joints_world, dtype=np.float64)
    single = J.ndim == 2
    if single:
        J = J[None]
        head_rotation = np.asarray(head_rotation)[None]
    if J.ndim != 3 or J.shape[-1] != 3 or J.shape[-2] not in (17, 32):
        raise ValueError(f"joints_world: expected shape (T, 32, 3) or (T, 17, 3), got {np.shape(joints_world)}")
    nj = J.shape[1]
    if body is None:
        body = sample_body(0, height_mm=1700.0)
        scale = 1.0
        j17 = _as17(J)
        h_est = np.median(np.linalg.norm(j17[:, 10] - j17[:, 0], axis=-1)) / 0.393
        scale = h_est / body.height_mm
        caps = tuple((n, a, b, r * scale) for n, a, b, r in _capsules_for(body, nj))
        height = h_est
    else:
        caps = _capsules_for(body, nj)
        height = body.height_mm
    margin = 0.03 * height if margin is None else float(margin)
    kp = coco_keypoints_3d(J, head_rotation)                    # (T, 17, 3)
    C = np.asarray(camera.T, dtype=np.float64)
    own = {}
    body_map = _COCO_BODY32 if nj == 32 else _COCO_BODY
    for k, jidx in body_map.items():
        own[k] = {n for n, a, b, _ in caps if jidx in (a, b)}
    for k in _FACE:
        own[k] = {"head", "neck"}
    ray = kp - C
    dist = np.linalg.norm(ray, axis=-1, keepdims=True)
    end = kp - ray / np.maximum(dist, 1e-9) * np.minimum(margin, 0.5 * dist)
    start = np.broadcast_to(C, kp.shape)
    visible = np.ones(kp.shape[:2], bool)
    for name, a, b, r in caps:
        d, _, _ = segment_segment_distance(start, end, J[:, None, a], J[:, None, b])
        hit = d < r
        for k in range(17):
            if name in own[k]:
                hit[:, k] = False
        visible &= ~hit
    # face points facing away from the camera
    c, _ = head_sphere(_as17(J), head_rotation)
    n = kp[:, :5] - c[:, None]
    to_cam = C - kp[:, :5]
    cos = np.einsum("tki,tki->tk", n, to_cam) / (np.linalg.norm(n, axis=-1) * np.linalg.norm(to_cam, axis=-1))
    visible[:, :5] &= cos > -0.15
    return visible[0] if single else visible
