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
    # adversarial
    "gan_discriminator_loss",
    "gan_generator_loss",
    "gan_generator_loss_saturating",
    "wgan_critic_loss",
    "wgan_generator_loss",
    "interpolate",
    "input_gradient",
    "gradient_penalty",
    "feature_reconstruction_loss",
    # unsupervised lifting (part B)
    "pose_consistency_loss",
    "lifting_consistency_3d_loss",
    "lifting_cycle_2d_loss",
    # self-supervised (contrastive) learning
    "l2_normalize",
    "nt_xent_logits",
    "nt_xent",
    "nt_xent_from_logits",
    "negative_cosine_similarity",
    "simsiam_loss",
    # Keypoint R-CNN
    "smooth_l1",
    "rpn_objectness_loss",
    "fast_rcnn_loss",
    "keypoint_rcnn_loss",
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


# =============================================================================
# adversarial (issue 14, part A): GAN, WGAN, WGAN-GP, VAE-GAN
# =============================================================================
#
# Conventions: a *discriminator* returns logits ``l`` with ``D(x) = sigmoid(l)``
# (probability "real"); a *critic* returns an unbounded score ``f(x)``. Every
# function returns a scalar mean over the batch. Written with ``keras.ops``;
# :func:`input_gradient` (for the gradient penalty) needs the backend's
# autodiff and supports TensorFlow and JAX.
#
# * non-saturating GAN (Goodfellow et al. 2014, section 3):
#   discriminator ``-E log D(x) - E log(1 - D(G(z)))``, generator ``-E log D(G(z))``
#   (``softplus(-l) = -log sigmoid(l)``, ``softplus(l) = -log(1 - sigmoid(l))``);
#   :func:`gan_generator_loss_saturating` is the minimax ``E log(1 - D(G(z)))``;
# * WGAN (Arjovsky et al. 2017): critic ``E f(G(z)) - E f(x)`` (the negated
#   Kantorovich-Rubinstein estimate of the earth mover's distance), generator ``-E f(G(z))``;
# * WGAN-GP (Gulrajani et al. 2017): ``lambda * E (||grad_x f(x_hat)|| - 1)^2`` at
#   ``x_hat = alpha x + (1 - alpha) x_fake``, ``alpha ~ U(0, 1)`` per sample.


def _logits(x):
    return ops.reshape(ops.cast(x, "float32"), (-1,))


def gan_discriminator_loss(real_logits, fake_logits):
    """``-E log D(x) - E log(1 - D(G(z)))`` from logits: ``mean softplus(-l_real) + mean softplus(l_fake)``."""
    return ops.mean(ops.softplus(-_logits(real_logits))) + ops.mean(ops.softplus(_logits(fake_logits)))


def gan_generator_loss(fake_logits):
    """Non-saturating generator loss ``-E log D(G(z)) = mean softplus(-l_fake)``."""
    return ops.mean(ops.softplus(-_logits(fake_logits)))


def gan_generator_loss_saturating(fake_logits):
    """The minimax generator loss ``E log(1 - D(G(z))) = -mean softplus(l_fake)`` (to minimise).

    Its gradient vanishes when the discriminator rejects the fakes confidently
    (``l_fake -> -inf``); kept to show why the non-saturating form is used.
    """
    return -ops.mean(ops.softplus(_logits(fake_logits)))


def wgan_critic_loss(real_scores, fake_scores):
    """WGAN critic loss ``E f(G(z)) - E f(x)`` (minimised, i.e. the EM estimate is maximised)."""
    return ops.mean(_logits(fake_scores)) - ops.mean(_logits(real_scores))


def wgan_generator_loss(fake_scores):
    """WGAN generator loss ``-E f(G(z))``."""
    return -ops.mean(_logits(fake_scores))


def interpolate(real, fake, alpha):
    """``alpha * real + (1 - alpha) * fake`` with one ``alpha`` per sample (shape ``(B,)`` or ``(B, 1...)``)."""
    real = ops.cast(real, "float32")
    alpha = ops.reshape(ops.cast(alpha, "float32"), (-1,) + (1,) * (len(real.shape) - 1))
    return alpha * real + (1.0 - alpha) * ops.cast(fake, "float32")


def input_gradient(fn, x):
    """``d sum(fn(x)) / dx``, the per-sample input gradient of a per-sample function (same shape as ``x``).

    Differentiable itself (double backprop), as the gradient penalty needs.
    Backends: TensorFlow (a nested ``GradientTape``) and JAX (``jax.grad``).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = ops.sum(fn(x))
        # zeros (not None) where y does not depend on x, as jax.grad
        return tape.gradient(y, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    if backend == "jax":
        import jax

        return jax.grad(lambda t: ops.sum(fn(t)))(ops.convert_to_tensor(x))
    raise NotImplementedError(f"input_gradient: backend {backend!r} is not supported (tensorflow and jax are)")


def gradient_penalty(critic, real, fake, alpha, *, target=1.0, eps=0.0):
    """WGAN-GP's penalty ``E_i (||grad_x f(x_hat_i)||_2 - target)^2`` (without the ``lambda`` factor).

    Args:
        critic: a callable ``x -> scores`` (one score per sample).
        real, fake: ``(B, ...)`` batches (the norm runs over all non-batch axes).
        alpha: ``(B,)`` interpolation weights, ``U(0, 1)`` in WGAN-GP.
        target: the norm the penalty pulls towards (1: 1-Lipschitz).
        eps: added under the square root (0 as in the authors' code).

    For a linear critic ``f(x) = <w, x> + b`` the gradient is ``w`` at every
    point, so the penalty is ``(||w|| - target)^2``.
    """
    x_hat = interpolate(real, fake, alpha)
    grad = input_gradient(critic, x_hat)
    axes = tuple(range(1, len(grad.shape)))
    norm = ops.sqrt(ops.sum(ops.square(grad), axis=axes) + eps)
    return ops.mean(ops.square(norm - float(target)))


def feature_reconstruction_loss(features_real, features_fake):
    """VAE-GAN's ``L_llike^{Dis_l}``: per-sample half squared error in a critic layer's features, batch mean.

    ``-log N(D_l(x) | D_l(x_tilde), I) = 1/2 ||D_l(x) - D_l(x_tilde)||^2 + const``
    (Larsen et al. 2016, eq. 6), summed over the feature dimensions.
    """
    d = ops.cast(features_real, "float32") - ops.cast(features_fake, "float32")
    d = ops.reshape(d, (ops.shape(d)[0], -1))
    return ops.mean(0.5 * ops.sum(ops.square(d), axis=1))


# =============================================================================
# unsupervised lifting (issue 14, part B): Chen et al. 2019's geometric self-supervision
# =============================================================================
#
# A lifter ``L`` maps normalised 2D ``x`` (root-centred, mean root distance 1) to a
# root-centred 3D pose ``Y = L(x)``. With a random rotation ``R`` and the fixed-depth
# projection ``P`` (:mod:`pose_lab.geometry.ops`), ``x_r = P(R Y) / s`` (``s``: the scale
# of ``P(R Y)``) is a new 2D view of the same pose, judged by the 2D critic. Lifting it
# again gives ``Y_r = L(x_r)`` which must be the rotated pose seen at that scale, and
# rotating it back and projecting must give ``x`` again:
#
# * 3D consistency (lift-rotate-reproject-lift):  ``1/J sum_j || Y_r,j - (R Y)_j / s ||^2``
# * 2D cycle (rotate-back-reproject):              ``1/J sum_j || N(P(R^T s Y_r))_j - x_j ||^2``
#
# (``N``: root-centre and divide by the scale). Both are the per-sample mean over
# joints of the squared Euclidean distance, :func:`pose_consistency_loss`.


def pose_consistency_loss(poses_a, poses_b, *, reduction: str = "mean"):
    """``1/J sum_j ||a_j - b_j||^2`` per pose ``(B, J, D)`` (any ``D``), reduced over the batch.

    For ``b = a + t`` with one offset ``t`` for every joint the value is ``||t||^2``.
    """
    a = ops.cast(poses_a, "float32")
    b = ops.cast(poses_b, "float32")
    if tuple(a.shape)[1:] != tuple(b.shape)[1:] or len(a.shape) != 3:
        raise ValueError(f"poses_a, poses_b: expected the same shape (B, J, D), got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    per_sample = ops.mean(ops.sum(ops.square(a - b), axis=-1), axis=-1)
    return reduce_batch(per_sample, reduction)


def lifting_consistency_3d_loss(rotated_3d, relifted_3d, scale=None, *, reduction: str = "mean"):
    """Chen et al.'s 3D consistency: the re-lifted rotated view against the rotated lifted pose.

    Args:
        rotated_3d: ``R Y``, the lifted pose rotated about its root ``(B, J, 3)``.
        relifted_3d: ``L(x_r)``, the lift of its normalised re-projection ``(B, J, 3)``.
        scale: ``(B,)`` the 2D scale ``s`` of the re-projection before normalisation
            (``rotated_3d`` is divided by it so both poses are in the units of ``x_r``);
            ``None``: 1.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        ``1/J sum_j ||relifted_j - rotated_j / s||^2``, reduced over the batch.
    """
    rotated = ops.cast(rotated_3d, "float32")
    if scale is not None:
        rotated = rotated / ops.reshape(ops.cast(scale, "float32"), (-1, 1, 1))
    return pose_consistency_loss(relifted_3d, rotated, reduction=reduction)


def lifting_cycle_2d_loss(input_2d, cycled_2d, *, reduction: str = "mean"):
    """Chen et al.'s 2D cycle loss: the input 2D against the rotated-back re-projection ``(B, J, 2)``.

    Both are normalised 2D poses (root-centred, mean root distance 1). Returns
    ``1/J sum_j ||cycled_j - input_j||^2``, reduced over the batch.
    """
    return pose_consistency_loss(cycled_2d, input_2d, reduction=reduction)


# =============================================================================
# self-supervised learning (issue 15, seed 000): SimCLR's NT-Xent and SimSiam's loss
# =============================================================================
#
# SimCLR (Chen et al. 2020). Two augmented views of N images give 2N embeddings
# ``z``; with ``sim(u, v) = u.v / (||u|| ||v||)`` and a temperature ``tau``, the loss of
# anchor ``i`` whose positive is ``j`` is the cross-entropy of a softmax over the
# 2N - 1 other embeddings (its positive and 2N - 2 negatives):
#
#     l(i, j) = -log  exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau)
#
# The paper averages over the 2N anchors: ``L = 1/(2N) sum_k [l(2k-1, 2k) + l(2k, 2k-1)]``.
# google-research/simclr (``tf2/objective.py``, ``add_contrastive_loss``) computes the
# two directions separately (anchors from view a, then from view b), averages each over
# the N anchors and SUMS them: its value is twice the paper's. :func:`nt_xent` returns the
# reference's value by default (``directions="sum"``) so numbers compare with the
# reference code; ``directions="mean"`` gives the paper's ``L``. Gradients differ by the
# same factor 2, i.e. only in the effective learning rate.
#
# SimSiam (Chen & He 2021): ``D(p, z) = -cos(p, stopgrad(z))`` and the symmetric loss
# ``L = D(p1, z2) / 2 + D(p2, z1) / 2``; -1 is its minimum (identical directions).

#: Subtracted from the self-similarity logits (as the reference's ``LARGE_NUM``).
LARGE_NUM = 1e9


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """``x / max(||x||, sqrt(epsilon))`` along ``axis`` (the same floor as ``tf.math.l2_normalize``)."""
    x = ops.cast(x, "float32")
    sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(sq, epsilon))


def _check_embeddings(z1, z2, name1="z1", name2="z2"):
    s1, s2 = tuple(z1.shape), tuple(z2.shape)
    if len(s1) != 2 or s1 != s2:
        raise ValueError(f"{name1}, {name2}: expected two (batch, dim) arrays of the same shape, got {s1} and {s2}")


def nt_xent_logits(z1, z2, temperature=0.1, *, z1_all=None, z2_all=None, offset=0):
    """The logits and labels behind :func:`nt_xent` (also for the contrastive accuracy).

    Args:
        z1, z2: ``(n, d)`` embeddings of the two views of the same ``n`` images
            (row ``i`` of ``z1`` and of ``z2`` is a positive pair). Not normalised
            (the cosine similarity normalises them).
        temperature: ``tau > 0``.
        z1_all, z2_all: ``(N, d)`` the embeddings of the whole (global) batch the
            negatives come from, when ``z1, z2`` are one replica's share of it
            (rows ``offset .. offset + n - 1`` of ``z1_all`` are ``z1``); ``None``:
            the local batch (``N = n``).
        offset: the index of ``z1``'s first row in ``z1_all``.

    Returns:
        ``(logits_a, logits_b, labels)``: ``(n, 2N)`` logits of the anchors of
        view a against ``[z2_all, z1_all]`` and of view b against
        ``[z1_all, z2_all]`` (the anchor itself masked with ``-LARGE_NUM``), and the
        ``(n,)`` int column of each anchor's positive (``offset + i``).
    """
    z1 = ops.convert_to_tensor(z1)
    z2 = ops.convert_to_tensor(z2)
    _check_embeddings(z1, z2)
    if not float(temperature) > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
    if (z1_all is None) != (z2_all is None):
        raise ValueError("z1_all and z2_all: give both (the global batch) or neither")
    h1, h2 = l2_normalize(z1), l2_normalize(z2)
    if z1_all is None:
        g1, g2 = h1, h2
    else:
        z1_all = ops.convert_to_tensor(z1_all)
        z2_all = ops.convert_to_tensor(z2_all)
        _check_embeddings(z1_all, z2_all, "z1_all", "z2_all")
        g1, g2 = l2_normalize(z1_all), l2_normalize(z2_all)
    n = ops.shape(h1)[0]
    big_n = ops.shape(g1)[0]
    labels = ops.arange(n, dtype="int32") + ops.cast(offset, "int32")
    masks = ops.one_hot(labels, big_n, dtype="float32")
    inv_t = 1.0 / float(temperature)
    logits_aa = ops.matmul(h1, ops.transpose(g1)) * inv_t - masks * LARGE_NUM
    logits_bb = ops.matmul(h2, ops.transpose(g2)) * inv_t - masks * LARGE_NUM
    logits_ab = ops.matmul(h1, ops.transpose(g2)) * inv_t
    logits_ba = ops.matmul(h2, ops.transpose(g1)) * inv_t
    logits_a = ops.concatenate([logits_ab, logits_aa], axis=1)
    logits_b = ops.concatenate([logits_ba, logits_bb], axis=1)
    return logits_a, logits_b, labels


def _cross_entropy_at(logits, labels):
    """Per-row softmax cross-entropy ``logsumexp(l) - l[label]``."""
    picked = ops.take_along_axis(logits, ops.expand_dims(labels, 1), axis=1)[:, 0]
    return ops.logsumexp(logits, axis=1) - picked


def nt_xent(z1, z2, temperature=0.1, *, directions="sum", reduction="mean", z1_all=None, z2_all=None,
            offset=0):
    """SimCLR's normalized temperature-scaled cross-entropy (NT-Xent).

    Args:
        z1, z2: ``(n, d)`` embeddings of two views; row ``i`` of each is a positive pair.
        temperature: ``tau`` (SimCLR: 0.1 for large batches, 0.5 in the CIFAR runs).
        directions: ``"sum"`` (default): per anchor of view a plus per anchor of view b,
            as google-research/simclr ``add_contrastive_loss``; ``"mean"``: their mean,
            the paper's ``L`` (half of it).
        reduction: over the ``n`` pairs: ``"mean"``, ``"sum"`` or ``"none"``.
        z1_all, z2_all, offset: the global batch for cross-replica negatives (see
            :func:`nt_xent_logits`); ``None``: the local batch.

    Returns:
        The loss (scalar, or ``(n,)`` with ``reduction="none"``).

    With all ``2N`` embeddings identical, every logit is ``1/tau`` and each anchor's
    loss is ``log(2N - 1)``: ``2 log(2N - 1)`` with ``directions="sum"``. Scaling any
    ``z`` by a positive number leaves the loss unchanged.
    """
    _check_directions(directions)
    logits_a, logits_b, labels = nt_xent_logits(z1, z2, temperature, z1_all=z1_all, z2_all=z2_all,
                                                offset=offset)
    return nt_xent_from_logits(logits_a, logits_b, labels, directions=directions, reduction=reduction)


def _check_directions(directions):
    if directions not in ("sum", "mean"):
        raise ValueError(f"directions: expected 'sum' or 'mean', got {directions!r}")


def nt_xent_from_logits(logits_a, logits_b, labels, *, directions="sum", reduction="mean"):
    """NT-Xent from the output of :func:`nt_xent_logits` (a training step computes the logits once
    and reads both the loss and the contrastive accuracy from them)."""
    _check_directions(directions)
    per_pair = _cross_entropy_at(logits_a, labels) + _cross_entropy_at(logits_b, labels)
    if directions == "mean":
        per_pair = 0.5 * per_pair
    return reduce_batch(per_pair, reduction)


def negative_cosine_similarity(p, z, *, stop_gradient=True, reduction="mean"):
    """SimSiam's ``D(p, z) = -(p / ||p||) . (z / ||z||)`` per row, ``z`` behind a stop-gradient."""
    p = ops.convert_to_tensor(p)
    z = ops.convert_to_tensor(z)
    _check_embeddings(p, z, "p", "z")
    if stop_gradient:
        z = ops.stop_gradient(z)
    return reduce_batch(-ops.sum(l2_normalize(p) * l2_normalize(z), axis=-1), reduction)


def simsiam_loss(p1, p2, z1, z2, *, stop_gradient=True, reduction="mean"):
    """SimSiam's symmetric loss ``D(p1, z2) / 2 + D(p2, z1) / 2``.

    Args:
        p1, p2: ``(n, d)`` predictor outputs of view 1 and view 2.
        z1, z2: ``(n, d)`` projector outputs of view 1 and view 2.
        stop_gradient: ``True`` (SimSiam); ``False`` lets gradients flow into ``z``,
            the ablation that collapses (SimSiam paper, Fig. 2).
        reduction: over the pairs.

    Returns:
        The loss, in ``[-1, 1]``; ``-1`` when each ``p`` points along the other
        view's ``z``. With ``stop_gradient=True`` its gradient with respect to ``z``
        is zero.
    """
    d12 = negative_cosine_similarity(p1, z2, stop_gradient=stop_gradient, reduction="none")
    d21 = negative_cosine_similarity(p2, z1, stop_gradient=stop_gradient, reduction="none")
    return reduce_batch(0.5 * d12 + 0.5 * d21, reduction)


# =============================================================================
# Keypoint R-CNN: RPN, Fast R-CNN box head, keypoint head
# =============================================================================
#
# As torchvision's ``detection/rpn.py`` and ``detection/roi_heads.py``, written for
# fixed shapes: instead of indexing the sampled anchors / RoIs (a data-dependent
# shape) every function takes all of them with a 0/1 ``mask`` of the sampled ones
# (padding and unsampled rows are 0). Normalisations, as in torchvision:
#
# * RPN objectness: binary cross-entropy, mean over the sampled anchors;
# * RPN boxes: smooth-L1 (beta = 1/9) summed over the positive anchors and the four
#   deltas, divided by the number of SAMPLED anchors (positives and negatives), i.e.
#   ``smooth_l1(t, d, weights=positive, normalizer=num_sampled)``;
# * Fast R-CNN: cross-entropy, mean over the sampled RoIs; smooth-L1 (beta = 1/9) on
#   the deltas of the ground-truth class of the positive RoIs, summed and divided by
#   the number of sampled RoIs (:func:`fast_rcnn_loss`). Detectron2 uses beta = 0
#   (plain L1) there;
# * keypoints: softmax cross-entropy over the ``S * S`` heatmap cells, mean over the
#   labelled keypoints inside their RoI (:func:`keypoint_rcnn_loss`), 0 when there are
#   none (torchvision: ``logits.sum() * 0``).
#
# Heatmap logits are channels-last ``(K, S, S, J)`` and targets flat cell indices
# ``v * S + u`` (:func:`pose_lab.roi.keypoints_to_roi_targets`).

def _masked_mean(values, mask):
    """``sum(mask * values) / max(sum(mask), 1)``; entries with mask 0 do not count, even when inf."""
    mask = ops.cast(mask, "float32")
    total = ops.sum(ops.where(mask > 0, values * mask, ops.zeros_like(values)))
    return total / ops.maximum(ops.sum(mask), 1.0)


def smooth_l1(y_true, y_pred, beta=1.0 / 9.0, weights=None, *, normalizer=1.0):
    """Smooth-L1 (Huber / beta) loss, summed, as torchvision's ``det_utils.smooth_l1_loss``.

    Per element, with ``d = |y_pred - y_true|``::

        0.5 * d^2 / beta   if d < beta
        d - 0.5 * beta     otherwise

    (value ``beta / 2`` and slope 1 on both sides of ``d = beta``; ``beta = 0``
    is the L1 loss). The result is ``sum(weights * loss) / normalizer`` over all
    elements. torchvision's RPN uses ``beta = 1/9``, sums over the positive
    anchors and divides by the number of *sampled* anchors (256 per image,
    positives and negatives): pass ``weights`` = 1 for positive anchors and
    ``normalizer`` = the number of sampled anchors to get its box loss.

    Args:
        y_true, y_pred: ``(..., 4)`` box deltas (any shape, the same for both).
        beta: the switch point, ``>= 0``.
        weights: ``None`` (all 1), broadcastable to ``y_pred`` or of shape
            ``y_pred.shape[:-1]`` (one weight per box).
        normalizer: the divisor (a number or a scalar tensor, e.g. the
            sampled-anchor count); values below 1 are taken as 1.

    Returns:
        Scalar float32 tensor.
    """
    beta = float(beta)
    if not beta >= 0:
        raise ValueError(f"beta: expected a number >= 0, got {beta!r}")
    p = ops.cast(y_pred, "float32")
    t = ops.cast(y_true, "float32")
    d = ops.abs(p - t)
    if beta == 0.0:
        loss = d
    else:
        loss = ops.where(d < beta, 0.5 * ops.square(d) / beta, d - 0.5 * beta)
    if weights is not None:
        w = ops.cast(weights, "float32")
        if len(w.shape) == len(p.shape) - 1:
            w = ops.expand_dims(w, -1)
        loss = loss * w
    return ops.sum(loss) / ops.maximum(ops.cast(normalizer, "float32"), 1.0)


def rpn_objectness_loss(labels, logits, mask):
    """The RPN's objectness loss: binary cross-entropy over the sampled anchors.

    ``mean over anchors with mask 1 of  softplus(l) - y * l`` (``=
    -y log sigmoid(l) - (1 - y) log(1 - sigmoid(l))``), as torchvision's
    ``F.binary_cross_entropy_with_logits(objectness[sampled], labels[sampled])``.

    Args:
        labels: ``(...,)`` 1 for object anchors, 0 for background.
        logits: ``(...,)`` objectness logits, the same shape.
        mask: ``(...,)`` 1 for the sampled anchors (torchvision: 256 per image,
            up to half positive), 0 for ignored or padding ones.

    Returns:
        Scalar float32; 0 when no anchor is sampled.
    """
    l = ops.cast(logits, "float32")
    y = ops.cast(labels, "float32")
    return _masked_mean(ops.softplus(l) - y * l, mask)


def fast_rcnn_loss(class_logits, labels, box_deltas, box_targets, mask, *, beta=1.0 / 9.0):
    """The box head's loss, as torchvision's ``fastrcnn_loss``: ``(classification, box)``.

    * classification: softmax cross-entropy of ``class_logits`` against
      ``labels``, mean over the sampled RoIs (``mask`` 1);
    * box: smooth-L1 (:func:`smooth_l1`, ``beta``) between the deltas predicted
      for the ground-truth class and ``box_targets``, only for positive sampled
      RoIs (``label > 0``; class 0 is background), summed over RoIs and the four
      deltas and divided by the number of *sampled* RoIs (not of positives).

    Args:
        class_logits: ``(N, num_classes)``, class 0 the background.
        labels: ``(N,)`` int in ``[0, num_classes)``.
        box_deltas: class-specific ``(N, num_classes * 4)`` or
            ``(N, num_classes, 4)``, or class-agnostic ``(N, 4)``.
        box_targets: ``(N, 4)`` encoded regression targets.
        mask: ``(N,)`` 1 for the sampled RoIs (torchvision: 512 per image), 0 for padding.
        beta: the smooth-L1 switch point (torchvision 1/9, Detectron2 0).

    Returns:
        ``(classification_loss, box_loss)``: two scalar float32 tensors (their
        sum is the box head's loss); both 0 when no RoI is sampled.
    """
    logits = ops.cast(class_logits, "float32")
    if len(logits.shape) != 2:
        raise ValueError(f"class_logits: expected shape (N, num_classes), got {tuple(logits.shape)}")
    num_classes = logits.shape[-1]
    labels = ops.cast(labels, "int32")
    mask = ops.cast(mask, "float32")
    ce = ops.logsumexp(logits, axis=-1) - ops.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    classification = _masked_mean(ce, mask)

    deltas = ops.cast(box_deltas, "float32")
    shape = tuple(deltas.shape)
    if len(shape) == 2 and shape[-1] == 4:
        picked = deltas
    elif len(shape) == 2 and num_classes is not None and shape[-1] == 4 * num_classes:
        deltas = ops.reshape(deltas, (-1, num_classes, 4))
        picked = ops.take_along_axis(deltas, labels[:, None, None], axis=1)[:, 0]
    elif len(shape) == 3 and shape[-1] == 4:
        picked = ops.take_along_axis(deltas, labels[:, None, None], axis=1)[:, 0]
    else:
        raise ValueError(
            f"box_deltas: expected shape (N, {num_classes} * 4), (N, {num_classes}, 4) or (N, 4), got {shape}"
        )
    positive = ops.cast(labels > 0, "float32") * mask
    box = smooth_l1(box_targets, picked, beta=beta, weights=positive, normalizer=ops.sum(mask))
    return classification, box


def keypoint_rcnn_loss(heatmap_logits, target_index, valid):
    """The keypoint head's loss (Mask R-CNN, section 5): a softmax over the heatmap cells.

    For each labelled keypoint inside its RoI (``valid``), the cross-entropy of
    a softmax over the ``S_h * S_w`` cells of its heatmap against the target
    cell: ``logsumexp(l) - l[target]``; the mean over the valid keypoints of
    the batch (torchvision; Detectron2 divides by the same count by default).
    0, with zero gradient and no NaN, when no keypoint is valid.

    With one-hot logits ``l = a * onehot(target)`` the loss is
    ``log(1 + (S_h S_w - 1) e^{-a})``.

    Args:
        heatmap_logits: ``(K, S_h, S_w, J)`` channels-last.
        target_index: ``(K, J)`` int flat cell ``v * S_w + u``
            (:func:`pose_lab.roi.keypoints_to_roi_targets`).
        valid: ``(K, J)`` bool / 0-1.

    Returns:
        Scalar float32 tensor.
    """
    logits = ops.cast(heatmap_logits, "float32")
    if len(logits.shape) != 4:
        raise ValueError(f"heatmap_logits: expected shape (K, S, S, J) (channels-last), got {tuple(logits.shape)}")
    _, s_h, s_w, _ = logits.shape
    flat = ops.transpose(ops.reshape(logits, (-1, s_h * s_w, ops.shape(logits)[-1])), (0, 2, 1))  # (K, J, S*S)
    # invalid rows may carry any index: keep the gather in range (their loss is masked out)
    target = ops.clip(ops.cast(target_index, "int32"), 0, s_h * s_w - 1)
    picked = ops.take_along_axis(flat, target[..., None], axis=-1)[..., 0]
    ce = ops.logsumexp(flat, axis=-1) - picked
    return _masked_mean(ce, valid)
