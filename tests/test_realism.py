"""Realism metrics for generated 3D poses (pose_lab.metrics.realism) and the engine's joint limits."""

import numpy as np
import pytest

from pose_lab import metrics
from pose_lab.data.synthetic import random_poses
from pose_lab.data.synthetic.limits import joint_limits
from pose_lab.skeletons import H36M17


@pytest.fixture(scope="module")
def real():
    return random_poses(400, seed=0).joints  # (400, 17, 3) mm, within the joint limits


def test_asymmetry_and_ratio_error_closed_forms(real):
    # the synthetic body is symmetric: ~0; stretching the right thigh by 10% gives 2 * 0.1 / 2.1 on that pair
    assert metrics.bone_asymmetry(real) < 1e-6
    p = real.copy()
    knee, hip = H36M17.index("RKnee"), H36M17.index("RHip")
    below = [H36M17.index("RKnee"), H36M17.index("RFoot")]
    shift = 0.1 * (p[:, knee] - p[:, hip])
    p[:, below] += shift[:, None]
    per_pair = metrics.bone_asymmetry(p, reduction="none")
    np.testing.assert_allclose(per_pair.max(axis=1), 0.1 / 1.05, rtol=1e-6)
    assert metrics.bone_length_ratio_error(real, real) < 1e-6
    assert metrics.bone_length_ratio_error(p, real) > 1e-3
    # proportions are scale-free
    assert metrics.bone_length_ratio_error(2.0 * real, real) < 1e-6


def test_joint_limits_from_the_engine(real):
    lim = joint_limits()
    assert set(lim) == {"left_knee", "right_knee", "left_elbow", "right_elbow"}
    np.testing.assert_allclose(lim["left_knee"]["range"], np.deg2rad([0.0, 150.0]))
    assert metrics.joint_limit_violations(real, lim) == 0.0
    # mirror the shank about the thigh line: the knee bends forwards (negative signed flexion)
    p = real.copy()
    hip, knee, foot = (H36M17.index(n) for n in ("LHip", "LKnee", "LFoot"))
    ang = metrics.bend_angles(p, {"k": lim["left_knee"]})["k"]
    bent = ang > np.deg2rad(5.0)  # the default tolerance: mirrored, these bend forwards by more than it
    u = p[:, knee] - p[:, hip]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = p[:, foot] - p[:, knee]
    p[:, foot] = p[:, knee] + 2 * (v * u).sum(1, keepdims=True) * u - v
    viol = metrics.joint_limit_violations(p, lim, reduction="none")["left_knee"]
    np.testing.assert_array_equal(viol, bent)
    np.testing.assert_allclose(metrics.joint_limit_violations(p, lim), bent.mean() / 4)
    with pytest.raises(ValueError, match="h36m17"):
        joint_limits("coco17")


def test_bend_angle_of_a_right_angle():
    p = np.zeros((1, 3, 3))
    p[0, 1] = [0, 0, -1.0]
    p[0, 2] = [0, 1.0, -1.0]
    np.testing.assert_allclose(metrics.bend_angles(p, {"a": {"joints": (0, 1, 2), "range": (0, 1)}})["a"],
                               [np.pi / 2])
    axis = {"a": {"joints": (0, 1, 2), "range": (0, 1), "axis": (0, 2)}}
    # (b - a) x (c - b) = (0,0,-1) x (0,1,0) = (1, 0, 0); axis c - a = (0, 1, -1): dot 0 -> unsigned
    np.testing.assert_allclose(metrics.bend_angles(p, axis)["a"], [np.pi / 2])


def test_average_pairwise_distance():
    p = np.zeros((3, 2, 3))
    p[1, :, 0] = 3.0
    p[2, :, 0] = 6.0
    assert metrics.average_pairwise_distance(p) == pytest.approx((3 + 6 + 3) / 3)
    assert metrics.average_pairwise_distance(np.repeat(p[:1], 5, 0)) == 0.0


def test_frechet_distance_matches_scipy_closed_form():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    c1, c2 = a @ a.T + np.eye(4), b @ b.T + 0.5 * np.eye(4)
    m1, m2 = rng.normal(size=4), rng.normal(size=4)
    expect = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(linalg.sqrtm(c1 @ c2)))
    assert metrics.frechet_distance(m1, c1, m2, c2) == pytest.approx(expect, rel=1e-8)
    # 1-D Gaussians: (m1 - m2)^2 + (s1 - s2)^2
    assert metrics.frechet_distance([1.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(4.0 + 1.0)
    assert metrics.frechet_distance(m1, c1, m1, c1) == pytest.approx(0.0, abs=1e-6)


def test_pose_features_are_scale_free_and_frechet_sees_noise(real):
    f = metrics.pose_features(real)
    assert f.shape == (len(real), 16 * 3 + 16 * 17 // 2)
    np.testing.assert_allclose(metrics.pose_features(3.0 * real), f, rtol=1e-6, atol=1e-9)
    a, b = real[:200], real[200:]
    noisy = b + np.random.default_rng(1).normal(0, 40, b.shape)
    assert metrics.frechet_pose_distance(a, noisy) > 2 * metrics.frechet_pose_distance(a, b)  # 2.0 vs 0.8


def test_two_sample_classifier_accuracy(real):
    a, b = real[:200], real[200:]
    same = metrics.two_sample_classifier_accuracy(a, b, seed=0)
    assert 0.3 <= same <= 0.7
    shifted = b + np.random.default_rng(2).normal(0, 60, b.shape)
    assert metrics.two_sample_classifier_accuracy(a, shifted, seed=0) >= 0.9
    with pytest.raises(ValueError, match="expected shape"):
        metrics.two_sample_classifier_accuracy(a[:, :16], b)


def test_mirrored_fraction_closed_form_and_invariances(real):
    # a hand-built body, world frame z up: hips along x (left at +x), thorax above the pelvis, so the body's
    # front is (LHip - RHip) x up = -y; both knees 0.1 and the nose 0.02 in front of their lines: vote = 0.22
    p = np.zeros((1, 17, 3))
    idx = {n: H36M17.index(n) for n in H36M17.joint_names}
    for name, xyz in {"LHip": (0.1, 0, 0), "RHip": (-0.1, 0, 0), "LKnee": (0.1, -0.1, -0.45),
                      "RKnee": (-0.1, -0.1, -0.45), "LFoot": (0.1, 0, -0.9), "RFoot": (-0.1, 0, -0.9),
                      "Spine": (0, 0, 0.25), "Thorax": (0, 0, 0.5), "Neck/Nose": (0, -0.02, 0.6),
                      "Head": (0, 0, 0.7)}.items():
        p[0, idx[name]] = xyz
    np.testing.assert_allclose(metrics.mirrored_fraction(p, reduction="none"), [0.22], atol=1e-12)
    assert metrics.mirrored_fraction(p) == 0.0
    mirror = p * [-1.0, 1.0, 1.0]  # any reflection turns the handedness
    np.testing.assert_allclose(metrics.mirrored_fraction(mirror, reduction="none"), [-0.22], atol=1e-12)
    assert metrics.mirrored_fraction(mirror) == 1.0
    # the engine's random bodies (any angle within the joint limits) are judged right-handed but for a few
    # extreme ones (3.5 %); their depth-negated copies exactly the other way; whatever the view, position, scale
    share = metrics.mirrored_fraction(real)
    assert share < 0.05
    assert metrics.mirrored_fraction(real * [1.0, 1.0, -1.0]) == pytest.approx(1.0 - share, abs=1e-12)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))  # a proper rotation
    moved = 2.5 * real @ q.T + [100.0, -40.0, 7.0]
    np.testing.assert_allclose(metrics.mirrored_fraction(moved, reduction="none"),
                               2.5 * metrics.mirrored_fraction(real, reduction="none"), rtol=1e-9)
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        metrics.mirrored_fraction(real[:, :16])
    with pytest.raises(ValueError, match="reduction"):
        metrics.mirrored_fraction(real, reduction="sum")
