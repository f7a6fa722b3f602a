"""Representation diagnostics of latent-variable models."""

from __future__ import annotations

import numpy as np

__all__ = ["active_units"]


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
