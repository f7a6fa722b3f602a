"""Parametric human motion: actions, random poses, COCO keypoints and self-occlusion.

A sequence is built in four steps, all NumPy, millimetres and radians:

1. an *action plan* gives joint angles (:data:`~pose_lab.data.synthetic.body.DOF_NAMES`)
   and the heading / pelvis tilt per frame as smooth functions of time
   (cyclic gaits with per-sequence cadence, stride, arm swing and phase;
   minimum-jerk transitions between key poses for sitting, squatting,
   gestures), plus band-limited "idle" noise so that no two sequences are alike;
2. angles are clipped to the joint limits and self-penetrations (hands in the
   torso, legs through each other) are repaired by smoothly abducting the
   offending limb;
3. forward kinematics on the subject's :class:`~pose_lab.data.synthetic.body.Body`;
4. the global trajectory comes from **ground contact**: the lowest foot point
   is put on the floor (``z = 0``; a ballistic offset is added during jump
   flights) and the pelvis moves horizontally so that the supporting foot
   does not slide (a soft-min weighting of the foot points picks the support).
   Gait speed therefore follows from stride and cadence, and turning in place
   pivots about the standing foot. Locomotion follows circles of 0.85-1.15 m
   radius; every sequence is finally moved to a random place where its whole
   path lies inside :data:`CAPTURE_AREA`, the floor region seen by all four
   Human3.6M cameras.

Actions (:data:`ACTIONS`): ``Walking``, ``Running``, ``SittingDown`` (stand,
sit down, seated idle, stand up), ``Squatting``, ``Waving``, ``Pointing``
(pointing / reaching at random targets, head following), ``Jumping``
(vertical jumps and jumping jacks with a ballistic flight phase), ``Turning``
(stepping round on the spot), ``Boxing`` (guard, jabs and crosses) and
``Stretching`` (overhead reach, side bends, forward bend, quadriceps stretch).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from pose_lab.skeletons import H36M17

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
    segment_segment_distance,
    subject_body,
)

__all__ = [
    "ACTIONS",
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

#: Action classes, in label order.
ACTIONS = ("Walking", "Running", "SittingDown", "Squatting", "Waving", "Pointing",
           "Jumping", "Turning", "Boxing", "Stretching")
#: Frame rate of the generated sequences (Human3.6M's mocap rate).
FPS = 50
_G = 9810.0  # mm / s^2
#: ``(xmin, xmax, ymin, ymax)`` world mm: where the pelvis may go so that the
#: whole body stays inside all four Human3.6M views (every published rig).
CAPTURE_AREA = (-1100.0, 1350.0, -600.0, 1550.0)
#: Where in-place actions happen: raised hands (up to ~2.2 m) stay in view of
#: all four cameras there.
STAGE_AREA = (700.0, 1250.0, 500.0, 1250.0)
_ND = len(DOF_NAMES)


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
# building blocks
# ---------------------------------------------------------------------------
def _wrap(x):
    return (x + 0.5) % 1.0 - 0.5


def _bump(phi, center, width):
    """Periodic Gaussian bump on the unit phase circle."""
    return np.exp(-0.5 * (_wrap(phi - center) / width) ** 2)


def _minjerk(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


def _keyframes(t, times, values):
    """Minimum-jerk interpolation through key values (``values``: (K, ...)) at ``times``."""
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    idx = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1)
    nxt = np.clip(idx + 1, 0, len(times) - 1)
    span = np.maximum(times[nxt] - times[idx], 1e-9)
    s = _minjerk((t - times[idx]) / span)
    s = np.where(nxt == idx, 0.0, s)
    s = s.reshape(s.shape + (1,) * (values.ndim - 1))
    return values[idx] * (1.0 - s) + values[nxt] * s


def _smooth_noise(rng, T, fps, n, fmax=0.6, k=4):
    """Band-limited noise ``(T, n)`` with unit-ish amplitude (sum of ``k`` sinusoids)."""
    t = np.arange(T) / fps
    f = rng.uniform(0.05, fmax, size=(k, n))
    ph = rng.uniform(0, 2 * np.pi, size=(k, n))
    a = rng.uniform(0.5, 1.0, size=(k, n))
    out = np.sum(a[None] * np.sin(2 * np.pi * f[None] * t[:, None, None] + ph[None]), axis=1)
    return out / np.sqrt(np.sum(a**2, axis=0) / 2.0)[None]


def _idx(*names):
    return [DOF_INDEX[n] for n in names]


def _side(rng):
    return "l" if rng.random() < 0.5 else "r"


def _other(side):
    return "r" if side == "l" else "l"


class _Plan:
    """Mutable per-sequence plan: angles and root orientation per frame."""

    def __init__(self, T, fps, rng, body):
        self.T, self.fps, self.rng, self.body = T, fps, rng, body
        self.t = np.arange(T) / fps
        self.dofs = np.tile(neutral_pose(), (T, 1))
        self.yaw = np.full(T, rng.uniform(-np.pi, np.pi))
        self.pitch = np.zeros(T)
        self.roll = np.zeros(T)
        self.flight = np.zeros(T)          # extra root height (jump flights), mm
        self.drift = np.zeros((T, 2))      # extra horizontal root displacement, mm
        self.circle_radius = None          # locomotion: target path radius (mm)
        self.noise_scale = 1.0
        self.vel_smooth = 0.06             # s.d. (seconds) of the root-velocity smoothing
        st = body.style
        self.set("spine_flex", self.get("spine_flex") + st["lean"])
        self.set("head_flex", self.get("head_flex") + st["head_tilt"])
        for s in "lr":
            self.add(f"{s}_sh_abd", st["arm_abd"])
            self.add(f"{s}_hip_abd", 0.03 * (st["stance"] - 1.0) + 0.02)

    def get(self, name):
        return self.dofs[:, DOF_INDEX[name]]

    def set(self, name, value):
        self.dofs[:, DOF_INDEX[name]] = value

    def add(self, name, value):
        self.dofs[:, DOF_INDEX[name]] += value

    def blend(self, target: np.ndarray, weight: np.ndarray):
        """``dofs = dofs * (1 - w) + target * w`` per frame (``target`` (T, D) or (D,))."""
        w = np.asarray(weight)[:, None]
        self.dofs = self.dofs * (1.0 - w) + target * w


def _schedule(rng, duration, segments):
    """Concatenate random-length segments until ``duration`` is covered.

    ``segments``: callable ``k -> list of (length_s, key)``; returns the
    keyframe times and keys (the first key at t = 0)."""
    times, keys = [0.0], []
    k = 0
    first = True
    while times[-1] <= duration + 1.0:
        for length, key in segments(k):
            if first:
                keys.append(key)
                first = False
                times[-1] = 0.0
                times.append(length)
                keys.append(key)
                continue
            times.append(times[-1] + length)
            keys.append(key)
        k += 1
    return np.array(times[: len(keys)]), keys


# ---------------------------------------------------------------------------
# gait
# ---------------------------------------------------------------------------
def _gait(plan, phase, g, envelope=None):
    """Add a cyclic gait to ``plan``: ``phase`` (T,) in cycles of the right leg.

    ``g``: dict of gait parameters (hip_mean, hip_amp, knee0, knee_stance,
    knee_swing, swing_at, ankle_push, arm_mean, arm_amp, elbow_mean,
    elbow_amp, pelvis_yaw, pelvis_roll, chest_counter, lean).
    """
    env = np.ones(plan.T) if envelope is None else envelope
    out = {}
    for s, ph in (("r", phase), ("l", phase + 0.5)):
        c = np.cos(2 * np.pi * ph)
        out[f"{s}_hip_flex"] = g["hip_mean"] + g["hip_amp"] * c
        out[f"{s}_knee"] = (g["knee0"] + g["knee_stance"] * _bump(ph, 0.13, 0.07)
                            + g["knee_swing"] * _bump(ph, g["swing_at"], g.get("swing_width", 0.11)))
        out[f"{s}_ankle"] = (-0.10 * _bump(ph, 0.38, 0.12) + g["ankle_push"] * _bump(ph, 0.58, 0.06)
                             - 0.12 * _bump(ph, 0.8, 0.08))
        # the opposite arm swings with this leg
        o = _other(s)
        out[f"{o}_sh_flex"] = g["arm_mean"] + g["arm_amp"] * c
        out[f"{o}_elbow"] = g["elbow_mean"] + g["elbow_amp"] * 0.5 * (1 + c)
    cr = np.cos(2 * np.pi * phase)
    pel_yaw = g["pelvis_yaw"] * cr
    for name, val in out.items():
        base = plan.get(name)
        plan.set(name, base * (1 - env) + val * env)
    plan.add("chest_twist", -g["chest_counter"] * pel_yaw * env)
    plan.add("neck_twist", -(1.0 - g["chest_counter"]) * pel_yaw * env)
    plan.add("spine_flex", g["lean"] * env)
    plan.yaw = plan.yaw + pel_yaw * env
    plan.roll = plan.roll + g["pelvis_roll"] * np.sin(2 * np.pi * phase) * env


def _gait_params(kind, rng, style):
    if kind == "walk":
        return dict(
            hip_mean=0.12, hip_amp=rng.uniform(0.30, 0.42), knee0=0.05, knee_stance=rng.uniform(0.15, 0.3),
            knee_swing=rng.uniform(0.95, 1.15), swing_at=0.72, ankle_push=rng.uniform(0.2, 0.35),
            arm_mean=rng.uniform(0.0, 0.1), arm_amp=rng.uniform(0.2, 0.4) * style["arm_swing"],
            elbow_mean=rng.uniform(0.2, 0.45), elbow_amp=rng.uniform(0.1, 0.3),
            pelvis_yaw=rng.uniform(0.05, 0.12), pelvis_roll=rng.uniform(0.02, 0.05),
            chest_counter=rng.uniform(0.6, 1.1), lean=rng.uniform(0.0, 0.06),
        )
    if kind == "run":
        return dict(
            hip_mean=0.22, hip_amp=rng.uniform(0.38, 0.48), knee0=0.25, knee_stance=rng.uniform(0.35, 0.5),
            knee_swing=rng.uniform(1.4, 1.8), swing_at=0.68, swing_width=0.15, ankle_push=rng.uniform(0.35, 0.5),
            arm_mean=rng.uniform(0.05, 0.25), arm_amp=rng.uniform(0.45, 0.7) * style["arm_swing"] ** 0.5,
            elbow_mean=rng.uniform(1.3, 1.6), elbow_amp=rng.uniform(0.0, 0.25),
            pelvis_yaw=rng.uniform(0.08, 0.15), pelvis_roll=rng.uniform(0.02, 0.05),
            chest_counter=rng.uniform(0.8, 1.2), lean=rng.uniform(0.1, 0.2),
        )
    # small steps on the spot (turning)
    return dict(
        hip_mean=0.18, hip_amp=rng.uniform(0.1, 0.18), knee0=0.08, knee_stance=0.05,
        knee_swing=rng.uniform(0.5, 0.8), swing_at=0.7, ankle_push=0.1,
        arm_mean=0.05, arm_amp=rng.uniform(0.05, 0.15), elbow_mean=0.3, elbow_amp=0.1,
        pelvis_yaw=0.02, pelvis_roll=0.02, chest_counter=0.5, lean=0.0,
    )


# ---------------------------------------------------------------------------
# actions
# ---------------------------------------------------------------------------
def _act_walking(p):
    rng, st = p.rng, p.body.style
    g = _gait_params("walk", rng, st)
    freq = rng.uniform(0.85, 1.05) * st["speed"] ** 0.5 * st["tempo"] ** 0.2
    freq = freq * (1.0 + 0.04 * _smooth_noise(rng, p.T, p.fps, 1, fmax=0.15)[:, 0])
    phase = rng.random() + np.cumsum(freq) / p.fps
    _gait(p, phase, g)
    p.vel_smooth = 0.25
    p.circle_radius = rng.uniform(850.0, 1150.0) * rng.choice([-1.0, 1.0])


def _act_running(p):
    rng, st = p.rng, p.body.style
    g = _gait_params("run", rng, st)
    freq = rng.uniform(1.25, 1.4) * st["tempo"] ** 0.2
    phase = rng.random() + np.cumsum(np.full(p.T, freq)) / p.fps
    _gait(p, phase, g)
    # small vertical bounce over the ground contact: flight peaks mid-swing of each step
    p.flight = rng.uniform(20.0, 50.0) * np.maximum(0.0, np.sin(2 * np.pi * (2 * phase - 0.3))) ** 2
    p.vel_smooth = 0.2
    p.circle_radius = rng.uniform(1000.0, 1150.0) * rng.choice([-1.0, 1.0])


def _act_sitting_down(p):
    rng, st = p.rng, p.body.style
    hip = rng.uniform(1.4, 1.7)
    knee = rng.uniform(1.35, 1.75)
    abd = rng.uniform(0.05, 0.25)
    hand = rng.uniform(0.4, 0.55), rng.uniform(0.8, 1.0)   # sh_flex, elbow: hands resting on the thighs
    stand = neutral_pose()
    sit = neutral_pose(l_hip_flex=hip, r_hip_flex=hip, l_knee=knee, r_knee=knee, l_hip_abd=abd,
                       r_hip_abd=abd, l_ankle=hip - knee, r_ankle=hip - knee,
                       l_sh_flex=hand[0], r_sh_flex=hand[0], l_elbow=hand[1], r_elbow=hand[1],
                       spine_flex=rng.uniform(-0.05, 0.15), neck_flex=0.1)
    mid_lean = rng.uniform(0.35, 0.6)
    mid = 0.55 * stand + 0.45 * sit
    mid[_idx("spine_flex", "chest_flex")] = (mid_lean, 0.25)
    mid[_idx("l_sh_flex", "r_sh_flex")] = rng.uniform(0.4, 0.9)

    def seated_variant():
        v = sit.copy()
        v[DOF_INDEX["spine_flex"]] += rng.uniform(-0.15, 0.35)
        v[DOF_INDEX["neck_twist"]] = rng.uniform(-0.6, 0.6)
        if rng.random() < 0.4:  # a hand to the face (phoning, thinking)
            s = _side(rng)
            v[_idx(f"{s}_sh_flex", f"{s}_elbow", f"{s}_sh_abd")] = (rng.uniform(0.5, 0.9), 2.3, 0.35)
        if rng.random() < 0.3:  # one leg stretched forward
            s = _side(rng)
            v[_idx(f"{s}_knee", f"{s}_ankle")] = (rng.uniform(0.4, 0.8), 0.2)
        return v

    def cycle(k):
        d = st["tempo"]
        segs = [(rng.uniform(0.6, 1.8), stand), (rng.uniform(0.45, 0.8) / d, mid), (rng.uniform(0.6, 1.0) / d, sit)]
        for _ in range(rng.integers(1, 4)):
            segs.append((rng.uniform(0.8, 1.6), seated_variant()))
        segs += [(rng.uniform(0.8, 1.4), sit)]
        up = mid.copy()
        up[DOF_INDEX["spine_flex"]] = mid_lean + rng.uniform(0.05, 0.2)
        segs += [(rng.uniform(0.5, 0.8) / d, up), (rng.uniform(0.5, 0.9) / d, stand)]
        return segs

    times, keys = _schedule(rng, p.T / p.fps, cycle)
    p.dofs = p.dofs - neutral_pose() + _keyframes(p.t, times, np.array(keys))


def _act_squatting(p):
    rng, st = p.rng, p.body.style
    stand = neutral_pose()

    def squat_pose():
        hip = rng.uniform(1.55, 1.95)
        knee = rng.uniform(1.9, 2.35)
        abd = rng.uniform(0.2, 0.45)
        rot = -rng.uniform(0.1, 0.35)
        heels_up = rng.random() < 0.3
        ankle = rng.uniform(0.15, 0.35) if heels_up else hip - knee - rng.uniform(0.0, 0.1)
        v = neutral_pose(l_hip_flex=hip, r_hip_flex=hip, l_knee=knee, r_knee=knee, l_hip_abd=abd,
                         r_hip_abd=abd, l_hip_rot=rot, r_hip_rot=rot, l_ankle=ankle, r_ankle=ankle,
                         spine_flex=rng.uniform(0.2, 0.55), chest_flex=rng.uniform(0.0, 0.2),
                         neck_flex=-rng.uniform(0.1, 0.4))
        arms = rng.integers(0, 3)
        if arms == 0:    # arms straight forward for balance
            f = rng.uniform(1.1, 1.6)
            v[_idx("l_sh_flex", "r_sh_flex", "l_elbow", "r_elbow")] = (f, f, 0.15, 0.15)
        elif arms == 1:  # hands together in front of the chest
            v[_idx("l_sh_flex", "r_sh_flex", "l_elbow", "r_elbow", "l_sh_rot", "r_sh_rot", "l_sh_abd", "r_sh_abd")] = (
                0.9, 0.9, 1.6, 1.6, 0.5, 0.5, 0.3, 0.3)
        else:            # hands on the knees
            v[_idx("l_sh_flex", "r_sh_flex", "l_elbow", "r_elbow", "l_sh_abd", "r_sh_abd")] = (
                0.9, 0.9, 0.3, 0.3, 0.35, 0.35)
        return v

    def cycle(k):
        q = squat_pose()
        d = st["tempo"]
        return [(rng.uniform(0.5, 1.5), stand), (rng.uniform(0.8, 1.4) / d, q),
                (rng.uniform(0.3, 2.0), q), (rng.uniform(0.8, 1.3) / d, stand)]

    times, keys = _schedule(rng, p.T / p.fps, cycle)
    p.dofs = p.dofs - neutral_pose() + _keyframes(p.t, times, np.array(keys))


def _act_waving(p):
    rng = p.rng
    rest = neutral_pose()
    T = p.T
    out = np.tile(rest, (T, 1))
    times = [0.0]
    keys_l, keys_r = [0.0], [0.0]
    # raise / wave / lower cycles; the waving arm(s) get an oscillation on top
    t_end = T / p.fps
    t0 = rng.uniform(0.3, 1.2)
    while t0 < t_end:
        both = rng.random() < 0.25
        s = _side(rng)
        raise_t, wave_t, lower_t = rng.uniform(0.6, 1.0), rng.uniform(1.5, 3.5), rng.uniform(0.6, 1.0)
        for side, keys in (("l", keys_l), ("r", keys_r)):
            keys += [0.0, 1.0, 1.0, 0.0] if (both or side == s) else [0.0, 0.0, 0.0, 0.0]
        times += [t0, t0 + raise_t, t0 + raise_t + wave_t, t0 + raise_t + wave_t + lower_t]
        t0 = times[-1] + rng.uniform(0.5, 2.0)
    f = rng.uniform(1.4, 2.6)
    osc = np.sin(2 * np.pi * f * p.t[:, None] + rng.uniform(0, 2 * np.pi, 2))
    env = np.stack([_keyframes(p.t, times, np.array(keys_l)), _keyframes(p.t, times, np.array(keys_r))], 1)
    for i, side in enumerate("lr"):
        up = neutral_pose()
        up[_idx(f"{side}_sh_abd", f"{side}_sh_flex", f"{side}_elbow", f"{side}_sh_rot", f"{side}_clav_elev")] = (
            rng.uniform(2.0, 2.6), rng.uniform(0.2, 0.7), rng.uniform(0.5, 1.1), rng.uniform(-0.3, 0.1), 0.2)
        target = np.tile(up, (T, 1))
        amp = rng.uniform(0.25, 0.5)
        smooth_osc = osc[:, i] * env[:, i]
        target[:, DOF_INDEX[f"{side}_sh_rot"]] += -amp * smooth_osc
        target[:, DOF_INDEX[f"{side}_elbow"]] += 0.25 * amp * smooth_osc
        cols = _idx(f"{side}_sh_abd", f"{side}_sh_flex", f"{side}_elbow", f"{side}_sh_rot", f"{side}_clav_elev")
        out[:, cols] = rest[cols] * (1 - env[:, i:i + 1]) + target[:, cols] * env[:, i:i + 1]
    # look towards the waving side, lean away a little
    look = env[:, 0] - env[:, 1]
    out[:, DOF_INDEX["neck_twist"]] += 0.3 * look
    out[:, DOF_INDEX["spine_bend"]] += 0.05 * look
    p.dofs = p.dofs - rest + out


def _act_pointing(p):
    rng, st = p.rng, p.body.style
    rest = neutral_pose()

    def gesture(k):
        s = _side(rng)
        reach = rng.random() < 0.35
        v = neutral_pose()
        flex = rng.uniform(0.5, 1.3) if reach else rng.uniform(0.9, 1.8)
        abd = rng.uniform(-0.1, 0.9)
        v[_idx(f"{s}_sh_flex", f"{s}_sh_abd", f"{s}_elbow", f"{s}_sh_rot", f"{s}_clav_prot")] = (
            flex, abd, rng.uniform(0.0, 0.25), rng.uniform(-0.2, 0.3), 0.15 if reach else 0.0)
        # head turns towards the target (left arm -> left = +twist)
        sign = 1.0 if s == "l" else -1.0
        v[DOF_INDEX["neck_twist"]] = sign * abd * rng.uniform(0.4, 0.8)
        v[DOF_INDEX["neck_flex"]] = 0.4 * (1.2 - flex) * rng.uniform(0.5, 1.0)
        v[DOF_INDEX["chest_twist"]] = sign * rng.uniform(0.0, 0.2)
        if reach:
            v[_idx("spine_flex", "chest_flex")] = (rng.uniform(0.2, 0.55), rng.uniform(0.0, 0.2))
        d = st["tempo"]
        return [(rng.uniform(0.5, 2.0), rest), (rng.uniform(0.5, 0.9) / d, v),
                (rng.uniform(0.6, 2.0), v), (rng.uniform(0.5, 0.9) / d, rest)]

    times, keys = _schedule(rng, p.T / p.fps, gesture)
    p.dofs = p.dofs - rest + _keyframes(p.t, times, np.array(keys))


def _act_jumping(p):
    rng, st = p.rng, p.body.style
    stand = neutral_pose()
    jack = rng.random() < 0.35          # jumping jacks instead of vertical jumps
    T_end = p.T / p.fps
    times, keys = [0.0], [stand]
    flight = np.zeros(p.T)
    t0 = rng.uniform(0.3, 1.0)
    opened = False

    def jack_state(pose, is_open):
        v = pose.copy()
        arms, legs = (2.7, 0.28) if is_open else (0.14, 0.03)
        v[_idx("l_sh_abd", "r_sh_abd", "l_hip_abd", "r_hip_abd")] = (arms, arms, legs, legs)
        v[_idx("l_sh_flex", "r_sh_flex")] = (0.2, 0.2) if is_open else (0.0, 0.0)
        return v

    while t0 < T_end + 1.0:
        h = rng.uniform(120.0, 200.0) if jack else rng.uniform(150.0, 380.0)
        tau = np.sqrt(8.0 * h / _G)
        k = rng.uniform(0.35, 0.6) if jack else rng.uniform(0.9, 1.4)    # crouch knee flexion
        crouch = neutral_pose(l_knee=k, r_knee=k, l_hip_flex=0.8 * k, r_hip_flex=0.8 * k, l_ankle=-0.3 * k,
                              r_ankle=-0.3 * k, spine_flex=0.35 * k, l_sh_flex=-0.4, r_sh_flex=-0.4)
        push = neutral_pose(l_ankle=0.6, r_ankle=0.6, l_sh_flex=1.2, r_sh_flex=1.2, l_elbow=0.3, r_elbow=0.3)
        air = neutral_pose(l_ankle=0.5, r_ankle=0.5, l_knee=0.25, r_knee=0.25, l_hip_flex=0.15, r_hip_flex=0.15,
                           l_sh_flex=1.5, r_sh_flex=1.5)
        land = neutral_pose(l_knee=0.7 * k, r_knee=0.7 * k, l_hip_flex=0.55 * k, r_hip_flex=0.55 * k,
                            l_ankle=-0.2, r_ankle=-0.2, spine_flex=0.25, l_sh_flex=0.6, r_sh_flex=0.6)
        after = stand
        d = st["tempo"]
        c_t = rng.uniform(0.35, 0.5) / d
        p_t = rng.uniform(0.25, 0.35)
        if jack:   # arms and legs open on one jump and close on the next
            crouch = jack_state(crouch, opened)
            crouch[_idx("spine_flex", "l_sh_flex", "r_sh_flex")] = (0.1, 0.0, 0.0)
            push = 0.5 * (jack_state(push, opened) + jack_state(push, not opened))   # arms on their way
            opened = not opened
            land, after = jack_state(land, opened), jack_state(stand, opened)
            c_t, p_t = c_t * 0.6, p_t * 0.7
            air = None
        t_push = t0 + c_t + p_t
        seq = [(t0, keys[-1]), (t0 + c_t, crouch), (t_push, push)]
        if air is not None:
            seq.append((t_push + tau * 0.5, air))
        seq += [(t_push + tau, land), (t_push + tau + rng.uniform(0.3, 0.5), after)]
        for tt, kk in seq[1:] if times[-1] >= t0 else seq:
            times.append(tt)
            keys.append(kk)
        m = (p.t >= t_push) & (p.t <= t_push + tau)
        s = (p.t[m] - t_push) / tau
        flight[m] = 4.0 * h * s * (1.0 - s)
        gap = rng.uniform(0.0, 0.2) if jack else rng.uniform(0.3, 1.5)
        t0 = times[-1] + gap
    p.dofs = p.dofs - stand + _keyframes(p.t, np.array(times), np.array(keys))
    p.flight = flight


def _act_turning(p):
    rng, st = p.rng, p.body.style
    T_end = p.T / p.fps
    times, yaws, env_t, env_v = [0.0], [0.0], [0.0], [0.0]
    t0 = rng.uniform(0.3, 1.2)
    yaw = 0.0
    while t0 < T_end + 1.0:
        ang = rng.uniform(np.pi / 3, np.pi) * rng.choice([-1.0, 1.0])
        dur = abs(ang) / rng.uniform(1.2, 2.5) + 0.4
        times += [t0, t0 + dur]
        yaws += [yaw, yaw + ang]
        env_t += [t0 - 0.2, t0 + 0.25, t0 + dur - 0.25, t0 + dur + 0.2]
        env_v += [0.0, 1.0, 1.0, 0.0]
        yaw += ang
        t0 += dur + rng.uniform(0.3, 1.5)
    yaw_t = _keyframes(p.t, times, np.array(yaws))
    env = _keyframes(p.t, np.maximum.accumulate(env_t), np.array(env_v))
    g = _gait_params("step", rng, st)
    freq = rng.uniform(1.0, 1.4)
    phase = rng.random() + np.cumsum(np.full(p.T, freq)) / p.fps
    _gait(p, phase, g, envelope=env)
    # the head leads the turn
    vel = np.gradient(yaw_t) * p.fps
    p.add("neck_twist", np.clip(0.35 * vel, -0.8, 0.8))
    p.yaw = p.yaw + yaw_t


def _act_boxing(p):
    rng, st = p.rng, p.body.style
    lead = _side(rng)           # the lead (front) side
    rear = _other(lead)
    sign = 1.0 if lead == "l" else -1.0  # twisting towards the rear side
    guard = neutral_pose()
    guard[_idx(f"{lead}_hip_flex", f"{rear}_hip_flex", "l_knee", "r_knee", "l_ankle", "r_ankle")] = (
        0.35, -0.1, 0.35, 0.35, -0.15, -0.15)
    guard[_idx("l_hip_abd", "r_hip_abd")] = 0.12
    for s in "lr":
        guard[_idx(f"{s}_sh_flex", f"{s}_sh_abd", f"{s}_sh_rot", f"{s}_elbow")] = (
            rng.uniform(0.55, 0.8), 0.25, rng.uniform(0.4, 0.6), rng.uniform(1.9, 2.2))
    guard[DOF_INDEX["spine_twist"]] = -sign * 0.25
    guard[DOF_INDEX["neck_twist"]] = sign * 0.25
    guard[_idx("spine_flex", "neck_flex")] = (0.15, -0.1)
    times, keys = [0.0], [guard]
    t0 = rng.uniform(0.2, 0.8)
    T_end = p.T / p.fps
    while t0 < T_end + 1.0:
        s = lead if rng.random() < 0.6 else rear
        punch = guard.copy()
        punch[_idx(f"{s}_sh_flex", f"{s}_sh_abd", f"{s}_sh_rot", f"{s}_elbow", f"{s}_clav_prot")] = (
            rng.uniform(1.35, 1.6), rng.uniform(0.0, 0.25), 0.0, rng.uniform(0.0, 0.2), 0.2)
        if s == rear:  # cross: rotate the torso through
            punch[DOF_INDEX["spine_twist"]] = sign * 0.2
            punch[DOF_INDEX["chest_twist"]] = sign * 0.2
            punch[DOF_INDEX["neck_twist"]] = -sign * 0.1
        out_t = rng.uniform(0.2, 0.3) / st["tempo"]
        times += [t0, t0 + out_t, t0 + 2.2 * out_t]
        keys += [guard, punch, guard]
        t0 = times[-1] + rng.uniform(0.2, 1.0)
    p.dofs = p.dofs - neutral_pose() + _keyframes(p.t, times, np.array(keys))
    bounce = np.sin(2 * np.pi * rng.uniform(1.5, 2.2) * p.t) * rng.uniform(0.03, 0.1)
    for s in "lr":
        p.add(f"{s}_knee", bounce)
        p.add(f"{s}_hip_flex", 0.6 * bounce)
        p.add(f"{s}_ankle", -0.5 * bounce)
    p.yaw = p.yaw + sign * 0.35  # stand side-on towards the rear side


def _act_stretching(p):
    rng, st = p.rng, p.body.style
    rest = neutral_pose()

    def overhead():
        v = neutral_pose(l_sh_flex=2.95, r_sh_flex=2.95, l_elbow=0.1, r_elbow=0.1, l_sh_abd=0.15,
                         r_sh_abd=0.15, neck_flex=-0.25, l_clav_elev=0.3, r_clav_elev=0.3)
        if rng.random() < 0.5:
            v[_idx("l_ankle", "r_ankle")] = rng.uniform(0.3, 0.6)   # on the toes
        return v

    def side_bend():
        s = _side(rng)  # arm over the head on side s, bend away from it
        bend = rng.uniform(0.25, 0.4) * (1.0 if s == "l" else -1.0)
        v = neutral_pose(spine_bend=bend, chest_bend=0.6 * bend)
        v[_idx(f"{s}_sh_abd", f"{s}_elbow", f"{s}_sh_flex")] = (2.8, 0.4, 0.2)
        v[_idx(f"{_other(s)}_sh_abd", f"{_other(s)}_elbow")] = (0.45, 0.7)
        return v

    def forward_bend():
        tilt = rng.uniform(0.6, 0.9)
        v = neutral_pose(spine_flex=rng.uniform(0.45, 0.7), chest_flex=0.3, neck_flex=0.2,
                         l_hip_flex=tilt, r_hip_flex=tilt, l_knee=0.05, r_knee=0.05,
                         l_sh_flex=rng.uniform(1.0, 1.5), r_sh_flex=rng.uniform(1.0, 1.5))
        v[_idx("l_sh_abd", "r_sh_abd")] = 0.35
        return v, tilt

    def quad():
        s = _side(rng)
        v = neutral_pose()
        v[_idx(f"{s}_knee", f"{s}_hip_flex", f"{s}_ankle", f"{s}_hip_abd")] = (2.3, -0.1, 0.5, 0.05)
        v[_idx(f"{s}_sh_flex", f"{s}_elbow", f"{s}_sh_abd")] = (-0.6, 0.3, 0.3)
        v[_idx(f"{_other(s)}_sh_abd")] = rng.uniform(0.3, 1.2)
        v[_idx(f"{_other(s)}_knee")] = 0.08
        return v

    kinds = ("overhead", "side", "forward", "quad")
    times, keys, tilts = [0.0], [rest], [0.0]
    t0 = rng.uniform(0.3, 1.0)
    T_end = p.T / p.fps
    while t0 < T_end + 1.0:
        kind = kinds[rng.integers(0, len(kinds))]
        tilt = 0.0
        if kind == "overhead":
            v = overhead()
        elif kind == "side":
            v = side_bend()
        elif kind == "forward":
            v, tilt = forward_bend()
        else:
            v = quad()
        go = rng.uniform(0.8, 1.4) / st["tempo"]
        hold = rng.uniform(1.0, 3.0)
        times += [t0, t0 + go, t0 + go + hold, t0 + 2 * go + hold]
        keys += [rest, v, v, rest]
        tilts += [0.0, tilt, tilt, 0.0]
        t0 = times[-1] + rng.uniform(0.3, 1.2)
    p.dofs = p.dofs - rest + _keyframes(p.t, times, np.array(keys))
    # a forward bend tilts the pelvis forward while the legs stay vertical
    p.pitch = p.pitch + _keyframes(p.t, times, np.array(tilts))


_ACTION_FNS = {
    "Walking": _act_walking,
    "Running": _act_running,
    "SittingDown": _act_sitting_down,
    "Squatting": _act_squatting,
    "Waving": _act_waving,
    "Pointing": _act_pointing,
    "Jumping": _act_jumping,
    "Turning": _act_turning,
    "Boxing": _act_boxing,
    "Stretching": _act_stretching,
}

# amplitude of the idle noise per joint angle (radians)
_NOISE = np.full(_ND, 0.025)
for _n in DOF_NAMES:
    if _n.startswith("neck") or _n == "head_flex":
        _NOISE[DOF_INDEX[_n]] = 0.07
    elif "_sh_" in _n or "elbow" in _n or "wrist" in _n:
        _NOISE[DOF_INDEX[_n]] = 0.05
    elif "clav" in _n:
        _NOISE[DOF_INDEX[_n]] = 0.02
    elif "hip" in _n or "knee" in _n or "ankle" in _n:
        _NOISE[DOF_INDEX[_n]] = 0.015


# ---------------------------------------------------------------------------
# realisation: limits, penetration repair, FK, ground contact, trajectory
# ---------------------------------------------------------------------------
def _smooth_mask(mask, half=6):
    if not mask.any():
        return np.zeros(mask.shape)
    w = np.hanning(2 * half + 3)[1:-1]
    s = np.convolve(mask.astype(np.float64), w, mode="same")
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
        # walk / run on a circle: the heading turns at v / R and the straight-line
        # velocity from foot pinning is turned with it (the feet stay planted)
        speed = max(float(np.linalg.norm(vel, axis=1).mean()) * plan.fps, 300.0)
        omega = speed / plan.circle_radius
        turn = omega * plan.t
        c, s_ = np.cos(turn[:-1]), np.sin(turn[:-1])
        vel = np.stack([c * vel[:, 0] - s_ * vel[:, 1], s_ * vel[:, 0] + c * vel[:, 1]], axis=1)
        root_rot = root_rot.copy()
        root_rot[:, 0] += turn
        root_rot[:, 2] += -0.5 * np.arctan(speed * omega / _G)   # lean into the curve
        joints, frames = forward_kinematics(body, dofs, None, root_rot, return_frames=True)
        root_z, _ = _ground_and_pin(body, joints)
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


def generate_sequence(action: str, subject="S1", n_frames: int = 500, seed=0, fps: int = FPS) -> MotionSequence:
    """Generate one motion sequence.

    Args:
        action: one of :data:`ACTIONS`.
        subject: subject name (``"S1"``...; its fixed body is used) or a
            :class:`~pose_lab.data.synthetic.body.Body`.
        n_frames: number of frames ``T`` (>= 1).
        seed: int, string or tuple of them; the same (action, subject,
            n_frames, seed, fps) always gives identical arrays.
        fps: frame rate (default 50, as Human3.6M).

    Returns:
        a :class:`MotionSequence` (world mm).

    Example:
        >>> seq = generate_sequence("Walking", "S1", n_frames=100, seed=0)
        >>> seq.joints.shape
        (100, 17, 3)
    """
    if action not in _ACTION_FNS:
        raise ValueError(f"unknown action {action!r}; expected one of {list(ACTIONS)}")
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int, got {n_frames!r}")
    if not isinstance(fps, (int, np.integer)) or fps < 1:
        raise ValueError(f"fps must be a positive int, got {fps!r}")
    body = subject_body(subject)
    rng = _rng_for(seed, "motion", action, body.name)
    plan = _Plan(int(n_frames), int(fps), rng, body)
    _ACTION_FNS[action](plan)
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


# ---------------------------------------------------------------------------
# COCO keypoints and self-occlusion
# ---------------------------------------------------------------------------
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
            (:attr:`MotionSequence.head_rotation`).

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
        from pose_lab.skeletons import H36M17_FROM_H36M32

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
        from .body import sample_body

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
