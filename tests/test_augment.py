"""Keypoint-aware augmentation: keypoints follow the pixels they were drawn on.

The geometric checks draw coloured dots at the keypoints, transform image and
keypoints together, then look at the transformed image: the dot of each joint
must be where its transformed keypoint says (colour at the keypoint, and the
dot's centroid within a fraction of a pixel). The reference is the image,
never the layer's own matrix. Runs under whichever Keras backend is active.
"""

import math

import keras
import numpy as np
import pytest

from pose_lab.data import augment
from pose_lab.data.augment import (
    RandomAffineKeypoints,
    RandomColorDrop,
    RandomGaussianNoise,
    RandomSobelEdges,
    appearance_augmentation,
    keypoint_augmentation,
)
from pose_lab.skeletons import COCO17

H, W = 96, 80
# Five joints, each with its own pure colour; joints 1<->2 and 3<->4 are left/right pairs.
COLOURS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]], dtype="float32")
PERM = [0, 2, 1, 4, 3]
KEYPOINTS = np.array([[40, 48], [25, 30], [55, 30], [30, 70], [50, 70]], dtype="float32")


def draw(keypoints, radius=2.5):
    """(B, K, 2) -> (B, H, W, 3) image with a disc of each joint's colour."""
    yy, xx = np.mgrid[0:H, 0:W]
    images = np.zeros((len(keypoints), H, W, 3), dtype="float32")
    for b, kps in enumerate(keypoints):
        for (x, y), colour in zip(kps, COLOURS):
            images[b][(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] = colour
    return images


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def centroid(image, colour):
    """Intensity-weighted centroid (x, y) of the pixels that have exactly ``colour``'s hue."""
    other = 1.0 - colour
    weight = np.clip(np.min(np.where(colour > 0, image, 1.0), axis=-1)
                     - np.max(np.where(other > 0, image, 0.0), axis=-1), 0, None)
    if weight.sum() < 1.0:
        return None
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return np.array([(xx * weight).sum(), (yy * weight).sum()]) / weight.sum()


# flip_probability is 0 or 1 so that which dot belongs to which output joint is known.
CONFIGS = {
    "flip": dict(flip_probability=1.0),
    "rotation": dict(flip_probability=0.0, max_rotation=math.radians(45)),
    "scale": dict(flip_probability=0.0, scale_range=(0.6, 1.4)),
    "translation": dict(flip_probability=0.0, max_translation=0.15),
    "all": dict(flip_probability=0.0, max_rotation=math.radians(40), scale_range=(0.7, 1.3),
                max_translation=0.1),
    "all_flipped": dict(flip_probability=1.0, max_rotation=math.radians(40), scale_range=(0.7, 1.3),
                        max_translation=0.1),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_keypoints_land_on_the_drawn_dots(name):
    batch = 6
    kps = np.repeat(KEYPOINTS[None], batch, axis=0)
    images = draw(kps)
    vis = np.full((batch, len(KEYPOINTS), 1), 2.0, dtype="float32")
    config = CONFIGS[name]
    layer = RandomAffineKeypoints(flip_permutation=PERM, seed=7, **config)
    out = layer({"images": images, "keypoints": np.concatenate([kps, vis], -1)})
    out_images, out_kps = numpy(out["images"]), numpy(out["keypoints"])
    assert out_images.shape == images.shape and out_kps.shape == (batch, 5, 3)
    if name != "flip":
        assert np.ptp(out_kps[..., :2], axis=0).max() > 1.0  # a different transform per image
    flipped = config["flip_probability"] == 1.0
    checked = 0
    for b in range(batch):
        for k in range(5):
            x, y, v = out_kps[b, k]
            if v == 0:
                assert not (0 <= x <= W - 1 and 0 <= y <= H - 1)
                continue
            # Output joint k is input joint PERM[k] after a flip: its dot has that joint's colour.
            colour = COLOURS[PERM[k] if flipped else k]
            pixel = out_images[b, int(round(y)), int(round(x))]
            np.testing.assert_allclose(pixel, colour, atol=0.35, err_msg=f"{name} image {b} joint {k}")
            c = centroid(out_images[b], colour)
            assert c is not None
            np.testing.assert_allclose(c, [x, y], atol=0.3, err_msg=f"{name} image {b} joint {k}")
            checked += 1
    assert checked >= batch * 3


def test_flip_swaps_left_and_right_coco17():
    rng = np.random.default_rng(0)
    kps = np.concatenate([rng.uniform(5, 70, (1, 17, 2)), np.full((1, 17, 1), 2.0)], -1).astype("float32")
    out = numpy(RandomAffineKeypoints(flip_probability=1.0, flip_permutation="coco17")(
        {"images": np.zeros((1, H, W, 3), "float32"), "keypoints": kps})["keypoints"])
    for left, right in COCO17.flip_pairs:
        # The subject's left wrist after the flip is where the mirrored right wrist was.
        np.testing.assert_allclose(out[0, left, 0], W - 1 - kps[0, right, 0], atol=1e-4)
        np.testing.assert_allclose(out[0, left, 1], kps[0, right, 1], atol=1e-4)
        np.testing.assert_allclose(out[0, right, 0], W - 1 - kps[0, left, 0], atol=1e-4)
    np.testing.assert_allclose(out[0, 0, 0], W - 1 - kps[0, 0, 0], atol=1e-4)  # nose stays the nose


def test_flipped_image_is_the_mirror():
    images = np.random.default_rng(1).uniform(0, 1, (2, H, W, 3)).astype("float32")
    out = numpy(RandomAffineKeypoints(flip_probability=1.0)(images))
    np.testing.assert_allclose(out, images[:, :, ::-1], atol=1e-5)


def test_visibility_out_of_frame_and_flags_kept():
    kps = np.array([[[2, 40, 2], [40, 40, 1], [40, 40, 0], [78, 40, 2], [40, 40, 2]]], "float32")
    # Shift right by exactly 10 px (translation fraction 1/8 of W=80, drawn at the maximum).
    layer = RandomAffineKeypoints(flip_probability=0.0, max_translation=0.125, flip_permutation=None)
    tr = layer.get_random_transformation(np.zeros((1, H, W, 3), "float32"))
    shift = float(numpy(tr["forward"])[0, 2])
    out = numpy(layer.transform_keypoints(kps, tr))
    np.testing.assert_allclose(out[0, :, 0], kps[0, :, 0] + shift, atol=1e-4)
    assert out[0, 1, 2] == 1 and out[0, 2, 2] == 0  # occluded stays 1, unlabelled stays 0
    inside = (out[0, :, 0] >= 0) & (out[0, :, 0] <= W - 1)
    np.testing.assert_array_equal(out[0, :, 2] > 0, inside & (kps[0, :, 2] > 0))


def test_training_false_is_identity_and_two_column_keypoints():
    images = np.random.default_rng(2).uniform(0, 255, (2, H, W, 3)).astype("float32")
    kps = np.array([[[10, 10], [-5, 10]]] * 2, "float32")
    layer = RandomAffineKeypoints(flip_probability=1.0, max_rotation=1.0, flip_permutation=None)
    out = layer({"images": images, "keypoints": kps}, training=False)
    np.testing.assert_allclose(numpy(out["images"]), images)
    np.testing.assert_allclose(numpy(out["keypoints"]), [[[10, 10, 2], [-5, 10, 0]]] * 2)


def test_unbatched_input_and_masks():
    kps = KEYPOINTS[None]
    image = draw(kps)[0]
    mask = (image.sum(-1, keepdims=True) > 0).astype("float32")
    out = RandomAffineKeypoints(flip_probability=1.0, max_rotation=0.3, flip_permutation=PERM, seed=3)(
        {"images": image, "keypoints": KEYPOINTS, "segmentation_masks": mask, "id": np.array([42], "int32")})
    assert tuple(out["images"].shape) == (H, W, 3) and tuple(out["keypoints"].shape) == (5, 3)
    assert numpy(out["id"]).tolist() == [42]  # other keys pass through
    m = numpy(out["segmentation_masks"])
    assert set(np.unique(m)) <= {0.0, 1.0}  # nearest-neighbour: still a binary mask
    for x, y, v in numpy(out["keypoints"]):
        assert m[int(round(y)), int(round(x)), 0] == 1.0


def test_wrong_keypoint_count_is_a_clear_error():
    with pytest.raises(ValueError, match="flip_permutation"):
        RandomAffineKeypoints(flip_permutation="coco17")(
            {"images": np.zeros((1, 8, 8, 3)), "keypoints": np.zeros((1, 5, 3))})
    with pytest.raises(ValueError, match="permutation"):
        RandomAffineKeypoints(flip_permutation=[0, 0, 1])


def test_sobel_edges_closed_form():
    """A vertical step 0 | 1: |gx| = 4 on the two columns beside the step, 0 elsewhere."""
    image = np.zeros((1, 6, 8, 3), "float32")
    image[:, :, 4:] = 1.0
    out = numpy(RandomSobelEdges(probability=1.0, value_range=(0, 1))(image))
    expected = np.zeros((6, 8))
    expected[:, 3:5] = 1.0
    for c in range(3):
        np.testing.assert_allclose(out[0, :, :, c], expected, atol=1e-6)
    np.testing.assert_allclose(numpy(RandomSobelEdges(probability=0.0, value_range=(0, 1))(image)), image)


def test_gaussian_noise_statistics():
    image = np.full((4, 64, 64, 3), 128.0, "float32")
    out = numpy(RandomGaussianNoise(stddev=(0.05, 0.05), value_range=(0, 255), seed=0)(image))
    assert abs(out.std() - 0.05 * 255) < 0.05 * 0.05 * 255
    assert abs(out.mean() - 128.0) < 0.5
    clipped = numpy(RandomGaussianNoise(stddev=(0.5, 0.5), value_range=(0, 1), seed=0)(image / 255.0))
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0
    np.testing.assert_allclose(numpy(RandomGaussianNoise(probability=0.0)(image)), image)


def test_appearance_pipeline_keeps_keypoints_and_range():
    rng = np.random.default_rng(3)
    data = {"images": rng.uniform(0, 1, (4, 32, 24, 3)).astype("float32"),
            "keypoints": rng.uniform(0, 20, (4, 17, 3)).astype("float32")}
    out = appearance_augmentation(value_range=(0, 1), strength=2.0, seed=0)(dict(data))
    np.testing.assert_array_equal(numpy(out["keypoints"]), data["keypoints"])
    img = numpy(out["images"])
    assert img.shape == data["images"].shape
    assert img.min() >= -1e-6 and img.max() <= 1 + 1e-6
    assert np.abs(img - data["images"]).max() > 0.01  # it did something


def test_colour_drop_accepts_dicts():
    data = {"images": np.random.default_rng(4).uniform(0, 1, (2, 8, 8, 3)).astype("float32"),
            "keypoints": np.zeros((2, 17, 3), "float32")}
    out = numpy(RandomColorDrop(factor=1.0)(data)["images"])
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-6)


def test_in_tf_data_random_per_image_and_per_epoch():
    tf = pytest.importorskip("tensorflow")
    images = draw(np.repeat(KEYPOINTS[None], 4, axis=0))
    kps = np.concatenate([np.repeat(KEYPOINTS[None], 4, 0), np.full((4, 5, 1), 2.0)], -1).astype("float32")
    aug = keypoint_augmentation(value_range=(0, 1), flip_permutation=PERM, seed=5)
    ds = tf.data.Dataset.from_tensor_slices({"images": images, "keypoints": kps}).batch(4).map(aug)
    first = next(iter(ds))["keypoints"].numpy()
    second = next(iter(ds))["keypoints"].numpy()
    assert np.ptp(first[..., :2], axis=0).max() > 0.5  # images of one batch differ
    assert np.abs(first - second).max() > 0.5  # a new epoch draws new transforms
    single = tf.data.Dataset.from_tensor_slices({"images": images, "keypoints": kps}).map(aug)
    element = next(iter(single))
    assert tuple(element["images"].shape) == (H, W, 3) and tuple(element["keypoints"].shape) == (5, 3)


@pytest.mark.parametrize("layer", [
    RandomAffineKeypoints(flip_probability=0.3, max_rotation=0.2, scale_range=(0.9, 1.1),
                          max_translation=0.05, flip_permutation="h36m17", seed=1),
    RandomGaussianNoise(stddev=(0.01, 0.02), probability=0.7, value_range=(0, 1), seed=2),
    RandomSobelEdges(probability=0.2, value_range=(0, 1), seed=3),
    RandomColorDrop(factor=0.4, seed=4),
], ids=lambda layer: type(layer).__name__)
def test_serialisation_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_pipelines_and_model_save_load(tmp_path):
    pipe = keypoint_augmentation(value_range=(0, 1), seed=1)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(pipe))
    assert [type(lay).__name__ for lay in restored.layers] == [type(lay).__name__ for lay in pipe.layers]
    inputs = keras.Input((24, 16, 3))
    x = RandomSobelEdges(probability=1.0, value_range=(0, 1))(inputs)
    x = RandomAffineKeypoints(flip_probability=1.0)(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    batch = np.random.default_rng(5).uniform(0, 1, (2, 24, 16, 3)).astype("float32")
    np.testing.assert_allclose(numpy(loaded(batch, training=True)), numpy(model(batch, training=True)), atol=1e-5)


def test_trains_inside_a_model():
    """Augmentation layers inside a model trained with fit() (jit-compiled under JAX)."""
    inputs = keras.Input((16, 16, 3))
    x = RandomAffineKeypoints(max_rotation=0.3, seed=0)(inputs)
    x = RandomGaussianNoise(stddev=(0.0, 0.05), value_range=(0, 1), seed=1)(x)
    x = RandomSobelEdges(probability=0.5, value_range=(0, 1), seed=2)(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(x))
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile("adam", "mse")
    history = model.fit(np.random.default_rng(6).uniform(0, 1, (8, 16, 16, 3)).astype("float32"),
                        np.zeros((8, 1), "float32"), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_module_lists_what_it_writes():
    assert set(augment.__all__) >= {"RandomAffineKeypoints", "RandomGaussianNoise", "RandomSobelEdges",
                                     "RandomColorDrop", "appearance_augmentation", "keypoint_augmentation"}
