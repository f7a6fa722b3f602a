"""Action plans for the 15 Human3.6M actions (the names of the real release, VideoPose3D spelling).

Each ``_act_*`` function fills a :class:`~pose_lab.data.synthetic.actions._Plan`
from the building blocks of :mod:`~pose_lab.data.synthetic.actions`
(minimum-jerk key poses, gaits, band-limited noise). What each action shows
follows the Human3.6M protocol (Ionescu et al. 2014, table 1) and what its
videos show:

==============  ================================================================
Directions      standing and stepping about, pointing the way with either arm,
                looking where it points, explaining with the hands
Discussion      standing, talking: both forearms up and gesturing, weight
                shifts, turning the head to the listener, arms crossed at times
Eating          seated at a table: forearms on the table, a hand to the mouth
Greeting        walking up, then a wave, a handshake, a bow or a hug; back off
Phoning         a phone at the ear (one side per call), walking and stopping,
                the free hand gesturing or in a pocket
Photo           holding a camera to the face, crouching or stepping for a shot
Posing          held poses: hands on the hips, arms up, flexing, contrapposto
Purchases       walking about, bending and reaching for things, carrying them
Sitting         seated and busy: leaning on the table, leaning back, a leg
                stretched, a hand on the face, looking around
SittingDown     standing up and sitting down (the extras' generator)
Smoking         a forearm across the waist, the other hand to the mouth;
                standing or seated (half of the sequences)
Waiting         standing idle: weight on one leg, arms crossed, behind the back
                or on the hips, looking around, a few steps
WalkDog         stop-and-go walking with the leash hand forward, bending down
                to the dog, looking down
Walking         circles at the person's own cadence (the extras' generator)
WalkTogether    slower walking, the head turned to the partner at one side,
                gestures while walking
==============  ================================================================

Arm key poses (:data:`ARM_POSES`) are ``(sh_flex, sh_abd, sh_rot, elbow)``
for one side; they were found by a grid search over the forward kinematics
for a wrist (and elbow) target relative to the pelvis (e.g. "ear": the wrist
beside the head; "hip": the wrist on the iliac crest with the elbow out).
Every key pose gets a per-draw jitter, and the realisation step clips to the
joint limits and repairs self-penetration as for every action.
"""

from __future__ import annotations

import numpy as np

from .actions import (
    _gait,
    _gait_params,
    _idx,
    _keyframes,
    _other,
    _schedule,
    _side,
    _smooth_noise,
)
from .body import DOF_INDEX, neutral_pose

#: ``name -> (sh_flex, sh_abd, sh_rot, elbow)`` radians, one arm.
ARM_POSES = {
    "ear": (2.0, 0.33, 0.55, 2.3),       # a phone at the ear
    "mouth": (1.37, -0.1, 0.6, 2.3),     # a hand to the mouth (eating, smoking)
    "chin": (1.17, -0.2, 0.6, 2.25),     # thinking
    "hip": (-0.26, 0.83, 1.19, 1.73),    # a hand on the hip, elbow out
    "behind": (-0.67, 0.17, 0.99, 1.35),  # hands behind the back
    "crossed": (0.56, -0.1, 1.35, 1.73),  # arms crossed
    "waist": (0.15, 0.0, 0.99, 1.54),    # forearm across the waist
    "gesture": (0.35, 0.17, 0.19, 1.73),  # forearm up, talking
    "camera": (1.6, 0.33, 0.95, 1.8),    # holding a camera to the face
    "leash": (0.56, 0.05, 0.0, 0.25),    # a leash, forward and down
    "shake": (0.76, 0.0, 0.75, 0.4),     # a handshake
    "pocket": (-0.26, 0.17, 0.19, 0.77),  # a hand in the front pocket
    "carry": (0.15, 0.17, 0.39, 1.35),   # carrying something in front
    "table": (0.56, 0.17, 0.39, 1.35),   # forearm on a table
    "thigh": (0.45, 0.15, 0.1, 0.9),     # seated, hand on the thigh
    "hang": (0.0, 0.14, 0.1, 0.2),       # relaxed
}


def _arm_dofs(side):
    """The four angles of an arm pose (:data:`ARM_POSES` order) on ``side``."""
    return tuple(f"{side}_{n}" for n in ("sh_flex", "sh_abd", "sh_rot", "elbow"))


def _arm(v, rng, side, name, jitter=0.08):
    """Put arm pose ``name`` on ``side`` of the key pose ``v`` (in place, with jitter)."""
    f, a, r, e = ARM_POSES[name]
    vals = np.array([f, a, r, e]) + rng.normal(0.0, jitter, 4)
    v[_idx(*_arm_dofs(side))] = vals
    return v


def _arms(v, rng, left, right, jitter=0.08):
    _arm(v, rng, "l", left, jitter)
    return _arm(v, rng, "r", right, jitter)


def _base(p):
    """The sequence's standing key pose: neutral + its style (knees and elbows at 40 % of the gait's, arm carriage)."""
    st = p.style
    v = neutral_pose()
    knee, elbow = 0.4 * st["knee"], 0.4 * st["elbow"]     # standing: less than in the gait
    for s in "lr":
        v[DOF_INDEX[f"{s}_knee"]] += knee
        v[DOF_INDEX[f"{s}_hip_flex"]] += 0.5 * knee
        v[DOF_INDEX[f"{s}_ankle"]] -= 0.5 * knee
        v[DOF_INDEX[f"{s}_sh_flex"]] += st["arm_carry"]
        v[DOF_INDEX[f"{s}_elbow"]] += elbow
    return v


def _weight_shift(v, rng, side=None):
    """Stand on one leg: the other hip drops, its knee relaxes (in place)."""
    s = side or _side(rng)
    o = _other(s)
    sh = rng.uniform(0.04, 0.09)
    v[DOF_INDEX[f"{s}_hip_abd"]] += sh
    v[DOF_INDEX[f"{o}_hip_abd"]] -= 0.5 * sh
    v[DOF_INDEX[f"{o}_knee"]] += rng.uniform(0.1, 0.3)
    v[DOF_INDEX[f"{o}_hip_flex"]] += 0.1
    v[DOF_INDEX["spine_bend"]] += (1.0 if s == "l" else -1.0) * 0.5 * sh
    return v


def _seated(p, lean=None):
    """A seated key pose (thighs horizontal, feet on the floor, hands on the thighs)."""
    rng = p.rng
    p.mixin_legs = False           # the feet carry the pinning: a random leg excursion would drag the body
    hip = rng.uniform(1.4, 1.65)
    knee = rng.uniform(1.35, 1.7)
    abd = rng.uniform(0.05, 0.25)
    v = neutral_pose(l_hip_flex=hip, r_hip_flex=hip, l_knee=knee, r_knee=knee, l_hip_abd=abd, r_hip_abd=abd,
                     l_ankle=hip - knee, r_ankle=hip - knee,
                     spine_flex=rng.uniform(-0.05, 0.15) if lean is None else lean, neck_flex=0.1)
    return _arms(v, rng, "thigh", "thigh")


def _track(p, segments):
    """Minimum-jerk key-pose track ``(T, D)`` from a segment generator (see ``_schedule``)."""
    times, keys = _schedule(p.rng, p.T / p.fps, segments)
    return _keyframes(p.t, times, np.array(keys))


def _bouts(p, on, off, start_on=None):
    """Smooth on/off envelope ``(T,)``: bouts of ``on`` seconds separated by ``off`` seconds."""
    rng = p.rng
    state = (rng.random() < 0.5) if start_on is None else start_on
    times, vals = [0.0], [float(state)]
    t = 0.0
    end = p.T / p.fps + 1.0
    while t < end:
        t += rng.uniform(*(on if state else off))
        ramp = 0.5
        times += [t, t + ramp]
        state = not state
        vals += [vals[-1], float(state)]
        t += ramp
    return _keyframes(p.t, times, np.array(vals))


def _walk(p, env, kind="walk", cadence=1.0, arm_swing=1.0):
    """Overlay a gait on the plan wherever ``env`` > 0; locomotion on a circle."""
    rng, st = p.rng, p.style
    g = _gait_params(kind, rng, st)
    g["arm_amp"] *= arm_swing
    g["hip_amp"] *= st["amplitude"] ** 0.5
    freq = rng.uniform(0.85, 1.0) * cadence * st["speed"] ** 0.5 * st["tempo"] ** 0.2
    phase = rng.random() + np.cumsum(np.full(p.T, freq)) / p.fps
    _gait(p, phase, g, envelope=env)
    p.vel_smooth = 0.25
    p.circle_radius = rng.uniform(780.0, 960.0) * rng.choice([-1.0, 1.0])


def _overlay(p, track, names, weight):
    """``dofs[:, names] <- dofs * (1 - w) + track * w`` (``track`` ``(T, D)``, ``weight`` scalar or ``(T,)``)."""
    cols = _idx(*names)
    w = np.broadcast_to(np.asarray(weight, dtype=np.float64), (p.T,))[:, None]
    p.dofs[:, cols] = p.dofs[:, cols] * (1.0 - w) + track[:, cols] * w


_ARM_DOFS = tuple(f"{s}_{n}" for s in "lr" for n in ("sh_flex", "sh_abd", "sh_rot", "elbow", "clav_elev",
                                                      "clav_prot", "wrist"))


def _look_around(p, amount=0.6, rate=0.25):
    """Head turns / nods from band-limited noise (added)."""
    n = _smooth_noise(p.rng, p.T, p.fps, 2, fmax=rate)
    p.add("neck_twist", amount * n[:, 0])
    p.add("neck_flex", 0.25 * amount * n[:, 1])


def _talk(p, weight, both=True):
    """Conversational hand movement on top of the current arms (added, scaled by ``weight`` (T,))."""
    rng, amp = p.rng, p.style["amplitude"]
    n = _smooth_noise(rng, p.T, p.fps, 6, fmax=1.2)
    w = weight * amp
    for k, s in enumerate("lr"):
        if not both and k == 1:
            break
        p.add(f"{s}_sh_rot", 0.3 * w * n[:, 3 * k])
        p.add(f"{s}_elbow", 0.25 * w * n[:, 3 * k + 1])
        p.add(f"{s}_sh_flex", 0.15 * w * n[:, 3 * k + 2])


# ---------------------------------------------------------------------------
# the actions
# ---------------------------------------------------------------------------
def _act_directions(p):
    rng, st = p.rng, p.style
    base = _base(p)

    def seg(k):
        s = _side(rng)
        v = base.copy()
        flex, abd = rng.uniform(0.9, 1.7), rng.uniform(-0.1, 1.0)
        v[_idx(f"{s}_sh_flex", f"{s}_sh_abd", f"{s}_elbow", f"{s}_sh_rot")] = (
            flex, abd, rng.uniform(0.0, 0.3), rng.uniform(-0.2, 0.3))
        sign = 1.0 if s == "l" else -1.0
        v[DOF_INDEX["neck_twist"]] = sign * abd * rng.uniform(0.5, 0.9)
        v[DOF_INDEX["chest_twist"]] = sign * rng.uniform(0.0, 0.25)
        d = st["tempo"]
        segs = [(rng.uniform(0.4, 1.2), base), (rng.uniform(0.5, 0.9) / d, v), (rng.uniform(1.5, 3.5), v)]
        if rng.random() < 0.25:   # explain with both hands
            explain = _arms(base.copy(), rng, "gesture", "gesture")
            segs += [(rng.uniform(0.5, 0.9) / d, explain), (rng.uniform(0.8, 1.5), explain)]
        return segs

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    _talk(p, 0.3 * np.ones(p.T))
    hold = p.dofs.copy()
    _walk(p, _bouts(p, on=(1.0, 2.5), off=(3.0, 6.0)), cadence=0.9, arm_swing=0.6)
    _overlay(p, hold, _ARM_DOFS, 0.7)     # keeps pointing while stepping


def _act_discussion(p):
    rng, st = p.rng, p.style
    base = _base(p)

    def seg(k):
        v = _weight_shift(base.copy(), rng)
        if rng.random() < 0.7:
            _arms(v, rng, "gesture", "gesture", jitter=0.15)
        else:
            s = _side(rng)
            _arm(v, rng, s, "gesture", 0.15)
            _arm(v, rng, _other(s), rng.choice(["hip", "pocket", "hang", "chin"]))
        v[DOF_INDEX["neck_twist"]] = rng.uniform(-0.6, 0.6)
        v[DOF_INDEX["neck_flex"]] = rng.uniform(-0.1, 0.2)
        return [(rng.uniform(0.5, 1.0) / st["tempo"], v), (rng.uniform(1.0, 3.0), v)]

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    _talk(p, 1.3 * np.ones(p.T))


def _act_eating(p):
    rng, st = p.rng, p.style
    sit = _seated(p, lean=rng.uniform(0.15, 0.35))
    table = _arms(sit.copy(), rng, "table", "table")
    table[DOF_INDEX["neck_flex"]] = rng.uniform(0.2, 0.45)
    hand = _side(rng)                       # the hand that usually brings food up

    def seg(k):
        s = hand if rng.random() < 0.75 else _other(hand)
        bite = _arm(table.copy(), rng, s, "mouth")
        bite[DOF_INDEX["neck_flex"]] = rng.uniform(0.0, 0.2)
        bite[DOF_INDEX["spine_flex"]] += 0.1
        d = st["tempo"]
        segs = [(rng.uniform(0.8, 3.0), table), (rng.uniform(0.5, 0.8) / d, bite), (rng.uniform(0.3, 1.2), bite),
                (rng.uniform(0.5, 0.8) / d, table)]
        if rng.random() < 0.25:   # sit back, look up
            back = _arms(sit.copy(), rng, "thigh", "table")
            back[DOF_INDEX["spine_flex"]] = rng.uniform(-0.1, 0.1)
            back[DOF_INDEX["neck_twist"]] = rng.uniform(-0.5, 0.5)
            segs += [(rng.uniform(0.7, 1.0), back), (rng.uniform(1.0, 2.5), back)]
        return segs

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    _talk(p, 0.3 * np.ones(p.T))


def _act_greeting(p):
    rng, st = p.rng, p.style
    rest = _base(p)

    def seg(k):
        kind = rng.integers(0, 4)
        s = _side(rng)
        # between greetings: hands clasped in front, or arms opening towards the next person
        base = _arms(rest.copy(), rng, "carry", "carry") if rng.random() < 0.5 else rest.copy()
        if rng.random() < 0.4:
            base[_idx("l_sh_abd", "r_sh_abd", "l_sh_flex", "r_sh_flex", "l_elbow", "r_elbow")] = (
                0.6, 0.6, 0.5, 0.5, 0.5, 0.5) + rng.normal(0.0, 0.1, 6)
        v = base.copy()
        if kind == 0:     # wave
            v[_idx(f"{s}_sh_abd", f"{s}_sh_flex", f"{s}_elbow", f"{s}_sh_rot")] = (
                rng.uniform(1.9, 2.5), rng.uniform(0.2, 0.6), rng.uniform(0.5, 1.0), rng.uniform(-0.3, 0.1))
        elif kind == 1:   # handshake (right hand mostly)
            _arm(v, rng, "r" if rng.random() < 0.85 else "l", "shake")
            v[DOF_INDEX["spine_flex"]] += rng.uniform(0.05, 0.2)
        elif kind == 2:   # bow
            v[_idx("spine_flex", "chest_flex", "neck_flex")] = (rng.uniform(0.4, 0.8), 0.2, 0.3)
            v[_idx("l_hip_flex", "r_hip_flex")] += rng.uniform(0.2, 0.5)
        else:             # hug
            for side in "lr":
                v[_idx(f"{side}_sh_flex", f"{side}_sh_abd", f"{side}_sh_rot", f"{side}_elbow")] = (
                    rng.uniform(1.1, 1.5), rng.uniform(0.2, 0.5), rng.uniform(0.4, 0.8), rng.uniform(0.8, 1.3))
        d = st["tempo"]
        return [(rng.uniform(0.8, 2.0), base), (rng.uniform(0.5, 0.9) / d, v), (rng.uniform(1.5, 3.0), v),
                (rng.uniform(0.5, 0.9) / d, base)]

    times, keys = _schedule(rng, p.T / p.fps, seg)
    p.dofs = p.dofs - neutral_pose() + _keyframes(p.t, times, np.array(keys))
    # wave oscillation wherever the arm is high
    osc = np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * p.t)
    for s in "lr":
        high = np.clip((p.get(f"{s}_sh_abd") - 1.2) / 0.6, 0.0, 1.0)
        p.add(f"{s}_sh_rot", -0.35 * high * osc)
    # walk up between the greetings: the legs walk while the arms are down
    arms_down = np.clip(1.0 - np.abs(p.dofs - rest)[:, _idx(*_ARM_DOFS)].max(1) / 0.3, 0.0, 1.0)
    env = arms_down * _bouts(p, on=(0.8, 1.5), off=(1.5, 3.0))
    _walk(p, env, cadence=0.95)


def _act_phoning(p):
    rng, st = p.rng, p.style
    base = _base(p)
    s = _side(rng)          # the phone side (changes between calls)

    def seg(k):
        nonlocal s
        if rng.random() < 0.25:
            s = _other(s)
        call = _arm(base.copy(), rng, s, "ear", 0.06)
        _arm(call, rng, _other(s), rng.choice(["hang", "gesture", "pocket", "hip"]), 0.12)
        call[DOF_INDEX["neck_bend"]] = (1.0 if s == "l" else -1.0) * rng.uniform(0.05, 0.25)
        call[DOF_INDEX["neck_flex"]] = rng.uniform(-0.05, 0.3)
        if rng.random() < 0.4:
            _weight_shift(call, rng)
        segs = [(rng.uniform(0.6, 1.0) / st["tempo"], call), (rng.uniform(2.0, 6.0), call)]
        if rng.random() < 0.2:    # look at the screen
            look = _arm(base.copy(), rng, s, "carry")
            look[DOF_INDEX["neck_flex"]] = 0.5
            segs += [(0.7, look), (rng.uniform(0.8, 2.0), look)]
        return segs

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    _talk(p, 0.6 * np.ones(p.T), both=True)
    arm_hold = p.dofs.copy()
    _walk(p, _bouts(p, on=(1.5, 4.0), off=(1.5, 4.0)), cadence=0.85, arm_swing=0.5)
    # the phone hand stays at the ear while walking (smooth weight: how far the elbow is up)
    for side in "lr":
        _overlay(p, arm_hold, _arm_dofs(side), np.clip((arm_hold[:, DOF_INDEX[f"{side}_elbow"]] - 1.5) / 0.6, 0.0, 1.0))


def _act_photo(p):
    rng, st = p.rng, p.style
    base = _base(p)

    def seg(k):
        shot = _arms(base.copy(), rng, "camera", "camera", 0.06)
        shot[DOF_INDEX["neck_flex"]] = rng.uniform(-0.1, 0.15)
        r = rng.random()
        if r < 0.3:      # crouch for a low shot
            kk = rng.uniform(0.8, 1.4)
            shot[_idx("l_knee", "r_knee", "l_hip_flex", "r_hip_flex", "l_ankle", "r_ankle", "spine_flex")] = (
                kk, kk, 0.75 * kk, 0.75 * kk, -0.35 * kk, -0.35 * kk, 0.25 * kk)
        elif r < 0.5:    # lean to frame
            shot[DOF_INDEX["spine_bend"]] = rng.uniform(-0.25, 0.25)
            shot[DOF_INDEX["spine_flex"]] = rng.uniform(0.0, 0.3)
        elif r < 0.65:   # camera held up high
            shot[_idx("l_sh_flex", "r_sh_flex")] += 0.6
        down = _arms(base.copy(), rng, "carry", "hang") if rng.random() < 0.5 else base
        down[DOF_INDEX["neck_flex"]] = rng.uniform(0.0, 0.5)     # checking the picture
        d = st["tempo"]
        return [(rng.uniform(0.6, 1.0) / d, shot), (rng.uniform(1.0, 3.0), shot),
                (rng.uniform(0.6, 1.0) / d, down), (rng.uniform(0.5, 2.0), down)]

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    p.yaw = p.yaw + 0.6 * _smooth_noise(rng, p.T, p.fps, 1, fmax=0.1)[:, 0]
    lowered = np.clip(1.5 - p.get("l_elbow"), 0.0, 1.0) * np.clip(1.0 - np.abs(p.get("l_knee") - 0.1), 0, 1)
    _walk(p, lowered * _bouts(p, on=(1.0, 2.5), off=(1.0, 3.0)), cadence=0.85, arm_swing=0.4)


def _act_posing(p):
    rng, st = p.rng, p.style
    base = _base(p)

    def pose():
        v = base.copy()
        kind = rng.integers(0, 5)
        if kind == 0:      # hands on the hips, wide stance, chest out
            _arms(v, rng, "hip", "hip")
            v[_idx("l_hip_abd", "r_hip_abd")] += rng.uniform(0.1, 0.2)
            v[DOF_INDEX["spine_flex"]] = rng.uniform(-0.2, -0.05)
        elif kind == 1:    # arms up in a V
            a = rng.uniform(2.2, 2.8)
            v[_idx("l_sh_abd", "r_sh_abd", "l_sh_flex", "r_sh_flex", "l_elbow", "r_elbow")] = (
                a, a, 0.4, 0.4, 0.1, 0.1)
        elif kind == 2:    # flexing the biceps
            v[_idx("l_sh_abd", "r_sh_abd", "l_elbow", "r_elbow", "l_sh_rot", "r_sh_rot")] = (
                1.5, 1.5, 2.2, 2.2, -0.9, -0.9)
        elif kind == 3:    # one hand on the hip, the other behind the head / up
            s = _side(rng)
            _arm(v, rng, s, "hip")
            v[_idx(f"{_other(s)}_sh_abd", f"{_other(s)}_sh_flex", f"{_other(s)}_elbow")] = (
                rng.uniform(2.0, 2.6), 0.6, rng.uniform(0.3, 2.3))
        else:              # a lunge, arms out
            s = _side(rng)
            v[_idx(f"{s}_hip_flex", f"{s}_knee", f"{s}_ankle")] += (0.7, 0.8, -0.2)
            v[_idx(f"{_other(s)}_hip_flex", f"{_other(s)}_knee")] += (-0.3, 0.05)
            v[_idx("l_sh_abd", "r_sh_abd", "l_elbow", "r_elbow")] = rng.uniform(1.3, 1.7, 4) * (1, 1, 0.1, 0.1)
        _weight_shift(v, rng)
        if rng.random() < 0.4:   # one foot forward
            s = _side(rng)
            v[_idx(f"{s}_hip_flex", f"{s}_knee", f"{s}_hip_rot")] += (0.25, 0.15, -0.2)
        v[_idx("neck_twist", "neck_flex", "spine_bend")] += rng.normal(0.0, [0.35, 0.1, 0.05])
        return v

    def seg(k):
        v = pose()
        d = st["tempo"]
        return [(rng.uniform(0.7, 1.2) / d, v), (rng.uniform(2.0, 4.0), v)]

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    p.noise_scale *= 0.5
    p.yaw = p.yaw + 0.5 * _smooth_noise(rng, p.T, p.fps, 1, fmax=0.08)[:, 0]


def _act_purchases(p):
    rng, st = p.rng, p.style
    base = _base(p)
    # carrying: a box in both hands, or a bag / basket on one forearm
    hold = _arms(base.copy(), rng, "carry", "carry") if rng.random() < 0.7 else _arm(base.copy(), rng, _side(rng), "carry")
    hold[DOF_INDEX["neck_flex"]] = rng.uniform(0.15, 0.4)

    def seg(k):
        s = _side(rng)
        v = base.copy() if rng.random() < 0.5 else hold.copy()
        r = rng.random()
        if r < 0.45:       # bend down and pick something up
            kk = rng.uniform(0.3, 1.3)
            v[_idx("spine_flex", "chest_flex", "l_knee", "r_knee", "l_hip_flex", "r_hip_flex", "l_ankle", "r_ankle")] = (
                rng.uniform(0.4, 0.8), 0.2, kk, kk, 0.6 * kk + 0.4, 0.6 * kk + 0.4, -0.4 * kk, -0.4 * kk)
            v[_idx(f"{s}_sh_flex", f"{s}_elbow")] = (rng.uniform(0.9, 1.4), rng.uniform(0.0, 0.4))
            v[DOF_INDEX["neck_flex"]] = 0.3
        elif r < 0.8:      # reach forward / up to a shelf
            v[_idx(f"{s}_sh_flex", f"{s}_sh_abd", f"{s}_elbow")] = (
                rng.uniform(1.0, 2.4), rng.uniform(0.0, 0.5), rng.uniform(0.0, 0.5))
            v[DOF_INDEX["neck_flex"]] = rng.uniform(-0.4, 0.1)
        else:              # look at what is in the hands
            _arms(v, rng, "carry", "carry")
            v[DOF_INDEX["neck_flex"]] = rng.uniform(0.3, 0.6)
        d = st["tempo"]
        return [(rng.uniform(2.0, 4.0), hold), (rng.uniform(0.6, 1.0) / d, v), (rng.uniform(0.5, 1.5), v),
                (rng.uniform(0.6, 1.0) / d, hold)]

    times, keys = _schedule(rng, p.T / p.fps, seg)
    p.dofs = p.dofs - neutral_pose() + _keyframes(p.t, times, np.array(keys))
    # walk between the tasks: only while the key pose is the "hold" pose
    near = np.clip(1.0 - np.abs(p.dofs - hold)[:, _idx("spine_flex", "l_knee", "r_knee")].max(1) / 0.2, 0, 1)
    carried = p.dofs.copy()
    _walk(p, near * _bouts(p, on=(1.5, 3.5), off=(0.5, 1.5), start_on=True), cadence=0.9, arm_swing=0.7)
    for s in "lr":
        if abs(hold[DOF_INDEX[f"{s}_elbow"]] - base[DOF_INDEX[f"{s}_elbow"]]) > 0.5:   # the carrying arm
            _overlay(p, carried, _arm_dofs(s), 1.0)


def _act_sitting(p):
    rng, st = p.rng, p.style
    sit = _seated(p)

    def seg(k):
        v = sit.copy()
        r = rng.random()
        v[DOF_INDEX["spine_flex"]] = rng.uniform(-0.2, 0.0)     # leaning back in the chair
        if r < 0.45:       # hands behind the head or on the thighs
            if rng.random() < 0.5:
                for s in "lr":
                    v[_idx(f"{s}_sh_abd", f"{s}_sh_flex", f"{s}_elbow", f"{s}_sh_rot")] = (
                        rng.uniform(1.9, 2.3), 0.5, 2.3, -0.4)
        elif r < 0.7:      # a hand on the face
            s = _side(rng)
            _arm(v, rng, s, rng.choice(["chin", "ear"]))
        else:              # arms crossed
            _arms(v, rng, "crossed", "crossed")
        if rng.random() < 0.6:   # a leg or both stretched forward
            for s in ("l", "r") if rng.random() < 0.4 else (_side(rng),):
                v[_idx(f"{s}_knee", f"{s}_ankle")] = (rng.uniform(0.2, 0.7), 0.25)
        v[DOF_INDEX["neck_twist"]] = rng.uniform(-0.6, 0.6)
        return [(rng.uniform(0.7, 1.2) / st["tempo"], v), (rng.uniform(1.5, 4.0), v)]

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    _look_around(p, 0.4)


def _act_smoking(p):
    rng, st = p.rng, p.style
    seated = rng.random() < 0.3
    base = _seated(p) if seated else _weight_shift(_base(p), rng)
    s = _side(rng)                                   # the cigarette hand
    rest = _arm(_arm(base.copy(), rng, _other(s), "waist"), rng, s, "waist" if rng.random() < 0.5 else "gesture")
    rest[_idx(f"{s}_elbow")] = rng.uniform(1.2, 1.8)

    def seg(k):
        puff = _arm(rest.copy(), rng, s, "mouth", 0.05)
        puff[DOF_INDEX["neck_flex"]] = rng.uniform(-0.2, 0.0)
        d = st["tempo"]
        segs = [(rng.uniform(2.0, 5.0), rest), (rng.uniform(0.6, 0.9) / d, puff), (rng.uniform(0.8, 2.0), puff),
                (rng.uniform(0.6, 0.9) / d, rest)]
        if rng.random() < 0.3:    # the hand down by the side, tapping the ash
            low = _arm(rest.copy(), rng, s, "hang")
            low[DOF_INDEX[f"{s}_elbow"]] = rng.uniform(0.6, 1.0)
            segs += [(0.8, low), (rng.uniform(1.0, 2.0), low)]
        return segs

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    _look_around(p, 0.4)
    if not seated and rng.random() < 0.5:
        hold = p.dofs.copy()
        _walk(p, _bouts(p, on=(1.0, 2.5), off=(3.0, 7.0), start_on=False), cadence=0.8)
        _overlay(p, hold, tuple(n for n in _ARM_DOFS), 1.0)


def _act_waiting(p):
    rng, st = p.rng, p.style
    base = _base(p)
    habit = rng.choice(["crossed", "behind", "hip"])

    def seg(k):
        v = _weight_shift(_weight_shift(base.copy(), rng), rng)
        h = habit if rng.random() < 0.7 else rng.choice(["crossed", "behind", "hip", "pocket"])
        if h in ("hip", "pocket") and rng.random() < 0.5:     # one hand only
            _arm(v, rng, _side(rng), h)
        else:
            _arms(v, rng, h, h)
        if rng.random() < 0.2:      # a look at the watch
            sw = _side(rng)
            _arm(v, rng, sw, "carry")
            v[DOF_INDEX["neck_flex"]] = 0.45
        return [(rng.uniform(0.8, 1.5) / st["tempo"], v), (rng.uniform(2.0, 6.0), v)]

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    _look_around(p, 0.7, rate=0.15)
    p.noise_scale *= 1.4
    hold = p.dofs.copy()
    _walk(p, _bouts(p, on=(0.8, 1.5), off=(5.0, 10.0), start_on=False), cadence=0.8, arm_swing=0.2)
    _overlay(p, hold, _ARM_DOFS, 0.9)


def _act_walk_dog(p):
    rng, st = p.rng, p.style
    base = _base(p)
    s = _side(rng)                     # the leash hand
    leash = _arm(base.copy(), rng, s, "leash")
    leash[DOF_INDEX["neck_flex"]] = rng.uniform(0.35, 0.6)      # looking at the dog
    leash[DOF_INDEX["spine_flex"]] += rng.uniform(0.08, 0.2)
    _arm(leash, rng, _other(s), rng.choice(["pocket", "hang", "carry"]))

    def seg(k):
        segs = [(rng.uniform(2.0, 5.0), leash)]
        if rng.random() < 0.4:         # bend down to the dog
            b = leash.copy()
            kk = rng.uniform(0.4, 1.4)
            b[_idx("spine_flex", "l_knee", "r_knee", "l_hip_flex", "r_hip_flex", "l_ankle", "r_ankle", "neck_flex")] = (
                rng.uniform(0.5, 0.85), kk, kk, 0.6 * kk + 0.4, 0.6 * kk + 0.4, -0.4 * kk, -0.4 * kk, 0.3)
            _arm(b, rng, _other(s), "leash")
            segs += [(rng.uniform(0.7, 1.1), b), (rng.uniform(1.0, 2.5), b), (rng.uniform(0.7, 1.1), leash)]
        return segs

    p.dofs = p.dofs - neutral_pose() + _track(p, seg)
    # the dog pulls: the leash arm jerks forward now and then
    pull = _smooth_noise(rng, p.T, p.fps, 1, fmax=1.0)[:, 0]
    p.add(f"{s}_sh_flex", 0.15 * pull)
    held = p.dofs.copy()
    upright = np.clip(1.0 - (p.get("spine_flex") - leash[DOF_INDEX["spine_flex"]]) / 0.2, 0.0, 1.0)
    _walk(p, upright * _bouts(p, on=(2.0, 5.0), off=(0.8, 2.5), start_on=True), cadence=0.95)
    _overlay(p, held, _ARM_DOFS, 0.85)
    _overlay(p, held, ("neck_flex", "spine_flex"), 1.0)


def _act_walk_together(p):
    rng, st = p.rng, p.style
    side = 1.0 if rng.random() < 0.5 else -1.0       # where the partner walks (+ = left)
    _walk(p, np.ones(p.T), cadence=rng.uniform(0.75, 0.88), arm_swing=0.6)
    turn = side * np.clip(rng.uniform(0.45, 0.8) + 0.25 * _smooth_noise(rng, p.T, p.fps, 1, fmax=0.2)[:, 0], 0, 1)
    p.add("neck_twist", turn)
    p.add("chest_twist", 0.2 * turn)
    talk = np.clip(_smooth_noise(rng, p.T, p.fps, 1, fmax=0.15)[:, 0], 0.0, 1.0)
    s = "l" if side < 0 else "r"           # the outer hand gestures
    gesture = _arm(np.zeros(p.dofs.shape[1]), rng, s, "gesture")
    _overlay(p, np.broadcast_to(gesture, p.dofs.shape), _arm_dofs(s), 0.8 * talk)
    _talk(p, talk)
    # the inner arm: holding hands (abducted towards the partner, little swing) or
    # round the partner's back (shoulder abducted, elbow bent, hand behind the partner)
    o = _other(s)
    if rng.random() < 0.5:
        p.set(f"{o}_sh_abd", 0.5 + 0.05 * p.get(f"{o}_sh_abd"))
        p.set(f"{o}_sh_flex", 0.2 + 0.3 * (p.get(f"{o}_sh_flex") - 0.05))
        p.set(f"{o}_elbow", 0.35 + 0.1 * p.get(f"{o}_elbow"))
    else:
        p.set(f"{o}_sh_abd", rng.uniform(1.0, 1.3) + 0.05 * p.get(f"{o}_sh_abd"))
        p.set(f"{o}_sh_flex", rng.uniform(0.0, 0.3) + 0.1 * p.get(f"{o}_sh_flex"))
        p.set(f"{o}_sh_rot", -0.3)
        p.set(f"{o}_elbow", rng.uniform(0.9, 1.4))


ACTION_FNS = {
    "Directions": _act_directions,
    "Discussion": _act_discussion,
    "Eating": _act_eating,
    "Greeting": _act_greeting,
    "Phoning": _act_phoning,
    "Photo": _act_photo,
    "Posing": _act_posing,
    "Purchases": _act_purchases,
    "Sitting": _act_sitting,
    "Smoking": _act_smoking,
    "Waiting": _act_waiting,
    "WalkDog": _act_walk_dog,
    "WalkTogether": _act_walk_together,
}

__all__ = ["ARM_POSES", "ACTION_FNS"]
