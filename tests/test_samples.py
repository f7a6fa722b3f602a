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


# ------------------------------------------------------------------ real samples

REAL = COMMITTED / "real"


def test_real_samples_match_their_manifest_and_licence_file():
    import hashlib

    manifest = samples.real_samples_manifest()["files"]
    on_disk = sorted(str(p.relative_to(REAL)) for p in REAL.rglob("*") if p.is_file())
    assert on_disk == sorted(manifest), "data/samples/real and pose_lab/data/real_samples.json disagree"
    for rel, meta in manifest.items():
        data = (REAL / rel).read_bytes()
        assert len(data) == meta["size"] and hashlib.sha256(data).hexdigest() == meta["sha256"], rel
    # every COCO image is attributed with its licence, and only redistributable licences are shipped
    ann = json.loads((REAL / "coco_val2017_mini" / "person_keypoints_val2017_mini.json").read_text())
    licences = {lic["id"]: lic["url"] for lic in ann["licenses"]}
    text = (REAL / "LICENSE.md").read_text()
    for image in ann["images"]:
        url = licences[image["license"]]
        assert "/by/" in url or "/by-sa/" in url or "/by-nd/" in url, (image["file_name"], url)
        row = next(line for line in text.splitlines() if image["file_name"] in line)
        assert url in row and image["flickr_url"] in row
    assert "mocap.cs.cmu.edu" in text


def test_real_samples_load_with_the_kits_loaders():
    from pose_lab.data import bvh

    folder = REAL / "coco_val2017_mini"
    records = coco.load_coco_keypoints(folder / "person_keypoints_val2017_mini.json", folder / "val2017")
    assert len(records) >= 18 and all(r.keypoints.shape == (17, 3) for r in records)
    clip = bvh.load_bvh(REAL / "cmu_mocap" / "131_01.bvh")
    assert clip.to_h36m17().shape[1:] == (17, 3)


def _serve(folder):
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def test_real_samples_download_outside_a_checkout(tmp_path, capsys):
    """Where only the package is installed (Colab), the samples are fetched and checked file by file."""
    server, url = _serve(REAL)
    try:
        got = samples.real_samples_dir(dest=tmp_path / "ok", base_url=url)
        assert got == (tmp_path / "ok").resolve()
        for rel in samples.real_samples_manifest()["files"]:
            assert (got / rel).read_bytes() == (REAL / rel).read_bytes()
    finally:
        server.shutdown()
    # a server with one altered file: the download fails loudly, returns None, keeps no bad file
    import shutil

    bad = tmp_path / "served"
    shutil.copytree(REAL, bad)
    (bad / "cmu_mocap" / "131_02.bvh").write_text("HIERARCHY\n")
    server, url = _serve(bad)
    try:
        assert samples.real_samples_dir(dest=tmp_path / "bad", base_url=url) is None
    finally:
        server.shutdown()
    assert "could not download" in capsys.readouterr().out
    assert not (tmp_path / "bad" / "cmu_mocap" / "131_02.bvh").exists()
