"""Encoders, decoders and the reparameterisation layer for (variational) autoencoders on poses.

Builders return functional ``keras.Model`` objects; the training classes that
combine them (:class:`pose_lab.training.vae.AutoEncoder`,
:class:`~pose_lab.training.vae.VAE`) live in :mod:`pose_lab.training.vae`, the
inference recipes (encode, mean prediction, hypotheses) in
:mod:`pose_lab.evaluation.vae`.

The reparameterisation trick (Kingma & Welling 2013)
----------------------------------------------------
Sampling ``z ~ q(z|x) = N(mu(x), diag sigma^2(x))`` is not differentiable in
``mu`` and ``sigma``. Writing the sample as a deterministic function of the
encoder outputs and parameter-free noise,

.. math::  z = \\mu + \\sigma \\odot \\varepsilon,\\qquad \\varepsilon \\sim \\mathcal N(0, I),
           \\qquad \\sigma = \\exp(\\tfrac12 \\log\\sigma^2),

moves the randomness into ``epsilon`` so gradients flow through ``mu`` and
``log sigma^2``. :class:`Sampling` does this with ``keras.random`` and a
``SeedGenerator``, so it is reproducible and runs under every backend.

The thesis's pose networks (seed 004, section 4.1.3)
----------------------------------------------------
* **2D-pose encoder**: 5 blocks of ``Dense(512) + ReLU``, then two linear
  heads for the mean and the log-variance of a 100-d latent;
* **3D-pose decoder**: a linear layer "up-sampling" the latent to the hidden
  width, 5 blocks of ``Dense(512) + ReLU``, a linear output layer.

:func:`build_mlp_encoder` / :func:`build_mlp_decoder` build exactly that by
default, with options (batch norm, dropout, residual connections) to explore.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

__all__ = ["Sampling", "build_mlp_encoder", "build_mlp_decoder"]


@keras.saving.register_keras_serializable(package="pose_lab")
class Sampling(layers.Layer):
    """Reparameterised sample ``z = mean + exp(log_var / 2) * eps``, ``eps ~ N(0, I)``.

    Args:
        seed: seed of the layer's ``keras.random.SeedGenerator`` (``None``:
            drawn from the global seed set by ``keras.utils.set_random_seed``).

    Call arguments:
        inputs: ``[mean, log_var]``, two tensors of the same shape.

    Returns:
        A tensor shaped like ``mean``.

    Example:
        >>> z = Sampling(seed=0)([np.zeros((4, 2)), np.zeros((4, 2))])  # ~ N(0, 1)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True  # no weights: only the seed generator's state

    def call(self, inputs):
        mean, log_var = inputs
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    # The noise generator's state is saved with the weights (``save_weights``, ``.keras``, the
    # backups of fit_resumable): a reloaded or resumed model draws the noise it would have drawn
    # next. Files written before hold no state here and load as before.
    _STATE_KEY = "seed_generator_state"

    def save_own_variables(self, store):
        store[self._STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        if self._STATE_KEY in store.keys():
            self.seed_generator.state.assign(store[self._STATE_KEY])

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _block(x, hidden, *, batch_norm, dropout, residual, name):
    y = layers.Dense(hidden, kernel_initializer="he_normal", name=f"{name}_dense")(x)
    if batch_norm:
        y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(y)
    y = layers.ReLU(name=f"{name}_relu")(y)
    if dropout:
        y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    if residual and x.shape[-1] == hidden:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def _check_int(name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")


def _shape_tuple(name, shape):
    try:
        shape = tuple(int(s) for s in (shape if np.ndim(shape) else (shape,)))
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a shape like (16, 3), got {shape!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"{name}: expected a shape of positive sizes like (16, 3), got {shape!r}")
    return shape


def build_mlp_encoder(
    input_shape=(17, 2),
    latent_dim: int = 100,
    hidden: int = 512,
    num_blocks: int = 5,
    *,
    variational: bool = True,
    batch_norm: bool = False,
    dropout: float = 0.0,
    residual: bool = False,
    name: str = "encoder",
) -> keras.Model:
    """An MLP pose encoder: ``Flatten -> num_blocks x [Dense(hidden) + ReLU] -> latent heads``.

    Args:
        input_shape: shape of one input pose, e.g. ``(17, 2)`` (2D) or ``(16, 3)`` (3D).
        latent_dim: size of the latent code (100 in the thesis).
        hidden: width of the hidden layers (512 in the thesis).
        num_blocks: number of ``Dense + ReLU`` blocks (5 in the thesis).
        variational: two linear heads, ``z_mean`` and ``z_log_var`` (VAE); if
            ``False`` one head ``z`` (plain autoencoder).
        batch_norm, dropout, residual: optional extras per block (the thesis uses none).
        name: model name.

    Returns:
        A model mapping ``(batch, *input_shape)`` to ``[z_mean, z_log_var]``
        (each ``(batch, latent_dim)``), or to ``z`` when not variational.
    """
    input_shape = _shape_tuple("input_shape", input_shape)
    _check_int("latent_dim", latent_dim)
    _check_int("hidden", hidden)
    _check_int("num_blocks", num_blocks, 0)
    inputs = keras.Input(input_shape, name="pose")
    x = layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for i in range(num_blocks):
        x = _block(x, hidden, batch_norm=batch_norm, dropout=dropout, residual=residual and i > 0,
                   name=f"enc{i + 1}")
    if variational:
        z_mean = layers.Dense(latent_dim, name="z_mean")(x)
        z_log_var = layers.Dense(latent_dim, kernel_initializer="zeros", name="z_log_var")(x)
        return keras.Model(inputs, [z_mean, z_log_var], name=name)
    z = layers.Dense(latent_dim, name="z")(x)
    return keras.Model(inputs, z, name=name)


def build_mlp_decoder(
    latent_dim: int = 100,
    output_shape=(16, 3),
    hidden: int = 512,
    num_blocks: int = 5,
    *,
    batch_norm: bool = False,
    dropout: float = 0.0,
    residual: bool = False,
    name: str = "decoder",
) -> keras.Model:
    """An MLP pose decoder: ``Dense(hidden)`` up-sampling, ``num_blocks x [Dense + ReLU]``, linear output.

    Args:
        latent_dim: size of the latent code.
        output_shape: shape of one output pose, e.g. ``(16, 3)``.
        hidden, num_blocks, batch_norm, dropout, residual: as in :func:`build_mlp_encoder`.
        name: model name.

    Returns:
        A model mapping ``(batch, latent_dim)`` to ``(batch, *output_shape)``.
    """
    output_shape = _shape_tuple("output_shape", output_shape)
    _check_int("latent_dim", latent_dim)
    _check_int("hidden", hidden)
    _check_int("num_blocks", num_blocks, 0)
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(hidden, name="upsample")(z)
    for i in range(num_blocks):
        x = _block(x, hidden, batch_norm=batch_norm, dropout=dropout, residual=residual,
                   name=f"dec{i + 1}")
    x = layers.Dense(int(np.prod(output_shape)), name="out")(x)
    outputs = layers.Reshape(output_shape, name="pose")(x) if len(output_shape) > 1 else x
    return keras.Model(z, outputs, name=name)
