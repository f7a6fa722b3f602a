"""Autoencoder / VAE / beta-VAE / VAE lifter (pose_lab.models.vae, pose_lab.training.vae, pose_lab.evaluation.vae)."""

import keras
import numpy as np
import pytest
from keras import ops

from pose_lab import losses, metrics
from pose_lab.data.normalization import NormStats
from pose_lab.evaluation import vae as E
from pose_lab.models.vae import Sampling, build_mlp_decoder, build_mlp_encoder
from pose_lab.training import vae as V


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(64, 17, 2)).astype("float32"), rng.normal(size=(64, 16, 3)).astype("float32"))


def test_reparameterised_samples_have_requested_mean_and_variance():
    n = 40_000
    mean = np.tile(np.array([[1.0, -2.0, 0.0]], np.float32), (n, 1))
    var = np.array([0.25, 4.0, 1.0], np.float32)
    log_var = np.tile(np.log(var)[None], (n, 1))
    z = _np(Sampling(seed=3)([ops.convert_to_tensor(mean), ops.convert_to_tensor(log_var)]))
    se_mean = np.sqrt(var / n)
    np.testing.assert_array_less(np.abs(z.mean(0) - mean[0]), 5 * se_mean)
    # variance of a sample variance: 2 sigma^4 / (n - 1)
    np.testing.assert_array_less(np.abs(z.var(0) - var), 5 * np.sqrt(2 * var**2 / (n - 1)))
    # independent dimensions
    assert abs(np.corrcoef(z.T)[0, 1]) < 0.03


def test_sampling_is_reproducible_and_differentiable():
    m = ops.zeros((4, 2))
    lv = ops.zeros((4, 2))
    a = _np(Sampling(seed=7)([m, lv]))
    b = _np(Sampling(seed=7)([m, lv]))
    np.testing.assert_array_equal(a, b)
    layer = Sampling(seed=7)
    assert not np.array_equal(_np(layer([m, lv])), _np(layer([m, lv])))  # the generator advances
    assert layer.compute_output_shape(((None, 2), (None, 2))) == (None, 2)


def test_thesis_encoder_decoder_architecture():
    enc = build_mlp_encoder((17, 2), latent_dim=100, hidden=512, num_blocks=5)
    dec = build_mlp_decoder(100, (16, 3), hidden=512, num_blocks=5)
    dense = [l for l in enc.layers if isinstance(l, keras.layers.Dense)]
    assert [l.units for l in dense] == [512] * 5 + [100, 100]  # 5 blocks + mean and log-variance heads
    assert [o.shape for o in enc.outputs] == [(None, 100), (None, 100)]
    assert dec.output_shape == (None, 16, 3)
    assert [l.units for l in dec.layers if isinstance(l, keras.layers.Dense)] == [512] * 6 + [48]
    with pytest.raises(ValueError, match="latent_dim"):
        build_mlp_encoder((17, 2), latent_dim=0)
    with pytest.raises(ValueError, match="output_shape"):
        build_mlp_decoder(8, (16, -3))


def test_vae_loss_is_reconstruction_plus_beta_normalised_kl(data):
    x, y = data
    model = V.make_vae_lifter(latent_dim=8, hidden=32, num_blocks=2, beta=0.25, seed=0)
    out = model(x, training=False)
    loss = float(_np(model.compute_loss(x, y, out, training=False)))
    mu, lv = (_np(t) for t in model.encoder(x, training=False))
    recon = _np(model.decoder(ops.convert_to_tensor(mu.astype("float32")), training=False))
    kl = (0.5 * (np.exp(lv) + mu**2 - 1 - lv)).sum(1).mean() / 48.0  # normalised by the 16*3 elements
    expected = ((recon - y) ** 2).mean() + 0.25 * kl
    assert loss == pytest.approx(expected, rel=1e-4)


def test_inference_uses_the_mean_and_training_samples(data):
    x, _ = data
    model = V.make_vae_lifter(latent_dim=8, hidden=16, num_blocks=1, seed=0)
    a = _np(model(x, training=False)["reconstruction"])
    b = _np(model(x, training=False)["reconstruction"])
    np.testing.assert_array_equal(a, b)
    c = _np(model(x, training=True)["reconstruction"])
    assert not np.allclose(a, c)
    np.testing.assert_allclose(E.predict_mean(model, x), a, atol=1e-5)


@pytest.mark.parametrize("kind", ["autoencoder", "vae", "beta_vae", "vae_lifter"])
def test_models_train_and_round_trip_through_keras_file(kind, data, tmp_path):
    x2d, y3d = data
    std = np.full((16, 3), 120.0, np.float32)
    if kind == "autoencoder":
        model, x, y = V.make_pose_autoencoder((16, 3), 4, hidden=32, num_blocks=1, target_std=std), y3d, None
    elif kind == "vae":
        model, x, y = V.make_pose_vae((16, 3), 4, hidden=32, num_blocks=1, target_std=std, seed=1), y3d, None
    elif kind == "beta_vae":
        model, x, y = V.make_pose_vae((16, 3), 4, hidden=32, num_blocks=1, cls=V.BetaVAE, seed=1), y3d, None
    else:
        model, x, y = V.make_vae_lifter(latent_dim=8, hidden=32, num_blocks=2, target_std=std, seed=1), x2d, y3d
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    hist = V.fit_vae(model, x, y, epochs=3, batch_size=16, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    expected = {"loss", "reconstruction"} | ({"mpjpe"} if kind != "beta_vae" else set()) | (
        {"kl", "beta"} if kind != "autoencoder" else set())
    assert expected <= set(hist.history)
    if kind == "beta_vae":
        assert float(_np(model.beta)) == 4.0

    path = tmp_path / f"{kind}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(_np(loaded(x[:8], training=False)["reconstruction"]),
                               _np(model(x[:8], training=False)["reconstruction"]), atol=1e-5)
    if kind != "autoencoder":
        assert float(_np(loaded.beta)) == pytest.approx(float(_np(model.beta)))
    # the loaded model keeps training
    loaded.compile(optimizer="adam")
    loaded.fit(x, y if y is not None else x, epochs=1, batch_size=32, verbose=0)


def test_reported_mpjpe_is_in_millimetres(data):
    _, y = data
    std = np.random.default_rng(1).uniform(50, 200, (16, 3)).astype("float32")
    model = V.make_pose_autoencoder((16, 3), 4, hidden=16, num_blocks=1, target_std=std)
    model.compile(optimizer="adam")
    result = model.evaluate(y, y, verbose=0, return_dict=True, batch_size=64)
    recon = E.predict_mean(model, y)
    pred = np.insert(recon * std, 0, 0.0, axis=1)
    gt = np.insert(y * std, 0, 0.0, axis=1)
    assert result["mpjpe"] == pytest.approx(np.linalg.norm(pred - gt, axis=-1).mean(), rel=1e-4)


def test_active_units():
    rng = np.random.default_rng(0)
    z = np.zeros((500, 5))
    z[:, 0] = rng.normal(0, 1.0, 500)     # active
    z[:, 1] = rng.normal(0, 0.5, 500)     # active (variance 0.25)
    z[:, 2] = rng.normal(0, 0.05, 500)    # variance 0.0025: inactive
    z[:, 3] = 3.0                         # constant: collapsed
    z[:, 4] = rng.normal(0, 0.2, 500)     # variance 0.04: active at 0.01
    n, var = metrics.active_units(z, return_variance=True)
    assert n == 3
    np.testing.assert_allclose(var, z.var(0))
    assert metrics.active_units(z, threshold=0.1) == 2
    with pytest.raises(ValueError, match="z_mean_batch"):
        metrics.active_units(np.zeros(5))


def test_sample_hypotheses_and_best_of_k(data):
    x, y = data
    model = V.make_vae_lifter(latent_dim=8, hidden=16, num_blocks=1, seed=0)
    hyp = E.sample_hypotheses(model, x[:10], k=6, seed=1)
    assert hyp.shape == (10, 6, 16, 3)
    np.testing.assert_array_equal(hyp, E.sample_hypotheses(model, x[:10], k=6, seed=1))
    assert not np.allclose(hyp[:, 0], hyp[:, 1])
    # temperature 0 collapses every hypothesis onto the mean prediction
    zero = E.sample_hypotheses(model, x[:10], k=3, temperature=0.0)
    np.testing.assert_allclose(zero, np.repeat(E.predict_mean(model, x[:10])[:, None], 3, axis=1), atol=1e-5)

    stats = NormStats(np.zeros((17, 2)), np.ones((17, 2)), np.zeros((16, 3)), np.full((16, 3), 100.0))
    hyp_mm = E.sample_hypotheses(model, x[:10], k=6, stats=stats, seed=1)
    assert hyp_mm.shape == (10, 6, 17, 3) and np.all(hyp_mm[:, :, 0] == 0)
    gt = np.insert(y[:10] * 100.0, 0, 0.0, axis=1)
    best, idx = metrics.best_of_k_mpjpe(hyp_mm, gt, return_index=True)
    each = np.linalg.norm(hyp_mm - gt[:, None], axis=-1).mean(-1)
    np.testing.assert_allclose(best, each.min(1), rtol=1e-5)
    np.testing.assert_array_equal(idx, each.argmin(1))
    with pytest.raises(ValueError, match="k"):
        E.sample_hypotheses(model, x[:2], k=0)


def test_bad_inputs_raise_clear_errors(data):
    x, y = data
    model = V.make_vae_lifter(latent_dim=4, hidden=8, num_blocks=1)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"\(N, 17, 2\)"):
        V.fit_vae(model, x[:, :16], y)
    bad = x.copy()
    bad[3, 5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        E.sample_hypotheses(model, bad, k=2)
    with pytest.raises(ValueError, match="NaN"):
        E.predict_mean(model, bad)
    with pytest.raises(ValueError, match=r"\(N, 16, 3\)"):
        V.fit_vae(model, x, y[:, :15])
    with pytest.raises(ValueError, match="same number"):
        V.fit_vae(model, x, y[:10])
    with pytest.raises(ValueError, match="beta"):
        V.VAE(model.encoder, model.decoder, beta=-1.0)
    # flat (N, 34) inputs are accepted
    assert E.predict_mean(model, x.reshape(len(x), -1)).shape == (64, 16, 3)


def test_vae_optimizer_cosine_decay():
    opt = V.vae_optimizer(100, learning_rate=1e-3, final_fraction=0.1)
    opt.build([keras.Variable(np.zeros(1, "float32"))])
    rates = []
    for step in (0, 50, 100, 1000):
        opt.iterations.assign(step)
        rates.append(float(_np(opt.learning_rate)))
    np.testing.assert_allclose(rates, [1e-3, 1e-3 * (0.1 + 0.9 * 0.5), 1e-4, 1e-4], rtol=1e-5)
    with pytest.raises(ValueError, match="total_steps"):
        V.vae_optimizer(0)


def test_target_std_from_norm_stats_and_decode(data):
    x, y = data
    rng = np.random.default_rng(2)
    stats = NormStats(rng.normal(size=(17, 2)), rng.uniform(1, 2, (17, 2)), rng.normal(0, 10, (16, 3)),
                      rng.uniform(50, 200, (16, 3)), root=3)
    model = V.make_vae_lifter(latent_dim=4, hidden=8, num_blocks=1, target_std=stats, seed=0)
    np.testing.assert_allclose(model.target_std, stats.std_3d.astype(np.float32))
    assert model.get_config()["target_std"] == stats.std_3d.astype(np.float32).tolist()  # a list, as before
    # mm with the root put back at stats.root; the dict form (a saved config) reads the same
    pred = E.predict_mean(model, x[:5], stats)
    assert pred.shape == (5, 17, 3) and pred.dtype == np.float32 and np.all(pred[:, 3] == 0)
    np.testing.assert_allclose(np.delete(pred, 3, axis=1), E.predict_mean(model, x[:5]) * stats.std_3d
                               + stats.mean_3d, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(E.predict_mean(model, x[:5], stats.to_dict()), pred)
    np.testing.assert_array_equal(E.predict_mean(model, x[:5], stats, root=0)[:, 0], 0.0)
    z = np.zeros((2, 4), np.float32)
    np.testing.assert_allclose(E.decode(model, z, stats)[:, 3], 0.0)
    with pytest.raises(ValueError, match=r"z: expected shape \(N, 4\)"):
        E.decode(model, np.zeros((2, 5)))


def test_fit_vae_workdir_and_progress(data, tmp_path):
    x, y = data
    model = V.make_vae_lifter(latent_dim=4, hidden=8, num_blocks=1, seed=0)
    model.compile(optimizer="adam")
    lines = []
    hist = V.fit_vae(model, x, y, epochs=2, batch_size=32, workdir=tmp_path / "run", tensorboard=False,
                     callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: lines.append(e))])
    assert len(hist.history["loss"]) == 2 and lines == [0, 1]
    assert (tmp_path / "run" / "best.keras").exists()
    with pytest.raises(ValueError, match=r"validation y: expected shape \(N, 16, 3\)"):
        V.fit_vae(model, x, y, validation_data=(x, y[:, :15]), progress=False)


def test_vae_loss_honours_sample_weight_as_a_weighted_mean(data):
    """Issue 11: compute_loss ignored sample_weight. Closed form: sum_i w_i (rec_i + beta kl_i) / sum_i w_i."""
    x, y = data
    model = V.make_vae_lifter(latent_dim=8, hidden=32, num_blocks=2, beta=0.25, seed=0)
    out = model(x, training=False)
    w = np.random.default_rng(5).uniform(0.0, 3.0, len(x)).astype("float32")
    w[:10] = 0.0
    loss = float(_np(model.compute_loss(x, y, out, sample_weight=w, training=False)))
    mu, lv = (_np(t) for t in model.encoder(x, training=False))
    recon = _np(model.decoder(ops.convert_to_tensor(mu.astype("float32")), training=False))
    per_sample = ((recon - y) ** 2).reshape(len(x), -1).mean(1) + 0.25 * (
        0.5 * (np.exp(lv) + mu**2 - 1 - lv)).sum(1) / 48.0
    assert loss == pytest.approx((w * per_sample).sum() / w.sum(), rel=1e-4)
    # weights 1 on a subset = the unweighted loss of that subset
    keep = np.zeros(len(x), "float32")
    keep[:16] = 1.0
    sub = float(_np(model.compute_loss(x[:16], y[:16], model(x[:16], training=False), training=False)))
    assert float(_np(model.compute_loss(x, y, out, sample_weight=keep, training=False))) == pytest.approx(sub, rel=1e-5)
    ae = V.make_pose_autoencoder((16, 3), latent_dim=4, hidden=8, num_blocks=1)
    rec = _np(ae(y, training=False)["reconstruction"])
    ae_loss = float(_np(ae.compute_loss(y, None, ae(y, training=False), sample_weight=w, training=False)))
    assert ae_loss == pytest.approx((w * ((rec - y) ** 2).reshape(len(y), -1).mean(1)).sum() / w.sum(), rel=1e-4)


def test_sampling_noise_state_is_saved_with_the_weights(tmp_path):
    """Issue 12: a reloaded VAE draws the noise the original would draw next (the state was not saved)."""
    model = V.make_pose_vae((4, 3), latent_dim=2, hidden=8, num_blocks=1, seed=0)
    x = np.random.default_rng(0).normal(size=(5, 4, 3)).astype("float32")
    for _ in range(3):
        model(x, training=True)  # advance the generator
    model.save_weights(tmp_path / "w.weights.h5")
    model.save(tmp_path / "m.keras")
    expected = _np(model(x, training=True)["z"])
    fresh = V.make_pose_vae((4, 3), latent_dim=2, hidden=8, num_blocks=1, seed=0)
    fresh.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(_np(fresh(x, training=True)["z"]), expected)
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_array_equal(_np(loaded(x, training=True)["z"]), expected)


def test_label_separability_separated_mixed_and_grouped():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    groups = np.tile(np.repeat([0, 1], 30), 3)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    separated = centres[y] + rng.normal(size=(180, 2))
    r = metrics.label_separability(separated, y, groups=groups)
    assert r["knn_accuracy"] == 1.0 and r["silhouette"] > 0.8 and r["chance"] == pytest.approx(1 / 3)
    mixed = rng.normal(size=(180, 2))                      # labels carry no information
    r = metrics.label_separability(mixed, y, groups=groups)
    assert abs(r["knn_accuracy"] - 1 / 3) < 0.15 and abs(r["silhouette"]) < 0.1
    # group-wise folds: each group's poses classified from the other group only (the independent count)
    z = rng.normal(size=(180, 2)) + centres[y] / 15       # overlapping classes: accuracy between
    r = metrics.label_separability(z, y, groups=groups, k=5)
    expect = []
    for g in (0, 1):
        test, train = groups == g, groups != g
        d = ((z[test][:, None] - z[train][None]) ** 2).sum(-1)
        nn = np.argsort(d, axis=1, kind="stable")[:, :5]
        votes = np.stack([np.bincount(row, minlength=3) for row in y[train][nn]])
        expect.append(np.mean(votes.argmax(1) == y[test]))   # k odd, 3 classes: ties only 2-2-1 -> lowest class
    assert r["knn_accuracy"] == pytest.approx(np.mean(expect), abs=0.02)
    # a layout that holds within a subject only (subject 1's classes sit where subject 0's next class is):
    # neighbours from the same subject make it look perfect; across subjects it is wrong every time
    per_subject = np.c_[centres[(y + groups) % 3], 10.0 * groups] + rng.normal(size=(180, 3))
    assert metrics.label_separability(per_subject, y)["knn_accuracy"] > 0.95
    assert metrics.label_separability(per_subject, y, groups=groups)["knn_accuracy"] < 0.05
    with pytest.raises(ValueError, match="labels"):
        metrics.label_separability(separated, y[:-1])
    with pytest.raises(ValueError, match="groups"):
        metrics.label_separability(separated, y, groups=np.zeros(180))
    with pytest.raises(ValueError, match="NaN"):
        metrics.label_separability(np.full((180, 2), np.nan), y)
