"""Human3.6M format: synthetic writer -> files -> loader, projections, splits, normalisation, bad input."""

import os

import numpy as np
import pytest

from pose_lab.data.h36m import (
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    NormStats,
    action_class,
    load_h36m,
)
from pose_lab.data.synthetic import generate_h36m, generate_sequence, h36m_rig
from pose_lab.geometry import h36m_cameras, project_to_2d, world_to_camera
from pose_lab.skeletons import H36M17_FROM_H36M32

SUBJECTS = ["S1", "S9"]
ACTS = ["Walking", "Squatting"]
T = 50
SEED = 4


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    out = tmp_path_factory.mktemp("h36m")
    return generate_h36m(out, subjects=SUBJECTS, actions=ACTS, frames_per_sequence=T, seed=SEED)


@pytest.fixture(scope="module")
def data(files):
    return load_h36m(files["3d"], files["2d"])


def _save(path, **kw):
    np.savez_compressed(path, **kw)
    return path


# --------------------------------------------------------------------------- file format
def test_files_follow_the_videopose3d_layout(files):
    assert files["3d"].name == "data_3d_h36m.npz" and files["2d"].name == "data_2d_h36m_gt.npz"
    assert not [p for p in os.listdir(files["3d"].parent) if p.endswith(".tmp")]   # atomic writes left no temp
    # read exactly as VideoPose3D does
    p3 = np.load(files["3d"], allow_pickle=True)["positions_3d"].item()
    z2 = np.load(files["2d"], allow_pickle=True)
    p2, meta = z2["positions_2d"].item(), z2["metadata"].item()
    assert sorted(p3) == SUBJECTS and sorted(p2) == SUBJECTS
    names = ["Squatting 1", "Squatting 2", "Walking 1", "Walking 2"]
    for s in SUBJECTS:
        assert sorted(p3[s]) == names and sorted(p2[s]) == names
        for a in names:
            assert p3[s][a].shape == (T, 32, 3) and p3[s][a].dtype == np.float32
            assert isinstance(p2[s][a], list) and len(p2[s][a]) == 4
            for v in p2[s][a]:
                assert v.shape == (T, 17, 2) and v.dtype == np.float32
    assert meta == {"layout_name": "h36m", "num_joints": 17,
                    "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    # metres: a standing pelvis is about 0.8-1.1 m above the floor
    hips = np.concatenate([p3[s][a][:, 0, 2] for s in SUBJECTS for a in names if a.startswith("Walking")])
    assert 0.7 < hips.mean() < 1.2
    # the 32-joint extras: Spine duplicates Hips, the clavicle roots duplicate the thorax
    x = p3["S1"]["Walking 1"]
    np.testing.assert_array_equal(x[:, 11], x[:, 0])
    np.testing.assert_array_equal(x[:, 16], x[:, 13])
    np.testing.assert_array_equal(x[:, 24], x[:, 13])
    assert np.linalg.norm(x[:, 4] - x[:, 3], axis=-1).min() > 0.05        # toes in front of the ankle


def test_writer_is_deterministic(tmp_path, files):
    again = generate_h36m(tmp_path, subjects=SUBJECTS, actions=ACTS, frames_per_sequence=T, seed=SEED)
    a = np.load(files["3d"], allow_pickle=True)["positions_3d"].item()
    b = np.load(again["3d"], allow_pickle=True)["positions_3d"].item()
    for s in a:
        for k in a[s]:
            np.testing.assert_array_equal(a[s][k], b[s][k])


def test_2d_file_matches_geometry_projection(files):
    """Independent recomputation: 3D file (m) -> mm -> camera -> project_to_2d with the H36M cameras."""
    p3 = np.load(files["3d"], allow_pickle=True)["positions_3d"].item()
    p2 = np.load(files["2d"], allow_pickle=True)["positions_2d"].item()
    for s in SUBJECTS:
        cams = h36m_cameras(s)
        for a, x in p3[s].items():
            world_mm = x[:, list(H36M17_FROM_H36M32)].astype(np.float64) * 1000.0
            for cam, uv in zip(cams, p2[s][a]):
                ref = project_to_2d(world_to_camera(world_mm, cam), cam)
                np.testing.assert_allclose(uv, ref, atol=5e-3)          # float32 metres -> ~1e-3 px
                assert (uv > 0).all() and (uv[..., 0] < cam.width).all() and (uv[..., 1] < cam.height).all()


# --------------------------------------------------------------------------- loader
def test_round_trip_reproduces_generator_arrays(data):
    assert data.subjects == SUBJECTS
    assert data.actions == sorted(ACTS)
    for s in SUBJECTS:
        for act in ACTS:
            for k in range(2):
                seq = generate_sequence(act, s, T, seed=(SEED, k))
                got = data.positions_world[s][f"{act} {k + 1}"]
                assert got.shape == (T, 17, 3)
                np.testing.assert_allclose(got, seq.joints, atol=1e-3)   # mm, float32 metres precision
                cams = data.cameras[s]
                assert cams == h36m_rig(s)
                for i, cam in enumerate(cams):
                    np.testing.assert_allclose(data.positions_cam[s][f"{act} {k + 1}"][i],
                                               world_to_camera(seq.joints, cam), atol=1e-2)
                    np.testing.assert_allclose(data.positions_2d[s][f"{act} {k + 1}"][i],
                                               project_to_2d(world_to_camera(seq.joints, cam), cam), atol=5e-3)


def test_projection_when_2d_file_is_omitted(files, data):
    d = load_h36m(files["3d"])
    assert d.path_2d is None
    for s, a in data.sequences():
        for i in range(4):
            np.testing.assert_allclose(d.positions_2d[s][a][i], data.positions_2d[s][a][i], atol=5e-3)


def test_splits_and_lifting_arrays(data):
    assert data.train_subjects == TRAIN_SUBJECTS == ("S1", "S5", "S6", "S7", "S8")
    assert data.test_subjects == TEST_SUBJECTS == ("S9", "S11")
    assert data.split("train") == ["S1"] and data.split("test") == ["S9"]
    x, y, acts, subs = data.lifting_arrays("train")
    n = 4 * 4 * T                      # 4 sequences x 4 cameras x T frames
    assert x.shape == (n, 17, 2) and y.shape == (n, 17, 3)
    assert set(subs) == {"S1"} and sorted(set(acts)) == sorted(ACTS)
    np.testing.assert_array_equal(y[:, 0], 0.0)                          # root-centred
    # camera frame: the unrotated pose is in front of the camera and matches the projection
    first = data.positions_cam["S1"]["Squatting 1"][0]
    np.testing.assert_allclose(y[:T], first - first[:, :1], atol=1e-2)
    np.testing.assert_allclose(x[:T], data.positions_2d["S1"]["Squatting 1"][0])
    assert (first[..., 2] > 1000).all()
    x9, y9, _, s9 = data.lifting_arrays("test", actions=["Walking"], cameras=[1, 3], stride=5)
    assert x9.shape == (2 * 2 * T // 5, 17, 2) and set(s9) == {"S9"}
    with pytest.raises(ValueError, match="stride"):
        data.lifting_arrays("train", stride=0)
    with pytest.raises(ValueError, match="S5"):
        data.lifting_arrays(["S5"])
    assert action_class("Walking 2") == "Walking" and action_class("WalkDog") == "WalkDog"


def test_norm_stats_train_only_and_round_trip(data, tmp_path):
    from pose_lab.data import normalization

    assert NormStats is normalization.NormStats                           # one type, re-exported here
    st = data.norm_stats()
    assert (st.root, st.drop_root_2d, st.drop_root_3d) == (0, False, True)  # the Martinez layout
    assert st.mean_2d.shape == (17, 2) and st.mean_3d.shape == (16, 3)
    x, y, _, _ = data.lifting_arrays("train")
    # Martinez et al.: 2D not root-centred; 3D root-centred with the root dropped
    np.testing.assert_allclose(st.mean_2d, x.mean(0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(st.std_2d, x.std(0), rtol=1e-4)
    np.testing.assert_allclose(st.mean_3d, y[:, 1:].mean(0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(st.std_3d, y[:, 1:].std(0), rtol=1e-4)
    everyone = data.norm_stats(subjects=None)
    assert not np.allclose(everyone.mean_3d, st.mean_3d)                  # the test subject is excluded
    xn, yn = st.normalize(x), st.normalize(y)
    assert yn.shape == (len(y), 16, 3)
    np.testing.assert_allclose(xn.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(yn.std(0), 1, atol=1e-5)
    np.testing.assert_allclose(st.denormalize(xn), x, atol=1e-3)
    np.testing.assert_allclose(st.denormalize(yn), y, atol=1e-3)          # zero root restored
    # flat vectors as dense layers use them
    np.testing.assert_allclose(st.normalize(y.reshape(-1, 51)), yn.reshape(-1, 48), atol=1e-9)
    np.testing.assert_allclose(st.denormalize(yn.reshape(-1, 48)), y.reshape(-1, 51), atol=1e-3)
    np.testing.assert_allclose(st.normalize(x.reshape(-1, 34)), xn.reshape(-1, 34), atol=1e-9)
    # save / load
    path = st.save(tmp_path / "stats.npz")
    back = NormStats.load(path)
    for k in ("mean_2d", "std_2d", "mean_3d", "std_3d"):
        np.testing.assert_array_equal(getattr(back, k), getattr(st, k))
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 2\)"):
        st.normalize_2d(np.zeros((3, 16, 2)))
    with pytest.raises(ValueError, match="16, 3"):
        st.denormalize_3d(np.zeros((3, 17, 3)))
    with pytest.raises(FileNotFoundError, match="nostats.npz"):
        NormStats.load(tmp_path / "nostats.npz")
    with pytest.raises(ValueError, match="mean_3d"):
        NormStats.load(_save(tmp_path / "bad_stats.npz", mean_2d=st.mean_2d, std_2d=st.std_2d))


# --------------------------------------------------------------------------- bad input
def test_missing_file_names_it(tmp_path, files):
    with pytest.raises(FileNotFoundError, match="nothere_3d.npz"):
        load_h36m(tmp_path / "nothere_3d.npz")
    with pytest.raises(FileNotFoundError, match="nothere_2d.npz"):
        load_h36m(files["3d"], tmp_path / "nothere_2d.npz")


def test_npz_without_positions_3d(tmp_path):
    p = _save(tmp_path / "wrong.npz", poses=np.zeros((2, 17, 3)))
    with pytest.raises(ValueError, match=r"wrong\.npz.*positions_3d"):
        load_h36m(p)
    q = tmp_path / "garbage.npz"
    q.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_h36m(q)


def test_wrong_joint_count(tmp_path):
    p = _save(tmp_path / "j20.npz", positions_3d={"S1": {"Walking": np.zeros((5, 20, 3), np.float32)}})
    with pytest.raises(ValueError, match=r"j20\.npz: S1/Walking: expected shape \(N, 17\|32, 3\), got \(5, 20, 3\)"):
        load_h36m(p)
    text = _save(tmp_path / "text.npz", positions_3d={"S1": {"Walking": np.full((5, 17, 3), "a")}})
    with pytest.raises(ValueError, match=r"text\.npz: S1/Walking: expected a numeric array"):
        load_h36m(text)
    ok17 = _save(tmp_path / "j17.npz", positions_3d={"S1": {"Walking": np.ones((5, 17, 3), np.float32)}})
    assert load_h36m(ok17).positions_world["S1"]["Walking"].shape == (5, 17, 3)


def test_nan_names_subject_and_action(tmp_path):
    x = np.ones((5, 32, 3), np.float32)
    x[2, 7, 1] = np.nan
    p = _save(tmp_path / "nan.npz", positions_3d={"S9": {"Posing 1": x}})
    with pytest.raises(ValueError, match=r"S9/Posing 1.*NaN"):
        load_h36m(p)


def test_millimetres_instead_of_metres(tmp_path):
    p = _save(tmp_path / "mm.npz", positions_3d={"S1": {"Walking": np.full((5, 32, 3), 900.0, np.float32)}})
    with pytest.raises(ValueError, match="metres"):
        load_h36m(p)


def test_bad_2d_files(tmp_path, files):
    p2 = np.load(files["2d"], allow_pickle=True)["positions_2d"].item()
    no_key = _save(tmp_path / "no_key_2d.npz", keypoints=np.zeros(3))
    with pytest.raises(ValueError, match=r"no_key_2d\.npz.*positions_2d"):
        load_h36m(files["3d"], no_key)
    three = {s: {a: v[:3] for a, v in acts.items()} for s, acts in p2.items()}
    p = _save(tmp_path / "three_cams.npz", positions_2d=three)
    with pytest.raises(ValueError, match="4 arrays"):
        load_h36m(files["3d"], p)
    short = {s: {a: [x[:10] for x in v] for a, v in acts.items()} for s, acts in p2.items()}
    p = _save(tmp_path / "short.npz", positions_2d=short)
    with pytest.raises(ValueError, match="10 frames of 2D"):
        load_h36m(files["3d"], p)
    nan = {s: {a: [x.copy() for x in v] for a, v in acts.items()} for s, acts in p2.items()}
    nan["S9"]["Walking 2"][1][0, 0, 0] = np.nan
    p = _save(tmp_path / "nan2d.npz", positions_2d=nan)
    with pytest.raises(ValueError, match=r"S9/Walking 2 camera 1.*NaN"):
        load_h36m(files["3d"], p)
    longer = {s: {a: [np.concatenate([x, x]) for x in v] for a, v in acts.items()} for s, acts in p2.items()}
    d = load_h36m(files["3d"], _save(tmp_path / "long.npz", positions_2d=longer))    # trimmed, as VideoPose3D
    assert d.positions_2d["S1"]["Walking 1"][0].shape == (T, 17, 2)
    # COCO-layout detections are converted to H36M-17; shape and NaN are checked as for H36M
    coco = {"layout_name": "coco", "num_joints": 17}
    d = load_h36m(files["3d"], _save(tmp_path / "coco.npz", positions_2d=p2, metadata=coco))
    assert d.positions_2d["S1"]["Walking 1"][0].shape == (T, 17, 2)
    assert not np.allclose(d.positions_2d["S1"]["Walking 1"][0], p2["S1"]["Walking 1"][0])
    cut = {s: {a: [x[:, :16] for x in v] for a, v in acts.items()} for s, acts in p2.items()}
    with pytest.raises(ValueError, match=r"coco16\.npz: S1/\w+ \d camera 0: expected shape \(N, 17, 2\), got \(50, 16, 2\)"):
        load_h36m(files["3d"], _save(tmp_path / "coco16.npz", positions_2d=cut, metadata=coco))
    with pytest.raises(ValueError, match=r"S9/Walking 2 camera 1.*NaN"):
        load_h36m(files["3d"], _save(tmp_path / "coco_nan.npz", positions_2d=nan, metadata=coco))


def test_custom_cameras_and_unknown_subject(tmp_path, files):
    x = np.load(files["3d"], allow_pickle=True)["positions_3d"].item()["S1"]["Walking 1"]
    p = _save(tmp_path / "s2.npz", positions_3d={"S2": {"Walking": x}})
    with pytest.raises(ValueError, match="S2"):
        load_h36m(p)
    d = load_h36m(p, cameras=h36m_rig("S2"))
    assert len(d.positions_2d["S2"]["Walking"]) == 4
    assert d.subjects == ["S2"] and d.split("train") == []


# --------------------------------------------------------------------------- faults (issue 12)
class _Payload:
    """Unpickling this creates a directory: a stand-in for any code a pickle can run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_renamed_npz_is_refused_before_anything_runs(tmp_path):
    import pickle

    marker = tmp_path / "ran"
    bad = tmp_path / "data_3d_h36m.npz"
    bad.write_bytes(pickle.dumps({"positions_3d": _Payload(marker)}))
    with pytest.raises(ValueError, match=r"data_3d_h36m\.npz: not an \.npz file"):
        load_h36m(bad)
    assert not marker.exists()


def test_object_array_naming_other_globals_is_refused(tmp_path):
    marker = tmp_path / "ran"
    crafted = _save(tmp_path / "crafted.npz",
                    positions_3d=np.array({"S1": {"Walking": _Payload(marker)}}, dtype=object))
    with pytest.raises(ValueError, match=r"crafted\.npz.*refusing to load .*mkdir"):
        load_h36m(crafted)
    assert not marker.exists()
    # the same in the 2D file (its metadata is read too)
    ok = _save(tmp_path / "ok3d.npz", positions_3d={"S1": {"Walking": np.zeros((5, 32, 3), np.float32)}})
    bad2d = _save(tmp_path / "bad2d.npz", positions_2d={"S1": {"Walking": [np.zeros((5, 17, 2))] * 4}},
                  metadata=np.array(_Payload(marker), dtype=object))
    with pytest.raises(ValueError, match=r"bad2d\.npz.*refusing"):
        load_h36m(ok, bad2d)
    assert not marker.exists()


def test_numpy1_style_pickles_still_load(tmp_path):
    """VideoPose3D's files were written with NumPy 1 (``numpy.core.multiarray``): the whitelist names both."""
    import pickle

    arr = np.array({"S1": {"Walking": np.zeros((3, 32, 3), np.float32)}}, dtype=object)
    payload = pickle.dumps(arr, protocol=3).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in payload
    header = np.lib.format.header_data_from_array_1_0(arr)
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(tmp_path / "np1.npz", "w") as zf:
        zf.writestr("positions_3d.npy", buf.getvalue() + payload)
    data = load_h36m(tmp_path / "np1.npz")
    assert data.positions_world["S1"]["Walking"].shape == (3, 17, 3)


def test_generator_swaps_all_files_or_none(tmp_path, monkeypatch):
    out = tmp_path / "h36m"
    old = generate_h36m(out, subjects=["S1"], actions="Walking", frames_per_sequence=8, seed=1,
                        sequences_per_action=1)
    before = load_h36m(old["3d"], old["2d"])
    real_replace = os.replace

    def failing_replace(src, dst):
        if os.fspath(dst) == os.fspath(out / "data_2d_h36m_gt.npz"):  # the 2D file's move into place
            raise OSError("disk full (injected)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        generate_h36m(out, subjects=["S1"], actions="Walking", frames_per_sequence=8, seed=2,
                      sequences_per_action=1)
    monkeypatch.setattr(os, "replace", real_replace)
    after = load_h36m(old["3d"], old["2d"])  # the previous set, whole: new 3D is not beside old 2D
    np.testing.assert_array_equal(after.positions_world["S1"]["Walking"], before.positions_world["S1"]["Walking"])
    np.testing.assert_array_equal(after.positions_2d["S1"]["Walking"][0], before.positions_2d["S1"]["Walking"][0])
    assert sorted(p.name for p in out.iterdir()) == ["data_2d_h36m_gt.npz", "data_3d_h36m.npz", "synthetic_h36m.json"]


def test_2d_and_3d_files_of_different_runs_are_refused(tmp_path):
    import json
    import shutil

    a = generate_h36m(tmp_path / "a", subjects=["S1"], actions="Walking", frames_per_sequence=8, seed=1,
                      sequences_per_action=1)
    b = generate_h36m(tmp_path / "b", subjects=["S1"], actions="Walking", frames_per_sequence=8, seed=2,
                      sequences_per_action=1)
    info = json.loads(a["info"].read_text())
    assert info["actions"] == ["Walking"]  # a bare string is one action, not a list of letters
    assert info["generation"] == str(np.load(a["3d"])["generation"]) == str(np.load(a["2d"])["generation"])
    shutil.copy(b["2d"], a["2d"])
    with pytest.raises(ValueError, match=r"different runs"):
        load_h36m(a["3d"], a["2d"])


@pytest.mark.parametrize("bad", [1.5, 0, True, "2"])
def test_sequences_per_action_must_be_a_positive_int(tmp_path, bad):
    with pytest.raises(ValueError, match="sequences_per_action"):
        generate_h36m(tmp_path, subjects=["S1"], actions=["Walking"], frames_per_sequence=5,
                      sequences_per_action=bad)
    assert list(tmp_path.iterdir()) == []
