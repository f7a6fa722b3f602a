"""Arrays for 2D -> 3D lifting (Martinez et al. 2017): the protocol split, z-scored.

:func:`prepare_lifting_data` takes a loaded Human3.6M-format dataset
(:class:`pose_lab.data.h36m.H36MData`), splits it by the standard protocol
(train S1, S5, S6, S7, S8; test S9, S11; all four cameras), computes the
normalisation statistics on the training poses only
(:class:`pose_lab.data.normalization.NormStats`, Martinez layout: the 2D
input keeps the root and is not root-centred, the 3D target is root-centred
and its root dropped) and returns the z-scored arrays as a
:class:`LiftingData`, with the millimetre ground truth and the labels the
protocol tables need.

The network is built in :mod:`pose_lab.models.lifting`, trained with
:mod:`pose_lab.training.lifting` and evaluated with
:mod:`pose_lab.evaluation.lifting`.

Example:
    >>> ld = prepare_lifting_data(load_h36m(path_3d, path_2d), train_stride=2)
    >>> ld.x_train.shape, ld.y_train.shape          # (N, 17, 2), (N, 16, 3) z-scores
    >>> pose_mm = ld.stats.denormalize_3d(ld.y_test) # (M, 17, 3) mm, root at the origin
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pose_lab.data.normalization import NormStats

__all__ = ["LiftingData", "prepare_lifting_data"]


class LiftingData(NamedTuple):
    """Normalised arrays for lifting, from :func:`prepare_lifting_data`.

    Attributes:
        x_train, y_train: z-scored 2D ``(N, 17, 2)`` and root-dropped 3D ``(N, 16, 3)``.
        actions_train: ``(N,)`` action classes of the training poses.
        x_test: z-scored 2D test inputs ``(M, 17, 2)``.
        y_test: z-scored root-dropped 3D test targets ``(M, 16, 3)`` (validation loss).
        y_test_mm: ground truth ``(M, 17, 3)``, mm, root-centred camera frame.
        actions_test, subjects_test: ``(M,)`` labels (protocol tables group by action).
        x_test_px: the test 2D inputs in pixels (for drawing).
        stats: the training set's :class:`pose_lab.data.normalization.NormStats`
            (``stats.denormalize_3d(y)``: z-scores -> mm with the root at the origin).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    actions_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    y_test_mm: np.ndarray
    actions_test: np.ndarray
    subjects_test: np.ndarray
    x_test_px: np.ndarray
    stats: NormStats


def prepare_lifting_data(data, train_subjects="train", test_subjects="test", *, train_stride=1,
                         test_stride=1, stats=None) -> LiftingData:
    """Protocol split + Martinez normalisation of an :class:`pose_lab.data.h36m.H36MData`.

    Training poses come from ``train_subjects`` (S1, S5, S6, S7, S8), test
    poses from ``test_subjects`` (S9, S11), all four cameras. The
    normalisation statistics are computed on the training poses only (or
    taken from ``stats``: a :class:`~pose_lab.data.normalization.NormStats`
    or its ``to_dict()``). Frame strides thin out the 50 fps sequences.
    """
    train = data.lifting_arrays(train_subjects, stride=train_stride)
    test = data.lifting_arrays(test_subjects, stride=test_stride)
    if len(train.inputs_2d) == 0 or len(test.inputs_2d) == 0:
        raise ValueError(f"prepare_lifting_data: empty split (train {len(train.inputs_2d)}, "
                         f"test {len(test.inputs_2d)} poses); subjects: {data.subjects}")
    if stats is None:
        stats = NormStats.from_arrays(train.inputs_2d, train.targets_3d)
    stats = NormStats.coerce(stats)
    f32 = np.float32
    return LiftingData(
        x_train=stats.normalize_2d(train.inputs_2d).astype(f32),
        y_train=stats.normalize_3d(train.targets_3d).astype(f32),
        actions_train=train.actions,
        x_test=stats.normalize_2d(test.inputs_2d).astype(f32),
        y_test=stats.normalize_3d(test.targets_3d).astype(f32),
        y_test_mm=test.targets_3d.astype(f32),
        actions_test=test.actions,
        subjects_test=test.subjects,
        x_test_px=test.inputs_2d.astype(f32),
        stats=stats,
    )
