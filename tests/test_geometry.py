"""Tests for pose_lab.geometry (NumPy).

Reference values are written independently of the library: the projection
closed forms are re-implemented here as scalar code, the Human3.6M tables are
copied from their sources, and expected pixels are literal numbers.
"""

import json
import math

import numpy as np
import pytest

from pose_lab import geometry as G

# --------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------
# VideoPose3D common/h36m_dataset.py, h36m_cameras_intrinsic_params, verbatim
# (note: its tangential list is [p2, p1] in Human3.6M terms).
VP3D_INTRINSICS = {
    "54138969": dict(center=[512.54150390625, 515.4514770507812],
                     focal_length=[1145.0494384765625, 1143.7811279296875],
                     radial_distortion=[-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043],
                     tangential_distortion=[-0.0009756988729350269, -0.00142447161488235],
                     res_w=1000, res_h=1002),
    "55011271": dict(center=[508.8486328125, 508.0649108886719],
                     focal_length=[1149.6756591796875, 1147.5916748046875],
                     radial_distortion=[-0.1942136287689209, 0.2404085397720337, 0.006819975562393665],
                     tangential_distortion=[-0.0016190266469493508, -0.0027408944442868233],
                     res_w=1000, res_h=1000),
    "58860488": dict(center=[519.8158569335938, 501.40264892578125],
                     focal_length=[1149.1407470703125, 1148.7989501953125],
                     radial_distortion=[-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427],
                     tangential_distortion=[0.0014843869721516967, -0.0007599993259645998],
                     res_w=1000, res_h=1000),
    "60457274": dict(center=[514.9682006835938, 501.88201904296875],
                     focal_length=[1145.5113525390625, 1144.77392578125],
                     radial_distortion=[-0.198384091258049, 0.21832367777824402, -0.008947807364165783],
                     tangential_distortion=[-0.0005872055771760643, -0.0018133620033040643],
                     res_w=1000, res_h=1002),
}

# Human3.6M metadata (double precision), in the release's order
# (fx, fy, cx, cy, k1, k2, k3, p1, p2), and the S1 world->camera matrices R and
# camera centres T as exported from the metadata (Martinez et al.'s cameras.h5).
H36M_METADATA_INTRINSICS = {
    "54138969": [1145.04940458804, 1143.78109572365, 512.541504956548, 515.4514869776,
                 -0.207098910824901, 0.247775183068982, -0.00307515035078854,
                 -0.00142447157470321, -0.000975698859470499],
    "55011271": [1149.67569986785, 1147.59161666764, 508.848621645943, 508.064917088557,
                 -0.194213629607385, 0.240408539138292, 0.00681997559022603,
                 -0.0027408943961907, -0.001619026613787],
    "58860488": [1149.14071676148, 1148.7989685676, 519.815837182153, 501.402658888552,
                 -0.208338188251856, 0.255488007488945, -0.00246049749891915,
                 -0.000759999321030303, 0.00148438698385668],
    "60457274": [1145.51133842318, 1144.77392807652, 514.968197319863, 501.882018537695,
                 -0.198384093827848, 0.218323676298049, -0.00894780704152122,
                 -0.00181336200488089, -0.000587205583421232],
}
H36M_METADATA_S1_R = [
    [[-0.9153617321513369, 0.40180836633680234, 0.02574754463350265],
     [0.051548117060134555, 0.1803735689384521, -0.9822464900705729],
     [-0.399319034032262, -0.8977836111057917, -0.185819527201491]],
    [[0.9281683400814921, 0.3721538354721445, 0.002248380248018696],
     [0.08166409428175585, -0.1977722953267526, -0.976840363061605],
     [-0.3630902204349604, 0.9068559102440475, -0.21395758897485287]],
    [[-0.9141549520542256, -0.40277802228118775, -0.045722952682337906],
     [-0.04562341383935874, 0.21430849526487267, -0.9756999400261069],
     [0.4027893093720077, -0.889854894701693, -0.214287280609606]],
    [[0.9141562410494211, -0.40060705854636447, 0.061905989962380774],
     [-0.05641000739510571, -0.2769531972942539, -0.9592261660183036],
     [0.40141783470104664, 0.8733904688919611, -0.2757767409202658]],
]
H36M_METADATA_S1_T = [
    [1841.10702774543, 4955.28462344526, 1563.4453958977],
    [1761.27853428116, -5078.00659454077, 1606.2649598335],
    [-1846.7776610084, 5215.04650469073, 1491.97246576518],
    [-1794.78972871109, -3722.69891503676, 1574.89272604599],
]

# Documented values: pixels of two camera-frame points (mm) for each camera,
# computed by hand with the closed form (Human3.6M ProjectPointRadial.m) from
# the published intrinsics above.
POINT_A = (300.0, -200.0, 4500.0)
POINT_B = (-1200.0, 1050.0, 3000.0)
DOCUMENTED_PIXELS = {
    "54138969": {POINT_A: (588.77011634703, 464.6734558493375), POINT_B: (72.02722782297167, 899.7383956681028)},
    "55011271": {POINT_A: (585.3879895597127, 457.10302214369995), POINT_B: (64.93299437323287, 894.4391523130247)},
    "58860488": {POINT_A: (596.3447026931568, 450.40028666397325), POINT_B: (78.7432660613502, 887.4012461614002)},
    "60457274": {POINT_A: (591.2378982972843, 451.0520828697357), POINT_B: (74.54507636662595, 886.251566854416)},
}


def vp3d_project(X, intr):
    """VideoPose3D's project_to_2d (common/camera.py) on its own table, scalar form."""
    f, c = intr["focal_length"], intr["center"]
    k, p = intr["radial_distortion"], intr["tangential_distortion"]
    x, y = X[0] / X[2], X[1] / X[2]
    r2 = x * x + y * y
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = p[0] * x + p[1] * y
    return (f[0] * (x * (radial + tan) + p[0] * r2) + c[0],
            f[1] * (y * (radial + tan) + p[1] * r2) + c[1])


def matlab_project(X, vec):
    """Human3.6M ProjectPointRadial / Martinez project_point_radial, scalar form."""
    fx, fy, cx, cy, k1, k2, k3, p1, p2 = vec
    x, y = X[0] / X[2], X[1] / X[2]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tan = p1 * y + p2 * x  # tan = p(1)*XX(2,:) + p(2)*XX(1,:)
    xd = x * (radial + tan) + p2 * r2  # + p([2 1]) * r2
    yd = y * (radial + tan) + p1 * r2
    return fx * xd + cx, fy * yd + cy


def opencv_project(X, vec):
    fx, fy, cx, cy, k1, k2, k3, p1, p2 = vec
    x, y = X[0] / X[2], X[1] / X[2]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return fx * xd + cx, fy * yd + cy


@pytest.fixture(scope="module")
def s1():
    return G.h36m_cameras("S1")


def simple_camera(**kw):
    args = dict(name="cam", focal=(1000.0, 1100.0), center=(320.0, 240.0), width=640, height=480)
    args.update(kw)
    return G.Camera(**args)


# --------------------------------------------------------------------------
# Projection
# --------------------------------------------------------------------------
def test_pinhole_matches_f_X_over_Z_plus_c():
    rng = np.random.default_rng(0)
    cam = simple_camera()
    P = rng.uniform(-1000, 1000, size=(5, 17, 3))
    P[..., 2] = rng.uniform(2000, 6000, size=(5, 17))
    uv = G.project_pinhole(P, cam)
    assert uv.shape == (5, 17, 2)
    np.testing.assert_allclose(uv[..., 0], 1000.0 * P[..., 0] / P[..., 2] + 320.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], 1100.0 * P[..., 1] / P[..., 2] + 240.0, rtol=0, atol=1e-9)


@pytest.mark.parametrize("index", range(4))
def test_zero_distortion_equals_pinhole(s1, index):
    rng = np.random.default_rng(index)
    P = rng.uniform(-800, 800, size=(50, 3)) + [0, 0, 4000]
    cam = s1[index].without_distortion()
    np.testing.assert_allclose(G.project_to_2d(P, cam), G.project_pinhole(P, cam), atol=1e-9)
    # with distortion they differ, so the comparison above is not vacuous
    assert np.abs(G.project_to_2d(P, s1[index]) - G.project_pinhole(P, s1[index])).max() > 1.0


@pytest.mark.parametrize("index", range(4))
def test_optical_axis_point_is_unmoved(s1, index):
    cam = s1[index]
    P = np.array([[0.0, 0.0, z] for z in (500.0, 3000.0, 9000.0)])
    uv = G.project_to_2d(P, cam)
    np.testing.assert_array_equal(uv, np.tile(cam.center, (3, 1)))


@pytest.mark.parametrize("cam_id", G.H36M_CAMERA_IDS)
def test_h36m_documented_values(s1, cam_id):
    cam = s1[G.H36M_CAMERA_IDS.index(cam_id)]
    for point, expected in DOCUMENTED_PIXELS[cam_id].items():
        np.testing.assert_allclose(G.project_to_2d(np.array(point), cam), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cam_id", G.H36M_CAMERA_IDS)
def test_h36m_projection_matches_videopose3d_and_metadata(s1, cam_id):
    cam = s1[G.H36M_CAMERA_IDS.index(cam_id)]
    rng = np.random.default_rng(1)
    pts = rng.uniform(-1000, 1000, size=(40, 3)) + [0, 0, 4500]
    ours = G.project_to_2d(pts, cam)
    vp3d = np.array([vp3d_project(p, VP3D_INTRINSICS[cam_id]) for p in pts])
    meta = np.array([matlab_project(p, H36M_METADATA_INTRINSICS[cam_id]) for p in pts])
    np.testing.assert_allclose(ours, vp3d, atol=1e-9)
    # the metadata doubles differ from VideoPose3D's float32 copies by ~1e-7 relative
    np.testing.assert_allclose(ours, meta, atol=2e-3)


@pytest.mark.parametrize("cam_id", G.H36M_CAMERA_IDS)
def test_tangential_order_matters_and_model_is_not_opencv(s1, cam_id):
    cam = s1[G.H36M_CAMERA_IDS.index(cam_id)]
    P = np.array(POINT_B)
    ours = G.project_to_2d(P, cam)
    swapped = G.Camera(**{**cam.to_dict(), "tangential": cam.tangential[::-1].tolist()})
    assert np.abs(G.project_to_2d(P, swapped) - ours).max() > 0.2
    assert np.abs(np.array(opencv_project(P, cam.intrinsic_vector)) - ours).max() > 0.02


def test_projection_batched_shapes(s1):
    P = np.random.default_rng(0).normal(size=(2, 3, 17, 3)) * 200 + [0, 0, 5000]
    assert G.project_to_2d(P, s1[0]).shape == (2, 3, 17, 2)
    assert G.project_to_2d(P[0, 0, 0], s1[0]).shape == (2,)


def test_projection_bad_input(s1):
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        G.project_to_2d(np.ones((17, 2)), s1[0])
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        G.project_pinhole(np.ones((17, 4)), s1[0])
    bad = np.ones((17, 3)) * 1000
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        G.project_to_2d(bad, s1[0])
    with pytest.raises(ValueError, match="NaN"):
        G.project_pinhole(bad, s1[0])
    behind = np.array([[0.0, 0.0, -100.0], [10.0, 10.0, 1000.0]])
    with pytest.raises(ValueError, match="behind"):
        G.project_to_2d(behind, s1[0])
    out = G.project_to_2d(behind, s1[0], allow_behind=True)
    assert np.all(np.isnan(out[0])) and np.all(np.isfinite(out[1]))
    with pytest.raises(TypeError):
        G.project_to_2d(np.ones(3), {"focal": 1})


def test_normalize_screen_coordinates():
    w, h = 1000, 1002
    X = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    N = G.normalize_screen_coordinates(X, w, h)
    np.testing.assert_allclose(N, [[-1.0, -1.002], [1.0, 1.002], [0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(G.image_coordinates(N, w, h), X, atol=1e-9)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        G.normalize_screen_coordinates(np.ones((4, 3)), w, h)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        G.image_coordinates(np.ones((4, 3)), w, h)


# --------------------------------------------------------------------------
# Human3.6M cameras
# --------------------------------------------------------------------------
def test_h36m_camera_table(s1):
    assert G.H36M_CAMERA_IDS == ("54138969", "55011271", "58860488", "60457274")
    assert [c.name for c in s1] == list(G.H36M_CAMERA_IDS)
    assert [(c.width, c.height) for c in s1] == [(1000, 1002), (1000, 1000), (1000, 1000), (1000, 1002)]
    for c in s1:
        v = VP3D_INTRINSICS[c.name]
        np.testing.assert_array_equal(c.focal, v["focal_length"])
        np.testing.assert_array_equal(c.center, v["center"])
        np.testing.assert_array_equal(c.radial, v["radial_distortion"])
        # p1, p2 in the Human3.6M order = VideoPose3D's list reversed
        np.testing.assert_array_equal(c.tangential, v["tangential_distortion"][::-1])
        np.testing.assert_allclose(c.intrinsic_vector, H36M_METADATA_INTRINSICS[c.name], rtol=1e-6)


def test_h36m_extrinsics_match_metadata_rotation(s1):
    """Quaternion (camera->world, w first) -> R world->camera = q_matrix.T."""
    for cam, R_ref, T_ref in zip(s1, H36M_METADATA_S1_R, H36M_METADATA_S1_T):
        np.testing.assert_allclose(cam.R, R_ref, atol=1e-6)
        np.testing.assert_allclose(cam.T, T_ref, atol=1e-3)


@pytest.mark.parametrize("subject", ["S1", "S5", "S6", "S7", "S8", "S9", "S11"])
def test_h36m_cameras_look_at_capture_area(subject):
    cams = G.h36m_cameras(subject)
    assert len(cams) == 4
    g = np.linspace(-1000, 1000, 5)
    grid = np.stack(np.meshgrid(g, g, np.linspace(0, 2000, 5), indexing="ij"), -1).reshape(-1, 3)
    for cam in cams:
        assert abs(np.linalg.det(cam.R) - 1) < 1e-6
        pc = G.world_to_camera(grid, cam)
        assert pc[:, 2].min() > 2000, (subject, cam.name)  # every point well in front
        # the centre of the capture area at hip height lands inside the image
        u, v = cam.project(np.array([0.0, 0.0, 1000.0]))
        assert 0 < u < cam.width and 0 < v < cam.height, (subject, cam.name, u, v)
        # world up (+z) points up in the image (v decreases)
        top, bottom = cam.project(np.array([[0, 0, 1800.0], [0, 0, 0.0]]))
        assert top[1] < bottom[1]


def test_h36m_cameras_subject_forms():
    a = G.h36m_cameras("S9")
    b = G.h36m_cameras(9)
    assert all(x == y for x, y in zip(a, b))
    assert not np.allclose(a[0].T, G.h36m_cameras("S1")[0].T)
    for bad in ("S2", "S12", "foo"):
        with pytest.raises(ValueError, match="available"):
            G.h36m_cameras(bad)


# --------------------------------------------------------------------------
# Camera dataclass
# --------------------------------------------------------------------------
def test_camera_intrinsic_matrix_and_serialisation(s1):
    cam = s1[1]
    K = cam.intrinsic_matrix
    np.testing.assert_array_equal(K, [[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1]])
    d = json.loads(json.dumps(cam.to_dict()))
    back = G.Camera.from_dict(d)
    assert back == cam
    assert back is not cam
    np.testing.assert_allclose(cam.translation, -cam.R @ cam.T)
    # pinhole via K equals project_pinhole
    P = np.array([120.0, -80.0, 3500.0])
    h = K @ P
    np.testing.assert_allclose(h[:2] / h[2], G.project_pinhole(P, cam), atol=1e-9)


def test_camera_with_extrinsics():
    cam = simple_camera()
    R = G.rotation_about_axis("y", 0.3)
    moved = cam.with_extrinsics(R, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(moved.R, R)
    np.testing.assert_array_equal(moved.T, [1, 2, 3])
    np.testing.assert_array_equal(moved.focal, cam.focal)
    np.testing.assert_array_equal(cam.R, np.eye(3))  # original unchanged
    with pytest.raises(ValueError, match=r"R"):
        cam.with_extrinsics(np.eye(3) * 2, [0, 0, 0])


@pytest.mark.parametrize(
    "kw, pattern",
    [
        (dict(focal=(1000.0,)), r"focal.*\(2,\)"),
        (dict(focal=(1000.0, -5.0)), r"focal.*positive"),
        (dict(center=(1.0, 2.0, 3.0)), r"center.*\(2,\)"),
        (dict(radial=(0.1, 0.2)), r"radial.*\(3,\)"),
        (dict(tangential=(0.1, 0.2, 0.3)), r"tangential.*\(2,\)"),
        (dict(R=np.eye(4)), r"R.*\(3, 3\)"),
        (dict(R=np.diag([1.0, 1.0, -1.0])), r"proper rotation"),
        (dict(R=np.eye(3) * 1.5), r"proper rotation"),
        (dict(T=(1.0, 2.0)), r"T.*\(3,\)"),
        (dict(width=0), r"width"),
        (dict(height=10.5), r"height"),
        (dict(center=(np.nan, 1.0)), r"center.*finite"),
    ],
)
def test_camera_validation(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        simple_camera(**kw)


def test_camera_from_dict_errors():
    d = simple_camera().to_dict()
    with pytest.raises(ValueError, match="unknown"):
        G.Camera.from_dict({**d, "skew": 0})
    d.pop("focal")
    with pytest.raises(ValueError, match="focal"):
        G.Camera.from_dict(d)


# --------------------------------------------------------------------------
# world <-> camera
# --------------------------------------------------------------------------
def test_world_camera_round_trip(s1):
    rng = np.random.default_rng(3)
    Pw = rng.normal(size=(4, 17, 3)) * 500
    for cam in s1:
        Pc = G.world_to_camera(Pw, cam)
        np.testing.assert_allclose(Pc, np.einsum("ij,...j->...i", cam.R, Pw - cam.T), atol=1e-9)
        np.testing.assert_allclose(G.camera_to_world(Pc, cam), Pw, atol=1e-8)
        np.testing.assert_allclose(G.world_to_camera(Pw, cam.R, cam.T), Pc, atol=1e-12)
        np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(Pw)), Pw, atol=1e-8)
    # the camera centre maps to the camera origin
    np.testing.assert_allclose(G.world_to_camera(s1[0].T, s1[0]), 0, atol=1e-9)


def test_world_camera_bad_input(s1):
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        G.world_to_camera(np.ones((17, 2)), s1[0])
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        G.world_to_camera(np.ones((17, 3)), np.eye(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        G.camera_to_world(np.ones((17, 3)), np.eye(3), np.zeros(2))
    with pytest.raises(ValueError, match="T"):
        G.world_to_camera(np.ones((17, 3)), np.eye(3))


def test_look_at():
    eye = np.array([3000.0, -4000.0, 1500.0])
    target = np.array([0.0, 0.0, 900.0])
    R = G.look_at(eye, target)
    assert abs(np.linalg.det(R) - 1) < 1e-12
    cam = simple_camera(R=R, T=eye)
    np.testing.assert_allclose(cam.project(target), cam.center, atol=1e-9)
    assert G.world_to_camera(target, cam)[2] == pytest.approx(np.linalg.norm(target - eye))
    assert cam.project(target + [0, 0, 500])[1] < cam.cy  # up is up in the image
    with pytest.raises(ValueError):
        G.look_at(eye, eye)


# --------------------------------------------------------------------------
# rotations
# --------------------------------------------------------------------------
def test_rotation_known_values():
    # 90 degrees about z maps x to y (right-hand rule)
    Rz = G.rotation_about_axis("z", math.pi / 2)
    np.testing.assert_allclose(Rz @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    q = np.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])  # (w, x, y, z)
    np.testing.assert_allclose(G.quaternion_to_matrix(q), Rz, atol=1e-12)
    np.testing.assert_allclose(G.axis_angle_to_matrix([0, 0, math.pi / 2]), Rz, atol=1e-12)
    np.testing.assert_allclose(G.quaternion_rotate(q, [1.0, 0, 0]), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(G.rotation_about_axis([0, 0, 2.0], math.pi / 2), Rz, atol=1e-12)
    assert G.rotation_about_axis("x", np.zeros((4, 2))).shape == (4, 2, 3, 3)


def test_rotation_round_trips():
    R = G.random_rotation(500, rng=0)
    q = G.matrix_to_quaternion(R)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1, atol=1e-12)
    np.testing.assert_allclose(G.quaternion_to_matrix(q), R, atol=1e-12)
    aa = G.matrix_to_axis_angle(R)
    assert np.linalg.norm(aa, axis=-1).max() <= math.pi + 1e-12
    np.testing.assert_allclose(G.axis_angle_to_matrix(aa), R, atol=1e-12)
    # edge cases: identity, tiny angles, exactly pi
    for vec in ([0, 0, 0], [1e-9, -2e-9, 0], [math.pi, 0, 0], [0, -math.pi, 0], [1e-3, 0.5, -0.2]):
        M = G.axis_angle_to_matrix(vec)
        np.testing.assert_allclose(G.axis_angle_to_matrix(G.matrix_to_axis_angle(M)), M, atol=1e-12)
    np.testing.assert_allclose(G.matrix_to_axis_angle(G.axis_angle_to_matrix([0.1, 0.2, 0.3])), [0.1, 0.2, 0.3], atol=1e-12)


def test_quaternion_multiply_composes():
    rng = np.random.default_rng(5)
    q1, q2 = rng.normal(size=(2, 10, 4))
    q1 /= np.linalg.norm(q1, axis=-1, keepdims=True)
    q2 /= np.linalg.norm(q2, axis=-1, keepdims=True)
    np.testing.assert_allclose(
        G.quaternion_to_matrix(G.quaternion_multiply(q1, q2)),
        G.quaternion_to_matrix(q1) @ G.quaternion_to_matrix(q2),
        atol=1e-12,
    )
    ident = G.quaternion_multiply(q1, G.quaternion_conjugate(q1))
    np.testing.assert_allclose(ident, np.tile([1.0, 0, 0, 0], (10, 1)), atol=1e-12)
    v = rng.normal(size=(10, 3))
    np.testing.assert_allclose(G.quaternion_rotate(q1, v), np.einsum("nij,nj->ni", G.quaternion_to_matrix(q1), v), atol=1e-12)


def test_random_rotation_properties():
    R = G.random_rotation(20000, rng=np.random.default_rng(7))
    assert R.shape == (20000, 3, 3)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1, atol=1e-12)
    # Haar measure: E[R] = 0, and the rotation angle has density (1 - cos t) / pi,
    # so E[cos t] = -1/2, i.e. E[trace] = 0.
    assert np.abs(R.mean(axis=0)).max() < 0.03
    angles = np.linalg.norm(G.matrix_to_axis_angle(R), axis=-1)
    assert abs(np.cos(angles).mean() + 0.5) < 0.02
    # reproducible with a seed; single rotation form
    np.testing.assert_array_equal(G.random_rotation(3, rng=1), G.random_rotation(3, rng=1))
    assert G.random_rotation(rng=1).shape == (3, 3)


def test_rotation_bad_input():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        G.axis_angle_to_matrix(np.ones(4))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        G.quaternion_to_matrix(np.ones(3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\)"):
        G.matrix_to_quaternion(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-zero"):
        G.quaternion_to_matrix(np.zeros(4))
    with pytest.raises(ValueError, match="axis"):
        G.rotation_about_axis("w", 1.0)


# --------------------------------------------------------------------------
# Procrustes and root-centring
# --------------------------------------------------------------------------
def random_similarity(rng, batch):
    R = G.random_rotation(batch, rng=rng)
    s = rng.uniform(0.5, 2.0, size=batch)
    t = rng.normal(size=(batch, 3)) * 300
    return s, R, t


def test_procrustes_recovers_similarity_exactly():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(8, 17, 3)) * 250
    s, R, t = random_similarity(rng, 8)
    Y = s[:, None, None] * np.einsum("bij,bkj->bki", R, X) + t[:, None, :]
    aligned, (s_hat, R_hat, t_hat) = G.procrustes_align(X, Y, return_transform=True)
    np.testing.assert_allclose(aligned, Y, atol=1e-8)
    np.testing.assert_allclose(s_hat, s, rtol=1e-12)
    np.testing.assert_allclose(R_hat, R, atol=1e-12)
    np.testing.assert_allclose(t_hat, t, atol=1e-8)
    # single pose, no batch dimension
    np.testing.assert_allclose(G.procrustes_align(X[0], Y[0]), Y[0], atol=1e-8)


def test_procrustes_rigid_and_noise_optimality():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(17, 3)) * 250
    R = G.random_rotation(rng=rng)
    Y = X @ R.T + [10.0, -20.0, 30.0]
    aligned, (s, R_hat, _) = G.procrustes_align(X, Y, scale=False, return_transform=True)
    assert s == 1.0
    np.testing.assert_allclose(aligned, Y, atol=1e-8)
    # with noise, the optimum beats perturbed transforms (independent check of optimality)
    Yn = 1.3 * Y + rng.normal(size=Y.shape) * 20
    best, (s, R_hat, t) = G.procrustes_align(X, Yn, return_transform=True)
    err = np.sum((best - Yn) ** 2)
    for _ in range(50):
        dR = G.axis_angle_to_matrix(rng.normal(size=3) * 0.01)
        trial = s * (1 + rng.normal() * 0.01) * X @ (dR @ R_hat).T + t + rng.normal(size=3)
        assert np.sum((trial - Yn) ** 2) >= err


def test_procrustes_does_not_fix_reflection():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(6, 17, 3)) * 250
    mirrored = X * np.array([-1.0, 1.0, 1.0])
    aligned, (_, R, _) = G.procrustes_align(mirrored, X, return_transform=True)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    residual = np.linalg.norm(aligned - X, axis=-1).mean(axis=-1)
    assert np.all(residual > 50.0), residual  # a reflection could reach 0
    # the unconstrained (reflection-allowing) solution would match exactly
    H = np.swapaxes(X - X.mean(-2, keepdims=True), -1, -2) @ (mirrored - mirrored.mean(-2, keepdims=True))
    U, _, Vt = np.linalg.svd(H)
    refl = (mirrored - mirrored.mean(-2, keepdims=True)) @ np.swapaxes(U @ Vt, -1, -2) + X.mean(-2, keepdims=True)
    np.testing.assert_allclose(refl, X, atol=1e-8)


def test_procrustes_bad_input():
    a = np.zeros((4, 17, 3))
    with pytest.raises(ValueError, match=r"same shape \(\.\.\., J, 3\)"):
        G.procrustes_align(a, np.zeros((4, 16, 3)))
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        G.procrustes_align(np.zeros((4, 17, 2)), np.zeros((4, 17, 2)))
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        G.procrustes_align(np.zeros(3), np.zeros(3))
    b = np.ones((4, 17, 3))
    b[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        G.procrustes_align(b, np.ones((4, 17, 3)))


def test_procrustes_degenerate_pred_is_finite():
    out = G.procrustes_align(np.zeros((17, 3)), np.random.default_rng(0).normal(size=(17, 3)))
    assert np.all(np.isfinite(out))


def test_root_center():
    P = np.random.default_rng(0).normal(size=(3, 17, 3))
    C = G.root_center(P)
    np.testing.assert_array_equal(C[:, 0], 0)
    np.testing.assert_allclose(C + P[:, :1], P)
    np.testing.assert_array_equal(G.root_center(P, root=8)[:, 8], 0)
    np.testing.assert_array_equal(G.root_center(P, root=-1)[:, 16], 0)
    assert G.root_center(P[..., :2]).shape == (3, 17, 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        G.root_center(np.zeros((17, 4)))
    with pytest.raises(ValueError, match="root"):
        G.root_center(P, root=17)
