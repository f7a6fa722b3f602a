"""Representation diagnostics of latent-variable models."""

from __future__ import annotations

import numpy as np

__all__ = ["active_units", "label_separability"]


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


def label_separability(z, labels, *, groups=None, k=5, folds=5, sample_size=5000, seed=0):
    """How well the labels (e.g. actions) can be read from a representation ``z``: "is the space mixed up?".

    Two numbers, both from scikit-learn:

    * ``knn_accuracy``: cross-validated accuracy of a ``k``-nearest-neighbour
      classifier on ``z``. With ``groups`` (e.g. subject ids) the folds are whole
      groups (``GroupKFold``), so a pose is never classified by its neighbours from
      the same subject and sequence, which would make any smooth encoder look
      separable; without groups, stratified folds.
    * ``silhouette``: the silhouette score of ``z`` with the labels as clusters
      (1: tight, separate classes; about 0: mixed up).

    ``chance`` is the accuracy of always guessing the most frequent class.

    Args:
        z: ``(N, D)`` features (posterior means, embeddings, flattened poses).
        labels: ``(N,)`` class labels (any hashable values).
        groups: optional ``(N,)`` group ids for the folds (at least 2 distinct).
        k, folds: neighbours and number of folds (folds <= the number of groups).
        sample_size: at most this many points for the silhouette (it is O(N^2)).
        seed: for the silhouette's subsample and the stratified folds' shuffle.

    Returns:
        ``{"knn_accuracy", "silhouette", "chance"}`` as floats.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    x = np.asarray(z, np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"z: expected shape (N >= 2, D), got {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels: expected shape ({x.shape[0]},), got {y.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("z: contains NaN or inf")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"labels: need at least 2 classes, got {len(classes)}")
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != (x.shape[0],):
            raise ValueError(f"groups: expected shape ({x.shape[0]},), got {g.shape}")
        n_groups = len(np.unique(g))
        if n_groups < 2:
            raise ValueError("groups: need at least 2 distinct groups for group-wise folds")
        cv, fit_groups = GroupKFold(n_splits=min(folds, n_groups)), g
    else:
        if counts.min() < 2:
            raise ValueError(f"labels: class {classes[counts.argmin()]!r} has 1 member; stratified folds need 2")
        cv = StratifiedKFold(n_splits=max(2, min(folds, int(counts.min()))), shuffle=True, random_state=seed)
        fit_groups = None
    knn = KNeighborsClassifier(n_neighbors=k)
    acc = cross_val_score(knn, x, y, cv=cv, groups=fit_groups, scoring="accuracy")
    sil = silhouette_score(x, y, sample_size=min(sample_size, x.shape[0]), random_state=seed)
    return {"knn_accuracy": float(acc.mean()), "silhouette": float(sil), "chance": float(counts.max() / len(y))}
