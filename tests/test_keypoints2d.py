"""2D keypoint models, training and evaluation: shapes, training, .keras round trips, flip test, COCO results.

Builders: pose_lab.models.keypoints2d; trainer and fit: pose_lab.training.keypoints2d; prediction and
metrics: pose_lab.evaluation.keypoints2d (the losses are tested in test_losses.py).
"""

import importlib.util
import json
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from pose_lab import runtime
from pose_lab.heatmaps import encode_heatmaps
from pose_lab.metrics import coco_keypoint_ap
from pose_lab.models.heads import SpatialSoftArgmax
from pose_lab.models.keypoints2d import build_heatmap_model, build_regression_model, heatmap_stride
from pose_lab.skeletons import COCO17
from pose_lab.evaluation.keypoints2d import (
    evaluate_keypoints,
    flip_test_heatmaps,
    instance_scores,
    per_keypoint_table,
    predict_heatmaps,
    predict_keypoints,
    to_coco_results,
)
from pose_lab.metrics.tables import ResultTable
from pose_lab.training.keypoints2d import KeypointTrainer, fit_keypoints2d
from pose_lab.training.schedules import WarmupCosineDecay

TINY = dict(backbone="small", input_shape=(64, 64, 3), head_filters=16,
            backbone_kwargs=dict(widths=(8, 8, 16, 16)))


def _tiny_heatmap_model(**kw):
    return build_heatmap_model(**{**TINY, **kw})


def _run(model, x):
    """Inference without compiling a predict function (fast for a few images, any backend)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def _batch(n=8, seed=0, size=64, stride=4, sigma=1.0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    kp = rng.uniform(4, size - 5, (n, 17, 2))
    vis = (rng.uniform(size=(n, 17)) > 0.2).astype("float32") * 2
    hm, w = encode_heatmaps(kp, vis, heatmap_size=(size // stride,) * 2, sigma=sigma, stride=stride)
    return images, kp.astype("float32"), vis, hm, w


# ---------------------------------------------------------------------------
# model assembly
# ---------------------------------------------------------------------------
def test_heatmap_model_shapes():
    m = build_heatmap_model("small", (128, 96, 3), head_filters=16, backbone_kwargs=dict(widths=(8, 8, 16, 16)))
    assert m.output_shape == (None, 32, 24, 17) and heatmap_stride(m) == 4.0
    m2 = build_heatmap_model("small", (128, 96, 3), num_joints=5, head_filters=16, head_layers=2,
                             backbone_kwargs=dict(widths=(8, 8, 16, 16)))
    assert m2.output_shape == (None, 16, 12, 5) and heatmap_stride(m2) == 8.0
    # stride-16 features with two deconvolutions and lateral skips: stride-4 heatmaps again
    m3 = build_heatmap_model("small", (128, 96, 3), head_filters=16, head_layers=2, features="stride16",
                             skip_connections=True, backbone_kwargs=dict(widths=(8, 8, 16, 16)))
    assert m3.output_shape == (None, 32, 24, 17) and m3.get_layer("head_add2") is not None
    with pytest.raises(ValueError, match="features"):
        build_heatmap_model(**TINY, features="stride64")


def test_simplebaseline_resnet50_shapes():
    m = build_heatmap_model("resnet50", (256, 192, 3))
    assert m.output_shape == (None, 64, 48, 17)
    out = m(np.zeros((1, 256, 192, 3), "float32"))
    assert tuple(out.shape) == (1, 64, 48, 17) and keras.backend.standardize_dtype(out.dtype) == "float32"


def test_regression_model_shapes():
    dense = build_regression_model(**TINY, head="dense")
    soft = build_regression_model(**TINY, head="soft_argmax")
    x = np.zeros((2, 64, 64, 3), "float32")
    assert dense.output_shape == (None, 17, 2) and tuple(dense(x).shape) == (2, 17, 2)
    assert soft.output_shape == (None, 17, 2)
    assert isinstance(soft.get_layer("soft_argmax"), SpatialSoftArgmax)
    assert soft.get_layer("soft_argmax").stride == 4.0
    # soft-argmax outputs are expected positions: inside the crop
    out = keras.ops.convert_to_numpy(soft(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3))))
    assert np.all(out >= 0) and np.all(out <= 60)
    with pytest.raises(ValueError, match="head must be"):
        build_regression_model(**TINY, head="fc")


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------
def test_training_steps_decrease_the_loss():
    # ``history["loss"][k]`` is the training loss of step k, computed before its update.
    # One pose for the whole batch: learnable in a few steps (random poses on noise
    # images sit on the all-zero-heatmap plateau for many more).
    runtime.set_seed(0)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    kp = np.broadcast_to(rng.uniform(8, 55, (1, 17, 2)), (8, 17, 2))
    hm, w = encode_heatmaps(kp, None, heatmap_size=(16, 16), sigma=2.0, stride=4)
    model = KeypointTrainer(_tiny_heatmap_model())
    model.compile(keras.optimizers.Adam(3e-3))
    losses = model.fit(images, {"heatmaps": hm, "weights": w}, epochs=12, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses


def test_coordinate_training_decreases_the_loss():
    runtime.set_seed(0)
    images, kp, vis, hm, w = _batch(8)
    model = KeypointTrainer(build_regression_model(**TINY, head="soft_argmax"))
    model.compile(keras.optimizers.Adam(3e-3))
    y = {"keypoints": kp, "weights": (vis > 0).astype("float32")}
    losses = model.fit(images, y, epochs=12, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < losses[0], losses


def test_trainer_rejects_targets_without_heatmaps():
    images, kp, vis, hm, w = _batch(2)
    model = KeypointTrainer(_tiny_heatmap_model())
    model.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match="'heatmaps'"):
        model.fit(images, {"keypoints": kp, "weights": w}, epochs=1, verbose=0)


def test_keras_round_trip_of_trainer_and_networks(tmp_path):
    runtime.set_seed(0)
    images, kp, vis, hm, w = _batch(4)
    y = {"heatmaps": hm, "weights": w}
    model = KeypointTrainer(_tiny_heatmap_model())
    model.compile(keras.optimizers.Adam(WarmupCosineDecay(1e-3, decay_steps=100, warmup_steps=10)))
    model.fit(images, y, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "trainer.keras")
    loaded = keras.models.load_model(tmp_path / "trainer.keras")
    assert isinstance(loaded, KeypointTrainer) and loaded.output_type == "heatmaps"
    np.testing.assert_allclose(_run(loaded, images), _run(model, images), atol=1e-5)
    assert isinstance(loaded.optimizer._learning_rate, WarmupCosineDecay)
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == 1
    loaded.fit(images, y, epochs=1, batch_size=4, verbose=0)  # training resumes on the loaded model
    # a fresh interpreter needs nothing but ``import pose_lab.training`` to load it
    # (the trainer, its schedule and the custom layers are registered on import)
    code = ("import sys, keras, pose_lab.training; "
            "m = keras.models.load_model(sys.argv[1]); print(type(m).__name__, type(m.optimizer._learning_rate).__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "trainer.keras")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["KeypointTrainer", "WarmupCosineDecay"], out.stdout
    # the bare networks round-trip too: custom preprocessing, skips, soft-argmax
    for net in (build_heatmap_model(**{**TINY, "skip_connections": True}),
                build_regression_model(**TINY, head="soft_argmax")):
        net.save(tmp_path / "net.keras")
        net2 = keras.models.load_model(tmp_path / "net.keras")
        np.testing.assert_allclose(_run(net2, images), _run(net, images), atol=1e-5)
    coords = KeypointTrainer(build_regression_model(**TINY, head="soft_argmax"))
    restored = KeypointTrainer.from_config(coords.get_config())
    assert restored.output_type == "keypoints" and restored.coord_scale == 64.0



def test_trainer_keeps_its_registered_name():
    # .keras files saved before the training/evaluation split name the class this way
    assert keras.saving.get_registered_name(KeypointTrainer) == "pose_lab>KeypointTrainer"
    assert keras.saving.get_registered_object("pose_lab>KeypointTrainer") is KeypointTrainer


def test_compute_loss_adds_the_regularisation_losses():
    x = keras.Input((16, 16, 3))
    reg = keras.regularizers.L2(0.5)
    net = keras.Model(x, keras.layers.Conv2D(17, 1, kernel_regularizer=reg)(x))
    model = KeypointTrainer(net)
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    hm = np.zeros((2, 16, 16, 17), "float32")
    w = np.ones((2, 17), "float32")
    pred = model(images)
    loss = float(keras.ops.convert_to_numpy(model.compute_loss(images, {"heatmaps": hm, "weights": w}, pred)))
    mse = 0.5 * np.mean(keras.ops.convert_to_numpy(pred) ** 2)
    penalty = 0.5 * np.sum(keras.ops.convert_to_numpy(net.layers[-1].kernel) ** 2)
    assert loss == pytest.approx(mse + penalty, rel=1e-5)


def test_fit_resumes_after_interruption(tmp_path):
    runtime.set_seed(0)
    images, kp, vis, hm, w = _batch(8)
    y = {"heatmaps": hm, "weights": w}

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated disconnect")

    class Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

    model = KeypointTrainer(_tiny_heatmap_model())
    model.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no tensorboard package: logs are skipped with a warning
        fit_keypoints2d(model, (images, y), epochs=4, workdir=tmp_path, callbacks=[Interrupt()], batch_size=8)
    assert (tmp_path / "backup").is_dir() and (tmp_path / "best.keras").is_file()
    # a fresh model (as after a runtime restart) picks up at epoch 1: the backup of an epoch is
    # committed after every callback's on_epoch_end, and this one raised in epoch 1's
    model2 = KeypointTrainer(_tiny_heatmap_model())
    model2.compile(keras.optimizers.Adam(1e-3))
    rec = Record()
    fit_keypoints2d(model2, (images, y), epochs=4, workdir=tmp_path, callbacks=[rec], batch_size=8)
    assert rec.epochs == [1, 2, 3]
    assert int(keras.ops.convert_to_numpy(model2.optimizer.iterations)) == 4
    assert not (tmp_path / "backup").exists()  # removed after a completed run
    if importlib.util.find_spec("tensorboard") is not None:
        assert any((tmp_path / "logs").rglob("*")), "TensorBoard wrote no logs"
    assert isinstance(keras.models.load_model(tmp_path / "best.keras"), KeypointTrainer)


# ---------------------------------------------------------------------------
# flip test
# ---------------------------------------------------------------------------
def _symmetric_images(n, h, w, seed):
    half = np.random.default_rng(seed).uniform(0, 255, (n, h, w // 2, 3)).astype("float32")
    return np.concatenate([half, half[:, :, ::-1]], axis=2)


def test_flip_test_gives_mirrored_swapped_predictions_on_a_symmetric_image():
    runtime.set_seed(3)
    model = _tiny_heatmap_model()  # random weights: any model must satisfy the symmetry
    images = _symmetric_images(3, 64, 64, seed=4)
    np.testing.assert_array_equal(images, images[:, :, ::-1])
    kp, scores = predict_keypoints(model, images, flip_test=True)
    perm = COCO17.flip_permutation
    width = images.shape[2]
    for left, right in COCO17.flip_pairs:
        np.testing.assert_allclose(kp[:, left, 0] + kp[:, right, 0], width - 1, atol=1e-3)
        np.testing.assert_allclose(kp[:, left, 1], kp[:, right, 1], atol=1e-3)
        np.testing.assert_allclose(scores[:, left], scores[:, right], rtol=1e-4)
    # the averaged heatmaps themselves are mirror images (nose included)
    avg, _ = flip_test_heatmaps(_run(model, images), _run(model, images[:, :, ::-1].copy()), stride=4.0)
    np.testing.assert_allclose(avg[:, :, ::-1][..., perm], avg, atol=1e-5)


def test_flip_test_shift_is_exact():
    # Two heatmap predictions that agree perfectly (the crop's and the mirrored crop's)
    # must average to a heatmap centred on the keypoint: check the centroid, which
    # a linear-interpolation shift moves exactly (SimpleBaseline's 1-px shift would
    # be off by 1/stride heatmap pixels).
    stride, size = 4, 96
    kp = np.array([[[37.3, 40.6]] * 17])
    kp[0, :, 0] += np.arange(17)
    mirrored = kp.copy()
    mirrored[..., 0] = (size - 1) - kp[..., 0]
    mirrored = mirrored[:, COCO17.flip_permutation]
    hm, _ = encode_heatmaps(kp, None, heatmap_size=(24, 24), sigma=2.0, stride=stride)
    hmf, _ = encode_heatmaps(mirrored, None, heatmap_size=(24, 24), sigma=2.0, stride=stride)
    avg, offset = flip_test_heatmaps(hm, hmf, stride)
    assert offset == pytest.approx(0.375)
    u = np.arange(24)
    centroid = (avg.sum(axis=1) * u[None, :, None]).sum(1) / avg.sum(axis=(1, 2))
    np.testing.assert_allclose((centroid + offset) * stride, kp[..., 0], atol=0.05)


def test_flip_test_on_regression_model_is_symmetric():
    runtime.set_seed(5)
    model = build_regression_model(**TINY, head="dense")
    images = _symmetric_images(2, 64, 64, seed=6)
    kp, scores = predict_keypoints(model, images, flip_test=True)
    assert np.all(scores == 1.0)
    for left, right in COCO17.flip_pairs:
        np.testing.assert_allclose(kp[:, left, 0] + kp[:, right, 0], 63.0, atol=1e-3)


class _ConstantHeatmaps(keras.layers.Layer):
    """Test double: outputs fixed heatmaps whatever the image."""

    def __init__(self, heatmaps, **kwargs):
        super().__init__(**kwargs)
        self.heatmaps = np.asarray(heatmaps, "float32")

    def call(self, x):
        zero = keras.ops.mean(x, axis=(1, 2, 3))[:, None, None, None] * 0.0
        return keras.ops.convert_to_tensor(self.heatmaps)[None] + zero

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.heatmaps.shape


def test_predict_keypoints_decodes_to_crop_pixels():
    stride = 4
    rng = np.random.default_rng(7)
    kp = rng.uniform(6, 57, (1, 17, 2))
    hm, _ = encode_heatmaps(kp, None, heatmap_size=(16, 16), sigma=1.0, stride=stride)
    x = keras.Input((64, 64, 3))
    model = keras.Model(x, _ConstantHeatmaps(hm[0])(x))
    pred, scores = predict_keypoints(model, np.zeros((2, 64, 64, 3), "float32"), flip_test=False)
    assert pred.shape == (2, 17, 2) and scores.shape == (2, 17)
    assert np.abs(pred - kp).max() <= 0.25 * stride + 1e-4
    assert np.all(scores > 0.7)
    np.testing.assert_allclose(predict_heatmaps(model, np.zeros((2, 64, 64, 3), "float32")), np.stack([hm[0]] * 2),
                               atol=1e-6)
    with pytest.raises(ValueError, match="images"):
        predict_keypoints(model, np.zeros((1, 32, 32, 3)))


def test_predict_heatmaps_in_padded_batches_equals_one_call():
    runtime.set_seed(2)
    model = _tiny_heatmap_model()
    images = np.random.default_rng(3).uniform(0, 255, (5, 64, 64, 3)).astype("float32")
    out = predict_heatmaps(model, images, batch_size=4)  # 5 = 4 + 1: the last batch is padded
    assert out.shape == (5, 16, 16, 17) and out.dtype == np.float32
    np.testing.assert_allclose(out, _run(model, images), atol=1e-5)
    with pytest.raises(ValueError, match=r"images: expected shape \(N, 64, 64, 3\)"):
        predict_heatmaps(model, images[:, :32])


def test_bad_flip_permutation_raises():
    model = _tiny_heatmap_model()
    with pytest.raises(ValueError, match="permutation"):
        predict_keypoints(model, np.zeros((1, 64, 64, 3), "float32"), flip_permutation=[0] * 17)


# ---------------------------------------------------------------------------
# COCO results and evaluation
# ---------------------------------------------------------------------------
def _toy_coco(n_images=3, seed=0):
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(1, n_images + 1):
        images.append({"id": i * 10, "file_name": f"{i:012d}.jpg", "width": 200, "height": 160})
        for p in range(2):
            x0, y0 = 20 + 90 * p, 20
            kp = np.stack([rng.uniform(x0, x0 + 60, 17), rng.uniform(y0, y0 + 120, 17),
                           rng.choice([0, 1, 2], 17, p=[0.2, 0.2, 0.6])], -1)
            kp[kp[:, 2] == 0] = 0
            anns.append({"id": len(anns) + 1, "image_id": i * 10, "category_id": 1, "iscrowd": 0,
                         "keypoints": kp.round(2).ravel().tolist(), "num_keypoints": int((kp[:, 2] > 0).sum()),
                         "bbox": [x0, y0, 60, 120], "area": 60 * 120 * 0.6})
    cats = [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": list(COCO17.joint_names), "skeleton": [[a + 1, b + 1] for a, b in COCO17.edges]}]
    return {"images": images, "annotations": anns, "categories": cats}


def test_ground_truth_as_predictions_gives_ap_one(tmp_path):
    gt = _toy_coco()
    kp = np.array([a["keypoints"] for a in gt["annotations"]]).reshape(-1, 17, 3)
    ids = [a["image_id"] for a in gt["annotations"]]
    path = tmp_path / "results.json"
    results = to_coco_results(ids, kp[..., :2], scores=np.ones(len(ids)), annotations=gt, path=path)
    assert len(results) == 6 and len(results[0]["keypoints"]) == 51 and results[0]["category_id"] == 1
    stats = coco_keypoint_ap(gt, str(path))
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    # a displaced prediction costs AP
    worse = to_coco_results(ids, kp[..., :2] + 8.0, annotations=gt)
    assert coco_keypoint_ap(gt, worse)["AP"] < 0.9


def test_results_file_is_accepted_by_pycocotools(tmp_path):
    from pycocotools.coco import COCO

    gt = _toy_coco()
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    kp = np.random.default_rng(1).uniform(0, 150, (4, 17, 2))
    ks = np.random.default_rng(2).uniform(0, 1, (4, 17))
    path = tmp_path / "res.json"
    results = to_coco_results([10, 10, 20, 30], kp, keypoint_scores=ks, annotations=gt_path, path=path)
    coco = COCO(str(gt_path))
    dt = coco.loadRes(str(path))
    assert len(dt.getAnnIds()) == 4
    assert results[0]["score"] == pytest.approx(instance_scores(ks[:1])[0])
    np.testing.assert_allclose(np.array(results[1]["keypoints"]).reshape(17, 3)[:, 2], ks[1], atol=1e-3)


def test_instance_scores_closed_form():
    s = np.array([[0.9, 0.1, 0.5, 0.3], [0.1, 0.1, 0.2, 0.0]])
    np.testing.assert_allclose(instance_scores(s), [(0.9 + 0.5 + 0.3) / 3, 0.0])
    np.testing.assert_allclose(instance_scores(s, box_scores=[0.5, 1.0]), [(0.9 + 0.5 + 0.3) / 6, 0.0])


def test_bad_results_raise_before_pycocotools():
    gt = _toy_coco()
    with pytest.raises(ValueError, match="17"):
        to_coco_results([10], np.zeros((1, 16, 2)), annotations=gt)
    with pytest.raises(ValueError, match="17"):
        to_coco_results([10], np.zeros((1, 50)), annotations=gt)
    with pytest.raises(ValueError, match=r"image_ids \[999\]"):
        to_coco_results([10, 999], np.zeros((2, 17, 2)), annotations=gt)
    with pytest.raises(ValueError, match="2 entries"):
        to_coco_results([10, 20], np.zeros((1, 17, 2)))
    bad = np.zeros((1, 17, 2))
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        to_coco_results([10], bad)
    with pytest.raises(FileNotFoundError):
        to_coco_results([10], np.zeros((1, 17, 2)), annotations="/nonexistent/gt.json")


def test_per_keypoint_table_closed_form():
    gt = np.zeros((2, 17, 3))
    gt[..., 2] = 2
    gt[1, 0, 2] = 0  # unlabelled nose in person 1
    pred = gt[..., :2].copy()
    pred[:, 0, 0] += 3.0  # nose off by 3 px
    pred[:, 5, 1] += 8.0  # left shoulder off by 8 px
    boxes = np.array([[0, 0, 50, 100], [0, 0, 100, 50]])
    table = per_keypoint_table(pred, gt, boxes, areas=[2000.0, 2000.0])
    assert table["nose"]["n"] == 1 and table["nose"]["err_px"] == pytest.approx(3.0)
    assert table["left_shoulder"]["err_%box"] == pytest.approx(8.0)
    assert table["left_shoulder"]["PCK@0.05"] == 0.0 and table["nose"]["PCK@0.05"] == 1.0
    sigma = 0.079  # left shoulder OKS sigma
    assert table["left_shoulder"]["OKS"] == pytest.approx(np.exp(-64 / (2 * 2000 * (2 * sigma) ** 2)), rel=1e-6)
    assert table["mean"]["n"] == 33
    assert "| nose |" in table.to_markdown()
    assert isinstance(table, ResultTable) and list(table)[-1] == "mean"
    assert table.column("n")["left_shoulder"] == 2


def test_evaluate_keypoints_end_to_end(tmp_path):
    render = pytest.importorskip("pose_lab.data.synthetic.coco_writer")
    ann = render.write_coco_dataset(tmp_path, 2, split="val", seed=0, image_size=(128, 128), num_people=(1, 2))
    runtime.set_seed(0)
    model = _tiny_heatmap_model()
    ev = evaluate_keypoints(model, ann, tmp_path / "val", batch_size=4)
    assert list(ev.coco)[:3] == ["AP", "AP50", "AP75"] and 0.0 <= ev.ap <= 1.0
    assert ev.keypoints.shape == (len(ev.records), 17, 2) and len(ev.results) == len(ev.records)
    assert 0.0 <= ev.pck <= 1.0 and "mean" in ev.table and ev.table["nose"]["n"] >= 0
    assert "OKS AP" in ev.summary()
    oracle = ev.with_sides_from_truth()
    assert oracle["AP"] >= ev.ap - 1e-9 and oracle["PCK"] >= ev.pck - 1e-9


def test_real_coco_sample_ground_truth_ap_is_one():
    shared = runtime.shared_data_dir()
    ann = None if shared is None else shared / "coco_val2017_mini" / "person_keypoints_val2017_mini.json"
    if ann is None or not ann.is_file():
        pytest.skip("the real COCO sample (../shared/data/coco_val2017_mini) is not present")
    gt = json.loads(ann.read_text())
    persons = [a for a in gt["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    kp = np.array([a["keypoints"] for a in persons]).reshape(-1, 17, 3)
    results = to_coco_results([a["image_id"] for a in persons], kp[..., :2], scores=1.0, annotations=ann)
    assert coco_keypoint_ap(ann, results)["AP"] == pytest.approx(1.0)


def test_compute_loss_honours_sample_weight_as_a_weighted_mean():
    """Issue 11: sample_weight was ignored. Closed form: sum_b s_b l_b / sum_b s_b with NumPy per-sample losses."""
    rng = np.random.default_rng(3)
    b, j = 6, 17
    s = np.array([0.0, 1.0, 2.5, 0.5, 0.0, 3.0], "float32")
    # heatmaps: l_b = 0.5 * mean_{v,u,j} (w_bj (p - t))^2
    inp = keras.Input((16, 16, 3))
    model = KeypointTrainer(keras.Model(inp, keras.layers.Conv2D(j, 1, strides=4)(inp)))
    t, p = rng.uniform(size=(b, 4, 4, j)).astype("float32"), rng.uniform(size=(b, 4, 4, j)).astype("float32")
    w = (rng.uniform(size=(b, j)) > 0.3).astype("float32")
    per = 0.5 * ((w[:, None, None, :] * (p - t)) ** 2).mean(axis=(1, 2, 3))
    got = keras.ops.convert_to_numpy(model.compute_loss(None, {"heatmaps": t, "weights": w}, p, sample_weight=s))
    assert float(got) == pytest.approx((s * per).sum() / s.sum(), rel=1e-5)
    unweighted = keras.ops.convert_to_numpy(model.compute_loss(None, {"heatmaps": t, "weights": w}, p))
    assert float(unweighted) == pytest.approx(per.mean(), rel=1e-5)
    # coordinates: l_b = mean_{j,xy} w_bj |p - t| / scale
    reg = KeypointTrainer(keras.Model(inp, keras.layers.Reshape((j, 2))(
        keras.layers.Dense(2 * j)(keras.layers.Flatten()(inp)))), coord_scale=16.0)
    kt, kp = rng.uniform(0, 16, (b, j, 2)).astype("float32"), rng.uniform(0, 16, (b, j, 2)).astype("float32")
    per = (w[..., None] * np.abs(kp - kt)).mean(axis=(1, 2)) / 16.0
    got = keras.ops.convert_to_numpy(reg.compute_loss(None, {"keypoints": kt, "weights": w}, kp, sample_weight=s))
    assert float(got) == pytest.approx((s * per).sum() / s.sum(), rel=1e-5)
    zero = reg.compute_loss(None, {"keypoints": kt, "weights": w}, kp, sample_weight=np.zeros(b, "float32"))
    assert float(keras.ops.convert_to_numpy(zero)) == 0.0
