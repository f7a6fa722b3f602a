"""Tests for pose_lab.metrics against closed forms, independent implementations
(a loop-based Umeyama, pycocotools' own OKS) and invariance properties."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from pose_lab import metrics
from pose_lab.skeletons import COCO_OKS_SIGMAS

REAL_COCO = (
    Path(__file__).resolve().parents[1].parent
    / "shared" / "data" / "coco_val2017_mini" / "person_keypoints_val2017_mini.json"
)


# ---------------------------------------------------------------------------
# independent references (deliberately written differently from the library)
# ---------------------------------------------------------------------------
def random_rotation(rng) -> np.ndarray:
    """A random proper rotation from the QR decomposition of a Gaussian matrix."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def umeyama(x: np.ndarray, y: np.ndarray, allow_reflection: bool = False):
    """Umeyama (1991): c, R, t minimising sum ||y_i - (c R x_i + t)||^2 for one pose (J, 3)."""
    n = x.shape[0]
    mu_x = x.sum(axis=0) / n
    mu_y = y.sum(axis=0) / n
    var_x = sum(float((xi - mu_x) @ (xi - mu_x)) for xi in x) / n
    sigma = np.zeros((3, 3))
    for xi, yi in zip(x, y):
        sigma += np.outer(yi - mu_y, xi - mu_x)
    sigma /= n
    u, d, vt = np.linalg.svd(sigma)
    s = np.eye(3)
    if not allow_reflection and np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[2, 2] = -1.0
    r = u @ s @ vt
    c = float(np.trace(np.diag(d) @ s)) / var_x
    t = mu_y - c * r @ mu_x
    return c, r, t


def ref_p_mpjpe(x, y, allow_reflection=False) -> float:
    errs = []
    for xi, yi in zip(x.reshape(-1, *x.shape[-2:]), y.reshape(-1, *y.shape[-2:])):
        c, r, t = umeyama(xi, yi, allow_reflection)
        aligned = np.array([c * r @ p + t for p in xi])
        errs.extend(np.sqrt(((aligned - yi) ** 2).sum(axis=1)))
    return float(np.mean(errs))


def random_poses(rng, n=8, j=17) -> np.ndarray:
    """Non-planar random 'poses' in mm."""
    return rng.normal(scale=300.0, size=(n, j, 3))


# ---------------------------------------------------------------------------
# MPJPE
# ---------------------------------------------------------------------------
def test_mpjpe_hand_computed():
    target = np.zeros((2, 3, 3))
    pred = np.array(
        [
            [[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 2.0]],  # errors 5, 0, 3
            [[0.0, 0.0, 6.0], [2.0, 3.0, 6.0], [0.0, 0.0, 0.0]],  # errors 6, 7, 0
        ]
    )
    assert metrics.mpjpe(pred, target) == pytest.approx(21.0 / 6.0)
    np.testing.assert_allclose(metrics.mpjpe(pred, target, reduction="per_joint"), [5.5, 3.5, 1.5])
    np.testing.assert_allclose(metrics.per_joint_mpjpe(pred, target), [5.5, 3.5, 1.5])
    np.testing.assert_allclose(metrics.mpjpe(pred, target, reduction="per_sample"), [8.0 / 3.0, 13.0 / 3.0])
    np.testing.assert_allclose(metrics.mpjpe(pred, target, reduction="none"), [[5, 0, 3], [6, 7, 0]])
    assert isinstance(metrics.mpjpe(pred, target), float)


def test_mpjpe_single_pose_and_extra_batch_dims():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 17, 3))
    y = rng.normal(size=(2, 3, 17, 3))
    flat = metrics.mpjpe(x.reshape(-1, 17, 3), y.reshape(-1, 17, 3))
    assert metrics.mpjpe(x, y) == pytest.approx(flat)
    assert metrics.mpjpe(x[0, 0], y[0, 0]) == pytest.approx(np.linalg.norm(x[0, 0] - y[0, 0], axis=1).mean())
    assert metrics.mpjpe(x, y, reduction="per_sample").shape == (2, 3)


# ---------------------------------------------------------------------------
# P-MPJPE
# ---------------------------------------------------------------------------
def test_p_mpjpe_matches_independent_umeyama():
    rng = np.random.default_rng(2)
    x = random_poses(rng)
    y = x + rng.normal(scale=40.0, size=x.shape)
    assert metrics.p_mpjpe(x, y) == pytest.approx(ref_p_mpjpe(x, y), rel=1e-9)
    per_sample = metrics.p_mpjpe(x, y, reduction="per_sample")
    for i in range(len(x)):
        assert per_sample[i] == pytest.approx(ref_p_mpjpe(x[i : i + 1], y[i : i + 1]), rel=1e-9)


def test_p_mpjpe_invariant_to_similarity_transform():
    rng = np.random.default_rng(3)
    for _ in range(10):
        y = random_poses(rng, n=1)[0]
        x = y + rng.normal(scale=50.0, size=y.shape)
        s = rng.uniform(0.3, 3.0)
        r = random_rotation(rng)
        t = rng.normal(scale=2000.0, size=3)
        # A similarity transform of the target is aligned back exactly ...
        assert metrics.p_mpjpe(s * y @ r.T + t, y) == pytest.approx(0.0, abs=1e-7)
        # ... and transforming the prediction does not change its P-MPJPE.
        assert metrics.p_mpjpe(s * x @ r.T + t, y) == pytest.approx(metrics.p_mpjpe(x, y), rel=1e-9)
        # whereas plain MPJPE does change
        assert metrics.mpjpe(s * y @ r.T + t, y) > 1.0


def test_p_mpjpe_never_larger_than_mpjpe():
    # dense errors (noise of any size plus a global offset), as a prediction has
    rng = np.random.default_rng(4)
    for _ in range(50):
        y = random_poses(rng, n=4)
        x = y + rng.normal(scale=rng.uniform(1, 300), size=y.shape) + rng.normal(scale=100, size=(4, 1, 3))
        p = metrics.p_mpjpe(x, y, reduction="per_sample")
        m = metrics.mpjpe(x, y, reduction="per_sample")
        assert np.all(p <= m + 1e-9)
        # the guaranteed form: Procrustes minimises the squared error and the identity
        # is a candidate transform, so the RMS joint error can only drop
        rms_aligned = np.sqrt((metrics.p_mpjpe(x, y, reduction="none") ** 2).mean(axis=-1))
        rms_raw = np.sqrt((metrics.mpjpe(x, y, reduction="none") ** 2).mean(axis=-1))
        assert np.all(rms_aligned <= rms_raw + 1e-9)


def test_p_mpjpe_can_exceed_mpjpe_for_sparse_errors_but_rms_cannot():
    # Procrustes minimises squared error: with one bad joint it spreads that error
    # over all joints, so the mean of norms grows while the RMS still drops.
    rng = np.random.default_rng(40)
    y = random_poses(rng, n=20)
    x = y.copy()
    x[:, 5, 0] += 200.0
    assert metrics.mpjpe(x, y) == pytest.approx(200.0 / 17)
    assert np.all(metrics.p_mpjpe(x, y, reduction="per_sample") > metrics.mpjpe(x, y, reduction="per_sample"))
    rms = lambda e: np.sqrt((e**2).mean(axis=-1))  # noqa: E731
    assert np.all(rms(metrics.p_mpjpe(x, y, reduction="none")) <= rms(metrics.mpjpe(x, y, reduction="none")))
    assert metrics.p_mpjpe(x, y) == pytest.approx(ref_p_mpjpe(x, y), rel=1e-9)


def test_p_mpjpe_does_not_fix_a_mirrored_pose():
    rng = np.random.default_rng(5)
    y = random_poses(rng, n=1)[0]  # non-planar, asymmetric
    mirrored = y * np.array([-1.0, 1.0, 1.0])
    p = metrics.p_mpjpe(mirrored, y)
    assert p > 50.0  # a proper rotation cannot undo a reflection
    assert p == pytest.approx(ref_p_mpjpe(mirrored[None], y[None]), rel=1e-9)
    # an alignment allowing reflections would "fix" it: the constraint is what matters
    assert ref_p_mpjpe(mirrored[None], y[None], allow_reflection=True) == pytest.approx(0.0, abs=1e-7)


def test_p_mpjpe_on_planar_pose_stays_finite():
    y = np.zeros((17, 3))
    y[:, :2] = np.random.default_rng(6).normal(size=(17, 2)) * 100
    assert metrics.p_mpjpe(y * np.array([-1, 1, 1]), y) == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------------------
# N-MPJPE
# ---------------------------------------------------------------------------
def test_n_mpjpe_scale_invariant_and_closed_form():
    rng = np.random.default_rng(7)
    y = random_poses(rng)
    x = y + rng.normal(scale=30.0, size=y.shape)
    base = metrics.n_mpjpe(x, y)
    for c in (0.1, 0.5, 2.0, 17.0):
        assert metrics.n_mpjpe(c * x, y) == pytest.approx(base, rel=1e-9)
        assert metrics.n_mpjpe(c * y, y) == pytest.approx(0.0, abs=1e-9)
    # closed form: per-pose least-squares scale s = <x, y> / <x, x>
    errs = []
    for xi, yi in zip(x, y):
        s = float(np.dot(xi.ravel(), yi.ravel()) / np.dot(xi.ravel(), xi.ravel()))
        errs.append(np.linalg.norm(s * xi - yi, axis=1).mean())
    assert base == pytest.approx(np.mean(errs), rel=1e-9)
    # only the scale is corrected: a rotation is not
    assert metrics.n_mpjpe(y @ random_rotation(rng).T, y) > 10.0


def test_n_mpjpe_root_option_centres_both():
    rng = np.random.default_rng(8)
    y = random_poses(rng)
    shifted = 1.5 * (y - y[:, :1]) + np.array([1000.0, -500.0, 4000.0])
    assert metrics.n_mpjpe(shifted, y, root=0) == pytest.approx(0.0, abs=1e-9)
    assert metrics.n_mpjpe(shifted, y) > 1.0


# ---------------------------------------------------------------------------
# velocity, PCK, AUC
# ---------------------------------------------------------------------------
def test_mean_velocity_error_closed_form():
    rng = np.random.default_rng(9)
    target = rng.normal(scale=200, size=(10, 17, 3))
    # a constant offset has the same velocity: zero error
    assert metrics.mean_velocity_error(target + np.array([5.0, -3.0, 2.0]), target) == pytest.approx(0.0, abs=1e-12)
    # a linear drift of v per frame: velocity error |v| everywhere
    v = np.array([3.0, 4.0, 12.0])  # |v| = 13
    drift = target + np.arange(10)[:, None, None] * v
    assert metrics.mean_velocity_error(drift, target) == pytest.approx(13.0)
    assert metrics.mean_velocity_error(drift, target, fps=50) == pytest.approx(650.0)
    assert metrics.mean_velocity_error(drift, target, reduction="per_sample").shape == (9,)
    # batch of sequences, time axis before J
    batch = np.stack([drift, target])
    np.testing.assert_allclose(
        metrics.mean_velocity_error(batch, np.stack([target, target]), reduction="per_sample").mean(axis=1), [13.0, 0.0]
    )
    with pytest.raises(ValueError, match="at least 2 frames"):
        metrics.mean_velocity_error(target[:1], target[:1])


def test_pck_and_auc_closed_form():
    target = np.zeros((1, 4, 3))
    pred = np.zeros((1, 4, 3))
    pred[0, :, 0] = [0.0, 50.0, 150.0, 200.0]  # per-joint errors along x
    assert metrics.pck_3d(pred, target) == pytest.approx(3 / 4)
    assert metrics.pck_3d(pred, target, threshold=49.0) == pytest.approx(1 / 4)
    np.testing.assert_allclose(metrics.pck_3d(pred, target, reduction="none"), [[1, 1, 1, 0]])
    # thresholds 0, 5, ..., 150: error e is within t for (150 - e) / 5 + 1 of the 31 thresholds
    expected = np.mean([31 / 31, 21 / 31, 1 / 31, 0.0])
    assert metrics.auc_3d(pred, target) == pytest.approx(expected)
    assert metrics.auc_3d(pred, target, thresholds=[0, 100, 200]) == pytest.approx(np.mean([1, 2 / 3, 1 / 3, 1 / 3]))


def test_pck_2d_with_reference_size_and_visibility():
    target = np.zeros((2, 3, 2))
    pred = np.zeros((2, 3, 2))
    pred[0, :, 0] = [1.0, 5.0, 6.0]
    pred[1, :, 1] = [10.0, 0.0, 30.0]
    boxes = np.array([[0, 0, 100, 50], [0, 0, 20, 200]])
    ref = metrics.box_size(boxes)
    np.testing.assert_allclose(ref, [100, 200])
    # threshold 0.05 -> 5 px and 10 px
    np.testing.assert_allclose(metrics.pck_2d(pred, target, ref, reduction="none"), [[1, 1, 0], [1, 1, 0]])
    assert metrics.pck_2d(pred, target, ref) == pytest.approx(4 / 6)
    vis = np.array([[2, 2, 0], [1, 0, 2]])
    assert metrics.pck_2d(pred, target, ref, visibility=vis) == pytest.approx(3 / 4)
    # visibility as the third column of the target (COCO x, y, v)
    t3 = np.concatenate([target, vis[..., None]], axis=-1)
    assert metrics.pck_2d(pred, t3, ref) == pytest.approx(3 / 4)
    # PCKh-style: threshold 0.5 of a head size
    assert metrics.pck_2d(pred, target, 12.0, threshold=0.5) == pytest.approx(4 / 6)
    err = metrics.keypoint_error_2d(pred, target, visibility=vis, reduction="per_joint")
    np.testing.assert_allclose(err, [5.5, 5.0, 30.0])


# ---------------------------------------------------------------------------
# OKS
# ---------------------------------------------------------------------------
def test_oks_identical_is_one_and_closed_form():
    rng = np.random.default_rng(10)
    kps = rng.uniform(0, 300, size=(17, 2))
    assert metrics.oks(kps, kps, area=5000.0) == pytest.approx(1.0)
    vis = np.zeros(17)
    vis[5] = 2
    moved = kps.copy()
    moved[5] += [3.0, 4.0]  # d^2 = 25 on the left shoulder only
    expected = np.exp(-25.0 / (2 * 5000.0 * (2 * COCO_OKS_SIGMAS[5]) ** 2))
    assert metrics.oks(moved, kps, area=5000.0, visibility=vis) == pytest.approx(expected, rel=1e-6)
    assert np.isnan(metrics.oks(moved, kps, area=5000.0, visibility=np.zeros(17)))


def test_oks_matches_pycocotools_compute_oks():
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(11)
    n_gt, n_dt = 3, 4
    gts, dts = [], []
    for i in range(n_gt):
        xy = rng.uniform(50, 400, size=(17, 2))
        v = rng.choice([0, 1, 2], size=17, p=[0.2, 0.3, 0.5])
        v[0] = 2
        kps = np.concatenate([xy, v[:, None]], axis=1)
        gts.append({"keypoints": kps.ravel().tolist(), "area": float(rng.uniform(1e3, 4e4)),
                    "bbox": [40.0, 40.0, 380.0, 380.0], "num_keypoints": int((v > 0).sum())})
    for i in range(n_dt):
        xy = np.array(gts[i % n_gt]["keypoints"]).reshape(17, 3)[:, :2] + rng.normal(scale=8, size=(17, 2))
        dts.append({"keypoints": np.concatenate([xy, np.ones((17, 1))], 1).ravel().tolist(), "score": 1.0})

    class _Stub(COCOeval):  # only computeOks is used; feed it our lists
        def __init__(self):
            from pycocotools.cocoeval import Params

            self.params = Params(iouType="keypoints")
            self.params.catIds = [1]
            self._gts = {(7, 1): gts}
            self._dts = {(7, 1): dts}

    ref = _Stub().computeOks(7, 1)  # (n_dt, n_gt)
    for d in range(n_dt):
        for g in range(n_gt):
            gk = np.array(gts[g]["keypoints"]).reshape(17, 3)
            dk = np.array(dts[d]["keypoints"]).reshape(17, 3)
            assert metrics.oks(dk, gk, gts[g]["area"]) == pytest.approx(ref[d, g], rel=1e-9, abs=1e-12)
    # batched
    gk = np.stack([np.array(g["keypoints"]).reshape(17, 3) for g in gts])
    dk = np.stack([np.array(dts[i]["keypoints"]).reshape(17, 3) for i in range(n_gt)])
    np.testing.assert_allclose(metrics.oks(dk, gk, [g["area"] for g in gts]), np.diag(ref[:n_gt]), rtol=1e-9)


# ---------------------------------------------------------------------------
# COCO keypoint AP
# ---------------------------------------------------------------------------
def _person(ann_id, image_id, xy, area, vis=None, iscrowd=0):
    xy = np.asarray(xy, dtype=float)
    v = np.full(17, 2) if vis is None else np.asarray(vis)
    kps = np.concatenate([xy, v[:, None]], axis=1)
    kps[v == 0] = 0.0
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    return {
        "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": iscrowd,
        "keypoints": [float(k) if i % 3 != 2 else int(k) for i, k in enumerate(kps.ravel())],
        "num_keypoints": int((v > 0).sum()), "area": float(area),
        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "segmentation": [],
    }


@pytest.fixture
def synthetic_coco():
    rng = np.random.default_rng(12)
    images, anns = [], []
    aid = 1
    for img_id in (101, 102, 103):
        images.append({"id": img_id, "file_name": f"{img_id:012d}.jpg", "width": 640, "height": 480})
        for k in range(2):
            size = 60.0 if k == 0 else 220.0  # one medium, one large person per image
            origin = rng.uniform(20, 380, size=2)
            xy = origin + rng.uniform(0, size, size=(17, 2))
            vis = rng.choice([1, 2], size=17)
            vis[rng.integers(0, 17)] = 0
            anns.append(_person(aid, img_id, xy, area=size * size * 0.6, vis=vis))
            aid += 1
    # a person without labelled keypoints and a crowd region: both ignored by COCO
    anns.append(_person(aid, 101, rng.uniform(0, 100, (17, 2)), area=900.0, vis=np.zeros(17)))
    anns.append(_person(aid + 1, 102, rng.uniform(0, 100, (17, 2)), area=5000.0, iscrowd=1))
    return {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": ["nose"] * 17, "skeleton": []}],
    }


def _gt_as_results(data):
    return [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 0.9}
        for a in data["annotations"]
        if a["num_keypoints"] > 0 and not a["iscrowd"]
    ]


def test_coco_ap_is_one_for_ground_truth(synthetic_coco, capsys):
    before = copy.deepcopy(synthetic_coco)
    stats = metrics.coco_keypoint_ap(synthetic_coco, _gt_as_results(synthetic_coco))
    assert list(stats) == ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    assert all(v == 1.0 for v in stats.values()), stats
    assert synthetic_coco == before  # the caller's dict is not modified
    assert capsys.readouterr().out == ""  # pycocotools silenced by default
    # the library helper builds the same results
    assert metrics.coco_results_from_ground_truth(synthetic_coco, score=0.9) == _gt_as_results(synthetic_coco)


def test_coco_ap_from_paths_and_verbose(synthetic_coco, tmp_path, capsys):
    ann_path = tmp_path / "person_keypoints_test.json"
    res_path = tmp_path / "results.json"
    ann_path.write_text(json.dumps(synthetic_coco))
    res_path.write_text(json.dumps(_gt_as_results(synthetic_coco)))
    stats = metrics.coco_keypoint_ap(str(ann_path), res_path, verbose=True)
    assert stats["AP"] == 1.0
    assert "Average Precision" in capsys.readouterr().out


def test_coco_ap_drops_for_perturbed_results(synthetic_coco):
    rng = np.random.default_rng(13)
    results = _gt_as_results(synthetic_coco)
    for r in results:
        k = np.array(r["keypoints"]).reshape(17, 3)
        k[:, :2] += rng.normal(scale=6.0, size=(17, 2))
        r["keypoints"] = k.ravel().tolist()
    stats = metrics.coco_keypoint_ap(synthetic_coco, results)
    assert 0.0 <= stats["AP"] < 1.0
    # dropping half the persons lowers recall
    stats_half = metrics.coco_keypoint_ap(synthetic_coco, _gt_as_results(synthetic_coco)[::2])
    assert stats_half["AR"] < 1.0
    assert metrics.coco_keypoint_ap(synthetic_coco, [])["AP"] == 0.0


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda r: r.update(keypoints=r["keypoints"][:50]), "50 keypoint values, expected 51"),
        (lambda r: r.update(image_id=999), "image_id 999"),
        (lambda r: r.update(category_id=7), "category_id 7"),
        (lambda r: r.pop("score"), "lacks the field 'score'"),
        (lambda r: r.update(score=float("nan")), "score"),
        (lambda r: r.update(keypoints=[float("nan")] * 51), "non-finite"),
    ],
)
def test_coco_ap_rejects_bad_results(synthetic_coco, change, match):
    results = _gt_as_results(synthetic_coco)
    change(results[1])
    with pytest.raises(ValueError, match=match):
        metrics.coco_keypoint_ap(synthetic_coco, results)


def test_coco_ap_rejects_bad_annotations(synthetic_coco, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        metrics.coco_keypoint_ap(tmp_path / "missing.json", [])
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(ValueError, match="broken.json"):
        metrics.coco_keypoint_ap(broken, [])
    bad = copy.deepcopy(synthetic_coco)
    bad["annotations"][0]["keypoints"] = bad["annotations"][0]["keypoints"][:48]
    with pytest.raises(ValueError, match="expected 51"):
        metrics.coco_keypoint_ap(bad, [])
    with pytest.raises(ValueError, match="results"):
        metrics.coco_keypoint_ap(synthetic_coco, {"image_id": 101})


@pytest.mark.skipif(not REAL_COCO.is_file(), reason=f"real COCO sample not present at {REAL_COCO} (../shared/data)")
def test_coco_ap_is_one_on_real_coco_sample():
    data = json.loads(REAL_COCO.read_text())
    results = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": a["keypoints"], "score": 1.0}
        for a in data["annotations"]
        if a["num_keypoints"] > 0
    ]
    assert results, "the sample should contain labelled persons"
    stats = metrics.coco_keypoint_ap(REAL_COCO, results)
    assert stats["AP"] == 1.0 and stats["AR"] == 1.0, stats
    assert all(v in (1.0, -1.0) for v in stats.values()), stats
    # and a perturbed submission scores below 1
    rng = np.random.default_rng(14)
    noisy = copy.deepcopy(results)
    for r in noisy:
        k = np.array(r["keypoints"], dtype=float).reshape(17, 3)
        k[:, :2] += rng.normal(scale=10.0, size=(17, 2))
        r["keypoints"] = k.ravel().tolist()
    assert metrics.coco_keypoint_ap(data, noisy)["AP"] < 1.0


# ---------------------------------------------------------------------------
# per-action tables
# ---------------------------------------------------------------------------
def test_per_action_table_averages_over_actions():
    table = metrics.per_action_table({"Walking": [10.0, 20.0, 30.0], "Eating": [40.0]}, metric="mpjpe")
    assert table["Walking"]["mpjpe"] == pytest.approx(20.0)
    assert table["Eating"]["mpjpe"] == pytest.approx(40.0)
    assert table["Average"]["mpjpe"] == pytest.approx(30.0)  # unweighted over actions
    assert table.overall["mpjpe"] == pytest.approx(25.0)  # frame-weighted
    assert table.counts == {"Walking": 3, "Eating": 1}
    assert table.actions == ["Walking", "Eating"]
    assert "Average" in str(table) and "| **Average** |" in table.to_markdown()
    merged = metrics.per_action_table({"Walking 1": [10.0], "Walking": [30.0], "Eating": [40.0]},
                                      merge_subactions=True)
    assert merged.actions == ["Walking", "Eating"]
    assert merged["Walking"]["error"] == pytest.approx(20.0)


def test_evaluate_by_action_matches_per_group_metrics():
    rng = np.random.default_rng(15)
    y = random_poses(rng, n=9)
    x = y + rng.normal(scale=20.0, size=y.shape)
    actions = np.array(["Walking"] * 4 + ["Sitting"] * 5)
    table = metrics.evaluate_by_action(x, y, actions, metrics=("mpjpe", "p_mpjpe", "n_mpjpe"))
    assert table["Walking"]["mpjpe"] == pytest.approx(metrics.mpjpe(x[:4], y[:4]))
    assert table["Sitting"]["p_mpjpe"] == pytest.approx(ref_p_mpjpe(x[4:], y[4:]), rel=1e-9)
    avg = (metrics.mpjpe(x[:4], y[:4]) + metrics.mpjpe(x[4:], y[4:])) / 2
    assert table["Average"]["mpjpe"] == pytest.approx(avg)
    with pytest.raises(ValueError, match=r"actions: expected shape \(9,\)"):
        metrics.evaluate_by_action(x, y, actions[:3])
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.evaluate_by_action(x, y, actions, metrics=("bogus",))


def test_result_table_average_row_is_the_nan_aware_column_mean():
    rows = {"Walking": {"P1": 40.0, "P2": 30.0}, "Eating": {"P1": 50.0, "P2": float("nan")},
            "Sitting": {"P1": 66.0}}
    table = metrics.ResultTable(rows, row_label="action", average_row="Average")
    assert table.columns == ("P1", "P2") and len(table) == 4 and list(table.rows)[-1] == "Average"
    # computed independently: plain sums over the finite cells
    assert table["Average"]["P1"] == pytest.approx((40.0 + 50.0 + 66.0) / 3)
    assert table["Average"]["P2"] == pytest.approx(30.0)
    assert table.column("P2")["Sitting"] != table.column("P2")["Sitting"]  # missing cell -> NaN
    assert table.to_dict()["Walking"] == {"P1": 40.0, "P2": 30.0}
    # a given average row is kept as it is
    given = metrics.ResultTable({**rows, "Average": {"P1": 1.0, "P2": 2.0}}, average_row="Average")
    assert given["Average"] == {"P1": 1.0, "P2": 2.0}
    # rows returns a copy
    table.rows["Walking"]["P1"] = -1.0
    assert table["Walking"]["P1"] == 40.0


def test_result_table_markdown():
    table = metrics.ResultTable({"nose": {"err": 1.234, "n": 3}, "eye": {"err": float("nan")}},
                                columns=["err", "n", "pck"], row_label="keypoint", digits=2)
    text = table.to_markdown()
    lines = text.splitlines()
    assert len(lines) == 2 + len(table)  # header, separator, one line per row
    assert lines[0] == "| keypoint | err | n | pck |"
    assert lines[2] == "| nose | 1.23 | 3 | - |"  # ints stay ints, the missing cell prints "-"
    assert lines[3] == "| eye | - | - | - |"  # NaN and missing cells print "-"
    assert str(table) == text == table._repr_markdown_()
    assert "| nose | 1.2 | 3 | - |" in table.to_markdown(digits=1)
    titled = metrics.ResultTable({"a": {"x": 1.0}}, title="Results", average_row="mean")
    assert titled.to_markdown().splitlines()[0] == "**Results**" and "| **mean** | 1.0 |" in str(titled)


def test_result_table_unknown_row_or_column_raises_key_error_naming_them():
    table = metrics.ResultTable({"Walking": {"P1": 1.0}, "Eating": {"P1": 2.0}})
    with pytest.raises(KeyError, match=r"'Sitting'.*\['Walking', 'Eating'\]"):
        table["Sitting"]
    with pytest.raises(KeyError, match=r"'P3'.*\['P1'\]"):
        table.column("P3")


def test_action_table_is_a_result_table():
    table = metrics.per_action_table({"Walking": [10.0, 20.0], "Eating": [40.0]}, metric="mpjpe")
    assert isinstance(table, metrics.ResultTable)
    assert table.average == {"mpjpe": pytest.approx(27.5)} and table.metrics == ["mpjpe"]
    assert table.column("mpjpe") == {"Walking": 15.0, "Eating": 40.0, "Average": 27.5}
    assert table.to_markdown().splitlines()[0] == "| action | mpjpe | n |"
    assert "| Walking | 15.0 | 2 |" in table.to_markdown() and "| **Average** | 27.5 | 3 |" in str(table)


# ---------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [metrics.mpjpe, metrics.p_mpjpe, metrics.n_mpjpe, metrics.pck_3d, metrics.auc_3d])
def test_bad_shapes_raise_value_error_naming_expected_shape(fn):
    good = np.zeros((4, 17, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        fn(np.zeros((4, 17, 2)), np.zeros((4, 17, 2)))
    with pytest.raises(ValueError, match=r"same shape"):
        fn(good, np.zeros((4, 16, 3)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        fn(np.zeros((4, 16, 3)), np.zeros((4, 16, 3)), skeleton="h36m17")
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        fn(np.zeros(3), np.zeros(3))
    nan = good.copy()
    nan[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(nan, good)
    with pytest.raises(ValueError, match="reduction"):
        fn(good, good, reduction="sum")


def test_bad_2d_inputs():
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 2\)"):
        metrics.pck_2d(np.zeros((2, 17, 4)), np.zeros((2, 17, 4)), 10.0)
    with pytest.raises(ValueError, match="ref_size"):
        metrics.pck_2d(np.zeros((2, 17, 2)), np.zeros((2, 17, 2)), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"sigmas: expected shape \(5,\)"):
        metrics.oks(np.zeros((5, 2)), np.zeros((5, 2)), 100.0)


# ---------------------------------------------------------------------------
# Keras metric
# ---------------------------------------------------------------------------
def test_keras_mpjpe_equals_numpy():
    import keras

    rng = np.random.default_rng(16)
    y = rng.normal(scale=200, size=(12, 17, 3)).astype("float32")
    x = (y + rng.normal(scale=25, size=y.shape)).astype("float32")
    m = metrics.MPJPE()
    m.update_state(y[:5], x[:5])
    m.update_state(y[5:], x[5:])
    assert float(m.result()) == pytest.approx(metrics.mpjpe(x, y), rel=1e-5)
    m.reset_state()
    assert float(m.result()) == 0.0
    # sample weights: weight 0 removes a sample
    w = np.ones(12, dtype="float32")
    w[:6] = 0
    m.update_state(y, x, sample_weight=w)
    assert float(m.result()) == pytest.approx(metrics.mpjpe(x[6:], y[6:]), rel=1e-5)
    # flat Dense outputs, de-normalisation and serialisation
    mean, std = 10.0, 250.0
    flat = metrics.MPJPE(num_joints=17, scale=std, offset=mean, name="mpjpe_mm")
    flat.update_state(((y - mean) / std).reshape(12, -1), ((x - mean) / std).reshape(12, -1))
    assert float(flat.result()) == pytest.approx(metrics.mpjpe(x, y), rel=1e-4)
    clone = metrics.MPJPE.from_config(flat.get_config())
    assert clone.num_joints == 17 and clone.name == "mpjpe_mm"
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(flat))
    assert isinstance(restored, metrics.MPJPE)
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        metrics.MPJPE(num_joints=17).update_state(np.zeros((2, 16, 3)), np.zeros((2, 16, 3)))


def test_keras_mpjpe_in_compile_and_evaluate():
    import keras

    rng = np.random.default_rng(17)
    inputs = rng.normal(size=(32, 4)).astype("float32")
    targets = rng.normal(scale=100, size=(32, 2, 3)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6), keras.layers.Reshape((2, 3))])
    model.compile(optimizer="sgd", loss="mse", metrics=[metrics.MPJPE()])
    result = model.evaluate(inputs, targets, batch_size=8, verbose=0, return_dict=True)
    expected = metrics.mpjpe(model.predict(inputs, verbose=0), targets)
    assert result["mpjpe"] == pytest.approx(expected, rel=1e-4)


# -- faults (issue 12): NaN ground truth, bad flags, empty inputs ---------------------------------------------------
def _nan_ground_truth(data):
    bad = copy.deepcopy(data)
    kp = bad["annotations"][0]["keypoints"]
    for j in range(17):  # every labelled coordinate NaN (json.loads reads a NaN literal like this)
        if kp[3 * j + 2] > 0:
            kp[3 * j], kp[3 * j + 1] = float("nan"), float("nan")
    return bad


@pytest.mark.parametrize("edit, match", [
    (_nan_ground_truth, r"id 1\).*field 'keypoints' holds nan"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(2, 3), r"id 1\).*visibility flags \[3\]"),
    (lambda d: d["annotations"][0].update(num_keypoints=17), r"id 1\).*'num_keypoints' is 17 but"),
    (lambda d: d["annotations"][0].update(iscrowd="no"), r"id 1\).*'iscrowd' must be 0 or 1"),
    (lambda d: d["images"][0].pop("id"), r"images\[0\] has no 'id'"),
    (lambda d: d["images"][0].update(width=None), r"field 'width' must be a positive integer"),
    (lambda d: d["annotations"][0].update(image_id=[101]), r"id 1\).*'image_id' must be an integer"),
])
def test_coco_ap_rejects_bad_ground_truth(synthetic_coco, edit, match):
    results = _gt_as_results(synthetic_coco)
    bad = copy.deepcopy(synthetic_coco)
    out = edit(bad)
    bad = out if isinstance(out, dict) else bad
    with pytest.raises(ValueError, match=match):  # NaN ground truth used to score AP = 1.0
        metrics.coco_keypoint_ap(bad, results)


@pytest.mark.parametrize("fn", [metrics.mpjpe, metrics.p_mpjpe, metrics.n_mpjpe, metrics.pck_3d, metrics.auc_3d])
def test_3d_metrics_refuse_zero_poses(fn):
    empty = np.zeros((0, 17, 3))
    with pytest.raises(ValueError, match=r"pred: no poses \(shape \(0, 17, 3\)\)"):
        fn(empty, empty)


def test_2d_metrics_and_tables_refuse_zero_poses():
    empty = np.zeros((0, 17, 3))
    with pytest.raises(ValueError, match="no poses"):
        metrics.keypoint_error_2d(empty[..., :2], empty)
    with pytest.raises(ValueError, match="no poses"):
        metrics.pck_2d(empty[..., :2], empty, ref_size=np.zeros(0) + 1.0)
    with pytest.raises(ValueError, match="no poses"):
        metrics.mean_velocity_error(np.zeros((0, 4, 17, 3)), np.zeros((0, 4, 17, 3)))
    with pytest.raises(ValueError, match="no poses"):
        metrics.evaluate_by_action(np.zeros((0, 17, 3)), np.zeros((0, 17, 3)), np.zeros(0, str))
    with pytest.raises(ValueError, match="at least one hypothesis"):
        metrics.best_of_k_mpjpe(np.zeros((2, 0, 17, 3)), np.zeros((2, 17, 3)))
    # one pose is enough (no NaN, no warning)
    assert metrics.mpjpe(np.zeros((17, 3)), np.ones((17, 3))) == pytest.approx(np.sqrt(3))
