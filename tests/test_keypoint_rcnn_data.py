"""Keypoint R-CNN data and evaluation: targets, the scene stream, letterboxing, COCO results and AP."""

import json
import warnings

import numpy as np
import pytest

from pose_lab import runtime
from pose_lab.data.keypoint_rcnn import (
    SceneStream,
    coco_boxes_to_detector,
    coco_keypoints_to_detector,
    load_detection_split,
    scenes_to_targets,
)
from pose_lab.data.synthetic import render_scenes, write_coco_dataset
from pose_lab.evaluation.keypoint_rcnn import detections_to_coco, evaluate_keypoint_rcnn
from pose_lab.metrics.coco import coco_box_ap, coco_keypoint_ap


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def val_split(tmp_path_factory):
    """A tiny synthetic val split (8 images of 64x64, 1-3 people, subjects S9/S11), lossless PNG."""
    root = tmp_path_factory.mktemp("kprcnn_val")
    ann = write_coco_dataset(root, 8, split="val", seed=3, image_size=(64, 64), num_people=(1, 3),
                             image_format="png", subjects=("S9", "S11"))
    return ann, root / "val"


def oracle_outputs(split, extra_rows=2):
    """The split's targets as a detector's inference output (score 1, padding rows after num_detections)."""
    valid = split["valid"] > 0
    N, M = valid.shape
    D = M + extra_rows
    boxes = np.full((N, D, 4), 7.0, np.float32)  # padding rows hold garbage that must be dropped
    kps = np.full((N, D, 17, 2), 3.0, np.float32)
    scores = np.zeros((N, D), np.float32)
    num = valid.sum(1).astype(np.int32)
    for i in range(N):
        idx = np.flatnonzero(valid[i])
        boxes[i, :idx.size] = split["boxes"][i, idx]
        k = split["keypoints"][i, idx]
        centre = 0.5 * (split["boxes"][i, idx, None, :2] + split["boxes"][i, idx, None, 2:])
        # unlabelled keypoints at the box centre: a person without labelled keypoints is then
        # matched to its (ignored) ground truth by pycocotools, not counted as a false positive
        kps[i, :idx.size] = np.where(k[..., 2:] > 0, k[..., :2], centre)
        scores[i, :idx.size] = 1.0
    return {"boxes": boxes, "scores": scores, "keypoints": kps,
            "keypoint_scores": np.full((N, D, 17), 0.9, np.float32), "num_detections": num}


# --------------------------------------------------------------------------
# targets from rendered scenes
# --------------------------------------------------------------------------
def test_targets_shapes_padding_and_frame():
    scenes = render_scenes(6, (64, 64), num_people=(0, 3), seed=1)
    t = scenes_to_targets(scenes, max_people=4)
    assert t["images"].shape == (6, 64, 64, 3) and t["images"].dtype == np.float32
    assert t["boxes"].shape == (6, 4, 4) and t["keypoints"].shape == (6, 4, 17, 3) and t["valid"].shape == (6, 4)
    np.testing.assert_array_equal(t["images"], np.stack([s["image"] for s in scenes]).astype(np.float32))
    for i, sc in enumerate(scenes):
        keep = (sc["boxes"][:, 2] > 0) & (sc["boxes"][:, 3] > 0)
        n = int(keep.sum())
        np.testing.assert_array_equal(t["valid"][i], [1.0] * n + [0.0] * (4 - n))
        assert not t["boxes"][i, n:].any() and not t["keypoints"][i, n:].any()
        # the closed form of the frame change: boxes (x, y, x + w, y + h), keypoints + 0.5, v = 0 -> 0, 0, 0
        b = sc["boxes"][keep]
        np.testing.assert_allclose(t["boxes"][i, :n], np.c_[b[:, :2], b[:, :2] + b[:, 2:]])
        kp = sc["keypoints"][keep]
        lab = kp[..., 2] > 0
        np.testing.assert_allclose(t["keypoints"][i, :n][lab][:, :2], kp[lab][:, :2] + 0.5, atol=1e-5)
        np.testing.assert_array_equal(t["keypoints"][i, :n][~lab], 0.0)
    assert t["valid"].sum() > 0 and (t["valid"] == 0).any()  # both persons and padding occur


def test_visible_keypoints_lie_in_their_boxes():
    t = scenes_to_targets(render_scenes(30, (64, 64), num_people=(1, 4), seed=2), max_people=4)
    b, k = t["boxes"], t["keypoints"]
    vis = (k[..., 2] == 2) & (t["valid"][..., None] > 0)
    assert vis.sum() > 300
    x, y = k[..., 0], k[..., 1]
    # a visible keypoint is on (or within a pixel of) its person's silhouette, which the box bounds
    out = np.maximum(np.maximum(b[..., None, 0] - x, x - b[..., None, 2]),
                     np.maximum(b[..., None, 1] - y, y - b[..., None, 3]))
    assert out[vis].max() <= 1.0


def test_max_people_keeps_the_largest():
    scenes = render_scenes(5, (64, 64), num_people=4, seed=4)
    with pytest.warns(UserWarning, match="keeping the 2 largest"):
        t = scenes_to_targets(scenes, max_people=2)
    for i, sc in enumerate(scenes):
        b = sc["boxes"][(sc["boxes"][:, 2] > 0) & (sc["boxes"][:, 3] > 0)]
        areas = np.sort(b[:, 2] * b[:, 3])[::-1]
        got = t["boxes"][i]
        got_areas = np.sort((got[:, 2] - got[:, 0]) * (got[:, 3] - got[:, 1]))[::-1]
        np.testing.assert_allclose(got_areas, areas[:2])


def test_targets_bad_input():
    sc = render_scenes(2, (64, 64), seed=0)
    with pytest.raises(ValueError, match="max_people"):
        scenes_to_targets(sc, 0)
    with pytest.raises(ValueError, match="empty"):
        scenes_to_targets([], 2)
    other = render_scenes(1, (48, 64), seed=0)
    with pytest.raises(ValueError, match=r"scenes\[2\].*one size"):
        scenes_to_targets(sc + other, 4)
    with pytest.raises(ValueError, match=r"scenes\[0\].*'boxes'"):
        scenes_to_targets([{"image": sc[0]["image"], "keypoints": sc[0]["keypoints"]}], 4)


# --------------------------------------------------------------------------
# the stream
# --------------------------------------------------------------------------
def test_stream_deterministic_and_new_each_epoch():
    a = SceneStream(batch_size=2, steps_per_epoch=3, seed=5, image_size=(64, 64), num_people=(1, 3))
    b = SceneStream(batch_size=2, steps_per_epoch=3, seed=5, image_size=(64, 64), num_people=(1, 3))
    assert len(a) == 3 and a.max_people == 3
    x1, y1 = a[1]
    x1b, y1b = b[1]  # another instance, same seed: byte-identical
    np.testing.assert_array_equal(x1, x1b)
    for k in ("boxes", "keypoints", "valid"):
        np.testing.assert_array_equal(y1[k], y1b[k])
    assert x1.shape == (2, 64, 64, 3) and y1["keypoints"].shape == (2, 3, 17, 3)
    assert not np.array_equal(a[0][0], x1)  # other batch, other data
    a.on_epoch_end()
    x1e, _ = a[1]
    assert not np.array_equal(x1e, x1)  # same index, next epoch: new data
    np.testing.assert_array_equal(a.batch(1, epoch=0)["images"], x1)  # epoch 0 is reproducible
    with pytest.raises(IndexError):
        a[3]
    with pytest.raises(ValueError, match="batch_size"):
        SceneStream(batch_size=0)
    with pytest.raises(ValueError, match="num_people"):
        SceneStream(num_people=(3, 1))


# --------------------------------------------------------------------------
# loading COCO files, letterboxing, and the ground-truth round trip
# --------------------------------------------------------------------------
def test_load_split_same_size_matches_the_file(val_split):
    ann, img_dir = val_split
    s = load_detection_split(ann, img_dir, image_size=(64, 64), max_people=4)
    data = json.loads(ann.read_text())
    assert list(s["image_ids"]) == [im["id"] for im in data["images"]]
    np.testing.assert_array_equal(s["scales"], 1.0)
    np.testing.assert_array_equal(s["offsets"], 0.0)
    from PIL import Image

    first = np.asarray(Image.open(img_dir / data["images"][0]["file_name"]).convert("RGB"))
    np.testing.assert_array_equal(s["images"][0], first.astype(np.float32))
    anns = [a for a in data["annotations"] if a["image_id"] == data["images"][0]["id"]]
    n = len(anns)
    assert s["valid"][0].sum() == n
    np.testing.assert_allclose(s["boxes"][0, :n], coco_boxes_to_detector([a["bbox"] for a in anns]))
    np.testing.assert_allclose(s["keypoints"][0, :n],
                               coco_keypoints_to_detector(np.reshape([a["keypoints"] for a in anns], (n, 17, 3))))


def test_letterbox_maps_back_exactly(val_split):
    ann, img_dir = val_split
    s = load_detection_split(ann, img_dir, image_size=(96, 80), max_people=4)
    # 64x64 into 96 (h) x 80 (w): scale 80 / 64, the 80x80 image centred vertically
    np.testing.assert_allclose(s["scales"], 1.25)
    np.testing.assert_array_equal(s["offsets"], [[0, 8]] * len(s["image_ids"]))
    assert not s["images"][:, :8].any() and not s["images"][:, 88:].any()  # padding is black
    assert s["images"][:, 8:88].mean() > 10
    box_res, kp_res = detections_to_coco(s["image_ids"], oracle_outputs(s), s["scales"], s["offsets"])
    data = json.loads(ann.read_text())
    assert len(box_res) == len(kp_res) == len(data["annotations"])  # padding rows dropped
    for a, b, k in zip(data["annotations"], box_res, kp_res):  # the oracle keeps the file's order
        assert b["image_id"] == k["image_id"] == a["image_id"]
        np.testing.assert_allclose(b["bbox"], a["bbox"], atol=1e-4)
        gt = np.reshape(a["keypoints"], (17, 3))
        got = np.reshape(k["keypoints"], (17, 3))
        lab = gt[:, 2] > 0
        np.testing.assert_allclose(got[lab, :2], gt[lab, :2], atol=1e-4)
        np.testing.assert_allclose(got[:, 2], 0.9, atol=1e-6)  # the keypoint probability
        assert k["score"] == b["score"] == 1.0  # keypoint_score="box"


@pytest.mark.parametrize("image_size", [(64, 64), (96, 80)])
def test_ground_truth_round_trip_scores_ap_one(val_split, image_size):
    ann, img_dir = val_split
    s = load_detection_split(ann, img_dir, image_size=image_size, max_people=4)
    out = oracle_outputs(s)
    box_res, kp_res = detections_to_coco(s["image_ids"], out, s["scales"], s["offsets"])
    box = coco_box_ap(ann, box_res)
    kp = coco_keypoint_ap(ann, kp_res)
    assert list(box)[:6] == ["AP", "AP50", "AP75", "APs", "APm", "APl"] and len(box) == 12
    assert box["AP"] == pytest.approx(1.0) and box["AR100"] == pytest.approx(1.0)
    assert kp["AP"] == pytest.approx(1.0)
    # a wrong frame convention (no -0.5 on the way back) or a shifted prediction scores lower
    moved = dict(out, boxes=out["boxes"] + np.float32(3.0), keypoints=out["keypoints"] + np.float32(2.0))
    box_res2, kp_res2 = detections_to_coco(s["image_ids"], moved, s["scales"], s["offsets"])
    assert coco_box_ap(ann, box_res2)["AP"] < 0.9
    assert coco_keypoint_ap(ann, kp_res2)["AP"] < 0.9


def test_half_pixel_convention_is_measurable(val_split, monkeypatch):
    """Forgetting the 0.5 on the way back (or shifting boxes by half a pixel) costs AP on small people."""
    import pose_lab.evaluation.keypoint_rcnn as ev

    ann, img_dir = val_split
    s = load_detection_split(ann, img_dir, image_size=(96, 80), max_people=4)
    out = oracle_outputs(s)
    monkeypatch.setattr(ev, "PIXEL_OFFSET", 0.0)
    _, kp_res = ev.detections_to_coco(s["image_ids"], out, s["scales"], s["offsets"])
    assert coco_keypoint_ap(ann, kp_res)["AP"] < 0.8
    monkeypatch.undo()
    box_res, _ = ev.detections_to_coco(s["image_ids"], dict(out, boxes=out["boxes"] + np.float32(0.5)),
                                       s["scales"], s["offsets"])
    assert coco_box_ap(ann, box_res)["AP"] < 0.95


def test_evaluate_keypoint_rcnn_with_an_oracle(val_split, tmp_path):
    ann, img_dir = val_split
    s = load_detection_split(ann, img_dir, image_size=(64, 64), max_people=4)
    full = oracle_outputs(s)
    calls = []

    def model(images):  # any callable returning the documented dict; batches come in order
        a = sum(calls)
        calls.append(len(images))
        return {k: v[a:a + len(images)] for k, v in full.items()}

    res = evaluate_keypoint_rcnn(model, ann, img_dir, image_size=(64, 64), batch_size=3, max_people=4,
                                 results_dir=tmp_path / "res", split=s)
    assert calls == [3, 3, 2]
    assert res["box"]["AP"] == pytest.approx(1.0) and res["keypoints"]["AP"] == pytest.approx(1.0)
    assert json.loads((tmp_path / "res" / "bbox_results.json").read_text()) == res["box_results"]
    assert len(json.loads((tmp_path / "res" / "keypoint_results.json").read_text())) == len(res["keypoint_results"])


def test_real_coco_sample_round_trip():
    root = runtime.shared_data_dir()
    if root is None or not (root / "coco_val2017_mini").is_dir():
        pytest.skip("real COCO sample (data/samples/real/coco_val2017_mini) not found")
    d = root / "coco_val2017_mini"
    ann = d / "person_keypoints_val2017_mini.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # max_people=20 holds every person of the sample
        s = load_detection_split(ann, d / "val2017", image_size=(128, 128), max_people=20)
    assert s["images"].shape == (28, 128, 128, 3)
    assert (s["scales"] < 1).all() and s["original_sizes"].max() == 640
    box_res, kp_res = detections_to_coco(s["image_ids"], oracle_outputs(s), s["scales"], s["offsets"],
                                         keypoint_score="box_x_keypoints")
    assert coco_box_ap(ann, box_res)["AP"] == pytest.approx(1.0)
    assert coco_keypoint_ap(ann, kp_res)["AP"] == pytest.approx(1.0)
    assert kp_res[0]["score"] == pytest.approx(0.9)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
def test_bad_input_errors(val_split, tmp_path):
    ann, img_dir = val_split
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_detection_split(tmp_path / "nope.json", img_dir)
    with pytest.raises(FileNotFoundError, match="image folder"):
        load_detection_split(ann, tmp_path / "no_images")
    data = json.loads(ann.read_text())
    bad = json.loads(json.dumps(data))
    bad["annotations"][0]["keypoints"] = bad["annotations"][0]["keypoints"][:-1]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"bad\.json.*'keypoints'"):
        load_detection_split(p, img_dir)
    wrong = json.loads(json.dumps(data))
    wrong["images"][1]["width"] = 65
    p2 = tmp_path / "wrong_size.json"
    p2.write_text(json.dumps(wrong))
    with pytest.raises(ValueError, match=r"wrong_size\.json.*'width'"):
        load_detection_split(p2, img_dir)
    with pytest.raises(ValueError, match="max_people"):
        load_detection_split(ann, img_dir, max_people=0)

    s = load_detection_split(ann, img_dir, image_size=(64, 64), max_people=4)
    out = oracle_outputs(s)
    with pytest.raises(ValueError, match="keypoint_scores"):
        detections_to_coco(s["image_ids"], {k: v for k, v in out.items() if k != "keypoint_scores"})
    with pytest.raises(ValueError, match=r"outputs\['boxes'\]"):
        detections_to_coco(s["image_ids"][:3], out)
    with pytest.raises(ValueError, match="keypoint_score"):
        detections_to_coco(s["image_ids"], out, keypoint_score="mean")
    nan = dict(out, scores=np.where(out["scores"] > 0, np.nan, 0.0))
    with pytest.raises(ValueError, match="non-finite"):
        detections_to_coco(s["image_ids"], nan)
    box_res, _ = detections_to_coco(s["image_ids"], out)
    with pytest.raises(ValueError, match="'bbox'"):
        coco_box_ap(ann, [dict(box_res[0], bbox=[0, 0, -1, 3])])
    with pytest.raises(ValueError, match="image_id"):
        coco_box_ap(ann, [dict(box_res[0], image_id=999)])
    assert coco_box_ap(ann, [])["AP"] == 0.0


# --------------------------------------------------------------------------
# the top-down comparison (notebook 03)
# --------------------------------------------------------------------------
class OracleDetector:
    """Returns the split's ground truth: as detections, and as keypoints for boxes it recognises."""

    def __init__(self, split):
        self.split, self.out, self.seen = split, oracle_outputs(split), 0

    def __call__(self, images):
        a = self.seen
        self.seen += len(images)
        return {k: v[a:a + len(images)] for k, v in self.out.items()}

    def keypoints_for_boxes(self, images, boxes, valid):
        s = self.split
        idx = [int(np.flatnonzero((s["images"] == im).all(axis=(1, 2, 3)))[0]) for im in images]
        kps = np.zeros(boxes.shape[:2] + (17, 2), np.float32)
        for r, i in enumerate(idx):
            for d in np.flatnonzero(valid[r]):
                m = int(np.flatnonzero(np.abs(s["boxes"][i] - boxes[r, d]).max(-1) < 1e-4)[0])
                k = s["keypoints"][i, m]
                centre = 0.5 * (s["boxes"][i, m, :2] + s["boxes"][i, m, 2:])
                kps[r, d] = np.where(k[:, 2:] > 0, k[:, :2], centre)
        return kps, np.where(valid[..., None], 0.9, 0.0) * np.ones(kps.shape[:3])


def test_compare_with_top_down_rows_and_the_same_boxes(val_split):
    import keras

    from pose_lab.data.coco import load_coco_keypoints
    from pose_lab.evaluation.keypoint_rcnn import compare_with_top_down, top_down_on_detections
    from pose_lab.evaluation.keypoints2d import predict_on_boxes
    from pose_lab.models.keypoints2d import build_heatmap_model

    ann, img_dir = val_split
    s = load_detection_split(ann, img_dir, image_size=(64, 64), max_people=4)
    keras.utils.set_random_seed(0)
    pose = build_heatmap_model("small", (64, 64, 3), head_filters=8, backbone_kwargs={"widths": (8, 8, 8, 8)})
    rows = compare_with_top_down(OracleDetector(s), pose, ann, img_dir, image_size=(64, 64), split=s,
                                 batch_size=3, flip_test=False)
    records = load_coco_keypoints(ann, img_dir, min_keypoints=1)
    assert set(rows) - {"_results"} == {"top-down, ground-truth boxes", "Keypoint R-CNN head, ground-truth boxes",
                                        "top-down, Keypoint R-CNN boxes", "Keypoint R-CNN, end to end"}
    # both ground-truth rows predict the same persons: those with a labelled keypoint
    assert rows["top-down, ground-truth boxes"]["persons"] == len(records)
    assert rows["Keypoint R-CNN head, ground-truth boxes"]["persons"] == len(records)
    # the oracle's keypoints score 1 with the ground-truth boxes and end to end; an untrained pose net does not
    assert rows["Keypoint R-CNN head, ground-truth boxes"]["AP"] == pytest.approx(1.0)
    assert rows["Keypoint R-CNN, end to end"]["AP"] == pytest.approx(1.0)
    assert rows["top-down, ground-truth boxes"]["AP"] < 0.5
    assert rows["top-down, Keypoint R-CNN boxes"]["persons"] == int(s["valid"].sum())
    # the top-down model on ground-truth boxes given as detections = on the records themselves
    box_res = [{"image_id": r.image_id, "bbox": [float(v) for v in r.bbox], "score": 1.0} for r in records]
    res = top_down_on_detections(pose, box_res, ann, img_dir, flip_test=False)
    kp, _ = predict_on_boxes(pose, records, flip_test=False)
    got = np.array([r["keypoints"] for r in res]).reshape(-1, 17, 3)[..., :2]
    np.testing.assert_allclose(got, kp, atol=1e-3)
    assert top_down_on_detections(pose, box_res, ann, img_dir, min_score=2.0) == []
    with pytest.raises(ValueError, match="image ids"):
        top_down_on_detections(pose, [dict(box_res[0], image_id=10 ** 6)], ann, img_dir)
    with pytest.raises(ValueError, match="boxes"):
        predict_on_boxes(pose, [str(img_dir / "x.png")], np.array([[0, 0, -1, 4]], np.float32))
