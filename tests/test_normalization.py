"""NormStats (pose_lab.data.normalization): the kit's one z-score, against plain NumPy."""

import numpy as np
import pytest

from pose_lab.data.normalization import NormStats

J = 17


def _poses(n=200, seed=0, root_offset=True):
    """2D pixels (not root-centred) and 3D mm (a camera-frame body, not root-centred)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(500, 80, (n, J, 2)) + rng.normal(0, 5, (1, J, 2)) * np.arange(J)[:, None]
    y = rng.normal(0, 200, (n, J, 3)) * rng.uniform(0.5, 2, (1, J, 3))
    if root_offset:
        y += rng.normal([0, 0, 4000], 300, (n, 1, 3))     # the body stands ~4 m from the camera
    return x, y


def _reference(x, y, root, drop_2d, drop_3d):
    """Independent computation: centre on the root, delete the dropped joints, mean and std per coordinate."""
    y = y - y[:, root:root + 1]
    keep_2d = [j for j in range(J) if not (drop_2d and j == root)]
    keep_3d = [j for j in range(J) if not (drop_3d and j == root)]
    xs, ys = x[:, keep_2d], y[:, keep_3d]
    return xs.mean(0), xs.std(0), ys.mean(0), ys.std(0), keep_2d, keep_3d


@pytest.mark.parametrize("root, drop_2d", [(0, False), (0, True), (5, False), (5, True)])
def test_statistics_and_z_scores_match_numpy(root, drop_2d):
    x, y = _poses()
    st = NormStats.from_arrays(x, y, root=root, drop_root_2d=drop_2d)
    m2, s2, m3, s3, keep_2d, keep_3d = _reference(x, y, root, drop_2d, True)
    assert st.mean_2d.shape == ((16, 2) if drop_2d else (17, 2)) and st.mean_3d.shape == (16, 3)
    assert (st.root, st.drop_root_2d, st.drop_root_3d, st.num_joints) == (root, drop_2d, True, J)
    for got, want in ((st.mean_2d, m2), (st.std_2d, s2), (st.mean_3d, m3), (st.std_3d, s3)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    xn, yn = st.normalize_2d(x), st.normalize_3d(y)
    np.testing.assert_allclose(xn, (x[:, keep_2d] - m2) / s2, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(yn, ((y - y[:, root:root + 1])[:, keep_3d] - m3) / s3, rtol=1e-12, atol=1e-9)
    # the kept joints alone are accepted too (already dropped / centred)
    np.testing.assert_allclose(st.normalize_2d(x[:, keep_2d]), xn, atol=1e-9)
    np.testing.assert_allclose(st.normalize_3d((y - y[:, root:root + 1])[:, keep_3d]), yn, atol=1e-9)


def test_constant_coordinates_get_std_one():
    x, y = _poses(50)
    x[:, 3, 1] = 7.0
    st = NormStats.from_arrays(x, y)
    assert st.std_2d[3, 1] == 1.0 and st.std_2d[3, 0] != 1.0
    np.testing.assert_allclose(st.normalize_2d(x)[:, 3, 1], 0.0)
    # the 3D root is always zero after centring: kept (drop_root_3d=False) it gets std 1, mean 0
    keep = NormStats.from_arrays(x, y, drop_root_3d=False)
    assert keep.mean_3d.shape == (17, 3)
    np.testing.assert_array_equal(keep.std_3d[0], 1.0)
    np.testing.assert_array_equal(keep.mean_3d[0], 0.0)


@pytest.mark.parametrize("root", [0, 6])
def test_round_trips_return_root_centred_poses_with_a_zero_root(root):
    x, y = _poses(seed=1)
    for drop_2d in (False, True):
        st = NormStats.from_arrays(x, y, root=root, drop_root_2d=drop_2d)
        centred = y - y[:, root:root + 1]
        back = st.denormalize_3d(st.normalize_3d(y))
        assert back.shape == (len(y), J, 3)
        np.testing.assert_array_equal(back[:, root], 0.0)
        np.testing.assert_allclose(back, centred, atol=1e-6)
        np.testing.assert_allclose(st.denormalize_3d(st.normalize_3d(y), include_root=False),
                                   np.delete(centred, root, axis=1), atol=1e-6)
        back_2d = st.denormalize_2d(st.normalize_2d(x))
        np.testing.assert_allclose(back_2d, np.delete(x, root, axis=1) if drop_2d else x, atol=1e-6)
        # normalize / denormalize dispatch on the last axis
        np.testing.assert_allclose(st.denormalize(st.normalize(y)), centred, atol=1e-6)
        np.testing.assert_allclose(st.normalize(x), st.normalize_2d(x), atol=0)


def test_flat_in_flat_out():
    x, y = _poses(30, seed=2)
    for drop_2d in (False, True):
        st = NormStats.from_arrays(x, y, drop_root_2d=drop_2d)
        j2 = 16 if drop_2d else 17
        xn, yn = st.normalize_2d(x), st.normalize_3d(y)
        flat_x = st.normalize_2d(x.reshape(30, -1))
        assert flat_x.shape == (30, 2 * j2)
        np.testing.assert_allclose(flat_x, xn.reshape(30, -1), atol=1e-12)
        flat_y = st.normalize_3d(y.reshape(30, -1))
        assert flat_y.shape == (30, 48)
        np.testing.assert_allclose(flat_y, yn.reshape(30, -1), atol=1e-12)
        back = st.denormalize_3d(yn.reshape(30, -1))
        assert back.shape == (30, 51)
        np.testing.assert_allclose(back.reshape(30, J, 3), st.denormalize_3d(yn), atol=1e-12)
        np.testing.assert_allclose(st.denormalize(flat_x), st.denormalize_2d(xn).reshape(30, -1), atol=1e-9)
        # leading axes are free: (B, T, J, D)
        assert st.normalize_3d(y.reshape(5, 6, J, 3)).shape == (5, 6, 16, 3)


def test_save_and_load_round_trip_with_flags(tmp_path):
    x, y = _poses(40, seed=3)
    st = NormStats.from_arrays(x, y, root=4, drop_root_2d=True)
    path = st.save(tmp_path / "stats.npz")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]       # atomic: no temp left
    back = NormStats.load(path)
    for k in ("mean_2d", "std_2d", "mean_3d", "std_3d"):
        np.testing.assert_array_equal(getattr(back, k), getattr(st, k))
    assert (back.root, back.drop_root_2d, back.drop_root_3d) == (4, True, True)
    assert isinstance(back.root, int) and isinstance(back.drop_root_2d, bool)
    np.testing.assert_array_equal(back.denormalize_3d(back.normalize_3d(y)), st.denormalize_3d(st.normalize_3d(y)))


def test_loading_an_old_file_without_flags_gives_the_martinez_layout(tmp_path):
    x, y = _poses(40, seed=4)
    st = NormStats.from_arrays(x, y)
    old = tmp_path / "old_stats.npz"
    np.savez(old, mean_2d=st.mean_2d, std_2d=st.std_2d, mean_3d=st.mean_3d, std_3d=st.std_3d)
    back = NormStats.load(old)
    assert (back.root, back.drop_root_2d, back.drop_root_3d) == (0, False, True)
    np.testing.assert_array_equal(back.mean_3d, st.mean_3d)
    with pytest.raises(FileNotFoundError, match="missing_stats.npz"):
        NormStats.load(tmp_path / "missing_stats.npz")
    partial = tmp_path / "partial.npz"
    np.savez(partial, mean_2d=st.mean_2d, std_2d=st.std_2d)
    with pytest.raises(ValueError, match=r"partial\.npz: missing key\(s\) \['mean_3d', 'std_3d'\]"):
        NormStats.load(partial)


def test_coerce_reads_to_dict_and_old_crossmodal_dicts():
    x, y = _poses(40, seed=5)
    st = NormStats.from_arrays(x, y, root=2, drop_root_2d=True)
    assert NormStats.coerce(st) is st
    again = NormStats.coerce(st.to_dict())
    assert (again.root, again.drop_root_2d, again.drop_root_3d) == (2, True, True)
    np.testing.assert_allclose(again.normalize_3d(y), st.normalize_3d(y), atol=1e-12)
    # the cross-modal VAE's old config: four arrays, 16 x 2 and 16 x 3, no flags -> the 2D root was dropped
    m2, s2, m3, s3, _, _ = _reference(x, y, 0, True, True)
    old = {"mean_2d": m2.astype(np.float32).tolist(), "std_2d": s2.astype(np.float32).tolist(),
           "mean_3d": m3.astype(np.float32).tolist(), "std_3d": s3.astype(np.float32).tolist()}
    inferred = NormStats.coerce(old)
    assert (inferred.root, inferred.drop_root_2d, inferred.drop_root_3d) == (0, True, True)
    assert inferred.normalize_2d(x).shape == (40, 16, 2)
    # an old Martinez dict (17 x 2 + 16 x 3) keeps the 2D root
    martinez = NormStats.from_arrays(x, y).to_dict()
    for flag in ("root", "drop_root_2d", "drop_root_3d"):
        martinez.pop(flag)
    assert NormStats.coerce(martinez).drop_root_2d is False
    with pytest.raises(ValueError, match=r"stats: missing key\(s\) \['std_3d'\]"):
        NormStats.coerce({k: v for k, v in old.items() if k != "std_3d"})
    with pytest.raises(ValueError, match="stats: expected a NormStats"):
        NormStats.coerce((m3, s3))


def test_errors_name_the_argument_and_the_expected_shape():
    x, y = _poses(20, seed=6)
    st = NormStats.from_arrays(x, y)
    with pytest.raises(ValueError, match=r"inputs_2d \(2D poses, pixels\): expected shape \(\.\.\., 17, 2\), got \(20, 15, 2\)"):
        st.normalize_2d(x[:, :15])
    with pytest.raises(ValueError, match=r"targets_3d \(3D poses, mm\): expected shape \(\.\.\., 16\|17, 3\), got \(20, 14, 3\)"):
        st.normalize_3d(y[:, :14])
    with pytest.raises(ValueError, match=r"normalised 3D: expected shape \(\.\.\., 16, 3\), got \(20, 17, 3\)"):
        st.denormalize_3d(y)
    with pytest.raises(ValueError, match=r"targets_3d \(3D poses, mm\): expected shape \(\.\.\., 17, 3\), got \(20, 16, 3\)"):
        NormStats.from_arrays(x, y[:, 1:])
    bad = x.copy()
    bad[3, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"inputs_2d.*1 pose\(s\) contain NaN.*index 3"):
        NormStats.from_arrays(bad, y)
    with pytest.raises(ValueError, match="need at least one pose"):
        NormStats.from_arrays(x[:0], y[:0])
    with pytest.raises(ValueError, match=r"root: expected an index in \[0, 17\), got 17"):
        NormStats.from_arrays(x, y, root=17)
    with pytest.raises(ValueError, match="normalize: expected"):
        st.normalize(np.zeros((3, 17, 4)))


def test_inconsistent_statistics_are_rejected():
    z2, z3 = np.zeros((17, 2)), np.zeros((16, 3))
    with pytest.raises(ValueError, match=r"2D statistics describe 16 joints and the 3D ones 17"):
        NormStats(np.zeros((16, 2)), np.ones((16, 2)), z3, np.ones((16, 3)))          # 16 x 2 without the flag
    with pytest.raises(ValueError, match="2D statistics describe 17 joints and the 3D ones 18"):
        NormStats(z2, np.ones((17, 2)), np.zeros((17, 3)), np.ones((17, 3)))
    with pytest.raises(ValueError, match="std_3d must be positive"):
        NormStats(z2, np.ones((17, 2)), z3, np.zeros((16, 3)))
    with pytest.raises(ValueError, match="std_2d must be positive"):
        NormStats(z2, -np.ones((17, 2)), z3, np.ones((16, 3)))
    with pytest.raises(ValueError, match=r"NormStats\.mean_3d: expected shape \(J, 3\), got \(16, 2\)"):
        NormStats(z2, np.ones((17, 2)), np.zeros((16, 2)), np.ones((16, 3)))
    with pytest.raises(ValueError, match="mean_2d and std_2d must have the same shape"):
        NormStats(z2, np.ones((16, 2)), z3, np.ones((16, 3)))
    with pytest.raises(ValueError, match="NaN"):
        NormStats(np.full((17, 2), np.nan), np.ones((17, 2)), z3, np.ones((16, 3)))
    with pytest.raises(ValueError, match=r"NormStats\.root: expected an index in \[0, 17\), got 20"):
        NormStats(z2, np.ones((17, 2)), z3, np.ones((16, 3)), root=20)
