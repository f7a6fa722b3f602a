"""A fast NumPy renderer of shaded mannequins: person crops, multi-person scenes.

The mannequin is built on the 17 Human3.6M joints
(:data:`pose_lab.skeletons.H36M17`) given in **camera coordinates (mm)**: 21
tapered capsules (pelvis, abdomen, chest, shoulders, torso sides, neck, limbs,
hands, feet), an oval head and hair (on the back of the head), and the details
that tell front from back and left from right as on real people: a face (dark
eyes with their whites, brows, a nose, a mouth) and ears, centred on the very
points the COCO face keypoints are projected from, flat mittens with a thumb
(on the side of the elbow's bend: the hand's orientation) and shoe soles with a heel
(the feet point forward). Every part is rasterised where it projects with a depth
per pixel; a **z-buffer** keeps the nearest surface, so limbs occlude each other,
the head hides the far side of the face and people occlude people
(:mod:`.raster`). Pixels are Lambert-shaded with a per-image light, coloured per
subject (skin, hair, shirt, trousers, shoes, short/long sleeves, shorts; the
face details in colours derived from skin and hair with a fixed contrast, the
same on both sides), optionally striped, and composited over a varied
background (gradients, smooth colour noise, random rectangles and discs, floor
and horizon, fine noise; :mod:`.appearance`). COCO files: :mod:`.coco_writer`.

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
  writer, :mod:`.coco_writer`, stores ``0, 0, 0`` for those, as the official files do).
* COCO-17 keypoints: the 12 limb points are the H36M joints; the nose, eyes and
  ears are points on the rendered head sphere, placed from the head's
  orientation exactly as the motion engine defines them
  (:func:`pose_lab.data.synthetic.motion.coco_keypoints_3d`); without a head
  orientation the head faces the body's front. The eyes, nose and ears are
  drawn centred on these points, so a visible face keypoint lies on its
  feature's pixels (or within a pixel of them, at grazing angles); the face on
  the far side of the head is hidden by the z-buffer like any other surface.
* Boxes are COCO ``[x, y, w, h]`` of the silhouette in mask convention: ``x``
  the first covered column, ``w`` the number of columns (``pycocotools.mask.toBbox``).
* Determinism: every function takes ``seed`` (int or ``numpy.random.Generator``);
  the same arguments and seed give byte-identical output.

Speed: :func:`render_crops` renders whole batches with a few dozen NumPy calls
per body part for all crops at once; a scanline rasteriser evaluates only the
covered pixels; the small details are drawn together in one call. About 0.6 ms
per 128x128 crop on one core, pose generation included (``benchmarks/bench_render.py``).
"""

from __future__ import annotations

import numpy as np

from pose_lab import runtime
from pose_lab.skeletons import H36M17

from .appearance import _backgrounds, _part_colors, _sample_colors
from .body import TRAIN_SUBJECTS
from .motion import ALL_ACTIONS, generate_sequence, random_poses
from .raster import (  # joint and anchor indices, the part table, the rasteriser
    ANCHOR_HOST, BODY_ANCHORS, HAIR, HEAD, HEAD_A, HEAD_B, HIP, LEAR, LELB, LEYE, LFOOT, LHAND,
    LHEEL, LHIP, LKNEE, LPALM_A, LPALM_B, LSHO, LSOLE, LTHUMB_A, LTHUMB_B, LTOE, LWRI, NECK, NOSE,
    NUM_ANCHORS, NUM_PARTS, REAR, REAR_B, RELB, REYE, RFOOT, RHAND, RHEEL, RHIP, RKNEE, RPALM_A,
    RPALM_B, RSHO, RSOLE, RTHUMB_A, RTHUMB_B, RTOE, RWRI, THORAX, _PCOL, _boxes_from_masks,
    _Canvas, _compose, _pinhole, _rasterise, _visibility,
)

__all__ = ["render_crops", "render_scene", "render_scenes", "render_pose"]

# COCO-17 keypoints as anchors, and how deep inside the body each one lies
# (mm): the visibility test tolerates that much surface in front of it.
_COCO_ANCHORS = np.array([NOSE, LEYE, REYE, LEAR, REAR, LSHO, RSHO, LELB, RELB,
                          LWRI, RWRI, LHIP, RHIP, LKNEE, RKNEE, LFOOT, RFOOT])
_COCO_TOL = np.array([30, 30, 30, 45, 45, 95, 95, 80, 80, 70, 70, 125, 125, 95, 95, 80, 80],
                     dtype=np.float32)
_H36M_TOL = np.array([150, 125, 95, 80, 125, 95, 80, 150, 140, 70, 70, 95, 80, 70, 95, 80, 70],
                     dtype=np.float32)


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------
# anchors (derived 3D points) and keypoints
# --------------------------------------------------------------------------
def _unit(v, eps=1e-6):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def _perp(v, u):
    """The part of ``v`` across the unit vector ``u``."""
    return v - np.sum(v * u, -1, keepdims=True) * u


# Face points on the head sphere in the head frame (x forward, y left, z up), in
# units of the sphere radius, and the sphere itself: the motion engine's
# definition (pose_lab.data.synthetic.motion.head_sphere / coco_keypoints_3d),
# repeated here so that the renderer also works with hand-made poses.
_FACE_PTS = np.array([(1.05, 0.0, -0.30), (0.82, 0.34, 0.02), (0.82, -0.34, 0.02),
                      (-0.10, 0.97, -0.05), (-0.10, -0.97, -0.05)], np.float32)
_HEAD_CENTRE = np.array([-0.07, 0.0, 0.74], np.float32)  # x Neck/Nose->Head length
_HEAD_RADIUS = 0.95  # x Neck/Nose->Head length


def _on_head(x, y, z, out=0.0):
    """Head-frame point (units of the sphere radius) moved horizontally onto the drawn head.

    The drawn head (:mod:`.raster`) is a capsule of radius 0.93 around the
    vertical segment ``z`` in [-0.12, 0.12]; ``out`` > 0 is outside it.
    """
    rho = np.sqrt((0.93 + out) ** 2 - max(abs(z) - 0.12, 0.0) ** 2)
    return np.array([x, y, 0.0]) * rho / np.hypot(x, y) + np.array([0.0, 0.0, z])


def _face_details():
    """Anchors NOSE_B .. REAR_B in the head frame (units of the sphere radius).

    The eye whites are short capsules through each eye point, along the head's
    surface; the brows sit above the eyes, the mouth below the nose, the nose
    ridge runs from between the eyes to the nose point; the ears are short
    upright capsules through the ear points, tilted back a little.
    """
    pts = [_on_head(1.0, 0.0, -0.02, out=-0.04)]  # nose bridge
    for k in (1, 2):  # eye whites: +- 0.1 along the surface, horizontally
        e = _FACE_PTS[k].astype(np.float64)
        t = np.array([-e[1], e[0], 0.0]) / np.hypot(e[0], e[1])
        pts += [e + 0.1 * t, e - 0.1 * t]
    for side in (1.0, -1.0):  # brows: inner, outer end
        pts += [_on_head(0.98, side * 0.17, 0.2), _on_head(0.87, side * 0.5, 0.19)]
    pts += [_on_head(0.99, 0.15, -0.56, out=-0.02), _on_head(0.99, -0.15, -0.56, out=-0.02)]
    for k in (3, 4):  # ears
        e = _FACE_PTS[k].astype(np.float64)
        pts += [e + (-0.04, 0.0, 0.17), e + (0.03, 0.0, -0.14)]
    return np.array(pts, np.float32)


# Head-frame points of the anchors NOSE .. REAR_B: the COCO face points, then the details.
_HEAD_PTS = np.concatenate([_FACE_PTS, _face_details()])


def _body_head_rotation(j):
    """Head frame (columns forward, left, up) from the body when none is given."""
    right = _unit(j[..., RHIP, :] - j[..., LHIP, :])
    up_b = _unit(j[..., THORAX, :] - j[..., HIP, :])
    fwd_b = _unit(np.cross(up_b, right))
    up_h = _unit(j[..., HEAD, :] - j[..., NECK, :])
    fwd_h = _unit(_perp(fwd_b, up_h))
    left_h = np.cross(up_h, fwd_h)
    return np.stack([fwd_h, left_h, up_h], axis=-1)


def _head_model(j, head_rotation=None):
    """Head sphere centre (..., 3), radius (...,), face and detail points (..., 20, 3), frame."""
    Rh = _body_head_rotation(j) if head_rotation is None else np.asarray(head_rotation, np.float32)
    L = np.linalg.norm(j[..., HEAD, :] - j[..., NECK, :], axis=-1)
    c = j[..., NECK, :] + np.einsum("...ij,j->...i", Rh, _HEAD_CENTRE) * L[..., None]
    r = _HEAD_RADIUS * L
    face = c[..., None, :] + np.einsum("...ij,kj->...ki", Rh, _HEAD_PTS) * r[..., None, None]
    return c, r, face, Rh


def _anchors(joints, head_rotation=None, build=None):
    """(..., 17, 3) camera-frame joints -> (..., NUM_ANCHORS, 3) anchor points (mm), head radius.

    The first ``BODY_ANCHORS`` are the joints and the body parts' anchors (crops
    are framed on these); then the face details, thumbs, palms, heels and soles.

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
    for wri, elb, sho, hand, tha, thb, pa, pb, side in (
            (LWRI, LELB, LSHO, LHAND, LTHUMB_A, LTHUMB_B, LPALM_A, LPALM_B, 1.0),
            (RWRI, RELB, RSHO, RHAND, RTHUMB_A, RTHUMB_B, RPALM_A, RPALM_B, -1.0)):
        w = j[..., wri, :]
        fa = _unit(w - j[..., elb, :])
        a[..., hand, :] = w + 80.0 * fa
        # The hand is a flat mitten: the hand capsule on the thumb side and a palm
        # capsule beside it on the little finger's side, with a thumb. Thumb side
        # (forearm mid-prone, as when relaxed): in the elbow's bending plane, across
        # the forearm toward the upper arm's side (a hanging arm bent forward: thumb
        # forward; bent 90 degrees: thumb up); for a straight arm, the body's front
        # and up across the forearm. The thumb leans to the palm, which faces the
        # body's midline when the arm hangs: the hand's handedness.
        t = _perp(_unit(j[..., sho, :] - j[..., elb, :]), fa) + 0.3 * _unit(_perp(fwd_b + up_b, fa))
        t = _unit(t)
        palm = side * np.cross(fa, t)
        a[..., tha, :] = w + 15.0 * fa + 20.0 * t + 10.0 * palm
        a[..., thb, :] = w + 60.0 * fa + 46.0 * t + 18.0 * palm
        a[..., pa, :] = w + 15.0 * fa - 24.0 * t
        a[..., pb, :] = w + 95.0 * fa - 22.0 * t
    for ank, kne, toe, heel, sole in ((LFOOT, LKNEE, LTOE, LHEEL, LSOLE),
                                      (RFOOT, RKNEE, RTOE, RHEEL, RSOLE)):
        ankle = j[..., ank, :]
        shin = _unit(ankle - j[..., kne, :])
        ff = _unit(_perp(fwd_b, shin))
        a[..., toe, :] = ankle + 135.0 * ff + 35.0 * shin
        # the sole: a flat bottom from a heel behind the ankle to under the toes
        a[..., heel, :] = ankle - 30.0 * ff + 58.0 * shin
        a[..., sole, :] = ankle + 150.0 * ff + 62.0 * shin
    a[..., NOSE:REAR_B + 1, :] = face
    return a, r.astype(np.float32)


# --------------------------------------------------------------------------
# rendering people
# --------------------------------------------------------------------------
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
        delta = np.asarray(joints_2d, np.float32) - anchors2d[:, :17]
        anchors2d = anchors2d + delta[:, ANCHOR_HOST]
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
    palette = _part_colors(colors)[:, _PCOL, :].reshape(P * NUM_PARTS, 3)
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
    """
    if poses is not None:
        arr, head = _pose_arrays(poses)
        idx = np.arange(n) % arr.shape[0]
        return arr[idx], (None if head is None else head[idx]), None
    subjects = list(subjects)
    if not subjects:
        raise ValueError("subjects must name at least one subject, e.g. ('S1', 'S5')")
    joints, heads, acts = [], [], []
    if actions:
        names = list(ALL_ACTIONS) if actions is True else [str(a) for a in actions]
        unknown = sorted(set(names) - set(ALL_ACTIONS))
        if unknown:
            raise ValueError(f"unknown actions {unknown}; expected names from {list(ALL_ACTIONS)}")
        per_seq = 100
        left = n
        while left > 0:
            k = min(per_seq, left)
            act = names[int(rng.integers(len(names)))]
            subj = subjects[int(rng.integers(len(subjects)))]
            seq = generate_sequence(act, subj, n_frames=500, seed=int(rng.integers(2**31 - 1)))
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
        seq = random_poses(int(k), seed=int(rng.integers(2**31 - 1)), subject=subj)
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
                 batch_size=128, fill=(0.6, 0.85), jitter=0.08, progress="auto"):
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
        progress: show a progress bar (:func:`pose_lab.runtime.progress`);
            ``"auto"`` shows it from 5,000 crops on, ``False`` is silent.

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
    show = n >= 5000 if progress == "auto" else bool(progress)
    bar = runtime.progress(n, f"rendering {n} crops of {size}x{size}", enabled=show)
    for start in range(0, n, batch_size):
        bar.update(start - bar.done)
        m = min(batch_size, n - start)
        sl = slice(start, start + m)
        hw = None if head_all is None else head_all[sl]
        cam, R, T, hr = _world_to_cam_view(jw_all[sl], rng, head_rot=hw)
        # frame: focal so that the pose's extent (+ body radius) fills the crop
        anc, _ = _anchors(cam, head_rotation=hr)
        anc = anc[:, :BODY_ANCHORS]
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
    bar.update(n - bar.done)
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
                  subjects=TRAIN_SUBJECTS, focal_range=(0.9, 1.6), distance=(2500.0, 8000.0), actions=None,
                  twins=False):
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
        actions: ``None`` (random poses), ``True`` (all actions) or a list of
            action names: people are frames of generated sequences of these
            actions and each scene has ``actions`` (P,) str.
        twins: also render every scene a second time with the same people in
            the same poses seen by the same camera, but new clothes, skin and
            hair, build, light and background (``twin_image``). Positive pairs
            that share the pose and nothing of the appearance, for
            self-supervised pose features (``PersonCropStream(output="pairs")``).
            The first image is the one ``twins=False`` renders for this seed.

    Returns:
        list of dicts, one per image: ``image`` (H, W, 3) uint8, ``keypoints``
        (P, 17, 3) COCO, ``keypoints_3d`` (P, 17, 3) camera mm, ``joints_2d``
        (P, 17, 2), ``joints_3d`` (P, 17, 3) camera mm, ``visibility_h36m``
        (P, 17), ``masks`` (P, H, W) uint8 instance masks (visible part),
        ``boxes`` (P, 4) COCO boxes, ``focal``, ``center`` and, with
        ``twins``, ``twin_image`` (H, W, 3) uint8 and ``twin_masks`` (P, H, W)
        (the other labels are the first image's; a different build changes
        the silhouettes' width and which keypoints count as visible a little).
    """
    H, W = int(image_size[0]), int(image_size[1])
    rng = _rng(seed)
    lo, hi = (num_people, num_people) if np.isscalar(num_people) else num_people
    if int(lo) < 0 or int(hi) < int(lo):
        raise ValueError(f"num_people must be an int >= 0 or (min, max), got {num_people!r}")
    counts = rng.integers(int(lo), int(hi) + 1, n)
    P = int(counts.sum())
    img_of = np.repeat(np.arange(n), counts)
    acts = None
    if P:
        jw, hw, acts = _sample_poses(P, rng, poses, subjects=subjects, actions=actions)
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
    if twins:
        # drawn after the first rendering, so the first image is the one twins=False gives
        twin_rng = np.random.default_rng(rng.integers(2**63 - 1))
        twin = _render_people(cam, img_of, focal, center, n, H, W, twin_rng, head_rotation=hc,
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
        if actions:
            scenes[-1]["actions"] = np.asarray([] if acts is None else acts[ids], dtype=str)
        if twins:
            scenes[-1]["twin_image"] = twin["images"][i]
            scenes[-1]["twin_masks"] = (twin["person_map"][i][None] == ids[:, None, None]).astype(np.uint8)
    return scenes


def render_scene(image_size=(256, 256), num_people=(1, 4), seed=0, **kwargs):
    """One multi-person image; see :func:`render_scenes`."""
    return render_scenes(1, image_size=image_size, num_people=num_people, seed=seed, **kwargs)[0]
