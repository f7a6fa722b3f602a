"""Synthetic -> real transfer pieces of pose_lab.data.lifting: pose-space augmentation, pairs from world poses,
real motion-capture test pairs (NumPy only, fast)."""

from pathlib import Path

import numpy as np
import pytest

from pose_lab import geometry, runtime
from pose_lab.data import lifting as L
from pose_lab.skeletons import H36M17

PARENTS = np.array(H36M17.parents)
CHILDREN = np.array([j for j, p in enumerate(H36M17.parents) if p >= 0])


def _world(n=6, seed=0):
    """Plausible-ish world poses: a random tree of 100-400 mm bones hanging from a pelvis 1 m up."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 17, 3))
    out[:, 0] = [1000.0, -500.0, 1000.0] + rng.normal(0, 200, (n, 3))
    for j in range(1, 17):
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        out[:, j] = out[:, PARENTS[j]] + rng.uniform(100, 400, (n, 1)) * d
    return out


def _lengths(w):
    return np.linalg.norm(w[:, CHILDREN] - w[:, PARENTS[CHILDREN]], axis=-1)  # (N, 16), bone of joint 1..16


def _pairwise(w):
    return np.linalg.norm(w[:, :, None] - w[:, None], axis=-1)


def test_public_names():
    for name in ("augment_world_poses", "available_mocap_clips", "lifting_pairs_from_world",
                 "real_mocap_lifting_arrays"):
        assert name in L.__all__ and callable(getattr(L, name))


# --------------------------------------------------------------------------- augment_world_poses


def test_bone_lengths_are_scaled_by_the_factors():
    w = _world()
    out, params = L.augment_world_poses(w, np.random.default_rng(1), bone_scale_sd=0.1, return_params=True)
    f = params["bone_scale"]
    assert f.shape == (len(w), 16) and params["angle"].shape == (len(w),)
    np.testing.assert_allclose(_lengths(out), _lengths(w) * f, rtol=1e-9)
    assert np.all(f >= 0.85) and np.all(f <= 1.15) and f.std() > 0.03  # clipped, but really drawn
    np.testing.assert_allclose(out[:, 0], w[:, 0])  # the pelvis stays


def test_bone_scaling_is_symmetric_left_right():
    w = _world()
    out, params = L.augment_world_poses(w, 3, rotate=False, bone_scale_sd=0.1, return_params=True)
    f = params["bone_scale"]
    for l, r in H36M17.flip_pairs:  # (LHip, RHip), (LKnee, RKnee), ...; the bone of joint j is column j - 1
        np.testing.assert_allclose(f[:, l - 1], f[:, r - 1])  # same factor for a bone and its mirror
        before = _lengths(w)[:, l - 1] / _lengths(w)[:, r - 1]
        after = _lengths(out)[:, l - 1] / _lengths(out)[:, r - 1]
        np.testing.assert_allclose(after, before, rtol=1e-9)
    assert not np.allclose(f[:, 6], f[:, 7])  # different bones (pelvis->spine, spine->thorax): own factors


def test_rotation_only_is_rigid_about_the_vertical_through_the_pelvis():
    w = _world()
    out, params = L.augment_world_poses(w, 5, bone_scale_sd=0.0, return_params=True)
    np.testing.assert_allclose(params["bone_scale"], 1.0)
    np.testing.assert_allclose(_pairwise(out), _pairwise(w), atol=1e-8)
    np.testing.assert_allclose(out[..., 2], w[..., 2])  # heights kept
    np.testing.assert_allclose(out[:, 0], w[:, 0])  # pelvis fixed
    assert np.abs(out - w).max() > 10.0  # it did turn
    c, s = np.cos(params["angle"])[:, None], np.sin(params["angle"])[:, None]
    rel = w[..., :2] - w[:, :1, :2]
    turned = np.stack([c * rel[..., 0] - s * rel[..., 1], s * rel[..., 0] + c * rel[..., 1]], axis=-1)
    np.testing.assert_allclose(out[..., :2] - out[:, :1, :2], turned, atol=1e-8)  # by the reported angle


def test_no_rotation_no_scaling_is_identity():
    w = _world()
    np.testing.assert_array_equal(L.augment_world_poses(w, 0, rotate=False, bone_scale_sd=0.0), w)


def test_same_seed_same_output():
    w = _world()
    a = L.augment_world_poses(w, np.random.default_rng(7))
    b = L.augment_world_poses(w, np.random.default_rng(7))
    c = L.augment_world_poses(w, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(L.augment_world_poses(w, 7), a)  # a seed works as well


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 16, 3)), r"shape \(N, 17, 3\).*\(4, 16, 3\)"),
    (np.zeros((17, 3)), r"shape \(N, 17, 3\)"),
    (np.zeros((2, 17, 2)), r"shape \(N, 17, 3\)"),
])
def test_augment_rejects_wrong_shapes(bad, match):
    with pytest.raises(ValueError, match=match):
        L.augment_world_poses(bad, 0)


def test_augment_rejects_nan_and_bad_settings():
    w = _world()
    w[2, 5, 1] = np.nan
    with pytest.raises(ValueError, match=r"finite.*pose 2"):
        L.augment_world_poses(w, 0)
    with pytest.raises(ValueError, match="bone_scale_sd"):
        L.augment_world_poses(_world(), 0, bone_scale_sd=-0.1)
    with pytest.raises(ValueError, match="bone_scale_range"):
        L.augment_world_poses(_world(), 0, bone_scale_range=(1.1, 1.2))


# --------------------------------------------------------------------------- lifting_pairs_from_world


def test_pairs_from_world_match_the_projection_camera_major():
    cams = geometry.h36m_cameras("S1")
    w = _world(n=5)
    w[..., :2] -= w[:, :1, :2]  # pelvis at the origin of the capture area, in front of every camera
    x2d, y3d = L.lifting_pairs_from_world(w, cams)
    assert x2d.shape == (20, 17, 2) and y3d.shape == (20, 17, 3)
    assert x2d.dtype == np.float32 and y3d.dtype == np.float32
    for c, cam in enumerate(cams):
        cam3d = geometry.world_to_camera(w, cam)
        np.testing.assert_allclose(x2d[5 * c: 5 * c + 5], geometry.project_to_2d(cam3d, cam), rtol=1e-6, atol=1e-3)
        np.testing.assert_allclose(y3d[5 * c: 5 * c + 5], cam3d - cam3d[:, :1], atol=1e-3)
    np.testing.assert_array_equal(y3d[:, 0], 0.0)
    one_x, _ = L.lifting_pairs_from_world(w, cams[2])  # a single camera
    np.testing.assert_array_equal(one_x, x2d[10:15])


def test_pairs_from_world_reject_bad_input():
    cams = geometry.h36m_cameras("S1")
    with pytest.raises(ValueError, match=r"shape \(N, 17, 3\)"):
        L.lifting_pairs_from_world(np.zeros((3, 17, 2)), cams)
    w = _world(n=2)
    w[..., :2] -= w[:, :1, :2]
    w[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        L.lifting_pairs_from_world(w, cams)
    with pytest.raises(ValueError, match="Camera"):
        L.lifting_pairs_from_world(_world(n=2), [])


# --------------------------------------------------------------------------- real motion capture


def _sample_clip():
    p = runtime.repo_root() / "data" / "samples" / "real" / "cmu_mocap" / "131_01.bvh"
    if not p.exists():
        pytest.skip(f"the committed CMU sample {p} is missing")
    return p


def test_real_mocap_lifting_arrays_on_the_committed_sample():
    from pose_lab.data.bvh import load_bvh

    p = _sample_clip()
    x2d, y3d, clips = L.real_mocap_lifting_arrays([p], stride=20)
    frames = len(load_bvh(p).to_h36m17(fps=50)[::20])
    assert x2d.shape == (4 * frames, 17, 2) and y3d.shape == (4 * frames, 17, 3) and clips.shape == (4 * frames,)
    assert np.all(np.isfinite(x2d)) and np.all(np.isfinite(y3d))
    np.testing.assert_array_equal(y3d[:, 0], 0.0)
    assert set(clips.tolist()) == {"131_01"}
    assert np.all((x2d > -200) & (x2d < 1200))  # inside (or near) the 1000 x 1000 Human3.6M images
    # camera-major: the 3D of camera 0 and camera 1 is the same pose seen from two sides (same bone lengths)
    lengths = _lengths(y3d)
    np.testing.assert_allclose(lengths[:frames], lengths[frames: 2 * frames], rtol=1e-9)
    x_str, _, _ = L.real_mocap_lifting_arrays(str(p), stride=20)  # one path as a string
    np.testing.assert_array_equal(x_str, x2d)


def test_real_mocap_lifting_arrays_errors():
    with pytest.raises(ValueError, match="no BVH paths"):
        L.real_mocap_lifting_arrays([])
    with pytest.raises(ValueError, match="stride"):
        L.real_mocap_lifting_arrays([_sample_clip()], stride=0)


def test_available_mocap_clips_dedupes_by_file_name(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b" / "deep"
    b.mkdir(parents=True)
    a.mkdir()
    for d, names in ((a, ("01_01.bvh", "02_01.bvh")), (b, ("02_01.bvh", "00_09.bvh", "notes.txt"))):
        for n in names:
            (d / n).write_text("x")
    clips = L.available_mocap_clips([a, tmp_path / "b", tmp_path / "missing"])
    assert [c.name for c in clips] == ["00_09.bvh", "01_01.bvh", "02_01.bvh"]
    assert clips[2].parent == a.resolve()  # the first folder wins
    found = L.available_mocap_clips()
    assert len({c.name for c in found}) == len(found) and found == sorted(found, key=lambda c: c.name)
    if (runtime.repo_root() / "data" / "samples" / "real" / "cmu_mocap" / "131_01.bvh").exists():
        assert "131_01.bvh" in {c.name for c in found}


def test_real_mocap_retargeted_onto_a_synthetic_body():
    from pose_lab.data.lifting import real_mocap_lifting_arrays
    from pose_lab.data.synthetic import subject_body
    from pose_lab.skeletons import H36M17

    clip = Path(__file__).resolve().parents[1] / "data" / "samples" / "real" / "cmu_mocap" / "131_02.bvh"
    target = subject_body("S9").bone_lengths17()
    x, y, _ = real_mocap_lifting_arrays([clip], stride=40, bone_lengths=target)
    np.testing.assert_allclose(H36M17.bone_lengths(y), np.broadcast_to(target, (len(y), 16)), rtol=1e-9)
    _, y0, _ = real_mocap_lifting_arrays([clip], stride=40)
    assert np.abs(H36M17.bone_lengths(y0) - target).max() > 50      # CMU's own proportions differ


def test_unsupervised_cmu_arrays_are_the_shared_ones_in_float32():
    from pose_lab.evaluation.unsupervised_lifting import cmu_lifting_arrays

    clip = Path(__file__).resolve().parents[1] / "data" / "samples" / "real" / "cmu_mocap" / "131_01.bvh"
    x, y, n = cmu_lifting_arrays([clip], stride=40)
    x0, y0, n0 = L.real_mocap_lifting_arrays([clip], stride=40)
    assert x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(x, x0.astype(np.float32))
    np.testing.assert_array_equal(y, y0.astype(np.float32))
    np.testing.assert_array_equal(n, n0)
