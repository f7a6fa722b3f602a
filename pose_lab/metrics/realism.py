"""Realism of generated 3D poses, by numbers: symmetry, proportions, joint limits, diversity, distribution distances.

Pure NumPy (scikit-learn for the two-sample classifier, SciPy for the matrix
square root); poses are ``(N, J, 3)`` arrays in millimetres on a skeleton with
a kinematic tree (H36M-17 by default), root-centred or not (only differences
of joints are used, except by :func:`average_pairwise_distance`, which
expects root-centred poses).

* :func:`bone_asymmetry`: mean relative left/right bone-length difference
  ``|l_L - l_R| / ((l_L + l_R) / 2)`` (0 for a symmetric body);
* :func:`bone_length_ratio_error`: mean relative error of each bone's share of
  the total bone length against the reference (training) mean shares;
* :func:`joint_limit_violations`: fraction of (pose, limit) pairs outside the
  limits of a position-based spec (the synthetic engine's:
  :func:`pose_lab.data.synthetic.limits.joint_limits`), with a tolerance;
* :func:`average_pairwise_distance`: diversity, mean over pairs of poses of
  the mean per-joint distance (mm);
* :func:`frechet_distance` (closed form between Gaussians) and
  :func:`frechet_pose_distance` in the fixed feature space of
  :func:`pose_features` (unit bone directions + the KCS matrix of the
  scale-normalised pose): the pose analogue of FID;
* :func:`two_sample_classifier_accuracy`: held-out accuracy of a small
  classifier telling real from generated poses (0.5 = indistinguishable);
* :func:`mirrored_fraction`: the share of poses that are mirror images of a
  human body (knees bending towards the back, the nose behind the neck line): what a lifter learns when it inverts every depth, which no 2D view
  can reveal (notebook 12).
"""

from __future__ import annotations

import numpy as np

from pose_lab.skeletons import H36M17, Skeleton, get_skeleton

__all__ = [
    "bone_vectors",
    "bone_asymmetry",
    "bone_length_ratio_error",
    "bend_angles",
    "joint_limit_violations",
    "average_pairwise_distance",
    "pose_features",
    "frechet_distance",
    "frechet_pose_distance",
    "two_sample_classifier_accuracy",
    "mirrored_fraction",
    "realism_report",
]


def _skel(skeleton) -> Skeleton:
    skel = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
    if not isinstance(skel, Skeleton) or skel.parents is None:
        raise ValueError(f"skeleton: expected a Skeleton with a kinematic tree (e.g. 'h36m17'), got {skeleton!r}")
    return skel


def _poses(poses, skel, name="poses"):
    p = np.asarray(poses, np.float64)
    if p.ndim != 3 or p.shape[1:] != (skel.num_joints, 3):
        raise ValueError(f"{name}: expected shape (N, {skel.num_joints}, 3) on skeleton {skel.name!r} (mm), "
                         f"got {p.shape}")
    if not np.all(np.isfinite(p)):
        bad = int(np.flatnonzero(~np.isfinite(p).all(axis=(1, 2)))[0])
        raise ValueError(f"{name}: pose {bad} has NaN/inf values")
    return p


def _children(skel):
    return np.array([j for j, p in enumerate(skel.parents) if p >= 0])


def bone_vectors(poses, skeleton=H36M17) -> np.ndarray:
    """``(N, J - 1, 3)`` bone vectors child - parent, in the order of ``skeleton.edges``."""
    skel = _skel(skeleton)
    p = _poses(poses, skel)
    child = _children(skel)
    parent = np.array([skel.parents[j] for j in child])
    return p[:, child] - p[:, parent]


def bone_asymmetry(poses, skeleton=H36M17, *, reduction="mean"):
    """Relative left/right bone-length difference ``|l_L - l_R| / ((l_L + l_R) / 2)``.

    The pairs are the bones ending at ``skeleton.left[i]`` / ``skeleton.right[i]``.
    ``reduction``: ``"mean"`` (a float, over poses and pairs) or ``"none"``
    (``(N, pairs)``). Multiply by 100 for percent.
    """
    skel = _skel(skeleton)
    lengths = np.linalg.norm(bone_vectors(poses, skel), axis=-1)
    bone_of = {j: b for b, j in enumerate(_children(skel))}
    pairs = [(bone_of[l], bone_of[r]) for l, r in zip(skel.left, skel.right) if l in bone_of and r in bone_of]
    if not pairs:
        raise ValueError(f"skeleton {skel.name!r}: no left/right bone pairs")
    lb, rb = np.array(pairs).T
    ll, rl = lengths[:, lb], lengths[:, rb]
    out = np.abs(ll - rl) / np.maximum(0.5 * (ll + rl), 1e-9)
    if reduction == "none":
        return out
    if reduction != "mean":
        raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
    return float(out.mean())


def _length_shares(poses, skel):
    lengths = np.linalg.norm(bone_vectors(poses, skel), axis=-1)
    return lengths / np.maximum(lengths.sum(axis=1, keepdims=True), 1e-9)


def bone_length_ratio_error(poses, reference, skeleton=H36M17) -> float:
    """Mean relative error of the bone-length shares against the reference mean shares.

    Each pose's bone lengths are divided by their sum (scale-free proportions);
    the error of bone ``b`` is ``|share_b - mean_ref share_b| / mean_ref share_b``,
    averaged over poses and bones. Real poses score their natural spread.
    """
    skel = _skel(skeleton)
    ref = _length_shares(_poses(reference, skel, "reference"), skel).mean(axis=0)
    share = _length_shares(poses, skel)
    return float(np.mean(np.abs(share - ref) / ref))


def bend_angles(poses, limits) -> dict:
    """The bend angle (radians) of each limit of a spec: ``{name: (N,)}`` (see :func:`joint_limit_violations`)."""
    p = np.asarray(poses, np.float64)
    if p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"poses: expected shape (N, J, 3), got {p.shape}")
    out = {}
    for name, spec in limits.items():
        try:
            a, b, c = spec["joints"]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"limits[{name!r}]: expected a dict with 'joints': (a, b, c)") from None
        u, v = p[:, b] - p[:, a], p[:, c] - p[:, b]
        cos = np.sum(u * v, -1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-12)
        ang = np.arccos(np.clip(cos, -1.0, 1.0))
        axis = spec.get("axis")
        if axis is not None:
            ax = p[:, axis[1]] - p[:, axis[0]]
            sign = np.sign(np.sum(np.cross(u, v) * ax, -1))
            ang = ang * np.where(sign == 0, 1.0, sign)
        out[name] = ang
    return out


def joint_limit_violations(poses, limits, *, tolerance=np.deg2rad(5.0), reduction="mean"):
    """Fraction of (pose, limit) pairs whose bend angle is outside ``range`` widened by ``tolerance``.

    Args:
        poses: ``(N, J, 3)`` mm.
        limits: ``{name: {"joints": (a, b, c), "range": (lo, hi), "axis": (p, q) or None}}``,
            radians; the bend at ``b`` is the angle between ``b - a`` and
            ``c - b`` (0 = straight), signed by ``(b-a) x (c-b) . (q - p)``
            when ``axis`` is given. The synthetic engine's limits:
            :func:`pose_lab.data.synthetic.limits.joint_limits`.
        tolerance: radians of slack on both sides (5 degrees).
        reduction: ``"mean"`` (a float), ``"per_limit"`` (``{name: fraction}``)
            or ``"none"`` (``{name: (N,) bool}``).
    """
    if not limits:
        raise ValueError("limits: expected at least one limit")
    angles = bend_angles(poses, limits)
    bad = {}
    for name, ang in angles.items():
        lo, hi = limits[name]["range"]
        bad[name] = (ang < lo - tolerance) | (ang > hi + tolerance)
    if reduction == "none":
        return bad
    if reduction == "per_limit":
        return {k: float(v.mean()) for k, v in bad.items()}
    if reduction != "mean":
        raise ValueError(f"reduction: expected 'mean', 'per_limit' or 'none', got {reduction!r}")
    return float(np.mean([v.mean() for v in bad.values()]))


def average_pairwise_distance(poses, *, max_samples=1000, seed=0) -> float:
    """Diversity: mean over pairs ``i != j`` of the mean per-joint distance ``mean_k ||p_ik - p_jk||`` (mm).

    At most ``max_samples`` poses (a fixed random subset) are used. A
    mode-collapsed generator scores near 0; compare with the real poses' value.
    """
    p = np.asarray(poses, np.float64)
    if p.ndim != 3 or p.shape[-1] != 3 or len(p) < 2:
        raise ValueError(f"poses: expected shape (N >= 2, J, 3), got {p.shape}")
    if len(p) > max_samples:
        p = p[np.random.default_rng(seed).choice(len(p), max_samples, replace=False)]
    n = len(p)
    total = 0.0
    for i in range(n - 1):
        total += np.linalg.norm(p[i + 1:] - p[i], axis=-1).mean(axis=1).sum()
    return float(total / (n * (n - 1) / 2))


def pose_features(poses, skeleton=H36M17) -> np.ndarray:
    """A fixed, scale-free feature vector per pose: unit bone directions and the normalised KCS matrix.

    ``[d_1, ..., d_B, triu(Psi_hat)]`` with ``d_b`` the unit bone vectors
    (``3B`` numbers) and ``Psi_hat = B_hat^T B_hat`` of the bones divided by
    their total length (upper triangle with the diagonal, ``B(B+1)/2``
    numbers): directions carry the joint angles, ``Psi_hat`` the proportions
    and bone-pair angles. 48 + 136 = 184 numbers for H36M-17.
    """
    skel = _skel(skeleton)
    bones = bone_vectors(poses, skel)
    lengths = np.linalg.norm(bones, axis=-1, keepdims=True)
    dirs = bones / np.maximum(lengths, 1e-9)
    norm = bones / np.maximum(lengths.sum(axis=1, keepdims=True), 1e-9)
    psi = np.einsum("nbd,ncd->nbc", norm, norm)
    iu = np.triu_indices(bones.shape[1])
    return np.concatenate([dirs.reshape(len(bones), -1), psi[:, iu[0], iu[1]] * bones.shape[1]], axis=1)


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Frechet (2-Wasserstein) distance^2 between Gaussians: ``|mu1-mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))``."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    c1, c2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or c1.shape != (d, d) or c2.shape != (d, d):
        raise ValueError(f"frechet_distance: expected means (D,) and covariances (D, D), got {mu1.shape}, "
                         f"{c1.shape}, {mu2.shape}, {c2.shape}")
    def sqrtm(m):
        out = linalg.sqrtm(m)
        return out[0] if isinstance(out, tuple) else out   # some SciPy versions return (sqrtm, error)

    covmean = sqrtm(c1 @ c2)
    if not np.isfinite(covmean).all():  # singular product: regularise as in the FID reference code
        off = np.eye(d) * 1e-6
        covmean = sqrtm((c1 + off) @ (c2 + off))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * np.trace(covmean))


def frechet_pose_distance(real, generated, skeleton=H36M17) -> float:
    """:func:`frechet_distance` between Gaussians fitted to the :func:`pose_features` of two pose sets."""
    from threadpoolctl import threadpool_limits

    fr, fg = pose_features(real, skeleton), pose_features(generated, skeleton)
    with threadpool_limits(1):
        return frechet_distance(fr.mean(0), np.cov(fr, rowvar=False), fg.mean(0), np.cov(fg, rowvar=False))


def two_sample_classifier_accuracy(real, generated, skeleton=H36M17, *, test_fraction=0.3, seed=0,
                                   features=True, max_samples=4000) -> float:
    """Held-out accuracy of a small MLP classifier telling real from generated poses.

    Both sets are cut to the same size (at most ``max_samples``), featurised
    with :func:`pose_features` (``features=True``) or flattened coordinates
    standardised, split into train/test (stratified, ``test_fraction``), and
    ``sklearn.neural_network.MLPClassifier((64,))`` (early stopping) is fitted
    on one BLAS thread (threads fight on a shared CPU and slow it tenfold).
    0.5 = the classifier cannot tell them apart; 1.0 = trivially apart.
    """
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    skel = _skel(skeleton)
    r, g = _poses(real, skel, "real"), _poses(generated, skel, "generated")
    rng = np.random.default_rng(seed)
    n = min(len(r), len(g), max_samples)
    if n < 20:
        raise ValueError(f"two_sample_classifier_accuracy: expected at least 20 poses per set, got {n}")
    r, g = r[rng.choice(len(r), n, replace=False)], g[rng.choice(len(g), n, replace=False)]
    feat = (lambda p: pose_features(p, skel)) if features else (lambda p: p.reshape(len(p), -1))
    x = np.concatenate([feat(r), feat(g)])
    y = np.r_[np.ones(n), np.zeros(n)]
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(xtr)
    clf = MLPClassifier((64,), early_stopping=True, max_iter=200, random_state=seed)
    with threadpool_limits(1):
        clf.fit(scaler.transform(xtr), ytr)
        return float(clf.score(scaler.transform(xte), yte))


#: H36M-17 joint names that :func:`mirrored_fraction` reads.
_HANDEDNESS_JOINTS = ("Hip", "Thorax", "LHip", "RHip", "LKnee", "RKnee", "LFoot", "RFoot", "Neck/Nose", "Head")


def mirrored_fraction(poses, skeleton=H36M17, *, reduction="mean"):
    """Share of 3D poses that are mirror images of a human body (handedness flipped).

    A reflection (for instance every depth negated, ``z -> -z``) turns a body
    into one of the other handedness: still symmetric, same bone lengths, but
    with its knees bending towards its back and its nose behind its face.
    Under orthographic projection the views of such a pose are exactly the
    views of the true pose from reflected cameras, so a 2D critic cannot tell
    them apart (the depth-reversal ambiguity); the body can. Per pose, with
    ``up = Thorax - Hip``, ``across = LHip - RHip`` and the body's front
    ``f = normalise(across x up)`` (in a right-handed frame, e.g. the
    camera's x right, y down, z forward or the world's z up):

    ``vote = <LKnee - (LHip + LFoot)/2, f> + <RKnee - (RHip + RFoot)/2, f> + <Nose - (Thorax + Head)/2, f>``

    (knees flex forward, the nose is in front of the neck line), and the pose
    counts as mirrored when ``vote < 0``. Invariant to rotation, translation
    and scale; a reflection turns each vote's sign. On the synthetic
    Human3.6M S9/S11 test poses: 0.0 (and 1.0 for their depth-negated copies);
    a straight-legged pose is decided by its nose (22 mm in front of the neck
    line on the synthetic bodies). On random poses drawn over the whole joint
    ranges (:func:`pose_lab.data.synthetic.random_poses`) 3.5 % are misjudged
    (extreme hip and trunk bends): a share, not a per-pose verdict.

    Args:
        poses: ``(N, J, 3)`` on ``skeleton``, which must name the joints Hip,
            Thorax, LHip, RHip, LKnee, RKnee, LFoot, RFoot, Neck/Nose, Head
            (H36M-17).
        reduction: ``"mean"`` (the share, a float in [0, 1]) or ``"none"``
            (the ``(N,)`` votes, in the units of ``poses``; negative: mirrored).
    """
    skel = _skel(skeleton)
    try:
        idx = {n: skel.index(n) for n in _HANDEDNESS_JOINTS}
    except (KeyError, ValueError) as err:
        raise ValueError(f"skeleton {skel.name!r}: mirrored_fraction needs the joints {_HANDEDNESS_JOINTS} "
                         f"(H36M-17 names): {err}") from None
    p = _poses(poses, skel)
    j = {n: p[:, i] for n, i in idx.items()}
    front = np.cross(j["LHip"] - j["RHip"], j["Thorax"] - j["Hip"])
    front /= np.maximum(np.linalg.norm(front, axis=-1, keepdims=True), 1e-12)
    offsets = (j["LKnee"] - 0.5 * (j["LHip"] + j["LFoot"]) + j["RKnee"] - 0.5 * (j["RHip"] + j["RFoot"])
               + j["Neck/Nose"] - 0.5 * (j["Thorax"] + j["Head"]))
    vote = np.einsum("nk,nk->n", offsets, front)
    if reduction == "none":
        return vote
    if reduction != "mean":
        raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
    return float(np.mean(vote < 0))


def realism_report(generated, reference, limits, skeleton=H36M17, *, seed=0, classifier=True) -> dict:
    """Every realism number of ``generated`` against ``reference`` (both ``(N, J, 3)`` mm) in one dict.

    Keys: ``asymmetry_%``, ``bone_ratio_err_%``, ``limit_violations_%``,
    ``diversity_mm``, ``frechet``, ``classifier_acc`` (``nan`` when
    ``classifier=False``). Passing the reference itself (or another real
    sample) as ``generated`` gives the reference row.
    """
    return {
        "asymmetry_%": 100 * bone_asymmetry(generated, skeleton),
        "bone_ratio_err_%": 100 * bone_length_ratio_error(generated, reference, skeleton),
        "limit_violations_%": 100 * joint_limit_violations(generated, limits),
        "diversity_mm": average_pairwise_distance(generated, seed=seed),
        "frechet": frechet_pose_distance(reference, generated, skeleton),
        "classifier_acc": (two_sample_classifier_accuracy(reference, generated, skeleton, seed=seed)
                           if classifier else float("nan")),
    }
