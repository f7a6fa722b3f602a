"""The small samples committed in ``data/samples/``, and how they are made.

They are written by the synthetic engine in the real file formats, so a
student can open them (or point a loader at them) without running anything::

    data/samples/coco/annotations/person_keypoints_sample.json   official COCO schema
    data/samples/coco/sample/000000000001.jpg ...                 the images it refers to
    data/samples/h36m/data_3d_h36m.npz, data_2d_h36m_gt.npz       VideoPose3D layout

Regenerate them with ``python -m pose_lab.data.samples [--out DIR]``
(deterministic: the same seed gives the same poses; JPEG bytes may differ
between Pillow versions).
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
