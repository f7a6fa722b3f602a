"""pose_lab.boxes: closed forms, round trips, hand-made matchings and independent NMS references."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from pose_lab import boxes as B

from backend_utils import compiled


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _random_boxes(rng, n, extent=100.0, min_size=2.0, max_size=40.0):
    xy = rng.uniform(0, extent, size=(n, 2))
    wh = rng.uniform(min_size, max_size, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def _iou_np(a, b):
    """IoU of two single boxes, written out independently."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------
# area and IoU
# --------------------------------------------------------------------------
def test_box_area_and_iou_closed_forms():
    a = np.array([[0, 0, 4, 4]], np.float32)
    others = np.array([
        [2, 2, 6, 6],      # quarter overlap: 4 / (16 + 16 - 4)
        [10, 10, 12, 12],  # disjoint
        [1, 1, 3, 3],      # contained: 4 / 16
        [0, 0, 4, 4],      # identical
        [4, 0, 8, 4],      # touching edge: no area in common
        [2, -1, 3, 9],     # a bar through it: 1 * 4 / (16 + 10 - 4)
    ], np.float32)
    np.testing.assert_allclose(_np(B.box_area(others)), [16, 4, 4, 16, 16, 10])
    iou = _np(B.pairwise_iou(a, others))
    assert iou.shape == (1, 6)
    np.testing.assert_allclose(iou[0], [4 / 28, 0, 0.25, 1, 0, 4 / 22], rtol=1e-6)
    # symmetric, and two zero-size (padding) boxes give 0, not NaN
    np.testing.assert_allclose(_np(B.pairwise_iou(others, a))[:, 0], iou[0], rtol=1e-6)
    zeros = np.zeros((2, 4), np.float32)
    np.testing.assert_array_equal(_np(B.pairwise_iou(zeros, zeros)), np.zeros((2, 2)))


def test_pairwise_iou_matches_elementwise_formula_and_batches():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    want = np.array([[_iou_np(x, y) for y in b] for x in a])
    np.testing.assert_allclose(_np(B.pairwise_iou(a, b)), want, rtol=1e-5, atol=1e-7)
    batched = _np(B.pairwise_iou(np.stack([a, a[::-1]]), np.stack([b, b])))
    assert batched.shape == (2, 7, 5)
    np.testing.assert_allclose(batched[1], want[::-1], rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------
# box transform
# --------------------------------------------------------------------------
def test_encode_closed_form_with_both_weight_sets():
    gt = np.array([[1, 0, 3, 2], [0, 0, 4, 8]], np.float32)  # centre (2, 1) size 2x2; centre (2, 4) size 4x8
    prop = np.array([[0, 0, 2, 2], [0, 0, 2, 2]], np.float32)  # centre (1, 1), size 2x2
    expected = np.array([[0.5, 0.0, 0.0, 0.0], [0.5, 1.5, math.log(2), math.log(4)]])
    np.testing.assert_allclose(_np(B.encode_boxes(gt, prop)), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_np(B.encode_boxes(gt, prop, B.ROI_BOX_WEIGHTS)),
                               expected * np.array([10, 10, 5, 5]), rtol=1e-6, atol=1e-6)
    assert B.RPN_BOX_WEIGHTS == (1.0, 1.0, 1.0, 1.0) and B.ROI_BOX_WEIGHTS == (10.0, 10.0, 5.0, 5.0)


@pytest.mark.parametrize("weights", [B.RPN_BOX_WEIGHTS, B.ROI_BOX_WEIGHTS])
def test_encode_decode_round_trip(weights):
    rng = np.random.default_rng(1)
    # sizes 10..300 px: size ratios stay below the clip's 62.5
    gt = _random_boxes(rng, 200, extent=800, min_size=10, max_size=300)
    prop = _random_boxes(rng, 200, extent=800, min_size=10, max_size=300)
    deltas = B.encode_boxes(gt, prop, weights)
    np.testing.assert_allclose(_np(B.decode_boxes(deltas, prop, weights)), gt, atol=2e-3)
    # and the other way: decode then encode returns the deltas
    d = rng.normal(scale=0.5, size=(200, 4)).astype(np.float32)
    np.testing.assert_allclose(_np(B.encode_boxes(B.decode_boxes(d, prop, weights), prop, weights)), d, atol=1e-4)
    # class-specific deltas (N, K, 4) broadcast against proposals[:, None, :]
    dk = np.stack([d, -d], axis=1)
    out = _np(B.decode_boxes(dk, prop[:, None, :], weights))
    assert out.shape == (200, 2, 4)
    np.testing.assert_allclose(out[:, 0], _np(B.decode_boxes(d, prop, weights)), rtol=1e-6)


def test_decode_clip_prevents_overflow():
    prop = np.array([[0, 0, 16, 16]], np.float32)
    huge = np.array([[0, 0, 200.0, 200.0]], np.float32)
    out = _np(B.decode_boxes(huge, prop))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0, 2] - out[0, 0], 1000.0, rtol=1e-5)  # 16 * exp(log(1000/16))
    assert B.BBOX_XFORM_CLIP == pytest.approx(math.log(1000 / 16))
    # only large growth is clipped, shrinking is not
    small = _np(B.decode_boxes(np.array([[0, 0, -2.0, -2.0]], np.float32), prop))
    np.testing.assert_allclose(small[0, 2] - small[0, 0], 16 * math.exp(-2), rtol=1e-5)
    with np.errstate(over="ignore"):
        unclipped = _np(B.decode_boxes(huge, prop, clip=None))
    assert not np.all(np.isfinite(unclipped))  # float32 exp(200) overflows


def test_clip_to_image_and_valid_mask():
    boxes = np.array([[-5, 10, 700, 90], [650, 500, 700, 600], [10, 10, 10.5, 30]], np.float32)
    clipped = _np(B.clip_boxes_to_image(boxes, height=480, width=640))
    np.testing.assert_allclose(clipped, [[0, 10, 640, 90], [640, 480, 640, 480], [10, 10, 10.5, 30]])
    np.testing.assert_array_equal(_np(B.valid_box_mask(clipped)), [True, False, True])
    np.testing.assert_array_equal(_np(B.valid_box_mask(clipped, min_size=1.0)), [True, False, False])


# --------------------------------------------------------------------------
# anchors
# --------------------------------------------------------------------------
def test_anchor_base_shapes_order_and_shifts_by_hand():
    a = _np(B.generate_anchors((2, 3), stride=16, sizes=(32, 64), aspect_ratios=(0.5, 1.0, 2.0)))
    assert a.shape == (2 * 3 * 6, 4)
    # cell (0, 0): ratio-major, then size; r = h / w, w = s / sqrt(r), h = s * sqrt(r), rounded halves
    # r=0.5, s=32: w = 45.25, h = 22.63 -> half sizes 22.63, 11.31 -> (23, 11)
    np.testing.assert_array_equal(a[0], [-23, -11, 23, 11])
    np.testing.assert_array_equal(a[1], [-45, -23, 45, 23])    # r=0.5, s=64: halves 45.25, 22.63
    np.testing.assert_array_equal(a[2], [-16, -16, 16, 16])    # r=1, s=32
    np.testing.assert_array_equal(a[5], [-23, -45, 23, 45])    # r=2, s=64
    # cell (row 1, col 2) is shifted by (2 * 16, 1 * 16)
    np.testing.assert_array_equal(a[(1 * 3 + 2) * 6 + 2], [32 - 16, 16 - 16, 32 + 16, 16 + 16])
    # every anchor of a cell is centred on the cell corner; sizes and ratios hold up to rounding
    cx, cy = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    cells = np.repeat(np.array([(x * 16, y * 16) for y in range(2) for x in range(3)]), 6, axis=0)
    np.testing.assert_array_equal(np.stack([cx, cy], 1), cells)
    np.testing.assert_allclose(np.sqrt(w * h), np.tile([32, 64, 32, 64, 32, 64], 6), rtol=0.03)
    np.testing.assert_allclose(h / w, np.tile([0.5, 0.5, 1, 1, 2, 2], 6), rtol=0.06)
    # Detectron2-style cell offset 0.5 moves the centres to the cell middles
    a5 = _np(B.generate_anchors((2, 3), stride=(8, 16), sizes=(32,), aspect_ratios=(1.0,), offset=0.5))
    np.testing.assert_array_equal(a5[4], [1.5 * 16 - 16, 1.5 * 8 - 16, 1.5 * 16 + 16, 1.5 * 8 + 16])


def test_multilevel_anchor_counts():
    strides = (4, 8, 16, 32, 64)
    sizes = ((32,), (64,), (128,), (256,), (512,))
    anchors, counts = B.multilevel_anchors((96, 160), strides, sizes)
    expected = tuple(math.ceil(96 / s) * math.ceil(160 / s) * 3 for s in strides)
    assert counts == expected == (24 * 40 * 3, 12 * 20 * 3, 6 * 10 * 3, 3 * 5 * 3, 2 * 3 * 3)
    anchors = _np(anchors)
    assert anchors.shape == (sum(expected), 4)
    # level 2 starts after level 1; its first anchor (r=0.5, s=64) sits at the origin
    np.testing.assert_array_equal(anchors[counts[0]], [-45, -23, 45, 23])
    # per-level ratios and explicit feature shapes
    anchors, counts = B.multilevel_anchors((64, 64), (16, 32), ((32, 48), (64,)), ((1.0,), (0.5, 2.0)),
                                           feature_shapes=((5, 4), (2, 2)))
    assert counts == (5 * 4 * 2, 2 * 2 * 2) and _np(anchors).shape == (48, 4)


# --------------------------------------------------------------------------
# matching
# --------------------------------------------------------------------------
# anchors x gt; gt 1's best IoU (0.25) is shared by anchors 2 and 3
IOU = np.array([
    [0.90, 0.10, 0.00],  # a0: clear match to gt 0
    [0.50, 0.20, 0.00],  # a1: between the RPN thresholds
    [0.10, 0.25, 0.00],  # a2: low, but a best anchor of gt 1 (its own best gt is 1)
    [0.60, 0.25, 0.00],  # a3: a best anchor of gt 1 too, but its own best gt is 0
    [0.00, 0.00, 0.00],  # a4: background
    [0.80, 0.00, 0.80],  # a5: tie between gt 0 and gt 2 -> the lower index
], np.float32)


def test_match_rpn_roi_and_low_quality():
    np.testing.assert_array_equal(_np(B.match_boxes(IOU, 0.7, 0.3, False)), [0, -2, -1, -2, -1, 0])
    # low-quality matches: a2 -> gt 1, a3 -> its argmax gt 0 (as torchvision's Matcher)
    np.testing.assert_array_equal(_np(B.match_boxes(IOU, 0.7, 0.3, True)), [0, -2, 1, 0, -1, 0])
    # RoI head: one threshold, no ignored band
    np.testing.assert_array_equal(_np(B.match_boxes(IOU, 0.5, 0.5, False)), [0, 0, -1, 0, -1, 0])
    assert (B.BELOW_LOW_THRESHOLD, B.BETWEEN_THRESHOLDS) == (-1, -2)


def test_match_zero_padded_and_unreachable_gt():
    empty = _np(B.match_boxes(np.zeros((6, 0), np.float32), 0.7, 0.3, True))
    np.testing.assert_array_equal(empty, [-1] * 6)
    assert empty.dtype == np.int32
    # a padded gt column is ignored even where it would win, also for low-quality matches
    padded = IOU.copy()
    padded[:, 2] = 0.95  # gt 2: padding
    np.testing.assert_array_equal(_np(B.match_boxes(padded, 0.7, 0.3, True, gt_valid=[True, True, False])),
                                  [0, -2, 1, 0, -1, 0])
    np.testing.assert_array_equal(_np(B.match_boxes(padded, 0.7, 0.3, True, gt_valid=[False] * 3)), [-1] * 6)
    # a gt that overlaps no anchor gives no low-quality matches; torchvision's Matcher would
    # match every anchor with IoU 0 to it, turning the background anchor a4 positive
    far = IOU.copy()
    far[:, 2] = 0.0
    np.testing.assert_array_equal(_np(B.match_boxes(far, 0.7, 0.3, True)), [0, -2, 1, 0, -1, 0])
    # batches: (B, N, M) with per-image gt_valid
    valid = np.array([[True, True, False], [False] * 3])
    np.testing.assert_array_equal(_np(B.match_boxes(np.stack([padded, padded]), 0.7, 0.3, True, gt_valid=valid)),
                                  [[0, -2, 1, 0, -1, 0], [-1] * 6])


# --------------------------------------------------------------------------
# balanced sampling
# --------------------------------------------------------------------------
def _counts(masks):
    pos, neg = (_np(m) for m in masks)
    assert not np.any(pos & neg)
    return int(pos.sum(-1)), int(neg.sum(-1))


def test_sampler_counts_fill_and_ignore():
    rng = np.random.default_rng(2)
    labels = rng.choice([-2, -1, 0, 3], size=1000, p=[0.2, 0.6, 0.1, 0.1]).astype(np.int32)
    pos, neg = (_np(m) for m in B.sample_balanced(labels, 256, 0.5, seed=1))
    assert (pos.sum(), neg.sum()) == (128, 128)
    assert np.all(labels[pos] >= 0) and np.all(labels[neg] == -1)
    # RoI head setting
    assert _counts(B.sample_balanced(labels, 512, 0.25, seed=1)) == (128, 384)
    # too few positives: negatives fill the batch
    few = np.full(1000, -1, np.int32)
    few[[3, 50, 700]] = [0, 1, 0]
    few[900:] = -2
    pos, neg = (_np(m) for m in B.sample_balanced(few, 256, 0.5, seed=3))
    assert (pos.sum(), neg.sum()) == (3, 253) and pos[[3, 50, 700]].all() and not neg[900:].any()
    # too few of both: everything available, ignored never
    tiny = np.full(1000, -2, np.int32)
    tiny[[0, 10, 20, 30]] = [0, -1, -1, 2]
    pos, neg = (_np(m) for m in B.sample_balanced(tiny, 256, 0.5, seed=0))
    np.testing.assert_array_equal(pos, tiny >= 0)
    np.testing.assert_array_equal(neg, tiny == -1)
    # per-row counts for a batch (B, N)
    pos, neg = (_np(m) for m in B.sample_balanced(np.stack([few, tiny]), 256, 0.5, seed=4))
    np.testing.assert_array_equal(pos.sum(-1), [3, 2])
    np.testing.assert_array_equal(neg.sum(-1), [253, 2])


def test_sampler_determinism_and_randomness():
    labels = np.where(np.arange(1000) % 3 == 0, 0, -1).astype(np.int32)
    first = [_np(m) for m in B.sample_balanced(labels, 256, 0.5, seed=7)]
    again = [_np(m) for m in B.sample_balanced(labels, 256, 0.5, seed=7)]
    other = [_np(m) for m in B.sample_balanced(labels, 256, 0.5, seed=8)]
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    gen = keras.random.SeedGenerator(0)
    a, b = (_np(B.sample_balanced(labels, 256, 0.5, seed=gen)[0]) for _ in range(2))
    assert a.sum() == b.sum() == 128 and not np.array_equal(a, b)


def test_mask_to_indices():
    idx, n = B.mask_to_indices(np.array([[False, True, True, False], [True, False, False, False]]), 3)
    np.testing.assert_array_equal(_np(idx), [[1, 2, -1], [0, -1, -1]])
    np.testing.assert_array_equal(_np(n), [2, 1])


# --------------------------------------------------------------------------
# non-maximum suppression
# --------------------------------------------------------------------------
def _greedy_nms_np(boxes, scores, max_out, iou_thr, score_thr=-np.inf, groups=None):
    """Textbook greedy NMS: visit by decreasing score (lower index on ties), keep unless overlapped."""
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if len(keep) == max_out:
            break
        if scores[i] <= score_thr:
            continue
        if all(_iou_np(boxes[i], boxes[j]) <= iou_thr or (groups is not None and groups[i] != groups[j])
               for j in keep):
            keep.append(i)
    return keep


def _valid(result):
    idx, n = (_np(r) for r in result)
    n = int(n)
    assert np.all(idx[n:] == -1) and np.all(idx[:n] >= 0)
    return idx[:n].tolist()


@pytest.mark.parametrize("seed, iou_thr, score_thr, max_out, decimals", [
    (0, 0.5, -np.inf, 100, None), (1, 0.3, -np.inf, 100, None), (2, 0.7, 0.2, 100, None),
    (3, 0.5, -np.inf, 7, None), (4, 0.0, 0.5, 100, None), (5, 0.5, 0.3, 100, 1),  # many equal scores
])
def test_nms_matches_numpy_greedy_and_tensorflow(seed, iou_thr, score_thr, max_out, decimals):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 120)
    scores = rng.uniform(size=120).astype(np.float32)
    if decimals is not None:
        scores = np.round(scores, decimals)
    got = _valid(B.non_max_suppression(boxes, scores, max_out, iou_thr, score_thr))
    assert got == _greedy_nms_np(boxes, scores, max_out, iou_thr, score_thr)
    yx = boxes[:, [1, 0, 3, 2]]
    want = tf.image.non_max_suppression(yx, scores, max_out, iou_thr, score_thr).numpy().tolist()
    assert got == want


def test_nms_long_suppression_chain_ties_and_empty():
    # 120 boxes sliding right by 1 px with falling scores: IoU 0.6 with the next box, 1/3 with the
    # one after, so every decision flips the next one (the longest chain the fixed point can meet)
    n = 120
    x = np.arange(n, dtype=np.float32)
    chain = np.stack([x, np.zeros(n), x + 4, np.full(n, 4.0)], 1).astype(np.float32)
    scores = np.linspace(1, 0.5, n).astype(np.float32)
    got = _valid(B.non_max_suppression(chain, scores, 100, 0.5))
    assert got == _greedy_nms_np(chain, scores, 100, 0.5) == list(range(0, n, 2))
    # equal scores: lower index first
    assert _valid(B.non_max_suppression(chain, np.ones(n, np.float32), 100, 0.5)) == list(range(0, n, 2))
    assert _valid(B.non_max_suppression(chain[::-1], np.ones(n, np.float32), 100, 0.5)) == list(range(0, n, 2))
    idx, num = B.non_max_suppression(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), 4)
    np.testing.assert_array_equal(_np(idx), [-1] * 4)
    assert int(_np(num)) == 0


def test_batched_nms_suppresses_within_groups_only():
    rng = np.random.default_rng(5)
    boxes = _random_boxes(rng, 120)
    scores = rng.uniform(size=120).astype(np.float32)
    groups = rng.integers(0, 3, size=120).astype(np.int32)
    got = _valid(B.batched_non_max_suppression(boxes, scores, groups, 100, 0.4))
    assert got == _greedy_nms_np(boxes, scores, 100, 0.4, groups=groups)
    assert got != _greedy_nms_np(boxes, scores, 100, 0.4)  # the groups matter here


def test_compiled_nms_matching_and_sampling():
    rng = np.random.default_rng(6)
    boxes = _random_boxes(rng, 120)
    scores = rng.uniform(size=120).astype(np.float32)
    gt = _random_boxes(rng, 3)

    def step(boxes, scores, gt, gt_valid):
        idx, n = B.non_max_suppression(boxes, scores, 100, 0.5)
        matches = B.match_boxes(B.pairwise_iou(boxes, gt), 0.7, 0.3, True, gt_valid=gt_valid)
        pos, neg = B.sample_balanced(matches, 16, 0.25, seed=0)
        deltas = B.encode_boxes(ops.take(gt, ops.maximum(matches, 0), axis=0), boxes)
        return idx, n, matches, pos, neg, B.decode_boxes(deltas, boxes)

    valid = np.array([True, True, False])
    eager = [_np(v) for v in step(boxes, scores, gt, valid)]
    traced = [_np(v) for v in compiled(step)(boxes, scores, gt, valid)]
    for e, c in zip(eager, traced):
        np.testing.assert_allclose(c, e, rtol=1e-5, atol=1e-4)
    assert _valid(traced[:2]) == _greedy_nms_np(boxes, scores, 100, 0.5)
    assert traced[3].sum() <= 4 and traced[3].sum() + traced[4].sum() == 16


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------
GOOD = np.array([[0, 0, 4, 4], [1, 1, 5, 6]], np.float32)


@pytest.mark.parametrize("call, match", [
    (lambda: B.pairwise_iou(GOOD[:, :3], GOOD), r"boxes_a: expected shape \(\.\.\., N, 4\).*got \(2, 3\)"),
    (lambda: B.pairwise_iou(GOOD, GOOD[0]), r"boxes_b: expected shape \(\.\.\., N, 4\).*got \(4,\)"),
    (lambda: B.box_area(np.ones((2, 5))), r"boxes: expected shape \(\.\.\., 4\).*got \(2, 5\)"),
    (lambda: B.pairwise_iou([[0, 0, 4, 4], [3, 0, 1, 4]], GOOD), r"boxes_a: 1 box\(es\) have x2 < x1.*index 1"),
    (lambda: B.pairwise_iou(GOOD, [[0, 0, np.nan, 4]]), r"boxes_b: 1 box\(es\) contain NaN.*index 0"),
    (lambda: B.encode_boxes(GOOD, [[0, 0, 4, 4], [2, 2, 2, 5]]), r"proposals: 1 box\(es\) have width or height <= 0"),
    (lambda: B.encode_boxes([[0, 0, 0, 0], [0, 0, 1, 1]], GOOD), r"reference_boxes: .*width or height <= 0.*index 0"),
    (lambda: B.encode_boxes(GOOD, GOOD, weights=(1, 1, 1)), r"weights: expected 4 positive numbers"),
    (lambda: B.decode_boxes(np.ones((2, 3)), GOOD), r"deltas: expected shape \(\.\.\., 4\)"),
    (lambda: B.decode_boxes([[0, np.inf, 0, 0]], GOOD[:1]), r"deltas: 1 delta\(s\) contain NaN or inf"),
    (lambda: B.generate_anchors((4, 4), 16, sizes=(), aspect_ratios=(1,)), r"sizes: expected a non-empty"),
    (lambda: B.generate_anchors((4, 0), 16, sizes=(32,)), r"feature_shape: expected a positive int"),
    (lambda: B.multilevel_anchors((64, 64), (8, 16), ((32,),)), r"sizes_per_level: expected one sequence"),
    (lambda: B.match_boxes(IOU, 0.3, 0.7), r"low_threshold: expected <= high_threshold"),
    (lambda: B.match_boxes(IOU[0]), r"iou_matrix: expected shape \(N, M\)"),
    (lambda: B.match_boxes(np.where(IOU > 0.5, np.nan, IOU)),
     r"iou_matrix: 4 entry\(ies\) contain NaN.*index \(0, 0\)"),
    (lambda: B.match_boxes(IOU, gt_valid=[True]), r"gt_valid: expected shape \(\.\.\., 3\)"),
    (lambda: B.sample_balanced(np.zeros(5, np.float32)), r"labels: expected integer match labels"),
    (lambda: B.sample_balanced(np.zeros(5, np.int32), positive_fraction=1.5), r"positive_fraction: .*\[0, 1\]"),
    (lambda: B.non_max_suppression(GOOD, [0.5], 2), r"scores: expected shape \(2,\)"),
    (lambda: B.non_max_suppression(GOOD[None], [0.5, 0.1], 2), r"boxes: expected shape \(N, 4\)"),
    (lambda: B.non_max_suppression(GOOD, [0.5, np.nan], 2), r"scores: 1 score\(s\) contain NaN.*index 1"),
    (lambda: B.non_max_suppression(GOOD, [0.5, 0.1], 0), r"max_output_size: expected a positive int"),
    (lambda: B.non_max_suppression(GOOD, [0.5, 0.1], 2, iou_threshold=1.5), r"iou_threshold: .*\[0, 1\]"),
])
def test_bad_input_names_argument_and_expectation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_eager_tensors_are_checked_and_compiled_code_checks_shapes_only():
    with pytest.raises(ValueError, match="proposals: 1 box"):
        B.encode_boxes(ops.convert_to_tensor(GOOD), ops.convert_to_tensor([[0, 0, 4, 4], [2, 2, 2, 5]]))
    # inside a compiled function the values are unknown: no value check, a finite result
    bad = np.array([[0, 0, 4, 4], [2, 2, 2, 5]], np.float32)
    out = _np(compiled(lambda g, p: B.encode_boxes(g, p))(GOOD, bad))
    assert np.all(np.isfinite(out))
    with pytest.raises(ValueError, match=r"proposals: expected shape \(\.\.\., 4\)"):
        compiled(lambda g, p: B.encode_boxes(g, p))(GOOD, np.ones((2, 3), np.float32))
