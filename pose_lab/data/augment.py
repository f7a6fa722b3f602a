"""Keypoint-aware data augmentation as Keras layers.

Every layer here takes either an image batch or a dict in the Keras
preprocessing-layer convention::

    {"images": (B, H, W, C) or (H, W, C),
     "keypoints": (B, K, 3) or (K, 3)   # (x, y, v) in pixels, or (..., K, 2)
     "segmentation_masks": (B, H, W, 1) # optional, e.g. the renderer's silhouette
     ...}                               # other keys pass through unchanged

Pixel convention: ``x`` is the column, ``y`` the row, pixel centres at integer
coordinates (pixel ``(row=3, col=5)`` is the point ``x=5, y=3``), images
channels-last. ``v`` is the COCO visibility flag (0 unlabelled, 1 labelled but
occluded, 2 visible); a ``(..., K, 2)`` input is taken as all visible and comes
back as ``(..., K, 3)``.

What comes from Keras core and what is written here (Keras 3.9+ has no
keypoint support in its geometric layers: they transform images, boxes and
masks only):

==================  ======================================================
augmentation        layer
==================  ======================================================
flip + rotation +   :class:`RandomAffineKeypoints` (here): ONE affine
scale + translation applied to the image, the masks and the keypoints, with
                    the left/right joint swap on flips and ``v = 0`` for
                    keypoints leaving the frame
colour jitter       ``keras.layers.RandomColorJitter``
cutout              ``keras.layers.RandomErasing``
Gaussian noise      :class:`RandomGaussianNoise` (here): ``keras.layers.GaussianNoise``
                    is a regulariser, off unless ``training=True`` is passed,
                    with no value range and not safe in ``tf.data`` under JAX
Sobel filter        :class:`RandomSobelEdges` (here): not in Keras
colour drop         :class:`RandomColorDrop`: ``keras.layers.RandomGrayscale``
                    with dict inputs accepted (the core layer fails on them)
blur                ``keras.layers.RandomGaussianBlur``
==================  ======================================================

The appearance layers leave ``"keypoints"`` untouched (Keras core image
layers pass unknown dict keys through), so the whole chain can run on
``{"images", "keypoints"}`` dicts: see :func:`keypoint_augmentation`.

All layers are safe inside ``tf.data.Dataset.map`` whatever the Keras backend
(they use the backend-switching base class of Keras's own image layers), run
inside models under TensorFlow and JAX, are active by default and become the
identity when called with ``training=False`` (e.g. in ``model.predict``), and
serialise with ``get_config``.
"""

from __future__ import annotations

import math

import keras
import numpy as np

try:  # the base class of Keras's own image augmentation layers (Keras >= 3.8)
    from keras.src.layers.preprocessing.image_preprocessing.base_image_preprocessing_layer import (
        BaseImagePreprocessingLayer as _ImageLayer,
    )
except ImportError as err:  # pragma: no cover - depends on the installed Keras
    raise ImportError(
        f"pose_lab.data.augment needs Keras >= 3.9 (found {keras.__version__}): "
        "pip install -U 'keras>=3.9'"
    ) from err

__all__ = [
    "RandomAffineKeypoints",
    "RandomColorDrop",
    "RandomGaussianNoise",
    "RandomSobelEdges",
    "CONTRASTIVE_AUGMENTATIONS",
    "DEFAULT_CONTRASTIVE_AUGMENTATIONS",
    "appearance_augmentation",
    "contrastive_augmentation",
    "keypoint_augmentation",
]

_PACKAGE = "pose_lab"


def _resolve_permutation(flip_permutation):
    """``None`` | skeleton name | index list -> list of ints (or None)."""
    if flip_permutation is None:
        return None
    if isinstance(flip_permutation, str):
        from pose_lab.skeletons import get_skeleton

        return [int(i) for i in get_skeleton(flip_permutation).flip_permutation]
    perm = [int(i) for i in flip_permutation]
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(
            f"flip_permutation must be a permutation of 0..{len(perm) - 1}, got {flip_permutation}"
        )
    return perm


def _check_value_range(value_range):
    if len(value_range) != 2 or not value_range[0] < value_range[1]:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    return tuple(float(v) for v in value_range)


def _check_probability(p, name="probability"):
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {p}")
    return p


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomAffineKeypoints(_ImageLayer):
    """Random flip, rotation, scale and translation of images *and* keypoints.

    One affine map per image, about the image centre ``c = ((W-1)/2, (H-1)/2)``::

        p' = c + t + s * R(theta) @ F @ (p - c)

    ``F`` mirrors x with probability ``flip_probability``, ``theta`` is uniform
    in ``[-max_rotation, max_rotation]`` (radians; positive turns clockwise on
    screen, y pointing down), ``s`` uniform in ``scale_range`` and ``t``
    uniform in ``[-max_translation, max_translation] * (W, H)``. The image is
    resampled through the inverse map (``keras.ops.image.affine_transform``),
    the keypoints go through the forward map, so a keypoint stays on the pixel
    it was drawn on. On a flip the keypoints are also re-indexed with
    ``flip_permutation`` so that "left_wrist" is still the subject's left
    wrist. Keypoints that end outside ``[0, W-1] x [0, H-1]`` get ``v = 0``;
    coordinates of ``v = 0`` keypoints are transformed like the others and
    carry no meaning.

    Args:
        flip_probability: probability of a horizontal flip.
        max_rotation: largest rotation in radians.
        scale_range: ``(min, max)`` zoom factor; ``> 1`` enlarges the content.
        max_translation: largest shift as a fraction of the width/height.
        flip_permutation: joint re-indexing on flips: a skeleton name
            (``"coco17"``, ``"h36m17"``), an index list (``out[i] = in[perm[i]]``),
            or ``None`` for no swap.
        interpolation: ``"bilinear"`` or ``"nearest"`` for the image
            (masks always use ``"nearest"``).
        fill_mode: ``"constant"``, ``"reflect"``, ``"wrap"`` or ``"nearest"``,
            as in ``keras.ops.image.affine_transform``.
        fill_value: value outside the image for ``fill_mode="constant"``.
        seed: integer seed.

    Example:
        >>> aug = RandomAffineKeypoints(max_rotation=0.5, scale_range=(0.8, 1.2))
        >>> out = aug({"images": np.zeros((2, 64, 48, 3)), "keypoints": np.ones((2, 17, 3))})
        >>> tuple(out["keypoints"].shape)
        (2, 17, 3)
    """

    _USE_BASE_FACTOR = False

    def __init__(self, flip_probability=0.5, max_rotation=0.0, scale_range=(1.0, 1.0),
                 max_translation=0.0, flip_permutation="coco17", interpolation="bilinear",
                 fill_mode="constant", fill_value=0.0, seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        if self.data_format != "channels_last":
            raise ValueError("RandomAffineKeypoints supports data_format='channels_last' only")
        self.flip_probability = _check_probability(flip_probability, "flip_probability")
        self.max_rotation = float(max_rotation)
        if not 0.0 <= self.max_rotation <= math.pi:
            raise ValueError(f"max_rotation must be in [0, pi] radians, got {max_rotation}")
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must be (min, max) with 0 < min <= max, got {scale_range}")
        self.scale_range = tuple(float(s) for s in scale_range)
        self.max_translation = float(max_translation)
        if not 0.0 <= self.max_translation <= 1.0:
            raise ValueError(f"max_translation must be a fraction in [0, 1], got {max_translation}")
        self.flip_permutation = flip_permutation
        self._perm = _resolve_permutation(flip_permutation)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
        self.interpolation = interpolation
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    # -- parameters ----------------------------------------------------------
    def get_random_transformation(self, data, training=True, seed=None):
        images = data["images"] if isinstance(data, dict) else data
        b = self.backend
        shape = b.shape(images)
        batch = shape[0] if len(shape) == 4 else 1
        height = b.cast(shape[-3], "float32")
        width = b.cast(shape[-2], "float32")
        if not training:
            flip = b.numpy.zeros((batch,), dtype="bool")
            angle = b.numpy.zeros((batch,))
            scale = b.numpy.ones((batch,))
            shift = b.numpy.zeros((batch, 2))
        else:
            seed = seed or self._get_seed_generator(b._backend)
            u = b.random.uniform((batch, 5), 0.0, 1.0, seed=seed)
            flip = u[:, 0] < self.flip_probability
            angle = (2.0 * u[:, 1] - 1.0) * self.max_rotation
            lo, hi = self.scale_range
            scale = lo + (hi - lo) * u[:, 2]
            size = b.numpy.stack([width, height])
            shift = (2.0 * u[:, 3:5] - 1.0) * self.max_translation * size[None, :]
        sign = b.numpy.where(flip, -1.0, 1.0)
        cos, sin = b.numpy.cos(angle), b.numpy.sin(angle)
        centre = b.numpy.stack([(width - 1.0) / 2.0, (height - 1.0) / 2.0])
        # Forward linear part A = s R diag(sign, 1); offset = c + t - A c.
        a00, a01 = scale * sign * cos, -scale * sin
        a10, a11 = scale * sign * sin, scale * cos
        cx, cy = centre[0], centre[1]
        off_x = cx + shift[:, 0] - (a00 * cx + a01 * cy)
        off_y = cy + shift[:, 1] - (a10 * cx + a11 * cy)
        forward = b.numpy.stack([a00, a01, off_x, a10, a11, off_y], axis=-1)
        # Inverse map (output pixel -> input pixel) for affine_transform:
        # A^-1 = diag(sign, 1) R^T / s, applied to (p' - c - t), plus c.
        i00, i01 = sign * cos / scale, sign * sin / scale
        i10, i11 = -sin / scale, cos / scale
        px, py = cx + shift[:, 0], cy + shift[:, 1]
        inv_x = cx - (i00 * px + i01 * py)
        inv_y = cy - (i10 * px + i11 * py)
        zeros = b.numpy.zeros_like(i00)
        inverse = b.numpy.stack([i00, i01, inv_x, i10, i11, inv_y, zeros, zeros], axis=-1)
        return {"flip": flip, "forward": forward, "inverse": inverse,
                "size": b.numpy.stack([width, height]), "training": training}

    # -- application -----------------------------------------------------------
    def _warp(self, images, transformation, interpolation, fill_value):
        if not transformation["training"]:
            return images
        return self.backend.image.affine_transform(
            images, transformation["inverse"], interpolation=interpolation,
            fill_mode=self.fill_mode, fill_value=fill_value, data_format="channels_last",
        )

    def transform_images(self, images, transformation, training=True):
        images = self.backend.cast(images, self.compute_dtype)
        return self._warp(images, transformation, self.interpolation, self.fill_value)

    def transform_segmentation_masks(self, masks, transformation, training=True):
        dtype = masks.dtype if hasattr(masks, "dtype") else "float32"
        warped = self._warp(self.backend.cast(masks, "float32"), transformation, "nearest", 0.0)
        return self.backend.cast(warped, dtype)

    def transform_keypoints(self, keypoints, transformation, training=True):
        """``(B, K, 2|3)`` -> ``(B, K, 3)`` keypoints through the forward map."""
        b = self.backend
        keypoints = b.cast(keypoints, "float32")
        xy = keypoints[..., :2]
        if keypoints.shape[-1] == 3:
            vis = keypoints[..., 2]
        elif keypoints.shape[-1] == 2:
            vis = b.numpy.full_like(xy[..., 0], 2.0)
        else:
            raise ValueError(
                f"keypoints: expected shape (..., K, 2) or (..., K, 3) with (x, y[, v]), "
                f"got {tuple(keypoints.shape)}"
            )
        m = transformation["forward"]
        x = m[:, None, 0] * xy[..., 0] + m[:, None, 1] * xy[..., 1] + m[:, None, 2]
        y = m[:, None, 3] * xy[..., 0] + m[:, None, 4] * xy[..., 1] + m[:, None, 5]
        out = b.numpy.stack([x, y, vis], axis=-1)
        if self._perm is not None:
            if keypoints.shape[-2] is not None and keypoints.shape[-2] != len(self._perm):
                raise ValueError(
                    f"keypoints: {keypoints.shape[-2]} joints but flip_permutation has "
                    f"{len(self._perm)} entries ({self.flip_permutation!r})"
                )
            swapped = b.numpy.take(out, self._perm, axis=1)
            out = b.numpy.where(transformation["flip"][:, None, None], swapped, out)
        width, height = transformation["size"][0], transformation["size"][1]
        x, y, vis = out[..., 0], out[..., 1], out[..., 2]
        inside = (x >= 0.0) & (x <= width - 1.0) & (y >= 0.0) & (y <= height - 1.0)
        vis = b.numpy.where(inside, vis, b.numpy.zeros_like(vis))
        return b.numpy.stack([x, y, vis], axis=-1)

    def call(self, data, training=True):
        b = self.backend
        if not isinstance(data, dict):
            transformation = self.get_random_transformation(data, training=training)
            images = b.convert_to_tensor(data)
            batched = len(images.shape) == 4
            images = images if batched else b.numpy.expand_dims(images, 0)
            out = self.transform_images(images, transformation)
            return out if batched else b.numpy.squeeze(out, 0)
        if "images" not in data:
            raise ValueError(f"RandomAffineKeypoints: the input dict needs an 'images' key, got {sorted(data)}")
        if "bounding_boxes" in data:
            raise ValueError(
                "RandomAffineKeypoints does not transform 'bounding_boxes'; recompute the box "
                "from the transformed keypoints or mask"
            )
        data = dict(data)
        images = b.convert_to_tensor(data["images"])
        batched = self._is_batched(images)

        def batch(x):
            x = b.convert_to_tensor(x)
            return x if batched else b.numpy.expand_dims(x, 0)

        def unbatch(x):
            return x if batched else b.numpy.squeeze(x, 0)

        images = batch(images)
        transformation = self.get_random_transformation(images, training=training)
        data["images"] = unbatch(self.transform_images(images, transformation))
        if "keypoints" in data:
            data["keypoints"] = unbatch(self.transform_keypoints(batch(data["keypoints"]), transformation))
        if "segmentation_masks" in data:
            data["segmentation_masks"] = unbatch(
                self.transform_segmentation_masks(batch(data["segmentation_masks"]), transformation)
            )
        return data

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            out = dict(input_shape)
            if "keypoints" in out:
                out["keypoints"] = tuple(out["keypoints"][:-1]) + (3,)
            return out
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "flip_probability": self.flip_probability,
            "max_rotation": self.max_rotation,
            "scale_range": self.scale_range,
            "max_translation": self.max_translation,
            "flip_permutation": self.flip_permutation,
            "interpolation": self.interpolation,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "seed": self.seed,
        })
        return config


class _PerImageAppearance(_ImageLayer):
    """Base for appearance layers applied to each image with a probability."""

    _USE_BASE_FACTOR = False

    def __init__(self, probability, value_range, seed, data_format, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        if self.data_format != "channels_last":
            raise ValueError(f"{type(self).__name__} supports data_format='channels_last' only")
        self.probability = _check_probability(probability)
        self.value_range = _check_value_range(value_range)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def _batch_size(self, data):
        images = data["images"] if isinstance(data, dict) else data
        shape = self.backend.shape(images)
        return shape[0] if len(shape) == 4 else 1

    def _apply_mask(self, batch, seed):
        u = self.backend.random.uniform((batch,), 0.0, 1.0, seed=seed)
        return u < self.probability

    def transform_labels(self, labels, transformation, training=True):
        return labels

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        return bounding_boxes

    def transform_segmentation_masks(self, segmentation_masks, transformation, training=True):
        return segmentation_masks

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"probability": self.probability, "value_range": self.value_range, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomGaussianNoise(_PerImageAppearance):
    """Additive Gaussian pixel noise with a random strength per image.

    Each image (with probability ``probability``) gets ``N(0, sigma^2)`` noise,
    ``sigma`` uniform in ``stddev`` times the width of ``value_range``; the
    result is clipped to ``value_range``.

    Args:
        stddev: ``(min, max)`` noise standard deviation as a fraction of the
            value range.
        probability: probability of adding noise to an image.
        value_range: ``(low, high)`` pixel range, e.g. ``(0, 255)`` or ``(0, 1)``.
        seed: integer seed.
    """

    def __init__(self, stddev=(0.0, 0.1), probability=1.0, value_range=(0, 255), seed=None,
                 data_format=None, **kwargs):
        super().__init__(probability, value_range, seed, data_format, **kwargs)
        if len(stddev) != 2 or not 0 <= stddev[0] <= stddev[1]:
            raise ValueError(f"stddev must be (min, max) with 0 <= min <= max, got {stddev}")
        self.stddev = tuple(float(s) for s in stddev)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        b = self.backend
        images = data["images"] if isinstance(data, dict) else data
        seed = seed or self._get_seed_generator(b._backend)
        batch = self._batch_size(data)
        lo, hi = self.stddev
        sigma = lo + (hi - lo) * b.random.uniform((batch,), 0.0, 1.0, seed=seed)
        sigma = b.numpy.where(self._apply_mask(batch, seed), sigma, b.numpy.zeros_like(sigma))
        shape = b.shape(images) if len(b.shape(images)) == 4 else (1,) + tuple(b.shape(images))
        noise = b.random.normal(shape, seed=seed)
        return {"sigma": sigma, "noise": noise}

    def transform_images(self, images, transformation, training=True):
        images = self.backend.cast(images, self.compute_dtype)
        if not training or transformation is None:
            return images
        lo, hi = self.value_range
        sigma = self.backend.cast(transformation["sigma"], self.compute_dtype) * (hi - lo)
        noise = self.backend.cast(transformation["noise"], self.compute_dtype)
        return self.backend.numpy.clip(images + sigma[:, None, None, None] * noise, lo, hi)

    def get_config(self):
        config = super().get_config()
        config["stddev"] = self.stddev
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomSobelEdges(_PerImageAppearance):
    """Replace an image by its Sobel edge magnitude (the seed's "Sobel filter").

    The image is reduced to its channel mean, padded by reflection, filtered
    with the 3x3 Sobel kernels ``Kx = [[-1,0,1],[-2,0,2],[-1,0,1]]`` and
    ``Ky = Kx^T``; the magnitude ``sqrt(gx^2 + gy^2)`` of the image scaled to
    ``[0, 1]`` is divided by 4 (a unit step edge gives 1), clipped to
    ``[0, 1]``, mapped back to ``value_range`` and repeated over the channels.

    Args:
        probability: probability of replacing an image by its edges
            (``1.0``: a deterministic Sobel filter).
        value_range: ``(low, high)`` pixel range.
        seed: integer seed.
    """

    _SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype="float32")

    def __init__(self, probability=0.5, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(probability, value_range, seed, data_format, **kwargs)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        seed = seed or self._get_seed_generator(self.backend._backend)
        return {"apply": self._apply_mask(self._batch_size(data), seed)}

    def transform_images(self, images, transformation, training=True):
        b = self.backend
        images = b.cast(images, self.compute_dtype)
        if not training or transformation is None:
            return images
        lo, hi = self.value_range
        gray = b.numpy.mean((images - lo) / (hi - lo), axis=-1, keepdims=True)
        gray = b.numpy.pad(gray, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
        kernel = np.stack([self._SOBEL_X, self._SOBEL_X.T], axis=-1)[:, :, None, :]
        grads = b.nn.conv(gray, b.cast(b.convert_to_tensor(kernel), gray.dtype), strides=1,
                          padding="valid", data_format="channels_last")
        edges = b.numpy.clip(b.numpy.sqrt(b.numpy.sum(grads * grads, axis=-1, keepdims=True)) / 4.0, 0.0, 1.0)
        edges = lo + (hi - lo) * edges
        edges = b.numpy.broadcast_to(edges, b.shape(images))
        return b.numpy.where(transformation["apply"][:, None, None, None], edges, images)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomColorDrop(keras.layers.RandomGrayscale):
    """``keras.layers.RandomGrayscale`` that also accepts ``{"images": ...}`` dicts.

    Keras's own layer reads ``data.shape`` when drawing its random
    transformation, so it fails on dict inputs (Keras 3.15); everything else
    is the core layer: ``factor`` is the probability of turning an image gray
    (the channels keep their count).
    """

    def get_random_transformation(self, data, training=True, seed=None):
        images = data["images"] if isinstance(data, dict) else data
        return super().get_random_transformation(images, training=training, seed=seed)


def appearance_augmentation(value_range=(0, 255), strength=1.0, seed=None):
    """The seed-000 appearance transforms as one ``keras.layers.Pipeline``.

    Colour jitter, colour drop (grayscale), blur, Gaussian noise, cutout and
    Sobel edges, each applied to an image at random (SimCLR-style defaults,
    scaled by ``strength``; 0 disables them). Keypoints in a dict input pass
    through unchanged.

    Args:
        value_range: ``(low, high)`` pixel range of the images.
        strength: multiplies the jitter amounts and the probabilities.
        seed: integer seed; each layer gets ``seed + i``.

    Returns:
        ``keras.layers.Pipeline``.
    """
    value_range = _check_value_range(value_range)
    s = float(strength)
    if s < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")

    def p(x):
        x = min(1.0, x * s)
        return (x, x)

    def sd(i):
        return None if seed is None else seed + i

    layers = [
        keras.layers.RandomColorJitter(
            value_range=value_range, brightness_factor=min(1.0, 0.4 * s),
            contrast_factor=min(1.0, 0.4 * s),
            saturation_factor=(max(0.0, 0.5 - 0.3 * s), min(1.0, 0.5 + 0.3 * s)),
            hue_factor=(0.0, min(1.0, 0.1 * s)), seed=sd(0)),
        RandomColorDrop(factor=p(0.2)[0], seed=sd(1)),
        keras.layers.RandomGaussianBlur(factor=p(0.3), kernel_size=5, sigma=(0.1, 1.5),
                                        value_range=value_range, seed=sd(2)),
        RandomGaussianNoise(stddev=(0.0, 0.05 * s), probability=p(0.3)[0], value_range=value_range, seed=sd(3)),
        keras.layers.RandomErasing(factor=p(0.3), scale=(0.02, 0.15), fill_value=None,
                                   value_range=value_range, seed=sd(4)),
        RandomSobelEdges(probability=p(0.05)[0], value_range=value_range, seed=sd(5)),
    ]
    return keras.layers.Pipeline(layers, name="appearance_augmentation")


def keypoint_augmentation(value_range=(0, 255), flip_permutation="coco17", max_rotation=math.radians(30),
                          scale_range=(0.75, 1.25), max_translation=0.1, flip_probability=0.5,
                          appearance_strength=1.0, seed=None):
    """Geometric (keypoint-aware) then appearance augmentation, as one Pipeline.

    Use it on ``{"images", "keypoints"}`` dicts, in ``tf.data`` or in a model::

        aug = keypoint_augmentation(value_range=(0, 1))
        ds = ds.map(lambda x: aug(x))   # x = {"images": ..., "keypoints": ...}

    Arguments as in :class:`RandomAffineKeypoints` and
    :func:`appearance_augmentation`; ``appearance_strength=0`` keeps only the
    geometric part.
    """
    geometric = RandomAffineKeypoints(
        flip_probability=flip_probability, max_rotation=max_rotation, scale_range=scale_range,
        max_translation=max_translation, flip_permutation=flip_permutation,
        fill_value=_check_value_range(value_range)[0], seed=seed,
    )
    layers = [geometric]
    if appearance_strength > 0:
        layers += appearance_augmentation(
            value_range, appearance_strength, None if seed is None else seed + 1
        ).layers
    return keras.layers.Pipeline(layers, name="keypoint_augmentation")


#: The seed's augmentation list (seed 000, "future work"), plus the flip, by name.
CONTRASTIVE_AUGMENTATIONS = ("color_jitter", "color_drop", "blur", "noise", "cutout", "sobel",
                             "scale", "translate", "rotate", "flip")

#: What the kit's SimCLR / SimSiam use by default: the appearance transforms and a
#: mild zoom/shift. No flip and no large rotation: the views of a pair must show the
#: same pose, and a mirrored view teaches the encoder that left and right are alike
#: (see the ablation in notebook 04).
DEFAULT_CONTRASTIVE_AUGMENTATIONS = ("color_jitter", "color_drop", "blur", "noise", "cutout", "scale",
                                     "translate")


def contrastive_augmentation(augmentations=DEFAULT_CONTRASTIVE_AUGMENTATIONS, value_range=(0, 255),
                             strength=1.0, seed=None, *, scale_range=(0.8, 1.2), max_translation=0.1,
                             max_rotation=math.radians(30), name="contrastive_augmentation"):
    """The view generator of SimCLR / SimSiam: named transforms from the seed's list, as one Pipeline.

    Args:
        augmentations: names from :data:`CONTRASTIVE_AUGMENTATIONS`, in any order
            (applied geometric first, then appearance, in the order of that list).
            ``()``: the identity (both views equal).
        value_range: ``(low, high)`` pixel range of the images.
        strength: scales the appearance jitter amounts and probabilities
            (:func:`appearance_augmentation`).
        seed: integer seed (each layer gets its own offset).
        scale_range, max_translation, max_rotation: the geometric ranges used
            when ``"scale"``, ``"translate"``, ``"rotate"`` are on.
        name: pipeline name.

    Returns:
        ``keras.layers.Pipeline`` on image batches ``(B, H, W, 3)`` (or
        ``{"images": ...}`` dicts); identity when called with ``training=False``.
        The flip here does NOT swap left/right labels (there are none): it is the
        plain mirror SimCLR uses on ImageNet.
    """
    names = tuple(augmentations)
    unknown = sorted(set(names) - set(CONTRASTIVE_AUGMENTATIONS))
    if unknown:
        raise ValueError(f"augmentations: unknown names {unknown}; expected names from {CONTRASTIVE_AUGMENTATIONS}")
    value_range = _check_value_range(value_range)
    on = set(names)
    layers = []
    if on & {"scale", "translate", "rotate", "flip"}:
        layers.append(RandomAffineKeypoints(
            flip_probability=0.5 if "flip" in on else 0.0,
            max_rotation=max_rotation if "rotate" in on else 0.0,
            scale_range=scale_range if "scale" in on else (1.0, 1.0),
            max_translation=max_translation if "translate" in on else 0.0,
            flip_permutation=None, fill_value=value_range[0], seed=seed,
        ))
    appearance = appearance_augmentation(value_range, strength, None if seed is None else seed + 1).layers
    keep = {"color_jitter": keras.layers.RandomColorJitter, "color_drop": RandomColorDrop,
            "blur": keras.layers.RandomGaussianBlur, "noise": RandomGaussianNoise,
            "cutout": keras.layers.RandomErasing, "sobel": RandomSobelEdges}
    for key in ("color_jitter", "color_drop", "blur", "noise", "cutout", "sobel"):
        if key in on:
            layers.extend(layer for layer in appearance if type(layer) is keep[key])
    return keras.layers.Pipeline(layers or [keras.layers.Identity()], name=name)
