"""Evaluating pose generators: sample poses in millimetres and tabulate their realism against real poses.

:func:`sample_poses` draws ``z ~ N(0, I)``, runs the generator of an
:class:`~pose_lab.training.adversarial.AdversarialModel` (or any ``z -> pose``
model) and de-normalises to root-centred H36M-17 poses in mm;
:func:`realism_table` puts the numbers of
:func:`pose_lab.metrics.realism_report` for several generators and a real
reference row into one :class:`~pose_lab.metrics.ResultTable`.
"""

from __future__ import annotations

import numpy as np

from pose_lab import metrics
from pose_lab.data.synthetic.limits import joint_limits
from pose_lab.evaluation.lifting import to_mm
from pose_lab.training.base import batched_predict

__all__ = ["sample_poses", "realism_table", "REALISM_COLUMNS"]

#: columns of :func:`realism_table`, in order
REALISM_COLUMNS = ("asymmetry_%", "bone_ratio_err_%", "limit_violations_%", "diversity_mm", "frechet",
                   "classifier_acc")


def sample_poses(model, n, stats=None, *, seed=0, batch_size=4096):
    """``n`` poses from the prior: ``(n, 17, 3)`` mm with the root at the origin when ``stats`` is given.

    ``model``: an adversarial model (its ``generator`` is used) or a generator;
    ``stats``: the :class:`~pose_lab.data.normalization.NormStats` of the
    training poses (``None`` returns the generator's z-scored output).
    """
    gen = getattr(model, "generator", model)
    latent = int(gen.input_shape[-1])
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    z = np.random.default_rng(seed).standard_normal((int(n), latent)).astype("float32")
    out = batched_predict(gen, z, batch_size)
    return out if stats is None else to_mm(out, stats)


def realism_table(samples, reference, *, real=None, limits=None, seed=0, classifier=True, title=None):
    """A :class:`~pose_lab.metrics.ResultTable` of realism numbers, one row per generator.

    Args:
        samples: ``{name: (N, 17, 3) mm}`` generated poses.
        reference: ``(M, 17, 3)`` mm real (training) poses the samples are compared with.
        real: optional held-out real poses ``(N, 17, 3)``: the ``"real poses"``
            row (first), what a perfect generator would score.
        limits: position-based joint limits (default: the synthetic engine's,
            :func:`pose_lab.data.synthetic.limits.joint_limits`).
        seed, classifier: passed to :func:`pose_lab.metrics.realism_report`.
    """
    limits = joint_limits() if limits is None else limits
    rows = {}
    if real is not None:
        rows["real poses"] = metrics.realism_report(real, reference, limits, seed=seed, classifier=classifier)
    for name, poses in samples.items():
        rows[name] = metrics.realism_report(poses, reference, limits, seed=seed, classifier=classifier)
    return metrics.ResultTable(rows, REALISM_COLUMNS, row_label="samples", digits=3, title=title)
