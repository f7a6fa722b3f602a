"""The committed samples in data/samples load with the real loaders and match the engine."""

import json
from pathlib import Path

import numpy as np
import pytest

from pose_lab.data import coco, h36m, samples

COMMITTED = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    return samples.write_samples(tmp_path_factory.mktemp("samples"))


def test_committed_coco_sample_loads_and_matches_engine(regenerated):
    path = COMMITTED / "coco" / "annotations" / "person_keypoints_sample.json"
    records = coco.load_coco_keypoints(path, COMMITTED / "coco" / "sample")
    assert len(records) >= samples.COCO_IMAGES
    assert all(r.keypoints.shape == (17, 3) for r in records)
    committed = json.loads(path.read_text())
    fresh = json.loads(Path(regenerated["coco_json"]).read_text())
    assert [a["keypoints"] for a in committed["annotations"]] == [a["keypoints"] for a in fresh["annotations"]]
    assert len(committed["images"]) == samples.COCO_IMAGES


def test_committed_h36m_sample_loads_and_matches_engine(regenerated):
    data = h36m.load_h36m(COMMITTED / "h36m" / "data_3d_h36m.npz", COMMITTED / "h36m" / "data_2d_h36m_gt.npz")
    assert set(data.subjects) == set(samples.H36M_SUBJECTS)
    fresh = np.load(regenerated["h36m_3d"], allow_pickle=True)["positions_3d"].item()
    kept = np.load(COMMITTED / "h36m" / "data_3d_h36m.npz", allow_pickle=True)["positions_3d"].item()
    assert fresh.keys() == kept.keys()
    for s in fresh:
        assert fresh[s].keys() == kept[s].keys()
        for a in fresh[s]:
            assert kept[s][a].shape == (samples.H36M_FRAMES, 32, 3)
            np.testing.assert_allclose(kept[s][a], fresh[s][a], atol=1e-5)
