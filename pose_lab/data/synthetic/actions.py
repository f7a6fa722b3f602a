"""Action plans of the synthetic motion engine: joint angles and root orientation per frame.

An *action plan* (:class:`_Plan`) gives joint angles
(:data:`~pose_lab.data.synthetic.body.DOF_NAMES`) and the heading / pelvis tilt
per frame as smooth functions of time: cyclic gaits with per-sequence cadence,
stride, arm swing and phase; minimum-jerk transitions between key poses for
sitting, squatting and gestures. :data:`_NOISE` gives the amplitude of the
band-limited "idle" noise (:func:`_smooth_noise`) that the realisation step in
:mod:`~pose_lab.data.synthetic.motion` adds so that no two sequences are alike.
Locomotion plans ask for circles of 0.78-0.96 m radius (the path fits the capture area) (``circle_radius``);
jumps and running add a ballistic flight height (``flight``).

Actions here (one ``_act_*`` function each in :data:`_ACTION_FNS`; the other
Human3.6M actions are in :mod:`~pose_lab.data.synthetic.actions_h36m`):
``Walking`` and ``SittingDown`` (two of the 15 Human3.6M actions,
:data:`~pose_lab.data.synthetic.motion.ACTIONS`) and the extras
(:data:`~pose_lab.data.synthetic.motion.EXTRA_ACTIONS`): ``Running``
(stand, sit down, seated idle, stand up), ``Squatting``, ``Waving``,
``Pointing`` (pointing / reaching at random targets, head following),
``Jumping`` (vertical jumps and jumping jacks with a ballistic flight phase),
``Turning`` (stepping round on the spot), ``Boxing`` (guard, jabs and crosses)
and ``Stretching`` (overhead reach, side bends, forward bend, quadriceps
stretch).
"""

from __future__ import annotations

import numpy as np

from .body import DOF_INDEX, DOF_NAMES, neutral_pose

_G = 9810.0  # mm / s^2
_ND = len(DOF_NAMES)

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


def sequence_style(style: dict, rng) -> dict:
    """Per-sequence motion style: the subject's habits (``Body.style``) varied per sequence.

    Speed, arm swing, tempo and stance are multiplied by log-normal factors,
    posture offsets (trunk lean, head tilt, arm abduction) get normal noise,
    and three new habits are drawn: ``amplitude`` (gesture / stride size
    factor), ``knee`` (habitual knee bend, rad), ``arm_carry`` (arms carried
    forward (+) or back, rad) and ``elbow`` (habitual elbow bend, rad).
    """
    st = dict(style)
    for k, sd in (("speed", 0.1), ("arm_swing", 0.25), ("tempo", 0.12), ("stance", 0.2)):
        st[k] = float(st[k] * np.exp(rng.normal(0.0, sd)))
    for k, sd in (("lean", 0.04), ("head_tilt", 0.08), ("arm_abd", 0.05)):
        st[k] = float(st[k] + rng.normal(0.0, sd))
    st["amplitude"] = float(np.exp(rng.normal(0.0, 0.15)))
    # habitual knee bend: mostly slight, a third of the sequences bent-kneed (real gaits
    # and stances reach 40-100 deg of knee flexion, e.g. the CMU clips of subject 131)
    st["knee"] = float(rng.uniform(0.25, 0.9) if rng.random() < 0.25 else abs(rng.normal(0.0, 0.08)))
    st["arm_carry"] = float(rng.normal(0.0, 0.08))
    st["elbow"] = float(rng.uniform(0.4, 1.3) if rng.random() < 0.3 else abs(rng.normal(0.0, 0.15)))
    return st


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
        self.mixin_legs = True             # random-pose mix-in may move a leg (not when seated)
        self.vel_smooth = 0.06             # s.d. (seconds) of the root-velocity smoothing
        self.style = sequence_style(body.style, rng)
        self.noise_scale = float(np.exp(rng.normal(0.0, 0.35)))   # idle variation: calm to fidgety
        st = self.style
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
        out[f"{s}_ankle"] = (g.get("ankle0", 0.0) - 0.10 * _bump(ph, 0.38, 0.12)
                             + g["ankle_push"] * _bump(ph, 0.58, 0.09) - 0.12 * _bump(ph, 0.8, 0.08))
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
    """Gait parameters of ``kind`` (walk / run / step) with the sequence's habits (knee bend, elbows)."""
    g = _gait_params_base(kind, rng, style)
    k = style.get("knee", 0.0)
    g["knee0"] += k
    g["hip_mean"] += 0.5 * k
    g["ankle0"] = -0.5 * k
    g["elbow_mean"] += style.get("elbow", 0.0)
    return g


def _gait_params_base(kind, rng, style):
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
    rng, st = p.rng, p.style
    g = _gait_params("walk", rng, st)
    freq = rng.uniform(0.85, 1.05) * st["speed"] ** 0.5 * st["tempo"] ** 0.2
    freq = freq * (1.0 + 0.04 * _smooth_noise(rng, p.T, p.fps, 1, fmax=0.15)[:, 0])
    phase = rng.random() + np.cumsum(freq) / p.fps
    _gait(p, phase, g)
    p.vel_smooth = 0.25
    p.circle_radius = rng.uniform(780.0, 960.0) * rng.choice([-1.0, 1.0])


def _act_running(p):
    rng, st = p.rng, p.style
    g = _gait_params("run", rng, st)
    freq = rng.uniform(1.25, 1.4) * st["tempo"] ** 0.2
    phase = rng.random() + np.cumsum(np.full(p.T, freq)) / p.fps
    _gait(p, phase, g)
    # small vertical bounce over the ground contact: flight peaks mid-swing of each step
    p.flight = rng.uniform(20.0, 50.0) * np.maximum(0.0, np.sin(2 * np.pi * (2 * phase - 0.3))) ** 2
    p.vel_smooth = 0.2
    p.circle_radius = rng.uniform(850.0, 960.0) * rng.choice([-1.0, 1.0])


def _act_sitting_down(p):
    rng, st = p.rng, p.style
    p.mixin_legs = False
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
    rng, st = p.rng, p.style
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
    rng, st = p.rng, p.style
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
    rng, st = p.rng, p.style
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
    rng, st = p.rng, p.style
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
    vel = np.gradient(yaw_t) * p.fps if p.T > 1 else np.zeros_like(yaw_t)  # np.gradient needs 2 values
    p.add("neck_twist", np.clip(0.35 * vel, -0.8, 0.8))
    p.yaw = p.yaw + yaw_t


def _act_boxing(p):
    rng, st = p.rng, p.style
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
    rng, st = p.rng, p.style
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
