"""Autoencoder, VAE and beta-VAE training classes, and VAE lifting utilities.

The classes are ``keras.Model`` subclasses that override ``compute_loss`` only,
so ``fit`` / ``evaluate`` work unchanged under TensorFlow and JAX (no
per-backend ``train_step``):

* :class:`AutoEncoder`: ``x -> z -> x_hat``, loss = reconstruction;
* :class:`VAE`: ``x -> (mu, log sigma^2) -> z = mu + sigma * eps -> x_hat``,
  loss = reconstruction + beta * KL (normalised per element, see
  :mod:`pose_lab.losses`). ``beta`` is a **non-trainable variable**, so
  :mod:`pose_lab.training.callbacks` can anneal it during ``fit``;
* :class:`BetaVAE`: the same with a default ``beta = 4`` (Higgins et al. 2017).

Targets: ``fit(x)`` auto-encodes (the target is ``x``); ``fit(x, y)`` trains
``x -> y`` through the latent, which is how the VAE *lifter* is trained
(2D pose in, 3D pose out; seed 004). The model's outputs are a dict with
``"reconstruction"``, ``"z_mean"`` (and for the VAE ``"z_log_var"``, ``"z"``).
In training the VAE decodes a sample ``z``; in inference (``predict``,
``evaluate``) it decodes the mean ``z = mu`` (the "mean prediction").

Tracked metrics: ``loss``, ``reconstruction``, ``kl``, ``beta`` and, when the
target's normalisation std is given, ``mpjpe`` (mm, root re-inserted).

Utilities: :func:`active_units` (Burda et al. 2016),
:func:`sample_hypotheses` (k 3D hypotheses per 2D input) and
:func:`best_of_k_mpjpe`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from pose_lab import losses
from pose_lab.models.vae import Sampling, build_mlp_decoder, build_mlp_encoder

__all__ = [
    "AutoEncoder",
    "VAE",
    "BetaVAE",
    "make_pose_autoencoder",
    "make_pose_vae",
    "make_vae_lifter",
    "vae_optimizer",
    "active_units",
    "encode",
    "batched_call",
    "predict_mean",
    "sample_hypotheses",
    "best_of_k_mpjpe",
    "fit_vae",
    "check_inputs",
]


def _as_list(x):
    return None if x is None else np.asarray(x, np.float32).tolist()


class _PoseModelBase(keras.Model):
    """Shared plumbing: target selection, reconstruction loss, MPJPE metric, config."""

    def __init__(self, encoder, decoder, *, reconstruction="mse", target_std=None, pad_joints=1,
                 **kwargs):
        super().__init__(**kwargs)
        if reconstruction not in ("mse", "l2", "l1", "mae"):
            raise ValueError(f"reconstruction: expected 'mse' or 'l1', got {reconstruction!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction = reconstruction
        self.pad_joints = int(pad_joints)
        self.target_std = None if target_std is None else np.asarray(target_std, np.float32)
        if self.target_std is not None:
            out = tuple(decoder.output_shape[1:])
            if self.target_std.size not in (int(np.prod(out)),):
                raise ValueError(
                    f"target_std: expected {int(np.prod(out))} values (the decoder's output shape "
                    f"{out}), got shape {self.target_std.shape}"
                )
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.mpjpe_tracker = keras.metrics.Mean(name="mpjpe") if self.target_std is not None else None

    def build(self, input_shape=None):
        # encoder and decoder are functional models, built (with all their weights) on construction
        self.built = True

    # -- helpers -------------------------------------------------------------
    def _target(self, x, y):
        return x if y is None else y

    def _reconstruction_and_metrics(self, target, recon):
        rec = losses.reconstruction_loss(target, recon, kind=self.reconstruction)
        self.reconstruction_tracker.update_state(rec)
        if self.mpjpe_tracker is not None:
            err = losses.mean_per_joint_position_error(
                target, recon, scale=self.target_std.reshape(-1, 3), pad_joints=self.pad_joints
            )
            self.mpjpe_tracker.update_state(err)
        return rec

    def _regularisation(self, total):
        if self.losses:
            total = total + ops.sum(ops.stack([ops.cast(l, total.dtype) for l in self.losses]))
        return total

    def encode(self, x, training=False):
        """The latent mean of ``x`` (a tensor)."""
        out = self.encoder(x, training=training)
        return out[0] if isinstance(out, (list, tuple)) else out

    def decode(self, z, training=False):
        """Decode latent codes ``z`` (a tensor)."""
        return self.decoder(z, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "reconstruction": self.reconstruction,
            "target_std": _as_list(self.target_std),
            "pad_joints": self.pad_joints,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="pose_lab")
class AutoEncoder(_PoseModelBase):
    """A deterministic autoencoder ``x -> z -> x_hat`` trained on the reconstruction loss.

    Args:
        encoder: a model mapping an input to a latent code ``z``
            (:func:`pose_lab.models.vae.build_mlp_encoder` with ``variational=False``).
        decoder: a model mapping ``z`` to the target.
        reconstruction: ``"mse"`` (default, poses) or ``"l1"`` (images).
        target_std: the target's z-scoring std in mm (shape of one target);
            enables the ``mpjpe`` metric in mm.
        pad_joints: joints dropped from the target that are exact by
            construction (the root of a root-centred pose: 1), counted in the
            MPJPE average as in protocol 1.

    Example:
        >>> ae = make_pose_autoencoder((16, 3), latent_dim=16)
        >>> ae.compile(optimizer="adam")
        >>> ae.fit(y3d_norm, epochs=5)
    """

    def call(self, inputs, training=None):
        z = self.encoder(inputs, training=training)
        return {"reconstruction": self.decoder(z, training=training), "z_mean": z}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        rec = self._reconstruction_and_metrics(self._target(x, y), y_pred["reconstruction"])
        return self._regularisation(rec)


@keras.saving.register_keras_serializable(package="pose_lab")
class VAE(_PoseModelBase):
    """A (beta-)VAE: ``loss = reconstruction + beta * KL(q(z|x) || N(0, I)) / num_elements``.

    Args:
        encoder: a model mapping an input to ``[z_mean, z_log_var]``.
        decoder: a model mapping ``z`` to the target.
        beta: initial weight of the KL term, stored in the non-trainable
            variable ``self.beta`` (annealed by
            :class:`~pose_lab.training.callbacks.LinearKLAnnealing` /
            :class:`~pose_lab.training.callbacks.CyclicalKLAnnealing`).
        kl_num_elements: the KL normaliser (:func:`pose_lab.losses.kl_divergence_diag_gaussian`);
            ``None`` (default) uses the number of elements of one decoder
            output (48 for a 16x3 pose), as in the thesis; ``1`` gives the plain KL.
        seed: seed of the reparameterisation noise.
        reconstruction, target_std, pad_joints: as in :class:`AutoEncoder`.

    The outputs of ``call`` are ``{"reconstruction", "z_mean", "z_log_var", "z"}``;
    ``z`` is a reparameterised sample when ``training`` is true and the mean otherwise.
    """

    def __init__(self, encoder, decoder, *, beta=1.0, kl_num_elements=None, seed=None, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        if not np.isfinite(beta) or beta < 0:
            raise ValueError(f"beta: expected a non-negative number, got {beta!r}")
        self.seed = seed
        self.kl_num_elements = kl_num_elements
        self._kl_n = float(kl_num_elements) if kl_num_elements is not None else float(
            np.prod(decoder.output_shape[1:])
        )
        self.sampling = Sampling(seed=seed, name="sampling")
        self.beta = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(float(beta)), trainable=False,
            name="beta", dtype="float32",
        )
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.beta_tracker = keras.metrics.Mean(name="beta")

    def call(self, inputs, training=None):
        z_mean, z_log_var = self.encoder(inputs, training=training)
        z = self.sampling([z_mean, z_log_var]) if training else z_mean
        recon = self.decoder(z, training=training)
        return {"reconstruction": recon, "z_mean": z_mean, "z_log_var": z_log_var, "z": z}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        rec = self._reconstruction_and_metrics(self._target(x, y), y_pred["reconstruction"])
        kl = losses.kl_divergence_diag_gaussian(
            y_pred["z_mean"], y_pred["z_log_var"], num_elements=self._kl_n
        )
        beta = ops.cast(self.beta, rec.dtype)
        self.kl_tracker.update_state(kl)
        self.beta_tracker.update_state(beta)
        return self._regularisation(losses.beta_vae_loss(rec, kl, beta))

    def get_config(self):
        return {
            **super().get_config(),
            "beta": float(ops.convert_to_numpy(self.beta)),
            "kl_num_elements": self.kl_num_elements,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="pose_lab")
class BetaVAE(VAE):
    """A :class:`VAE` whose KL weight defaults to ``beta = 4`` (Higgins et al. 2017).

    beta > 1 trades reconstruction for a latent closer to the factorised
    prior (more "disentangled", fewer active units); beta < 1 the reverse.
    """

    def __init__(self, encoder, decoder, *, beta=4.0, **kwargs):
        super().__init__(encoder, decoder, beta=beta, **kwargs)


# ------------------------------------------------------------- constructors


def make_pose_autoencoder(pose_shape=(16, 3), latent_dim=16, hidden=512, num_blocks=2, *,
                          target_std=None, **block_kwargs) -> AutoEncoder:
    """An :class:`AutoEncoder` on poses of shape ``pose_shape`` with MLP encoder/decoder."""
    enc = build_mlp_encoder(pose_shape, latent_dim, hidden, num_blocks, variational=False,
                            **block_kwargs)
    dec = build_mlp_decoder(latent_dim, pose_shape, hidden, num_blocks, **block_kwargs)
    return AutoEncoder(enc, dec, target_std=target_std, name="pose_autoencoder")


def make_pose_vae(pose_shape=(16, 3), latent_dim=16, hidden=512, num_blocks=2, *, beta=None,
                  target_std=None, seed=None, cls=VAE, **block_kwargs) -> VAE:
    """A :class:`VAE` (or ``cls=BetaVAE``) on poses of shape ``pose_shape``.

    ``beta=None`` keeps the class default (1 for :class:`VAE`, 4 for :class:`BetaVAE`).
    """
    enc = build_mlp_encoder(pose_shape, latent_dim, hidden, num_blocks, **block_kwargs)
    dec = build_mlp_decoder(latent_dim, pose_shape, hidden, num_blocks, **block_kwargs)
    kwargs = {} if beta is None else {"beta": beta}
    return cls(enc, dec, target_std=target_std, seed=seed, name="pose_vae", **kwargs)


def make_vae_lifter(num_joints_in=17, num_joints_out=16, *, latent_dim=100, hidden=512,
                    num_blocks=5, beta=1e-3, target_std=None, seed=None, **block_kwargs) -> VAE:
    """The thesis's VAE lifter: 2D-pose encoder -> latent (100) -> 3D-pose decoder.

    Defaults follow seed 004 (section 5.1.2): 5 ``Dense(512) + ReLU`` blocks in
    the encoder and the decoder, a 100-d latent, beta = 0.001 on the KL
    normalised by the 48 elements of the 3D pose. Train with ``fit(x2d, y3d)``
    on z-scored 2D ``(N, 17, 2)`` and root-dropped z-scored 3D ``(N, 16, 3)``.
    """
    enc = build_mlp_encoder((num_joints_in, 2), latent_dim, hidden, num_blocks, name="pose2d_encoder",
                            **block_kwargs)
    dec = build_mlp_decoder(latent_dim, (num_joints_out, 3), hidden, num_blocks,
                            name="pose3d_decoder", **block_kwargs)
    return VAE(enc, dec, beta=beta, target_std=target_std, seed=seed, name="vae_lifter")


def vae_optimizer(total_steps, learning_rate=1e-3, final_fraction=0.05):
    """Adam whose learning rate follows a cosine decay to ``final_fraction`` of its start.

    The thesis gives no schedule for the VAE lifter; decaying the rate over the
    run (``total_steps = epochs * steps_per_epoch``) is what lets its mean
    prediction match the supervised baseline in a few epochs
    (``benchmarks/bench_lifting.py``). Use ``keras.optimizers.Adam(1e-3)`` for a constant rate.
    """
    if not isinstance(total_steps, (int, np.integer)) or total_steps < 1:
        raise ValueError(f"total_steps: expected a positive int, got {total_steps!r}")
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, int(total_steps), alpha=final_fraction)
    return keras.optimizers.Adam(schedule)


# ------------------------------------------------------------------ helpers


def check_inputs(model, x, what="inputs"):
    """Validate ``x`` against the model's input shape: joint count, dims, finite values.

    Raises ``ValueError`` naming the expected shape, or the first sample with
    NaN/inf. Returns a float32 array with the model's input shape.
    """
    expected = tuple(model.encoder.input_shape[1:])
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 2 and len(expected) == 2 and arr.shape[1] == int(np.prod(expected)):
        arr = arr.reshape((-1,) + expected)
    if tuple(arr.shape[1:]) != expected:
        joints = f" ({expected[0]} joints x {expected[1]} coordinates)" if len(expected) == 2 else ""
        raise ValueError(f"{what}: expected shape (N, {', '.join(map(str, expected))}){joints}, "
                         f"got {arr.shape}")
    finite = np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{what}: {len(bad)} sample(s) contain NaN or inf (first at index {bad[0]})")
    return arr.astype(np.float32, copy=False)


def _check_target(model, y, what="targets"):
    expected = tuple(model.decoder.output_shape[1:])
    arr = np.asarray(y, np.float32)
    if tuple(arr.shape[1:]) != expected:
        raise ValueError(f"{what}: expected shape (N, {', '.join(map(str, expected))}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: contains NaN or inf")
    return arr


def fit_vae(model, x, y=None, *, epochs=1, batch_size=64, validation_data=None, **kwargs):
    """Validate numpy inputs, then ``model.fit(x, y)`` (``y=None``: auto-encode ``x``)."""
    x = check_inputs(model, x, "x")
    if y is not None:
        y = _check_target(model, y, "y")
        if len(y) != len(x):
            raise ValueError(f"x and y: expected the same number of samples, got {len(x)} and {len(y)}")
    if validation_data is not None:
        if isinstance(validation_data, (tuple, list)):
            xv = check_inputs(model, validation_data[0], "validation x")
            yv = None if len(validation_data) < 2 or validation_data[1] is None else _check_target(
                model, validation_data[1], "validation y")
            validation_data = (xv, yv if yv is not None else xv)
        else:
            xv = check_inputs(model, validation_data, "validation x")
            validation_data = (xv, xv)
    return model.fit(x, y if y is not None else x, epochs=epochs, batch_size=batch_size,
                     validation_data=validation_data, **kwargs)


def batched_call(fn, x, batch_size=4096):
    """``fn(x)`` in inference mode, chunk by chunk, as NumPy (a list/tuple output stays one).

    Calls the model directly rather than through ``predict``: no ``tf.function``
    is traced per model, which keeps notebooks that compare many small models fast.
    """
    outs = []
    for i in range(0, max(len(x), 1), batch_size):
        out = fn(x[i:i + batch_size], training=False)
        if isinstance(out, dict):
            out = {k: ops.convert_to_numpy(v) for k, v in out.items()}
        elif isinstance(out, (list, tuple)):
            out = tuple(ops.convert_to_numpy(o) for o in out)
        else:
            out = ops.convert_to_numpy(out)
        outs.append(out)
    first = outs[0]
    if isinstance(first, dict):
        return {k: np.concatenate([o[k] for o in outs]) for k in first}
    if isinstance(first, tuple):
        return tuple(np.concatenate([o[i] for o in outs]) for i in range(len(first)))
    return np.concatenate(outs)


def encode(model, x, *, batch_size=4096):
    """Latent means (and log-variances for a VAE) of ``x`` as NumPy arrays.

    Returns ``z_mean`` for an :class:`AutoEncoder`, ``(z_mean, z_log_var)`` for a :class:`VAE`.
    """
    x = check_inputs(model, x, "x")
    return batched_call(model.encoder, x, batch_size)


def _decode(model, z, batch_size):
    return batched_call(model.decoder, np.asarray(z, np.float32), batch_size)


def _to_mm(y, stats, root):
    if stats is None:
        return y
    from pose_lab.models.lifting import denormalize_3d

    shape = y.shape
    flat = denormalize_3d(y.reshape((-1,) + shape[-2:]), stats, root=root)
    return flat.reshape(shape[:-2] + flat.shape[-2:])


def predict_mean(model, x, stats=None, *, batch_size=4096, root=0):
    """The mean prediction: decode ``z = mu(x)``.

    Returns the decoder's z-scored output, or with ``stats`` (the target's 3D
    normalisation) poses in mm with the root re-inserted at the origin.
    """
    mean = encode(model, x, batch_size=batch_size)
    mean = mean[0] if isinstance(mean, tuple) else mean
    return _to_mm(_decode(model, mean, batch_size), stats, root)


def sample_hypotheses(model, x2d, k=10, stats=None, *, seed=0, batch_size=4096, root=0,
                      temperature=1.0):
    """``k`` 3D hypotheses per input: decode ``z_i = mu + temperature * sigma * eps_i``.

    Args:
        model: a trained :class:`VAE` (e.g. :func:`make_vae_lifter`).
        x2d: inputs ``(N, *input_shape)``, z-scored.
        k: hypotheses per input.
        stats: the 3D normalisation; if given, hypotheses are returned in mm with the root inserted.
        seed: NumPy seed of the noise ``eps`` (reproducible).
        temperature: scale of the posterior std (1 = sample the posterior).

    Returns:
        ``(N, k, J, 3)``: z-scored decoder outputs, or mm poses with ``stats``.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive int, got {k!r}")
    out = encode(model, x2d, batch_size=batch_size)
    if not isinstance(out, tuple):
        raise ValueError("model: sample_hypotheses needs a VAE (an encoder with z_mean and z_log_var)")
    mean, log_var = out
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((mean.shape[0], k, mean.shape[1])).astype(np.float32)
    z = mean[:, None] + temperature * np.exp(0.5 * log_var)[:, None] * eps
    y = _decode(model, z.reshape(-1, mean.shape[1]), batch_size)
    y = y.reshape((mean.shape[0], k) + y.shape[1:])
    return _to_mm(y, stats, root)


def best_of_k_mpjpe(hypotheses_mm, target_mm, *, return_index=False):
    """Best-of-k MPJPE: per pose the error of the hypothesis closest to the ground truth.

    Args:
        hypotheses_mm: ``(N, k, J, 3)``.
        target_mm: ``(N, J, 3)``.

    Returns:
        ``(N,)`` per-pose minimum MPJPE (mm); with ``return_index`` also the
        index of the best hypothesis. Average it for the reported number.
    """
    h = np.asarray(hypotheses_mm, np.float64)
    t = np.asarray(target_mm, np.float64)
    if h.ndim != 4 or t.ndim != 3 or h.shape[0] != t.shape[0] or h.shape[2:] != t.shape[1:]:
        raise ValueError(f"hypotheses_mm (N, k, J, 3) and target_mm (N, J, 3): got {h.shape} and {t.shape}")
    err = np.linalg.norm(h - t[:, None], axis=-1).mean(axis=-1)  # (N, k)
    best = err.argmin(axis=1)
    e = err[np.arange(len(err)), best]
    return (e, best) if return_index else e


def active_units(z_mean_batch, threshold=0.01, *, return_variance=False):
    """Number of active latent units (Burda, Grosse & Salakhutdinov 2016).

    A unit ``u`` is active when ``Cov_x( E_{q(u|x)}[u] ) > threshold``: its
    posterior mean actually varies across the data. Units whose mean is the
    same for every input carry no information (posterior collapse).

    Args:
        z_mean_batch: ``(N, D)`` posterior means over a data set.
        threshold: activity threshold (0.01 in the paper).
        return_variance: also return the per-unit variances ``(D,)``.
    """
    z = np.asarray(z_mean_batch, np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"z_mean_batch: expected shape (N >= 2, D), got {z.shape}")
    var = z.var(axis=0)
    n = int((var > threshold).sum())
    return (n, var) if return_variance else n
