"""Synthetic human: bodies, joint limits, motions, COCO keypoints, visibility, cameras."""

import numpy as np
import pytest

from pose_lab.data import synthetic
from pose_lab.data.synthetic import (
    ACTIONS,
    ALL_ACTIONS,
    CAPTURE_AREA,
    EXTRA_ACTIONS,
    ALL_SUBJECTS,
    DOF_LIMITS,
    HEIGHT_RANGE_MM,
    coco_keypoints_3d,
    coco_visibility,
    forward_kinematics,
    generate_sequence,
    h36m_rig,
    neutral_pose,
    penetration_report,
    random_camera,
    random_poses,
    sample_body,
    subject_body,
)
from pose_lab.geometry import Camera, h36m_cameras, look_at, project_to_2d, world_to_camera
from pose_lab.skeletons import COCO17, H36M17

T = 150  # frames per test sequence (3 s)


@pytest.fixture(scope="module")
def sequences():
    """Every action for a training and a test subject, plus random poses."""
    seqs = {(a, s): generate_sequence(a, s, T, seed=7) for a in ALL_ACTIONS for s in ("S1", "S9")}
    rand = {s: random_poses(400, seed=3, subject=s) for s in ("S1", "S9")}
    return seqs, rand


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _all_joints32(sequences):
    seqs, rand = sequences
    return [(f"{a}/{s}", q.joints32) for (a, s), q in seqs.items()] + [
        (f"random/{s}", q.joints32) for s, q in rand.items()]


# --------------------------------------------------------------------------- bodies
def test_subject_heights_in_range_and_fixed():
    for s in ALL_SUBJECTS:
        b = subject_body(s)
        assert HEIGHT_RANGE_MM[0] <= b.height_mm <= HEIGHT_RANGE_MM[1]
        assert subject_body(s).height_mm == b.height_mm          # same subject, same body
        np.testing.assert_array_equal(subject_body(s).offsets, b.offsets)
    heights = np.array([sample_body(k).height_mm for k in range(300)])
    assert heights.min() >= 1500 and heights.max() <= 1950
    assert 1620 < heights.mean() < 1770 and heights.std() > 50     # adult population, not a constant
    assert len({round(subject_body(s).height_mm) for s in ALL_SUBJECTS}) == len(ALL_SUBJECTS)


def test_standing_stature_and_proportions():
    for s in ("S1", "S8", "S11"):
        b = subject_body(s)
        j = forward_kinematics(b, neutral_pose()[None])[0]
        j = j - [0, 0, j[[4, 9], 2].min()]          # balls of the feet on the floor
        top = j[15, 2] + b.capsule("head")[2]      # "Head" joint + head radius
        assert abs(top - b.height_mm) < 0.03 * b.height_mm
        bones = dict(zip([(p, c) for c, p in enumerate(H36M17.parents) if p >= 0], b.bone_lengths17()))
        H = b.height_mm
        # Drillis & Contini ratios within the per-subject variation
        assert 0.21 * H < bones[(1, 2)] < 0.28 * H      # thigh 0.245 H
        assert 0.21 * H < bones[(2, 3)] < 0.28 * H      # shank 0.246 H
        assert 0.16 * H < bones[(11, 12)] < 0.21 * H    # upper arm 0.186 H
        assert 0.12 * H < bones[(12, 13)] < 0.17 * H    # forearm 0.146 H
        np.testing.assert_allclose(bones[(0, 1)], bones[(0, 4)])      # left/right symmetric
        np.testing.assert_allclose(bones[(12, 13)], bones[(15, 16)])


def test_sample_body_validates():
    with pytest.raises(ValueError, match="height_mm"):
        sample_body(0, height_mm=2500)
    with pytest.raises(ValueError, match="seed"):
        sample_body(-1)
    with pytest.raises(ValueError, match="sex"):
        sample_body(0, sex="X")


# --------------------------------------------------------------------------- kinematics
def test_bone_lengths_constant_over_time(sequences):
    seqs, rand = sequences
    for s in ("S1", "S9"):
        ref = subject_body(s).bone_lengths17()
        for name, q in [(a, seqs[(a, s)]) for a in ALL_ACTIONS] + [("random", rand[s])]:
            bl = H36M17.bone_lengths(q.joints)
            assert np.ptp(bl, axis=0).max() < 1e-6, name           # mm
            np.testing.assert_allclose(bl[0], ref, atol=1e-6, err_msg=name)
    # different subjects have different bodies
    assert np.abs(subject_body("S1").bone_lengths17() - subject_body("S9").bone_lengths17()).max() > 5


def test_joint_angles_within_limits(sequences):
    seqs, rand = sequences
    for q in list(seqs.values()) + list(rand.values()):
        assert np.all(q.dofs >= DOF_LIMITS[:, 0] - 1e-12) and np.all(q.dofs <= DOF_LIMITS[:, 1] + 1e-12)


def test_knees_and_elbows_flex_one_way_within_range(sequences):
    """Measured from positions only: flexion angle in range, bending direction fixed."""
    for name, J in _all_joints32(sequences):
        for hip, knee, ankle, toe in ((1, 2, 3, 4), (6, 7, 8, 9)):
            dt, ds, f = _unit(J[:, knee] - J[:, hip]), _unit(J[:, ankle] - J[:, knee]), _unit(J[:, toe] - J[:, ankle])
            flex = np.degrees(np.arccos(np.clip(np.sum(dt * ds, -1), -1, 1)))
            assert flex.max() <= 150.0 + 1e-6, name
            bent = flex > 3
            # the shank folds backwards, away from where the toes point
            side = np.sum(np.cross(dt, ds) * np.cross(ds, f), -1)
            assert np.all(side[bent] < 0), name
        for sh, el, wr, thumb, mid in ((17, 18, 19, 20, 22), (25, 26, 27, 28, 30)):
            du, df = _unit(J[:, el] - J[:, sh]), _unit(J[:, wr] - J[:, el])
            flex = np.degrees(np.arccos(np.clip(np.sum(du * df, -1), -1, 1)))
            assert flex.max() <= 145.0 + 1e-6, name
            bent = flex > 3
            # the forearm folds towards the palm side: the flexion axis agrees with the hand plane
            hand_n = np.cross(J[:, thumb] - J[:, wr], J[:, mid] - J[:, wr])
            assert np.all(np.sum(np.cross(du, df) * hand_n, -1)[bent] < 0), name


def test_no_self_penetration(sequences):
    seqs, rand = sequences
    for (a, s), q in seqs.items():
        assert not penetration_report(q.body, q.joints32)["any"].any(), a
    for s, q in rand.items():
        assert not penetration_report(q.body, q.joints32)["any"].any(), s


def test_penetration_check_detects_hand_in_torso_and_crossed_legs():
    b = subject_body("S1")
    # forearm folded into the chest: shoulder adducted across the body, elbow fully bent
    bad_arm = neutral_pose(l_sh_abd=-0.5, l_sh_flex=0.3, l_elbow=2.5, l_sh_rot=1.3)
    bad_legs = neutral_pose(l_hip_abd=-0.35, r_hip_abd=-0.35)
    rep = penetration_report(b, forward_kinematics(b, np.stack([neutral_pose(), bad_arm, bad_legs])))
    assert not rep["any"][0]
    assert rep["l_hand_torso"][1]
    assert rep["legs"][2]


def test_feet_on_floor_and_smooth(sequences):
    seqs, _ = sequences
    for (a, s), q in seqs.items():
        J = q.joints32
        assert J[..., 2].min() > -1.0, a                      # nothing below the floor
        soles = np.minimum(J[:, [4, 5, 9, 10], 2].min(1),
                           J[:, [3, 8], 2].min(1) - q.body.segments["ankle_height"])
        if a != "Jumping" and a != "Running":
            np.testing.assert_allclose(soles, 0.0, atol=1e-6, err_msg=a)   # always standing on the floor
        else:
            assert (soles > 20).any() and (np.abs(soles) < 1e-6).mean() > 0.3, a   # flight phases
        # temporally smooth: no jumps in angles, root or joints (50 fps)
        assert np.abs(np.diff(q.dofs, axis=0)).max() < 0.5, a                 # < 25 rad/s
        assert np.linalg.norm(np.diff(q.root_pos, axis=0), axis=-1).max() < 100.0, a   # < 5 m/s
        step = np.linalg.norm(np.diff(J, axis=0), axis=-1)       # mm per frame
        assert step.max() < 300.0, (a, step.max())              # < 15 m/s for hands and feet
        acc = np.linalg.norm(np.diff(J, 2, axis=0), axis=-1)
        assert acc.max() < 150.0, (a, acc.max())                 # a 15 cm teleport would show


def _support_slide(q, tol=1.0, trim=2, min_run=6):
    """Horizontal speed (mm/s) of the supporting foot's lowest sole point during stance.

    Stance: runs of >= ``min_run`` frames in which the lowest of the six sole
    points (heel under the ankle, toe base, toe tip of each foot) is on the
    floor (< ``tol`` mm) and belongs to the same foot; ``trim`` frames at each
    end of a run (heel strike, toe off) are left out.
    """
    J = q.joints32
    ah = q.body.segments["ankle_height"]
    idx = np.array([3, 4, 5, 8, 9, 10])
    h = J[:, idx, 2] - np.array([ah, 0, 0, ah, 0, 0])
    foot = h.argmin(1) // 3
    on = h.min(1) < tol
    out, t = [], 0
    while t < len(J):
        if not on[t]:
            t += 1
            continue
        u = t
        while u + 1 < len(J) and on[u + 1] and foot[u + 1] == foot[t]:
            u += 1
        if u - t + 1 >= min_run:
            for k in range(t + trim, u - trim):
                f = foot[t]
                j = idx[3 * f + h[k, 3 * f:3 * f + 3].argmin()]
                out.append(np.linalg.norm(J[k + 1, j, :2] - J[k, j, :2]) * q.fps)
        t = u + 1
    return np.array(out)


def test_supporting_foot_does_not_slide():
    """During stance the supporting foot stays put (median < 60 mm/s; walking 1.2 m/s would show)."""
    for a in ACTIONS:
        v = np.concatenate([_support_slide(generate_sequence(a, s, 400, seed=3)) for s in ("S1", "S9")])
        assert len(v) > 100, a
        assert np.median(v) < 60.0, (a, np.median(v))
    # the check can fail: the same walk on a treadmill (root held in place) drags the stance foot
    q = generate_sequence("Walking", "S1", 400, seed=3)
    treadmill = q.joints32 - (q.root_pos[:, None] - q.root_pos[:1, None]) * [1.0, 1.0, 0.0]
    bad = type(q)(**{**q.__dict__, "joints32": treadmill})
    assert np.median(_support_slide(bad)) > 300.0


def test_paths_stay_in_the_capture_area():
    lo, hi = np.array([CAPTURE_AREA[0], CAPTURE_AREA[2]]), np.array([CAPTURE_AREA[1], CAPTURE_AREA[3]])
    for a in ACTIONS:
        for s, seed in (("S1", 0), ("S9", 1), ("S11", 2)):
            xy = generate_sequence(a, s, 500, seed=seed).root_pos[:, :2]
            assert np.all(xy >= lo) and np.all(xy <= hi), (a, s, xy.min(0), xy.max(0))


def test_action_sets():
    assert ACTIONS == ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
                       "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
                       "WalkTogether")                                   # Human3.6M, VideoPose3D spelling
    assert not set(ACTIONS) & set(EXTRA_ACTIONS) and ALL_ACTIONS == ACTIONS + EXTRA_ACTIONS
    assert {"Running", "Jumping", "Boxing"} <= set(EXTRA_ACTIONS)
    # the mix-in only adds excursions: without it the plan is the action's own
    a = generate_sequence("Waiting", "S1", 200, seed=4, mixin=False)
    b = generate_sequence("Waiting", "S1", 200, seed=4, mixin=False)
    np.testing.assert_array_equal(a.joints32, b.joints32)
    differs = [not np.allclose(generate_sequence("Waiting", "S1", 200, seed=k).dofs,
                               generate_sequence("Waiting", "S1", 200, seed=k, mixin=False).dofs) for k in range(8)]
    assert 1 <= sum(differs) <= 7                                    # about half of the sequences


def test_walking_moves_and_stays_in_view():
    q = generate_sequence("Walking", "S5", 500, seed=1)
    speed = np.linalg.norm(np.diff(q.root_pos[:, :2], axis=0), axis=1) * q.fps
    assert 500 < speed.mean() < 2000                            # mm/s
    for cam in h36m_rig("S5"):
        uv = project_to_2d(world_to_camera(q.joints, cam), cam)
        assert uv.min() > 0 and uv[..., 0].max() < cam.width and uv[..., 1].max() < cam.height


def test_determinism():
    for action in ("Boxing", "Phoning", "WalkDog"):
        a = generate_sequence(action, "S6", 60, seed=11)
        b = generate_sequence(action, "S6", 60, seed=11)
        c = generate_sequence(action, "S6", 60, seed=12)
        np.testing.assert_array_equal(a.joints32, b.joints32)
        np.testing.assert_array_equal(a.head_rotation, b.head_rotation)
        assert not np.allclose(a.joints32, c.joints32)
    np.testing.assert_array_equal(random_poses(20, seed=5).joints32, random_poses(20, seed=5).joints32)
    assert not np.allclose(random_poses(20, seed=5).joints32, random_poses(20, seed=6).joints32)


def test_actions_distinguishable():
    """5-NN on root-centred, heading-normalised single frames: train on S1, test on S9 (unseen body, seeds).

    The 15 Human3.6M actions (chance 6.7 %); four 6-s training sequences per
    action, two test sequences. Frames are classified one by one, so the
    walking and standing-still parts that several actions share cost accuracy,
    as on the real dataset.
    """

    def feats(J):
        J = J - J[:, :1]
        r = J[:, 1] - J[:, 4]                                    # left -> right hip
        yaw = np.arctan2(r[:, 1], r[:, 0]) + np.pi / 2           # facing direction
        c, s = np.cos(-yaw), np.sin(-yaw)
        x = c[:, None] * J[..., 0] - s[:, None] * J[..., 1]
        y = s[:, None] * J[..., 0] + c[:, None] * J[..., 1]
        return np.concatenate([x, y, J[..., 2]], axis=1)

    def data(subject, seed, n_seq):
        X, y = [], []
        for i, a in enumerate(ACTIONS):
            f = np.concatenate([feats(generate_sequence(a, subject, 300, seed=(seed, k)).joints)[::3]
                                for k in range(n_seq)])
            X.append(f)
            y += [i] * len(f)
        return np.concatenate(X), np.array(y)

    Xtr, ytr = data("S1", 100, 4)
    Xte, yte = data("S9", 200, 2)
    d = (Xte**2).sum(1)[:, None] + (Xtr**2).sum(1)[None] - 2.0 * Xte @ Xtr.T
    nn = np.argsort(d, axis=1)[:, :5]
    pred = np.array([np.bincount(ytr[n], minlength=len(ACTIONS)).argmax() for n in nn])
    acc = (pred == yte).mean()
    assert len(ACTIONS) == 15 and acc >= 0.60, acc


def test_generate_sequence_validates():
    with pytest.raises(ValueError, match="unknown action"):
        generate_sequence("Flying", "S1", 10)
    with pytest.raises(ValueError, match="n_frames"):
        generate_sequence("Walking", "S1", 0)
    with pytest.raises(ValueError, match="dofs"):
        forward_kinematics(subject_body("S1"), np.zeros((3, 5)))


@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_every_action_generates_one_and_two_frames(action):
    # n_frames >= 1 is the documented contract ("Turning" used to fail at 1 frame: np.gradient of one value)
    for n in (1, 2):
        seq = generate_sequence(action, "S1", n_frames=n, seed=0)
        assert seq.joints.shape == (n, 17, 3) and np.isfinite(seq.joints).all()


# --------------------------------------------------------------------------- COCO keypoints
def _standing(subject="S1"):
    b = subject_body(subject)
    J, G = forward_kinematics(b, neutral_pose()[None], return_frames=True)
    return b, J - [0, 0, J[0, [4, 9], 2].min()], G[:, 15]


def _camera_at(azimuth, height=1600.0, dist=4000.0):
    eye = np.array([dist * np.cos(azimuth), dist * np.sin(azimuth), height])
    return Camera("c", (1000.0, 1000.0), (500.0, 500.0), R=look_at(eye, np.array([0.0, 0.0, 900.0])), T=eye)


def test_coco_keypoints_follow_body_and_head(sequences):
    seqs, _ = sequences
    q = seqs[("Pointing", "S1")]
    kp = q.coco_keypoints()
    assert kp.shape == (T, 17, 3)
    j = q.joints
    for c, h in {5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 11: 4, 12: 1, 13: 5, 14: 2, 15: 6, 16: 3}.items():
        np.testing.assert_array_equal(kp[:, c], j[:, h])
    # the same from 17 or 32 joints
    np.testing.assert_allclose(coco_keypoints_3d(j, q.head_rotation), kp)
    # face points: rigid in the head frame (distances constant), nose in front, left eye on the left
    face = kp[:, :5]
    d = np.linalg.norm(face[:, :, None] - face[:, None], axis=-1)
    assert np.ptp(d, axis=0).max() < 1e-6
    fwd, left = q.head_rotation[:, :, 0], q.head_rotation[:, :, 1]
    eyes_mid = 0.5 * (kp[:, 1] + kp[:, 2])
    assert np.all(np.sum((kp[:, 0] - 0.5 * (kp[:, 3] + kp[:, 4])) * fwd, -1) > 50)
    assert np.all(np.sum((kp[:, 1] - kp[:, 2]) * left, -1) > 40)
    assert np.all(np.linalg.norm(eyes_mid - j[:, 10], axis=-1) < 200)
    # turning the head turns the face: nose direction follows the neck twist
    b = subject_body("S1")
    poses = np.stack([neutral_pose(), neutral_pose(neck_twist=1.0)])
    J, G = forward_kinematics(b, poses, return_frames=True)
    k2 = coco_keypoints_3d(J, G[:, 15])
    nose_dir = [np.arctan2(*(k2[i, 0, :2] - J[i, 14, :2])[::-1]) for i in range(2)]
    assert 0.7 < nose_dir[1] - nose_dir[0] < 1.3
    with pytest.raises(ValueError, match="head_rotation"):
        coco_keypoints_3d(j, np.eye(3))


def test_visibility_from_self_occlusion():
    b, J, H = _standing()
    names = COCO17.joint_names

    def hidden(az):
        v = coco_visibility(J, H, _camera_at(az), b)[0]
        return {n for n, ok in zip(names, v) if not ok}

    assert hidden(0.0) == set()                                             # facing the camera
    assert {"nose", "left_eye", "right_eye"} <= hidden(np.pi)               # seen from behind
    assert not {"left_ear", "right_ear", "left_shoulder", "right_hip"} & hidden(np.pi)
    left_view = hidden(np.pi / 2)                                           # camera on the left
    assert {"right_eye", "right_ear", "right_shoulder", "right_knee", "right_ankle"} <= left_view
    assert not {"left_eye", "left_ear", "left_shoulder", "left_knee", "left_ankle", "nose"} & left_view
    right_view = hidden(-np.pi / 2)
    assert {"left_eye", "left_ear", "left_shoulder", "left_knee"} <= right_view
    # a hand in front of the face hides the nose from the front camera
    J2, G2 = forward_kinematics(b, neutral_pose(r_sh_flex=1.4, r_elbow=2.0, r_sh_rot=0.7, r_sh_abd=0.2)[None],
                                return_frames=True)
    J2 = J2 - [0, 0, J2[0, [4, 9], 2].min()]
    assert not penetration_report(b, J2)["any"][0]
    kp = coco_keypoints_3d(J2, G2[:, 15])[0]
    assert np.linalg.norm(J2[0, 30] - (kp[0] + [100, 0, 0])) < 30       # hand 10 cm in front of the nose
    v = coco_visibility(J2, G2[:, 15], _camera_at(0.0, height=1500.0), b)[0]
    assert not v[0] and v[3]
    # batch == single, 17-joint input accepted
    seq = generate_sequence("Turning", "S1", 40, seed=0)
    cam = h36m_rig("S1")[0]
    vb = seq.visibility(cam)
    assert vb.shape == (40, 17) and vb.dtype == bool
    np.testing.assert_array_equal(vb[5], coco_visibility(seq.joints32[5], seq.head_rotation[5], cam, seq.body))
    assert coco_visibility(seq.joints, seq.head_rotation, cam).shape == (40, 17)


# --------------------------------------------------------------------------- cameras
def test_h36m_rig_is_the_published_rig():
    for s in ("S1", "S11"):
        for mine, ref in zip(h36m_rig(s), h36m_cameras(s)):
            assert mine == ref
    cams = h36m_rig("S2")                       # no published calibration: a rig like the real one
    assert [c.name for c in cams] == [c.name for c in h36m_cameras("S1")]
    for c, ref in zip(cams, h36m_cameras("S1")):
        np.testing.assert_array_equal(c.focal, ref.focal)
        np.testing.assert_array_equal(c.radial, ref.radial)
        assert np.linalg.norm(c.T - ref.T) < 600
    assert h36m_rig("S2") == h36m_rig("S2")
    # a person standing in the stage area is inside all four images of every rig
    _, J, _ = _standing("S8")
    J = J + [0.5 * (synthetic.STAGE_AREA[0] + synthetic.STAGE_AREA[1]),
             0.5 * (synthetic.STAGE_AREA[2] + synthetic.STAGE_AREA[3]), 0]
    for s in ("S1", "S9", "S2"):
        for c in h36m_rig(s):
            uv = project_to_2d(world_to_camera(J, c), c)
            assert uv.min() > 0 and uv[..., 0].max() < c.width and uv[..., 1].max() < c.height


def test_random_camera():
    a, b = random_camera(3), random_camera(3)
    assert a == b
    rng = np.random.default_rng(0)
    target = np.array([300.0, -200.0, 1000.0])
    for _ in range(50):
        c = random_camera(rng, target=target, distance=(3000, 5000), height=(500, 2500), focal=(800, 1200),
                          target_jitter=0.0, roll_deg=0.0)
        horiz = np.linalg.norm(c.T[:2] - target[:2])
        assert 3000 <= horiz <= 5000 and 500 <= c.T[2] <= 2500 and 800 <= c.fx <= 1200
        uv = project_to_2d(world_to_camera(target[None], c), c)[0]
        np.testing.assert_allclose(uv, c.center, atol=1e-6)          # looks at the target
        up = world_to_camera(target[None] + [0, 0, 500], c)[0] - world_to_camera(target[None], c)[0]
        assert up[1] < 0                                              # world up is image up
    c = random_camera(1, azimuth=0.0, distortion=True)
    assert c.has_distortion and c.T[0] > 0
    with pytest.raises(ValueError, match="range"):
        random_camera(0, distance=(5000, 3000))


def test_default_dataset_has_the_15_human36m_actions(tmp_path):
    """The writer's default: every Human3.6M action, VideoPose3D names, read back by the loader."""
    from pose_lab.data.h36m import load_h36m
    from pose_lab.data.synthetic import generate_h36m

    paths = generate_h36m(tmp_path, subjects=["S1"], frames_per_sequence=4, sequences_per_action=2)
    data = load_h36m(paths["3d"], paths["2d"])
    assert sorted(data.actions) == sorted(ACTIONS)
    assert sorted(data.positions_world["S1"]) == sorted(f"{a} {k}" for a in ACTIONS for k in (1, 2))
    with pytest.raises(ValueError, match="actions"):
        generate_h36m(tmp_path, subjects=["S1"], actions=["Dancing"], frames_per_sequence=4)
    extra = generate_h36m(tmp_path / "x", subjects=["S1"], actions=["Jumping"], frames_per_sequence=4)
    assert load_h36m(extra["3d"], extra["2d"]).actions == ["Jumping"]


def test_ensure_h36m_caches_by_settings_and_engine_version(tmp_path):
    import json

    from pose_lab.data.synthetic import ENGINE_VERSION, ensure_h36m

    kw = dict(subjects=["S1"], actions=["Walking"], frames_per_sequence=4, sequences_per_action=1)
    paths = ensure_h36m(tmp_path, **kw)
    stamp = paths["3d"].stat().st_mtime_ns
    assert ensure_h36m(tmp_path, **kw)["3d"].stat().st_mtime_ns == stamp          # same settings: cached
    info = json.loads(paths["info"].read_text())
    assert info["engine_version"] == ENGINE_VERSION and info["actions"] == ["Walking"]
    info["engine_version"] = ENGINE_VERSION - 1                                   # a cache from an older engine
    paths["info"].write_text(json.dumps(info))
    ensure_h36m(tmp_path, **kw)
    assert json.loads(paths["info"].read_text())["engine_version"] == ENGINE_VERSION
    ensure_h36m(tmp_path, **{**kw, "frames_per_sequence": 5})                     # other settings: regenerated
    assert np.load(paths["3d"], allow_pickle=True)["positions_3d"].item()["S1"]["Walking"].shape[0] == 5
    paths["info"].write_text("{not json")                                         # unreadable: regenerated
    assert json.loads(ensure_h36m(tmp_path, **kw)["info"].read_text())["frames_per_sequence"] == 4


def test_varied_camera_rig_is_recorded_and_used_by_the_loader(tmp_path):
    from pose_lab.data.h36m import load_h36m
    from pose_lab.data.synthetic import generate_h36m
    from pose_lab.data.synthetic.cameras import varied_rig

    rig = varied_rig("S9", seed=1)
    heights = [c.T[2] for c in rig]
    assert len(rig) == 4 and min(heights) >= 500 and max(heights) <= 2600
    assert np.ptp(heights) > 100                                     # varied, not one height
    h36m_heights = [c.T[2] for c in h36m_rig("S9")]
    assert not np.allclose(sorted(heights), sorted(h36m_heights))
    assert [c.T.tolist() for c in varied_rig("S9", seed=1)] == [c.T.tolist() for c in rig]   # deterministic
    kw = dict(subjects=["S9"], actions=["Walking"], frames_per_sequence=6, sequences_per_action=1, seed=1)
    paths = generate_h36m(tmp_path, cameras="varied", **kw)
    data = load_h36m(paths["3d"], paths["2d"])            # the rig comes from synthetic_h36m.json
    assert [c.T.tolist() for c in data.cameras["S9"]] == [c.T.tolist() for c in rig]
    w = data.positions_world["S9"]["Walking"]
    for cam, x2d in zip(rig, data.positions_2d["S9"]["Walking"]):
        np.testing.assert_allclose(x2d, project_to_2d(world_to_camera(w, cam), cam), atol=1e-2)
    default = generate_h36m(tmp_path / "h", **kw)          # the default stays the published rig
    assert [c.name for c in load_h36m(default["3d"], default["2d"]).cameras["S9"]] == \
        [c.name for c in h36m_cameras("S9")]
    with pytest.raises(ValueError, match="cameras"):
        generate_h36m(tmp_path / "x", cameras="fisheye", **kw)
    import json

    info = json.loads(paths["info"].read_text())
    info["rig"] = {"S9": [{"name": "broken"}]}
    paths["info"].write_text(json.dumps(info))
    with pytest.raises(ValueError, match="rig"):
        load_h36m(paths["3d"], paths["2d"])


def test_sequence_style_varies_the_subjects_habits_within_bounds():
    from pose_lab.data.synthetic.actions import sequence_style

    base = subject_body("S1").style
    frozen = dict(base)
    styles = [sequence_style(base, np.random.default_rng(k)) for k in range(400)]
    assert base == frozen                                              # the subject's style is not changed
    knee = np.array([s["knee"] for s in styles])
    elbow = np.array([s["elbow"] for s in styles])
    assert knee.min() >= 0 and knee.max() <= 0.9 and 0.15 < (knee > 0.25).mean() < 0.35   # a quarter bent-kneed
    assert elbow.min() >= 0 and elbow.max() <= 1.3 and 0.2 < (elbow > 0.4).mean() < 0.45
    for k in ("speed", "arm_swing", "tempo", "stance", "amplitude"):
        v = np.array([s[k] for s in styles])
        assert v.min() > 0 and v.std() > 0.05, k                     # positive factors that vary
    assert sequence_style(base, np.random.default_rng(3)) == styles[3]  # deterministic in the generator
