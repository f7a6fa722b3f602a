"""Synthetic Human3.6M in the common preprocessed (VideoPose3D) layout.

:func:`generate_h36m` writes the two files that the usual lifting code
(VideoPose3D's ``prepare_data_h36m.py``, and :func:`pose_lab.data.h36m.load_h36m`)
expects, so that the same loader and notebooks run on the real dataset and on
this synthetic stand-in:

``data_3d_h36m.npz``
    ``positions_3d``: dict ``subject -> dict action -> (T, 32, 3) float32``,
    world frame, **metres** (the real file divides the mocap millimetres by
    1000 the same way), joints in the 32-joint Human3.6M order
    (:data:`pose_lab.skeletons.H36M32`).
``data_2d_h36m_gt.npz``
    ``positions_2d``: dict ``subject -> dict action -> list of 4 (T, 17, 2) float32``
    pixels, one array per camera in :data:`pose_lab.geometry.H36M_CAMERA_IDS`
    order, projected with the Human3.6M distortion model
    (:func:`pose_lab.geometry.project_to_2d`) through the subject's cameras
    (:func:`~pose_lab.data.synthetic.cameras.h36m_rig`); and ``metadata``:
    ``{"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [left, right]}``.

Both are ``np.savez_compressed`` archives of pickled dicts (load with
``np.load(path, allow_pickle=True)["positions_3d"].item()``, or
:func:`pose_lab.data.h36m.load_h36m`, which unpickles only dicts, lists,
strings, numbers and arrays), plus a ``generation`` string shared by the files
of one run. The files are written to a temporary folder and moved into place
together (see :func:`generate_h36m`).

The 32-joint layout is filled from the kinematic model: the 17 evaluation
joints are the model's joints; of the 15 others, ``Spine`` (11) duplicates
``Hips`` (0) and ``LeftShoulder``/``RightShoulder`` (16, 24) duplicate the
thorax (``Neck``, 13) as in the real recordings (zero-length bones); toe base
and toe tip (4, 5, 9, 10) lie on the foot, forward of the ankle, following the
ankle angle; thumb base/tip (20, 21, 28, 29) and mid-hand/finger tips
(22, 23, 30, 31) extend the forearm through the wrist angle.

Action names follow Human3.6M: ``"Walking"`` when there is one sequence per
action, ``"Walking 1"``, ``"Walking 2"`` when there are several (the action
class is the part before the space). A small ``synthetic_h36m.json`` next to
the archives records the generator settings and each subject's stature.
"""

from __future__ import annotations

import json
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from pose_lab import runtime
from pose_lab.geometry import project_to_2d, world_to_camera
from pose_lab.skeletons import H36M17

from .body import ALL_SUBJECTS, subject_body
from .cameras import h36m_rig, varied_rig
from .motion import ACTIONS, ALL_ACTIONS, FPS, generate_sequence

__all__ = [
    "ENGINE_VERSION",
    "ensure_h36m",
    "generate_h36m",
    "generate_h36m_arrays",
    "h36m_action_names",
    "save_npz_atomic",
    "FILE_3D",
    "FILE_2D",
]

FILE_3D = "data_3d_h36m.npz"
FILE_2D = "data_2d_h36m_gt.npz"
INFO_FILE = "synthetic_h36m.json"
#: Version of the motion engine, recorded in ``synthetic_h36m.json``; raised
#: whenever the same settings give different motion (2: the 15 Human3.6M
#: actions, per-sequence style, random-pose mix-in, foot pinning in the turned
#: frame), so that :func:`ensure_h36m` regenerates stale caches.
ENGINE_VERSION = 2


def h36m_action_names(action: str, n_sequences: int) -> list[str]:
    """``["Walking"]`` for one sequence, ``["Walking 1", "Walking 2", ...]`` for several."""
    if isinstance(n_sequences, bool) or not isinstance(n_sequences, (int, np.integer)) or n_sequences < 1:
        raise ValueError(f"sequences_per_action must be a positive int, got {n_sequences!r}")
    return [action] if n_sequences == 1 else [f"{action} {k + 1}" for k in range(n_sequences)]


def _check_list(values, allowed, what):
    """A list of names; a bare string is one name (``"Walking"``, never ``["W", "a", ...]``)."""
    values = [values] if isinstance(values, str) else list(values)
    if not values:
        raise ValueError(f"{what}: expected at least one entry")
    bad = [v for v in values if allowed is not None and v not in allowed]
    if bad:
        raise ValueError(f"{what}: unknown {bad}; expected some of {list(allowed)}")
    return values


_CAMERA_OPTIONS = ("h36m", "varied")


def subject_rig(subject, cameras="h36m", seed: int = 0):
    """The cameras a synthetic subject is filmed with: the Human3.6M rig or :func:`varied_rig`."""
    if cameras == "h36m":
        return h36m_rig(subject)
    if cameras == "varied":
        return varied_rig(subject, seed)
    raise ValueError(f"cameras: expected one of {list(_CAMERA_OPTIONS)}, got {cameras!r}")


def generate_h36m_arrays(subjects=ALL_SUBJECTS, actions=ACTIONS, frames_per_sequence: int = 500,
                         sequences_per_action: int = 2, seed: int = 0, fps: int = FPS, cameras: str = "h36m"):
    """Generate the synthetic dataset in memory (the contents of the two files).

    Args:
        subjects: subject names (default S1, S5, S6, S7, S8, S9, S11).
        actions: action classes (default: the 15 Human3.6M ones,
            :data:`~pose_lab.data.synthetic.motion.ACTIONS`; any of
            :data:`~pose_lab.data.synthetic.motion.ALL_ACTIONS`).
        frames_per_sequence: frames ``T`` per sequence (50 fps).
        sequences_per_action: sequences per (subject, action) (Human3.6M has 2).
        seed: global seed; each sequence gets its own stream from
            ``(seed, subject, action, k)``.
        fps: frame rate.
        cameras: ``"h36m"`` (the published rig of each subject, default) or
            ``"varied"`` (:func:`~pose_lab.data.synthetic.cameras.varied_rig`:
            four cameras at varied heights and elevations per subject, seeded
            by ``seed``; :func:`generate_h36m` records them in its JSON and
            :func:`~pose_lab.data.h36m.load_h36m` reads them from there).

    Returns:
        ``(positions_3d, positions_2d, metadata)`` exactly as stored in the files
        (3D in metres, float32).
    """
    subjects = _check_list(subjects, None, "subjects")
    actions = _check_list(actions, ALL_ACTIONS, "actions")
    h36m_action_names("check", sequences_per_action)  # a positive int, or a ValueError naming it
    if not isinstance(frames_per_sequence, (int, np.integer)) or frames_per_sequence < 1:
        raise ValueError(f"frames_per_sequence must be a positive int, got {frames_per_sequence!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if cameras not in _CAMERA_OPTIONS:
        raise ValueError(f"cameras: expected one of {list(_CAMERA_OPTIONS)}, got {cameras!r}")
    positions_3d, positions_2d = {}, {}
    for subject in subjects:
        cams = subject_rig(subject, cameras, seed)
        positions_3d[subject], positions_2d[subject] = {}, {}
        for action in actions:
            for k, name in enumerate(h36m_action_names(action, sequences_per_action)):
                seq = generate_sequence(action, subject, int(frames_per_sequence), seed=(int(seed), k), fps=fps)
                positions_3d[subject][name] = (seq.joints32 / 1000.0).astype(np.float32)
                j17 = seq.joints
                positions_2d[subject][name] = [
                    project_to_2d(world_to_camera(j17, cam), cam).astype(np.float32) for cam in cams
                ]
    metadata = {
        "layout_name": "h36m",
        "num_joints": H36M17.num_joints,
        "keypoints_symmetry": [list(H36M17.left), list(H36M17.right)],
    }
    return positions_3d, positions_2d, metadata


def save_npz_atomic(path, **arrays) -> Path:
    """``np.savez_compressed`` to a temporary file in the same folder, then rename.

    A reader never sees a half-written file, and an interrupted write leaves
    the previous file intact (:func:`pose_lab.runtime.atomic_write`).
    """
    return runtime.atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays), binary=True)


def _swap_in(tmp: Path, out: Path, names) -> None:
    """Move ``tmp/<name>`` over ``out/<name>`` for every name, all or none.

    Each move is an atomic ``os.replace``; the previous files are first
    hard-linked (or copied) aside, so an exception part-way puts every old
    file back. Only a hard kill between two moves can leave a mix, which the
    shared ``generation`` id in the files makes :func:`~pose_lab.data.h36m.load_h36m` report.
    """
    backup = tmp / ".previous"
    backup.mkdir()
    for name in names:
        if (out / name).exists():
            try:
                os.link(out / name, backup / name)
            except OSError:
                shutil.copy2(out / name, backup / name)
    placed = []
    try:
        for name in names:
            os.replace(tmp / name, out / name)
            placed.append(name)
    except BaseException:
        for name in placed:
            if (backup / name).exists():
                os.replace(backup / name, out / name)
            else:
                (out / name).unlink(missing_ok=True)
        raise


def _settings_info(subjects, actions, frames_per_sequence, sequences_per_action, seed, fps, cameras="h36m") -> dict:
    return {
        "cameras": cameras,
        "generator": "pose_lab.data.synthetic.generate_h36m",
        "engine_version": ENGINE_VERSION,
        "seed": int(seed),
        "fps": int(fps),
        "frames_per_sequence": int(frames_per_sequence),
        "sequences_per_action": int(sequences_per_action),
        "subject_list": list(subjects),
        "actions": list(actions),
    }


def ensure_h36m(out_dir, subjects=ALL_SUBJECTS, actions=ACTIONS, frames_per_sequence: int = 500,
                sequences_per_action: int = 2, seed: int = 0, fps: int = FPS, cameras: str = "h36m") -> dict:
    """:func:`generate_h36m` unless ``out_dir`` already holds exactly these settings (a cache).

    The settings (and :data:`ENGINE_VERSION`) are compared with the
    ``synthetic_h36m.json`` written next to the archives; anything missing,
    unreadable or different regenerates the files (atomically, as
    :func:`generate_h36m`). Returns the same ``{"3d", "2d", "info"}`` paths.

    Example:
        >>> paths = ensure_h36m(runtime.data_dir() / "h36m_synthetic" / "500x2")   # seconds the first time
        >>> data = load_h36m(paths["3d"], paths["2d"])
    """
    out = Path(out_dir)
    subjects = _check_list(subjects, None, "subjects")
    actions = _check_list(actions, ALL_ACTIONS, "actions")
    paths = {"3d": out / FILE_3D, "2d": out / FILE_2D, "info": out / INFO_FILE}
    want = _settings_info(subjects, actions, frames_per_sequence, sequences_per_action, seed, fps, cameras)
    try:
        have = json.loads(paths["info"].read_text())
        fresh = all(have.get(k) == v for k, v in want.items()) and paths["3d"].exists() and paths["2d"].exists()
    except (OSError, ValueError):
        fresh = False
    if fresh:
        return paths
    return generate_h36m(out, subjects, actions, frames_per_sequence, sequences_per_action, seed, fps, cameras)


def generate_h36m(out_dir, subjects=ALL_SUBJECTS, actions=ACTIONS, frames_per_sequence: int = 500,
                  sequences_per_action: int = 2, seed: int = 0, fps: int = FPS, cameras: str = "h36m") -> dict:
    """Write a synthetic Human3.6M in the VideoPose3D layout to ``out_dir``.

    The three files (3D, 2D, ``synthetic_h36m.json``) are written to a
    temporary folder inside ``out_dir`` and then moved over the previous ones
    together (an error part-way restores the previous set), so new 3D never
    sits beside old 2D. Each file records the same ``generation`` id (a
    hash of the settings, as a string array in each ``.npz`` and a field of
    the JSON), which
    :func:`~pose_lab.data.h36m.load_h36m` compares.

    Args:
        out_dir: destination folder (created if needed).
        subjects, actions, frames_per_sequence, sequences_per_action, seed, fps, cameras:
            see :func:`generate_h36m_arrays` (a bare string is one subject / action).
            With ``cameras="varied"`` the JSON holds the rig (``"rig": {subject: [camera
            dicts]}``) and :func:`~pose_lab.data.h36m.load_h36m` uses it.

    Returns:
        ``{"3d": Path, "2d": Path, "info": Path}``.

    Example:
        >>> paths = generate_h36m("data/h36m_synthetic", subjects=["S1", "S9"],
        ...                       actions=["Walking", "Waving"], frames_per_sequence=100)
        >>> from pose_lab.data.h36m import load_h36m
        >>> data = load_h36m(paths["3d"], paths["2d"])
    """
    out = Path(out_dir)
    subjects = _check_list(subjects, None, "subjects")
    actions = _check_list(actions, ALL_ACTIONS, "actions")
    positions_3d, positions_2d, metadata = generate_h36m_arrays(
        subjects, actions, frames_per_sequence, sequences_per_action, seed, fps, cameras)
    info = _settings_info(subjects, actions, frames_per_sequence, sequences_per_action, seed, fps, cameras)
    if cameras != "h36m":
        info["rig"] = {s: [c.to_dict() for c in subject_rig(s, cameras, seed)] for s in positions_3d}
    info.update({
        "generation": "",
        "subjects": {s: {"height_mm": round(subject_body(s).height_mm, 1), "sex": subject_body(s).sex}
                     for s in positions_3d},
        "units": {"positions_3d": "metres, world frame, z up", "positions_2d": "pixels"},
    })
    # The same settings give the same arrays, hence the same id: the files stay reproducible.
    generation = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]
    info["generation"] = generation
    out.mkdir(parents=True, exist_ok=True)
    tmp = runtime.scratch_dir(out, "h36m")  # also clears what a hard-killed run left
    try:
        gen = np.array(generation)  # a plain string array: no pickle
        save_npz_atomic(tmp / FILE_3D, positions_3d=positions_3d, generation=gen)
        save_npz_atomic(tmp / FILE_2D, positions_2d=positions_2d, metadata=metadata, generation=gen)
        runtime.atomic_write(tmp / INFO_FILE, lambda f: json.dump(info, f, indent=1))  # the umask's permissions
        _swap_in(tmp, out, (FILE_3D, FILE_2D, INFO_FILE))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"3d": out / FILE_3D, "2d": out / FILE_2D, "info": out / INFO_FILE}
