"""Synthetic COCO keypoints datasets of rendered mannequin scenes, in the official schema.

:func:`write_coco_dataset` renders scenes with
:func:`pose_lab.data.synthetic.scenes.render_scenes` (a bounded number at a
time) and writes ``annotations/person_keypoints_{split}.json`` and the images;
:func:`mask_to_rle` / :func:`rle_area` handle the uncompressed RLE masks.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from pose_lab import runtime
from pose_lab.skeletons import COCO17

from .body import TRAIN_SUBJECTS
from .scenes import _pose_arrays, _rng, render_scenes

__all__ = ["COCO_CATEGORY", "mask_to_rle", "rle_area", "write_coco_dataset"]

#: The official COCO person category (keypoint names and 1-based skeleton).
COCO_CATEGORY = {
    "supercategory": "person",
    "id": 1,
    "name": "person",
    "keypoints": list(COCO17.joint_names),
    "skeleton": [[a + 1, b + 1] for a, b in COCO17.edges],
}


def mask_to_rle(mask):
    """Binary mask (H, W) -> COCO uncompressed RLE ``{"counts": [...], "size": [H, W]}``.

    Column-major (Fortran) order, starting with a run of zeros, as pycocotools
    expects (``pycocotools.mask.frPyObjects`` accepts it).
    """
    m = np.asarray(mask, bool)
    flat = m.ravel(order="F").astype(np.int8)
    change = np.nonzero(np.diff(flat))[0] + 1
    bounds = np.r_[0, change, flat.size]
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"counts": [int(c) for c in counts], "size": [int(m.shape[0]), int(m.shape[1])]}


def rle_area(rle):
    """Foreground pixel count of an uncompressed RLE."""
    return int(sum(rle["counts"][1::2]))


def _save_image(path, image, fmt):
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(image))
    if fmt == "png":
        im.save(path, format="PNG", optimize=False, compress_level=6)
    else:
        im.save(path, format="JPEG", quality=92)


#: Scenes rendered per call by :func:`write_coco_dataset` (bounds its memory:
#: a whole 12k-image split rendered at once needs over 24 GB).
WRITE_CHUNK = 256


def _scenes_in_chunks(num_images, seed=0, poses=None, chunk=None, **kwargs):
    """Yield :func:`render_scenes` output ``chunk`` images at a time from one Generator.

    Up to ``chunk`` images this is exactly ``render_scenes(num_images, seed=seed, ...)``;
    beyond, the chunks draw from the same Generator in turn and ``poses``
    (cycled over the people) continue where the previous chunk stopped.
    """
    chunk = int(chunk or WRITE_CHUNK)
    rng = _rng(seed)
    joints, head = _pose_arrays(poses) if poses is not None else (None, None)
    offset = 0
    for start in range(0, int(num_images), chunk):
        part = None
        if joints is not None:
            k = offset % joints.shape[0]
            part = np.roll(joints, -k, axis=0)
            if head is not None:
                from types import SimpleNamespace

                part = SimpleNamespace(joints=part, head_rotation=np.roll(head, -k, axis=0))
        scenes = render_scenes(min(chunk, int(num_images) - start), seed=rng, poses=part, **kwargs)
        offset += sum(int(sc["keypoints"].shape[0]) for sc in scenes)
        yield from scenes


def _swap_in(tmp: Path, out_dir: Path, split: str, ann_name: str) -> None:
    """Move ``tmp/{split}/`` and ``tmp/annotations/{ann_name}`` into ``out_dir``, both or neither.

    The previous JSON is moved aside first, then the previous images, then the
    new images and the new JSON come in: at no point does a JSON sit beside
    images it does not describe (a hard kill in between leaves the split
    without its JSON, which loaders report as a missing file). An exception
    part-way puts the previous JSON and images back.
    """
    final_json = out_dir / "annotations" / ann_name
    final_imgs = out_dir / split
    final_json.parent.mkdir(exist_ok=True)
    old = tmp / ".previous"
    old.mkdir()
    moved, placed = [], []
    try:
        for src, name in ((final_json, "json"), (final_imgs, "images")):
            if src.exists():
                os.replace(src, old / name)
                moved.append((src, old / name))
        for src, dst in ((tmp / split, final_imgs), (tmp / "annotations" / ann_name, final_json)):
            os.replace(src, dst)
            placed.append(dst)
    except BaseException:
        for dst in placed:
            if dst.is_dir():
                shutil.rmtree(dst, ignore_errors=True)
            else:
                dst.unlink(missing_ok=True)
        for src, kept in moved:
            os.replace(kept, src)
        raise


def write_coco_dataset(out_dir, num_images, split="train", seed=0, *, image_size=(256, 256),
                       num_people=(1, 3), image_format="jpg", poses=None, subjects=TRAIN_SUBJECTS):
    """Write a synthetic COCO keypoints dataset in the official schema.

    Layout (like the real COCO 2017 folders)::

        out_dir/annotations/person_keypoints_{split}.json
        out_dir/{split}/000000000001.jpg ...

    The JSON holds ``info``, ``licenses``, ``images`` (id, file_name, width,
    height, license), ``annotations`` (id, image_id, category_id=1,
    keypoints as 51 ints ``x, y, v`` with ``0, 0, 0`` for unlabelled points,
    num_keypoints, bbox ``[x, y, w, h]``, area = silhouette pixels,
    segmentation as uncompressed RLE, iscrowd=0) and ``categories`` (the official
    person category: 17 keypoint names and the 1-based skeleton). People whose
    silhouette is empty are left out; people with fewer than ``min_keypoints``
    labelled keypoints are kept with their counts (as in COCO, where
    ``num_keypoints`` may be 0).

    Keypoint coordinates are written with 2 decimals (real COCO has integers);
    pixel centres are at integers, the kit's convention.

    Scenes are rendered :data:`WRITE_CHUNK` images at a time, so memory stays
    bounded for any ``num_images`` (up to one chunk, the output equals that of
    :func:`render_scenes` with the same seed).

    Writing is atomic: everything goes to a temporary folder inside ``out_dir``
    which then replaces ``annotations/person_keypoints_{split}.json`` and
    ``{split}/`` together: an error while rendering, writing or swapping leaves
    the previous JSON and images as they were, never a JSON beside images it
    does not describe.

    Args:
        out_dir: target folder (created).
        num_images: number of images (a positive int).
        split: split name (``"train"``, ``"val"``...).
        seed: int or Generator.
        image_size: ``(height, width)`` of the images.
        num_people: people per image, int or ``(min, max)``.
        image_format: ``"jpg"`` or ``"png"``.
        poses: optional world poses ``(N, 17, 3)`` (or a ``MotionSequence``) for the people.
        subjects: subjects of the random poses (e.g. ``("S9", "S11")`` for a val split).

    Returns:
        Path of the annotation file.
    """
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(f"num_images must be a positive int, got {num_images!r}")
    fmt = str(image_format).lower().lstrip(".")
    if fmt in ("jpeg",):
        fmt = "jpg"
    if fmt not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    split = str(split)
    if not split or "/" in split or split.startswith("."):
        raise ValueError(f"split must be a plain folder name, got {split!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = runtime.scratch_dir(out_dir, split)  # also clears what a hard-killed run left
    try:
        (tmp / split).mkdir()
        (tmp / "annotations").mkdir()
        scenes = _scenes_in_chunks(num_images, image_size=image_size, num_people=num_people, seed=seed,
                                   poses=poses, subjects=subjects)
        images, anns = [], []
        ann_id = 1
        for i, sc in enumerate(scenes):
            image_id = i + 1
            fname = f"{image_id:012d}.{fmt}"
            _save_image(tmp / split / fname, sc["image"], "png" if fmt == "png" else "jpeg")
            H, W = sc["image"].shape[:2]
            images.append({"id": image_id, "file_name": fname, "width": int(W), "height": int(H),
                           "license": 0, "date_captured": ""})
            for p in range(sc["keypoints"].shape[0]):
                mask = sc["masks"][p].astype(bool)
                area = int(mask.sum())
                if area == 0:
                    continue
                kp = sc["keypoints"][p].astype(np.float64)
                v = kp[:, 2].astype(int)
                flat = []
                for (x, y), vv in zip(kp[:, :2], v):
                    if vv > 0:
                        flat += [round(float(x), 2), round(float(y), 2), int(vv)]
                    else:
                        flat += [0, 0, 0]
                box = sc["boxes"][p]
                anns.append({
                    "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                    "keypoints": flat, "num_keypoints": int((v > 0).sum()),
                    "bbox": [float(b) for b in box], "area": float(area),
                    "segmentation": mask_to_rle(mask),
                })
                ann_id += 1
        data = {
            "info": {"description": "pose_lab synthetic mannequins (COCO keypoints format)",
                     "version": "1.0", "year": 2025, "contributor": "pose_lab",
                     "url": "", "date_created": ""},
            "licenses": [{"id": 0, "name": "CC0 1.0 (synthetic, generated by pose_lab)",
                          "url": "https://creativecommons.org/publicdomain/zero/1.0/"}],
            "images": images,
            "annotations": anns,
            "categories": [dict(COCO_CATEGORY)],
        }
        ann_name = f"person_keypoints_{split}.json"
        with open(tmp / "annotations" / ann_name, "w") as fh:
            json.dump(data, fh)
        _swap_in(tmp, out_dir, split, ann_name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "annotations" / ann_name
