"""Cross-modal VAE (pose_lab.data/models/training/evaluation.crossmodal).

Runs under whichever backend ``KERAS_BACKEND`` selects; ``.ci/run`` runs the
unit tests under TensorFlow and again under JAX.
"""

import keras
import numpy as np
import pytest

from pose_lab import metrics
from pose_lab.data.crossmodal import crossmodal_stats, prepare_crossmodal_data
from pose_lab.data.normalization import NormStats
from pose_lab.evaluation.crossmodal import IMAGE_TO_3D, POSE2D_TO_3D, evaluate_crossmodal, mean_pose
from pose_lab.models.crossmodal import (
    build_crossmodal_networks,
    build_image_decoder,
    build_image_encoder,
    build_pose2d_encoder,
    build_pose3d_decoder,
)
from pose_lab.training.crossmodal import PAIRS, CrossModalVAE, suggested_jit_compile

SIZE = 16
LATENT = 8
N = 32


def tiny_networks(latent=LATENT, j2=16, j3=16):
    return build_crossmodal_networks(
        image_size=SIZE, latent_dim=latent, num_joints_2d=j2, num_joints_3d=j3,
        encoder_widths=(4, 8), decoder_widths=(8, 4), pose_hidden=16, pose_blocks=1,
    )


@pytest.fixture(scope="module")
def raw():
    rng = np.random.default_rng(0)
    # learnable images: one colour per image, a horizontal ramp and a little noise
    colour = rng.uniform(40, 215, (N, 1, 1, 3))
    ramp = np.linspace(-30, 30, SIZE)[None, None, :, None]
    images = np.clip(colour + ramp + rng.normal(0, 5, (N, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    joints_3d = rng.normal(0.0, 300.0, (N, 17, 3)).astype(np.float32)
    joints_3d[..., 2] += 5000.0
    joints_2d = (500.0 * joints_3d[..., :2] / joints_3d[..., 2:] + 8.0).astype(np.float32)
    return {"images": images, "joints_2d": joints_2d, "joints_3d": joints_3d}


@pytest.fixture(scope="module")
def stats(raw):
    return crossmodal_stats(raw["joints_2d"], raw["joints_3d"])


@pytest.fixture(scope="module")
def data(raw, stats):
    return prepare_crossmodal_data(raw["images"], raw["joints_2d"], raw["joints_3d"], stats)


@pytest.fixture(scope="module")
def trained(stats, data):
    """One trained model shared by the metric, inference and serialisation tests."""
    model = make_model(stats, beta=0.01, schedule=("image_to_image", "image_to_3d", "pose2d_to_3d", "image_to_3d"))
    model.fit(data, batch_size=8, epochs=1, verbose=0)
    return model


def make_model(stats, optimizer=None, **kwargs):
    keras.utils.set_random_seed(0)
    model = CrossModalVAE(**tiny_networks(), stats=stats, seed=3, **kwargs)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(3e-3), jit_compile=suggested_jit_compile())
    return model


def weights_of(net):
    return [np.array(keras.ops.convert_to_numpy(w)) for w in net.trainable_weights]


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


# ------------------------------------------------------------------- networks


@pytest.mark.parametrize("pooling", ["flatten", "avg"])
def test_image_encoder_shapes(pooling):
    enc = build_image_encoder(image_size=64, latent_dim=24, pooling=pooling)  # default widths 32..256
    mean, log_var = enc.predict(np.zeros((2, 64, 64, 3), np.float32), verbose=0)
    assert mean.shape == (2, 24) and log_var.shape == (2, 24)
    assert enc.input_shape == (None, 64, 64, 3)
    # posteriors start narrow: log-variance head = its bias, -4
    np.testing.assert_allclose(log_var, -4.0, atol=1e-6)


@pytest.mark.parametrize("size, widths", [(64, (256, 128, 64, 32)), (48, (8, 4))])
def test_image_decoder_shapes_and_range(size, widths):
    dec = build_image_decoder(image_size=size, latent_dim=24, widths=widths)
    img = dec.predict(np.random.default_rng(0).normal(size=(3, 24)).astype("float32"), verbose=0)
    assert img.shape == (3, size, size, 3)
    assert img.min() >= 0.0 and img.max() <= 1.0  # sigmoid output
    kinds = [type(layer).__name__ for layer in dec.layers]
    assert kinds.count("Conv2DTranspose") == len(widths)
    assert kinds.count("BatchNormalization") == len(widths) + 1


@pytest.mark.parametrize("joints", [16, 17])
def test_pose_networks_shapes(joints):
    enc = build_pose2d_encoder(num_joints=joints, latent_dim=12, hidden=32, num_blocks=5)
    dec = build_pose3d_decoder(num_joints=joints, latent_dim=12, hidden=32, num_blocks=5)
    mean, log_var = enc.predict(np.zeros((4, joints, 2), np.float32), verbose=0)
    assert mean.shape == (4, 12) and log_var.shape == (4, 12)
    assert dec.predict(np.zeros((4, 12), np.float32), verbose=0).shape == (4, joints, 3)
    # the thesis's design: 5 Dense+ReLU blocks in each pose network
    relu_dense = [layer for layer in enc.layers if type(layer).__name__ == "Dense"
                  and layer.get_config()["activation"] == "relu"]
    assert len(relu_dense) == 5


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="divisible by 16"):
        build_image_decoder(image_size=40, widths=(8, 8, 8, 8))
    with pytest.raises(ValueError, match=">= 16"):
        build_image_encoder(image_size=8, widths=(8, 8, 8, 8))
    with pytest.raises(ValueError, match="latent_dim"):
        build_pose2d_encoder(latent_dim=0)
    with pytest.raises(ValueError, match="num_joints"):
        build_pose3d_decoder(num_joints=-1)
    with pytest.raises(ValueError, match="pooling"):
        build_image_encoder(pooling="max")


def test_model_rejects_mismatched_networks(stats):
    nets = tiny_networks()
    with pytest.raises(ValueError, match="latent dimension"):
        CrossModalVAE(**{**nets, "pose3d_decoder": build_pose3d_decoder(16, LATENT + 1, 8, 1)})
    with pytest.raises(ValueError, match="schedule"):
        CrossModalVAE(**nets, schedule=("image_to_image", "bogus"))
    with pytest.raises(ValueError, match="joints"):  # stats for 16 joints, encoder reads 17
        CrossModalVAE(**{**nets, "pose2d_encoder": build_pose2d_encoder(17, LATENT, 8, 1)}, stats=stats)
    with pytest.raises(ValueError, match="image_decoder"):
        CrossModalVAE(**{**nets, "image_decoder": build_image_decoder(SIZE * 2, LATENT, widths=(4,))})


# ----------------------------------------------------------------------- data


def test_prepare_data_normalises_and_inverts(raw, stats, data):
    assert data["image"].dtype == np.uint8  # kept compact; the model divides by 255
    as_float = prepare_crossmodal_data(raw["images"] / 255.0, raw["joints_2d"], raw["joints_3d"], stats)
    assert as_float["image"].dtype == np.float32
    np.testing.assert_allclose(as_float["image"], raw["images"] / 255.0, atol=1e-6)
    assert data["pose_2d"].shape == (N, 16, 2) and data["pose_3d"].shape == (N, 16, 3)
    np.testing.assert_allclose(data["pose_3d"].mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(data["pose_3d"].std(0), 1.0, atol=1e-4)
    # the model's inverse (used by the predict helpers) gives back the root-centred mm pose
    model = CrossModalVAE(**tiny_networks(), stats=stats)
    back = model._to_mm(data["pose_3d"], include_root=True)
    centred = raw["joints_3d"] - raw["joints_3d"][:, :1]
    np.testing.assert_allclose(back, centred, atol=1e-2)


def test_prepare_data_rejects_bad_input(raw, stats):
    bad = raw["joints_3d"].copy()
    bad[5, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        prepare_crossmodal_data(raw["images"], raw["joints_2d"], bad, stats)
    with pytest.raises(ValueError, match=r"\(N, 17, 2\)"):
        prepare_crossmodal_data(raw["images"], raw["joints_2d"][:, :15], raw["joints_3d"], stats)
    with pytest.raises(ValueError, match="same N"):
        prepare_crossmodal_data(raw["images"][:-1], raw["joints_2d"], raw["joints_3d"], stats)


# ---------------------------------------------------------------- alternation


def test_alternation_visits_pairs_in_order(stats, data):
    """With plain SGD a weight moves iff its gradient is nonzero: check which networks move."""
    model = make_model(stats, optimizer=keras.optimizers.SGD(0.05))
    nets = {name: getattr(model, name) for name in
            ("image_encoder", "image_decoder", "pose2d_encoder", "pose3d_decoder")}
    expected = {
        0: {"image_encoder", "image_decoder"},   # image -> image
        1: {"image_encoder", "pose3d_decoder"},  # image -> 3D
        2: {"pose2d_encoder", "pose3d_decoder"},  # 2D -> 3D
    }
    batch = {k: v[:8] for k, v in data.items()}
    for step in range(6):
        assert model.pair_at(step) == PAIRS[step % 3]
        before = {name: weights_of(net) for name, net in nets.items()}
        model.reset_metrics()  # Keras >= 3.14's train_on_batch does it too; 3.13's does not
        model.train_on_batch(batch)
        moved = {name for name, net in nets.items() if changed(before[name], weights_of(net))}
        assert moved == expected[step % 3], f"step {step}"
        # only the trained pair's loss metric counted this batch
        counts = {p: float(keras.ops.convert_to_numpy(model.pair_trackers[p].count)) for p in PAIRS}
        assert counts == {p: float(p == PAIRS[step % 3]) for p in PAIRS}, f"step {step}"
        assert int(keras.ops.convert_to_numpy(model.pair_step)) == step + 1


def test_custom_schedule(stats, data):
    model = make_model(stats, optimizer=keras.optimizers.SGD(0.05), schedule=("pose2d_to_3d", "image_to_3d"))
    batch = {k: v[:8] for k, v in data.items()}
    seen = []
    for _ in range(4):
        model.reset_metrics()  # as above: not every Keras version resets in train_on_batch
        model.train_on_batch(batch)
        seen.append([p for p in PAIRS
                     if float(keras.ops.convert_to_numpy(model.pair_trackers[p].count)) > 0])
    assert seen == [["pose2d_to_3d"], ["image_to_3d"], ["pose2d_to_3d"], ["image_to_3d"]]


# ------------------------------------------------------------ training, metrics


def test_training_reduces_loss(stats, data):
    model = make_model(stats)
    before = model.evaluate(data, batch_size=N, verbose=0, return_dict=True)
    history = model.fit(data, batch_size=8, epochs=8, verbose=0, shuffle=False).history
    after = model.evaluate(data, batch_size=N, verbose=0, return_dict=True)
    assert np.all(np.isfinite(history["loss"]))
    assert after["loss"] < 0.9 * before["loss"]
    for key in ("image_to_image_loss", "image_to_3d_loss", "pose2d_to_3d_loss",
                "kl_image", "kl_pose2d", "mpjpe_image_to_3d", "mpjpe_2d_to_3d"):
        assert key in history and np.isfinite(after[key])
    # every pair learns (training-mode losses, averaged over the steps that trained each pair)
    for pair in PAIRS:
        assert history[f"{pair}_loss"][-1] < 0.95 * history[f"{pair}_loss"][0], pair
    assert after["mpjpe_2d_to_3d"] < before["mpjpe_2d_to_3d"]


def test_metrics_match_independent_numpy(raw, data, trained):
    """evaluate()'s MPJPE and KL equal pose_lab.metrics / the closed form on the predict helpers."""
    model = trained
    logs = model.evaluate(data, batch_size=N, verbose=0, return_dict=True)
    target = raw["joints_3d"] - raw["joints_3d"][:, :1]
    pred_img = model.predict_3d_from_image(raw["images"])
    pred_2d = model.predict_3d_from_2d(raw["joints_2d"])
    assert pred_img.shape == (N, 17, 3) and np.all(pred_img[:, 0] == 0)
    assert logs["mpjpe_image_to_3d"] == pytest.approx(metrics.mpjpe(pred_img, target), rel=1e-4)
    assert logs["mpjpe_2d_to_3d"] == pytest.approx(metrics.mpjpe(pred_2d, target), rel=1e-4)
    mean, log_var = model.encode_image(raw["images"])
    kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1).mean()
    assert logs["kl_image"] == pytest.approx(kl, rel=1e-4, abs=1e-6)


def test_inference_helpers(raw, trained):
    model = trained
    images = raw["images"][:8]
    np.testing.assert_allclose(model.predict_3d_from_image(images),
                               model.predict_3d_from_image(images.astype(np.float32) / 255.0), atol=1e-4)
    rec = model.reconstruct_image(images)
    assert rec.shape == (8, SIZE, SIZE, 3) and rec.min() >= 0 and rec.max() <= 1
    out = model.decode_latent(np.zeros((3, LATENT), np.float32))  # padded to a batch of 4
    assert out["image"].shape == (3, SIZE, SIZE, 3) and out["pose_3d"].shape == (3, 17, 3)
    assert model.predict_3d_from_2d(raw["joints_2d"][:4], include_root=False).shape == (4, 16, 3)
    # 17 joints in pixels, or the 16 the encoder reads: the same answer
    np.testing.assert_allclose(model.predict_3d_from_2d(raw["joints_2d"][:4]),
                               model.predict_3d_from_2d(raw["joints_2d"][:4, 1:]), atol=1e-4)


def test_predict_helpers_reject_bad_input(raw, trained):
    model = trained
    with pytest.raises(ValueError, match=r"\(N, 16\|17, 2\)"):
        model.predict_3d_from_2d(raw["joints_2d"][:, :15])
    with pytest.raises(ValueError, match=r"\(N, 16\|17, 2\)"):
        model.predict_3d_from_2d(raw["joints_3d"])
    nan_poses = raw["joints_2d"].copy()
    nan_poses[2, 4, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict_3d_from_2d(nan_poses)
    with pytest.raises(ValueError, match=rf"\(N, {SIZE}, {SIZE}, 3\)"):
        model.predict_3d_from_image(np.zeros((2, SIZE + 1, SIZE, 3), np.uint8))
    with pytest.raises(ValueError, match=rf"\(N, {SIZE}, {SIZE}, 3\)"):
        model.reconstruct_image(np.zeros((SIZE, SIZE, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.predict_3d_from_image(np.full((2, SIZE, SIZE, 3), 255.0, np.float32))
    nan_images = np.zeros((2, SIZE, SIZE, 3), np.float32)
    nan_images[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict_3d_from_image(nan_images)
    with pytest.raises(ValueError, match=rf"\(N, {LATENT}\)"):
        model.decode_latent(np.zeros((2, LATENT + 1)))
    with pytest.raises(ValueError, match="dict"):
        model(raw["images"])


# --------------------------------------------------------------- serialisation


def test_keras_round_trip(tmp_path, raw, data, trained):
    model = trained
    path = tmp_path / "crossmodal.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, CrossModalVAE)
    assert loaded.schedule == model.schedule and loaded.initial_beta == 0.01
    assert int(keras.ops.convert_to_numpy(loaded.pair_step)) == int(keras.ops.convert_to_numpy(model.pair_step))
    for key, value in model.stats.to_dict().items():
        np.testing.assert_array_equal(loaded.stats.to_dict()[key], value)
    np.testing.assert_allclose(loaded.predict_3d_from_image(raw["images"]),
                               model.predict_3d_from_image(raw["images"]), atol=1e-4)
    np.testing.assert_allclose(loaded.predict_3d_from_2d(raw["joints_2d"]),
                               model.predict_3d_from_2d(raw["joints_2d"]), atol=1e-4)
    np.testing.assert_allclose(loaded.reconstruct_image(raw["images"][:4]),
                               model.reconstruct_image(raw["images"][:4]), atol=1e-5)
    # the loaded model keeps training
    loaded.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=suggested_jit_compile())
    history = loaded.fit(data, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ------------------------------------------------ statistics, old configs, errors


def test_stats_are_norm_stats(raw, stats):
    assert isinstance(stats, NormStats)
    assert stats.drop_root_2d and stats.drop_root_3d and stats.num_joints == 17
    assert stats.mean_2d.shape == (16, 2) and stats.mean_3d.shape == (16, 3)
    same = NormStats.from_arrays(raw["joints_2d"], raw["joints_3d"], drop_root_2d=True)
    np.testing.assert_array_equal(stats.std_3d, same.std_3d)
    model = CrossModalVAE(**tiny_networks(), stats=stats)
    assert isinstance(model.stats, NormStats) and model.num_joints == 17 and model.root == 0
    assert model.get_config()["stats"] == stats.to_dict()


def test_old_style_stats_config_loads(raw, stats):
    """A config saved before NormStats (the four arrays only, float32 lists) still loads."""
    model = make_model(stats)
    config = model.get_config()
    config["stats"] = {k: np.asarray(getattr(stats, k), np.float32).tolist()
                       for k in ("mean_2d", "std_2d", "mean_3d", "std_3d")}
    loaded = CrossModalVAE.from_config(config)
    assert isinstance(loaded.stats, NormStats)
    assert loaded.stats.drop_root_2d and loaded.stats.drop_root_3d and loaded.stats.root == 0  # inferred
    np.testing.assert_allclose(loaded.stats.std_3d, stats.std_3d, rtol=1e-6)
    loaded.set_weights(model.get_weights())
    np.testing.assert_allclose(loaded.predict_3d_from_2d(raw["joints_2d"][:4]),
                               model.predict_3d_from_2d(raw["joints_2d"][:4]), rtol=1e-5, atol=1e-2)


def test_wrong_joint_counts_name_the_argument(raw, stats):
    model = CrossModalVAE(**tiny_networks(), stats=stats)
    with pytest.raises(ValueError, match=r"poses_2d \(2D poses, pixels\): expected shape \(N, 16\|17, 2\)"):
        model.encode_pose_2d(raw["joints_2d"][:, :14])
    with pytest.raises(ValueError, match=r"joints_3d .*expected shape \(N, 17, 3\), got \(32, 16, 3\)"):
        prepare_crossmodal_data(raw["images"], raw["joints_2d"], raw["joints_3d"][:, 1:], stats)
    with pytest.raises(ValueError, match=r"stats: mean_3d has 16 joints, the networks use 15 \(pose3d_decoder\)"):
        CrossModalVAE(**tiny_networks(j3=15), stats=stats)
    with pytest.raises(ValueError, match=r"z \(latent codes\): expected shape \(N, 8\)"):
        model.decode_latent(np.zeros((2, 3, LATENT)))
    # another skeleton: the joint counts follow the statistics (12 joints, root 2 kept in 2D)
    rng = np.random.default_rng(1)
    j3 = rng.normal(0, 300, (N, 12, 3)) + [0, 0, 5000]
    j2 = 500 * j3[..., :2] / j3[..., 2:]
    st = crossmodal_stats(j2, j3, root=2, drop_root=False)
    small = CrossModalVAE(**tiny_networks(j2=12, j3=11), stats=st)
    assert small.num_joints == 12 and small.root == 2
    pred = small.predict_3d_from_2d(j2)
    assert pred.shape == (N, 12, 3) and np.all(pred[:, 2] == 0)
    with pytest.raises(ValueError, match=r"\(N, 12, 2\)"):
        small.predict_3d_from_2d(j2[:, 1:])


def test_evaluation_recipe(raw, stats, trained):
    tables, preds = evaluate_crossmodal(trained, raw["images"], raw["joints_2d"], raw["joints_3d"],
                                        np.repeat(["a", "b"], N // 2), return_predictions=True)
    target = raw["joints_3d"] - raw["joints_3d"][:, :1]
    assert list(tables) == [IMAGE_TO_3D, POSE2D_TO_3D]
    np.testing.assert_array_equal(preds[IMAGE_TO_3D], trained.predict_3d_from_image(raw["images"]))
    for name, pred in preds.items():
        per_action = [metrics.mpjpe(pred[:N // 2], target[:N // 2]), metrics.mpjpe(pred[N // 2:], target[N // 2:])]
        assert tables[name].average["P1"] == pytest.approx(np.mean(per_action), rel=1e-5)
        assert tables[name].average["P2"] <= tables[name].average["P1"] + 1e-6
    base = mean_pose(stats, 5)
    assert base.shape == (5, 17, 3) and np.all(base[:, 0] == 0)
    np.testing.assert_allclose(base[:, 1:], np.broadcast_to(stats.mean_3d, (5, 16, 3)), rtol=1e-6)


def test_compute_loss_honours_sample_weight(stats, data):
    """Issue 11: sample_weight was ignored. Evaluation loss = mean of the three weighted pair losses (NumPy)."""
    model = make_model(stats, beta=0.5)
    x = {k: v[:8] for k, v in data.items()}
    out = model(x, training=False)
    s = np.array([0.0, 1.0, 2.0, 0.5, 0.0, 1.5, 1.0, 3.0], "float32")
    got = float(keras.ops.convert_to_numpy(model.compute_loss(x, None, out, sample_weight=s, training=False)))
    o = {k: np.asarray(keras.ops.convert_to_numpy(v), np.float64) for k, v in out.items()}
    image = x["image"].astype(np.float64) / 255.0
    pose = x["pose_3d"].astype(np.float64)
    n = len(s)

    def kl(mean, log_var):
        return (0.5 * (np.exp(log_var) + mean**2 - 1 - log_var)).sum(1)

    kl_img, kl_2d = kl(o["image_mean"], o["image_log_var"]), kl(o["pose2d_mean"], o["pose2d_log_var"])
    pairs = [
        np.abs(o["image_recon"] - image).reshape(n, -1).mean(1) + 0.5 * kl_img / image[0].size,
        ((o["pose3d_from_image"] - pose) ** 2).reshape(n, -1).mean(1) + 0.5 * kl_img / 48,
        ((o["pose3d_from_2d"] - pose) ** 2).reshape(n, -1).mean(1) + 0.5 * kl_2d / 48,
    ]
    expected = np.mean([(s * p).sum() / s.sum() for p in pairs])
    assert got == pytest.approx(expected, rel=1e-4)


def test_sampling_noise_state_is_saved_with_the_weights(stats, data, tmp_path):
    """Issue 12: the model's seed generator state goes into the weights file (it did not)."""
    model = make_model(stats)
    x = {k: v[:4] for k, v in data.items()}
    model(x, training=True)
    model.save_weights(tmp_path / "w.weights.h5")
    expected = keras.ops.convert_to_numpy(model(x, training=True)["pose3d_from_2d"])
    fresh = make_model(stats)
    fresh.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fresh(x, training=True)["pose3d_from_2d"]), expected)


@pytest.mark.parametrize("image_size, backbone_size", [(64, (64, 64)), (32, (64, 64))])
def test_image_encoder_on_a_pretrained_backbone(tmp_path, image_size, backbone_size):
    """Issue 10 item 6: the image encoder can start from the shipped 2D checkpoint's backbone."""
    from pose_lab import pretrained
    from pose_lab.models.backbones import backbone_for_image_size

    bb = backbone_for_image_size(backbone_size, "pose2d-synthetic-small")  # notebook 10's
    enc = build_image_encoder(image_size=image_size, latent_dim=LATENT, backbone=bb)
    shipped = pretrained.load_backbone("pose2d-synthetic-small")
    for a, b in zip(enc.get_layer(bb.name).get_weights(), shipped.get_weights()):
        np.testing.assert_array_equal(a, b)  # the checkpoint's weights, not a fresh initialisation
    # the heads read the backbone's stride-32 map of the [0, 255] image, resized to the backbone's size
    x = np.random.default_rng(0).uniform(0, 1, (2, image_size, image_size, 3)).astype("float32")
    pooled = keras.Model(enc.input, enc.get_layer("pool").output).predict(x, verbose=0)
    pixels = keras.ops.image.resize(x * 255.0, backbone_size, interpolation="bilinear")
    expect = keras.ops.convert_to_numpy(bb(pixels)["stride32"]).reshape(2, -1)
    np.testing.assert_allclose(pooled, expect, rtol=1e-4, atol=1e-4)
    mean, log_var = enc.predict(x, verbose=0)
    assert mean.shape == (2, LATENT) and log_var.shape == (2, LATENT)
    path = tmp_path / "enc.keras"
    enc.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0)[0], mean, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="backbone_features"):
        build_image_encoder(image_size=image_size, backbone=bb, backbone_features="stride2")
    with pytest.raises(ValueError, match="backbone"):
        build_image_encoder(image_size=image_size, backbone="pose2d-synthetic")
