"""Arrays for 2D -> 3D lifting (Martinez et al. 2017): the protocol split, a validation split, z-scores.

:func:`prepare_lifting_data` takes a loaded Human3.6M-format dataset
(:class:`pose_lab.data.h36m.H36MData`), splits it by the standard protocol
(train S1, S5, S6, S7, S8; test S9, S11; all four cameras), optionally holds
out **validation sequences from the training subjects**
(:func:`validation_sequences`: by default the last sequence of every action
of S8), computes the normalisation statistics on the remaining training
poses only (:class:`pose_lab.data.normalization.NormStats`, Martinez layout:
the 2D input is not root-centred, the 3D target is root-centred and its root
dropped) and returns the z-scored arrays as a :class:`LiftingData`, with the
millimetre ground truth and the labels the protocol tables need.

Which 2D joints the lifter sees (``input_joints``): the authors' 16
(:data:`MARTINEZ_INPUT_JOINTS`, H36M-17 without Neck/Nose, the default) or
all 17 (``"all"``). The 3D target is always the 16 non-root joints.

Monitor training, choose epochs and tune on ``ld.validation_data``; touch
the test subjects (S9, S11: ``ld.x_test``, ``ld.y_test_mm``) only for the
final tables.

The network is built in :mod:`pose_lab.models.lifting`, trained with
:mod:`pose_lab.training.lifting` and evaluated with
:mod:`pose_lab.evaluation.lifting`.

Example:
    >>> ld = prepare_lifting_data(load_h36m(path_3d, path_2d), val_subjects=["S8"], train_stride=2)
    >>> ld.x_train.shape, ld.y_train.shape          # (N, 16, 2), (N, 16, 3) z-scores
    >>> fit_lifter(model, ld.x_train, ld.y_train, validation_data=ld.validation_data)
    >>> pose_mm = ld.stats.denormalize_3d(ld.y_test) # (M, 17, 3) mm, root at the origin
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from typing import NamedTuple

import numpy as np

from pose_lab.data.h36m import TEST_SUBJECTS, action_class
from pose_lab.data.normalization import NormStats
from pose_lab.skeletons import H36M17

__all__ = [
    "MARTINEZ_INPUT_JOINTS",
    "VALIDATION_SUBJECTS",
    "LiftingData",
    "input_joint_indices",
    "prepare_lifting_data",
    "split_validation",
    "validation_sequences",
]

#: The 2D joints of Martinez et al.'s input, as indices into H36M-17: all but
#: Neck/Nose (16 joints, the hip included; their ``data_utils.normalization_stats``).
MARTINEZ_INPUT_JOINTS = tuple(i for i, n in enumerate(H36M17.joint_names) if n != "Neck/Nose")

#: The training subject whose last sequences are held out for validation by default.
VALIDATION_SUBJECTS = ("S8",)


def input_joint_indices(input_joints="martinez") -> tuple:
    """The H36M-17 indices of the 2D joints a lifter sees.

    Args:
        input_joints: ``"martinez"`` (the 16 of the paper: all but Neck/Nose),
            ``"all"`` (the 17), or a sequence of H36M-17 joint names or indices
            (in the order the lifter sees them).

    Returns:
        A tuple of ints.

    Raises:
        ValueError: an unknown name, an index outside ``[0, 17)``, a repeat, or an empty list.
    """
    if isinstance(input_joints, str):
        if input_joints == "martinez":
            return MARTINEZ_INPUT_JOINTS
        if input_joints == "all":
            return tuple(range(H36M17.num_joints))
        raise ValueError(f"input_joints: expected 'martinez', 'all' or a list of H36M-17 joints, "
                         f"got {input_joints!r}")
    out = []
    for j in input_joints:
        if isinstance(j, str):
            if j not in H36M17.joint_names:
                raise ValueError(f"input_joints: unknown joint {j!r}; H36M-17 has {list(H36M17.joint_names)}")
            j = H36M17.joint_names.index(j)
        elif not isinstance(j, numbers.Integral) or not 0 <= int(j) < H36M17.num_joints:
            raise ValueError(f"input_joints: expected H36M-17 indices in [0, {H36M17.num_joints}), got {j!r}")
        out.append(int(j))
    if not out or len(set(out)) != len(out):
        raise ValueError(f"input_joints: expected a non-empty list without repeats, got {list(input_joints)}")
    return tuple(out)


def _sequence_key(name):
    """Sort key putting ``"Walking"`` before ``"Walking 1"`` before ``"Walking 2"`` before ``"Walking 10"``."""
    m = re.search(r"\s+(\d+)$", str(name))
    return (int(m.group(1)) if m else -1, str(name))


def validation_sequences(data, subjects=VALIDATION_SUBJECTS, per_action=1) -> list:
    """The held-out validation sequences: the last ``per_action`` of every action of ``subjects``.

    Within each action class the sequences are ordered by their number
    (``"Walking"`` < ``"Walking 1"`` < ``"Walking 2"``; the real release's two
    takes, or the synthetic ``"Walking 1"``, ``"Walking 2"``), and the last
    ``per_action`` are held out. An action with ``per_action`` sequences or
    fewer (e.g. synthetic data with one sequence per action) is held out
    entirely.

    Args:
        data: an :class:`~pose_lab.data.h36m.H36MData`.
        subjects: training subjects to take validation sequences from (``"S8"`` or a list).
        per_action: sequences held out per action class (>= 1).

    Returns:
        ``[(subject, sequence_name), ...]``.

    Raises:
        ValueError: a test subject (S9, S11) or a subject not in ``data``, or a bad ``per_action``.
    """
    subjects = [subjects] if isinstance(subjects, str) else list(subjects)
    test = sorted(set(subjects) & set(TEST_SUBJECTS))
    if test:
        raise ValueError(f"validation subjects {test} are test subjects ({', '.join(TEST_SUBJECTS)}): "
                         "validate on training subjects (e.g. 'S8') and keep the test split for the final tables")
    missing = [s for s in subjects if s not in data.positions_world]
    if missing:
        raise ValueError(f"validation subjects {missing} not in the data; available: {data.subjects}")
    if not isinstance(per_action, numbers.Integral) or per_action < 1:
        raise ValueError(f"per_action: expected a positive int, got {per_action!r}")
    out = []
    for s in subjects:
        by_action = {}
        for name in data.positions_world[s]:
            by_action.setdefault(action_class(name), []).append(name)
        for cls in sorted(by_action):
            out += [(s, name) for name in sorted(by_action[cls], key=_sequence_key)[-int(per_action):]]
    return out


def split_validation(data, subjects=VALIDATION_SUBJECTS, per_action=1):
    """Two views of ``data``: without the validation sequences, and with only them.

    Args:
        data: an :class:`~pose_lab.data.h36m.H36MData`.
        subjects, per_action: as for :func:`validation_sequences`.

    Returns:
        ``(train_view, val_view)``, two :class:`~pose_lab.data.h36m.H36MData`
        sharing the arrays of ``data`` (no copy): ``train_view`` lacks the
        validation sequences, ``val_view`` holds only the validation subjects
        and their validation sequences.
    """
    held = validation_sequences(data, subjects, per_action)
    held_set = set(held)

    def keep(d, inside):
        out = {}
        for s, seqs in d.items():
            if inside and s not in {h[0] for h in held}:
                continue
            out[s] = {a: v for a, v in seqs.items() if ((s, a) in held_set) == inside}
        return out

    train = dataclasses.replace(data, positions_world=keep(data.positions_world, False),
                                positions_2d=keep(data.positions_2d, False))
    val = dataclasses.replace(data, positions_world=keep(data.positions_world, True),
                              positions_2d=keep(data.positions_2d, True),
                              cameras={s: c for s, c in data.cameras.items() if s in {h[0] for h in held}})
    return train, val


class LiftingData(NamedTuple):
    """Normalised arrays for lifting, from :func:`prepare_lifting_data`.

    Attributes:
        x_train, y_train: z-scored 2D ``(N, J_in, 2)`` (``J_in = len(input_joints)``,
            16 by default) and root-dropped 3D ``(N, 16, 3)``.
        actions_train: ``(N,)`` action classes of the training poses.
        x_test: z-scored 2D test inputs ``(M, J_in, 2)`` (S9, S11: final tables only).
        y_test: z-scored root-dropped 3D test targets ``(M, 16, 3)``.
        y_test_mm: ground truth ``(M, 17, 3)``, mm, root-centred camera frame.
        actions_test, subjects_test: ``(M,)`` labels (protocol tables group by action).
        x_test_px: the test 2D poses in pixels, all 17 joints ``(M, 17, 2)`` (for drawing).
        stats: the training set's :class:`pose_lab.data.normalization.NormStats`
            over all 17 2D joints (``stats.denormalize_3d(y)``: z-scores -> mm
            with the root at the origin); :meth:`normalize_2d` applies it and
            keeps the input joints.
        input_joints: the H36M-17 indices of the 2D joints in ``x_*``.
        x_val, y_val, y_val_mm, actions_val, subjects_val: the held-out
            validation poses from training subjects (like the ``*_test``
            arrays), ``None`` when no validation split was asked for.
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
    input_joints: tuple = tuple(range(17))
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    y_val_mm: np.ndarray | None = None
    actions_val: np.ndarray | None = None
    subjects_val: np.ndarray | None = None

    @property
    def validation_data(self):
        """``(x_val, y_val)`` for ``fit(validation_data=...)``, or ``None`` without a validation split."""
        return None if self.x_val is None else (self.x_val, self.y_val)

    @property
    def input_joint_names(self) -> tuple:
        """The H36M-17 names of the 2D joints the lifter sees."""
        return tuple(H36M17.joint_names[j] for j in self.input_joints)

    def normalize_2d(self, px) -> np.ndarray:
        """2D poses in pixels, all 17 H36M joints ``(..., 17, 2)`` -> the lifter's float32 input ``(..., J_in, 2)``."""
        return self.stats.normalize_2d(px)[..., list(self.input_joints), :].astype(np.float32)

    def denormalize_2d(self, x) -> np.ndarray:
        """The lifter's input ``(..., J_in, 2)`` z-scores -> pixels of those joints ``(..., J_in, 2)``."""
        x = np.asarray(x, dtype=np.float64)
        j = list(self.input_joints)
        if x.ndim < 2 or x.shape[-2:] != (len(j), 2):
            raise ValueError(f"denormalize_2d: expected shape (..., {len(j)}, 2), got {x.shape}")
        mean, std = self.stats.mean_2d, self.stats.std_2d
        if self.stats.drop_root_2d:
            raise ValueError("denormalize_2d: stats without the 2D root are not supported here")
        return x * std[j] + mean[j]


def prepare_lifting_data(data, train_subjects="train", test_subjects="test", *, input_joints="martinez",
                         val_subjects=None, val_per_action=1, train_stride=1, test_stride=1,
                         stats=None) -> LiftingData:
    """Protocol split + Martinez normalisation of an :class:`pose_lab.data.h36m.H36MData`.

    Training poses come from ``train_subjects`` (S1, S5, S6, S7, S8), test
    poses from ``test_subjects`` (S9, S11), all four cameras. With
    ``val_subjects`` (e.g. ``["S8"]``), the last ``val_per_action`` sequences
    of every action of those subjects are held out of training
    (:func:`validation_sequences`) and returned as ``x_val``/``y_val``. The
    normalisation statistics are computed on the training poses only (what
    remains after the hold-out), or taken from ``stats`` (a
    :class:`~pose_lab.data.normalization.NormStats` or its ``to_dict()``).

    Args:
        data: an :class:`~pose_lab.data.h36m.H36MData`.
        train_subjects, test_subjects: ``"train"`` / ``"test"`` or lists of names.
        input_joints: ``"martinez"`` (16 2D joints, Neck/Nose dropped, the
            paper), ``"all"`` (17) or a list (:func:`input_joint_indices`).
        val_subjects: training subjects to hold validation sequences out of
            (``None``: no validation split). Test subjects are refused.
        val_per_action: sequences held out per action and validation subject.
        train_stride: frame stride of the training poses.
        test_stride: frame stride of the test and validation poses.
        stats: given normalisation statistics (over all 17 2D joints).

    Returns:
        A :class:`LiftingData`.
    """
    joints = input_joint_indices(input_joints)
    val, data_train = None, data
    if val_subjects is not None:
        val_list = [val_subjects] if isinstance(val_subjects, str) else list(val_subjects)
        data_train, data_val = split_validation(data, val_list, val_per_action)  # refuses S9, S11
        train_list = (data.split(train_subjects) if train_subjects in ("train", "test")
                      else [train_subjects] if isinstance(train_subjects, str)
                      else data.subjects if train_subjects is None else list(train_subjects))
        outside = [s for s in val_list if s not in train_list]
        if outside:
            raise ValueError(f"val_subjects {outside} are not training subjects ({train_list})")
        val = data_val.lifting_arrays(val_list, stride=test_stride)
    train = data_train.lifting_arrays(train_subjects, stride=train_stride)
    test = data.lifting_arrays(test_subjects, stride=test_stride)
    if len(train.inputs_2d) == 0 or len(test.inputs_2d) == 0 or (val is not None and len(val.inputs_2d) == 0):
        raise ValueError(f"prepare_lifting_data: empty split (train {len(train.inputs_2d)}, "
                         f"test {len(test.inputs_2d)}"
                         + ("" if val is None else f", validation {len(val.inputs_2d)}")
                         + f" poses); subjects: {data.subjects}")
    if stats is None:
        stats = NormStats.from_arrays(train.inputs_2d, train.targets_3d)
    stats = NormStats.coerce(stats)
    if stats.num_joints != H36M17.num_joints or stats.drop_root_2d:
        raise ValueError(f"stats: expected statistics of all {H36M17.num_joints} H36M joints with the 2D root "
                         f"kept (Martinez layout), got {stats.num_joints} joints, drop_root_2d={stats.drop_root_2d}")
    f32 = np.float32

    def x_of(arr):
        return stats.normalize_2d(arr.inputs_2d)[:, list(joints)].astype(f32)

    extra = {}
    if val is not None:
        extra = dict(x_val=x_of(val), y_val=stats.normalize_3d(val.targets_3d).astype(f32),
                     y_val_mm=val.targets_3d.astype(f32), actions_val=val.actions, subjects_val=val.subjects)
    return LiftingData(
        x_train=x_of(train),
        y_train=stats.normalize_3d(train.targets_3d).astype(f32),
        actions_train=train.actions,
        x_test=x_of(test),
        y_test=stats.normalize_3d(test.targets_3d).astype(f32),
        y_test_mm=test.targets_3d.astype(f32),
        actions_test=test.actions,
        subjects_test=test.subjects,
        x_test_px=test.inputs_2d.astype(f32),
        stats=stats,
        input_joints=joints,
        **extra,
    )
