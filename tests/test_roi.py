"""pose_lab.roi (RoIAlign, RoIPool, keypoint targets) and the Keypoint R-CNN losses.

Runs under whichever backend KERAS_BACKEND selects (`.ci/run` runs both).
RoIAlign and RoIPool are compared with independent NumPy loops written here
after torchvision's CPU kernels (``roi_align_kernel.cpp``,
``roi_pool_kernel.cpp``); the losses with closed forms and hand-computed values.
"""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

from pose_lab import losses, roi  # noqa: E402

from backend_utils import compiled  # noqa: E402


def np_(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def fast(fn):
    """``jax.jit(fn)`` under JAX, ``fn`` itself under TensorFlow.

    JAX compiles every eager op on its first use with new shapes (about 1.5 s
    for one new RoIAlign shape, 0.3 s jitted), so the numeric comparisons run
    jitted there; TensorFlow runs them eagerly. Both trace the same
    ``keras.ops`` code; value checks (concrete arrays only) are tested eagerly
    in ``test_bad_input_raises_value_errors_naming_the_argument``.
    """
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def grad(fn, x):
    """``d fn(x) / dx`` for a scalar ``fn``, with the active backend's autodiff."""
    backend = keras.backend.backend()
    x = np.asarray(x, np.float32)
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = fn(xt)
        return np.asarray(tape.gradient(y, xt), np.float64)
    if backend == "jax":
        import jax

        return np.asarray(jax.jit(jax.grad(fn))(x), np.float64)
    pytest.skip(f"no autodiff helper for backend {backend}")


# -----------------------------------------------------------------------------
# independent references (plain loops, torchvision's algorithms)
# -----------------------------------------------------------------------------


def ref_bilinear(fmap, y, x):
    """torchvision ``bilinear_interpolate`` on one (H, W, C) map."""
    h, w = fmap.shape[:2]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(fmap.shape[2])
    y = max(y, 0.0)
    x = max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= h - 1:
        y_high = y_low = h - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= w - 1:
        x_high = x_low = w - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (hy * hx * fmap[y_low, x_low] + hy * lx * fmap[y_low, x_high]
            + ly * hx * fmap[y_high, x_low] + ly * lx * fmap[y_high, x_high])


def ref_roi_align(features, boxes, box_indices, out, scale, sampling_ratio, aligned):
    out_h, out_w = out
    offset = 0.5 if aligned else 0.0
    result = np.zeros((len(boxes), out_h, out_w, features.shape[-1]))
    for k, (box, b) in enumerate(zip(np.asarray(boxes, np.float64), box_indices)):
        start_w, start_h = box[0] * scale - offset, box[1] * scale - offset
        end_w, end_h = box[2] * scale - offset, box[3] * scale - offset
        roi_w, roi_h = end_w - start_w, end_h - start_h
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        for ph in range(out_h):
            for pw in range(out_w):
                acc = np.zeros(features.shape[-1])
                for iy in range(sampling_ratio):
                    yy = start_h + ph * bin_h + (iy + 0.5) * bin_h / sampling_ratio
                    for ix in range(sampling_ratio):
                        xx = start_w + pw * bin_w + (ix + 0.5) * bin_w / sampling_ratio
                        acc += ref_bilinear(features[b], yy, xx)
                result[k, ph, pw] = acc / (sampling_ratio * sampling_ratio)
    return result


def c_round(v):
    return math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)


def ref_roi_pool(features, boxes, box_indices, out, scale):
    """torchvision ``roi_pool_forward_kernel_impl`` (float32 bin arithmetic, as the kernel)."""
    out_h, out_w = out
    height, width = features.shape[1:3]
    f32 = np.float32
    result = np.zeros((len(boxes), out_h, out_w, features.shape[-1]))
    for k, (box, b) in enumerate(zip(np.asarray(boxes, np.float32), box_indices)):
        sw, sh, ew, eh = (c_round(float(f32(v) * f32(scale))) for v in box)
        roi_w, roi_h = max(ew - sw + 1, 1), max(eh - sh + 1, 1)
        bin_h, bin_w = f32(roi_h) / f32(out_h), f32(roi_w) / f32(out_w)
        for ph in range(out_h):
            for pw in range(out_w):
                hs = int(math.floor(f32(ph) * bin_h))
                ws = int(math.floor(f32(pw) * bin_w))
                he = int(math.ceil(f32(ph + 1) * bin_h))
                we = int(math.ceil(f32(pw + 1) * bin_w))
                hs, he = min(max(hs + sh, 0), height), min(max(he + sh, 0), height)
                ws, we = min(max(ws + sw, 0), width), min(max(we + sw, 0), width)
                if he <= hs or we <= ws:
                    continue  # empty bin: 0
                best = np.full(features.shape[-1], -np.inf)
                for h in range(hs, he):
                    for w in range(ws, we):
                        best = np.maximum(best, features[b, h, w])
                result[k, ph, pw] = best
    return result


def random_boxes(rng, img_h, img_w, cell):
    """Boxes of every kind: inside, crossing the border, fully outside, sub-cell, on the edges."""
    boxes = []
    for _ in range(5):  # inside
        x1, y1 = rng.uniform(0, img_w * 0.7), rng.uniform(0, img_h * 0.7)
        boxes.append([x1, y1, x1 + rng.uniform(2, img_w - x1), y1 + rng.uniform(2, img_h - y1)])
    for _ in range(4):  # crossing the border
        x1, y1 = rng.uniform(-0.5 * img_w, 0.5 * img_w), rng.uniform(-0.5 * img_h, 0.5 * img_h)
        boxes.append([x1, y1, x1 + rng.uniform(0.6, 1.2) * img_w, y1 + rng.uniform(0.6, 1.2) * img_h])
    boxes.append([img_w + 3.3 * cell, 1.7, img_w + 9.1 * cell, img_h * 0.6])  # right of the map
    boxes.append([-9.4 * cell, -7.9 * cell, -2.6 * cell, -3.1 * cell])  # above-left of the map
    for _ in range(3):  # sub-pixel in feature cells (w, h < 1 cell)
        x1, y1 = rng.uniform(0, img_w - cell), rng.uniform(0, img_h - cell)
        boxes.append([x1, y1, x1 + rng.uniform(0.05, 0.9) * cell, y1 + rng.uniform(0.05, 0.9) * cell])
    boxes.append([0.0, 0.0, img_w, img_h])  # the whole image
    return np.asarray(boxes, np.float32)


# -----------------------------------------------------------------------------
# RoIAlign
# -----------------------------------------------------------------------------


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("stride", [4, 8])
def test_roi_align_matches_numpy_reference(aligned, stride):
    rng = np.random.default_rng(stride + 10 * aligned)
    batch, height, width, channels = 2, 9, 11, 3
    features = rng.normal(size=(batch, height, width, channels)).astype(np.float32)
    boxes = random_boxes(rng, height * stride, width * stride, stride)
    box_indices = rng.integers(0, batch, size=len(boxes)).astype(np.int32)
    second = ((3, 5), 1) if stride == 4 else ((4, 2), 3)  # besides (7, 7): non-square, sampling ratios 1 to 3
    for out, sr in [((7, 7), 2), second]:
        fn = fast(lambda f, b, i: roi.roi_align(f, b, i, out, 1.0 / stride, sampling_ratio=sr, aligned=aligned))
        got = np_(fn(features, boxes, box_indices))
        want = ref_roi_align(features, boxes, box_indices, out, 1.0 / stride, sr, aligned)
        assert got.shape == (len(boxes),) + out + (channels,)
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=f"out={out} sampling_ratio={sr}")
    # the boxes fully outside the map are zero, the others are not
    assert np.all(got[9:11] == 0) and np.all(np.abs(got[:9]).sum(axis=(1, 2, 3)) > 0)


def test_roi_align_samples_on_the_limits_of_the_map():
    """One sample per box (1x1 output, sampling_ratio 1, aligned=False: at the box centre in cells).

    Centre x = W exactly: still inside, clamped to column W - 1; x = -1 exactly:
    inside, clamped to column 0; x = -1.1: outside, 0.
    """
    rng = np.random.default_rng(12)
    features = rng.normal(size=(1, 6, 11, 2)).astype(np.float32)
    boxes = np.array([[40.0, 8.0, 48.0, 16.0],  # x centre 44 px = 11 cells = W, y centre row 3
                      [-6.0, 8.0, -2.0, 16.0],  # x centre -1 cell
                      [-6.4, 8.0, -2.4, 16.0],  # x centre -1.1 cells
                      [8.0, 22.0, 16.0, 26.0]], np.float32)  # y centre 6 cells = H, x centre col 3
    out = np_(fast(lambda f, b: roi.roi_align(f, b, [0, 0, 0, 0], 1, 0.25, sampling_ratio=1, aligned=False))(
        features, boxes))[:, 0, 0]
    np.testing.assert_allclose(out, [features[0, 3, 10], features[0, 3, 0], [0.0, 0.0], features[0, 5, 3]],
                               atol=1e-6)


def test_roi_align_aligned_flag_shifts_by_half_a_cell():
    """aligned=False samples the box half a cell further right/down than aligned=True."""
    rng = np.random.default_rng(3)
    features = rng.normal(size=(1, 12, 12, 2)).astype(np.float32)
    box = np.array([[9.0, 11.0, 33.0, 29.0]], np.float32)  # stride 4, wider than a cell
    shifted = box + 2.0  # half a cell of stride 4
    a = np_(fast(lambda f, b: roi.roi_align(f, b, [0], 5, 0.25, aligned=True))(features, shifted))
    b = np_(fast(lambda f, b: roi.roi_align(f, b, [0], 5, 0.25, aligned=False))(features, box))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_roi_align_in_compiled_function_equals_eager():
    rng = np.random.default_rng(4)
    features = rng.normal(size=(2, 10, 12, 4)).astype(np.float32)
    boxes = random_boxes(rng, 80, 96, 8)
    idx = np.arange(len(boxes), dtype=np.int32) % 2
    fn = compiled(lambda f, b, i: roi.roi_align(f, b, i, (6, 4), 0.125, sampling_ratio=2))
    np.testing.assert_allclose(np_(fn(features, boxes, idx)),
                               ref_roi_align(features, boxes, idx, (6, 4), 0.125, 2, True), atol=2e-5)


def test_roi_align_of_a_constant_map_is_the_constant():
    features = np.full((2, 8, 10, 3), 2.5, np.float32)
    rng = np.random.default_rng(5)
    boxes = []
    for _ in range(10):
        x1, y1 = rng.uniform(0, 70), rng.uniform(0, 55)
        boxes.append([x1, y1, rng.uniform(x1 + 0.1, 80), rng.uniform(y1 + 0.1, 64)])
    boxes = np.asarray(boxes, np.float32)
    for aligned in (True, False):
        fn = fast(lambda f, b: roi.roi_align(f, b, np.arange(10) % 2, 7, 1 / 8, aligned=aligned))
        out = np_(fn(features, boxes))
        np.testing.assert_allclose(out, 2.5, rtol=1e-6)


def test_roi_align_gradient_reaches_features_with_unit_total():
    """Each output is an average of bilinear weights summing to 1: d sum(out) / d features sums to K*out*out*C."""
    features = np.random.default_rng(6).normal(size=(1, 8, 8, 2)).astype(np.float32)
    boxes = np.array([[4.0, 4.0, 20.0, 28.0], [1.0, 2.0, 30.0, 30.0]], np.float32)
    g = grad(lambda f: ops.sum(roi.roi_align(f, boxes, [0, 0], 3, 0.25)), features)
    assert g.shape == features.shape
    np.testing.assert_allclose(g.sum(), 2 * 3 * 3 * 2, rtol=1e-5)
    assert np.all(g >= 0)


def test_crop_and_resize_differs_from_roi_align_except_with_shifted_boxes():
    """``tf.image.crop_and_resize`` is not RoIAlign, but RoIAlign is a shifted crop_and_resize plus average pooling.

    crop_and_resize samples a box given in [0, 1] coordinates at ``n`` points
    from ``y1 * (H - 1)`` to ``y2 * (H - 1)`` (pixel indices, endpoints
    included), one bilinear sample per output. The naive conversion of a box
    (divide by the image size) therefore samples a different grid. RoIAlign
    with ``aligned=True`` samples ``out * sr`` points, spaced ``bin / sr``, the
    first at ``x1 * scale - 0.5 + bin / sr / 2``: feeding exactly that grid's
    first and last points to crop_and_resize (``n = out * sr``) and averaging
    ``sr x sr`` blocks gives RoIAlign, as long as every sample lies in
    ``[0, H - 1] x [0, W - 1]`` (outside, crop_and_resize extrapolates with 0 where
    RoIAlign clamps in ``[-1, 0]`` and ``[H - 1, H]``).
    """
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a comparison with tf.image; it runs in the TensorFlow pass (importing TF costs ~4 s)")
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(7)
    stride, height, width = 4, 10, 12
    features = rng.normal(size=(1, height, width, 3)).astype(np.float32)
    box = np.array([[9.3, 7.1, 37.9, 30.2]], np.float32)  # inside the map
    out = 5
    ra = {sr: np_(roi.roi_align(features, box, [0], out, 1 / stride, sampling_ratio=sr)) for sr in (1, 2)}

    x1, y1, x2, y2 = box[0]
    naive = tf.image.crop_and_resize(
        features, [[y1 / (height * stride), x1 / (width * stride), y2 / (height * stride), x2 / (width * stride)]],
        [0], (out, out)).numpy()
    assert np.abs(naive - ra[1]).max() > 0.05
    assert np.abs(naive - ra[2]).max() > 0.05

    for sr in (1, 2):
        n = out * sr

        def grid_ends(lo, hi, size):
            start, step = lo / stride - 0.5, (hi - lo) / stride / n
            first, last = start + 0.5 * step, start + (n - 0.5) * step
            assert 0 <= first and last <= size - 1  # the special case's condition
            return first / (size - 1), last / (size - 1)

        ny1, ny2 = grid_ends(y1, y2, height)
        nx1, nx2 = grid_ends(x1, x2, width)
        crop = tf.image.crop_and_resize(features, [[ny1, nx1, ny2, nx2]], [0], (n, n)).numpy()
        pooled = crop.reshape(1, out, sr, out, sr, 3).mean(axis=(2, 4))
        np.testing.assert_allclose(pooled, ra[sr], atol=1e-4)


# -----------------------------------------------------------------------------
# RoIPool
# -----------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [4, 8])
def test_roi_pool_matches_numpy_reference(stride):
    rng = np.random.default_rng(20 + stride)
    batch, height, width = 2, 9, 11
    features = rng.normal(size=(batch, height, width, 3)).astype(np.float32)
    boxes = random_boxes(rng, height * stride, width * stride, stride)
    # box coordinates at half cells: C's round (away from zero) differs from round-half-even
    boxes = np.concatenate([boxes, np.array([[2.5, 6.0, 10.0, 18.0], [-2.0, 2.0, 14.0, 22.0]], np.float32)
                            * (stride / 4)])
    idx = rng.integers(0, batch, size=len(boxes))
    for out in [(7, 7), (2, 3)]:
        got = np_(fast(lambda f, b, i: roi.roi_pool(f, b, i, out, 1.0 / stride))(features, boxes, idx))
        want = ref_roi_pool(features, boxes, idx, out, 1.0 / stride)
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"out={out}")
    assert np.all(got[9:11] == 0)  # fully outside: every bin empty


def test_roi_pool_in_compiled_function():
    rng = np.random.default_rng(8)
    features = rng.normal(size=(1, 6, 7, 2)).astype(np.float32)
    boxes = np.array([[1.0, 2.0, 20.0, 17.0], [-5.0, -3.0, 9.0, 30.0]], np.float32)
    fn = compiled(lambda f, b: roi.roi_pool(f, b, [0, 0], 3, 0.25))
    np.testing.assert_allclose(np_(fn(features, boxes)), ref_roi_pool(features, boxes, [0, 0], (3, 3), 0.25),
                               atol=1e-6)


# -----------------------------------------------------------------------------
# keypoint targets
# -----------------------------------------------------------------------------


def test_keypoint_targets_round_trip_within_half_a_cell():
    rng = np.random.default_rng(9)
    k, j, s = 6, 17, 56
    x1, y1 = rng.uniform(0, 200, size=k), rng.uniform(0, 200, size=k)
    w, h = rng.uniform(5, 150, size=k), rng.uniform(5, 150, size=k)
    rois = np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)
    kp = np.stack([x1[:, None] + rng.uniform(0, 1, (k, j)) * w[:, None],
                   y1[:, None] + rng.uniform(0, 1, (k, j)) * h[:, None]], axis=-1).astype(np.float32)
    kp[:, 0] = rois[:, None, 2:4][:, 0]  # joint 0 exactly on the bottom-right corner
    kp[:, 1] = rois[:, None, 0:2][:, 0]  # joint 1 exactly on the top-left corner
    vis = np.full((k, j), 2)
    index, valid = fast(lambda *a: roi.keypoints_to_roi_targets(*a, s))(kp, vis, rois)
    index, valid = np.asarray(ops.convert_to_numpy(index)), np.asarray(ops.convert_to_numpy(valid))
    assert index.dtype == np.int32 and valid.dtype == bool and valid.all()
    assert np.all(index[:, 0] == (s - 1) * s + (s - 1)) and np.all(index[:, 1] == 0)
    # the formula, in float32 as the kit computes it
    u = np.floor((kp[..., 0] - rois[:, None, 0]) * (np.float32(s) / (rois[:, None, 2] - rois[:, None, 0])))
    v = np.floor((kp[..., 1] - rois[:, None, 1]) * (np.float32(s) / (rois[:, None, 3] - rois[:, None, 1])))
    u[:, 0] = v[:, 0] = s - 1
    np.testing.assert_array_equal(index, v * s + u)

    a = 8.0
    logits = a * np.eye(s * s, dtype=np.float32)[index]  # (k, j, s*s) one-hot
    logits = logits.reshape(k, j, s, s).transpose(0, 2, 3, 1)  # channels-last
    decode = fast(roi.roi_heatmaps_to_keypoints)
    decoded, scores = decode(logits, rois)
    err = np.abs(np_(decoded) - kp)
    half_cell = np.stack([w, h], axis=-1)[:, None, :] / s / 2
    assert np.all(err <= half_cell * (1 + 1e-4) + 1e-4)
    np.testing.assert_allclose(np_(scores), math.exp(a) / (math.exp(a) + s * s - 1), rtol=1e-5)
    # a shift of all logits changes neither the keypoint nor the probability
    decoded2, scores2 = decode(logits - 3.0, rois)
    np.testing.assert_allclose(np_(decoded2), np_(decoded))
    np.testing.assert_allclose(np_(scores2), np_(scores), rtol=1e-5)


def test_keypoint_targets_invisible_and_outside_are_invalid():
    rois = np.array([[10.0, 20.0, 50.0, 40.0]], np.float32)
    kp = np.array([[[30.0, 30.0], [9.99, 30.0], [30.0, 40.01], [50.0, 40.0], [30.0, 30.0], [10.0, 20.0]]],
                  np.float32)
    vis = np.array([[2, 2, 1, 1, 0, 1]])
    index, valid = fast(lambda *a: roi.keypoints_to_roi_targets(*a, (4, 8)))(kp, vis, rois)  # S_h = 4, S_w = 8
    np.testing.assert_array_equal(np.asarray(ops.convert_to_numpy(valid)), [[True, False, False, True, False, True]])
    # (30, 30) -> u = floor(20 * 8 / 40) = 4, v = floor(10 * 4 / 20) = 2 -> 2 * 8 + 4; edge -> (3, 7)
    np.testing.assert_array_equal(np.asarray(ops.convert_to_numpy(index)), [[20, 0, 0, 31, 0, 0]])


def test_keypoint_targets_compile():
    rois = np.array([[10.0, 20.0, 50.0, 40.0]], np.float32)
    kp = np.array([[[30.0, 30.0], [50.0, 40.0]]], np.float32)
    fn = compiled(lambda k_, v_, r_: roi.keypoints_to_roi_targets(k_, v_, r_, 4))
    index, valid = fn(kp, np.array([[1, 1]]), rois)
    np.testing.assert_array_equal(np.asarray(ops.convert_to_numpy(index)), [[2 * 4 + 2, 15]])
    decode = compiled(lambda l_, r_: roi.roi_heatmaps_to_keypoints(l_, r_))
    logits = np.zeros((1, 4, 4, 2), np.float32)
    logits[0, 2, 2, 0] = logits[0, 3, 3, 1] = 5.0
    xy, _ = decode(logits, rois)
    np.testing.assert_allclose(np_(xy), [[[35.0, 32.5], [45.0, 37.5]]], atol=1e-5)


# -----------------------------------------------------------------------------
# losses
# -----------------------------------------------------------------------------


def _one_hot_heatmaps(index, s, a):
    k, j = index.shape
    return (a * np.eye(s * s, dtype=np.float32)[index]).reshape(k, j, s, s).transpose(0, 2, 3, 1)


def test_keypoint_rcnn_loss_closed_form():
    s, a = 7, 3.0
    rng = np.random.default_rng(10)
    index = rng.integers(0, s * s, size=(3, 5))
    valid = rng.uniform(size=(3, 5)) > 0.3
    logits = _one_hot_heatmaps(index, s, a)
    # invalid keypoints get wild logits: they must not count
    wild = rng.normal(scale=50.0, size=logits.shape).astype(np.float32)
    mask = np.broadcast_to(~valid[:, None, None, :], logits.shape)
    logits = np.where(mask, wild, logits)
    got = float(np_(fast(losses.keypoint_rcnn_loss)(logits, index, valid)))
    assert got == pytest.approx(math.log(1 + (s * s - 1) * math.exp(-a)), rel=1e-5)


def test_keypoint_rcnn_loss_without_valid_keypoints_is_zero_and_finite():
    logits = np.random.default_rng(11).normal(size=(2, 5, 5, 3)).astype(np.float32)
    index = np.full((2, 3), 99)  # out of range: must not matter
    valid = np.zeros((2, 3), bool)
    assert float(np_(fast(losses.keypoint_rcnn_loss)(logits, index, valid))) == 0.0
    g = grad(lambda l_: losses.keypoint_rcnn_loss(l_, index, valid), logits)
    assert np.all(np.isfinite(g)) and np.all(g == 0)
    fn = compiled(lambda l_, i_, v_: losses.keypoint_rcnn_loss(l_, i_, v_))
    assert float(np_(fn(logits, index, valid))) == 0.0


def test_smooth_l1_piecewise_and_continuous_gradient():
    beta = 1.0 / 9.0
    d = np.array([-1.0, -0.2, -0.1, -0.01, 0.0, 0.05, 0.1, 0.3, 2.0], np.float32)
    want = np.where(np.abs(d) < beta, 0.5 * d**2 / beta, np.abs(d) - 0.5 * beta)
    per_element = fast(lambda t, p: ops.stack([losses.smooth_l1(t[i], p[i]) for i in range(p.shape[0])]))
    np.testing.assert_allclose(np_(per_element(np.zeros_like(d), d)), want, rtol=1e-5, atol=1e-7)
    assert float(np_(losses.smooth_l1(np.zeros_like(d), d))) == pytest.approx(want.sum(), rel=1e-5)
    # per-box weights and the normaliser (torchvision's RPN: divide by the sampled anchors)
    t = np.zeros((3, 4), np.float32)
    p = np.full((3, 4), 1.0, np.float32)
    got = float(np_(losses.smooth_l1(t, p, weights=np.array([1.0, 0.0, 1.0]), normalizer=8)))
    assert got == pytest.approx(2 * 4 * (1 - 0.5 * beta) / 8, rel=1e-6)
    # value and slope are continuous at |d| = beta: just inside, the slope is |d| / beta = 1 - 1e-3
    eps = 1e-3 * beta
    x = np.array([beta - eps, beta + eps, -(beta - eps), -(beta + eps)], np.float32)
    slopes = grad(lambda p: losses.smooth_l1(np.zeros(4, np.float32), p), x)  # the sum's gradient: per element
    np.testing.assert_allclose(slopes, [1 - 1e-3, 1.0, -(1 - 1e-3), -1.0], atol=1e-4)
    values = np_(per_element(np.zeros(4, np.float32), x))
    assert abs(values[1] - values[0]) <= 2.1 * eps and abs(values[3] - values[2]) <= 2.1 * eps
    # beta = 0: L1
    assert float(np_(losses.smooth_l1(np.zeros(2), np.array([0.5, -2.0]), beta=0.0))) == pytest.approx(2.5)


def test_rpn_objectness_loss_by_hand():
    labels = np.array([1, 0, 1, 0, 1])
    logits = np.array([0.0, 0.0, math.log(3.0), 5.0, -40.0], np.float32)
    mask = np.array([1, 1, 1, 0, 0])  # the last two are not sampled
    # -log(1/2), -log(1/2), -log(3/4)
    want = (math.log(2) + math.log(2) + math.log(4 / 3)) / 3
    assert float(np_(losses.rpn_objectness_loss(labels, logits, mask))) == pytest.approx(want, rel=1e-6)
    assert float(np_(losses.rpn_objectness_loss(labels, logits, np.zeros(5)))) == 0.0


@pytest.mark.parametrize("layout", ["flat", "per_class", "agnostic"])
def test_fast_rcnn_loss_by_hand(layout):
    class_logits = np.array([[0.0, 0.0], [math.log(3.0), 0.0], [9.0, -9.0]], np.float32)
    labels = np.array([1, 0, 1])
    mask = np.array([1.0, 1.0, 0.0])  # RoI 2 is padding
    targets = np.zeros((3, 4), np.float32)
    deltas = np.full((3, 2, 4), 7.0, np.float32)  # class 0's deltas of RoI 0 and everything of RoI 1, 2: ignored
    deltas[0, 1] = [0.1, 0.0, 0.0, 1.0]
    if layout == "flat":
        deltas = deltas.reshape(3, 8)
    elif layout == "agnostic":
        deltas = deltas[:, 1]
    cls, box = fast(losses.fast_rcnn_loss)(class_logits, labels, deltas, targets, mask)
    # cross-entropy: -log(1/2) for RoI 0, -log(3/4) for RoI 1, mean over the 2 sampled RoIs
    assert float(np_(cls)) == pytest.approx((math.log(2) + math.log(4 / 3)) / 2, rel=1e-6)
    # smooth-L1 of RoI 0 (the only positive): 0.1 < 1/9 -> 0.5 * 0.01 * 9 = 0.045; 1.0 -> 1 - 1/18; / 2 sampled
    assert float(np_(box)) == pytest.approx((0.045 + 1 - 1 / 18) / 2, rel=1e-5)


# -----------------------------------------------------------------------------
# bad input
# -----------------------------------------------------------------------------


def test_bad_input_raises_value_errors_naming_the_argument():
    f = np.zeros((1, 8, 8, 2), np.float32)
    box = np.array([[0.0, 0.0, 8.0, 8.0]], np.float32)
    with pytest.raises(ValueError, match=r"features: expected shape \(batch, H, W, C\)"):
        roi.roi_align(f[0], box, [0], 2, 0.25)
    with pytest.raises(ValueError, match=r"boxes: expected shape \(N, 4\)"):
        roi.roi_align(f, np.zeros((1, 5)), [0], 2, 0.25)
    with pytest.raises(ValueError, match=r"boxes: 1 box\(es\) have width or height <= 0 \(first at index 1"):
        roi.roi_align(f, [[0.0, 0.0, 8.0, 8.0], [4.0, 1.0, 4.0, 6.0]], [0, 0], 2, 0.25)
    with pytest.raises(ValueError, match=r"boxes: .*height -1"):
        roi.roi_pool(f, [[0.0, 3.0, 8.0, 2.0]], [0], 2, 0.25)
    with pytest.raises(ValueError, match=r"box_indices: expected integers in \[0, 1\)"):
        roi.roi_align(f, box, [1], 2, 0.25)
    with pytest.raises(ValueError, match=r"box_indices: expected shape \(K,\) = \(1,\)"):
        roi.roi_align(f, box, [0, 0], 2, 0.25)
    with pytest.raises(ValueError, match=r"sampling_ratio: .*adaptive"):
        roi.roi_align(f, box, [0], 2, 0.25, sampling_ratio=0)
    with pytest.raises(ValueError, match=r"output_size"):
        roi.roi_align(f, box, [0], (2, 0), 0.25)
    with pytest.raises(ValueError, match=r"spatial_scale"):
        roi.roi_align(f, box, [0], 2, -0.25)
    kp = np.array([[[2.0, 3.0], [50.0, 3.0]]], np.float32)
    with pytest.raises(ValueError, match=r"keypoints: 1 labelled keypoint\(s\) lie outside the image"):
        roi.keypoints_to_roi_targets(kp, [[2, 2]], box, 4, image_size=(40, 40))
    roi.keypoints_to_roi_targets(kp, [[2, 0]], box, 4, image_size=(40, 40))  # unlabelled: not checked
    with pytest.raises(ValueError, match=r"keypoints: expected shape \(K, J, 2\)"):
        roi.keypoints_to_roi_targets(np.zeros((1, 2, 3)), [[2, 2]], box, 4)
    with pytest.raises(ValueError, match=r"visibility: expected shape \(K, J\) = \(1, 2\)"):
        roi.keypoints_to_roi_targets(kp, [2, 2], box, 4)
    with pytest.raises(ValueError, match=r"rois: .*width or height <= 0"):
        roi.keypoints_to_roi_targets(kp, [[2, 2]], [[5.0, 0.0, 5.0, 1.0]], 4)
    with pytest.raises(ValueError, match=r"heatmap_logits: expected shape \(K, S, S, J\)"):
        roi.roi_heatmaps_to_keypoints(np.zeros((1, 16, 2)), box)
    with pytest.raises(ValueError, match=r"rois: expected shape \(K, 4\) = \(1, 4\)"):
        roi.roi_heatmaps_to_keypoints(np.zeros((1, 4, 4, 2)), np.zeros((2, 4)) + [0, 0, 1, 1])


def test_shape_checks_inside_compiled_functions():
    f = np.zeros((8, 8, 2), np.float32)
    fn = compiled(lambda f_, b_: roi.roi_align(f_, b_, [0], 2, 0.25))
    with pytest.raises(ValueError, match=r"features: expected shape"):
        fn(f, np.array([[0.0, 0.0, 8.0, 8.0]], np.float32))
    # values are not checked while tracing: a degenerate box passes (and stays finite)
    out = compiled(lambda f_, b_: roi.roi_align(f_, b_, [0], 2, 0.25))(f[None], np.array([[4.0, 4.0, 4.0, 4.0]],
                                                                                      np.float32))
    assert np.all(np.isfinite(np_(out)))


def test_no_rois_gives_empty_outputs_and_zero_losses():
    """An image without proposals or people: K = 0 everywhere (TF's eager ``max`` rejects empty tensors)."""
    f = np.zeros((2, 8, 8, 3), np.float32)
    none = np.zeros((0, 4), np.float32)
    idx = np.zeros((0,), np.int32)
    assert tuple(fast(lambda f_, b_, i_: roi.roi_align(f_, b_, i_, 7, 0.25))(f, none, idx).shape) == (0, 7, 7, 3)
    assert tuple(fast(lambda f_, b_, i_: roi.roi_pool(f_, b_, i_, 3, 0.25))(f, none, idx).shape) == (0, 3, 3, 3)
    xy, scores = fast(roi.roi_heatmaps_to_keypoints)(np.zeros((0, 8, 8, 17), np.float32), none)
    assert tuple(xy.shape) == (0, 17, 2) and tuple(scores.shape) == (0, 17)
    loss = fast(losses.keypoint_rcnn_loss)(np.zeros((0, 8, 8, 17), np.float32), np.zeros((0, 17), np.int32),
                                           np.zeros((0, 17), bool))
    assert float(np_(loss)) == 0.0
