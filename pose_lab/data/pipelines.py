"""Top-down person crops as ``tf.data`` pipelines, with heatmap / coordinate targets.

Each person is cropped by its box like SimpleBaseline (Xiao et al. 2018): the
box is widened or heightened to the input's aspect ratio (never squashed),
enlarged by ``scale_factor`` (1.25), and the region is resampled to
``input_size`` with the same affine map that moves the keypoints; outside the
image the crop is padded with zeros. Targets are Gaussian heatmaps
(:func:`pose_lab.heatmaps.encode_heatmaps_tf`) and/or crop-pixel coordinates,
with per-joint weights, in the structure that
:class:`pose_lab.training.keypoints2d.KeypointTrainer` expects::

    (images, {"heatmaps": (B, h, w, J), "weights": (B, J)})          output="heatmaps"
    (images, {"keypoints": (B, J, 2), "weights": (B, J)})            output="coordinates"
    (images, {"heatmaps", "keypoints", "weights"})                   output="both"

Images are float32 RGB in ``[0, 255]`` (the models rescale internally).

Conventions (shared with :mod:`pose_lab.heatmaps` and the renderer)
------------------------------------------------------------------
* Pixel coordinates have integer values at pixel centres.
* A box is COCO ``[x, y, w, h]``; its centre is ``(x + w/2, y + h/2)``
  (as in SimpleBaseline's ``_box2cs``).
* :func:`crop_transform` returns the ``(2, 3)`` affine ``A`` mapping image
  pixels to crop pixels, ``crop = A @ [x, y, 1]``: the box centre goes to the
  crop centre ``((W - 1)/2, (H - 1)/2)``, the enlarged box's width to ``W``
  pixels. :func:`transform_back` applies the inverse (predictions -> image
  pixels); for heatmap coordinates multiply by the stride first
  (:func:`heatmap_to_image`).

Only :func:`person_crop_dataset` and the dataset helpers import TensorFlow (lazily).
"""

from __future__ import annotations

import numpy as np

from pose_lab.heatmaps import _check_size as _check_hw
from pose_lab.heatmaps import encode_heatmaps_tf
from pose_lab.validation import check_images

__all__ = [
    "crop_transform",
    "transform_points",
    "transform_back",
    "heatmap_to_image",
    "crop_image",
    "crop_images",
    "check_image_file",
    "person_crop_dataset",
    "rendered_crop_dataset",
]

_OUTPUTS = ("heatmaps", "coordinates", "both")


# --------------------------------------------------------------------------
# NumPy geometry
# --------------------------------------------------------------------------
def crop_transform(box, input_size=(256, 192), scale_factor=1.25, rotation=0.0, scale=1.0):
    """Affine map (image pixels -> crop pixels) for a person box.

    Args:
        box: ``(4,)`` or ``(N, 4)`` COCO boxes ``[x, y, w, h]`` in image pixels.
        input_size: crop ``(height, width)``.
        scale_factor: enlargement of the aspect-corrected box (SimpleBaseline: 1.25).
        rotation: optional rotation of the crop content, radians (positive turns
            the content clockwise on screen, y down), about the box centre.
        scale: optional extra zoom (> 1 magnifies the content).

    Returns:
        ``(2, 3)`` or ``(N, 2, 3)`` float64 matrices ``A`` with ``crop = A @ [x, y, 1]``.

    Example:
        >>> A = crop_transform([10, 20, 30, 60], input_size=(64, 48))
        >>> transform_points([[25.0, 50.0]], A)  # box centre -> crop centre
        array([[23.5, 31.5]])
    """
    H, W = _check_hw(input_size, "input_size")
    b = np.asarray(box, dtype=np.float64)
    if b.shape[-1:] != (4,) or b.ndim > 2:
        raise ValueError(f"box must have shape (4,) or (N, 4) = [x, y, w, h], got {b.shape}")
    _check_boxes(b, "box")
    if not (np.isfinite(scale_factor) and np.isfinite(scale)) or scale_factor <= 0 or scale <= 0:
        raise ValueError(f"scale_factor and scale must be finite and > 0, got {scale_factor}, {scale}")
    cx = b[..., 0] + 0.5 * b[..., 2]
    cy = b[..., 1] + 0.5 * b[..., 3]
    bw, bh = b[..., 2], b[..., 3]
    aspect = W / H
    bw, bh = np.where(bw > aspect * bh, bw, bh * aspect), np.where(bw > aspect * bh, bw / aspect, bh)
    s = W / (bw * scale_factor) * scale  # crop pixels per image pixel
    c, si = np.cos(rotation), np.sin(rotation)
    A = np.zeros(b.shape[:-1] + (2, 3))
    A[..., 0, 0] = s * c
    A[..., 0, 1] = -s * si
    A[..., 1, 0] = s * si
    A[..., 1, 1] = s * c
    A[..., 0, 2] = (W - 1) / 2.0 - (A[..., 0, 0] * cx + A[..., 0, 1] * cy)
    A[..., 1, 2] = (H - 1) / 2.0 - (A[..., 1, 0] * cx + A[..., 1, 1] * cy)
    return A


def _check_boxes(boxes, name="boxes"):
    """Reject NaN/inf and ``w, h <= 0`` in COCO boxes ``(..., 4)``, naming the first bad one.

    A zero-size or NaN box would give an infinite or NaN crop scale, and its
    all-NaN crop a NaN loss for the whole batch (0 weight x NaN = NaN).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    bad_finite = ~np.isfinite(b).all(axis=1)
    bad_size = ~bad_finite & ((b[:, 2] <= 0) | (b[:, 3] <= 0))
    for mask, what in ((bad_finite, "NaN or inf"), (bad_size, "a width or height <= 0")):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            where = f"{name}[{i}]" if np.ndim(boxes) > 1 else name
            raise ValueError(
                f"{where} = {b[i].tolist()} has {what} ({int(mask.sum())} such box(es)); expected "
                "[x, y, w, h] in pixels with finite values and w, h > 0"
            )


def _check_transform(transform):
    T = np.asarray(transform, dtype=np.float64)
    if T.shape[-2:] not in ((2, 3), (3, 3)):
        raise ValueError(f"transform must have shape (..., 2, 3) or (..., 3, 3), got {T.shape}")
    return T[..., :2, :]


def transform_points(points, transform):
    """Apply ``A`` (``(..., 2, 3)``) to points ``(..., J, 2|3)`` (a 3rd column is kept)."""
    p = np.asarray(points, dtype=np.float64)
    A = _check_transform(transform)
    if p.shape[-1] not in (2, 3):
        raise ValueError(f"points must have shape (..., J, 2) or (..., J, 3), got {p.shape}")
    xy = np.einsum("...ij,...kj->...ki", A[..., :2], p[..., :2]) + A[..., None, :, 2]
    if p.shape[-1] == 3:
        return np.concatenate([xy, p[..., 2:]], axis=-1)
    return xy


def transform_back(coords, transform):
    """Map crop pixels back to image pixels through the inverse of ``transform``.

    Args:
        coords: ``(..., J, 2)`` or ``(..., J, 3)`` crop-pixel coordinates (a
            third column, e.g. a score or visibility, is kept).
        transform: ``(..., 2, 3)`` from :func:`crop_transform` (image -> crop).

    Returns:
        image-pixel coordinates of the same shape (float64).
    """
    A = _check_transform(transform)
    M = A[..., :2]
    Minv = np.linalg.inv(M)
    tinv = -np.einsum("...ij,...j->...i", Minv, A[..., 2])
    inv = np.concatenate([Minv, tinv[..., None]], axis=-1)
    return transform_points(coords, inv)


def heatmap_to_image(coords_hm, transform, stride=4):
    """Heatmap-pixel predictions ``(..., J, 2|3)`` -> image pixels (``* stride``, then back)."""
    c = np.array(coords_hm, dtype=np.float64, copy=True)
    c[..., :2] *= float(stride)
    return transform_back(c, transform)


def crop_image(image, transform, input_size=(256, 192)):
    """NumPy reference crop: bilinear resampling of ``image`` through ``transform``.

    Args:
        image: ``(H, W, C)`` array.
        transform: ``(2, 3)`` image -> crop map.
        input_size: crop ``(height, width)``.

    Returns:
        ``(h, w, C)`` float32 crop, zeros outside the image.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise ValueError(f"image must have shape (H, W, C) or (H, W), got {img.shape}")
    return crop_images(img[None], np.asarray(transform)[None], input_size)[0]


def crop_images(images, transforms, input_size=(256, 192), image_index=None):
    """Batched NumPy crops: bilinear resampling of many crops in one gather.

    Args:
        images: ``(N, H, W, C)`` array (any dtype; uint8 is not copied).
        transforms: ``(B, 2, 3)`` image -> crop maps (any affine: rotation and
            flips included).
        input_size: crop ``(height, width)``.
        image_index: ``(B,)`` which image each crop is cut from (default
            ``arange(B)``, i.e. one crop per image).

    Returns:
        ``(B, h, w, C)`` float32 crops, zeros outside the images; the same
        values as :func:`crop_image` one by one.
    """
    h, w = _check_hw(input_size, "input_size")
    imgs = np.asarray(images)
    if imgs.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), got {imgs.shape}")
    A = _check_transform(transforms)
    if A.ndim != 3:
        raise ValueError(f"transforms must have shape (B, 2, 3), got {np.shape(transforms)}")
    B = A.shape[0]
    idx = np.arange(B) if image_index is None else np.asarray(image_index, np.int64)
    if idx.shape != (B,) or (B and (idx.min() < 0 or idx.max() >= imgs.shape[0])):
        raise ValueError(f"image_index must have shape ({B},) with values in [0, {imgs.shape[0]}), got {idx!r}")
    N, H, W, C = imgs.shape
    # inverse maps (crop -> image), applied to the crop's pixel grid in float32
    M = A[:, :, :2]
    Minv = np.linalg.inv(M) if B else np.zeros((0, 2, 2))
    tinv = -np.einsum("bij,bj->bi", Minv, A[:, :, 2])
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)
    Mi = Minv.astype(np.float32)
    ti = tinv.astype(np.float32)
    sx = (Mi[:, 0, 0, None, None] * xs[None, None, :] + Mi[:, 0, 1, None, None] * ys[None, :, None]
          + ti[:, 0, None, None]).reshape(B, h * w)
    sy = (Mi[:, 1, 0, None, None] * xs[None, None, :] + Mi[:, 1, 1, None, None] * ys[None, :, None]
          + ti[:, 1, None, None]).reshape(B, h * w)
    x0 = np.floor(sx)
    y0 = np.floor(sy)
    fx = sx - x0
    fy = sy - y0
    # a two-pixel zero border makes every tap a valid index and every tap
    # outside the image zero (a corner clipped to -2 or W reads two border
    # pixels); four uint8 channels let one uint32 gather fetch a pixel
    Wp, Hp = W + 4, H + 4
    x0 = np.clip(x0, -2, W).astype(np.int64) + 2
    y0 = np.clip(y0, -2, H).astype(np.int64) + 2
    lin = (idx * (Hp * Wp))[:, None] + y0 * Wp + x0
    packed = imgs.dtype == np.uint8 and C <= 4
    if packed:
        pad = np.zeros((N, Hp, Wp, 4), np.uint8)
        pad[:, 2:H + 2, 2:W + 2, :C] = imgs
        flat = pad.reshape(-1).view(np.uint32)

        def tap(offset):
            return flat[lin + offset].view(np.uint8).reshape(B, h * w, 4)
    else:
        pad = np.zeros((N, Hp, Wp, C), np.float32)
        pad[:, 2:H + 2, 2:W + 2] = imgs
        flat = pad.reshape(-1, C)

        def tap(offset):
            return np.take(flat, lin + offset, axis=0)
    gx = 1.0 - fx
    top = gx[..., None] * tap(0) + fx[..., None] * tap(1)
    bottom = gx[..., None] * tap(Wp) + fx[..., None] * tap(Wp + 1)
    out = (1.0 - fy)[..., None] * top + fy[..., None] * bottom
    if packed:
        out = out[..., :C]
    return out.reshape(B, h, w, C)


# --------------------------------------------------------------------------
# tf.data
# --------------------------------------------------------------------------
_IMAGE_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"), (b"BM", "BMP"))


def check_image_file(path) -> str:
    """Cheap check that ``path`` is a whole image file, before a decoder that cannot name it fails.

    Reads the first bytes (JPEG, PNG, GIF or BMP signature) and, for a JPEG,
    the last kilobyte (its end-of-image marker ``FF D9``: a truncated
    download lacks it). Returns the format's name.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an empty file, an unknown signature or a truncated JPEG,
            naming the path.
    """
    import os

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"{path}: image file is empty (0 bytes); download or copy it again")
    with open(path, "rb") as fh:
        head = fh.read(16)
        fmt = next((name for magic, name in _IMAGE_MAGIC if head.startswith(magic)), None)
        if fmt is None:
            raise ValueError(f"{path}: not a JPEG, PNG, GIF or BMP image (it starts with {head[:8]!r})")
        if fmt == "JPEG":
            fh.seek(max(0, size - 1024))
            if b"\xff\xd9" not in fh.read():
                raise ValueError(f"{path}: truncated JPEG ({size} bytes, no end-of-image marker); "
                                 "download or copy it again")
    return fmt


def _source_arrays(source, check_files=True):
    """Normalise the accepted sources to a dict of arrays + a mode flag."""
    from pose_lab.data.coco import PersonRecord, records_to_arrays

    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("person_crop_dataset: the record list is empty")
        if not all(isinstance(r, PersonRecord) for r in source):
            raise ValueError("person_crop_dataset: a list source must hold PersonRecord objects "
                             "(from pose_lab.data.coco.load_coco_keypoints)")
        return _source_arrays(records_to_arrays(source), check_files)
    if not isinstance(source, dict):
        raise ValueError(
            "person_crop_dataset: source must be a list of PersonRecord, a dict of arrays with "
            "'image_paths', 'boxes', 'keypoints', or an in-memory dict with 'images', 'keypoints' "
            f"(and optionally 'boxes'), got {type(source).__name__}"
        )
    if "keypoints" not in source:
        raise ValueError(f"person_crop_dataset: source dict needs 'keypoints' (N, 17, 3), got keys {sorted(source)}")
    kp = np.asarray(source["keypoints"], np.float32)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"person_crop_dataset: 'keypoints' must have shape (N, J, 3) = x, y, v, got {kp.shape}")
    if not np.all(np.isfinite(kp)):
        raise ValueError("person_crop_dataset: 'keypoints' contains NaN or inf")
    n = kp.shape[0]
    if n == 0:
        raise ValueError("person_crop_dataset: the source holds no persons ('keypoints' has shape "
                         f"{kp.shape}); an empty dataset would give empty batches")
    out = {"keypoints": kp}
    if "image_paths" in source:
        mode = "files"
        out["image_paths"] = np.asarray(source["image_paths"]).astype(str)
        if out["image_paths"].shape != (n,):
            raise ValueError(f"person_crop_dataset: 'image_paths' must have shape ({n},), got "
                             f"{out['image_paths'].shape}")
    elif "images" in source:
        mode = "memory"
        images = np.asarray(source["images"])
        if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] != n:
            raise ValueError(f"person_crop_dataset: 'images' must have shape ({n}, H, W, 3), got {images.shape}")
        check_images(images, "person_crop_dataset: 'images'")  # numeric, and no NaN/inf in float images
        out["images"] = images
    else:
        raise ValueError("person_crop_dataset: source dict needs 'image_paths' or 'images'")
    if "boxes" in source:
        boxes = np.asarray(source["boxes"], np.float32)
    elif mode == "memory":
        H, W = out["images"].shape[1:3]
        boxes = np.tile(np.array([0, 0, W, H], np.float32), (n, 1))
    else:
        raise ValueError("person_crop_dataset: file sources need 'boxes' (N, 4)")
    if boxes.shape != (n, 4):
        raise ValueError(f"person_crop_dataset: 'boxes' must have shape ({n}, 4), got {boxes.shape}")
    _check_boxes(boxes, "person_crop_dataset: 'boxes'")
    out["boxes"] = boxes
    if mode == "files" and check_files:  # tf.data's decoder would fail without naming the file
        for path in dict.fromkeys(out["image_paths"].tolist()):
            check_image_file(path)
    out["ids"] = np.asarray(source.get("ids", np.arange(n)), np.int64)
    out["image_ids"] = np.asarray(source.get("image_ids", np.arange(n)), np.int64)
    return out, mode


def _tf_crop_transforms(tf, boxes, H, W, scale_factor):
    """TF version of :func:`crop_transform` (no rotation) for boxes (..., 4): (..., 2, 3)."""
    cx = boxes[..., 0] + 0.5 * boxes[..., 2]
    cy = boxes[..., 1] + 0.5 * boxes[..., 3]
    bw = tf.maximum(boxes[..., 2], 1e-3)
    bh = tf.maximum(boxes[..., 3], 1e-3)
    aspect = W / H
    bw2 = tf.where(bw > aspect * bh, bw, bh * aspect)
    s = W / (bw2 * scale_factor)
    tx = (W - 1) / 2.0 - s * cx
    ty = (H - 1) / 2.0 - s * cy
    zero = tf.zeros_like(s)
    return tf.stack([tf.stack([s, zero, tx], -1), tf.stack([zero, s, ty], -1)], -2)


def _tf_warp(tf, images, A, H, W):
    """Resample images (B, h, w, 3) float32 through A (B, 2, 3) (image -> crop) to (B, H, W, 3).

    ``ImageProjectiveTransformV3`` maps each output pixel through the inverse
    transform and samples bilinearly with integer coordinates at pixel
    centres (the kit's convention); outside the image it fills zeros.
    """
    s = A[:, 0, 0]
    zero = tf.zeros_like(s)
    # inverse of a scale + translation (the pipeline's crops have no rotation/shear)
    inv = tf.stack([1.0 / s, zero, -A[:, 0, 2] / s, zero, 1.0 / s, -A[:, 1, 2] / s, zero, zero], -1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=inv, output_shape=tf.constant([H, W], tf.int32),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")


def _apply_augment(augment, image, kp):
    """Call ``augment`` with the (image, keypoints) protocol or, for Keras layers, the dict one."""
    try:
        import keras

        is_layer = isinstance(augment, keras.layers.Layer)
    except Exception:  # noqa: BLE001 - keras not importable: plain callables only
        is_layer = False
    if is_layer:
        out = augment({"images": image, "keypoints": kp})
        return out["images"], out["keypoints"]
    res = augment(image, kp)
    if not (isinstance(res, (tuple, list)) and len(res) == 2):
        raise ValueError("augment must return (image, keypoints)")
    return res[0], res[1]


def person_crop_dataset(source, input_size=(256, 192), heatmap_stride=4, sigma=2.0, augment=None,
                        batch_size=32, shuffle=False, output="heatmaps", *, scale_factor=1.25,
                        crop=True, seed=None, repeat=False, drop_remainder=False,
                        shuffle_buffer=None, with_meta=False, num_parallel_calls=None, check_files=True):
    """``tf.data`` pipeline of person crops with heatmap and/or coordinate targets.

    Args:
        source: a list of :class:`pose_lab.data.coco.PersonRecord` (images read
            from ``image_path``), a dict of arrays ``image_paths``/``boxes``/
            ``keypoints`` (:func:`pose_lab.data.coco.records_to_arrays`), or an
            in-memory dict ``images`` (N, H, W, 3) / ``keypoints`` (N, 17, 3)
            [/ ``boxes`` (N, 4)] such as the output of
            :func:`pose_lab.data.synthetic.render_crops`.
        input_size: crop ``(height, width)``; SimpleBaseline uses (256, 192).
        heatmap_stride: input pixels per heatmap pixel (heatmaps are
            ``input_size / stride``).
        sigma: Gaussian sigma in heatmap pixels.
        augment: optional callable ``(images, keypoints) -> (images, keypoints)``
            applied to the crops (float32 ``[0, 255]``, keypoints ``x, y, v`` in
            crop pixels) before the targets are built. With a ``batch_size`` it
            receives **batches** ``(B, H, W, 3)``, ``(B, J, 3)`` (much faster for
            Keras layers), else single crops ``(H, W, 3)``, ``(J, 3)``. Keras
            layers from :mod:`pose_lab.data.augment` are called with their dict
            protocol (``{"images", "keypoints"}``).
        batch_size: batch size (``None``: unbatched elements).
        shuffle: shuffle the persons (buffer ``shuffle_buffer``, ``seed``).
        output: ``"heatmaps"``, ``"coordinates"`` or ``"both"`` (see module docstring).
        scale_factor: box enlargement (1.25).
        crop: ``False`` keeps in-memory images as they are (they must already be
            ``input_size``; the transform is the identity), e.g. rendered crops.
        seed: shuffle seed (reproducible order).
        repeat: repeat forever (for ``steps_per_epoch`` training).
        drop_remainder: drop the last partial batch.
        shuffle_buffer: shuffle buffer size (default: all persons; the buffer holds
            indices only, so a full shuffle is cheap).
        with_meta: add a third element ``{"transform": (2, 3) image->crop,
            "id", "image_id", "box", "keypoints_image", "index"}`` for
            evaluation (not for ``fit``, which would read it as sample weights).
        num_parallel_calls: parallelism of the maps (default ``tf.data.AUTOTUNE``).
        check_files: read the first bytes (and a JPEG's last kilobyte) of every
            image file up front (:func:`check_image_file`), so an empty,
            foreign or truncated file raises an error naming it here rather than
            an anonymous decoding error inside ``tf.data``.

    Returns:
        a ``tf.data.Dataset``.

    Raises:
        ValueError: an empty source, boxes with NaN/inf or ``w, h <= 0``
            (naming the index), NaN in keypoints or float images, a bad
            image file (naming it), ``batch_size < 1``.

    Target weights: heatmaps: 1 for labelled keypoints (``v > 0``) inside the
    heatmap (see :func:`pose_lab.heatmaps.encode_heatmaps`); coordinates: 1
    for labelled keypoints inside the crop.
    """
    import tensorflow as tf

    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
    H, W = _check_hw(input_size, "input_size")
    if isinstance(heatmap_stride, bool) or not isinstance(heatmap_stride, (int, np.integer)) or heatmap_stride < 1:
        raise ValueError(f"heatmap_stride must be a positive int (input pixels per heatmap pixel), got "
                         f"{heatmap_stride!r}")
    if H % heatmap_stride or W % heatmap_stride:
        raise ValueError(f"input_size {input_size} must be divisible by heatmap_stride {heatmap_stride}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    hm_size = (H // heatmap_stride, W // heatmap_stride)
    arrays, mode = _source_arrays(source, check_files)
    if not crop:
        if mode != "memory":
            raise ValueError("crop=False needs in-memory images (a dict with 'images')")
        if arrays["images"].shape[1:3] != (H, W):
            raise ValueError(f"crop=False: images are {arrays['images'].shape[1:3]}, input_size is {(H, W)}")
    n = arrays["keypoints"].shape[0]
    par = num_parallel_calls or tf.data.AUTOTUNE
    det = True if (seed is not None or not shuffle) else None
    ds = tf.data.Dataset.from_tensor_slices(np.arange(n, dtype=np.int64))
    if shuffle:
        buf = max(n, 1) if shuffle_buffer is None else min(int(shuffle_buffer), max(n, 1))
        ds = ds.shuffle(buf, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    kps = tf.constant(arrays["keypoints"])
    boxes = tf.constant(arrays["boxes"])
    ids = tf.constant(arrays["ids"])
    image_ids = tf.constant(arrays["image_ids"])
    identity = tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], tf.float32)

    def crop_batch(images, box):
        """(B, h, w, 3) float32, (B, 4) -> crops (B, H, W, 3), transforms (B, 2, 3)."""
        if not crop:
            return images, tf.tile(identity[None], [tf.shape(images)[0], 1, 1])
        A = _tf_crop_transforms(tf, box, float(H), float(W), scale_factor)
        return _tf_warp(tf, images, A, H, W), A

    def move_keypoints(kp, A):
        xy = tf.einsum("...jk,...ik->...ji", kp[..., :2], A[..., :2]) + A[..., None, :, 2]
        return tf.concat([xy, kp[..., 2:3]], axis=-1)

    def targets_of(img, ckp):
        """Targets for crops with crop-pixel keypoints (batched or not)."""
        cxy, cv = ckp[..., :2], ckp[..., 2]
        inside = (cxy[..., 0] >= 0) & (cxy[..., 0] <= W - 1) & (cxy[..., 1] >= 0) & (cxy[..., 1] <= H - 1)
        targets = {}
        if output in ("heatmaps", "both"):
            hm, w = encode_heatmaps_tf(cxy, cv, heatmap_size=hm_size, sigma=sigma, stride=heatmap_stride)
            targets["heatmaps"] = hm
            targets["weights"] = w
        if output in ("coordinates", "both"):
            targets["keypoints"] = cxy
            wc = tf.cast((cv > 0) & inside, tf.float32)
            targets["weights" if output == "coordinates" else "coordinate_weights"] = wc
        return targets

    def finish(img, ckp, A, i):
        if augment is not None:
            img, ckp = _apply_augment(augment, img, ckp)
            img = tf.convert_to_tensor(img, tf.float32)
            ckp = tf.convert_to_tensor(ckp, tf.float32)
        targets = targets_of(img, ckp)
        if with_meta:
            meta = {"transform": A, "id": tf.gather(ids, i), "image_id": tf.gather(image_ids, i),
                    "box": tf.gather(boxes, i), "keypoints_image": tf.gather(kps, i), "index": i}
            return img, targets, meta
        return img, targets

    if mode == "memory":
        images_t = tf.constant(arrays["images"])

        def from_indices(i):
            """Batched (or single) indices -> crops, crop keypoints, transforms."""
            single = len(i.shape) == 0
            ib = i[None] if single else i
            img = tf.cast(tf.gather(images_t, ib), tf.float32)
            img, A = crop_batch(img, tf.gather(boxes, ib))
            ckp = move_keypoints(tf.gather(kps, ib), A)
            if single:
                img, ckp, A = img[0], ckp[0], A[0]
            return finish(img, ckp, A, i)

        if batch_size:
            ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
        ds = ds.map(from_indices, num_parallel_calls=par, deterministic=det)
    else:
        paths_t = tf.constant(arrays["image_paths"])

        def load_and_crop(i):
            raw = tf.io.read_file(tf.gather(paths_t, i))
            img = tf.io.decode_image(raw, channels=3, expand_animations=False)
            img = tf.cast(img, tf.float32)[None]
            img, A = crop_batch(img, tf.gather(boxes, i)[None])
            img = tf.ensure_shape(img[0], [H, W, 3])
            return img, move_keypoints(tf.gather(kps, i), A[0]), A[0], i

        ds = ds.map(load_and_crop, num_parallel_calls=par, deterministic=det)
        if batch_size:
            ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
        ds = ds.map(finish, num_parallel_calls=par, deterministic=det)
    return ds.prefetch(tf.data.AUTOTUNE)


def rendered_crop_dataset(n, size=128, seed=0, input_size=None, shuffle_seed=None, **kwargs):
    """Render ``n`` synthetic crops and wrap them with :func:`person_crop_dataset`.

    ``input_size`` defaults to ``(size, size)`` and then the rendered crops are
    used as they are (``crop=False``; the mannequin fills 60-85 % of the crop);
    with another ``input_size`` they are re-cropped by their silhouette boxes.
    ``seed`` drives the renderer, ``shuffle_seed`` the shuffle order. Extra
    keyword arguments go to :func:`person_crop_dataset`.

    Returns:
        ``(dataset, data)``: the dataset and the rendered arrays (for ground
        truth: ``joints_3d``, ``joints_2d``, ``masks``...).
    """
    from pose_lab.data.synthetic import render_crops

    data = render_crops(n, size=size, seed=seed)
    if input_size is None:
        input_size = (size, size)
        kwargs.setdefault("crop", False)
    ds = person_crop_dataset(data, input_size=input_size, seed=shuffle_seed, **kwargs)
    return ds, data
