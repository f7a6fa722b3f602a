"""Faults (issue 12) that belong to no single data/metric test file: writers interrupted part-way."""

import json

import numpy as np
import pytest


def test_to_coco_results_never_truncates_the_previous_file(tmp_path, monkeypatch):
    from pose_lab.evaluation import keypoints2d as kp2d

    path = tmp_path / "results.json"
    kp = np.full((2, 17, 2), 10.0)
    first = kp2d.to_coco_results([1, 2], kp, path=path)
    assert json.loads(path.read_text()) == first
    real_dump = json.dump

    def dump_then_fail(obj, fh, **kwargs):  # a crash half-way through the write
        fh.write("[{\"image_id\": 1, ")
        raise KeyboardInterrupt

    monkeypatch.setattr(kp2d.json, "dump", dump_then_fail)
    with pytest.raises(KeyboardInterrupt):
        kp2d.to_coco_results([1, 2], kp + 5.0, path=path)
    monkeypatch.setattr(kp2d.json, "dump", real_dump)
    assert json.loads(path.read_text()) == first  # the previous results, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temporary file left
    second = kp2d.to_coco_results([1, 2], kp + 5.0, path=path)
    assert json.loads(path.read_text()) == second != first
