"""Heatmap targets and decoding: closed forms, round trips, weights."""

import numpy as np
import pytest

from pose_lab.heatmaps import decode_heatmaps, encode_heatmaps


def test_gaussian_matches_closed_form():
    kp = np.array([[13.0, 27.0]])  # stride 4 -> (3.25, 6.75)
    hm, w = encode_heatmaps(kp, [2], heatmap_size=(16, 12), sigma=1.5, stride=4)
    assert hm.shape == (16, 12, 1) and hm.dtype == np.float32
    v, u = 7, 4
    expected = np.exp(-((u - 3.25) ** 2 + (v - 6.75) ** 2) / (2 * 1.5**2))
    assert hm[v, u, 0] == pytest.approx(expected, rel=1e-6)
    assert w.tolist() == [1.0]


def test_round_trip_subpixel_random_positions():
    rng = np.random.default_rng(0)
    h, w, J, stride = 64, 48, 17, 4
    # keep the peak off the border so both neighbours exist
    xy = np.stack(
        [rng.uniform(1, w - 2, size=(50, J)), rng.uniform(1, h - 2, size=(50, J))], axis=-1
    )
    hm, wt = encode_heatmaps(xy * stride, None, heatmap_size=(h, w), sigma=2.0, stride=stride)
    assert hm.shape == (50, h, w, J) and wt.shape == (50, J)
    coords, maxvals = decode_heatmaps(hm)
    err = np.abs(coords - xy)
    assert err.max() <= 0.25 + 1e-5
    # argmax alone (no shift) would be off by up to 0.5: the shift must help on average
    assert err.mean() < 0.2
    assert np.all(maxvals > 0.88)  # peak value exp(-(0.5^2+0.5^2)/8) at worst


def test_invisible_and_outside_joints_get_zero_weight():
    kp = np.array([[8.0, 8.0], [8.0, 8.0], [-40.0, 8.0], [8.0, 400.0], [np.nan, 3.0]])
    vis = np.array([2, 0, 2, 1, 2])
    hm, w = encode_heatmaps(kp, vis, heatmap_size=(32, 32), stride=4)
    assert w.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert hm[..., 0].max() == pytest.approx(1.0)
    assert np.all(hm[..., 1:] == 0)


def test_coco_triplets_use_third_column_as_visibility():
    kp = np.array([[8.0, 8.0, 2], [8.0, 8.0, 1], [8.0, 8.0, 0]])
    _, w = encode_heatmaps(kp, heatmap_size=(8, 8), stride=4)
    assert w.tolist() == [1.0, 1.0, 0.0]


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 2\)"):
        encode_heatmaps(np.zeros((17,)), None)
    with pytest.raises(ValueError, match="visibility"):
        encode_heatmaps(np.zeros((17, 2)), np.zeros(16))
    with pytest.raises(ValueError, match="heatmaps"):
        decode_heatmaps(np.zeros((4, 4)))


def test_keras_ops_decoding_matches_numpy():
    pytest.importorskip("keras")
    from keras import ops

    from pose_lab.heatmaps import decode_heatmaps_ops, soft_argmax

    rng = np.random.default_rng(1)
    xy = np.stack([rng.uniform(1, 46, (3, 17)), rng.uniform(1, 62, (3, 17))], -1)
    hm, _ = encode_heatmaps(xy * 4, None, heatmap_size=(64, 48), sigma=2.0, stride=4)
    c_np, m_np = decode_heatmaps(hm)
    c_ops, m_ops = decode_heatmaps_ops(hm)
    np.testing.assert_allclose(ops.convert_to_numpy(c_ops), c_np, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(m_ops), m_np, atol=1e-6)
    # soft-argmax of a sharp Gaussian is its centre (the tails are symmetric
    # away from the border)
    # (log of the Gaussian floors at log(1e-12) ~ 15 heatmap pixels away, so keep
    # the centres that far from the border for this check)
    xy2 = np.stack([rng.uniform(16, 32, (3, 17)), rng.uniform(16, 48, (3, 17))], -1)
    hm2, _ = encode_heatmaps(xy2 * 4, None, heatmap_size=(64, 48), sigma=2.0, stride=4)
    soft = ops.convert_to_numpy(soft_argmax(np.log(hm2 + 1e-12), beta=1.0))
    np.testing.assert_allclose(soft, xy2, atol=1e-2)


def test_tf_encoding_matches_numpy():
    tf = pytest.importorskip("tensorflow")
    from pose_lab.heatmaps import encode_heatmaps_tf

    rng = np.random.default_rng(2)
    kp = rng.uniform(-10, 200, size=(2, 17, 2))
    vis = rng.integers(0, 3, size=(2, 17))
    hm_np, w_np = encode_heatmaps(kp, vis, heatmap_size=(64, 48), sigma=2.0, stride=4)

    @tf.function
    def f(k, v):
        return encode_heatmaps_tf(k, v, heatmap_size=(64, 48), sigma=2.0, stride=4)

    hm_tf, w_tf = f(tf.constant(kp, tf.float32), tf.constant(vis))
    np.testing.assert_allclose(hm_tf.numpy(), hm_np, atol=1e-5)
    np.testing.assert_array_equal(w_tf.numpy(), w_np)


def test_dark_decoding_is_exact_for_gaussians_and_beats_quarter_on_noise():
    """DARK (Zhang et al. 2020): the log of a Gaussian is a quadratic, so one
    Newton step from the arg-max lands on the centre; with noise it still beats
    the quarter-pixel shift."""
    rng = np.random.default_rng(3)
    h, w, J = 32, 24, 17
    xy = np.stack([rng.uniform(1, w - 2, (40, J)), rng.uniform(1, h - 2, (40, J))], -1)
    hm, _ = encode_heatmaps(xy * 4, None, heatmap_size=(h, w), sigma=2.0, stride=4)
    exact, peaks = decode_heatmaps(hm, method="dark", blur=0)
    assert np.abs(exact - xy).max() < 1e-3
    np.testing.assert_array_equal(peaks, decode_heatmaps(hm)[1])
    noisy = np.clip(hm + rng.normal(0, 0.03, hm.shape).astype(np.float32), 0, None)
    err_dark = np.abs(decode_heatmaps(noisy, method="dark", blur=1.0)[0] - xy).mean()
    err_quarter = np.abs(decode_heatmaps(noisy)[0] - xy).mean()
    assert err_dark < 0.5 * err_quarter
    # a flat or single-cell map falls back to the quarter shift (no NaN, no jump)
    flat = np.zeros((8, 8, 2), np.float32)
    flat[3, 4, 1] = 1.0
    c_dark, _ = decode_heatmaps(flat, method="dark")
    np.testing.assert_array_equal(c_dark, decode_heatmaps(flat)[0])
    with pytest.raises(ValueError, match="method"):
        decode_heatmaps(hm, method="median")


def test_nan_cells_do_not_win_the_argmax():
    """A NaN cell (diverged network) must not become the keypoint, in NumPy and in keras.ops."""
    from pose_lab.heatmaps import decode_heatmaps_ops

    hm, _ = encode_heatmaps(np.array([[[20.0, 36.0], [40.0, 8.0]]]), heatmap_size=(16, 16), stride=4)
    clean = hm.copy()
    hm[0, 1, 1, 0] = np.nan  # far from the peak of joint 0 at heatmap (5, 9)
    hm[0, :, :, 1] = np.nan  # joint 1: nothing but NaN
    for method in ("quarter", "dark"):
        coords, vals = decode_heatmaps(hm, method=method)
        ref, ref_vals = decode_heatmaps(clean, method=method)
        np.testing.assert_allclose(coords[0, 0], ref[0, 0], atol=1e-5)
        assert vals[0, 0] == pytest.approx(ref_vals[0, 0]) and np.isnan(vals[0, 1])
    coords_ops, vals_ops = decode_heatmaps_ops(hm)
    np.testing.assert_allclose(np.asarray(coords_ops)[0, 0], decode_heatmaps(clean)[0][0, 0], atol=1e-5)
    assert np.isnan(np.asarray(vals_ops)[0, 1]) and np.all(np.isfinite(np.asarray(coords_ops)))


def test_target_weights_window_is_the_crop_and_mirror_symmetric():
    # a 96 x 128 crop (stride 4 -> 24 x 32 heatmap); weight 1 exactly on the crop's pixel centres, 0 <= x <= 95,
    # the window of the coordinate targets; the old window [-2, 94) gave x = -1.5 weight 1 and x = 94.5 weight 0
    from pose_lab.heatmaps import encode_heatmaps_tf

    W, H, s = 96, 128, 4
    xs = np.array([-1.5, -0.01, 0.0, 0.4, 47.3, 93.9, 94.5, 95.0, 95.01, 96.5])
    expected = ((xs >= 0) & (xs <= W - 1)).astype(np.float32)
    kp = np.stack([xs, np.full_like(xs, 60.0)], axis=-1)
    mirrored = np.stack([W - 1 - xs, np.full_like(xs, 60.0)], axis=-1)
    for encode in (encode_heatmaps, lambda k, **kw: [np.asarray(a) for a in encode_heatmaps_tf(k, **kw)]):
        _, w = encode(kp, heatmap_size=(H // s, W // s), stride=s)
        _, w_flip = encode(mirrored, heatmap_size=(H // s, W // s), stride=s)
        np.testing.assert_array_equal(w, expected)
        np.testing.assert_array_equal(w_flip, w)
        ys = np.stack([np.full_like(xs, 40.0), xs + 16.0], axis=-1)  # y window [0, 127]
        _, wy = encode(ys, heatmap_size=(H // s, W // s), stride=s)
        np.testing.assert_array_equal(wy, ((xs + 16.0 >= 0) & (xs + 16.0 <= H - 1)).astype(np.float32))
