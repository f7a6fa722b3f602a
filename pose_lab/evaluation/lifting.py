"""Evaluating a 2D -> 3D lifter: predictions in mm and the Human3.6M protocols 1 and 2.

The recipe of Martinez et al. (2017) on S9 and S11: the lifter's z-scored,
root-dropped output is de-normalised to mm with the training set's
:class:`~pose_lab.data.normalization.NormStats` and the root re-inserted at the
origin (so the average runs over all 17 joints as in the published numbers), then

* **protocol 1**: MPJPE (mean Euclidean joint error after root alignment);
* **protocol 2**: P-MPJPE (after a Procrustes similarity alignment);

each per action and averaged over the actions (every action counts the same).
:func:`to_mm` is the de-normalisation alone (any leading axes, e.g. ``k``
hypotheses per pose).

The network is :func:`pose_lab.models.lifting.build_lifter`, trained with
:mod:`pose_lab.training.lifting` on the arrays of
:func:`pose_lab.data.lifting.prepare_lifting_data`.

Example:
    >>> table = evaluate_lifter(model, ld.x_test, ld.y_test_mm, ld.actions_test, ld.stats)
    >>> table.average["P1"], table.average["P2"]        # mm, the numbers papers report
    >>> format_results({"baseline": table, "VAE mean": vae_table})   # one ResultTable side by side
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pose_lab import metrics
from pose_lab.data.normalization import NormStats
from pose_lab.metrics.tables import ResultTable
from pose_lab.training.base import batched_predict
from pose_lab.validation import check_poses

__all__ = ["PROTOCOLS", "evaluate_lifter", "format_results", "predict_3d", "protocol_errors", "to_mm"]

#: The metrics of the Human3.6M protocols, as the columns of the tables.
PROTOCOLS = ("P1", "P2")


def predict_3d(model, x2d, stats=None, *, batch_size=4096, root=None) -> np.ndarray:
    """Lift z-scored 2D poses: z-scores ``(N, J_out, 3)``, or mm ``(N, J_out + 1, 3)`` with ``stats``.

    Args:
        model: a lifter (z-scored 2D -> z-scored root-dropped 3D).
        x2d: z-scored 2D poses ``(N, J_in, 2)`` (flat ``(N, 2 J_in)`` accepted).
        stats: the training set's :class:`~pose_lab.data.normalization.NormStats`
            (or its ``to_dict()``): the prediction is de-normalised and the
            root re-inserted at the origin (camera frame, mm).
        batch_size: poses per call of the model (inference mode, no tracing).
        root: where the zero root goes; ``None``: ``stats.root`` (the pelvis, 0, in H36M-17).

    Returns:
        float32 array.
    """
    x = check_poses(x2d, "x2d (2D poses to lift)", dims=2, num_joints=model.input_shape[1], batched=True,
                    flat=True)
    y = batched_predict(model, x, batch_size)
    return to_mm(y[0] if isinstance(y, tuple) else y, stats, root)


def to_mm(y, stats, root=None) -> np.ndarray:
    """A lifter's z-scores ``(..., J3, 3)`` -> float32 mm with the zero root put back (``stats=None``: ``y``).

    ``stats`` is a :class:`~pose_lab.data.normalization.NormStats` (or its
    ``to_dict()``); ``root`` overrides ``stats.root`` (where the zero root goes).
    """
    if stats is None:
        return y
    stats = NormStats.coerce(stats)
    if root is not None and int(root) != stats.root:
        stats = dataclasses.replace(stats, root=int(root))
    return stats.denormalize_3d(y).astype(np.float32)


def protocol_errors(pred_mm, target_mm, actions=None):
    """Protocol 1 (MPJPE) and protocol 2 (P-MPJPE) in mm, per action and averaged over actions.

    Args:
        pred_mm, target_mm: ``(N, 17, 3)`` root-centred poses in mm.
        actions: ``(N,)`` action label per pose (``None``: one group ``"all"``).

    Returns:
        The per-action table of :func:`pose_lab.metrics.evaluate_by_action`
        with metrics ``"P1"`` and ``"P2"``: ``table[action]["P1"]``,
        ``table.average["P1"]`` (the unweighted mean over actions, the number
        papers report) and ``table.overall`` (mean over all poses).
        ``table.to_markdown()`` formats it.
    """
    pred_mm = check_poses(pred_mm, "pred_mm", dims=3, batched=True, dtype=np.float64)
    target_mm = check_poses(target_mm, "target_mm", dims=3, num_joints=pred_mm.shape[1], batched=True,
                            flat=True, dtype=np.float64)
    if len(pred_mm) != len(target_mm):
        raise ValueError(f"pred_mm and target_mm: lengths differ ({len(pred_mm)} vs {len(target_mm)})")
    if actions is None:
        actions = np.full(len(pred_mm), "all")
    return metrics.evaluate_by_action(pred_mm, target_mm, np.asarray(actions),
                                      metrics=dict(zip(PROTOCOLS, (metrics.mpjpe, metrics.p_mpjpe))))


def evaluate_lifter(model, x2d, y3d_mm, actions=None, stats=None, *, batch_size=4096, root=None,
                    predict_fn=None, return_predictions=False):
    """Protocols 1 and 2 on a test set (S9/S11 for Human3.6M).

    Args:
        model: a lifter (z-scored 2D -> z-scored root-dropped 3D).
        x2d: z-scored 2D inputs ``(N, J_in, 2)`` (``ld.x_test``: the 16 joints without Neck/Nose by default).
        y3d_mm: ground truth ``(N, 17, 3)`` in mm, root-centred, camera frame.
        actions: ``(N,)`` action labels.
        stats: the training set's :class:`~pose_lab.data.normalization.NormStats`
            (needed unless ``predict_fn`` is given).
        batch_size, root: as for :func:`predict_3d`.
        predict_fn: optional ``f(x2d) -> (N, 17, 3) mm`` replacing
            :func:`predict_3d` (e.g. a VAE's mean prediction).
        return_predictions: also return the predictions in mm.

    Returns:
        The table of :func:`protocol_errors` (``table.average["P1"]``,
        ``table.average["P2"]``), and with ``return_predictions`` the
        ``(N, 17, 3)`` predictions.
    """
    if predict_fn is None:
        if stats is None:
            raise ValueError("stats: the 3D normalisation statistics are needed to report mm")
        pred = predict_3d(model, x2d, stats, batch_size=batch_size, root=root)
    else:
        pred = np.asarray(predict_fn(x2d))
    check_poses(y3d_mm, "y3d_mm (ground-truth 3D in mm)", dims=3, num_joints=pred.shape[1], batched=True,
                flat=True)
    table = protocol_errors(pred, y3d_mm, actions)
    return (table, pred) if return_predictions else table


def format_results(tables, digits=1) -> ResultTable:
    """Methods side by side: ``{method: table}`` -> a :class:`~pose_lab.metrics.tables.ResultTable`.

    Rows are the actions (the first table's order, then any others) and the
    action average; columns ``"<method> P1"``, ``"<method> P2"`` per method
    (``"P1"``, ``"P2"`` for a single table passed as it is). ``display(...)``
    it in a notebook or ``print(result.to_markdown())``.
    """
    if hasattr(tables, "rows"):
        tables = {"": tables}
    methods = list(tables)
    first = tables[methods[0]]
    average = first.average_name
    actions = list(first.actions) + [a for t in tables.values() for a in t.actions if a not in first.actions]
    columns = [f"{m} {p}".strip() for m in methods for p in PROTOCOLS]
    rows = {a: {f"{m} {p}".strip(): tables[m][a][p] for m in methods if a in tables[m] for p in PROTOCOLS}
            for a in actions + [average]}
    return ResultTable(rows, columns, row_label="action", average_row=average, digits=digits)
