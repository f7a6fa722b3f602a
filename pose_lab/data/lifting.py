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

Synthetic -> real transfer (notebook 07 section 7, ``benchmarks/bench_synthetic_transfer.py``):
:func:`available_mocap_clips` lists the CMU motion-capture clips found on this
machine and :func:`real_mocap_lifting_arrays` turns them into test pairs seen
through the Human3.6M cameras. Pose-space augmentation of the training poses:
:func:`augment_world_poses` (rotation about the vertical through the pelvis,
symmetric bone-length scaling) and :func:`lifting_pairs_from_world` (the
(2D, 3D) pairs of world poses through a subject's cameras, like the loader).
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pose_lab import geometry, runtime
from pose_lab.data.h36m import TEST_SUBJECTS, action_class
from pose_lab.data.normalization import NormStats
from pose_lab.skeletons import H36M17

__all__ = [
    "MARTINEZ_INPUT_JOINTS",
    "VALIDATION_SUBJECTS",
    "LiftingData",
    "augment_world_poses",
    "available_mocap_clips",
    "input_joint_indices",
    "lifting_pairs_from_world",
    "prepare_lifting_data",
    "real_mocap_lifting_arrays",
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


# --------------------------------------------------------------------------- synthetic -> real transfer


def _mocap_dirs() -> list:
    """Where CMU BVH clips may lie, in the order :func:`available_mocap_clips` searches them."""
    dirs = []
    root = runtime.repo_root()
    if root is not None:  # the samples committed with the kit
        dirs.append(root / "data" / "samples" / "real" / "cmu_mocap")
    shared = runtime.shared_data_dir()  # $POSE_LAB_SHARED_DATA, the committed or downloaded samples, ../shared/data
    if shared is not None:
        dirs.append(shared / "cmu_mocap")
    if root is not None:  # the course's ../shared/data, which shared_data_dir() hides behind the committed copy
        dirs.append(root.parent / "shared" / "data" / "cmu_mocap")
    dirs.append(runtime.data_dir() / "cmu")  # python -m pose_lab.data.download cmu
    return dirs


def available_mocap_clips(search_dirs=None) -> list:
    """The CMU motion-capture clips (``*.bvh``) on this machine, one per file name.

    Searched (recursively) in this order: the samples committed with the kit
    (``data/samples/real/cmu_mocap``), :func:`pose_lab.runtime.shared_data_dir`
    ``/ "cmu_mocap"``, the course's ``../shared/data/cmu_mocap`` and the full
    database downloaded by ``python -m pose_lab.data.download cmu``
    (:func:`pose_lab.runtime.data_dir` ``/ "cmu"``). Clips with the same file
    name are the same clip: the first found is kept.

    Args:
        search_dirs: folders to search instead of the ones above (missing folders are skipped).

    Returns:
        A list of :class:`pathlib.Path`, sorted by file name (empty when none is found).
    """
    dirs = _mocap_dirs() if search_dirs is None else [Path(d) for d in search_dirs]
    found = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*.bvh")):
            if p.is_file():
                found.setdefault(p.name, p.resolve())
    return [found[name] for name in sorted(found)]


def real_mocap_lifting_arrays(paths, subject="S9", stride=1, center=None, bone_lengths=None):
    """Test pairs for a lifter from real motion capture (CMU BVH clips), seen by the Human3.6M cameras.

    Notebook 07's recipe (section 7), unchanged: each clip is loaded with
    :func:`pose_lab.data.bvh.load_bvh` and mapped to the 17 Human3.6M joints at
    50 fps (:meth:`~pose_lab.data.bvh.BVHMotion.to_h36m17`, world mm, z up),
    every ``stride``-th frame is kept, the clip is moved so that the mean of
    its pelvis path (x, y) sits at ``center`` and its lowest ankle is 8 cm
    above the floor, then it is seen through the four cameras of ``subject``
    (:func:`pose_lab.geometry.h36m_cameras`, with distortion).

    Args:
        paths: BVH files (e.g. :func:`available_mocap_clips`).
        subject: whose camera calibration to use (S9 by default, a test subject).
        stride: keep every ``stride``-th frame (after resampling to 50 fps).
        center: the (x, y[, z]) world point (mm) where the pelvis path is
            centred; ``None``: the middle of the synthetic capture area,
            :data:`pose_lab.data.synthetic.CAPTURE_CENTER` (z is ignored).
        bone_lengths: ``None``, or 16 H36M-17 bone lengths (mm, by child
            joint, as :meth:`~pose_lab.skeletons.Skeleton.bone_lengths`):
            retarget the clip onto that body first (bone directions, i.e. the
            motion, kept; :meth:`~pose_lab.skeletons.Skeleton.with_bone_lengths`).
            With a synthetic subject's lengths this separates the motion from
            CMU's joint definitions and proportions.

    Returns:
        ``(x2d, y3d, clips)``: pixels ``(N, 17, 2)``, camera-frame root-centred
        mm ``(N, 17, 3)`` (float64) and the clip name (file stem) of each row
        ``(N,)``; rows are clip-major, then camera-major (all frames of camera
        0, then camera 1, ...), as the Human3.6M loader orders them.

    Raises:
        ValueError: no paths, a bad ``stride`` or ``center``; the BVH loader's
            errors for unreadable files.
    """
    from pose_lab.data.bvh import load_bvh

    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        raise ValueError("real_mocap_lifting_arrays: no BVH paths given (see available_mocap_clips())")
    if not isinstance(stride, numbers.Integral) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride: expected a positive int, got {stride!r}")
    if center is None:
        from pose_lab.data.synthetic import CAPTURE_CENTER

        center = CAPTURE_CENTER
    center = np.asarray(center, dtype=np.float64).ravel()
    if center.shape not in ((2,), (3,)) or not np.all(np.isfinite(center)):
        raise ValueError(f"center: expected a finite (x, y) or (x, y, z) point in mm, got {center.tolist()}")
    cams = geometry.h36m_cameras(subject)
    x2d, y3d, names = [], [], []
    for p in paths:
        world = load_bvh(p).to_h36m17(fps=50)[::stride]  # (T, 17, 3) mm, z up
        if bone_lengths is not None:
            world = H36M17.with_bone_lengths(world, bone_lengths)
        world = world - [*world[:, 0, :2].mean(0), 0.0] + [*center[:2], 0.0]
        world[..., 2] += 80.0 - world[:, [3, 6], 2].min()  # ankles ~8 cm above the floor
        for cam in cams:
            cam3d = geometry.world_to_camera(world, cam)
            x2d.append(geometry.project_to_2d(cam3d, cam))
            y3d.append(cam3d - cam3d[:, :1])
            names.append(np.full(len(world), p.stem))
    return np.concatenate(x2d), np.concatenate(y3d), np.concatenate(names)


def _check_world_poses(world_mm, skeleton, fn) -> np.ndarray:
    """``world_mm`` as a float64 ``(N, J, 3)`` array, or a ValueError naming the expectation."""
    j = skeleton.num_joints
    try:
        arr = np.asarray(world_mm, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: expected world_mm of shape (N, {j}, 3) (world mm, z up), "
                         f"got an object of type {type(world_mm).__name__}") from None
    if arr.ndim != 3 or arr.shape[1:] != (j, 3):
        raise ValueError(f"{fn}: expected world_mm of shape (N, {j}, 3) (world mm, z up), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr).all(axis=(1, 2)))[:, 0]
        raise ValueError(f"{fn}: expected finite world_mm, {len(bad)} poses hold NaN/inf "
                         f"(first: pose {int(bad[0])})")
    return arr


def _bone_groups(skeleton):
    """``(children, group, n_groups)``: each bone as its child joint, and its left/right-symmetric group."""
    if skeleton.parents is None:
        raise ValueError(f"skeleton {skeleton.name!r} has no kinematic tree (parents)")
    flip = skeleton.flip_permutation
    children = [j for j, p in enumerate(skeleton.parents) if p >= 0]
    keys = sorted({min(j, int(flip[j])) for j in children})
    group = np.array([keys.index(min(j, int(flip[j]))) for j in children])
    return children, group, len(keys)


def augment_world_poses(world_mm, rng=None, rotate=True, bone_scale_sd=0.05, bone_scale_range=(0.85, 1.15),
                        skeleton=H36M17, *, return_params=False):
    """Pose-space augmentation of world poses: a turn about the vertical and new bone lengths.

    For each pose independently:

    * **rotation** (``rotate``): an angle uniform in ``[-pi, pi)`` about the
      world z axis (vertical) through the pelvis (the root): the pelvis, every
      height (z) and every distance between joints stay the same;
    * **bone lengths** (``bone_scale_sd > 0``): each bone of the skeleton's
      tree is multiplied by a factor drawn from ``N(1, bone_scale_sd)`` and
      clipped to ``bone_scale_range``; a left bone and its right mirror share
      the factor (symmetric body). The joints are recomputed along the tree
      from the pelvis (which stays in place): ``new[j] = new[parent] +
      factor * (old[j] - old[parent])``, so directions are kept. The feet may
      then end a little above or below the floor (no ground contact is enforced).

    Args:
        world_mm: ``(N, J, 3)`` world poses in mm, z up (``J = skeleton.num_joints``, 17).
        rng: a :class:`numpy.random.Generator`, or a seed for one (``None``: fresh entropy).
            The same seed gives the same output.
        rotate: turn each pose about the vertical.
        bone_scale_sd: standard deviation of the bone factors (0: no scaling, nothing drawn).
        bone_scale_range: ``(low, high)`` clip of the factors, ``0 < low <= 1 <= high``.
        skeleton: a :class:`~pose_lab.skeletons.Skeleton` with parents and left/right lists.
        return_params: also return ``{"angle": (N,) radians, "bone_scale": (N, J - 1)}``,
            the factor of each bone in the order of its child joint (joints 1..J-1 for H36M-17).

    Returns:
        float64 ``(N, J, 3)`` augmented world poses (and the parameters with ``return_params``).

    Raises:
        ValueError: ``world_mm`` not of shape ``(N, J, 3)`` or not finite, a
            negative or non-finite ``bone_scale_sd``, a bad ``bone_scale_range``.
    """
    fn = "augment_world_poses"
    world = _check_world_poses(world_mm, skeleton, fn)
    sd = float(bone_scale_sd)
    if not np.isfinite(sd) or sd < 0:
        raise ValueError(f"{fn}: bone_scale_sd: expected a finite number >= 0, got {bone_scale_sd!r}")
    lo, hi = (float(v) for v in bone_scale_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= 1.0 <= hi):
        raise ValueError(f"{fn}: bone_scale_range: expected (low, high) with 0 < low <= 1 <= high, "
                         f"got {tuple(bone_scale_range)}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = len(world)
    children, group, n_groups = _bone_groups(skeleton)
    root = skeleton.parents.index(-1)
    angle = rng.uniform(-np.pi, np.pi, n) if rotate else np.zeros(n)
    factors = np.ones((n, len(children)))
    if sd > 0:
        factors = np.clip(rng.normal(1.0, sd, (n, n_groups)), lo, hi)[:, group]
    out = world.copy()
    if sd > 0:
        out = skeleton.with_bone_lengths(world, skeleton.bone_lengths(world) * factors)
    if rotate:
        c, s = np.cos(angle), np.sin(angle)
        rel = out[..., :2] - out[:, root : root + 1, :2]
        out[..., 0] = out[:, root : root + 1, 0] + c[:, None] * rel[..., 0] - s[:, None] * rel[..., 1]
        out[..., 1] = out[:, root : root + 1, 1] + s[:, None] * rel[..., 0] + c[:, None] * rel[..., 1]
    if return_params:
        return out, {"angle": angle, "bone_scale": factors}
    return out


def lifting_pairs_from_world(world_mm, cameras, root=0):
    """Lifting pairs of world poses seen by cameras, as :meth:`~pose_lab.data.h36m.H36MData.lifting_arrays` builds them.

    Through each camera: the 3D joints in the camera frame
    (:func:`pose_lab.geometry.world_to_camera`), their pixels with the
    Human3.6M distortion model (:func:`pose_lab.geometry.project_to_2d`), and
    the 3D target root-centred (root row zero).

    Args:
        world_mm: ``(N, 17, 3)`` world poses in mm, z up.
        cameras: a :class:`~pose_lab.geometry.Camera` or a list of them (a
            subject's four, ``data.cameras[subject]``).
        root: the joint the 3D target is centred on (the pelvis).

    Returns:
        ``(x2d, y3d)``: float32 pixels ``(C N, 17, 2)`` and camera-frame
        root-centred mm ``(C N, 17, 3)``, camera-major (all N poses through
        camera 0, then camera 1, ...).

    Raises:
        ValueError: ``world_mm`` not of shape ``(N, 17, 3)`` or not finite, no
            cameras or not :class:`~pose_lab.geometry.Camera` objects, a joint
            behind a camera.
    """
    fn = "lifting_pairs_from_world"
    world = _check_world_poses(world_mm, H36M17, fn)
    cams = [cameras] if isinstance(cameras, geometry.Camera) else list(cameras)
    if not cams or not all(isinstance(c, geometry.Camera) for c in cams):
        raise ValueError(f"{fn}: expected a pose_lab.geometry.Camera or a non-empty list of them")
    if not isinstance(root, numbers.Integral) or not 0 <= int(root) < H36M17.num_joints:
        raise ValueError(f"{fn}: root: expected a joint index in [0, {H36M17.num_joints}), got {root!r}")
    xs, ys = [], []
    for cam in cams:
        cam3d = geometry.world_to_camera(world, cam)
        xs.append(geometry.project_to_2d(cam3d, cam).astype(np.float32))
        ys.append((cam3d - cam3d[:, int(root) : int(root) + 1]).astype(np.float32))
    if not xs or len(world) == 0:
        return np.zeros((0, 17, 2), np.float32), np.zeros((0, 17, 3), np.float32)
    return np.concatenate(xs), np.concatenate(ys)
