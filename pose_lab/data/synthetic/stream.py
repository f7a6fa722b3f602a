"""An endless stream of freshly rendered person crops with heatmap targets.

:class:`PersonCropStream` is a ``keras.utils.PyDataset``: every batch renders
new multi-person scenes (new poses, bodies, clothes, backgrounds and cameras,
:func:`~pose_lab.data.synthetic.render_scenes`), cuts every person by the
ground-truth box exactly like :func:`pose_lab.data.pipelines.person_crop_dataset`
cuts COCO (SimpleBaseline box, aspect-corrected, x1.25), with keypoint-aware
augmentation folded into the same affine map (zoom, rotation, horizontal flip
with the left/right keypoints swapped), and builds Gaussian heatmap targets::

    stream = PersonCropStream(batch_size=64, steps_per_epoch=200, seed=0)
    model.fit(stream, epochs=10)       # 10 x 200 x 64 persons, none seen twice

Why a ``PyDataset`` and not ``tf.data``: the renderer is NumPy, so a
``tf.data`` source would be a ``py_function`` holding the GIL anyway; a
``PyDataset`` feeds ``fit()`` under TensorFlow, JAX and PyTorch alike, and its
``workers`` render the next batches in threads while the model trains (NumPy
releases the GIL in its array loops). On two cores rendering takes about a
third of the CPU while the recipe network trains (about 300 persons/s on one
thread against 136-160 samples/s of training fed by two worker threads; see
``benchmarks/bench_pipeline.py --stream-only``).

Reproducibility: batch ``i`` of epoch ``e`` is rendered from
``numpy.random.SeedSequence([seed, e, i])``, so the same seed gives the same
stream whatever the number of workers or the order in which ``fit()`` asks
for the batches, and no two batches of a run share a rendered person. The
epoch counter advances in :meth:`on_epoch_end`; after a resumed run set
:attr:`epoch` (or pass ``initial_epoch``) to continue the stream instead of
repeating it.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from pose_lab.data.pipelines import crop_images, crop_transform, transform_points
from pose_lab.heatmaps import encode_heatmaps
from pose_lab.skeletons import COCO17

from .body import TRAIN_SUBJECTS
from .scenes import render_scenes

__all__ = ["PersonCropStream", "augment_transforms"]


def augment_transforms(boxes, rng, input_size=(128, 96), scale_factor=1.25, zoom=(0.75, 1.3),
                       rotation=math.radians(30), rotation_probability=0.5, flip_probability=0.5):
    """Random crop maps for person boxes: zoom, rotation and flip in one affine.

    Args:
        boxes: ``(B, 4)`` COCO boxes.
        rng: ``numpy.random.Generator``.
        input_size: crop ``(height, width)``.
        scale_factor: box enlargement (SimpleBaseline 1.25).
        zoom: range of the extra magnification (log-uniform); ``None`` for 1.
        rotation: largest rotation (radians, uniform in ``[-r, r]``).
        rotation_probability: share of crops that are rotated.
        flip_probability: share of crops mirrored left-right.

    Returns:
        ``(A, flipped)``: ``(B, 2, 3)`` image -> crop maps and a ``(B,)`` bool
        array; flipped crops need their keypoints re-indexed with the
        skeleton's ``flip_permutation`` (:meth:`PersonCropStream.__getitem__`
        does it).
    """
    boxes = np.asarray(boxes, np.float64)
    B = boxes.shape[0]
    H, W = int(input_size[0]), int(input_size[1])
    z = np.ones(B) if zoom is None else np.exp(rng.uniform(np.log(zoom[0]), np.log(zoom[1]), B))
    rot = np.where(rng.random(B) < rotation_probability, rng.uniform(-rotation, rotation, B), 0.0)
    flipped = rng.random(B) < flip_probability
    A = np.stack([crop_transform(b, (H, W), scale_factor, rotation=r, scale=s)
                  for b, r, s in zip(boxes, rot, z)]) if B else np.zeros((0, 2, 3))
    A[flipped, 0, :] *= -1.0
    A[flipped, 0, 2] += W - 1
    return A, flipped


class PersonCropStream(keras.utils.PyDataset):
    """Endless synthetic training data for top-down 2D keypoint models.

    Args:
        batch_size: persons per batch.
        steps_per_epoch: batches per epoch (the stream never ends; this only
            sets how often ``fit()`` reports and checkpoints).
        seed: int; the whole stream follows from it.
        input_size: crop ``(height, width)``.
        heatmap_stride: input pixels per heatmap pixel.
        sigma: heatmap Gaussian sigma (heatmap pixels).
        subjects: body shapes and motion of these subjects (default the
            Human3.6M training subjects S1-S8; validation uses S9 and S11).
        image_size: scene ``(height, width)`` the persons are cut from (the
            synthetic COCO splits use 256x256).
        num_people: people per scene, ``(min, max)``.
        scale_factor: box enlargement.
        augment: ``True`` for the default augmentation
            (:func:`augment_transforms` defaults), ``False`` for none, or a
            dict of :func:`augment_transforms` arguments.
        min_keypoints: skip persons with fewer labelled keypoints (COCO's
            evaluation ignores them too).
        output: ``"heatmaps"`` (``(images, {"heatmaps", "weights"})``),
            ``"both"`` (adds ``"keypoints"`` in crop pixels, for regression heads)
            ``"images"`` (images only, for self-supervised training) or
            ``"pairs"``: ``(B, 2, H, W, 3)`` images, each person cut from two
            renderings of the same scene that share the poses and the camera
            but not the appearance (clothes, skin, build, light, background;
            ``render_scenes(twins=True)``), cut by the same crop map: positive
            pairs for self-supervised pose features (the kit's addition to
            SimCLR / SimSiam, see :mod:`pose_lab.training.contrastive`).
        actions: ``None`` (random poses of the motion engine) or action names
            (``True`` for all): persons are frames of generated sequences of
            these actions and :meth:`batch` returns their ``actions``.
        workers, use_multiprocessing, max_queue_size: ``keras.utils.PyDataset``.

    Each batch is ``(images, targets)``: float32 images ``(B, H, W, 3)`` in
    ``[0, 255]``, heatmaps ``(B, H/s, W/s, 17)`` and per-keypoint weights
    ``(B, 17)`` (0 for unlabelled keypoints and keypoints outside the crop).
    :meth:`batch` also returns the crops' keypoints and maps for inspection.
    """

    def __init__(self, batch_size=64, steps_per_epoch=200, seed=0, *, input_size=(128, 96),
                 heatmap_stride=4, sigma=2.0, subjects=TRAIN_SUBJECTS, image_size=(256, 256),
                 num_people=(1, 4), scale_factor=1.25, augment=True, min_keypoints=1, output="heatmaps",
                 actions=None, workers=1, use_multiprocessing=False, max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        if int(batch_size) < 1 or int(steps_per_epoch) < 1:
            raise ValueError(f"batch_size and steps_per_epoch must be >= 1, got {batch_size}, {steps_per_epoch}")
        if output not in ("heatmaps", "both", "images", "pairs"):
            raise ValueError(f"output must be 'heatmaps', 'both', 'images' or 'pairs', got {output!r}")
        H, W = int(input_size[0]), int(input_size[1])
        if H % heatmap_stride or W % heatmap_stride:
            raise ValueError(f"input_size {input_size} must be a multiple of heatmap_stride {heatmap_stride}")
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch)
        self.seed = int(seed)
        self.input_size = (H, W)
        self.heatmap_stride = int(heatmap_stride)
        self.sigma = float(sigma)
        self.subjects = tuple(subjects)
        self.image_size = tuple(int(v) for v in image_size)
        self.num_people = num_people
        self.scale_factor = float(scale_factor)
        if augment is True:
            augment = {}
        self.augment = None if augment is False or augment is None else dict(augment)
        self.min_keypoints = int(min_keypoints)
        self.output = output
        self.actions = actions if actions in (None, True) else tuple(actions)
        self.epoch = 0
        self._perm = np.asarray(COCO17.flip_permutation)
        self._scenes_per_draw = max(4, math.ceil(self.batch_size / 2.2))

    def __len__(self):
        return self.steps_per_epoch

    def on_epoch_end(self):
        self.epoch += 1

    def _persons(self, rng):
        """Render scenes until ``batch_size`` persons with enough keypoints are collected."""
        images, kps, boxes, index, acts, twins = [], [], [], [], [], []
        need = self.batch_size
        draws = 0
        while need > 0:
            draws += 1
            if draws > 50 and not images:
                raise ValueError(f"PersonCropStream: 50 draws of scenes gave no person with >= {self.min_keypoints} "
                                 f"labelled keypoints (num_people={self.num_people!r}, image_size={self.image_size})")
            scenes = render_scenes(self._scenes_per_draw, image_size=self.image_size,
                                   num_people=self.num_people, seed=rng, subjects=self.subjects,
                                   actions=self.actions, twins=self.output == "pairs")
            for sc in scenes:
                if need <= 0:
                    break
                k = sc["keypoints"]
                ok = ((k[..., 2] > 0).sum(-1) >= self.min_keypoints) & (sc["boxes"][:, 2] >= 1) \
                    & (sc["boxes"][:, 3] >= 1)
                ids = np.flatnonzero(ok)[:need]
                if ids.size == 0:
                    continue
                images.append(sc["image"])
                if "twin_image" in sc:
                    twins.append(sc["twin_image"])
                kps.append(k[ids])
                boxes.append(sc["boxes"][ids])
                index.append(np.full(ids.size, len(images) - 1))
                if self.actions:
                    acts.append(sc["actions"][ids])
                need -= ids.size
        actions = np.concatenate(acts) if acts else None
        twins = np.stack(twins) if twins else None
        return np.stack(images), np.concatenate(kps), np.concatenate(boxes), np.concatenate(index), actions, twins

    def batch(self, index, epoch=None, *, heatmaps=True):
        """Batch ``index`` of ``epoch`` (default the current one) with everything behind it.

        ``heatmaps=False`` skips encoding the heatmaps and weights (the images and
        keypoints are the same; ``output="images"`` needs no targets).

        Returns:
            dict with ``images`` (B, H, W, 3) float32, ``keypoints`` (B, 17, 3)
            crop pixels ``x, y, v`` (flips already re-indexed), ``heatmaps``,
            ``weights``, ``transforms`` (B, 2, 3) scene -> crop maps, ``flipped`` (B,)
            and, with ``actions``, ``actions`` (B,) str; with ``output="pairs"``,
            ``twin_images`` (B, H, W, 3): the same persons, crops and poses in
            their second appearance.
        """
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, int(index)]))
        scenes, kp, boxes, img_idx, actions, twins = self._persons(rng)
        if self.augment is None:
            A = crop_transform(boxes, self.input_size, self.scale_factor)
            flipped = np.zeros(len(boxes), bool)
        else:
            A, flipped = augment_transforms(boxes, rng, self.input_size, self.scale_factor, **self.augment)
        images = crop_images(scenes, A, self.input_size, image_index=img_idx)
        kp_crop = transform_points(kp, A).astype(np.float32)
        kp_crop[flipped] = kp_crop[flipped][:, self._perm]
        out = {"images": images, "keypoints": kp_crop, "transforms": A, "flipped": flipped}
        if twins is not None:
            out["twin_images"] = crop_images(twins, A, self.input_size, image_index=img_idx)
        if heatmaps:
            hm_size = (self.input_size[0] // self.heatmap_stride, self.input_size[1] // self.heatmap_stride)
            out["heatmaps"], out["weights"] = encode_heatmaps(kp_crop, heatmap_size=hm_size, sigma=self.sigma,
                                                              stride=self.heatmap_stride)
        if actions is not None:
            out["actions"] = actions
        return out

    def __getitem__(self, index):
        if not 0 <= int(index) < self.steps_per_epoch:
            raise IndexError(f"batch index {index} out of range [0, {self.steps_per_epoch})")
        if self.output == "images":
            return (self.batch(index, heatmaps=False)["images"],)
        if self.output == "pairs":
            b = self.batch(index, heatmaps=False)
            return (np.stack([b["images"], b["twin_images"]], axis=1),)
        b = self.batch(index)
        targets = {"heatmaps": b["heatmaps"], "weights": b["weights"]}
        if self.output == "both":
            targets["keypoints"] = b["keypoints"][..., :2]
        return b["images"], targets
