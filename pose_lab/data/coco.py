"""COCO keypoint annotations (``person_keypoints_*.json``) as person records.

The official COCO 2017 keypoint files hold ``images``, ``annotations`` and
``categories``; each person annotation carries ``keypoints`` (51 numbers:
``x, y, v`` for the 17 :data:`pose_lab.skeletons.COCO17` keypoints, ``v = 0``
not labelled (then ``x = y = 0``), ``v = 1`` labelled but not visible,
``v = 2`` labelled and visible), ``num_keypoints`` (labelled count, may be 0),
``bbox`` ``[x, y, w, h]``, ``area``, ``iscrowd`` and ``segmentation``.

:func:`load_coco_keypoints` reads such a file (the real COCO ones or those
written by :func:`pose_lab.data.synthetic.write_coco_dataset`) into a
list of :class:`PersonRecord`, validating what the training pipeline relies
on and naming the file, the annotation and the field when something is wrong.
Nothing here needs pycocotools or TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["PersonRecord", "load_coco_keypoints", "records_to_arrays", "load_image"]

NUM_KEYPOINTS = 17


@dataclass(frozen=True)
class PersonRecord:
    """One person annotation of a COCO keypoints file.

    Attributes:
        image_id: the image's ``id``.
        file_name: the image's ``file_name``.
        image_path: ``image_dir / file_name`` when ``image_dir`` was given, else None.
        width, height: image size in pixels.
        bbox: ``(4,)`` float32 ``[x, y, w, h]`` in pixels.
        keypoints: ``(17, 3)`` float32 ``x, y, v`` (COCO17 order).
        num_keypoints: labelled keypoints (``v > 0``) as stated in the file.
        area: segmentation area in pixels (as stated in the file).
        iscrowd: 0 or 1.
        id: the annotation ``id``.
    """

    image_id: int
    file_name: str
    image_path: str | None
    width: int
    height: int
    bbox: np.ndarray
    keypoints: np.ndarray
    num_keypoints: int
    area: float
    iscrowd: int
    id: int


def _read_json(annotation_json):
    if isinstance(annotation_json, dict):
        return annotation_json, "<dict>"
    path = Path(annotation_json)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}): {e.reason}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        hint = " (the file looks truncated)" if e.pos >= len(text.rstrip()) else ""
        raise ValueError(
            f"{path}: malformed JSON at line {e.lineno} column {e.colno} (char {e.pos}): "
            f"{e.msg}{hint}"
        ) from None
    return data, str(path)


def _is_id(x) -> bool:
    """An integer as JSON gives it (not a bool, float, string or list)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _require(cond, src, msg):
    if not cond:
        raise ValueError(f"{src}: {msg}")


def _finite_numbers(values, src, ann_id, field):
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{src}: annotation id {ann_id}: field '{field}' must hold numbers, got {values!r:.80}"
        ) from None
    if not np.all(np.isfinite(arr)):
        bad = np.nonzero(~np.isfinite(arr.ravel()))[0]
        raise ValueError(
            f"{src}: annotation id {ann_id}: field '{field}' contains NaN/inf at position(s) "
            f"{bad[:5].tolist()}; expected finite pixel coordinates"
        )
    return arr


def load_coco_keypoints(annotation_json, image_dir=None, skip_crowd=True, min_keypoints=1,
                        missing_images="raise", category_id=None):
    """Read a COCO keypoints file into a list of :class:`PersonRecord`.

    Args:
        annotation_json: path of ``person_keypoints_*.json``, or the loaded dict.
        image_dir: folder holding the images (e.g. ``coco/val2017``). When given,
            each record's ``image_path`` is set and existence is checked
            according to ``missing_images``.
        skip_crowd: drop ``iscrowd = 1`` annotations (crowd regions have no
            keypoints; COCO evaluation ignores them).
        min_keypoints: drop persons with fewer labelled keypoints (``num_keypoints``);
            0 keeps every person, including the many with ``num_keypoints == 0``.
        missing_images: ``"raise"`` (``FileNotFoundError`` naming the file) or
            ``"skip"`` (drop the persons of images that are not on disk).
        category_id: the person category's id; default: the category named
            ``"person"`` (id 1 in COCO), or every annotation if there are no categories.

    Returns:
        list of :class:`PersonRecord`, in file order.

    Raises:
        FileNotFoundError: missing annotation file, or a missing image with
            ``missing_images="raise"``.
        ValueError: malformed/truncated JSON (with the line, column and
            character position), missing top-level fields, an image without
            an integer ``id`` or positive integer ``width``/``height``, a
            ``keypoints`` list that does not have 51 entries, NaN/inf
            coordinates, visibility flags outside {0, 1, 2}, a
            ``num_keypoints`` that differs from the count of ``v > 0``,
            ``iscrowd`` other than 0/1, a bad ``bbox``, or an annotation
            whose ``image_id`` is not among the images. The message names the
            file, the image or annotation id and the field.
    """
    if missing_images not in ("raise", "skip"):
        raise ValueError(f"missing_images must be 'raise' or 'skip', got {missing_images!r}")
    if min_keypoints < 0:
        raise ValueError(f"min_keypoints must be >= 0, got {min_keypoints}")
    data, src = _read_json(annotation_json)
    _require(isinstance(data, dict), src, f"top level must be a JSON object, got {type(data).__name__}")
    for key in ("images", "annotations"):
        _require(key in data, src, f"missing top-level field '{key}' (not a COCO annotation file?)")
        _require(isinstance(data[key], list), src, f"field '{key}' must be a list")
    if category_id is None:
        cats = data.get("categories") or []
        person = [c for c in cats if isinstance(c, dict) and c.get("name") == "person"]
        if cats and not person:
            raise ValueError(f"{src}: no category named 'person' in 'categories'")
        category_id = person[0].get("id", 1) if person else None
        if person and "keypoints" in person[0]:
            nk = len(person[0]["keypoints"])
            _require(nk == NUM_KEYPOINTS, src,
                     f"the person category lists {nk} keypoint names, expected {NUM_KEYPOINTS}")

    images = {}
    for k, im in enumerate(data["images"]):
        _require(isinstance(im, dict) and "id" in im, src, f"images[{k}] has no 'id'")
        _require(_is_id(im["id"]), src, f"images[{k}]: field 'id' must be an integer, got {im['id']!r:.40}")
        for field in ("file_name", "width", "height"):
            _require(field in im, src, f"image id {im['id']}: missing field '{field}'")
        _require(isinstance(im["file_name"], str) and im["file_name"], src,
                 f"image id {im['id']}: field 'file_name' must be a non-empty string, got {im['file_name']!r:.40}")
        for field in ("width", "height"):
            _require(_is_id(im[field]) and im[field] > 0, src,
                     f"image id {im['id']}: field '{field}' must be a positive integer (pixels), got {im[field]!r:.40}")
        _require(im["id"] not in images, src, f"images[{k}]: duplicate image id {im['id']}")
        images[im["id"]] = im

    records = []
    exists_cache = {}
    for k, ann in enumerate(data["annotations"]):
        _require(isinstance(ann, dict), src, f"annotations[{k}] is not an object")
        ann_id = ann.get("id", f"#{k}")
        if "id" in ann:
            _require(_is_id(ann_id), src, f"annotations[{k}]: field 'id' must be an integer, got {ann_id!r:.40}")
        if category_id is not None and ann.get("category_id", category_id) != category_id:
            continue
        iscrowd = ann.get("iscrowd", 0)
        _require(iscrowd in (0, 1) and not isinstance(iscrowd, (float, str)), src,
                 f"annotation id {ann_id}: field 'iscrowd' must be 0 or 1, got {iscrowd!r:.40}")
        iscrowd = int(iscrowd)
        if skip_crowd and iscrowd:
            continue
        if "keypoints" not in ann:
            raise ValueError(f"{src}: annotation id {ann_id}: missing field 'keypoints'")
        kp_list = ann["keypoints"]
        if not isinstance(kp_list, list) or len(kp_list) != 3 * NUM_KEYPOINTS:
            n = len(kp_list) if isinstance(kp_list, list) else type(kp_list).__name__
            raise ValueError(
                f"{src}: annotation id {ann_id}: field 'keypoints' has {n} entries, expected "
                f"{3 * NUM_KEYPOINTS} (17 keypoints x (x, y, v))"
            )
        kp = _finite_numbers(kp_list, src, ann_id, "keypoints").reshape(NUM_KEYPOINTS, 3)
        v = kp[:, 2]
        if not np.all(np.isin(v, (0, 1, 2))):
            raise ValueError(
                f"{src}: annotation id {ann_id}: field 'keypoints' has visibility flags "
                f"{sorted(set(v.tolist()) - {0.0, 1.0, 2.0})}; expected 0, 1 or 2"
            )
        labelled = int((v > 0).sum())
        num = ann.get("num_keypoints", labelled)
        _require(_is_id(num) and num == labelled, src,
                 f"annotation id {ann_id}: field 'num_keypoints' is {num!r:.40} but {labelled} keypoints have "
                 "v > 0; expected the count of labelled keypoints")
        if num < min_keypoints:
            continue
        if "bbox" not in ann:
            raise ValueError(f"{src}: annotation id {ann_id}: missing field 'bbox'")
        bbox = _finite_numbers(ann["bbox"], src, ann_id, "bbox")
        if bbox.shape != (4,) or bbox[2] < 0 or bbox[3] < 0:
            raise ValueError(
                f"{src}: annotation id {ann_id}: field 'bbox' must be [x, y, w, h] with w, h >= 0, "
                f"got {ann['bbox']!r}"
            )
        image_id = ann.get("image_id")
        if not _is_id(image_id) or image_id not in images:
            raise ValueError(
                f"{src}: annotation id {ann_id}: image_id {image_id!r} is not among the 'images'"
            )
        im = images[image_id]
        path = None
        if image_dir is not None:
            path = os.path.join(str(image_dir), im["file_name"])
            if path not in exists_cache:
                exists_cache[path] = os.path.isfile(path)
            if not exists_cache[path]:
                if missing_images == "raise":
                    raise FileNotFoundError(
                        f"image file not found: {path} (image id {image_id}, annotation id {ann_id}, "
                        f"from {src}); pass missing_images='skip' to drop such persons"
                    )
                continue
        area = ann.get("area", float(bbox[2] * bbox[3]))
        if not isinstance(area, (int, float)) or not math.isfinite(area):
            raise ValueError(f"{src}: annotation id {ann_id}: field 'area' must be a finite number")
        records.append(PersonRecord(
            image_id=image_id, file_name=str(im["file_name"]), image_path=path,
            width=int(im["width"]), height=int(im["height"]),
            bbox=bbox.astype(np.float32), keypoints=kp.astype(np.float32),
            num_keypoints=num, area=float(area), iscrowd=iscrowd, id=ann.get("id", k),
        ))
    return records


def records_to_arrays(records):
    """Stack records into arrays for :mod:`pose_lab.data.pipelines`.

    Returns:
        dict with ``image_paths`` (N,) str, ``boxes`` (N, 4) float32,
        ``keypoints`` (N, 17, 3) float32, ``image_ids`` (N,) int64,
        ``ids`` (N,) int64, ``areas`` (N,) float32.
    """
    recs = list(records)
    if any(r.image_path is None for r in recs):
        raise ValueError("records have no image_path: load them with image_dir=...")
    return {
        "image_paths": np.array([r.image_path for r in recs], dtype=str),
        "boxes": np.stack([r.bbox for r in recs]).astype(np.float32) if recs else np.zeros((0, 4), np.float32),
        "keypoints": (np.stack([r.keypoints for r in recs]).astype(np.float32) if recs
                      else np.zeros((0, 17, 3), np.float32)),
        "image_ids": np.array([r.image_id for r in recs], dtype=np.int64),
        "ids": np.array([r.id for r in recs], dtype=np.int64),
        "areas": np.array([r.area for r in recs], dtype=np.float32),
    }


def load_image(record_or_path):
    """Read an image as an (H, W, 3) uint8 RGB array (PIL; grayscale is expanded)."""
    from PIL import Image

    path = record_or_path.image_path if isinstance(record_or_path, PersonRecord) else record_or_path
    if path is None:
        raise ValueError("record has no image_path: load the records with image_dir=...")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: image file is empty (0 bytes); download or copy it again")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:  # PIL: unidentified, truncated, corrupt
        raise ValueError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None
