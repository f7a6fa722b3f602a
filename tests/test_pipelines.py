"""Person-crop pipeline: the crop transform, its inverse, targets, sources, augmentation."""

import numpy as np
import pytest

from pose_lab.data.pipelines import (
    crop_image,
    crop_transform,
    heatmap_to_image,
    transform_back,
    transform_points,
)
from pose_lab.heatmaps import decode_heatmaps

tf = pytest.importorskip("tensorflow")

from pose_lab.data.pipelines import person_crop_dataset, rendered_crop_dataset  # noqa: E402


def _dot_images(n=6, H=90, W=120, seed=0):
    """Black images with one bright dot per keypoint position (17 dots, distinct intensities)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, H, W, 3), np.uint8)
    kps = np.zeros((n, 17, 3), np.float32)
    boxes = np.zeros((n, 4), np.float32)
    for i in range(n):
        x0, y0 = rng.uniform(5, 40), rng.uniform(5, 30)
        w, h = rng.uniform(25, 60), rng.uniform(25, 50)
        boxes[i] = [x0, y0, w, h]
        xs = rng.integers(int(x0), int(x0 + w), 17)
        ys = rng.integers(int(y0), int(y0 + h), 17)
        kps[i, :, 0], kps[i, :, 1], kps[i, :, 2] = xs, ys, 2
        kps[i, 3, 2] = 0  # one unlabelled keypoint
    return images, kps, boxes


# -- NumPy geometry -------------------------------------------------------------
def test_crop_transform_centre_aspect_and_enlargement():
    A = crop_transform([10, 20, 30, 90], input_size=(64, 48))
    # box centre -> crop centre; same scale on both axes (aspect preserved)
    np.testing.assert_allclose(transform_points([[25.0, 65.0]], A), [[23.5, 31.5]])
    assert A[0, 0] == pytest.approx(A[1, 1]) and A[0, 1] == 0 and A[1, 0] == 0
    # the box is taller than 64:48, so its height * 1.25 spans the crop height
    assert A[1, 1] * 90 * 1.25 == pytest.approx(64)
    A2 = crop_transform([0, 0, 100, 10], input_size=(64, 48))  # wide box: width decides
    assert A2[0, 0] * 100 * 1.25 == pytest.approx(48)


def test_transform_back_inverts_random_transforms():
    rng = np.random.default_rng(0)
    boxes = np.c_[rng.uniform(-50, 500, (20, 2)), rng.uniform(5, 300, (20, 2))]
    pts = rng.uniform(-100, 700, (20, 17, 3))
    A = crop_transform(boxes, (256, 192), rotation=0.3, scale=1.1)
    assert A.shape == (20, 2, 3)
    back = transform_back(transform_points(pts, A), A)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    hm = transform_points(pts, A)[..., :2] / 4.0
    np.testing.assert_allclose(heatmap_to_image(hm, A, stride=4), pts[..., :2], atol=1e-9)


def test_numpy_crop_puts_dots_under_transformed_keypoints():
    images, kps, boxes = _dot_images(1)
    img = images[0].astype(np.float32)
    x, y = int(kps[0, 0, 0]), int(kps[0, 0, 1])
    img[y, x] = 255
    A = crop_transform(boxes[0], (64, 48))
    c = crop_image(img, A, (64, 48))
    u, v = transform_points(kps[0, :1, :2], A)[0]
    # the bilinear splat of the dot is centred on the transformed keypoint
    ys, xs = np.mgrid[0:64, 0:48]
    wgt = c[..., 0]
    assert wgt.sum() > 0
    cu, cv = (wgt * xs).sum() / wgt.sum(), (wgt * ys).sum() / wgt.sum()
    assert abs(cu - u) < 0.35 and abs(cv - v) < 0.35


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[x, y, w, h\]"):
        crop_transform([1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        crop_transform([1, 2, np.nan, 4])
    with pytest.raises(ValueError, match="output"):
        person_crop_dataset({"images": np.zeros((1, 8, 8, 3)), "keypoints": np.zeros((1, 17, 3))},
                            input_size=(8, 8), output="nope")
    with pytest.raises(ValueError, match="keypoints"):
        person_crop_dataset({"images": np.zeros((1, 8, 8, 3)), "keypoints": np.zeros((1, 17, 2))},
                            input_size=(8, 8))


# -- tf.data ------------------------------------------------------------------------
def test_dataset_crop_matches_numpy_and_targets_peak_at_keypoints():
    images, kps, boxes = _dot_images(6)
    # a dot for each labelled keypoint, in the red channel
    for i in range(len(images)):
        for j in range(17):
            images[i, int(kps[i, j, 1]), int(kps[i, j, 0]), 0] = 255
    src = {"images": images, "keypoints": kps, "boxes": boxes}
    ds = person_crop_dataset(src, input_size=(64, 48), heatmap_stride=4, sigma=1.5,
                             batch_size=3, output="both", with_meta=True)
    seen = 0
    for imgs, tg, meta in ds:
        imgs, A = imgs.numpy(), meta["transform"].numpy()
        assert imgs.shape == (3, 64, 48, 3) and tg["heatmaps"].shape == (3, 16, 12, 17)
        for b in range(3):
            i = int(meta["index"][b])
            np.testing.assert_allclose(A[b], crop_transform(boxes[i], (64, 48)), atol=1e-4)
            ref = crop_image(images[i], A[b], (64, 48))
            np.testing.assert_allclose(imgs[b], ref, atol=0.02)
            ckp = transform_points(kps[i], A[b])
            np.testing.assert_allclose(tg["keypoints"][b].numpy(), ckp[:, :2], atol=1e-3)
            # heatmap peaks decode to the keypoints (within the 1/4 heatmap pixel of the decoder)
            coords, _ = decode_heatmaps(tg["heatmaps"][b].numpy())
            w = tg["weights"][b].numpy()
            lab = kps[i, :, 2] > 0
            assert np.all(w[~lab] == 0) and np.all(w[lab] == 1)
            err = np.abs(coords[lab] - ckp[lab, :2] / 4.0)
            assert err.max() <= 0.25 + 1e-4
            np.testing.assert_allclose(transform_back(ckp, A[b])[:, :2], kps[i, :, :2], atol=1e-3)
            seen += 1
    assert seen == 6


def test_rendered_mannequin_joints_land_on_the_body_after_cropping():
    from pose_lab.data.synthetic import render_scenes

    scenes = render_scenes(4, image_size=(160, 200), num_people=(1, 2), seed=11)
    images, kps, boxes = [], [], []
    for sc in scenes:
        for p in range(len(sc["keypoints"])):
            if sc["masks"][p].sum() < 200:
                continue
            # the person's silhouette as the image: joints must land on white pixels
            images.append(np.repeat(sc["masks"][p][..., None] * 255, 3, axis=-1))
            kps.append(sc["keypoints"][p])
            boxes.append(sc["boxes"][p])
    src = {"images": np.stack(images), "keypoints": np.stack(kps), "boxes": np.stack(boxes)}
    ds = person_crop_dataset(src, input_size=(128, 96), batch_size=None, output="coordinates",
                             with_meta=True)
    checked = 0
    for img, tg, meta in ds:
        img = img.numpy()[..., 0]
        kp = tg["keypoints"].numpy()
        vis = meta["keypoints_image"].numpy()[:, 2] == 2
        # body joints (not the face points, which sit on the head's surface)
        for j in np.nonzero(vis)[0]:
            if j < 5:
                continue
            x, y = int(round(kp[j, 0])), int(round(kp[j, 1]))
            assert img[y, x] > 127, (j, x, y)
            checked += 1
    assert checked > 20


def test_augment_callable_and_records_source(tmp_path):
    from pose_lab.data.coco import load_coco_keypoints
    from pose_lab.data.synthetic import write_coco_dataset

    ann = write_coco_dataset(tmp_path, 3, split="val", seed=2, image_size=(96, 96), image_format="png")
    recs = load_coco_keypoints(ann, tmp_path / "val")
    W = 48

    def hflip(image, keypoints):  # mirror the crop(s); keep joint order (test only)
        image = image[..., ::-1, :]
        keypoints = tf.concat([(W - 1) - keypoints[..., :1], keypoints[..., 1:]], axis=-1)
        return image, keypoints

    for bs in (None, 2):  # per crop, and per batch
        plain = person_crop_dataset(recs, input_size=(64, 48), batch_size=bs, output="coordinates")
        flipped = person_crop_dataset(recs, input_size=(64, 48), batch_size=bs, output="coordinates",
                                      augment=hflip)
        n = 0
        for (a, ta), (b, tb) in zip(plain, flipped):
            np.testing.assert_allclose(b.numpy(), a.numpy()[..., ::-1, :], atol=1e-4)
            np.testing.assert_allclose(tb["keypoints"].numpy()[..., 0],
                                       W - 1 - ta["keypoints"].numpy()[..., 0], atol=1e-4)
            n += 1 if bs is None else int(a.shape[0])
        assert n == len(recs) > 0


def test_rendered_crop_dataset_and_shuffle_determinism():
    ds, data = rendered_crop_dataset(8, size=64, seed=0, heatmap_stride=4, batch_size=4,
                                     shuffle=True, shuffle_seed=3)
    ds_b, _ = rendered_crop_dataset(8, size=64, seed=0, heatmap_stride=4, batch_size=4,
                                    shuffle=True, shuffle_seed=3)
    first_a = list(ds)  # first epoch of each: same seed, same order
    first_b = list(ds_b)
    x, y = first_a[0]
    assert x.shape == (4, 64, 64, 3) and y["heatmaps"].shape == (4, 16, 16, 17)
    assert len(first_a) == 2
    for (a_, _), (b_, _) in zip(first_a, first_b):
        np.testing.assert_array_equal(a_.numpy(), b_.numpy())
    # crop=False keeps the rendered pixels
    ds2 = person_crop_dataset(data, input_size=(64, 64), crop=False, batch_size=None)
    img0, _ = next(iter(ds2))
    np.testing.assert_array_equal(img0.numpy(), data["images"][0].astype(np.float32))


def test_keras_augmentation_layer_keeps_keypoints_on_dots():
    aug_mod = pytest.importorskip("pose_lab.data.augment")
    layer = aug_mod.RandomAffineKeypoints(flip_probability=0.5, max_rotation=0.4,
                                          scale_range=(0.8, 1.2), max_translation=0.05,
                                          flip_permutation=None, seed=1)
    images, kps, boxes = _dot_images(4, seed=3)
    for i in range(len(images)):
        kps[i, :, 2] = 0
        kps[i, 0, 2] = 2
        images[i, int(kps[i, 0, 1]) - 1:int(kps[i, 0, 1]) + 2,
               int(kps[i, 0, 0]) - 1:int(kps[i, 0, 0]) + 2] = 255
    src = {"images": images, "keypoints": kps, "boxes": boxes}
    ds = person_crop_dataset(src, input_size=(64, 48), batch_size=None, output="coordinates",
                             augment=layer)
    for img, tg in ds:
        img = img.numpy()[..., 0]
        x, y = tg["keypoints"].numpy()[0]
        if tg["weights"].numpy()[0] == 0:
            continue
        ys, xs = np.mgrid[0:64, 0:48]
        w = img * ((np.abs(xs - x) < 6) & (np.abs(ys - y) < 6))
        assert w.sum() > 0
        cx, cy = (w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()
        assert abs(cx - x) < 1.0 and abs(cy - y) < 1.0


# -- faults (issue 12): bad boxes, bad image files, empty sources ------------------------------------------------
@pytest.mark.parametrize("bad, what", [([np.nan, 0, 10, 10], "NaN or inf"), ([0, 0, -5, 10], "width or height <= 0"),
                                       ([0, 0, 10, 0], "width or height <= 0")])
def test_bad_boxes_are_rejected_with_their_index(bad, what):
    images, kps, boxes = _dot_images(n=4)
    boxes[2] = bad
    with pytest.raises(ValueError, match=rf"'boxes'\[2\] = .*{what}"):
        person_crop_dataset({"images": images, "keypoints": kps, "boxes": boxes}, input_size=(32, 24),
                            batch_size=2)
    with pytest.raises(ValueError, match=rf"box.*{what}"):
        crop_transform(bad, input_size=(32, 24))
    with pytest.raises(ValueError, match=rf"box\[2\].*{what}"):
        crop_transform(boxes, input_size=(32, 24))


def test_nan_in_float_images_is_rejected():
    images, kps, boxes = _dot_images(n=3)
    images = images.astype(np.float32)
    images[1, 5, 5, 0] = np.nan
    with pytest.raises(ValueError, match=r"'images'.*NaN.*index 1"):
        person_crop_dataset({"images": images, "keypoints": kps, "boxes": boxes}, input_size=(32, 24))


@pytest.mark.parametrize("kwargs, match", [({"batch_size": 0}, "batch_size"), ({"batch_size": 1.5}, "batch_size"),
                                           ({"heatmap_stride": 0}, "heatmap_stride")])
def test_bad_sizes_are_rejected(kwargs, match):
    images, kps, boxes = _dot_images(n=3)
    with pytest.raises(ValueError, match=match):
        person_crop_dataset({"images": images, "keypoints": kps, "boxes": boxes}, input_size=(32, 24), **kwargs)


def test_empty_source_is_rejected():
    with pytest.raises(ValueError, match="no persons"):
        person_crop_dataset({"images": np.zeros((0, 8, 8, 3), np.uint8), "keypoints": np.zeros((0, 17, 3))},
                            input_size=(8, 8))


def test_bad_image_files_are_named_before_tf_data_decodes_them(tmp_path):
    from PIL import Image

    from pose_lab.data.coco import load_image

    good = tmp_path / "good.jpg"
    Image.fromarray(np.full((40, 30, 3), 120, np.uint8)).save(good, quality=90)
    raw = good.read_bytes()
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "cut.jpg").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "page.jpg").write_bytes(b"<html>404 not found</html>")
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, :, :2], kps[0, :, 2] = 15.0, 2
    for name, match in (("empty.jpg", "empty"), ("cut.jpg", "truncated JPEG"), ("page.jpg", "not a JPEG")):
        path = str(tmp_path / name)
        src = {"image_paths": [path], "boxes": [[0, 0, 30, 40]], "keypoints": kps}
        with pytest.raises(ValueError, match=rf"{name}.*{match}"):
            person_crop_dataset(src, input_size=(32, 24), batch_size=1)
        with pytest.raises(ValueError, match=rf"{name}"):  # the NumPy/PIL reader names the file too
            load_image(path)
    ds = person_crop_dataset({"image_paths": [str(good)], "boxes": [[0, 0, 30, 40]], "keypoints": kps},
                             input_size=(32, 24), batch_size=1)
    assert next(iter(ds))[0].shape == (1, 32, 24, 3)
