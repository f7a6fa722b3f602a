"""pose_lab.geometry.ops (keras.ops) agrees with pose_lab.geometry (NumPy).

Runs under whichever backend KERAS_BACKEND selects; `.ci/run` runs the unit
tests under both TensorFlow and JAX. Inputs are float32 (JAX's default), so
tolerances are relative to float32 precision.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

from pose_lab import geometry as G  # noqa: E402
from pose_lab.geometry import ops as O  # noqa: E402

from backend_utils import compiled  # noqa: E402


def np_(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def f32(x):
    return np.asarray(x, dtype=np.float32)


@pytest.fixture(scope="module")
def cams():
    return G.h36m_cameras("S11")


@pytest.fixture(scope="module")
def poses():
    rng = np.random.default_rng(0)
    return f32(rng.normal(size=(6, 17, 3)) * 300 + [0.0, 0.0, 900.0])


def test_world_camera_agree(cams, poses):
    for cam in cams:
        ref = G.world_to_camera(poses, cam)
        out = np_(O.world_to_camera(poses, cam))
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=5e-3)
        np.testing.assert_allclose(np_(O.world_to_camera(poses, f32(cam.R), f32(cam.T))), ref, rtol=1e-5, atol=5e-3)
        back = np_(O.camera_to_world(f32(ref), cam))
        np.testing.assert_allclose(back, poses, rtol=1e-5, atol=5e-3)


def test_world_camera_batched_cameras(cams, poses):
    R = f32([c.R for c in cams])  # (4, 3, 3)
    T = f32([c.T for c in cams])
    P = poses[:4]
    ref = np.stack([G.world_to_camera(P[i], cams[i]) for i in range(4)])
    out = np_(O.world_to_camera(P, R, T))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=5e-3)
    np.testing.assert_allclose(np_(O.camera_to_world(f32(ref), R, T)), P, rtol=1e-5, atol=5e-3)


def test_projection_agrees(cams, poses):
    for cam in cams:
        pc = f32(G.world_to_camera(poses, cam))
        np.testing.assert_allclose(np_(O.project_to_2d(pc, cam)), G.project_to_2d(pc, cam), rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(np_(O.project_pinhole(pc, cam)), G.project_pinhole(pc, cam), rtol=1e-5, atol=1e-3)


def test_projection_with_per_sample_intrinsics(cams, poses):
    pc = np.stack([G.world_to_camera(poses[i], cams[i % 4]) for i in range(6)])
    vec = f32([cams[i % 4].intrinsic_vector for i in range(6)])  # (6, 9)
    ref = np.stack([G.project_to_2d(pc[i], cams[i % 4]) for i in range(6)])
    out = np_(O.project_to_2d(f32(pc), vec))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-3)
    pin = np.stack([G.project_pinhole(pc[i], cams[i % 4]) for i in range(6)])
    np.testing.assert_allclose(np_(O.project_pinhole(f32(pc), vec)), pin, rtol=1e-5, atol=1e-3)


def test_projection_optical_axis_and_compiled(cams):
    cam = cams[0]
    P = f32([[0.0, 0.0, 2500.0], [0.0, 0.0, 7000.0]])
    np.testing.assert_allclose(np_(O.project_to_2d(P, cam)), np.tile(cam.center, (2, 1)), atol=1e-4)
    fn = compiled(lambda x: O.project_to_2d(x, cam))
    Q = f32([[300.0, -200.0, 4500.0]])
    np.testing.assert_allclose(np_(fn(Q)), G.project_to_2d(Q, cam), rtol=1e-6, atol=1e-3)


def test_normalize_screen_coordinates_agree():
    X = f32(np.random.default_rng(1).uniform(0, 1000, size=(5, 17, 2)))
    ref = G.normalize_screen_coordinates(X, 1000, 1002)
    out = np_(O.normalize_screen_coordinates(X, 1000, 1002))
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(np_(O.image_coordinates(f32(ref), 1000, 1002)), X, atol=1e-3)


def test_axis_angle_to_matrix_agrees():
    rng = np.random.default_rng(2)
    aa = f32(np.concatenate([rng.normal(size=(20, 3)), np.zeros((1, 3)), [[1e-6, 0, 0]], [[np.pi, 0, 0]]]))
    np.testing.assert_allclose(np_(O.axis_angle_to_matrix(aa)), G.axis_angle_to_matrix(aa), atol=1e-5)
    q = f32(rng.normal(size=(10, 4)))
    np.testing.assert_allclose(np_(O.quaternion_to_matrix(q)), G.quaternion_to_matrix(q), atol=1e-5)


def test_random_rotation_is_rotation_and_seeded():
    R = np_(O.random_rotation(2000, seed=7))
    assert R.shape == (2000, 3, 3)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    assert np.abs(R.mean(axis=0)).max() < 0.07  # Haar: E[R] = 0
    np.testing.assert_array_equal(R, np_(O.random_rotation(2000, seed=7)))
    assert not np.allclose(R, np_(O.random_rotation(2000, seed=8)))
    gen = keras.random.SeedGenerator(3)
    assert not np.allclose(np_(O.random_rotation(4, seed=gen)), np_(O.random_rotation(4, seed=gen)))


def test_procrustes_agrees_and_recovers_similarity(poses):
    rng = np.random.default_rng(3)
    R = G.random_rotation(6, rng=rng)
    s = rng.uniform(0.5, 2.0, size=6)
    t = rng.normal(size=(6, 3)) * 200
    X = poses - poses.mean(axis=-2, keepdims=True)
    Y = f32(s[:, None, None] * np.einsum("bij,bkj->bki", R, X) + t[:, None, :])
    out, (s_hat, R_hat, t_hat) = O.procrustes_align(X, Y, return_transform=True)
    scale = np.abs(Y).max()
    np.testing.assert_allclose(np_(out), Y, atol=2e-5 * scale)
    np.testing.assert_allclose(np_(s_hat), s, rtol=1e-4)
    np.testing.assert_allclose(np_(R_hat), R, atol=1e-4)
    np.testing.assert_allclose(np_(t_hat), t, atol=2e-5 * scale)
    noisy = f32(Y + rng.normal(size=Y.shape) * 30)
    np.testing.assert_allclose(np_(O.procrustes_align(X, noisy)), G.procrustes_align(X, noisy), atol=2e-5 * scale)
    np.testing.assert_allclose(
        np_(O.procrustes_align(X, noisy, scale=False)), G.procrustes_align(X, noisy, scale=False), atol=2e-5 * scale
    )


def test_procrustes_does_not_fix_reflection(poses):
    mirrored = poses * f32([-1.0, 1.0, 1.0])
    out, (_, R, _) = O.procrustes_align(mirrored, poses, return_transform=True)
    np.testing.assert_allclose(np.linalg.det(np_(R)), 1.0, atol=1e-5)
    ref = G.procrustes_align(mirrored, poses)
    np.testing.assert_allclose(np_(out), ref, atol=1e-2)
    assert np.linalg.norm(np_(out) - poses, axis=-1).mean() > 50.0


def test_root_center_agrees(poses):
    np.testing.assert_allclose(np_(O.root_center(poses)), G.root_center(poses), atol=1e-6)
    np.testing.assert_allclose(np_(O.root_center(poses, root=-1)), G.root_center(poses, root=-1), atol=1e-6)


def test_ops_bad_shapes(cams):
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        O.project_to_2d(f32(np.ones((17, 2))), cams[0])
    with pytest.raises(ValueError, match=r"\(\.\.\., 9\)"):
        O.project_to_2d(f32(np.ones((4, 17, 3))), f32(np.ones((4, 8))))
    with pytest.raises(ValueError, match=r"same shape \(\.\.\., J, 3\)"):
        O.procrustes_align(f32(np.ones((2, 17, 3))), f32(np.ones((2, 16, 3))))
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        O.procrustes_align(f32(np.ones((2, 17, 2))), f32(np.ones((2, 17, 2))))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        O.world_to_camera(f32(np.ones((17, 4))), cams[0])
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        O.normalize_screen_coordinates(f32(np.ones((17, 3))), 1000, 1000)
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        O.root_center(f32(np.ones((17, 5))))
