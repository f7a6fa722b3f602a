"""Unsupervised lifting (issue 14 part B): geometry, losses, lifter, trainer, evaluation.

Runs under whichever backend KERAS_BACKEND selects (CI: TensorFlow and JAX).
The trainer's losses are checked against a NumPy re-implementation of Chen et
al.'s lift-rotate-reproject chain, under each backend, so TF and JAX agree.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from pose_lab import geometry as G
from pose_lab import losses, metrics
from pose_lab.evaluation import unsupervised_lifting as E
from pose_lab.geometry import ops as O
from pose_lab.models.adversarial import build_mlp_critic
from pose_lab.models.unsupervised_lifting import FixRootDepth, build_depth_lifter
from pose_lab.skeletons import H36M17
from pose_lab.training.unsupervised_lifting import UnsupervisedLifter, unsupervised_lifter_optimizers


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _f32(x):
    return np.asarray(x, dtype=np.float32)


@pytest.fixture(scope="module")
def poses3d():
    """Root-centred 3D poses ``(8, 17, 3)`` of roughly unit size (bones ~0.3-1)."""
    rng = np.random.default_rng(0)
    p = rng.normal(size=(8, 17, 3)) * 0.5
    return _f32(p - p[:, :1])


@pytest.fixture(scope="module")
def poses2d_px():
    rng = np.random.default_rng(1)
    return _f32(rng.normal(size=(8, 17, 2)) * 80 + [500.0, 480.0])


# ------------------------------------------------------------------------------------------- geometry
def _np_view_rotation(az, el):
    ry = G.rotation_about_axis("y", az)
    rx = G.rotation_about_axis("x", el)
    return rx @ ry


def test_view_rotation_matches_numpy_axis_rotations():
    az = np.array([0.0, 0.3, -2.5, math.pi])
    el = np.array([0.0, -0.2, 0.35, 0.1])
    want = np.stack([_np_view_rotation(a, e) for a, e in zip(az, el)])
    np.testing.assert_allclose(_np(O.view_rotation(_f32(az), _f32(el))), want, atol=1e-6)


def test_random_view_rotations_are_orthonormal_proper_and_in_range():
    R, (az, el) = O.random_view_rotation(2000, seed=3, return_angles=True)
    R, az, el = _np(R), _np(az), _np(el)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    assert np.abs(el).max() <= math.radians(20) + 1e-6 and np.abs(el).max() > math.radians(19)
    assert az.min() < -3.0 and az.max() > 3.0  # the full circle
    # the vertical (y) axis of the pose is tilted by the elevation only: R[1, 1] = cos(el)
    np.testing.assert_allclose(R[:, 1, 1], np.cos(el), atol=1e-5)
    np.testing.assert_allclose(R, np.stack([_np_view_rotation(a, e) for a, e in zip(az, el)]), atol=1e-5)


def test_rotation_about_root_preserves_bone_lengths_and_root(poses3d):
    R = O.random_view_rotation(len(poses3d), seed=0)
    shifted = poses3d + _f32([0.3, -0.2, 0.5])  # not root-centred: the root stays where it is
    out = _np(O.rotate_about_root(shifted, R))
    a, b = np.array(H36M17.edges).T
    np.testing.assert_allclose(np.linalg.norm(out[:, a] - out[:, b], axis=-1),
                               np.linalg.norm(shifted[:, a] - shifted[:, b], axis=-1), rtol=1e-5)
    np.testing.assert_allclose(out[:, 0], shifted[:, 0], atol=1e-6)
    # and it is the rotation: R^T undoes it
    back = _np(O.rotate_about_root(out, ops.swapaxes(R, -1, -2)))
    np.testing.assert_allclose(back, shifted, atol=1e-5)


def test_normalize_pose_2d_is_scale_and_translation_free(poses2d_px):
    x, s = O.normalize_pose_2d(poses2d_px)
    x, s = _np(x), _np(s)
    c = poses2d_px - poses2d_px[:, :1]
    np.testing.assert_allclose(s, np.linalg.norm(c[:, 1:], axis=-1).mean(-1), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(x[:, 1:], axis=-1).mean(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(x[:, 0], 0.0, atol=1e-6)
    x2, _ = O.normalize_pose_2d(poses2d_px * 3.0 - 700.0)
    np.testing.assert_allclose(_np(x2), x, atol=1e-5)


@pytest.mark.parametrize("distance", [10.0, 4.0, None])
def test_backproject_then_project_returns_the_input_2d(distance, poses2d_px):
    x, _ = O.normalize_pose_2d(poses2d_px)
    d = np.random.default_rng(2).normal(size=(8, 17)).astype("float32") * 0.7
    d[:, 0] = 0.0
    pose = O.backproject_fixed_depth(x, d, distance)
    np.testing.assert_allclose(_np(pose)[:, 0], 0.0, atol=1e-6)  # root at the origin
    np.testing.assert_allclose(_np(pose)[..., 2], d, atol=1e-5)  # depth offsets kept
    # zero rotation + reprojection: the input 2D exactly
    same = O.project_fixed_depth(O.rotate_about_root(pose, O.view_rotation(0.0, 0.0)), distance)
    np.testing.assert_allclose(_np(same), _np(x), atol=1e-5)


def test_fixed_depth_projection_is_a_pinhole_camera(poses3d):
    # the pose at depth c seen by a pinhole camera with focal c and centre 0 (the kit's NumPy camera)
    c = 10.0
    cam = G.Camera(name="fixed_depth", focal=np.array([c, c]), center=np.zeros(2))
    want = G.project_pinhole(poses3d + [0.0, 0.0, c], cam)
    np.testing.assert_allclose(_np(O.project_fixed_depth(poses3d, c)), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(O.project_fixed_depth(poses3d, None)), poses3d[..., :2])


# ------------------------------------------------------------------------------------------- losses
def test_pose_consistency_losses_closed_form(poses3d):
    t = _f32([0.3, -0.4, 1.2])
    np.testing.assert_allclose(_np(losses.pose_consistency_loss(poses3d, poses3d + t)), float(t @ t), rtol=1e-5)
    per = _np(losses.pose_consistency_loss(poses3d, poses3d + t, reduction="none"))
    assert per.shape == (8,)
    # only joint 5 off by 2: 4 / J per pose
    off = poses3d.copy()
    off[:, 5, 1] += 2.0
    np.testing.assert_allclose(_np(losses.pose_consistency_loss(poses3d, off)), 4.0 / 17, rtol=1e-5)
    s = np.linspace(0.5, 2.0, 8).astype("float32")
    # rotated / s == relifted: zero; rotated = s * (relifted + t): ||t||^2
    np.testing.assert_allclose(_np(losses.lifting_consistency_3d_loss(poses3d * s[:, None, None], poses3d, s)),
                               0.0, atol=1e-10)
    np.testing.assert_allclose(
        _np(losses.lifting_consistency_3d_loss(s[:, None, None] * (poses3d + t), poses3d, s)), t @ t, rtol=1e-5)
    t2 = _f32([0.1, 0.2])
    np.testing.assert_allclose(_np(losses.lifting_cycle_2d_loss(poses3d[..., :2], poses3d[..., :2] - t2)),
                               0.05, rtol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        losses.pose_consistency_loss(poses3d, poses3d[:, :16])


def test_cycle_losses_vanish_for_the_true_depth_under_weak_perspective(poses3d):
    """The loss chain of Chen et al. is consistent: with the true depths every term is zero."""
    x, s0 = O.normalize_pose_2d(poses3d[..., :2])
    Y = _np(poses3d) / _np(s0)[:, None, None]  # the 3D pose in units of its normalised 2D
    Y = _f32(Y)
    R = O.random_view_rotation(len(Y), seed=1)
    Y_rot = O.rotate_about_root(Y, R)
    x_r, s = O.normalize_pose_2d(O.project_fixed_depth(Y_rot, None))
    Y_rr = O.backproject_fixed_depth(x_r, Y_rot[..., 2] / s[:, None], None)  # oracle depth in units of x_r
    assert _np(losses.lifting_consistency_3d_loss(Y_rot, Y_rr, s)) < 1e-10
    x_back, _ = O.normalize_pose_2d(O.project_fixed_depth(
        O.rotate_about_root(Y_rr * s[:, None, None], ops.swapaxes(R, -1, -2)), None))
    assert _np(losses.lifting_cycle_2d_loss(x, x_back)) < 1e-10
    # a flat (zero-depth) lift is not consistent
    flat = O.backproject_fixed_depth(x, ops.zeros(x.shape[:2]), None)
    flat_rot = O.rotate_about_root(flat, R)
    xf, sf = O.normalize_pose_2d(O.project_fixed_depth(flat_rot, None))
    relift = O.backproject_fixed_depth(xf, ops.zeros(xf.shape[:2]), None)
    assert _np(losses.lifting_consistency_3d_loss(flat_rot, relift, sf)) > 1e-2


# ------------------------------------------------------------------------------------------- lifter
def test_depth_lifter_shape_and_fixed_root():
    m = build_depth_lifter(hidden=32, num_blocks=1, root=0)
    x = np.random.default_rng(0).normal(size=(5, 17, 2)).astype("float32")
    d = _np(m(x))
    assert d.shape == (5, 17)
    np.testing.assert_array_equal(d[:, 0], 0.0)
    assert np.abs(d[:, 1:]).max() > 0
    assert FixRootDepth(3)(ops.ones((2, 17))).shape == (2, 17)
    with pytest.raises(ValueError, match="hidden"):
        build_depth_lifter(hidden=0)
    with pytest.raises(ValueError, match="dropout"):
        build_depth_lifter(dropout=1.5)


# ------------------------------------------------------------------------------------------- trainer
class _FixedNoise(UnsupervisedLifter):
    """The same "random" numbers under every backend: ``uniform`` returns a fixed ramp."""

    def uniform(self, shape, minval=0.0, maxval=1.0):
        n = int(shape[0])
        u = np.linspace(0.05, 0.95, n).astype("float32")
        return ops.convert_to_tensor(minval + (maxval - minval) * u)


def _model(cls=UnsupervisedLifter, **kw):
    keras.utils.set_random_seed(0)
    return cls(build_depth_lifter(hidden=32, num_blocks=1), build_mlp_critic((17, 2), hidden=32, num_layers=2),
               seed=0, **kw)


def _reference_losses(model, x2d_px):
    """Chen et al.'s chain in NumPy (the networks called as black boxes), for _FixedNoise's angles."""
    B = len(x2d_px)
    c = model.distance

    def normalize(p):
        p = p - p[:, :1]
        s = np.linalg.norm(p[:, 1:], axis=-1).mean(-1)
        return p / s[:, None, None], s

    def lift(x):
        d = _np(model.generator(_f32(x), training=False))
        z = np.maximum(c + d, 1.0)[..., None]
        return np.concatenate([x * z / c, z - c], -1)

    def project(Y):
        return Y[..., :2] * (c / np.maximum(c + Y[..., 2:], 1e-3))

    u = np.linspace(0.05, 0.95, B)
    az, el = (2 * u - 1) * math.pi, (2 * u - 1) * math.radians(20)
    R = np.stack([_np_view_rotation(a, e) for a, e in zip(az, el)])
    x, _ = normalize(x2d_px.astype(np.float64))
    Y = lift(x)
    Y_rot = np.einsum("bij,bkj->bki", R, Y)
    x_r, s = normalize(project(Y_rot))
    Y_rr = lift(x_r)
    l3d = np.mean(np.sum((Y_rr - Y_rot / s[:, None, None]) ** 2, -1))
    Y_back = np.einsum("bji,bkj->bki", R, Y_rr * s[:, None, None])
    x_back, _ = normalize(project(Y_back))
    l2d = np.mean(np.sum((x_back - x) ** 2, -1))
    f_real = _np(model.critic(_f32(x), training=False)).mean()
    f_fake = _np(model.critic(_f32(x_r), training=False)).mean()
    return {"consistency_3d": l3d, "cycle_2d": l2d, "adversarial": -f_fake, "wasserstein": f_real - f_fake}


def test_losses_match_numpy_reference(poses2d_px):
    m = _model(_FixedNoise, adversarial_weight=0.5, consistency_3d_weight=2.0, cycle_2d_weight=3.0)
    ref = _reference_losses(m, poses2d_px)
    g, extra = m.generator_loss(ops.convert_to_tensor(poses2d_px), training=False)
    for k in ("consistency_3d", "cycle_2d", "adversarial"):
        np.testing.assert_allclose(_np(extra[k]), ref[k], rtol=2e-4, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(_np(g), 0.5 * ref["adversarial"] + 2 * ref["consistency_3d"] + 3 * ref["cycle_2d"],
                               rtol=2e-4, atol=1e-6)
    assert ref["consistency_3d"] > 1e-4 and ref["cycle_2d"] > 1e-4  # an untrained lifter is not consistent


def test_train_step_losses_match_reference_and_no_3d_is_read(poses2d_px):
    # gp_weight=0: the critic loss is the Wasserstein term; the logged losses of the first step are
    # computed on the initial weights (critic first, then the generator with adversarial_weight=0)
    m = _model(_FixedNoise, adversarial_weight=0.0, gp_weight=0.0)
    ref = _reference_losses(m, poses2d_px)
    m.compile(*unsupervised_lifter_optimizers(1e-3, 1e-3))
    before = [_np(v) for v in m.generator.trainable_variables]
    h = m.fit(poses2d_px, epochs=1, batch_size=8, shuffle=False, verbose=0)  # 2D only, one step
    np.testing.assert_allclose(h.history["consistency_3d"][0], ref["consistency_3d"], rtol=1e-3)
    np.testing.assert_allclose(h.history["cycle_2d"][0], ref["cycle_2d"], rtol=1e-3)
    np.testing.assert_allclose(h.history["generator_loss"][0], ref["consistency_3d"] + ref["cycle_2d"], rtol=1e-3)
    np.testing.assert_allclose(h.history["wasserstein"][0], ref["wasserstein"], rtol=1e-3, atol=1e-6)
    assert any(np.abs(_np(v) - b).max() > 0 for v, b in zip(m.generator.trainable_variables, before))
    with pytest.raises(ValueError, match="2D poses only"):  # what fit(x2d, y3d) hands the losses
        m.generator_loss((ops.convert_to_tensor(poses2d_px), ops.zeros((8, 17, 3))))


def test_trains_a_few_steps_and_round_trips_through_keras(tmp_path, poses2d_px):
    m = _model(n_critic=2)
    m.compile(*unsupervised_lifter_optimizers(decay_steps=10, n_critic=2))
    h = m.fit(np.tile(poses2d_px, (2, 1, 1)), epochs=1, batch_size=8, verbose=0)  # 2 steps, 4 critic updates
    for k in ("critic_loss", "generator_loss", "gradient_penalty", "consistency_3d", "cycle_2d"):
        assert np.all(np.isfinite(h.history[k])), k
    assert h.history["gradient_penalty"][-1] > 0
    assert int(m.critic_optimizer.iterations) == 4 and int(m.generator_optimizer.iterations) == 2
    pred = _np(m(poses2d_px))
    assert pred.shape == (8, 17, 3)
    path = tmp_path / "unsupervised_lifter.keras"
    m.save(path)
    m2 = keras.models.load_model(path)
    assert isinstance(m2, UnsupervisedLifter)
    assert (m2.distance, m2.max_elevation_deg, m2.gp_weight, m2.n_critic) == (10.0, 20.0, 10.0, 2)
    np.testing.assert_allclose(_np(m2(poses2d_px)), pred, atol=1e-5)
    assert m2.generator_optimizer is not None and m2.critic_optimizer is not None


def test_trainer_rejects_bad_settings():
    with pytest.raises(ValueError, match="distance"):
        _model(distance=0.5)
    with pytest.raises(ValueError, match="all 0"):
        _model(adversarial_weight=0, consistency_3d_weight=0, cycle_2d_weight=0)
    with pytest.raises(ValueError, match="max_elevation_deg"):
        _model(max_elevation_deg=95)


# ------------------------------------------------------------------------------------------- evaluation
def test_evaluation_is_scale_free_and_detects_depth_errors(poses3d):
    gt_mm = poses3d * 400.0
    x2d = poses3d[..., :2] * 1000.0 + 500.0  # orthographic "pixels"
    m = _model(distance=None)
    # the oracle lifter of these poses (weak perspective): depth = z / 2D scale
    x, s = O.normalize_pose_2d(x2d)
    oracle = _np(x)[..., :1] * 0 + (poses3d[..., 2:] * 1000.0 / _np(s)[:, None, None])
    pred = _np(O.backproject_fixed_depth(x, _f32(oracle[..., 0]), None))
    table = E.unsupervised_errors(pred, gt_mm)
    assert table.average["P-MPJPE"] < 1e-3 and table.average["N-MPJPE"] < 1e-3
    flipped = pred * [1.0, 1.0, -1.0]  # mirrored depth: N-MPJPE sees it; P-MPJPE cannot undo a reflection
    t2 = E.unsupervised_errors(flipped, gt_mm)
    assert t2.average["N-MPJPE"] > 50 and t2.average["P-MPJPE"] > 10
    out = E.predict_unsupervised_3d(m, x2d)
    assert out.shape == (8, 17, 3) and np.allclose(out[:, 0], 0.0)
    with pytest.raises(ValueError, match="lengths differ"):
        E.unsupervised_errors(pred[:4], gt_mm)


# ------------------------------------------------------------------------------------------- mirror check
def _constant_lifter(depth):
    """A depth lifter whose output is ``depth`` (J,) for every input: zero kernel, that bias; FixRootDepth on top."""
    inputs = keras.Input((17, 2))
    head = keras.layers.Dense(17, kernel_initializer="zeros",
                              bias_initializer=keras.initializers.Constant(_f32(depth)), name="head")
    d = FixRootDepth(0, name="depth")(head(keras.layers.Flatten()(inputs)))
    return keras.Model(inputs, d)


def test_mirror_check_flips_a_mirrored_lifter_during_fit_and_the_sign_is_saved(tmp_path):
    from pose_lab.data.synthetic import random_poses
    from pose_lab.training.unsupervised_lifting import MirrorCheck

    pose = random_poses(20, seed=3).joints  # (20, 17, 3) mm, world frame
    pose = pose[np.argmax(np.abs(metrics.mirrored_fraction(pose, reduction="none")))]  # a clear vote
    pose = _f32((pose - pose[0]) * [1.0, -1.0, -1.0])  # a right-handed camera frame: x, y down, z away
    x2d = np.repeat(pose[None, :, :2], 16, axis=0)  # orthographic view, weak perspective below
    scale = np.linalg.norm(pose[1:, :2], axis=-1).mean()
    mirrored_depth = -pose[:, 2] / scale  # every depth reversed: the mirror image of the body
    keras.utils.set_random_seed(0)
    m = UnsupervisedLifter(_constant_lifter(mirrored_depth), build_mlp_critic((17, 2), hidden=16, num_layers=2),
                           distance=None, seed=0)
    m.compile(*unsupervised_lifter_optimizers(1e-12, 1e-12))  # the lifter stays (numerically) where it is
    check = MirrorCheck(x2d)
    assert check.threshold == 0.5
    h = m.fit(x2d, epochs=3, batch_size=8, verbose=0, callbacks=[check])
    # epoch 1 ends with mirrored lifts -> flipped; the flipped sign is what the next epochs train and lift with
    # (under JAX too: the callback's assignment is read back into the training state)
    assert h.history["mirrored"] == [1.0, 0.0, 0.0] and check.flips == [0]
    lifted = _np(m(x2d[:1]))[0]
    np.testing.assert_allclose(lifted, (pose / scale), atol=1e-4)  # the true body, up to scale
    path = tmp_path / "flipped.keras"
    m.save(path)
    np.testing.assert_allclose(_np(keras.models.load_model(path)(x2d[:1]))[0], lifted, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, J, 2\)"):
        MirrorCheck(pose)
    with pytest.raises(ValueError, match="threshold"):
        MirrorCheck(x2d, threshold=1.0)
    bare = UnsupervisedLifter(keras.Sequential([keras.Input((17, 2)), keras.layers.Flatten(), keras.layers.Dense(17)]),
                              build_mlp_critic((17, 2), hidden=16, num_layers=2), seed=0)
    bare.compile(*unsupervised_lifter_optimizers(1e-12, 1e-12))
    with pytest.raises(ValueError, match="FixRootDepth"):
        bare.fit(x2d, epochs=1, batch_size=16, verbose=0, callbacks=[MirrorCheck(x2d)])
