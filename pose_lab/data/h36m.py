"""Human3.6M in the common preprocessed layout: loader, protocol splits, normalisation.

Files (the VideoPose3D layout, written by its ``prepare_data_h36m.py`` from the
licensed release, or by :func:`pose_lab.data.synthetic.generate_h36m`):

``data_3d_h36m.npz``
    ``positions_3d``: dict ``subject -> dict action -> (T, 32, 3)`` world
    coordinates in **metres** (``(T, 17, 3)`` is accepted too).
``data_2d_h36m_*.npz`` (optional)
    ``positions_2d``: dict ``subject -> dict action -> list of (T, 17, 2)``
    pixels, one per camera; ``metadata`` with ``layout_name``, ``num_joints``,
    ``keypoints_symmetry``. Detections in the COCO layout
    (``layout_name == "coco"``) are converted with
    :func:`pose_lab.skeletons.coco_to_h36m`. When the 2D file is omitted the
    ground-truth 2D is computed by projecting the 3D joints through the
    cameras with the Human3.6M distortion model.

Reading runs no code from the files: each must be a zip (checked by its first
bytes before anything is parsed), numeric arrays are read with
``allow_pickle=False`` and the pickled dicts of the layout with an unpickler
that builds only dicts, lists, tuples, strings, numbers and NumPy arrays.
When both files carry the ``generation`` id of the kit's writer they must
agree (2D and 3D from the same run).

:func:`load_h36m` returns an :class:`H36MData` holding, for every
subject/action, the 17 H36M joints in **millimetres** (world frame, and per
camera in the camera frame, computed on access) and the 2D joints in pixels
per camera, plus the cameras.

Protocols (seed 004, Martinez et al. 2017, Pavllo et al. 2019): train on
S1, S5, S6, S7, S8 and test on S9, S11, all four cameras, 3D root-centred in
the camera frame; **protocol 1** reports MPJPE, **protocol 2** P-MPJPE (after
a similarity Procrustes alignment of each prediction to its ground truth);
errors are averaged per action, then over actions
(:func:`pose_lab.metrics.mpjpe`, :func:`pose_lab.metrics.p_mpjpe`).

Normalisation: :meth:`H36MData.norm_stats` computes the Martinez et al.
z-scores of the training subjects' poses as a
:class:`pose_lab.data.normalization.NormStats` (the kit's one normalisation
type, re-exported here): the 2D input keeps the root (not root-centred: the
perspective cue stays), the 3D target is root-centred in the camera frame
with the root (always zero) dropped, and every remaining coordinate is
standardised. :func:`pose_lab.data.lifting.prepare_lifting_data` applies it
to the protocol split.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np

from pose_lab.data.normalization import NormStats
from pose_lab.geometry import Camera, h36m_cameras, project_to_2d, world_to_camera
from pose_lab.skeletons import H36M17, H36M17_FROM_H36M32, coco_to_h36m
from pose_lab.validation import check_poses

__all__ = [
    "TRAIN_SUBJECTS",
    "TEST_SUBJECTS",
    "PROTOCOLS",
    "H36MData",
    "LiftingArrays",
    "NormStats",  # re-exported from pose_lab.data.normalization
    "load_h36m",
    "action_class",
]

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
#: Evaluation protocols (same split; they differ in the alignment before the error).
PROTOCOLS = {
    1: "MPJPE (mm) of root-centred camera-frame 3D joints; train S1,S5,S6,S7,S8, test S9,S11, all cameras",
    2: "P-MPJPE (mm): MPJPE after a similarity Procrustes alignment of each predicted pose; same split",
}

_MAX_METRES = 100.0  # coordinates beyond this are almost surely millimetres


def action_class(action: str) -> str:
    """The action class of a sequence name: ``"Walking 1"`` -> ``"Walking"``.

    The real release numbers repeated sequences (``"Directions 1"``) and
    VideoPose3D keeps its renames (``"Photo"``, ``"WalkDog"``); the class is
    the name without a trailing sequence number.
    """
    return re.sub(r"\s+\d+$", "", str(action)).strip()


def _subject_key(s: str):
    m = re.fullmatch(r"S(\d+)", str(s))
    return (0, int(m.group(1)), "") if m else (1, 0, str(s))


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an .npz is a zip (with members / empty)


def _safe_globals() -> dict:
    """The only globals a dataset pickle may name: how NumPy pickles arrays, dtypes and scalars.

    Both module paths are listed: ``numpy.core`` (files written with NumPy 1,
    such as VideoPose3D's) and ``numpy._core`` (NumPy 2). Plain dicts, lists,
    tuples, strings and numbers need no global at all.
    """
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float64(0).__reduce__()[0]
    out = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = reconstruct
        out[(mod, "scalar")] = scalar
    out.update({("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                ("collections", "OrderedDict"): dict})
    return out


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, tuples, str, numbers and NumPy arrays/dtypes/scalars; nothing else.

    Any other global (``os.system``, ``builtins.eval``, a class of some
    package...) raises :class:`pickle.UnpicklingError` before it is called.
    """

    _allowed = None

    def find_class(self, module, name):
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _safe_globals()
        try:
            return _RestrictedUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: dataset files may only hold dicts, lists, strings, "
                "numbers and NumPy arrays"
            ) from None


class _SafeNpz:
    """An ``.npz`` read without running code: ``.files`` and ``[key]`` like ``np.load``'s NpzFile.

    Numeric arrays are read with ``allow_pickle=False``; object arrays (the
    VideoPose3D layout pickles its dicts) through :class:`_RestrictedUnpickler`.
    """

    def __init__(self, path: Path, what: str):
        self.path, self.what = path, what
        with zipfile.ZipFile(path) as zf:
            self._members = {n[:-4] if n.endswith(".npy") else n: n for n in zf.namelist()}
        self.files = list(self._members)

    def __contains__(self, key):
        return key in self._members

    def __getitem__(self, key):
        if key not in self._members:
            raise KeyError(f"{self.path}: no array {key!r}; the file holds {self.files}")
        with zipfile.ZipFile(self.path) as zf, zf.open(self._members[key]) as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                shape, fortran, dtype = np.lib.format._read_array_header(fp, version)  # noqa: SLF001 (v3.0)
            if not dtype.hasobject:
                fp.seek(0)
                return np.lib.format.read_array(fp, allow_pickle=False)
            try:
                value = _RestrictedUnpickler(fp).load()
            except pickle.UnpicklingError as exc:
                raise ValueError(f"{self.path}: array {key!r} of the {self.what} file: {exc}") from None
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{self.path}: array {key!r} holds a pickled {type(value).__name__}, not an array")
        return value


def _load_npz(path, what: str):
    """Open an ``.npz`` after checking it is a zip; object arrays are unpickled with a whitelist.

    A pickle renamed ``.npz`` (which ``np.load(allow_pickle=True)`` would run)
    is refused by its first bytes; an object array naming any global beyond
    NumPy's array/dtype/scalar constructors is refused when read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head.startswith(_ZIP_MAGIC):
        raise ValueError(
            f"{path}: not an .npz file (a zip archive starts with b'PK\\x03\\x04', this one with {head!r}); "
            f"expected the {what} file written by np.savez / np.savez_compressed"
        )
    try:
        return _SafeNpz(path, what)
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt zip
        raise ValueError(f"{path}: cannot read {what} file as .npz ({type(exc).__name__}: {exc})") from None


def _get_dict(npz, key: str, path, expected: str) -> dict:
    if key not in npz.files:
        raise ValueError(
            f"{path}: missing key {key!r} (found keys {list(npz.files)}); expected {expected}"
        )
    try:
        value = npz[key]
        value = value.item() if isinstance(value, np.ndarray) and value.dtype == object and value.shape == () else value
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: cannot read key {key!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: key {key!r} must hold a dict {expected}, got {type(value).__name__}")
    return value


def _generation(npz, path):
    """The ``generation`` id the kit's writer stores in each file of one run (None if absent)."""
    if "generation" not in npz.files:
        return None
    value = npz["generation"]
    if value.shape != () or value.dtype.kind != "U":
        raise ValueError(f"{path}: 'generation' must be one string, got dtype {value.dtype} shape {value.shape}")
    return str(value)


def _synthetic_rig(path_3d, generation):
    """The camera rig a synthetic writer recorded next to ``path_3d`` (None: the published cameras).

    Only a ``synthetic_h36m.json`` of the same ``generation`` as the 3D file
    counts, and only when it holds a ``"rig"`` (``cameras="varied"``).
    """
    info_path = Path(path_3d).parent / "synthetic_h36m.json"
    if generation is None or not info_path.is_file():
        return None
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{info_path}: unreadable JSON ({err})") from None
    if not isinstance(info, dict) or info.get("generation") != generation or not info.get("rig"):
        return None
    rig = info["rig"]
    try:
        return {str(s): [Camera.from_dict(d) for d in cams] for s, cams in rig.items()}
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{info_path}: field 'rig' must map subject -> list of camera dicts "
                         f"(Camera.to_dict): {err}") from None


def _to17(arr, path, subject, action):
    """A ``(T, 32 | 17, 3)`` array of the 3D file, checked (shape, finite), as the 17 H36M joints."""
    a = check_poses(arr, f"{path}: {subject}/{action}", dims=3, num_joints=(17, 32), batched=True, dtype=None)
    return a[:, list(H36M17_FROM_H36M32)] if a.shape[1] == 32 else a


class LiftingArrays(NamedTuple):
    """Flat arrays for 2D -> 3D lifting (one row per frame and camera).

    Attributes:
        inputs_2d: ``(N, 17, 2)`` float32 pixels (not root-centred).
        targets_3d: ``(N, 17, 3)`` float32 camera-frame mm, root-centred (root row = 0).
        actions: ``(N,)`` action classes (``"Walking"``), str.
        subjects: ``(N,)`` subject names, str.
    """

    inputs_2d: np.ndarray
    targets_3d: np.ndarray
    actions: np.ndarray
    subjects: np.ndarray


class _CameraFrames(Mapping):
    """``data.positions_cam[subject][action]`` -> list of ``(T, 17, 3)`` (computed on access)."""

    def __init__(self, data, subject=None):
        self._data, self._subject = data, subject

    def __getitem__(self, key):
        if self._subject is None:
            if key not in self._data.positions_world:
                raise KeyError(key)
            return _CameraFrames(self._data, key)
        world = self._data.positions_world[self._subject][key]
        return [world_to_camera(world, cam).astype(np.float32) for cam in self._data.cameras[self._subject]]

    def __iter__(self):
        src = self._data.positions_world if self._subject is None else self._data.positions_world[self._subject]
        return iter(src)

    def __len__(self):
        src = self._data.positions_world if self._subject is None else self._data.positions_world[self._subject]
        return len(src)


@dataclass
class H36MData:
    """A loaded Human3.6M-format dataset (17 joints, millimetres, pixels).

    Attributes:
        positions_world: ``subject -> action -> (T, 17, 3)`` float32, world mm.
        positions_2d: ``subject -> action -> list of (T, 17, 2)`` float32 px, per camera.
        cameras: ``subject -> list of`` :class:`~pose_lab.geometry.Camera`.
        path_3d, path_2d: the files read (``path_2d`` None when 2D was projected).
        metadata: the 2D file's metadata (or the H36M defaults).
        fps: 50.

    ``positions_cam[subject][action]`` gives the per-camera camera-frame
    joints ``(T, 17, 3)`` mm (computed on access, not stored).
    """

    positions_world: dict
    positions_2d: dict
    cameras: dict
    path_3d: Path
    path_2d: Path | None
    metadata: dict
    fps: int = 50

    train_subjects = TRAIN_SUBJECTS
    test_subjects = TEST_SUBJECTS
    skeleton = H36M17

    @property
    def subjects(self) -> list[str]:
        """Subject names, by number (S1, S5, ..., S11)."""
        return sorted(self.positions_world, key=_subject_key)

    @property
    def actions(self) -> list[str]:
        """Sorted action classes present (``"Walking"``, not ``"Walking 1"``)."""
        return sorted({action_class(a) for s in self.positions_world.values() for a in s})

    def sequences(self, subjects=None):
        """``[(subject, action_name), ...]`` for the given subjects (default all)."""
        subs = self._subjects(subjects)
        return [(s, a) for s in subs for a in sorted(self.positions_world[s])]

    @property
    def positions_cam(self):
        return _CameraFrames(self)

    def split(self, name: str) -> list[str]:
        """``"train"`` / ``"test"`` subjects of the standard protocols that are present here."""
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {name!r}")
        want = TRAIN_SUBJECTS if name == "train" else TEST_SUBJECTS
        return [s for s in want if s in self.positions_world]

    def _subjects(self, subjects):
        if subjects is None:
            return self.subjects
        if isinstance(subjects, str):
            subjects = self.split(subjects) if subjects in ("train", "test") else [subjects]
        missing = [s for s in subjects if s not in self.positions_world]
        if missing:
            raise ValueError(f"subjects {missing} not in the data; available: {self.subjects}")
        return list(subjects)

    def lifting_arrays(self, subjects="train", actions=None, cameras=None, stride: int = 1) -> LiftingArrays:
        """Pairs (2D pixels, root-centred camera-frame 3D mm) for lifting.

        Args:
            subjects: list of names, ``"train"``, ``"test"`` or None (all).
            actions: action classes (``"Walking"``) to keep; None keeps all.
            cameras: camera indices (0-3) to use; None uses all.
            stride: keep every ``stride``-th frame.

        Returns:
            :class:`LiftingArrays` ``(inputs_2d, targets_3d, actions, subjects)``.
        """
        if not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"stride must be a positive int, got {stride!r}")
        keep = None if actions is None else {action_class(a) for a in ([actions] if isinstance(actions, str) else actions)}
        if keep is not None and not keep & set(self.actions):
            raise ValueError(f"actions {sorted(keep)} not in the data; available: {self.actions}")
        xs, ys, acts, subs = [], [], [], []
        for s in self._subjects(subjects):
            cams = self.cameras[s]
            idx = range(len(cams)) if cameras is None else list(cameras)
            for i in idx:
                if not 0 <= i < len(cams):
                    raise ValueError(f"camera index {i} out of range for {s} ({len(cams)} cameras)")
            for a in sorted(self.positions_world[s]):
                cls = action_class(a)
                if keep is not None and cls not in keep:
                    continue
                world = self.positions_world[s][a][::stride]
                for i in idx:
                    cam3d = world_to_camera(world, cams[i])
                    ys.append((cam3d - cam3d[:, :1]).astype(np.float32))
                    xs.append(self.positions_2d[s][a][i][::stride])
                    acts.append(np.full(len(world), cls))
                    subs.append(np.full(len(world), s))
        if not xs:
            return LiftingArrays(np.zeros((0, 17, 2), np.float32), np.zeros((0, 17, 3), np.float32),
                                 np.zeros(0, str), np.zeros(0, str))
        return LiftingArrays(np.concatenate(xs).astype(np.float32), np.concatenate(ys),
                             np.concatenate(acts), np.concatenate(subs))

    def norm_stats(self, subjects="train", stride: int = 1) -> "NormStats":
        """Martinez et al. :class:`~pose_lab.data.normalization.NormStats` of the given (default: training) subjects.

        2D: 17 x 2 kept (not root-centred); 3D: root-centred, root dropped, 16 x 3.
        """
        arr = self.lifting_arrays(subjects, stride=stride)
        return NormStats.from_arrays(arr.inputs_2d, arr.targets_3d)

    def __repr__(self) -> str:
        n = sum(len(v) for s in self.positions_world.values() for v in s.values())
        return (f"H36MData(subjects={self.subjects}, actions={len(self.actions)}, frames={n}, "
                f"path_3d={str(self.path_3d)!r}, path_2d={None if self.path_2d is None else str(self.path_2d)!r})")


def _resolve_cameras(cameras, subjects, path):
    out = {}
    for s in subjects:
        if cameras is None:
            try:
                out[s] = h36m_cameras(s)
            except ValueError:
                raise ValueError(
                    f"{path}: no published Human3.6M cameras for subject {s!r}; pass cameras= "
                    "(a dict subject -> list of pose_lab.geometry.Camera, or one list for all)"
                ) from None
        elif isinstance(cameras, dict):
            if s not in cameras:
                raise ValueError(f"cameras: no entry for subject {s!r}; keys are {sorted(cameras)}")
            out[s] = list(cameras[s])
        else:
            out[s] = list(cameras)
        if not out[s] or not all(isinstance(c, Camera) for c in out[s]):
            raise ValueError(f"cameras for {s!r} must be a non-empty list of pose_lab.geometry.Camera")
    return out


def load_h36m(path_3d, path_2d=None, cameras=None) -> H36MData:
    """Load Human3.6M-format files (real or synthetic) as 17-joint mm / px arrays.

    Args:
        path_3d: ``data_3d_h36m.npz`` (``positions_3d`` in metres).
        path_2d: optional ``data_2d_h36m_*.npz``; None projects the 3D joints
            through the cameras (ground-truth 2D, with distortion).
        cameras: None for the published Human3.6M cameras of each subject (or,
            for a synthetic dataset written with ``cameras="varied"``, the rig
            recorded in the ``synthetic_h36m.json`` of the same generation next
            to ``path_3d``), a dict ``subject -> list of Camera``, or one list
            used for all subjects.

    Returns:
        :class:`H36MData`.

    Raises:
        FileNotFoundError: a file does not exist (the message names it).
        ValueError: unreadable file (not a zip, or pickled objects other than
            dicts, lists, strings, numbers and arrays: nothing in the file is
            run), 2D and 3D files of different generator runs, missing ``positions_3d``/``positions_2d``,
            wrong joint count or shape, NaN/inf (naming subject and action),
            coordinates that look like millimetres, 2D shorter than 3D or with
            a camera count different from the cameras'.

    Example:
        >>> data = load_h36m("data/h36m/data_3d_h36m.npz", "data/h36m/data_2d_h36m_gt.npz")
        >>> x2d, y3d, actions, subjects = data.lifting_arrays("train")
    """
    path_3d = Path(path_3d)
    npz = _load_npz(path_3d, "Human3.6M 3D")
    raw = _get_dict(npz, "positions_3d", path_3d, "subject -> action -> (T, 32, 3) metres")
    if not raw:
        raise ValueError(f"{path_3d}: 'positions_3d' is empty")
    world = {}
    for s, acts in raw.items():
        if not isinstance(acts, dict):
            raise ValueError(f"{path_3d}: positions_3d[{s!r}] must be a dict action -> array, got {type(acts).__name__}")
        world[s] = {}
        for a, arr in acts.items():
            a17 = _to17(arr, path_3d, s, a)
            peak = float(np.abs(a17).max()) if a17.size else 0.0
            if peak > _MAX_METRES:
                raise ValueError(
                    f"{path_3d}: {s}/{a}: coordinates up to {peak:.0f}; positions_3d must be in metres "
                    "(these look like millimetres: divide by 1000)"
                )
            world[s][a] = (a17.astype(np.float64) * 1000.0).astype(np.float32)
    subjects = sorted(world, key=_subject_key)
    if cameras is None:
        cameras = _synthetic_rig(path_3d, _generation(npz, path_3d))
    cams = _resolve_cameras(cameras, subjects, path_3d)

    metadata = {"layout_name": "h36m", "num_joints": 17,
                "keypoints_symmetry": [list(H36M17.left), list(H36M17.right)]}
    pos2d = {}
    if path_2d is None:
        for s in subjects:
            pos2d[s] = {a: [project_to_2d(world_to_camera(w, c), c).astype(np.float32) for c in cams[s]]
                        for a, w in world[s].items()}
    else:
        path_2d = Path(path_2d)
        npz2 = _load_npz(path_2d, "Human3.6M 2D")
        raw2 = _get_dict(npz2, "positions_2d", path_2d, "subject -> action -> list of (T, 17, 2) pixels")
        if "metadata" in npz2.files:
            md = npz2["metadata"]
            md = md.item() if isinstance(md, np.ndarray) and md.shape == () else md
            if isinstance(md, dict):
                metadata = {**metadata, **md}
        gen3, gen2 = _generation(npz, path_3d), _generation(npz2, path_2d)
        if gen3 is not None and gen2 is not None and gen3 != gen2:
            raise ValueError(
                f"{path_2d} (generation {gen2!r}) was not written with {path_3d} (generation {gen3!r}): "
                "the 2D and 3D files come from different runs of the generator (an interrupted "
                "rewrite?); write both again"
            )
        layout = str(metadata.get("layout_name", "h36m")).lower()
        if layout not in ("h36m", "coco"):
            raise ValueError(f"{path_2d}: metadata layout_name {layout!r} not supported; expected 'h36m' or 'coco'")
        for s in subjects:
            if s not in raw2:
                raise ValueError(f"{path_2d}: positions_2d has no subject {s!r} (present in {path_3d.name})")
            pos2d[s] = {}
            for a, w in world[s].items():
                if a not in raw2[s]:
                    raise ValueError(f"{path_2d}: positions_2d[{s!r}] has no action {a!r}")
                views = raw2[s][a]
                if not isinstance(views, (list, tuple)) or len(views) != len(cams[s]):
                    n = len(views) if isinstance(views, (list, tuple)) else type(views).__name__
                    raise ValueError(
                        f"{path_2d}: {s}/{a}: expected a list of {len(cams[s])} arrays (one per camera), got {n}"
                    )
                out = []
                for i, v in enumerate(views):
                    name = f"{path_2d}: {s}/{a} camera {i}"
                    if layout == "coco":  # shape first; NaN is checked on the H36M joints, as they are used
                        v = coco_to_h36m(check_poses(v, name, dims=2, num_joints=17, batched=True, finite=False,
                                                     dtype=None))
                    v = check_poses(v, name, dims=2, num_joints=17, batched=True, dtype=None)
                    if len(v) < len(w):
                        raise ValueError(
                            f"{path_2d}: {s}/{a} camera {i}: {len(v)} frames of 2D for {len(w)} frames of 3D"
                        )
                    out.append(v[: len(w)].astype(np.float32))   # as VideoPose3D: trim extra 2D frames
                pos2d[s][a] = out
    return H36MData(positions_world=world, positions_2d=pos2d, cameras=cams, path_3d=path_3d,
                    path_2d=None if path_2d is None else Path(path_2d), metadata=metadata)
