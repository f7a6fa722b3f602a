"""Keypoint R-CNN (seed 002): sub-networks, training targets, fit(), detections, round trip, optimizer.

Tiny images (64x64) and tiny widths so that the file runs in seconds under both backends.
"""

import time

import keras
import numpy as np
import pytest
from keras import ops

from backend_utils import compiled

from pose_lab.boxes import RPN_BOX_WEIGHTS, decode_boxes
from pose_lab.models.backbones import small_resnet_backbone
from pose_lab.models.keypoint_rcnn import (
    KEYPOINT_RCNN_CONFIGS,
    backbone_for_image_size,
    build_feature_network,
    build_keypoint_head,
)
from pose_lab.roi import roi_align, roi_heatmaps_to_keypoints
from pose_lab.training.keypoint_rcnn import (
    LOSS_TERMS,
    KeypointRCNN,
    build_keypoint_rcnn,
    keypoint_rcnn_optimizer,
    train_for_minutes,
)

SIZE = 64
TINY = dict(fpn_channels=16, box_representation=32, keypoint_convs=1, keypoint_filters=16,
            backbone_kwargs={"widths": (8, 8, 16, 16)}, rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=32,
            rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=16, roi_batch_per_image=16,
            detections_per_image=5, detection_score_threshold=0.0)


def make_data(batch=2, persons=2, size=SIZE, seed=0):
    """Random images and persons: boxes 16-30 px, 17 visible keypoints inside each box; image 1 has one padded row."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    boxes = np.zeros((batch, persons, 4), "float32")
    kps = np.zeros((batch, persons, 17, 3), "float32")
    valid = np.zeros((batch, persons), "float32")
    for i in range(batch):
        for j in range(persons - 1 if i else persons):
            x1, y1 = rng.uniform(2, size / 2, 2)
            w, h = rng.uniform(16, size / 2 - 2, 2)
            boxes[i, j] = [x1, y1, x1 + w, y1 + h]
            valid[i, j] = 1
            kps[i, j, :, 0] = rng.uniform(x1, x1 + w, 17)
            kps[i, j, :, 1] = rng.uniform(y1, y1 + h, 17)
            kps[i, j, :, 2] = 2
    return images, {"boxes": boxes, "keypoints": kps, "valid": valid}


@pytest.fixture(scope="module")
def trained():
    """A tiny cpu-config model fitted 16 steps on one fixed batch (shared by the tests below)."""
    keras.utils.set_random_seed(1)
    model = build_keypoint_rcnn("cpu", (SIZE, SIZE), seed=0, **TINY)
    model.compile(optimizer=keypoint_rcnn_optimizer(100, 1, batch_size=2, base_lr=0.16, warmup_steps=0))
    x, y = make_data()
    state0 = ops.convert_to_numpy(model.seed_generator.state).copy()
    t = time.time()
    history = model.fit(x, y, batch_size=2, epochs=16, verbose=0).history
    return model, x, y, history, state0, time.time() - t


def test_fit_logs_six_finite_losses_and_the_loss_decreases(trained):
    model, _, _, history, state0, _ = trained
    for name in ("loss",) + LOSS_TERMS:
        assert name in history, name
        assert np.all(np.isfinite(history[name])), (name, history[name])
    total = sum(np.asarray(history[name]) for name in LOSS_TERMS)
    np.testing.assert_allclose(total, history["loss"], rtol=1e-4)  # loss is the sum of the five
    assert history["loss"][-1] < history["loss"][0]
    assert history["keypoint"][-1] < history["keypoint"][0]
    # the samplers' SeedGenerator advanced inside the compiled step (JAX: state threaded by the trainer)
    assert not np.array_equal(ops.convert_to_numpy(model.seed_generator.state), state0)


def test_detections_have_the_documented_shapes_and_keypoints_inside_boxes(trained):
    model, x, _, _, _, _ = trained
    out = model.predict(x, batch_size=2, verbose=0)
    d = model.config["detections_per_image"]
    assert out["boxes"].shape == (2, d, 4) and out["scores"].shape == (2, d)
    assert out["keypoints"].shape == (2, d, 17, 2) and out["keypoint_scores"].shape == (2, d, 17)
    assert out["num_detections"].shape == (2,)
    for b in range(2):
        n = int(out["num_detections"][b])
        assert 0 < n <= d
        boxes, kp = out["boxes"][b, :n], out["keypoints"][b, :n]
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        assert np.all(boxes >= 0) and np.all(boxes <= SIZE)
        assert np.all(kp[..., 0] >= boxes[:, None, 0] - 1e-4) and np.all(kp[..., 0] <= boxes[:, None, 2] + 1e-4)
        assert np.all(kp[..., 1] >= boxes[:, None, 1] - 1e-4) and np.all(kp[..., 1] <= boxes[:, None, 3] + 1e-4)
        assert np.all(np.diff(out["scores"][b, :n]) <= 1e-6)  # by decreasing score
        ks = out["keypoint_scores"][b, :n]
        assert np.all((ks > 0) & (ks <= 1))
        # padding rows are zero
        assert np.all(out["boxes"][b, n:] == 0) and np.all(out["scores"][b, n:] == 0)


def test_keras_round_trip_gives_the_same_detections(trained, tmp_path):
    model, x, _, _, _, _ = trained
    path = tmp_path / "kprcnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, KeypointRCNN)
    assert loaded.config == model.config and loaded.image_size == model.image_size
    a = model.predict(x, batch_size=2, verbose=0)
    b = loaded.predict(x, batch_size=2, verbose=0)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-4, err_msg=key)


def test_targets_with_perfect_proposals_decode_to_the_ground_truth(trained):
    model = trained[0]  # the targets do not depend on the weights
    _, y = make_data(seed=5)
    gt, valid, kps = y["boxes"], y["valid"] > 0, y["keypoints"]
    t = model.training_targets(gt, valid, y)  # proposals = the gt boxes (a perfect RPN)
    t = {k: ops.convert_to_numpy(v) for k, v in t.items()}
    r = model.config["roi_batch_per_image"]
    assert t["rois"].shape == (2, r, 4)
    assert t["labels"].sum(axis=1).max() <= int(r * model.config["roi_positive_fraction"])
    # every gt person is positive (twice: as proposal and appended), box targets 0 for them
    assert np.array_equal(t["labels"].sum(axis=1), 2 * valid.sum(axis=1))
    np.testing.assert_allclose(t["box_targets"][t["labels"] == 1], 0.0, atol=1e-5)

    s = model.heatmap_size
    krois = t["keypoint_rois"].reshape(-1, 4)
    target = t["keypoint_targets"].reshape(len(krois), 17)
    kvalid = t["keypoint_valid"].reshape(len(krois), 17)
    onehot = np.zeros((len(krois), s * s, 17), "float32")
    onehot[np.arange(len(krois))[:, None], target, np.arange(17)[None]] = 30.0
    decoded, _ = roi_heatmaps_to_keypoints(onehot.reshape(len(krois), s, s, 17), np.where(
        kvalid.any(1, keepdims=True), krois, [0, 0, 1, 1]))
    decoded = ops.convert_to_numpy(decoded)
    used = 0
    for i, roi in enumerate(krois):
        if not kvalid[i].any():
            continue
        b = i // t["keypoint_rois"].shape[1]
        j = int(np.argmin(np.abs(gt[b] - roi).sum(1) + 1e9 * ~valid[b]))  # its gt person (roi == gt box)
        np.testing.assert_allclose(roi, gt[b, j], atol=1e-4)
        w, h = roi[2] - roi[0], roi[3] - roi[1]
        err = np.abs(decoded[i] - kps[b, j, :, :2])
        assert np.all(err[:, 0] <= w / s + 1e-3) and np.all(err[:, 1] <= h / s + 1e-3)  # within one cell
        assert kvalid[i].all()
        used += 1
    assert used == int(2 * valid.sum())  # each person twice (proposal + appended gt), none dropped

    # RPN: the targets of the positive anchors decode back onto their gt box
    labels, sampled, targets = (ops.convert_to_numpy(v) for v in model.rpn_targets(y))
    assert labels.shape == sampled.shape == (2, len(model._anchors))
    assert np.all(sampled.sum(1) <= model.config["rpn_batch_per_image"]) and np.all(labels.sum(1) >= 1)
    back = ops.convert_to_numpy(decode_boxes(targets, model._anchors[None], RPN_BOX_WEIGHTS))
    for b in range(2):
        pos = labels[b] > 0
        dist = np.abs(back[b][pos][:, None, :] - gt[b][None]).max(-1)
        assert np.all(dist[:, valid[b]].min(1) < 1e-3)


def test_paper_configuration_one_train_step():
    """ResNet-50 FPN P2-P6, box head 2 x 1024, keypoint head 8 x 512 -> 56 x 56; one step on one 64x64 image.

    Sampling sizes are cut (RoIs per image 8) to keep it a CI test; the architecture is the paper's.
    """
    keras.utils.set_random_seed(3)
    model = build_keypoint_rcnn("paper", (SIZE, SIZE), seed=0, roi_batch_per_image=8, rpn_post_nms_top_n_train=64)
    assert sorted(model.feature_network.output) == ["p2", "p3", "p4", "p5", "p6"]
    assert model.keypoint_head.output_shape == (None, 56, 56, 17)
    assert model.box_head.output_shape == [(None, 2), (None, 8)]
    assert len([l for l in model.keypoint_head.layers if l.name.startswith("kp_conv")]) == 8
    model.compile(optimizer=keras.optimizers.SGD(1e-3))
    x, y = make_data(batch=1, persons=1)
    history = model.fit(x, y, batch_size=1, epochs=1, verbose=0).history
    for name in ("loss",) + LOSS_TERMS:
        assert np.isfinite(history[name][0]), name


def test_optimizer_schedule_milestones_and_scaling():
    opt = keypoint_rcnn_optimizer(steps_per_epoch=100, epochs=42, batch_size=8)  # the seed: 42 epochs, (36, 43)
    base = 0.02 * 8 / 16

    def lr_at(step):
        opt.iterations.assign(step)
        return float(ops.convert_to_numpy(opt.learning_rate))

    assert isinstance(opt, keras.optimizers.SGD) and opt.momentum == 0.9 and opt.weight_decay == 1e-4
    assert lr_at(0) == pytest.approx(base / 1000)  # warm-up start
    assert lr_at(99) == pytest.approx(base)  # warm-up = min(1000, steps_per_epoch - 1) steps
    assert lr_at(36 * 100 - 1) == pytest.approx(base)
    assert lr_at(36 * 100) == pytest.approx(base * 0.1)
    assert lr_at(42 * 100 - 1) == pytest.approx(base * 0.1)  # the run ends before the 43rd epoch
    assert lr_at(43 * 100 - 1) == pytest.approx(base * 0.1)
    assert lr_at(43 * 100) == pytest.approx(base * 0.01)  # only reached by a longer run
    with pytest.raises(ValueError, match="steps_per_epoch"):
        keypoint_rcnn_optimizer(0, 42, 8)


def test_bad_input_raises_value_error_naming_the_argument():
    model = build_keypoint_rcnn("cpu", (SIZE, SIZE), seed=0, **TINY)
    model.compile(optimizer=keras.optimizers.SGD(1e-3))
    x, y = make_data()
    with pytest.raises(ValueError, match=r"x \(images\)"):
        model(x[0])  # rank 3
    with pytest.raises(ValueError, match=r"x \(images\)"):
        model.fit(x[:, :32], y, batch_size=2, verbose=0)  # wrong size
    with pytest.raises(ValueError, match="missing key.*valid"):
        model.fit(x, {"boxes": y["boxes"], "keypoints": y["keypoints"]}, batch_size=2, verbose=0)
    bad = {**y, "boxes": y["boxes"].copy()}
    bad["boxes"][0, 0, 2] = bad["boxes"][0, 0, 0]  # width 0
    with pytest.raises(ValueError, match=r'y\["boxes"\].*width or height <= 0'):
        model.fit(x, bad, batch_size=2, verbose=0)
    with pytest.raises(ValueError, match=r'y\["keypoints"\]'):
        model.fit(x, {**y, "keypoints": y["keypoints"][:, :, :13]}, batch_size=2, verbose=0)
    with pytest.raises(ValueError, match=r'y\["valid"\]'):
        model.fit(x, {**y, "valid": y["valid"][:, :1]}, batch_size=2, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        xx, yy = make_data(batch=3)
        model.fit(xx, yy, batch_size=2, verbose=0)
    with pytest.raises(ValueError, match="config"):
        build_keypoint_rcnn("tiny", (SIZE, SIZE))
    with pytest.raises(ValueError, match="image_size"):
        build_keypoint_rcnn("cpu", (60, 64), **TINY)


def test_builders_and_backbone_for_image_size():
    cfg = KEYPOINT_RCNN_CONFIGS["cpu"]
    assert cfg["levels"] == (3,) and KEYPOINT_RCNN_CONFIGS["paper"]["levels"] == (2, 3, 4, 5)
    assert cfg["fpn_levels"] == (2, 3, 4, 5) and cfg["keypoint_levels"] == (2,)
    bb = small_resnet_backbone((SIZE, SIZE, 3), widths=(8, 8, 16, 16))
    feats = build_feature_network({**cfg, "fpn_channels": 16}, (SIZE, SIZE), backbone=bb)
    assert list(feats.output) == ["p2", "p3"] and tuple(feats.output["p3"].shape) == (None, 8, 8, 16)
    assert tuple(feats.output["p2"].shape) == (None, 16, 16, 16)
    names = {w.path.split("/")[0] for w in feats.weights}
    assert {"fpn_lateral4", "fpn_lateral5"} <= names and "fpn_output4" not in names  # merged, not output
    # P3 sees the deepest stage through the top-down pathway: its output changes with stage 4's weights
    x = np.random.default_rng(0).uniform(0, 255, (1, SIZE, SIZE, 3)).astype("float32")
    before = keras.ops.convert_to_numpy(feats(x)["p3"])
    stage4 = [w for w in bb.weights if w.path.startswith("stage4") and "kernel" in w.path][0]
    stage4.assign(keras.ops.convert_to_numpy(stage4) + 0.5)
    assert np.abs(keras.ops.convert_to_numpy(feats(x)["p3"]) - before).max() > 1e-4
    single = build_feature_network({**cfg, "fpn_channels": 16, "fpn_levels": (3,), "keypoint_levels": None},
                                   (SIZE, SIZE),
                                    backbone=small_resnet_backbone((SIZE, SIZE, 3), widths=(8, 8, 16, 16)))
    assert list(single.output) == ["p3"]
    assert not any(w.path.startswith("stage4") for w in single.weights)  # unused stages dropped
    with pytest.raises(ValueError, match="fpn_levels"):
        build_feature_network({**cfg, "fpn_levels": (4, 5)}, (SIZE, SIZE), backbone=bb)
    head = build_keypoint_head(16, num_convs=2, filters=16, upsample=1)
    assert head.output_shape == (None, 28, 28, 17)
    # weights of a backbone built for 128x96 crops, copied into one for 64x96 images
    source = small_resnet_backbone((128, 96, 3), widths=(8, 8, 16, 16))
    target = backbone_for_image_size((64, 96), source, backbone_kwargs={"widths": (8, 8, 16, 16)})
    assert target.input_shape == (None, 64, 96, 3)
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="source"):
        backbone_for_image_size((64, 96), small_resnet_backbone((64, 64, 3), widths=(8, 8, 16, 32)),
                                backbone_kwargs={"widths": (8, 8, 16, 16)})


def test_multilevel_roi_align_picks_torchvision_levels():
    """FPN RoIAlign: level floor(4 + log2(sqrt(area) / 224)) clamped to P2-P5, compared with roi_align on that level."""
    sizes = {k: TINY[k] for k in ("fpn_channels", "box_representation", "keypoint_convs", "keypoint_filters",
                                  "backbone_kwargs")}  # the fixture's layer sizes: JAX reuses its compiled initializers
    model = build_keypoint_rcnn("paper", (SIZE, SIZE), backbone="small", seed=0, **sizes)
    x, _ = make_data(batch=2)
    feats = model.feature_network(x)
    # sqrt(area) 10 -> P2 (clamped), 112 -> P3, 224 -> P4, 448 -> P5, 1000 -> P5 (clamped)
    sides, levels = [10.0, 112.0, 224.0, 448.0, 1000.0], [2, 3, 4, 5, 5]
    rois = np.array([[[4.0, 4.0, 4.0 + s, 4.0 + s] for s in sides]] * 2, "float32")
    flat, box_indices = rois.reshape(-1, 4), np.repeat(np.arange(2, dtype="int32"), len(sides))

    def both(feats, rois, flat):  # compiled: one trace instead of hundreds of eager ops under JAX
        per_level = {l: roi_align(feats[f"p{l}"], flat, box_indices, 7, 2.0 ** -l, 2) for l in (2, 3, 4, 5)}
        return model._roi_align(feats, rois, 2, 7), per_level

    got, per_level = compiled(both)(feats, rois, flat)
    got = ops.convert_to_numpy(got)
    for i, l in enumerate(levels * 2):
        np.testing.assert_allclose(got[i], ops.convert_to_numpy(per_level[l])[i], rtol=1e-5, atol=1e-5)


class _Batches(keras.utils.PyDataset):
    """Two fixed batches, as an endless stream (SceneStream) gives them: under TF its batch axis is unknown."""

    def __init__(self):
        super().__init__()
        self.data = [make_data(seed=s) for s in (3, 4)]

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]


def test_fit_and_predict_take_a_pydataset(trained):
    model = trained[0]
    stream = _Batches()
    history = model.fit(stream, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    out = model.predict(stream, verbose=0)
    assert out["boxes"].shape == (4, TINY["detections_per_image"], 4)


def test_keypoints_for_boxes_matches_the_detections(trained):
    """The keypoint head on given boxes = the keypoints that call() gives for the same (detected) boxes."""
    model, x, _, _, _, _ = trained
    out = model.predict(x, batch_size=2, verbose=0)
    valid = np.arange(out["boxes"].shape[1])[None] < out["num_detections"][:, None]
    boxes = np.where(valid[..., None], out["boxes"], np.float32([0, 0, 1, 1]))
    kps, scores = (ops.convert_to_numpy(a) for a in model.keypoints_for_boxes(x, boxes, valid))
    np.testing.assert_allclose(kps, out["keypoints"], atol=1e-3)
    np.testing.assert_allclose(scores, out["keypoint_scores"], atol=1e-5)
    assert np.all(kps[~valid] == 0)
    # the cpu configuration's keypoint head reads P2 (stride 4), the box head P3
    assert model.keypoint_levels == (2,) and model.roi_levels == (3,)
    feats = model.feature_network(x)
    flat = boxes.reshape(-1, 4)
    heat = model.keypoint_head(roi_align(feats["p2"], flat, np.repeat(np.arange(2, dtype="int32"), boxes.shape[1]),
                                         14, 1 / 4))
    ref, _ = roi_heatmaps_to_keypoints(heat, flat)
    ref = ops.convert_to_numpy(ref).reshape(kps.shape)
    np.testing.assert_allclose(kps[valid], ref[valid], atol=1e-3)
    with pytest.raises(ValueError, match="boxes"):
        model.keypoints_for_boxes(x, np.float32([[[5, 5, 3, 9]]] * 2))  # x2 < x1
    with pytest.raises(ValueError, match="boxes"):
        model.keypoints_for_boxes(x, boxes[0])  # rank 2


def test_train_for_minutes_plans_the_scaled_schedule_and_the_probe_does_not_train():
    from pose_lab.data.keypoint_rcnn import SceneStream

    keras.utils.set_random_seed(2)
    model = build_keypoint_rcnn("cpu", (SIZE, SIZE), seed=0, **TINY)
    stream = SceneStream(batch_size=2, steps_per_epoch=1, seed=3, image_size=(SIZE, SIZE), num_people=(1, 2))
    history, plan = train_for_minutes(model, stream, 5.0, probe_steps=1, max_steps=2, verbose=0)
    assert plan["steps_per_second"] > 0 and plan["steps"] == 2 and plan["epochs"] == 2
    assert plan["milestones_epochs"] == pytest.approx((36 * 2 / 42, 43 * 2 / 42))
    assert plan["replans"] == [] and plan["final_planned_steps"] == 2  # max_steps given: the plan is kept
    assert len(history.history["loss"]) == 2
    # the probe's three steps ran on their own SGD(0); the training optimizer counts only its 2 steps
    assert int(ops.convert_to_numpy(model.optimizer.iterations)) == 2
    lr = keypoint_rcnn_optimizer(1, 2, 2, milestones_epochs=plan["milestones_epochs"])._learning_rate
    for step in (0, 1, 3):  # the same warm-up / decay as the optimizer built by hand for the plan
        assert float(ops.convert_to_numpy(model.optimizer._learning_rate(step))) == pytest.approx(
            float(ops.convert_to_numpy(lr(step))))
    with pytest.raises(ValueError, match="max_steps"):
        train_for_minutes(model, stream, 1.0, probe_steps=0)
    with pytest.raises(ValueError, match="stream"):
        train_for_minutes(model, make_data(), 1.0, probe_steps=0, max_steps=1)
    with pytest.raises(ValueError, match="minutes"):
        train_for_minutes(model, stream, 0.0, probe_steps=0, max_steps=1)
