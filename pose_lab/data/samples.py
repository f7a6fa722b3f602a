"""The small samples committed in ``data/samples/``, and how they are made.

They are written by the synthetic engine in the real file formats, so a
student can open them (or point a loader at them) without running anything::

    data/samples/coco/annotations/person_keypoints_sample.json   official COCO schema
    data/samples/coco/sample/000000000001.jpg ...                 the images it refers to
    data/samples/h36m/data_3d_h36m.npz, data_2d_h36m_gt.npz       VideoPose3D layout

Regenerate them with ``python -m pose_lab.data.samples [--out DIR]``
(deterministic: the same seed gives the same poses; JPEG bytes may differ
between Pillow versions).

Real samples sit beside them, copied unmodified from their sources (licences
and per-image attribution in ``data/samples/real/LICENSE.md``)::

    data/samples/real/coco_val2017_mini/   28 COCO val2017 images + official keypoint JSON
    data/samples/real/cmu_mocap/           CMU clips 131_01-03 (BVH, 120 fps)

:func:`real_samples_dir` finds them in a checkout, or downloads them (sizes and
SHA-256 checked against ``pose_lab/data/real_samples.json``) where the kit was
installed without the repository, e.g. ``pip install git+...`` in Colab.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pose_lab import runtime

#: What the committed sample holds (kept small: a few hundred kB in all).
COCO_IMAGES = 6
H36M_SUBJECTS = ("S1", "S9")
H36M_ACTIONS = ("Walking", "SittingDown")
H36M_FRAMES = 50
SEED = 2024


def samples_dir() -> Path:
    """``data/samples`` under :func:`pose_lab.runtime.data_dir`."""
    return runtime.data_dir() / "samples"


def real_samples_manifest() -> dict:
    """``{"base_url": ..., "files": {relative path: {"size", "sha256"}}}`` of the real samples."""
    import json

    return json.loads((Path(__file__).with_name("real_samples.json")).read_text())


def real_samples_dir(download: bool = True, dest=None, base_url: str | None = None, quiet: bool = True):
    """The folder of real samples (``coco_val2017_mini/``, ``cmu_mocap/``), or ``None``.

    Args:
        download: when no copy is found (:func:`pose_lab.runtime.shared_data_dir`),
            fetch the files listed in ``real_samples.json`` into ``dest``
            (resumable, size and SHA-256 checked). ``False`` only looks.
        dest: download folder; default ``data/samples/real`` under
            :func:`pose_lab.runtime.data_dir`.
        base_url: where the files are served (default: the repository's raw files).
        quiet: no per-file messages.

    Returns:
        The folder, or ``None`` (with a message saying why) when it is absent
        and could not be downloaded: the caller then skips its real-data section.
    """
    found = runtime.shared_data_dir() if dest is None else None
    if found is not None or not download:
        if found is None:
            print("real samples: not found (download=False)")
        return found
    from pose_lab.data.download import download as fetch_file

    manifest = real_samples_manifest()
    root = Path(dest) if dest is not None else runtime.data_dir() / "samples" / "real"
    base = (base_url or manifest["base_url"]).rstrip("/") + "/"
    try:
        for rel, meta in manifest["files"].items():
            fetch_file(base + rel, root / rel, sha256=meta["sha256"], size=meta["size"], quiet=quiet)
    except (OSError, ValueError) as err:  # network (URLError is an OSError), checksum (a ValueError), disk
        print(f"real samples: could not download them from {base} ({type(err).__name__}: {err}); "
              "the real-data sections are skipped")
        return None
    return root.resolve()


def write_samples(out_dir=None) -> dict:
    """Write the COCO and Human3.6M samples to ``out_dir`` (default :func:`samples_dir`).

    Returns:
        paths of the written files: ``{"coco_json", "coco_images", "h36m_3d", "h36m_2d"}``.
    """
    from pose_lab.data.synthetic import generate_h36m
    from pose_lab.data.synthetic import write_coco_dataset

    out = Path(out_dir) if out_dir is not None else samples_dir()
    write_coco_dataset(out / "coco", COCO_IMAGES, split="sample", seed=SEED,
                       image_size=(256, 256), num_people=(1, 2), image_format="jpg")
    h36m = generate_h36m(out / "h36m", subjects=H36M_SUBJECTS, actions=H36M_ACTIONS,
                         frames_per_sequence=H36M_FRAMES, sequences_per_action=1, seed=SEED)
    return {
        "coco_json": out / "coco" / "annotations" / "person_keypoints_sample.json",
        "coco_images": out / "coco" / "sample",
        "h36m_3d": h36m["3d"],
        "h36m_2d": h36m["2d"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_lab.data.samples", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="target folder (default: data/samples)")
    args = parser.parse_args(argv)
    for name, path in write_samples(args.out).items():
        print(f"{name:12s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
