"""Parametric human motion: sequences of the 15 Human3.6M actions (plus extras) and random poses.

A sequence is built in four steps, all NumPy, millimetres and radians:

1. an *action plan* (:mod:`~pose_lab.data.synthetic.actions`, where the
   actions are listed) gives joint angles
   (:data:`~pose_lab.data.synthetic.body.DOF_NAMES`) and the heading / pelvis
   tilt per frame as smooth functions of time, plus band-limited "idle" noise
   so that no two sequences are alike;
2. angles are clipped to the joint limits and self-penetrations (hands in the
   torso, legs through each other) are repaired by smoothly abducting the
   offending limb;
3. forward kinematics on the subject's :class:`~pose_lab.data.synthetic.body.Body`;
4. the global trajectory comes from **ground contact**: the lowest foot point
   is put on the floor (``z = 0``; a ballistic offset is added during jump
   flights) and the pelvis moves horizontally so that the supporting foot
   does not slide (a soft-min weighting of the foot points picks the support).
   Gait speed therefore follows from stride and cadence, and turning in place
   pivots about the standing foot. Locomotion follows circles of 0.78-0.96 m
   radius (the heading turns by the distance walked / R); every sequence is finally moved to a random place where its whole
   path lies inside :data:`CAPTURE_AREA`, the floor region seen by all four
   Human3.6M cameras.

COCO-17 keypoints and self-occlusion live in
:mod:`~pose_lab.data.synthetic.keypoints` (:func:`coco_keypoints_3d`,
:func:`coco_visibility` and :func:`head_sphere` are re-exported here).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from .actions import _ACTION_FNS as _EXTRA_FNS
from .actions import _G, _ND, _NOISE, _Plan, _keyframes, _smooth_noise
from .actions_h36m import ACTION_FNS as _H36M_FNS
from .body import (
    DOF_INDEX,
    DOF_LIMITS,
    DOF_NAMES,
    Body,
    clip_to_limits,
    forward_kinematics,
    joints17,
    neutral_pose,
    penetration_report,
    subject_body,
)
from .keypoints import coco_keypoints_3d, coco_visibility, head_sphere

__all__ = [
    "ACTIONS",
    "ALL_ACTIONS",
    "EXTRA_ACTIONS",
    "FPS",
    "MotionSequence",
    "generate_sequence",
    "random_poses",
    "coco_keypoints_3d",
    "coco_visibility",
    "head_sphere",
    "CAPTURE_AREA",
    "STAGE_AREA",
]

#: The 15 Human3.6M action classes (the real release's names in VideoPose3D's
#: spelling), in label order: the default of every generator, so per-action
#: tables line up with the papers' columns.
ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
           "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether")
#: Optional extra actions (not in Human3.6M), for wider pose coverage.
EXTRA_ACTIONS = ("Running", "Squatting", "Waving", "Pointing", "Jumping", "Turning", "Boxing", "Stretching")
#: Everything :func:`generate_sequence` knows.
ALL_ACTIONS = ACTIONS + EXTRA_ACTIONS
_ACTION_FNS = {**{a: _H36M_FNS[a] for a in ACTIONS if a in _H36M_FNS},
               **{a: _EXTRA_FNS[a] for a in ALL_ACTIONS if a in _EXTRA_FNS}}
assert set(_ACTION_FNS) == set(ALL_ACTIONS)
#: Frame rate of the generated sequences (Human3.6M's mocap rate).
FPS = 50
#: ``(xmin, xmax, ymin, ymax)`` world mm: where the pelvis may go so that the
#: whole body stays inside all four Human3.6M views (every published rig).
CAPTURE_AREA = (-1100.0, 1350.0, -600.0, 1550.0)
#: Where in-place actions happen: raised hands (up to ~2.2 m) stay in view of
#: all four cameras there.
STAGE_AREA = (700.0, 1250.0, 500.0, 1250.0)


# ---------------------------------------------------------------------------
# result type
# ---------------------------------------------------------------------------
@dataclass
class MotionSequence:
    """One generated sequence (or a batch of independent random poses).

    Attributes:
        action: action class (``"Random"`` for :func:`random_poses`).
        subject: subject name.
        body: the :class:`~pose_lab.data.synthetic.body.Body`.
        fps: frames per second.
        seed: the seed the sequence was generated from.
        dofs: joint angles ``(T, len(DOF_NAMES))``, radians, within limits.
        root_pos: pelvis position ``(T, 3)``, world mm.
        root_rot: ``(T, 3)`` pelvis ``(yaw, pitch, roll)``, radians.
        joints32: ``(T, 32, 3)`` world mm, H36M32 order.
        head_rotation: ``(T, 3, 3)`` world rotation of the head (columns:
            forward, left, up of the face).
    """

    action: str
    subject: str
    body: Body = field(repr=False)
    fps: int
    seed: object
    dofs: np.ndarray = field(repr=False)
    root_pos: np.ndarray = field(repr=False)
    root_rot: np.ndarray = field(repr=False)
    joints32: np.ndarray = field(repr=False)
    head_rotation: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return int(self.joints32.shape[0])

    @property
    def joints(self) -> np.ndarray:
        """``(T, 17, 3)`` H36M-17 joints, world mm."""
        return joints17(self.joints32)

    @property
    def heading(self) -> np.ndarray:
        """``(T,)`` yaw of the pelvis, radians (0 = facing world ``+x``)."""
        return self.root_rot[:, 0]

    def coco_keypoints(self) -> np.ndarray:
        """``(T, 17, 3)`` COCO-17 keypoints in world mm (see :func:`coco_keypoints_3d`)."""
        return coco_keypoints_3d(self.joints32, self.head_rotation)

    def visibility(self, camera) -> np.ndarray:
        """``(T, 17)`` bool: COCO keypoint not self-occluded in ``camera``."""
        return coco_visibility(self.joints32, self.head_rotation, camera, self.body)


# ---------------------------------------------------------------------------
# realisation: limits, penetration repair, FK, ground contact, trajectory
# ---------------------------------------------------------------------------
def _smooth_mask(mask, half=6):
    if not mask.any():
        return np.zeros(mask.shape)
    w = np.hanning(2 * half + 3)[1:-1]
    full = np.convolve(mask.astype(np.float64), w, mode="full")     # "same" is wrong when len(mask) < len(w)
    start = (len(w) - 1) // 2
    s = full[start:start + len(mask)]
    return np.minimum(s / w.max(), 1.0)


def _repair(body, dofs, max_iter=40, temporal=True):
    """Push limbs out of the body: abduct arms / legs where they penetrate."""
    dofs = dofs.copy()
    for _ in range(max_iter):
        rep = penetration_report(body, forward_kinematics(body, dofs))
        if not rep["any"].any():
            break
        for s in "lr":
            m = rep[f"{s}_hand_torso"] | rep[f"{s}_hand_legs"]
            if m.any():
                w = _smooth_mask(m) if temporal else m.astype(float)
                dofs[:, DOF_INDEX[f"{s}_sh_abd"]] += 0.1 * w
        if rep["legs"].any():
            w = _smooth_mask(rep["legs"]) if temporal else rep["legs"].astype(float)
            for s in "lr":
                dofs[:, DOF_INDEX[f"{s}_hip_abd"]] += 0.04 * w
        dofs = clip_to_limits(dofs)
    return dofs


#: s.d. (seconds) of the smoothing of the pinned root velocity of locomotion
#: (a wider one smooths the path but lets the supporting foot slide)
_PIN_SMOOTH = 0.0

# contact points: (joint, height of the sole below it)
_CONTACTS = ((3, "ankle_height"), (4, None), (5, None), (8, "ankle_height"), (9, None), (10, None))


def _gauss_smooth(x, sigma_frames):
    """Gaussian smoothing along axis 0 with edge padding."""
    if sigma_frames <= 0 or len(x) < 3:
        return x
    r = int(np.ceil(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    k /= k.sum()
    pad = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)], 0)
    return np.stack([np.convolve(pad[:, i], k, mode="valid") for i in range(x.shape[1])], 1)


def _ground_and_pin(body, rel, sigma=12.0, smooth_frames=0.0):
    """Root height from ground contact and horizontal root velocity from foot pinning.

    ``rel``: joints relative to the root ``(T, 32, 3)`` (already rotated into
    the world orientation). Returns ``root_z (T,)`` and the per-frame root
    displacement ``(T - 1, 2)`` that keeps the supporting foot in place.
    """
    sole = np.array([body.segments[k] if k else 0.0 for _, k in _CONTACTS])
    idx = [j for j, _ in _CONTACTS]
    h = rel[:, idx, 2] - sole                                  # (T, 6)
    low = h.min(axis=1)
    root_z = -low
    w = np.exp(-(h - low[:, None]) / sigma)
    w /= w.sum(axis=1, keepdims=True)
    dp = np.diff(rel[:, idx, :2], axis=0)                      # (T-1, 6, 2)
    wm = 0.5 * (w[1:] + w[:-1])
    vel = -np.einsum("tc,tcd->td", wm, dp)
    return root_z, _gauss_smooth(vel, smooth_frames)


def _realise(plan: _Plan, action, subject, seed, centre_rng, repair=True, centre=True):
    body = plan.body
    T = plan.T
    dofs = plan.dofs + plan.noise_scale * _NOISE * _smooth_noise(plan.rng, T, plan.fps, _ND)
    dofs = clip_to_limits(dofs)
    if repair:
        dofs = _repair(body, dofs)
    root_rot = np.stack([plan.yaw, plan.pitch, plan.roll], axis=1)
    joints, frames = forward_kinematics(body, dofs, None, root_rot, return_frames=True)
    root_z, vel = _ground_and_pin(body, joints, smooth_frames=plan.vel_smooth * plan.fps)
    if plan.circle_radius is not None and T > 1:
        # walk / run on a circle; the radius shrinks (up to 5 times by 15 %) until the
        # path fits the capture area (stop-and-go paths are not exact circles)
        first_vel = vel
        radius = plan.circle_radius
        for _ in range(6):
            joints, frames, root_rot_c, root_z, vel = _on_circle(plan, body, dofs, root_rot, first_vel, radius)
            xy = np.concatenate([np.zeros((1, 2)), np.cumsum(vel, axis=0)], axis=0) + plan.drift
            span = np.ptp(xy, axis=0)
            if span[0] <= CAPTURE_AREA[1] - CAPTURE_AREA[0] and span[1] <= CAPTURE_AREA[3] - CAPTURE_AREA[2]:
                break
            radius *= 0.85
        root_rot = root_rot_c
    root_xy = np.concatenate([np.zeros((1, 2)), np.cumsum(vel, axis=0)], axis=0) + plan.drift
    if plan.circle_radius is None and T > 1:
        # in-place actions: remove the slow drift that accumulates from imperfect
        # pinning (a high-pass with a 2.5 s Gaussian; the feet slide < 3 cm/s)
        root_xy = root_xy - _gauss_smooth(root_xy, 2.5 * plan.fps) + root_xy.mean(0)
    if centre and T > 0:
        root_xy = _place(root_xy, centre_rng, CAPTURE_AREA if plan.circle_radius is not None else STAGE_AREA)
    root_pos = np.concatenate([root_xy, (root_z + plan.flight)[:, None]], axis=1)
    joints = joints + root_pos[:, None, :]
    return MotionSequence(
        action=action, subject=subject, body=body, fps=plan.fps, seed=seed, dofs=dofs,
        root_pos=root_pos, root_rot=root_rot, joints32=joints, head_rotation=frames[:, 15].copy(),
    )


def _on_circle(plan, body, dofs, root_rot, vel, radius):
    """Turn a straight-line locomotion onto a circle of ``radius`` (mm, signed).

    The heading turns by the distance walked / R (stop-and-go actions turn only
    while walking), the body leans a little into the curve, and the root
    velocity is pinned again in the turned frame: turning the body about the
    pelvis moves the supporting foot (omega x r), which the new velocity
    cancels, so the foot stays put. Returns ``(joints, frames, root_rot,
    root_z, vel)``.
    """
    speed = np.linalg.norm(vel, axis=1) * plan.fps                       # (T - 1,) mm/s
    speed = _gauss_smooth(np.append(speed, speed[-1])[:, None], 0.5 * plan.fps)[:, 0]
    turn = np.concatenate([[0.0], np.cumsum(speed[:-1])]) / plan.fps / radius
    root_rot = root_rot.copy()
    root_rot[:, 0] += turn
    # lean into the curve (a little: rolling the pelvis tilts the legs too, and a swinging
    # foot on the inner side would scrape the floor)
    root_rot[:, 2] += -np.clip(0.25 * np.arctan(speed**2 / radius / _G), -0.06, 0.06)
    joints, frames = forward_kinematics(body, dofs, None, root_rot, return_frames=True)
    # runs keep their smoothing: pinning in the flight phases gives spikes
    smooth = plan.vel_smooth if np.any(plan.flight > 0) else _PIN_SMOOTH
    root_z, vel = _ground_and_pin(body, joints, smooth_frames=smooth * plan.fps)
    return joints, frames, root_rot, root_z, vel


def _place(xy, rng, area=CAPTURE_AREA):
    """Translate a root path to a random position whose bounding box lies in ``area``."""
    lo, hi = xy.min(0), xy.max(0)
    out = xy - 0.5 * (lo + hi)
    half = 0.5 * (hi - lo)
    box_lo = np.array([area[0], area[2]]) + half
    box_hi = np.array([area[1], area[3]]) - half
    mid = 0.5 * (box_lo + box_hi)
    target = np.where(box_hi > box_lo, rng.uniform(np.minimum(box_lo, mid), np.maximum(box_hi, mid)), mid)
    return out + target


def _seed_key(seed) -> list:
    if isinstance(seed, (tuple, list)):
        return [k for part in seed for k in _seed_key(part)]
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return [int(seed)]
    if isinstance(seed, str):
        return [zlib.crc32(seed.encode("utf-8"))]
    raise ValueError(f"seed must be a non-negative int, a string or a tuple of them, got {seed!r}")


def _rng_for(seed, *parts):
    key = _seed_key(seed) + [zlib.crc32(str(p).encode("utf-8")) for p in parts]
    return np.random.default_rng(np.random.SeedSequence(key))


#: Angle columns of the mix-in's limb groups: left arm, right arm, trunk, neck, left leg, right leg.
_MIXIN_GROUPS = tuple(
    [i for i, n in enumerate(DOF_NAMES) if n.startswith(prefixes)]
    for prefixes in (("l_sh_", "l_elbow", "l_wrist", "l_clav"), ("r_sh_", "r_elbow", "r_wrist", "r_clav"),
                     ("spine", "chest"), ("neck", "head"), ("l_hip", "l_knee", "l_ankle"),
                     ("r_hip", "r_knee", "r_ankle")))


def _random_mixin(plan: _Plan, rng, p_sequence: float = 0.5):
    """Random-pose mix-in: excursions of one limb group towards a random target within the limits.

    With probability ``p_sequence`` a sequence gets 1-3 windows (1-2.5 s,
    minimum-jerk ramps) in which one group (an arm, the trunk, the neck, or,
    for actions that neither walk nor sit, a leg) blends towards uniformly
    drawn angles with a peak weight of 0.3-0.8. The realisation step then
    clips and repairs as usual, so the excursions widen the pose coverage
    between the action's key poses without leaving the joint limits.
    """
    if rng.random() >= p_sequence:
        return
    groups = _MIXIN_GROUPS if plan.circle_radius is None and plan.mixin_legs else _MIXIN_GROUPS[:4]
    duration = plan.T / plan.fps
    for _ in range(int(rng.integers(1, 4))):
        cols = groups[int(rng.integers(len(groups)))]
        length = rng.uniform(1.0, 2.5)
        t0 = rng.uniform(-0.5, max(duration - 0.5, 0.0))
        ramp = 0.35 * length
        w = _keyframes(plan.t, [t0, t0 + ramp, t0 + length - ramp, t0 + length],
                       np.array([0.0, 1.0, 1.0, 0.0])) * rng.uniform(0.3, 0.8)
        target = rng.uniform(DOF_LIMITS[cols, 0], DOF_LIMITS[cols, 1])
        plan.dofs[:, cols] = plan.dofs[:, cols] * (1.0 - w[:, None]) + target[None] * w[:, None]


def generate_sequence(action: str, subject="S1", n_frames: int = 500, seed=0, fps: int = FPS,
                      mixin: bool = True) -> MotionSequence:
    """Generate one motion sequence.

    Args:
        action: one of :data:`ACTIONS`.
        subject: subject name (``"S1"``...; its fixed body is used) or a
            :class:`~pose_lab.data.synthetic.body.Body`.
        n_frames: number of frames ``T`` (>= 1).
        seed: int, string or tuple of them; the same (action, subject,
            n_frames, seed, fps) always gives identical arrays.
        fps: frame rate (default 50, as Human3.6M).
        mixin: blend short excursions towards random poses within the joint
            limits into the plan (half of the sequences, 1-3 windows of
            1-2.5 s, one limb group each; see :func:`_random_mixin`).

    Returns:
        a :class:`MotionSequence` (world mm).

    Example:
        >>> seq = generate_sequence("Walking", "S1", n_frames=100, seed=0)
        >>> seq.joints.shape
        (100, 17, 3)
    """
    if action not in _ACTION_FNS:
        raise ValueError(f"unknown action {action!r}; expected one of {list(ALL_ACTIONS)}")
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int, got {n_frames!r}")
    if not isinstance(fps, (int, np.integer)) or fps < 1:
        raise ValueError(f"fps must be a positive int, got {fps!r}")
    body = subject_body(subject)
    rng = _rng_for(seed, "motion", action, body.name)
    plan = _Plan(int(n_frames), int(fps), rng, body)
    _ACTION_FNS[action](plan)
    if mixin:   # its own stream: the rest of the sequence is the same with and without it
        _random_mixin(plan, _rng_for(seed, "mixin", action, body.name))
    return _realise(plan, action, body.name, seed, rng)


def random_poses(n: int, seed=0, subject="S1", max_rounds: int = 60) -> MotionSequence:
    """``n`` independent random poses within the joint limits, without self-penetration.

    Each angle is drawn either near the relaxed standing value (normal, s.d.
    15% of its range) or uniformly over its whole range (per limb group, with
    probability 0.5 each); poses with self-penetration are redrawn. Each pose
    gets a random heading, a small pelvis tilt, feet-on-floor height and a
    random position inside :data:`CAPTURE_AREA`.

    Returns:
        a :class:`MotionSequence` with ``action="Random"`` whose frames are
        unrelated (``fps`` is kept for API symmetry).
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    body = subject_body(subject)
    rng = _rng_for(seed, "random", body.name)
    lo, hi = DOF_LIMITS[:, 0], DOF_LIMITS[:, 1]
    groups = [[i for i, nm in enumerate(DOF_NAMES) if nm.startswith(pfx)]
              for pfx in ("spine", "chest", "neck", "head", "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee",
                          "r_ankle", "l_clav", "l_sh", "l_elbow", "l_wrist", "r_clav", "r_sh", "r_elbow", "r_wrist")]

    def draw(m):
        near = np.clip(neutral_pose() + rng.normal(0.0, 0.15, (m, _ND)) * (hi - lo), lo, hi)
        uni = rng.uniform(lo, hi, (m, _ND))
        pick = np.zeros((m, _ND), bool)
        for g in groups:
            pick[:, g] = (rng.random(m) < 0.5)[:, None]
        return np.where(pick, uni, near)

    dofs = draw(n)
    for _ in range(max_rounds):
        bad = penetration_report(body, forward_kinematics(body, dofs))["any"]
        if not bad.any():
            break
        dofs[bad] = draw(int(bad.sum()))
    else:
        bad = penetration_report(body, forward_kinematics(body, dofs))["any"]
        if bad.any():
            dofs[bad] = _repair(body, dofs[bad], max_iter=20, temporal=False)
            still = penetration_report(body, forward_kinematics(body, dofs))["any"]
            dofs[still] = neutral_pose()
    root_rot = np.stack([rng.uniform(-np.pi, np.pi, n), rng.normal(0.0, 0.12, n), rng.normal(0.0, 0.06, n)], 1)
    joints, frames = forward_kinematics(body, dofs, None, root_rot, return_frames=True)
    sole = np.array([body.segments[k] if k else 0.0 for _, k in _CONTACTS])
    low = (joints[:, [j for j, _ in _CONTACTS], 2] - sole).min(axis=1)
    low = np.minimum(low, joints[:, :, 2].min(axis=1))   # nothing below the floor
    a = CAPTURE_AREA
    xy = np.stack([rng.uniform(a[0] + 300, a[1] - 300, n), rng.uniform(a[2] + 300, a[3] - 300, n)], 1)
    root_pos = np.concatenate([xy, -low[:, None]], axis=1)
    joints = joints + root_pos[:, None, :]
    return MotionSequence(action="Random", subject=body.name, body=body, fps=FPS, seed=seed, dofs=dofs,
                          root_pos=root_pos, root_rot=root_rot, joints32=joints,
                          head_rotation=frames[:, 15].copy())
