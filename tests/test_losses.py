"""pose_lab.losses: closed forms, Monte Carlo and numerical-integration checks."""

import numpy as np
import pytest
from keras import ops

from pose_lab import losses, metrics


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _kl_closed_form(mu, log_var):
    """Textbook per-sample KL(N(mu, diag e^lv) || N(0, I)), written independently."""
    var = np.exp(log_var)
    return np.sum(-np.log(np.sqrt(var)) + (var + mu**2) / 2.0 - 0.5, axis=-1)


@pytest.fixture
def gaussians():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(6, 5)).astype(np.float32)
    log_var = rng.normal(scale=0.7, size=(6, 5)).astype(np.float32)
    return mu, log_var


def test_kl_matches_closed_form_per_sample(gaussians):
    mu, lv = gaussians
    got = _np(losses.kl_divergence_diag_gaussian(mu, lv, reduction="none"))
    np.testing.assert_allclose(got, _kl_closed_form(mu, lv), rtol=1e-5)


def test_kl_normalised_per_element_and_reductions(gaussians):
    mu, lv = gaussians
    per_sample = _kl_closed_form(mu, lv)
    n = 16 * 3  # a root-dropped 3D pose, as in the thesis
    np.testing.assert_allclose(
        _np(losses.kl_divergence_diag_gaussian(mu, lv, num_elements=n)), per_sample.mean() / n, rtol=1e-5
    )
    np.testing.assert_allclose(
        _np(losses.kl_divergence_diag_gaussian(mu, lv, num_elements=n, reduction="sum")),
        per_sample.sum() / n, rtol=1e-5,
    )


def test_kl_is_zero_for_the_prior_and_positive_otherwise(gaussians):
    assert _np(losses.kl_divergence_diag_gaussian(np.zeros((3, 4)), np.zeros((3, 4)))) == pytest.approx(0.0, abs=1e-7)
    mu, lv = gaussians
    assert np.all(_np(losses.kl_divergence_diag_gaussian(mu, lv, reduction="none")) > 0)


def test_kl_latent_maps_sum_over_all_non_batch_axes():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(2, 3, 4)).astype(np.float32)
    lv = rng.normal(size=(2, 3, 4)).astype(np.float32)
    got = _np(losses.kl_divergence_diag_gaussian(mu, lv, reduction="none"))
    np.testing.assert_allclose(got, _kl_closed_form(mu.reshape(2, -1), lv.reshape(2, -1)), rtol=1e-5)


def test_kl_matches_monte_carlo_estimate():
    # KL(q || p) = E_q[log q(z) - log p(z)], estimated with 400k samples of q.
    rng = np.random.default_rng(2)
    mu = np.array([[0.5, -1.0, 2.0]], np.float32)
    lv = np.array([[np.log(0.3), np.log(2.0), 0.0]], np.float32)
    z = mu + np.exp(0.5 * lv) * rng.standard_normal((400_000, 3)).astype(np.float32)
    log_q = _np(losses.gaussian_log_density(z, mu, lv))
    log_p = _np(losses.gaussian_log_density(z, np.zeros(3, np.float32), np.zeros(3, np.float32)))
    mc = (log_q - log_p).mean()
    se = (log_q - log_p).std() / np.sqrt(len(z))
    closed = float(_np(losses.kl_divergence_diag_gaussian(mu, lv)))
    assert abs(mc - closed) < 4 * se + 1e-3, (mc, closed, se)


def test_kl_1d_matches_numerical_integration():
    mu, lv = 0.7, np.log(0.5)
    x = np.linspace(-12, 12, 200_001)
    q = np.exp(-0.5 * (x - mu) ** 2 / np.exp(lv)) / np.sqrt(2 * np.pi * np.exp(lv))
    p = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
    integral = trapezoid(q * (np.log(q + 1e-300) - np.log(p)), x)
    got = float(_np(losses.kl_divergence_diag_gaussian(np.array([[mu]], np.float32), np.array([[lv]], np.float32))))
    assert got == pytest.approx(integral, rel=1e-4)


def test_general_kl_reduces_to_standard_and_matches_monte_carlo(gaussians):
    mu, lv = gaussians
    general = _np(losses.kl_divergence_diag_gaussians(mu, lv, np.zeros(5, np.float32), np.zeros(5, np.float32),
                                                      reduction="none"))
    np.testing.assert_allclose(general, _kl_closed_form(mu, lv), rtol=1e-5)

    rng = np.random.default_rng(3)
    mq, lq = np.array([[0.2, 1.0]], np.float32), np.array([[0.3, -0.5]], np.float32)
    mp, lp = np.array([[-0.4, 0.5]], np.float32), np.array([[-0.2, 0.4]], np.float32)
    z = mq + np.exp(0.5 * lq) * rng.standard_normal((400_000, 2)).astype(np.float32)
    d = _np(losses.gaussian_log_density(z, mq, lq)) - _np(losses.gaussian_log_density(z, mp, lp))
    got = float(_np(losses.kl_divergence_diag_gaussians(mq, lq, mp, lp)))
    assert abs(d.mean() - got) < 4 * d.std() / np.sqrt(len(z)) + 1e-3
    # KL(q || q) = 0
    assert float(_np(losses.kl_divergence_diag_gaussians(mq, lq, mq, lq))) == pytest.approx(0.0, abs=1e-6)


def test_gaussian_log_density_matches_scipy_free_formula():
    x = np.array([[1.0, -2.0]], np.float32)
    mu = np.array([[0.5, 0.0]], np.float32)
    lv = np.log(np.array([[2.0, 0.5]], np.float32))
    expected = sum(
        -0.5 * np.log(2 * np.pi * s2) - 0.5 * (xi - m) ** 2 / s2
        for xi, m, s2 in zip(x[0], mu[0], np.exp(lv[0]))
    )
    assert float(_np(losses.gaussian_log_density(x, mu, lv))[0]) == pytest.approx(expected, rel=1e-5)


def test_reconstruction_losses_match_numpy():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(4, 16, 3)).astype(np.float32)
    b = rng.normal(size=(4, 16, 3)).astype(np.float32)
    assert float(_np(losses.mean_squared_error(a, b))) == pytest.approx(((a - b) ** 2).mean(), rel=1e-5)
    assert float(_np(losses.mean_absolute_error(a, b))) == pytest.approx(np.abs(a - b).mean(), rel=1e-5)
    np.testing.assert_allclose(_np(losses.mse_loss(a, b, reduction="none")), ((a - b) ** 2).mean(axis=(1, 2)),
                               rtol=1e-5)
    assert float(_np(losses.reconstruction_loss(a, b, kind="l1", reduction="sum"))) == pytest.approx(
        np.abs(a - b).mean(axis=(1, 2)).sum(), rel=1e-5)
    with pytest.raises(ValueError, match="kind"):
        losses.reconstruction_loss(a, b, kind="huber")
    with pytest.raises(ValueError, match="reduction"):
        losses.mean_squared_error(a, b, reduction="average")


def test_ops_mpjpe_matches_metrics_with_scale_and_root_padding():
    rng = np.random.default_rng(5)
    std = rng.uniform(50, 300, size=(16, 3)).astype(np.float32)
    a = rng.normal(size=(8, 16, 3)).astype(np.float32)
    b = rng.normal(size=(8, 16, 3)).astype(np.float32)
    got = float(_np(losses.mean_per_joint_position_error(a, b, scale=std, pad_joints=1)))
    # independent: de-normalise, insert the root at the origin in both, average over 17 joints
    pa = np.insert(a * std, 0, 0.0, axis=1)
    pb = np.insert(b * std, 0, 0.0, axis=1)
    assert got == pytest.approx(metrics.mpjpe(pb, pa), rel=1e-4)
    flat = float(_np(losses.mean_per_joint_position_error(a.reshape(8, -1), b.reshape(8, -1))))
    assert flat == pytest.approx(metrics.mpjpe(b, a), rel=1e-4)


def test_beta_vae_loss_and_bad_arguments():
    assert float(_np(losses.beta_vae_loss(2.0, 3.0, beta=0.5))) == pytest.approx(3.5)
    with pytest.raises(ValueError, match="num_elements"):
        losses.kl_divergence_diag_gaussian(np.zeros((1, 2)), np.zeros((1, 2)), num_elements=0)


def test_weighted_heatmap_mse_closed_form_and_weights():
    rng = np.random.default_rng(1)
    t = rng.uniform(size=(2, 4, 3, 5)).astype(np.float32)
    p = rng.uniform(size=(2, 4, 3, 5)).astype(np.float32)
    w = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 1, 1]], np.float32)
    # SimpleBaseline's JointsMSELoss: 0.5 * mean over (b, v, u, j) of (w_bj * (pred - true))^2
    expected = 0.5 * np.mean((w[:, None, None, :] * (p - t)) ** 2)
    assert float(_np(losses.weighted_heatmap_mse(t, p, w))) == pytest.approx(expected, rel=1e-5)
    p2 = p.copy()
    p2[0, ..., 1] += 10.0  # a joint with weight 0 does not count
    assert float(_np(losses.weighted_heatmap_mse(t, p2, w))) == pytest.approx(expected, rel=1e-5)
    assert float(_np(losses.weighted_heatmap_mse(t, t, w))) == 0.0


def test_weighted_coordinate_l1_closed_form_and_weights():
    rng = np.random.default_rng(2)
    t = rng.uniform(0, 64, size=(3, 17, 3)).astype(np.float32)  # x, y, v: the third column is ignored
    p = rng.uniform(0, 64, size=(3, 17, 2)).astype(np.float32)
    w = (rng.uniform(size=(3, 17)) > 0.3).astype(np.float32)
    expected = np.mean(w[..., None] * np.abs(p - t[..., :2])) / 64.0
    got = float(_np(losses.weighted_coordinate_l1(t, p, w, scale=64.0)))
    assert got == pytest.approx(expected, rel=1e-5)
    p2 = p.copy()
    p2[w == 0] += 100.0  # unlabelled joints do not count
    assert float(_np(losses.weighted_coordinate_l1(t, p2, w, scale=64.0))) == pytest.approx(expected, rel=1e-5)
    assert float(_np(losses.weighted_coordinate_l1(t[..., :2], p, w))) == pytest.approx(64.0 * expected, rel=1e-5)
