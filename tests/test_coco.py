"""COCO keypoint loader: the real val2017 sample (checked against pycocotools),
edge cases of the format, bad input, and the synthetic writer round trip."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from pose_lab.data.coco import PersonRecord, load_coco_keypoints, records_to_arrays

from pose_lab.runtime import shared_data_dir

_SHARED = shared_data_dir()
SHARED = (_SHARED or Path("../shared/data")) / "coco_val2017_mini"
ANN = SHARED / "person_keypoints_val2017_mini.json"
IMG = SHARED / "val2017"
needs_sample = pytest.mark.skipif(
    not ANN.is_file(), reason=f"real COCO sample not present at {SHARED} (../shared/data)"
)


def _mini(tmp_path=None):
    """A tiny hand-written COCO dict: 2 images, crowd, zero-keypoint and labelled persons."""
    kp = [0] * 51
    kp[0:3] = [10, 20, 2]
    kp[15:18] = [30, 40, 1]
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                   {"id": 2, "file_name": "b.jpg", "width": 32, "height": 32}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "keypoints": kp,
             "num_keypoints": 2, "bbox": [1, 2, 30, 40], "area": 500.0},
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 1, "keypoints": [0] * 51,
             "num_keypoints": 0, "bbox": [0, 0, 64, 48], "area": 900.0},
            {"id": 12, "image_id": 2, "category_id": 1, "iscrowd": 0, "keypoints": [0] * 51,
             "num_keypoints": 0, "bbox": [3, 3, 5, 5], "area": 20.0},
        ],
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": ["k%d" % i for i in range(17)], "skeleton": []}],
    }


# -- the real sample ----------------------------------------------------------
@needs_sample
def test_counts_agree_with_pycocotools():
    pycoco = pytest.importorskip("pycocotools.coco")
    coco = pycoco.COCO(str(ANN))
    ann_ids = coco.getAnnIds(catIds=coco.getCatIds(catNms=["person"]))
    anns = coco.loadAnns(ann_ids)
    # independent counts from the COCO API
    all_persons = len(anns)
    labelled = [a for a in anns if not a["iscrowd"] and a["num_keypoints"] > 0]
    n_kp = sum(int((np.asarray(a["keypoints"][2::3]) > 0).sum()) for a in labelled)
    n_vis = sum(int((np.asarray(a["keypoints"][2::3]) == 2).sum()) for a in labelled)

    everyone = load_coco_keypoints(ANN, IMG, skip_crowd=False, min_keypoints=0)
    assert len(everyone) == all_persons == 46
    recs = load_coco_keypoints(ANN, IMG)  # defaults: no crowd, >= 1 keypoint
    assert len(recs) == len(labelled) == 18
    assert sum(int((r.keypoints[:, 2] > 0).sum()) for r in recs) == n_kp
    assert sum(int((r.keypoints[:, 2] == 2).sum()) for r in recs) == n_vis
    assert sum(r.num_keypoints for r in recs) == n_kp
    # per-record fields match the API's view of the same annotation
    by_id = {a["id"]: a for a in anns}
    for r in recs:
        a = by_id[r.id]
        np.testing.assert_allclose(r.keypoints.ravel(), a["keypoints"])
        np.testing.assert_allclose(r.bbox, a["bbox"], rtol=1e-6)
        img = coco.loadImgs(a["image_id"])[0]
        assert (r.width, r.height, r.file_name) == (img["width"], img["height"], img["file_name"])
        assert Path(r.image_path).is_file()


@needs_sample
def test_real_sample_images_load():
    from pose_lab.data.coco import load_image

    r = load_coco_keypoints(ANN, IMG)[0]
    im = load_image(r)
    assert im.shape == (r.height, r.width, 3) and im.dtype == np.uint8


@needs_sample
def test_missing_image_raise_or_skip(tmp_path):
    # copy only one of the images
    recs = load_coco_keypoints(ANN, IMG)
    keep = recs[0].file_name
    (tmp_path / keep).write_bytes((IMG / keep).read_bytes())
    with pytest.raises(FileNotFoundError, match=r"image file not found: .*\.jpg"):
        load_coco_keypoints(ANN, tmp_path)
    got = load_coco_keypoints(ANN, tmp_path, missing_images="skip")
    assert got and all(r.file_name == keep for r in got)
    assert len(got) == sum(r.file_name == keep for r in recs)


# -- format edge cases -------------------------------------------------------
def test_crowd_and_zero_keypoint_persons():
    d = _mini()
    assert [r.id for r in load_coco_keypoints(d)] == [10]
    assert [r.id for r in load_coco_keypoints(d, min_keypoints=0)] == [10, 12]
    assert [r.id for r in load_coco_keypoints(d, skip_crowd=False, min_keypoints=0)] == [10, 11, 12]
    r = load_coco_keypoints(d)[0]
    assert isinstance(r, PersonRecord)
    assert r.keypoints.shape == (17, 3) and r.keypoints.dtype == np.float32
    assert r.keypoints[0].tolist() == [10, 20, 2] and r.keypoints[5].tolist() == [30, 40, 1]
    assert r.num_keypoints == 2 and r.image_path is None and (r.width, r.height) == (64, 48)


def test_other_categories_are_ignored():
    d = _mini()
    d["categories"].append({"id": 7, "name": "dog"})
    extra = copy.deepcopy(d["annotations"][0])
    extra.update(id=99, category_id=7)
    d["annotations"].append(extra)
    assert [r.id for r in load_coco_keypoints(d)] == [10]


# -- bad input --------------------------------------------------------------
def test_truncated_json_names_file_and_position(tmp_path):
    p = tmp_path / "person_keypoints_bad.json"
    text = json.dumps(_mini())
    p.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"person_keypoints_bad\.json.*line 1 column \d+ \(char \d+\)"):
        load_coco_keypoints(p)


def test_missing_annotation_file():
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_coco_keypoints("/nonexistent/nope.json")


def test_wrong_keypoint_count_names_annotation_and_field(tmp_path):
    d = _mini()
    d["annotations"][0]["keypoints"] = d["annotations"][0]["keypoints"][:48]
    p = tmp_path / "k.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"k\.json: annotation id 10: field 'keypoints' has 48 entries, expected 51"):
        load_coco_keypoints(p)


def test_nan_coordinates(tmp_path):
    d = _mini()
    d["annotations"][0]["keypoints"][3] = float("nan")
    p = tmp_path / "n.json"
    p.write_text(json.dumps(d))  # json writes the NaN literal, as Python's json reads it
    with pytest.raises(ValueError, match=r"annotation id 10: field 'keypoints' contains NaN"):
        load_coco_keypoints(p)
    d = _mini()
    d["annotations"][0]["bbox"][2] = float("nan")
    with pytest.raises(ValueError, match=r"annotation id 10: field 'bbox' contains NaN"):
        load_coco_keypoints(d)


def test_bad_visibility_and_unknown_image():
    d = _mini()
    d["annotations"][0]["keypoints"][2] = 3
    with pytest.raises(ValueError, match="visibility flags"):
        load_coco_keypoints(d)
    d = _mini()
    d["annotations"][0]["image_id"] = 123
    with pytest.raises(ValueError, match="image_id 123 is not among the 'images'"):
        load_coco_keypoints(d)
    with pytest.raises(ValueError, match="missing top-level field 'annotations'"):
        load_coco_keypoints({"images": []})


# -- synthetic round trip -----------------------------------------------------
def test_round_trip_synthetic_writer(tmp_path):
    from pose_lab.data.synthetic import render_scenes, write_coco_dataset

    ann = write_coco_dataset(tmp_path, 6, split="val", seed=5, image_size=(96, 128),
                             num_people=(1, 3), image_format="png")
    assert ann == tmp_path / "annotations" / "person_keypoints_val.json"
    recs = load_coco_keypoints(ann, tmp_path / "val", min_keypoints=0)
    # the writer renders exactly these scenes (same seed, same arguments)
    scenes = render_scenes(6, image_size=(96, 128), num_people=(1, 3), seed=5)
    expected = [(i + 1, p) for i, sc in enumerate(scenes) for p in range(len(sc["keypoints"]))
                if sc["masks"][p].any()]
    assert len(recs) == len(expected) > 0
    for r, (image_id, p) in zip(recs, expected):
        sc = scenes[image_id - 1]
        kp = sc["keypoints"][p]
        v = kp[:, 2]
        assert r.image_id == image_id
        np.testing.assert_array_equal(r.keypoints[:, 2], v)
        lab = v > 0
        np.testing.assert_allclose(r.keypoints[lab, :2], kp[lab, :2], atol=0.006)
        assert np.all(r.keypoints[~lab, :2] == 0)
        np.testing.assert_allclose(r.bbox, sc["boxes"][p])
        assert r.area == sc["masks"][p].sum()
        assert r.num_keypoints == int(lab.sum())
    arr = records_to_arrays(recs)
    assert arr["keypoints"].shape == (len(recs), 17, 3)
    # images on disk are the rendered ones (PNG is lossless)
    from pose_lab.data.coco import load_image

    np.testing.assert_array_equal(load_image(recs[0]), scenes[recs[0].image_id - 1]["image"])


def test_written_file_is_valid_for_pycocotools(tmp_path):
    pycoco = pytest.importorskip("pycocotools.coco")
    from pycocotools import mask as mask_utils

    from pose_lab.data.synthetic import write_coco_dataset

    ann = write_coco_dataset(tmp_path, 4, split="train", seed=1, image_size=(80, 80))
    data = json.loads(ann.read_text())
    cat = data["categories"][0]
    assert cat["id"] == 1 and cat["name"] == "person" and len(cat["keypoints"]) == 17
    assert cat["skeleton"][0] == [16, 14] and len(cat["skeleton"]) == 19
    coco = pycoco.COCO(str(ann))
    for a in coco.loadAnns(coco.getAnnIds()):
        assert a["category_id"] == 1 and a["iscrowd"] == 0 and len(a["keypoints"]) == 51
        m = coco.annToMask(a)
        assert int(m.sum()) == a["area"]
        assert np.allclose(mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m))), a["bbox"])
    files = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert files == sorted(im["file_name"] for im in data["images"])
    # no temporary folders left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations", "train"]


# -- faults (issue 12) ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("edit, match", [
    (lambda d: d["images"][0].pop("id"), r"images\[0\] has no 'id'"),
    (lambda d: d["images"][0].update(id=[1]), r"images\[0\]: field 'id' must be an integer, got \[1\]"),
    (lambda d: d["images"][0].update(width=None), r"image id 1: field 'width' must be a positive integer"),
    (lambda d: d["annotations"][0].update(iscrowd="no"), r"annotation id 10: field 'iscrowd' must be 0 or 1, got 'no'"),
    (lambda d: d["annotations"][0].update(num_keypoints=5),
     r"annotation id 10: field 'num_keypoints' is 5 but 2 keypoints have v > 0"),
    (lambda d: d["annotations"][0].update(id=[10]), r"annotations\[0\]: field 'id' must be an integer"),
    (lambda d: d["annotations"][0].update(image_id=[1]), r"annotation id 10: image_id \[1\] is not among"),
])
def test_malformed_fields_name_the_id_and_field(edit, match):
    d = _mini()
    edit(d)
    with pytest.raises(ValueError, match=match):
        load_coco_keypoints(d)


def test_writer_keeps_json_and_images_in_step(tmp_path, monkeypatch):
    import os

    from pose_lab.data.synthetic import coco_writer, write_coco_dataset

    ann = write_coco_dataset(tmp_path, 2, split="val", seed=1, image_size=(48, 48), image_format="png")
    before = json.loads(ann.read_text())
    before_files = {p.name: p.read_bytes() for p in (tmp_path / "val").iterdir()}
    real_replace = os.replace

    def fail_on_json(src, dst):  # the new JSON's move into place fails (disk full, killed...)
        new_json = os.fspath(src).endswith(os.path.join("annotations", "person_keypoints_val.json"))
        if os.fspath(dst) == os.fspath(ann) and ".tmp_val_" in os.fspath(src) and new_json:
            raise OSError("injected failure")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_json)
    with pytest.raises(OSError, match="injected"):
        write_coco_dataset(tmp_path, 3, split="val", seed=2, image_size=(48, 48), image_format="png")
    monkeypatch.setattr(os, "replace", real_replace)
    # the previous dataset, whole: its JSON and its images (not the new images beside the old JSON)
    assert json.loads(ann.read_text()) == before
    assert {p.name: p.read_bytes() for p in (tmp_path / "val").iterdir()} == before_files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations", "val"]

    calls = {"n": 0}
    real_save = coco_writer._save_image

    def fail_mid_images(*args):  # a crash while rendering/writing the images
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_save(*args)

    monkeypatch.setattr(coco_writer, "_save_image", fail_mid_images)
    with pytest.raises(KeyboardInterrupt):
        write_coco_dataset(tmp_path, 3, split="val", seed=2, image_size=(48, 48), image_format="png")
    assert json.loads(ann.read_text()) == before
    assert {p.name: p.read_bytes() for p in (tmp_path / "val").iterdir()} == before_files


@pytest.mark.parametrize("n", [-3, 0, 2.5])
def test_writer_rejects_bad_image_counts(tmp_path, n):
    from pose_lab.data.synthetic import write_coco_dataset

    with pytest.raises(ValueError, match="num_images"):
        write_coco_dataset(tmp_path / "out", n)
    assert not (tmp_path / "out").exists()
