"""Adversarial training (issue 14 part A): losses, KCS critic, the two-optimizer base and the GAN family.

Runs under TensorFlow and JAX (CI runs the file once per backend); the TF/JAX
agreement test runs the other backend in a subprocess.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from pose_lab import losses
from pose_lab.models import adversarial as MA
from pose_lab.models.vae import build_mlp_encoder
from pose_lab.skeletons import H36M17
from pose_lab.training import adversarial as TA

from backend_utils import compares_both_backends

BACKEND = keras.backend.backend()
pytestmark = pytest.mark.skipif(BACKEND not in ("tensorflow", "jax"), reason="tensorflow and jax only")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


# ----------------------------------------------------------------------------- losses


def test_gan_losses_match_log_formulas():
    rng = np.random.default_rng(0)
    r, f = rng.normal(size=(7, 1)).astype("float32"), rng.normal(size=(7, 1)).astype("float32")
    sig = lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))  # noqa: E731
    d = -np.mean(np.log(sig(r))) - np.mean(np.log(1 - sig(f)))
    np.testing.assert_allclose(_np(losses.gan_discriminator_loss(r, f)), d, rtol=1e-5)
    np.testing.assert_allclose(_np(losses.gan_generator_loss(f)), -np.mean(np.log(sig(f))), rtol=1e-5)
    np.testing.assert_allclose(_np(losses.gan_generator_loss_saturating(f)), np.mean(np.log(1 - sig(f))), rtol=1e-5)
    np.testing.assert_allclose(_np(losses.wgan_critic_loss(r, f)), f.mean() - r.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(losses.wgan_generator_loss(f)), -f.mean(), rtol=1e-5)


def test_gradient_penalty_closed_forms():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(5, 4, 3)).astype("float32")
    fake = rng.normal(size=(5, 4, 3)).astype("float32")
    alpha = rng.uniform(size=(5,)).astype("float32")
    w = rng.normal(size=(4, 3)).astype("float32")
    linear = lambda x: ops.sum(x * w, axis=(1, 2)) + 0.7  # noqa: E731  gradient w everywhere
    np.testing.assert_allclose(_np(losses.gradient_penalty(linear, real, fake, alpha)),
                               (np.linalg.norm(w) - 1.0) ** 2, rtol=1e-5)
    # a quadratic critic checks the interpolation: grad of sum(x^2) is 2 x_hat
    x_hat = alpha[:, None, None] * real + (1 - alpha[:, None, None]) * fake
    quad = lambda x: ops.sum(ops.square(x), axis=(1, 2))  # noqa: E731
    expect = np.mean((2 * np.linalg.norm(x_hat.reshape(5, -1), axis=1) - 1.0) ** 2)
    np.testing.assert_allclose(_np(losses.gradient_penalty(quad, real, fake, alpha)), expect, rtol=1e-5)
    # a Dense layer is a linear critic too
    dense = keras.layers.Dense(1)
    flat = keras.Sequential([keras.Input((4, 3)), keras.layers.Flatten(), dense])
    kernel = _np(dense.kernel)
    np.testing.assert_allclose(_np(losses.gradient_penalty(flat, real, fake, alpha)),
                               (np.linalg.norm(kernel) - 1.0) ** 2, rtol=1e-5)


# ----------------------------------------------------------------------------- critics


def test_kcs_matrix_has_squared_bone_lengths_on_its_diagonal():
    rng = np.random.default_rng(2)
    poses = rng.normal(scale=300.0, size=(3, 17, 3)).astype("float32")
    c = MA.kcs_joint_to_bone_matrix(H36M17)
    # B = X C: each column is child - parent
    bones = np.einsum("jb,njd->nbd", c, poses)
    child = [j for j, p in enumerate(H36M17.parents) if p >= 0]
    np.testing.assert_allclose(bones, poses[:, child] - poses[:, [H36M17.parents[j] for j in child]], atol=1e-3)
    psi = _np(MA.KCSLayer(pad_root=False)(poses)).reshape(3, 16, 16)
    np.testing.assert_allclose(np.diagonal(psi, axis1=1, axis2=2), (H36M17.bone_lengths(poses) / 1000.0) ** 2,
                               rtol=1e-4)
    np.testing.assert_allclose(psi, np.swapaxes(psi, 1, 2), rtol=1e-5, atol=1e-8)
    # z-scored root-dropped input: the layer undoes the scoring and re-inserts the root
    centred = poses - poses[:, :1]
    mean, std = rng.normal(size=(16, 3)) * 10, rng.uniform(50, 200, size=(16, 3))
    z = ((centred[:, 1:] - mean) / std).astype("float32")
    psi2 = _np(MA.KCSLayer(pad_root=True, mean=mean, std=std)(z)).reshape(3, 16, 16)
    np.testing.assert_allclose(psi2, psi, rtol=1e-3, atol=1e-6)


def test_critic_builders_shapes_and_features():
    kcs = MA.build_kcs_critic((16, 3), kcs_units=8, pose_units=4, head_units=4)
    mlp = MA.build_mlp_critic((16, 3), hidden=8, num_layers=2)
    x = np.zeros((2, 16, 3), "float32")
    assert kcs(x).shape == (2, 1) and mlp(x).shape == (2, 1)
    feat, score = MA.critic_feature_model(mlp)(x)
    assert feat.shape == (2, 8)
    np.testing.assert_allclose(_np(score), _np(mlp(x)), rtol=1e-6)
    with pytest.raises(ValueError, match="no layer"):
        MA.critic_feature_model(mlp, "nope")
    with pytest.raises(ValueError, match="parents"):
        MA.kcs_joint_to_bone_matrix([0, 0, 1])


# ----------------------------------------------------------------------------- the classes

LATENT = 4


def _make(kind, **kw):
    keras.utils.set_random_seed(0)
    gen = MA.build_pose_generator(LATENT, (16, 3), hidden=16, num_blocks=1)
    if kind == "vaegan":
        return TA.VAEGAN(build_mlp_encoder((16, 3), LATENT, 16, 1), gen, MA.build_mlp_critic((16, 3), 16, 2),
                         seed=0, **kw)
    if kind == "wgangp":
        critic = MA.build_kcs_critic((16, 3), kcs_units=16, pose_units=8, head_units=8, std=np.full((16, 3), 100.0))
        return TA.WGANGP(gen, critic, n_critic=2, seed=0, **kw)
    cls = {"gan": TA.GAN, "wgan": TA.WGAN}[kind]
    extra = {"n_critic": 2} if kind == "wgan" else {}
    return cls(gen, MA.build_mlp_critic((16, 3), 16, 2), seed=0, **extra, **kw)


def _poses(n=32, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 16, 3)).astype("float32")


@pytest.mark.parametrize("kind", ["gan", "wgan", "wgangp", "vaegan"])
def test_each_class_trains_and_round_trips(kind, tmp_path):
    model = _make(kind)
    model.compile(*TA.wgan_gp_optimizers(1e-3), run_eagerly=True)  # same train_step, no XLA compile (fast)
    g0 = [_np(v) for v in model.generator.trainable_variables]
    c0 = [_np(v) for v in model.critic.trainable_variables]
    hist = model.fit(_poses(32), batch_size=16, epochs=1, verbose=0, shuffle=False)
    for key in ("critic_loss", "generator_loss", *type(model).metric_names):
        assert np.isfinite(hist.history[key][0]), key
    assert any(not np.allclose(a, _np(v)) for a, v in zip(g0, model.generator.trainable_variables))
    assert any(not np.allclose(a, _np(v)) for a, v in zip(c0, model.critic.trainable_variables))
    # two batches: n_critic critic updates per generator update
    assert int(_np(model.generator_optimizer.iterations)) == 2
    assert int(_np(model.critic_optimizer.iterations)) == 2 * model.n_critic
    if kind == "wgan":
        assert max(np.abs(_np(v)).max() for v in model.critic.trainable_variables) <= model.clip_value + 1e-7
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.n_critic == model.n_critic
    z = np.random.default_rng(3).normal(size=(5, LATENT)).astype("float32")
    np.testing.assert_allclose(_np(loaded(z)), _np(model(z)), rtol=1e-5, atol=1e-6)
    assert int(_np(loaded.critic_optimizer.iterations)) == 2 * model.n_critic
    for a, b in zip(model.critic_optimizer.variables, loaded.critic_optimizer.variables):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6)


def test_compiled_step_with_split_batch_and_argument_checks():
    """The jit-compiled train_step (tf.function / jax.jit) with the batch split between critic steps."""
    model = _make("wgan", split_batch=True)
    model.compile(*TA.wgan_gp_optimizers())
    hist = model.fit(_poses(16), batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(hist.history["critic_loss"][0])
    assert int(_np(model.critic_optimizer.iterations)) == 2
    assert max(np.abs(_np(v)).max() for v in model.critic.trainable_variables) <= model.clip_value + 1e-7
    with pytest.raises(ValueError, match="n_critic"):
        TA.GAN(model.generator, model.critic, n_critic=0)
    with pytest.raises(ValueError, match="two optimizer instances"):
        opt = keras.optimizers.Adam()
        _make("gan").compile(opt, opt)
    with pytest.raises(ValueError, match="not used"):
        _make("gan").compile(loss="mse")


class _FixedNoise:
    """Deterministic, backend-independent 'noise' (a function of the shape only)."""

    def normal(self, shape, stddev=1.0):
        n = 1
        for s in shape:
            n = n * s
        return stddev * ops.reshape(ops.sin(ops.cast(ops.arange(n), "float32") * 0.37 + 0.1), shape)

    def uniform(self, shape, minval=0.0, maxval=1.0):
        u = 0.5 + 0.5 * self.normal(shape)
        return minval + (maxval - minval) * u


class _FixedVAEGAN(_FixedNoise, TA.VAEGAN):
    pass


def test_vaegan_gradient_routing():
    """Encoder: prior + feature reconstruction (no GAN term); decoder: gamma x recon + GAN; critic: GAN only."""
    keras.utils.set_random_seed(0)
    enc = build_mlp_encoder((16, 3), LATENT, 16, 1)
    dec = MA.build_pose_generator(LATENT, (16, 3), hidden=16, num_blocks=1)
    critic = MA.build_mlp_critic((16, 3), 16, 2)
    x = _poses(8, seed=5)

    def grads(gamma=0.1, beta=1.0, which="generator"):
        m = _FixedVAEGAN(enc, dec, critic, gamma=gamma, beta=beta)
        m.compile(keras.optimizers.SGD(), keras.optimizers.SGD())
        return m.gradients(which, x)[1]

    def same(a, b, names):
        return all(np.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in names)

    base = grads()
    enc_names = [v.path for v in enc.trainable_variables]
    dec_names = [v.path for v in dec.trainable_variables]
    # changing the critic's score layer changes the GAN term only (features are read before it)
    score = critic.get_layer("score")
    old = [_np(w) for w in score.weights]
    score.kernel.assign(old[0] * 3.0 + 0.5)
    moved = grads()
    for w, v in zip(score.weights, old):
        w.assign(v)
    assert same(base, moved, enc_names), "the encoder's gradient must not contain the GAN term"
    assert not same(base, moved, dec_names), "the decoder's gradient must contain the GAN term"
    # gamma weighs the feature reconstruction for the decoder only
    g2 = grads(gamma=2.0)
    assert same(base, g2, enc_names) and not same(base, g2, dec_names)
    # the decoder's gradient is linear in gamma: d(gamma) = (gamma2 - gamma1) * d L_llike / d theta_dec
    g0 = grads(gamma=0.0)
    for k in dec_names:
        np.testing.assert_allclose(g2[k] - g0[k], 20.0 * (base[k] - g0[k]), rtol=1e-3, atol=1e-5)
    # beta weighs the prior for the encoder only
    b2 = grads(beta=3.0)
    assert same(base, b2, dec_names) and not same(base, b2, enc_names)
    # the critic: GAN only, so gamma and beta do not reach it
    c1, c2 = grads(which="critic"), grads(gamma=5.0, beta=4.0, which="critic")
    assert same(c1, c2, list(c1))


# ----------------------------------------------------------------------------- TF vs JAX

_AGREE = textwrap.dedent("""
    import json, sys
    import keras, numpy as np
    from keras import ops
    from pose_lab.models import adversarial as MA
    from pose_lab.training import adversarial as TA

    class Fixed(TA.WGANGP):
        def normal(self, shape, stddev=1.0):
            n = 1
            for s in shape:
                n = n * s
            return stddev * ops.reshape(ops.sin(ops.cast(ops.arange(n), "float32") * 0.37 + 0.1), shape)

        def uniform(self, shape, minval=0.0, maxval=1.0):
            return minval + (maxval - minval) * (0.5 + 0.5 * self.normal(shape))

    def build():
        keras.utils.set_random_seed(0)
        gen = MA.build_pose_generator(4, (16, 3), hidden=16, num_blocks=1)
        critic = MA.build_mlp_critic((16, 3), hidden=16, num_layers=2)
        m = Fixed(gen, critic, n_critic=2, seed=0)
        m.compile(*TA.wgan_gp_optimizers(1e-3), run_eagerly=True)   # no XLA compile: seconds, same train_step
        return m

    def run(folder, save):
        m = build()
        if save:
            m.save_weights(folder + "/w.weights.h5")
        else:
            m.load_weights(folder + "/w.weights.h5")
        x = np.load(folder + "/x.npy")
        h = m.fit(x, batch_size=len(x), epochs=1, verbose=0, shuffle=False).history
        out = {k: float(v[0]) for k, v in h.items()}
        out["weights"] = [np.asarray(ops.convert_to_numpy(v)).ravel().tolist() for v in m.trainable_variables]
        return out

    if __name__ == "__main__":
        json.dump(run(sys.argv[1], False), open(sys.argv[1] + "/other.json", "w"))
""")


@compares_both_backends
def test_tensorflow_and_jax_train_steps_agree(tmp_path):
    """One WGAN-GP step (2 critic + 1 generator update, same weights, batch and noise) on both backends."""
    folder = str(tmp_path)
    (tmp_path / "agree.py").write_text(_AGREE)
    np.save(tmp_path / "x.npy", _poses(8, seed=7))
    ns = {"__name__": "agree"}
    exec(compile(_AGREE, str(tmp_path / "agree.py"), "exec"), ns)
    here = ns["run"](folder, True)
    other = "jax" if BACKEND == "tensorflow" else "tensorflow"
    env = {**os.environ, "KERAS_BACKEND": other, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(tmp_path / "agree.py"), folder], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    there = json.loads((tmp_path / "other.json").read_text())
    for key in ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty"):
        np.testing.assert_allclose(here[key], there[key], rtol=2e-4, atol=2e-5, err_msg=key)
    for a, b in zip(here["weights"], there["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
