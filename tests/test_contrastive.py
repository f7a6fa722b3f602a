"""SimCLR / SimSiam (issue 15): losses against closed forms and a numpy reference, heads,
training classes, the encoder learning-rate multiplier, collapse monitoring and
distributed negatives on two logical CPU devices.

Runs under TensorFlow and JAX (CI runs the file once per backend); the two-device test
runs the current backend in a fresh process (devices are fixed when a backend starts).
"""

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers, ops

from pose_lab import losses
from pose_lab.data.augment import CONTRASTIVE_AUGMENTATIONS, contrastive_augmentation
from pose_lab.models import contrastive as MC
from pose_lab.training import contrastive as TC

BACKEND = keras.backend.backend()
pytestmark = pytest.mark.skipif(BACKEND not in ("tensorflow", "jax"), reason="tensorflow and jax only")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _nt_xent_numpy(z1, z2, tau):
    """The paper's L: 2N embeddings, softmax over the 2N - 1 others, averaged over all 2N anchors."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    sim = z @ z.T / tau
    total = 0.0
    for i in range(2 * n):
        j = i + n if i < n else i - n
        others = [k for k in range(2 * n) if k != i]
        total += -(sim[i, j] - np.log(np.sum(np.exp(sim[i, others]))))
    return total / (2 * n)


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("n", [1, 3, 8])
def test_nt_xent_identical_embeddings_closed_form(n):
    z = np.ones((n, 5), np.float32)
    np.testing.assert_allclose(_np(losses.nt_xent(z, z, 0.1)), 2 * math.log(2 * n - 1), atol=1e-4)
    np.testing.assert_allclose(_np(losses.nt_xent(z, z, 0.5, directions="mean")), math.log(2 * n - 1), atol=1e-4)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_matches_numpy_reference(tau):
    rng = np.random.default_rng(int(tau * 10))
    z1, z2 = rng.normal(size=(2, 6, 9)).astype(np.float32)
    ref = _nt_xent_numpy(z1, z2, tau)
    np.testing.assert_allclose(_np(losses.nt_xent(z1, z2, tau, directions="mean")), ref, rtol=1e-5)
    # google-research/simclr sums the two directions: twice the paper's value
    np.testing.assert_allclose(_np(losses.nt_xent(z1, z2, tau)), 2 * ref, rtol=1e-5)
    per_pair = _np(losses.nt_xent(z1, z2, tau, reduction="none"))
    assert per_pair.shape == (6,)
    np.testing.assert_allclose(per_pair.mean(), 2 * ref, rtol=1e-5)


def test_nt_xent_is_invariant_to_scaling_and_prefers_aligned_pairs():
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(2, 5, 4)).astype(np.float32)
    base = _np(losses.nt_xent(z1, z2, 0.2))
    np.testing.assert_allclose(_np(losses.nt_xent(3.0 * z1, 0.25 * z2, 0.2)), base, rtol=1e-5)
    assert _np(losses.nt_xent(z1, z1 + 0.01 * z2, 0.2)) < base  # positives aligned: lower loss


def test_nt_xent_shards_with_global_negatives_equal_the_whole_batch():
    """The distributed form (local anchors, global candidates) averaged over shards is the loss."""
    rng = np.random.default_rng(2)
    z1, z2 = rng.normal(size=(2, 8, 6)).astype(np.float32)
    whole = _np(losses.nt_xent(z1, z2, 0.3))
    shards = [_np(losses.nt_xent(z1[i:i + 2], z2[i:i + 2], 0.3, z1_all=z1, z2_all=z2, offset=i))
              for i in range(0, 8, 2)]
    np.testing.assert_allclose(np.mean(shards), whole, rtol=1e-5)
    # local negatives only (no gathering) give a different, smaller loss
    local = np.mean([_np(losses.nt_xent(z1[i:i + 2], z2[i:i + 2], 0.3)) for i in range(0, 8, 2)])
    assert local < whole - 0.5


def test_nt_xent_bad_input():
    with pytest.raises(ValueError, match="z1, z2"):
        losses.nt_xent(np.ones((4, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="temperature"):
        losses.nt_xent(np.ones((4, 3)), np.ones((4, 3)), 0.0)
    with pytest.raises(ValueError, match="directions"):
        losses.nt_xent(np.ones((4, 3)), np.ones((4, 3)), directions="both")


def test_simsiam_loss_closed_forms_and_stop_gradient():
    rng = np.random.default_rng(3)
    p = rng.normal(size=(5, 8)).astype(np.float32)
    np.testing.assert_allclose(_np(losses.simsiam_loss(p, p, p, p)), -1.0, atol=1e-6)
    np.testing.assert_allclose(_np(losses.simsiam_loss(p, p, -2 * p, -p)), 1.0, atol=1e-6)
    p1, p2, z1, z2 = rng.normal(size=(4, 5, 8)).astype(np.float32)
    cos = lambda a, b: np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)  # noqa: E731
    ref = np.mean(-0.5 * cos(p1, z2) - 0.5 * cos(p2, z1))
    np.testing.assert_allclose(_np(losses.simsiam_loss(p1, p2, z1, z2)), ref, rtol=1e-5)
    # the gradient with respect to z is zero with the stop-gradient, not without it
    grad_z = _np(losses.input_gradient(lambda z: losses.simsiam_loss(p1, p2, z, z2), z1))
    assert np.all(grad_z == 0)
    grad_free = _np(losses.input_gradient(lambda z: losses.simsiam_loss(p1, p2, z, z2, stop_gradient=False), z1))
    assert np.abs(grad_free).max() > 1e-3
    grad_p = _np(losses.input_gradient(lambda p: losses.simsiam_loss(p, p2, z1, z2), p1))
    assert np.abs(grad_p).max() > 1e-3


def test_scale_gradient_is_identity_forward_and_scales_backward():
    x = np.random.default_rng(4).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(_np(TC.scale_gradient(x, 0.25)), x, rtol=1e-6)
    np.testing.assert_allclose(_np(losses.input_gradient(lambda t: TC.scale_gradient(t, 0.25) * 2.0, x)), 0.5)


def test_output_std_healthy_and_collapsed():
    rng = np.random.default_rng(5)
    d = 64
    z = rng.normal(size=(4000, d)).astype(np.float32)
    np.testing.assert_allclose(_np(TC.output_std(z)) * math.sqrt(d), 1.0, atol=0.03)
    collapsed = np.tile(rng.normal(size=(1, d)), (50, 1)).astype(np.float32)
    assert _np(TC.output_std(collapsed)) < 1e-6
    monitor = TC.CollapseMonitor(d)
    with pytest.warns(RuntimeWarning, match="collapse"):
        monitor.on_epoch_end(0, {"output_std": 0.01})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor.on_epoch_end(1, {"output_std": 1.0 / math.sqrt(d)})
    np.testing.assert_allclose(monitor.history, [0.08, 1.0], rtol=1e-6)


# ----------------------------------------------------------------------------- heads


def _bns(model):
    return [la for la in model.layers if isinstance(la, layers.BatchNormalization)]


def test_heads_follow_the_papers():
    g = MC.simclr_projection_head(32, output_dim=16, num_layers=3)
    assert g.output_shape == (None, 16)
    assert [la.center for la in _bns(g)] == [True, True, False]
    assert all(not la.use_bias for la in g.layers if isinstance(la, layers.Dense))
    f = MC.simsiam_projector(32, 24)
    last = _bns(f)[-1]
    assert (last.center, last.scale) == (False, False) and len(_bns(f)) == 3
    q = MC.simsiam_predictor(24)
    dense = [la for la in q.layers if isinstance(la, layers.Dense)]
    assert [d.units for d in dense] == [6, 24] and dense[-1].use_bias
    with pytest.raises(ValueError, match="output_dim"):
        MC.simclr_projection_head(32, output_dim=0)


def _encoder(size=32):
    """A tiny encoder (one conv + pooling): the training tests compile fast under JAX."""
    inp = keras.Input((size, size, 3))
    x = layers.Conv2D(16, 3, strides=4, activation="relu")(layers.Rescaling(1 / 255.0)(inp))
    return keras.Model(inp, layers.GlobalAveragePooling2D()(x), name="tiny_encoder")


def test_build_encoder_pools_the_backbone():
    enc = MC.build_encoder("small", (32, 32, 3), backbone_kwargs={"widths": (4, 4, 4, 8)})
    assert enc.output_shape == (None, 8)
    x = np.random.default_rng(10).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    bb = enc.layers[1]
    np.testing.assert_allclose(_np(enc(x)), _np(bb(x)["stride32"]).mean(axis=(1, 2)), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="features"):
        MC.build_encoder(bb, features="stride64")


def test_contrastive_augmentation_names_and_identity():
    x = np.random.default_rng(6).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(_np(contrastive_augmentation(())(x, training=True)), x)
    flip = contrastive_augmentation(("flip",), seed=1)
    out = _np(flip(np.repeat(x[:1], 16, 0), training=True))
    mirrored = [np.allclose(o, x[0, :, ::-1], atol=1e-3) for o in out]
    same = [np.allclose(o, x[0], atol=1e-3) for o in out]
    assert all(m or s for m, s in zip(mirrored, same)) and any(mirrored) and any(same)
    with pytest.raises(ValueError, match="unknown names"):
        contrastive_augmentation(("colour",))
    assert len(contrastive_augmentation(CONTRASTIVE_AUGMENTATIONS).layers) == 7


# ----------------------------------------------------------------------------- training classes


def test_simclr_and_simsiam_train_and_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(7).uniform(0, 255, (16, 32, 32, 3)).astype(np.float32)
    simclr = TC.SimCLR(_encoder(), MC.simclr_projection_head(16, output_dim=8), temperature=0.5)
    simclr.compile(optimizer=TC.contrastive_optimizer(0.3, 8, total_steps=4))
    hist = simclr.fit(x, batch_size=8, epochs=2, verbose=0).history
    assert set(hist) == {"loss", "accuracy"} and np.all(np.isfinite(hist["loss"]))
    assert all(0 <= a <= 1 for a in hist["accuracy"])
    simsiam = TC.SimSiam(_encoder(), MC.simsiam_projector(16, 12), MC.simsiam_predictor(12),
                         augmenter=contrastive_augmentation(("noise", "scale"), seed=2))
    simsiam.compile(optimizer=TC.contrastive_optimizer(0.05, 8, total_steps=4))
    hist = TC.fit_contrastive(simsiam, x, batch_size=8, epochs=1, progress=False).history
    assert set(hist) == {"loss", "output_std"} and -1 <= hist["loss"][0] <= 1
    for model in (simclr, simsiam):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        back = keras.models.load_model(path)
        assert type(back) is type(model)
        np.testing.assert_allclose(_np(back.embed(x[:3])), _np(model.embed(x[:3])), atol=1e-5)
    assert back.stop_gradient and back.output_dim == 12


def test_views_are_two_different_augmentations():
    model = TC.SimCLR(_encoder(), MC.simclr_projection_head(16, output_dim=8),
                      augmenter=contrastive_augmentation(("noise", "scale", "color_jitter"), seed=4))
    x = np.random.default_rng(8).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    v1, v2 = model.views(x)
    assert np.abs(_np(v1) - _np(v2)).mean() > 1.0
    with pytest.raises(ValueError, match=r"expected images \(B, 32, 32, 3\)"):
        model.views(np.zeros((2, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="encoder"):
        TC.SimCLR(MC.simclr_projection_head(4), MC.simclr_projection_head(4))


def test_pairs_give_one_view_each_and_train():
    """(B, 2, H, W, 3) input: view 1 from [:, 0], view 2 from [:, 1] (one pose, two appearances)."""
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(10).uniform(0, 255, (8, 2, 32, 32, 3)).astype(np.float32)
    model = TC.SimCLR(_encoder(), MC.simclr_projection_head(16, output_dim=8), augmenter=layers.Identity())
    v1, v2 = model.views(x)
    np.testing.assert_array_equal(_np(v1), x[:, 0])
    np.testing.assert_array_equal(_np(v2), x[:, 1])
    out = model(x, training=False)
    np.testing.assert_allclose(_np(out["z1"]), _np(model.projector(model.encoder(x[:, 0]))), atol=1e-5)
    np.testing.assert_allclose(_np(out["z2"]), _np(model.projector(model.encoder(x[:, 1]))), atol=1e-5)
    model.compile(optimizer=TC.contrastive_optimizer(0.3, 4, total_steps=2))
    assert np.isfinite(model.fit(x, batch_size=4, epochs=1, verbose=0).history["loss"][0])
    with pytest.raises(ValueError, match=r"or pairs \(B, 2, 32, 32, 3\)"):
        model.views(np.zeros((2, 3, 32, 32, 3), np.float32))


def test_encoder_lr_multiplier_halves_the_encoder_step_with_sgd():
    """Seed 000: encoder lr = head lr / 2. With SGD the encoder's update is exactly halved."""
    x = np.random.default_rng(9).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)

    def deltas(mult):
        keras.utils.set_random_seed(3)
        enc = _encoder()
        model = TC.SimCLR(enc, MC.simclr_projection_head(16, output_dim=8), augmenter=layers.Identity(),
                          encoder_lr_multiplier=mult)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        before_e = [np.array(w) for w in enc.trainable_weights]
        before_h = [np.array(w) for w in model.projector.trainable_weights]
        model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
        de = [np.array(w) - b for w, b in zip(enc.trainable_weights, before_e)]
        dh = [np.array(w) - b for w, b in zip(model.projector.trainable_weights, before_h)]
        return de, dh

    de1, dh1 = deltas(1.0)
    de5, dh5 = deltas(0.5)
    assert max(np.abs(d).max() for d in de1) > 1e-5
    for a, b in zip(de1, de5):
        np.testing.assert_allclose(b, 0.5 * a, rtol=1e-3, atol=1e-7)
    for a, b in zip(dh1, dh5):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-7)


def test_contrastive_optimizer_schedule():
    lr = TC.contrastive_schedule(0.3, 128, total_steps=100, final_fraction=0.1)
    assert isinstance(TC.contrastive_optimizer(0.3, 128, 100), keras.optimizers.SGD)
    np.testing.assert_allclose(float(lr(0)), 0.15, rtol=1e-6)
    np.testing.assert_allclose(float(lr(100)), 0.015, rtol=1e-5)
    np.testing.assert_allclose(float(lr(50)), 0.015 + 0.5 * 0.135, rtol=1e-5)
    with pytest.raises(ValueError, match="total_steps"):
        TC.contrastive_optimizer(0.3, 128, total_steps=0)


# ----------------------------------------------------------------------------- distributed negatives


def test_two_devices_give_the_single_device_loss():
    """SimCLR on a global batch over 2 logical CPU devices (TF MirroredStrategy / JAX DataParallel)."""
    script = Path(__file__).with_name("contrastive_two_devices.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, str(script), BACKEND], capture_output=True, text=True, env=env,
                          timeout=300)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    out = json.loads(line[-1][len("RESULT "):])
    assert out["replicas"] == 2
    single, dist = out["loss"]
    assert abs(single - dist) <= 1e-5
    assert out["grad_max_abs_diff"] <= 1e-5
    assert abs(out["fit_loss"][0] - out["fit_loss"][1]) <= 1e-5
    assert out["weights_max_abs_diff"] <= 1e-4


# ----------------------------------------------------------------------------- evaluation tools

from pose_lab.evaluation import contrastive as EC  # noqa: E402


class _Exact(keras.Model):
    """A "probe" returning given keypoints (in units of the crop) whatever the features."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def predict(self, x, **kwargs):
        return self.out[: len(x)]


def test_probe_scores_closed_forms():
    rng = np.random.default_rng(11)
    kp = np.concatenate([rng.uniform(10, 80, (5, 17, 2)), np.full((5, 17, 1), 2.0)], axis=-1).astype(np.float32)
    kp[0, 3, 2] = 0  # an unlabelled keypoint is not scored
    ref = np.full(5, 100.0, np.float32)
    exact = kp[..., :2] / np.array([96, 128], np.float32)
    s = EC.probe_scores(_Exact(exact), np.zeros((5, 4)), kp, ref)
    assert s["PCK@0.05"] == 1.0 and s["error % box"] < 1e-4
    shifted = (kp[..., :2] + np.array([6.0, 8.0])) / np.array([96, 128], np.float32)  # 10 px = 10 % of the box
    s = EC.probe_scores(_Exact(shifted.astype(np.float32)), np.zeros((5, 4)), kp, ref)
    assert s["PCK@0.05"] == 0.0
    np.testing.assert_allclose(s["error % box"], 10.0, rtol=1e-4)


def test_a_linear_probe_recovers_linearly_encoded_keypoints():
    rng = np.random.default_rng(12)
    kp = np.concatenate([rng.uniform(5, 90, (600, 17, 2)), np.full((600, 17, 1), 2.0)], axis=-1).astype(np.float32)
    mix = rng.normal(size=(34, 40)).astype(np.float32)
    feats = (kp[..., :2] / np.array([96, 128])).reshape(600, 34).astype(np.float32) @ mix
    probe, _ = EC.fit_probe(feats[:500], kp[:500], num_layers=1, epochs=100, learning_rate=1e-2, batch_size=100)
    s = EC.probe_scores(probe, feats[500:], kp[500:], np.full(100, 102.4))
    assert s["error % box"] < 5.0 and s["PCK@0.05"] > 0.7, s  # random features: about 20 % (notebook 04)
    with pytest.raises(ValueError, match="features"):
        EC.fit_probe(feats[:10], kp[:11])


def test_median_pose_and_a_probe_on_noise_features_stays_at_it():
    """Features that carry no pose: the probe must not do worse than predicting the median pose.

    Before the probe started at the median pose with early stopping, random-encoder
    features scored 19-21 % of the box against 17.6 % for the constant (notebook 04).
    """
    rng = np.random.default_rng(14)
    kp = np.concatenate([rng.normal(48, 15, (900, 17, 1)), rng.normal(64, 20, (900, 17, 1)),
                         np.full((900, 17, 1), 2.0)], axis=-1).astype(np.float32)
    kp[:10, 0, :] = (1000.0, 1000.0, 0.0)  # unlabelled: ignored by the median
    med = EC.median_pose(kp[:600])
    want = np.median(kp[10:600, 0, :2], axis=0) / np.array([96, 128])
    np.testing.assert_allclose(med[0], want, rtol=1e-6)
    np.testing.assert_allclose(med[1], np.median(kp[:600, 1, :2], axis=0) / np.array([96, 128]), rtol=1e-6)
    noise = rng.normal(size=(900, 64)).astype(np.float32)
    splits = {"train": {"keypoints": kp[:600]}, "val": {"keypoints": kp[600:750]}, "test": {"keypoints": kp[750:]}}
    for d in splits.values():
        d["ref_size"] = np.full(len(d["keypoints"]), 102.4, np.float32)
    feats = {"noise": {"train": noise[:600], "val": noise[600:750], "test": noise[750:]}}
    _, scores = EC.probe_table(feats, splits, layers=(1, 3), batch_size=100)
    const = scores[("median pose", 0)]["test"]["error % box"]
    pred = np.broadcast_to(med * np.array([96, 128]), (150, 17, 2))
    err = np.linalg.norm(pred - kp[750:, :, :2], axis=-1) / 102.4
    np.testing.assert_allclose(const, 100 * err.mean(), rtol=1e-5)
    for k in (1, 3):
        assert scores[("noise", k)]["test"]["error % box"] < 1.02 * const, (k, scores[("noise", k)], const)


def test_cluster_scores_separated_blobs():
    rng = np.random.default_rng(13)
    x = np.concatenate([rng.normal(0, 0.1, (50, 3)), rng.normal(10, 0.1, (50, 3))])
    out = EC.cluster_scores(x, 2, random_state=3)
    assert out["silhouette"] > 0.95 and len(set(out["labels"][:50])) == 1 and len(set(out["labels"])) == 2
    noise = EC.cluster_scores(rng.normal(size=(100, 3)), 2, random_state=3)
    assert noise["silhouette"] < 0.5
    with pytest.raises(ValueError, match="n_clusters"):
        EC.cluster_scores(x[:2], 2)


def test_probe_data_is_fixed_and_split_by_subject():
    a = EC.probe_data("val", 10, batch_size=8)
    b = EC.probe_data("val", 10, batch_size=8)
    assert a["images"].dtype == np.uint8 and a["images"].shape == (10, 128, 96, 3)
    np.testing.assert_array_equal(a["images"], b["images"])
    assert not np.array_equal(EC.probe_data("test", 10, batch_size=8)["images"], a["images"])
    np.testing.assert_allclose(a["ref_size"], 102.4)
    with_actions = EC.probe_data("train", 6, batch_size=6, actions=True)
    assert with_actions["actions"].shape == (6,) and all(isinstance(s, str) for s in with_actions["actions"])
    with pytest.raises(ValueError, match="split"):
        EC.probe_data("S9", 4)


def test_spatial_encoder_is_the_map_before_pooling():
    enc = MC.build_encoder("small", (32, 32, 3), backbone_kwargs={"widths": (4, 4, 4, 8)})
    x = np.random.default_rng(14).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    flat = EC.encoder_features(enc, x, spatial=True)
    assert flat.shape == (3, 8)  # a 1x1x8 map at stride 32
    np.testing.assert_allclose(flat, EC.encoder_features(enc, x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pool"):
        EC.spatial_encoder(_encoder_without_pool())


def _encoder_without_pool():
    inp = keras.Input((8, 8, 3))
    return keras.Model(inp, layers.Flatten()(inp))


def test_pretrain_for_a_few_steps():
    from pose_lab.data.synthetic import PersonCropStream

    stream = PersonCropStream(4, 2, seed=3, input_size=(32, 32), augment=False, output="images")
    (images,) = stream[0]
    assert images.shape == (4, 32, 32, 3)
    model, limit, info = TC.pretrain_for_minutes(
        lambda: TC.SimCLR(_encoder(), MC.simclr_projection_head(16, output_dim=8),
                          contrastive_augmentation(("noise",), seed=1)),
        stream, 1.0, base_learning_rate=0.3, batch_size=4, steps=3, run_eagerly=True, progress=False)
    assert limit.steps == 3 and info["planned_steps"] == 3 and len(info["history"]["loss"]) == 2
    assert info["steps_per_second"] == pytest.approx(limit.steps / limit.trained_seconds)
    assert np.isnan(info["probe_steps_per_second"])


def test_pretrain_for_minutes_reports_the_runs_rate_not_the_probes():
    from pose_lab.data.synthetic import PersonCropStream

    stream = PersonCropStream(4, 2, seed=3, input_size=(32, 32), augment=False, output="images")
    model, limit, info = TC.pretrain_for_minutes(
        lambda: TC.SimCLR(_encoder(), MC.simclr_projection_head(16, output_dim=8),
                          contrastive_augmentation(("noise",), seed=1)),
        stream, 0.05, base_learning_rate=0.3, batch_size=4, probe_steps=2, run_eagerly=True, progress=False)
    assert limit.steps >= 1 and info["probe_steps_per_second"] > 0
    # the rate a notebook prints is the run's; the probe's (a few steps of a throw-away model) only made the plan
    assert info["steps_per_second"] == pytest.approx(limit.steps / limit.trained_seconds, rel=1e-9)
    assert info["steps_per_second"] != info["probe_steps_per_second"]


def test_coco_probe_data_cuts_real_persons_like_the_stream():
    from pose_lab.data import samples
    from pose_lab.data.coco import load_coco_keypoints

    real = samples.real_samples_dir(download=False)
    if real is None:
        pytest.skip("the real COCO sample is not in data/samples/real")
    ann = real / "coco_val2017_mini/person_keypoints_val2017_mini.json"
    out = EC.coco_probe_data(ann, real / "coco_val2017_mini/val2017")
    records = load_coco_keypoints(ann, real / "coco_val2017_mini/val2017", min_keypoints=1)
    assert out["images"].shape == (len(records), 128, 96, 3) and out["images"].dtype == np.uint8
    # a visible keypoint inside its box lands inside the crop (the box, enlarged 1.25, fills the crop)
    for r, k in zip(records, out["keypoints"]):
        x, y, w, h = r.bbox
        src = np.asarray(r.keypoints)
        inside = (src[:, 2] > 0) & (src[:, 0] >= x) & (src[:, 0] <= x + w) & (src[:, 1] >= y) & (src[:, 1] <= y + h)
        assert np.all((k[inside, 0] >= 0) & (k[inside, 0] <= 95) & (k[inside, 1] >= 0) & (k[inside, 1] <= 127))
        np.testing.assert_array_equal(k[:, 2], src[:, 2])
    assert out["images"].std() > 10  # real pixels, not an empty crop
