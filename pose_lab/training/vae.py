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

Sample weights (``fit(x, y, sample_weight=w)``, or ``class_weight``) weight
each sample's loss: the batch loss is the weighted mean
``sum_i w_i (rec_i + beta kl_i) / sum_i w_i``
(:func:`pose_lab.training.base.weighted_mean`); ``reconstruction`` and ``kl``
are logged with the same weights, ``mpjpe`` unweighted.

Also here: the constructors (:func:`make_pose_autoencoder`,
:func:`make_pose_vae`, :func:`make_vae_lifter`), :func:`vae_optimizer` and
:func:`fit_vae` (validated inputs, then
:func:`pose_lab.training.base.fit_resumable`). Inference and evaluation
(:func:`~pose_lab.evaluation.vae.encode`,
:func:`~pose_lab.evaluation.vae.predict_mean`,
:func:`~pose_lab.evaluation.vae.sample_hypotheses`) live in
:mod:`pose_lab.evaluation.vae`; :func:`~pose_lab.metrics.best_of_k_mpjpe` and
:func:`~pose_lab.metrics.active_units` in :mod:`pose_lab.metrics`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from pose_lab import losses
from pose_lab.models.vae import Sampling, build_mlp_decoder, build_mlp_encoder
from pose_lab.training.base import add_regularization, fit_resumable, weighted_mean
from pose_lab.validation import check_poses

__all__ = [
    "AutoEncoder",
    "VAE",
    "BetaVAE",
    "make_pose_autoencoder",
    "make_pose_vae",
    "make_vae_lifter",
    "vae_optimizer",
    "fit_vae",
    "check_inputs",
    "check_targets",
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
        target_std = getattr(target_std, "std_3d", target_std)  # a NormStats: its 3D std
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
        # encoder and decoder are functional models with all their weights: built now, so
        # fit_resumable's BackupAndRestore (which needs a built model) works before the first call
        self.built = True

    def build(self, input_shape=None):
        # encoder and decoder are functional models, built (with all their weights) on construction
        self.built = True

    # -- helpers -------------------------------------------------------------
    def _target(self, x, y):
        return x if y is None else y

    def _reconstruction_and_metrics(self, target, recon, sample_weight=None):
        per_sample = losses.reconstruction_loss(target, recon, kind=self.reconstruction, reduction="none")
        rec = weighted_mean(per_sample, sample_weight)
        self.reconstruction_tracker.update_state(rec)
        if self.mpjpe_tracker is not None:
            err = losses.mean_per_joint_position_error(
                target, recon, scale=self.target_std.reshape(-1, 3), pad_joints=self.pad_joints
            )
            self.mpjpe_tracker.update_state(err)
        return rec

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
        target_std: the target's z-scoring std in mm (shape of one target), or
            a :class:`~pose_lab.data.normalization.NormStats` (its ``std_3d``);
            enables the ``mpjpe`` metric in mm. Stored in the config as a list.
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
        rec = self._reconstruction_and_metrics(self._target(x, y), y_pred["reconstruction"], sample_weight)
        return add_regularization(self, rec)


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
        rec = self._reconstruction_and_metrics(self._target(x, y), y_pred["reconstruction"], sample_weight)
        kl = weighted_mean(losses.kl_divergence_diag_gaussian(
            y_pred["z_mean"], y_pred["z_log_var"], num_elements=self._kl_n, reduction="none"
        ), sample_weight)
        beta = ops.cast(self.beta, rec.dtype)
        self.kl_tracker.update_state(kl)
        self.beta_tracker.update_state(beta)
        return add_regularization(self, losses.beta_vae_loss(rec, kl, beta))

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


def _check_pose_array(x, shape, name):
    """``x`` as float32 ``(N, *shape)`` for a model on poses ``shape = (J, D)`` (flat ``(N, J*D)`` accepted)."""
    if len(shape) != 2:
        raise ValueError(f"{name}: these helpers take models on poses (J, D); the model's shape is {shape}")
    return check_poses(x, name, num_joints=int(shape[0]), dims=int(shape[1]), batched=True, flat=True)


def check_inputs(model, x, what="inputs"):
    """Validate ``x`` against the model's encoder input ``(J, D)``: joint count, dims, finite values.

    A flat ``(N, J * D)`` array is accepted. Raises ``ValueError`` naming
    ``what``, the expected shape, or the first sample with NaN/inf
    (:func:`pose_lab.validation.check_poses`). Returns float32 ``(N, J, D)``.
    """
    return _check_pose_array(x, tuple(model.encoder.input_shape[1:]), what)


def check_targets(model, y, what="targets"):
    """Validate targets ``y`` against the model's decoder output ``(J, D)`` (as :func:`check_inputs`)."""
    return _check_pose_array(y, tuple(model.decoder.output_shape[1:]), what)


def fit_vae(model, x, y=None, *, epochs=1, batch_size=64, validation_data=None, workdir=None, progress=True,
            **kwargs):
    """Validate numpy inputs, then :func:`~pose_lab.training.base.fit_resumable` (``y=None``: auto-encode ``x``).

    Args:
        model: a compiled :class:`AutoEncoder` / :class:`VAE`.
        x, y: inputs ``(N, *encoder input)`` and targets ``(N, *decoder output)``.
        epochs, batch_size: as for ``fit``.
        validation_data: ``(x_val, y_val)``, ``(x_val,)`` or ``x_val`` (auto-encoding).
        workdir: folder for the best checkpoint, the backup a stopped run
            resumes from and TensorBoard logs; ``None`` (default) writes nothing.
        progress: one line per epoch with the ETA (and no Keras bar unless
            ``verbose`` is given); ``False`` leaves ``fit``'s own output.
        **kwargs: passed on (``callbacks``, ``verbose``, ``shuffle``...).

    Returns:
        The ``History`` of this call.
    """
    x = check_inputs(model, x, "x")
    if y is not None:
        y = check_targets(model, y, "y")
        if len(y) != len(x):
            raise ValueError(f"x and y: expected the same number of samples, got {len(x)} and {len(y)}")
    if validation_data is not None:
        if isinstance(validation_data, (tuple, list)):
            xv = check_inputs(model, validation_data[0], "validation x")
            yv = None if len(validation_data) < 2 or validation_data[1] is None else check_targets(
                model, validation_data[1], "validation y")
            validation_data = (xv, yv if yv is not None else xv)
        else:
            xv = check_inputs(model, validation_data, "validation x")
            validation_data = (xv, xv)
    return fit_resumable(model, x, y if y is not None else x, epochs=epochs, batch_size=batch_size,
                         validation_data=validation_data, workdir=workdir, progress=progress, **kwargs)
