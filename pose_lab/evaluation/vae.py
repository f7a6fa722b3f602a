"""Inference with trained autoencoders and VAEs: latent codes, mean predictions, hypotheses.

The recipes of notebooks 08 and 09 from a trained model of
:mod:`pose_lab.training.vae` (built by :mod:`pose_lab.models.vae`):

* :func:`encode`: posterior means (and log-variances) of a set of inputs;
* :func:`decode`: latent codes -> outputs (e.g. samples of the prior);
* :func:`predict_mean`: the *mean prediction*, decode ``z = mu(x)``;
* :func:`sample_hypotheses`: ``k`` outputs per input, decode
  ``z_i = mu + temperature * sigma * eps_i`` (a reproducible NumPy seed).

With ``stats`` (a :class:`~pose_lab.data.normalization.NormStats`, or its
``to_dict()``) poses come back in millimetres with the root joint re-inserted
at the origin (``NormStats.denormalize_3d``, through
:func:`pose_lab.evaluation.lifting.to_mm`, as a lifter's); without, as the
decoder's z-scores. Score them with :func:`pose_lab.metrics.mpjpe`,
:func:`pose_lab.metrics.best_of_k_mpjpe` and :func:`pose_lab.metrics.active_units`.

Example:
    >>> mu, log_var = encode(vae, x2d_test)
    >>> pred_mm = predict_mean(vae, x2d_test, stats)                  # (N, 17, 3)
    >>> hyp_mm = sample_hypotheses(vae, x2d_test, k=10, stats=stats)  # (N, 10, 17, 3)
    >>> metrics.best_of_k_mpjpe(hyp_mm, y3d_test_mm).mean()
"""

from __future__ import annotations

import numpy as np

from pose_lab.evaluation.lifting import to_mm
from pose_lab.training.base import batched_predict
from pose_lab.training.vae import check_inputs

__all__ = ["decode", "encode", "predict_mean", "sample_hypotheses"]


def encode(model, x, *, batch_size=4096):
    """Latent means (and log-variances for a VAE) of ``x`` as NumPy arrays.

    Args:
        model: a trained :class:`~pose_lab.training.vae.AutoEncoder` or
            :class:`~pose_lab.training.vae.VAE`.
        x: inputs ``(N, *encoder input)`` (flat ``(N, J * D)`` accepted), z-scored.
        batch_size: samples per call.

    Returns:
        ``z_mean`` for an autoencoder, ``(z_mean, z_log_var)`` for a VAE, each ``(N, latent_dim)``.
    """
    x = check_inputs(model, x, "x")
    return batched_predict(model.encoder, x, batch_size)


def decode(model, z, stats=None, *, batch_size=4096, root=None):
    """Decode latent codes ``z (N, latent_dim)``; with ``stats`` poses in mm, root at the origin.

    ``root`` overrides ``stats.root`` (the index where the zero root is put back).
    """
    z = np.asarray(z, np.float32)
    latent = int(model.decoder.input_shape[-1])
    if z.ndim != 2 or z.shape[1] != latent:
        raise ValueError(f"z: expected shape (N, {latent}), got {z.shape}")
    return to_mm(batched_predict(model.decoder, z, batch_size), stats, root)


def predict_mean(model, x, stats=None, *, batch_size=4096, root=None):
    """The mean prediction: decode ``z = mu(x)``.

    Returns the decoder's z-scored output, or with ``stats`` (the target's 3D
    normalisation, a :class:`~pose_lab.data.normalization.NormStats`) poses in
    mm with the root re-inserted at the origin (at ``stats.root``, or ``root``).
    """
    mean = encode(model, x, batch_size=batch_size)
    mean = mean[0] if isinstance(mean, tuple) else mean
    return decode(model, mean, stats, batch_size=batch_size, root=root)


def sample_hypotheses(model, x2d, k=10, stats=None, *, seed=0, batch_size=4096, root=None, temperature=1.0):
    """``k`` 3D hypotheses per input: decode ``z_i = mu + temperature * sigma * eps_i``.

    Args:
        model: a trained :class:`~pose_lab.training.vae.VAE` (e.g.
            :func:`~pose_lab.training.vae.make_vae_lifter`).
        x2d: inputs ``(N, *input_shape)``, z-scored.
        k: hypotheses per input.
        stats: the 3D normalisation (:class:`~pose_lab.data.normalization.NormStats`);
            if given, hypotheses are returned in mm with the root inserted.
        seed: NumPy seed of the noise ``eps`` (reproducible).
        batch_size: samples per network call.
        root: overrides ``stats.root``.
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
    y = batched_predict(model.decoder, z.reshape(-1, mean.shape[1]).astype(np.float32), batch_size)
    y = y.reshape((mean.shape[0], k) + y.shape[1:])
    return to_mm(y, stats, root)
