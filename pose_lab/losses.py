"""Pure loss functions written with ``keras.ops`` (backend-agnostic).

Every function here is a plain function of tensors: no layers, no variables,
no global state, so it runs inside any backend's compiled train step and can be
checked against a closed form in a unit test. Training classes
(:mod:`pose_lab.training`) compose them.

Besides the VAE terms below, the 2D keypoint losses live here:
:func:`weighted_heatmap_mse` (SimpleBaseline's heatmap MSE with target
weights) and :func:`weighted_coordinate_l1` (integral regression).

Reductions
----------
Losses that act on a batch take ``reduction``:

* ``"mean"`` (default): a scalar, the mean over the batch,
* ``"sum"``: a scalar, the sum over the batch,
* ``"none"``: one value per sample, shape ``(batch,)``.

The KL term and the thesis's normalisation
------------------------------------------
For an encoder ``q(z|x) = N(mu, diag(sigma^2))`` and the prior
``p(z) = N(0, I)`` the KL divergence of one sample has the closed form::

    KL = 1/2 * sum_d ( sigma_d^2 + mu_d^2 - 1 - log sigma_d^2 )

summed over the ``d = 1..D`` latent dimensions. The reconstruction terms in
this module are *per-element means* (the MSE of a 16x3 pose is averaged over its
48 numbers). To keep the two terms on the same scale, the thesis (seed 004,
section 4.2) divides the KL by **the number of elements of the
reconstruction**: 16*3 = 48 for a 3D pose without root, 256*256*3 for an RGB
image. :func:`kl_divergence_diag_gaussian` does exactly that when given
``num_elements``::

    KL_normalised(x) = KL(x) / num_elements

and then reduces over the batch. With ``num_elements=1`` (the default) it is
the textbook per-sample KL in nats. Consequence for hyper-parameters: the
thesis's beta = 0.001 multiplies the *normalised* KL, which is the same as
beta = 0.001 / 48 ~ 2e-5 on the un-normalised KL against a per-element MSE.
"""

from __future__ import annotations

import math

from keras import ops

__all__ = [
    "REDUCTIONS",
    "reduce_batch",
    "kl_divergence_diag_gaussian",
    "kl_divergence_diag_gaussians",
    "gaussian_log_density",
    "mean_squared_error",
    "mean_absolute_error",
    "l1_loss",
    "mse_loss",
    "reconstruction_loss",
    "mean_per_joint_position_error",
    "beta_vae_loss",
    "weighted_heatmap_mse",
    "weighted_coordinate_l1",
]

REDUCTIONS = ("mean", "sum", "none")

_LOG_2PI = math.log(2.0 * math.pi)


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")


def reduce_batch(values, reduction: str = "mean"):
    """Reduce per-sample values of shape ``(batch,)`` as ``reduction`` says."""
    _check_reduction(reduction)
    if reduction == "mean":
        return ops.mean(values)
    if reduction == "sum":
        return ops.sum(values)
    return values


def _per_sample_mean(x):
    """Mean over every axis but the first: ``(batch, ...) -> (batch,)``."""
    x = ops.convert_to_tensor(x)
    if len(x.shape) == 1:
        return x
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def _per_sample_sum(x):
    x = ops.convert_to_tensor(x)
    if len(x.shape) == 1:
        return x
    return ops.sum(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def _check_num_elements(num_elements) -> float:
    try:
        n = float(num_elements)
    except (TypeError, ValueError):
        raise ValueError(f"num_elements: expected a positive number, got {num_elements!r}") from None
    if not n > 0:
        raise ValueError(f"num_elements: expected a positive number, got {num_elements!r}")
    return n


def kl_divergence_diag_gaussian(mean, log_var, *, num_elements=1, reduction: str = "mean"):
    """KL( N(mean, diag(exp(log_var))) || N(0, I) ), normalised per element.

    Args:
        mean: encoder means, shape ``(batch, ..., latent)``; every axis after
            the first is summed over (a latent map ``(batch, h, w, c)`` works).
        log_var: encoder log-variances ``log sigma^2``, same shape as ``mean``.
        num_elements: the number of elements of the reconstruction the KL is
            paired with (48 for a 16x3 pose, ``256*256*3`` for an RGB image).
            The per-sample KL (in nats, summed over latent dimensions) is
            divided by it, as in the thesis (seed 004, section 4.2), so it is
            on the scale of a per-element mean reconstruction loss. ``1``
            gives the plain KL.
        reduction: ``"mean"`` over the batch (default), ``"sum"`` or ``"none"``.

    Returns:
        The normalised KL: a scalar, or shape ``(batch,)`` with ``reduction="none"``.

    Example:
        >>> kl_divergence_diag_gaussian(np.zeros((4, 8)), np.zeros((4, 8)))  # q == p
        0.0
    """
    n = _check_num_elements(num_elements)
    mean = ops.convert_to_tensor(mean)
    log_var = ops.cast(ops.convert_to_tensor(log_var), mean.dtype)
    per_dim = 0.5 * (ops.exp(log_var) + ops.square(mean) - 1.0 - log_var)
    return reduce_batch(_per_sample_sum(per_dim) / n, reduction)


def kl_divergence_diag_gaussians(
    mean_q, log_var_q, mean_p, log_var_p, *, num_elements=1, reduction: str = "mean"
):
    """KL( N(mean_q, diag e^log_var_q) || N(mean_p, diag e^log_var_p) ), per element.

    The general closed form for two diagonal Gaussians, summed over the latent
    dimensions::

        KL = 1/2 * sum_d [ log_var_p - log_var_q
                           + (exp(log_var_q) + (mean_q - mean_p)^2) / exp(log_var_p)
                           - 1 ]

    It reduces to :func:`kl_divergence_diag_gaussian` for ``mean_p = 0``,
    ``log_var_p = 0``. Used for learned priors or for pulling two modalities'
    posteriors together (cross-modal VAEs). Arguments broadcast against each
    other (e.g. a prior of shape ``(latent,)``); ``num_elements`` and
    ``reduction`` are as in :func:`kl_divergence_diag_gaussian`.
    """
    n = _check_num_elements(num_elements)
    mean_q = ops.convert_to_tensor(mean_q)
    dtype = mean_q.dtype
    log_var_q = ops.cast(ops.convert_to_tensor(log_var_q), dtype)
    mean_p = ops.cast(ops.convert_to_tensor(mean_p), dtype)
    log_var_p = ops.cast(ops.convert_to_tensor(log_var_p), dtype)
    per_dim = 0.5 * (
        log_var_p
        - log_var_q
        + (ops.exp(log_var_q) + ops.square(mean_q - mean_p)) * ops.exp(-log_var_p)
        - 1.0
    )
    # Broadcasting against a prior without a batch axis keeps the batch axis of q.
    per_dim = per_dim + ops.zeros_like(mean_q)
    return reduce_batch(_per_sample_sum(per_dim) / n, reduction)


def gaussian_log_density(x, mean, log_var):
    """log N(x; mean, diag(exp(log_var))), summed over the last axis.

    ``-1/2 * sum_d [ log(2 pi) + log_var_d + (x_d - mean_d)^2 / exp(log_var_d) ]``.
    Useful for Monte Carlo estimates of the KL (``E_q[log q - log p]``) and
    for importance-sampled likelihoods.
    """
    x = ops.convert_to_tensor(x)
    mean = ops.cast(ops.convert_to_tensor(mean), x.dtype)
    log_var = ops.cast(ops.convert_to_tensor(log_var), x.dtype)
    return -0.5 * ops.sum(_LOG_2PI + log_var + ops.square(x - mean) * ops.exp(-log_var), axis=-1)


def mean_squared_error(y_true, y_pred, *, reduction: str = "mean"):
    """Per-element mean of ``(y_pred - y_true)^2`` for each sample, then ``reduction``.

    Shapes ``(batch, ...)``; the per-sample value averages over all other axes
    (48 numbers for a ``(16, 3)`` pose).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    return reduce_batch(_per_sample_mean(ops.square(y_pred - y_true)), reduction)


def mean_absolute_error(y_true, y_pred, *, reduction: str = "mean"):
    """Per-element mean of ``|y_pred - y_true|`` for each sample (the L1 loss), then ``reduction``."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    return reduce_batch(_per_sample_mean(ops.abs(y_pred - y_true)), reduction)


mse_loss = mean_squared_error
l1_loss = mean_absolute_error

_RECONSTRUCTION = {
    "mse": mean_squared_error,
    "l2": mean_squared_error,
    "mae": mean_absolute_error,
    "l1": mean_absolute_error,
}


def reconstruction_loss(y_true, y_pred, *, kind: str = "mse", reduction: str = "mean"):
    """Reconstruction loss by name: ``"mse"`` (poses, seed 004) or ``"l1"`` (images)."""
    try:
        fn = _RECONSTRUCTION[kind]
    except KeyError:
        raise ValueError(f"kind: expected one of {sorted(_RECONSTRUCTION)}, got {kind!r}") from None
    return fn(y_true, y_pred, reduction=reduction)


def mean_per_joint_position_error(y_true, y_pred, *, scale=None, pad_joints: int = 0,
                                  reduction: str = "mean"):
    """MPJPE in ``keras.ops``: mean Euclidean distance over joints, per sample.

    For losses and training-time metrics (the evaluation code uses the NumPy
    :func:`pose_lab.metrics.mpjpe`). Poses are ``(batch, J, 3)`` (or flat
    ``(batch, 3J)``). ``scale`` (broadcastable to a ``(J, 3)`` pose, e.g. the
    training-set std in mm) de-normalises both poses first; the mean of a
    z-scoring cancels in the difference, so a z-scored model reports
    millimetres with ``scale=std`` alone. ``pad_joints`` counts joints that are exactly right by
    construction and were dropped from the arrays (the root of a root-centred
    pose): the mean is then taken over ``J + pad_joints`` joints, which is how
    Human3.6M's protocol 1 averages over all 17 joints.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    if len(y_pred.shape) == 2:
        y_pred = ops.reshape(y_pred, (ops.shape(y_pred)[0], -1, 3))
        y_true = ops.reshape(y_true, (ops.shape(y_true)[0], -1, 3))
    if scale is not None:
        scale = ops.cast(ops.reshape(ops.convert_to_tensor(scale), (-1, 3)), y_pred.dtype)
        y_pred = y_pred * scale
        y_true = y_true * scale
    dist = ops.sqrt(ops.sum(ops.square(y_pred - y_true), axis=-1) + 1e-12)
    num_joints = dist.shape[-1]
    per_sample = ops.sum(dist, axis=-1) / float(num_joints + int(pad_joints))
    return reduce_batch(per_sample, reduction)


def beta_vae_loss(reconstruction, kl, beta=1.0):
    """The (beta-)VAE objective to minimise: ``reconstruction + beta * kl``.

    ``beta = 1`` is the VAE's negative ELBO (up to constants), ``beta > 1`` the
    disentangling beta-VAE (Higgins et al. 2017), ``beta < 1`` (e.g. the
    thesis's 0.001) favours reconstruction. ``beta`` may be a variable that a
    callback anneals (:mod:`pose_lab.training.callbacks`).
    """
    reconstruction = ops.convert_to_tensor(reconstruction)
    beta = ops.cast(ops.convert_to_tensor(beta), reconstruction.dtype)
    return reconstruction + beta * ops.cast(kl, reconstruction.dtype)


def weighted_heatmap_mse(heatmaps_true, heatmaps_pred, weights):
    """SimpleBaseline's ``JointsMSELoss`` with target weights.

    ``0.5 * mean_{b, v, u, j} (w_bj * (pred - true))^2``: the per-joint MSE of
    the reference code (which multiplies prediction and target by the weight
    before the squared error) averaged over joints; joints with weight 0
    (unlabelled, or outside the heatmap) contribute nothing.

    Args:
        heatmaps_true, heatmaps_pred: ``(B, h, w, J)``.
        weights: ``(B, J)`` target weights (1 labelled, 0 not).

    Returns:
        Scalar float32 tensor.
    """
    t = ops.cast(heatmaps_true, "float32")
    p = ops.cast(heatmaps_pred, "float32")
    w = ops.cast(weights, "float32")[:, None, None, :]
    return 0.5 * ops.mean(ops.square(w * (p - t)))


def weighted_coordinate_l1(keypoints_true, keypoints_pred, weights, scale=1.0):
    """Visibility-weighted L1 on coordinates (integral regression, Sun et al. 2018).

    ``mean_{b, j, xy} w_bj |pred - true| / scale``; ``scale`` (e.g. the input
    side in pixels) keeps the loss of order one.

    Args:
        keypoints_true: ``(B, J, 2)`` pixels (``(B, J, 3)`` with a visibility
            column is accepted: only ``x, y`` are used).
        keypoints_pred: ``(B, J, 2)`` pixels.
        weights: ``(B, J)``.
        scale: pixels per loss unit.

    Returns:
        Scalar float32 tensor.
    """
    t = ops.cast(keypoints_true, "float32")[..., :2]
    p = ops.cast(keypoints_pred, "float32")
    w = ops.cast(weights, "float32")[..., None]
    return ops.mean(w * ops.abs(p - t)) / float(scale)
