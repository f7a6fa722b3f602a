"""The endless synthetic stream, the batched crop, the time budget and the swap metric."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from pose_lab.data.pipelines import crop_images, crop_transform, transform_back
from pose_lab.data.synthetic import PersonCropStream
from pose_lab.metrics import assign_sides_from_truth, left_right_swaps
from pose_lab.skeletons import COCO17
from pose_lab.training.callbacks import TimeLimit


def _stream(**kw):
    kw.setdefault("batch_size", 6)
    kw.setdefault("steps_per_epoch", 3)
    kw.setdefault("input_size", (64, 48))
    kw.setdefault("image_size", (96, 96))
    return PersonCropStream(**kw)


def _person_hashes(stream):
    out = []
    for i in range(len(stream)):
        b = stream.batch(i)
        out += [hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest() for img in b["images"]]
    return out


def test_same_seed_same_stream_and_no_person_repeats_within_or_across_epochs():
    a, b = _stream(seed=3), _stream(seed=3)
    xa, ya = a[1]
    xb, yb = b[1]
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya["heatmaps"], yb["heatmaps"])
    # the order in which batches are asked for does not matter (workers may run ahead)
    np.testing.assert_array_equal(a[2][0], _stream(seed=3)[2][0])
    first = _person_hashes(a)
    assert len(set(first)) == len(first), "a person crop repeats within an epoch"
    a.on_epoch_end()
    second = _person_hashes(a)
    assert not set(first) & set(second), "epoch 2 repeats crops of epoch 1"
    assert not set(first) & set(_person_hashes(_stream(seed=4)))


def test_pairs_are_the_images_output_and_their_twins():
    (pairs,) = _stream(seed=5, output="pairs", augment=False)[1]
    (images,) = _stream(seed=5, output="images", augment=False)[1]
    assert pairs.shape == (6, 2, 64, 48, 3) and pairs.dtype == np.float32
    np.testing.assert_array_equal(pairs[:, 0], images)
    # the second view is another rendering of each person: different pixels, same seed same pairs
    assert np.abs(pairs[:, 0] - pairs[:, 1]).mean() > 10
    np.testing.assert_array_equal(pairs, _stream(seed=5, output="pairs", augment=False)[1][0])
    b = _stream(seed=5, output="pairs", augment=True).batch(0, heatmaps=False)
    assert b["twin_images"].shape == b["images"].shape


def test_batch_shapes_targets_and_weights():
    s = _stream(seed=0, output="both")
    x, y = s[0]
    assert x.shape == (6, 64, 48, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 255.0
    assert y["heatmaps"].shape == (6, 16, 12, 17) and y["weights"].shape == (6, 17)
    assert y["keypoints"].shape == (6, 17, 2)
    b = s.batch(0)
    kp = b["keypoints"]
    labelled = kp[..., 2] > 0
    # weight 1 exactly for labelled keypoints inside the crop, and the heatmap peaks there
    inside = labelled & (kp[..., 0] >= -2) & (kp[..., 0] < 48 + 2) & (kp[..., 1] >= -2) & (kp[..., 1] < 64 + 2)
    assert np.all(b["weights"][~labelled] == 0)
    for i, j in zip(*np.nonzero(b["weights"] > 0)):
        assert inside[i, j]
        hm = b["heatmaps"][i, ..., j]
        r, c = np.unravel_index(np.argmax(hm), hm.shape)
        assert abs(c - kp[i, j, 0] / 4) <= 0.5 + 1e-6 and abs(r - kp[i, j, 1] / 4) <= 0.5 + 1e-6
    with pytest.raises(IndexError):
        s[3]


def test_flip_mirrors_the_crop_and_swaps_left_and_right():
    plain = _stream(seed=5, augment=False).batch(0)
    flip = _stream(seed=5, augment={"zoom": None, "rotation_probability": 0.0, "flip_probability": 1.0}).batch(0)
    # augmentation draws come after rendering, so both batches hold the same persons
    np.testing.assert_allclose(flip["images"], plain["images"][:, :, ::-1], atol=0.05)
    perm = np.asarray(COCO17.flip_permutation)
    expected = plain["keypoints"][:, perm].copy()
    expected[..., 0] = 48 - 1 - expected[..., 0]
    np.testing.assert_allclose(flip["keypoints"], expected, atol=1e-3)
    assert flip["flipped"].all() and not plain["flipped"].any()


def test_stream_trains_with_fit():
    from pose_lab.models.keypoints2d import build_heatmap_model
    from pose_lab.training.keypoints2d import KeypointTrainer

    net = build_heatmap_model("small", (64, 64, 3), backbone_kwargs={"widths": (8, 8, 8, 8)}, head_filters=8,
                              head_layers=3, skip_connections=True)
    model = KeypointTrainer(net)
    model.compile(keras.optimizers.Adam(1e-3))
    stream = _stream(seed=1, batch_size=4, steps_per_epoch=2, input_size=(64, 64))
    hist = model.fit(stream, epochs=2, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    assert stream.epoch >= 2  # Keras may call on_epoch_end once more at the end of fit()


def test_bad_stream_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        PersonCropStream(batch_size=0)
    with pytest.raises(ValueError, match="multiple of heatmap_stride"):
        PersonCropStream(input_size=(66, 48))
    with pytest.raises(ValueError, match="output"):
        PersonCropStream(output="coordinates")
    with pytest.raises(ValueError, match="no person"):
        _stream(num_people=(0, 0))[0]


def _bilinear_reference(image, A, h, w):
    """Pixel-by-pixel bilinear sampling through the inverse map (zeros outside)."""
    H, W, C = image.shape
    out = np.zeros((h, w, C))
    for y in range(h):
        for x in range(w):
            sx, sy = transform_back(np.array([[x, y]], float), A)[0]
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
                if 0 <= xx < W and 0 <= yy < H:
                    out[y, x] += (1 - abs(sx - xx)) * (1 - abs(sy - yy)) * image[yy, xx]
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_batched_crop_matches_a_pixel_loop_at_borders_and_rotations(dtype):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 20, 17, 3)).astype(dtype)
    boxes = np.array([[-4.0, -3.0, 12.0, 15.0], [8.0, 9.0, 14.0, 16.0], [2.0, 2.0, 9.0, 9.0]])
    A = np.stack([crop_transform(b, (12, 9), rotation=r, scale=s)
                  for b, r, s in zip(boxes, (0.0, 0.7, -2.0), (1.0, 1.3, 0.6))])
    index = np.array([0, 1, 1])
    got = crop_images(images, A, (12, 9), image_index=index)
    for k in range(3):
        np.testing.assert_allclose(got[k], _bilinear_reference(images[index[k]].astype(float), A[k], 12, 9),
                                   atol=1e-3)


def test_time_limit_stops_at_the_budget_and_does_not_count_evaluations():
    now = [0.0]
    calls = []

    def clock():
        return now[0]

    def evaluate(model):
        calls.append(now[0])
        now[0] += 100.0  # a slow evaluation: must not count as training time
        return {"AP": 0.5}

    class Model:
        stop_training = False

    limit = TimeLimit(minutes=1.0, evaluate=evaluate, marks=(0.5,), clock=clock)
    limit.set_model(Model())
    limit.on_train_begin()
    limit.on_epoch_begin(0)
    steps = 0
    while not limit.model.stop_training:
        now[0] += 7.0
        limit.on_train_batch_end(steps)
        steps += 1
    limit.on_train_end()
    assert steps == 9  # 9 x 7 s = 63 s >= 60 s, the evaluation's 100 s not counted
    assert limit.steps == 9 and limit.trained_seconds == pytest.approx(63.0)
    assert [round(c["minutes"], 3) for c in limit.curve] == [round(35 / 60, 3), round(63 / 60, 3)]
    assert len(calls) == 2
    with pytest.raises(ValueError, match="minutes"):
        TimeLimit(minutes=0)


def test_left_right_swaps_closed_forms():
    rng = np.random.default_rng(1)
    target = np.concatenate([rng.uniform(0, 100, (5, 17, 2)), np.full((5, 17, 1), 2.0)], -1)
    target[:, 5:17:2, 0] -= 200.0  # left limb joints far from the right ones
    perm = np.asarray(COCO17.flip_permutation)
    right = left_right_swaps(target[..., :2], target, 100.0)
    assert right["swap_rate"] == 0.0 and right["error_rate"] == 0.0 and right["scored"] == 60
    mirrored = left_right_swaps(target[:, perm, :2], target, 100.0)
    assert mirrored["swap_rate"] == 1.0 and mirrored["swap_share"] == 1.0
    assert mirrored["exchange_rate"] == 1.0 and mirrored["double_rate"] == 0.0  # every pair exchanged
    # both wrists predicted on the right wrist: the left one is a double, the right one is correct
    both = target[..., :2].copy()
    both[:, 9] = target[:, 10, :2]
    r = left_right_swaps(both, target, 100.0)
    assert r["swap_rate"] == pytest.approx(5 / 60) and r["double_rate"] == pytest.approx(5 / 60)
    assert r["exchange_rate"] == 0.0
    # the oracle that names the sides: exchanged pairs come back exactly, a double stays (one limb found twice)
    np.testing.assert_array_equal(assign_sides_from_truth(target[:, perm, :2], target), target[..., :2])
    np.testing.assert_array_equal(assign_sides_from_truth(both, target), both)
    one_side = target.copy()
    one_side[:, 10, 2] = 0  # right wrist unlabelled: its pair is left as predicted
    np.testing.assert_array_equal(assign_sides_from_truth(target[:, perm, :2], one_side)[:, 9:11],
                                  target[:, perm, :2][:, 9:11])
    # ... and with the right wrist far off as well: a swap of neither kind
    both[:, 10] += 1000.0
    r = left_right_swaps(both, target, 100.0)
    assert r["swap_rate"] == pytest.approx(5 / 60) and r["double_rate"] == 0.0 and r["exchange_rate"] == 0.0
    # half the persons mirrored; an unlabelled mirror joint takes its pair out of the count
    half = target[..., :2].copy()
    half[:2] = target[:2, perm, :2]
    target[0, 9, 2] = 0  # left wrist unlabelled -> left and right wrist of person 0 not scored
    r = left_right_swaps(half, target, 100.0)
    assert r["scored"] == 58 and r["swap_rate"] == pytest.approx(22 / 58)
    # an error that is not a swap
    off = target[..., :2].copy()
    off[:, 5, 0] -= 500.0  # further from the right side than from its own place
    assert left_right_swaps(off, target, 100.0)["swap_rate"] == 0.0


_BUDGET_RUN = """
import time, keras, numpy as np
from pose_lab.data.synthetic import PersonCropStream
from pose_lab.models.keypoints2d import build_heatmap_model
from pose_lab.training.keypoints2d import fit_for_minutes, measure_training_rate

net = build_heatmap_model("small", (64, 64, 3), backbone_kwargs={"widths": (8, 8, 8, 8)}, head_filters=8,
                          head_layers=3, skip_connections=True)
stream = PersonCropStream(batch_size=4, steps_per_epoch=3, seed=2, input_size=(64, 64), image_size=(96, 96), workers=1)
before = [w.copy() for w in net.get_weights()]
rate, seconds = measure_training_rate(net, stream, steps=2, warmup_steps=1)
assert rate > 0 and seconds > 0
assert stream.epoch == 0, "the probe consumed the stream"
for a, b in zip(before, net.get_weights()):
    np.testing.assert_array_equal(a, b, err_msg="the probe trained the network")

class LastStep(keras.callbacks.Callback):
    # times each step as TimeLimit counts it (from the previous step's end or the epoch's start)
    def on_epoch_begin(self, epoch, logs=None):
        self.mark = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.seconds, self.mark = now - self.mark, now

last, minutes = LastStep(), 0.1
trainer, limit, info = fit_for_minutes(net, stream, minutes, warmup_steps=2, probe_steps=2, progress=False,
                                       evaluate=lambda m: {"ok": 1.0}, callbacks=[last])
budget = max(minutes * 60 - info["probe_seconds"], 1.0)  # the probe's time counts against the budget
# the run stops at the first step that reaches the budget: not before it, and not a step later
assert limit.trained_seconds >= budget, (limit.trained_seconds, budget)
assert limit.trained_seconds - last.seconds < budget + 0.05, (limit.trained_seconds, last.seconds, budget)
assert limit.steps >= 1 and info["planned_steps"] >= 2
assert limit.curve[-1]["ok"] == 1.0 and limit.curve[-1]["steps"] == limit.steps
assert trainer.network is net
print("budget run done", flush=True)

# and a run on the stream interrupted mid-epoch (Ctrl-C), caught: the process must still exit
from pose_lab.training.base import fit_resumable

class CtrlC(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        raise KeyboardInterrupt

try:
    fit_resumable(trainer, stream, epochs=2, callbacks=[CtrlC()], progress=False)
except KeyboardInterrupt:
    print("interrupted run done", flush=True)
"""


def test_fit_for_minutes_probe_leaves_the_stream_stops_at_the_budget_and_the_process_exits(tmp_path):
    # In a fresh interpreter: a run stopped mid-epoch on a stream with a worker thread (by the budget or by
    # Ctrl-C) once left the process hanging at exit under TensorFlow (training.base.fit_and_release); the
    # timeout catches that.
    root = Path(__file__).resolve().parents[1]
    script = tmp_path / "budget_run.py"
    script.write_text(_BUDGET_RUN)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    try:
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=root,
                              timeout=240)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the process did not exit within 240 s; its output: {e.stdout!r} {e.stderr!r}"[-3000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "budget run done" in proc.stdout and "interrupted run done" in proc.stdout
