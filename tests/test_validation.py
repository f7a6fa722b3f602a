"""pose_lab.validation: the one validator for pose and image arrays."""

import numpy as np
import pytest

from pose_lab.skeletons import COCO17, H36M17
from pose_lab.validation import check_images, check_poses, expected_joints


def test_check_poses_accepts_and_converts():
    x = np.arange(2 * 17 * 2, dtype=np.float64).reshape(2, 17, 2)
    out = check_poses(x, "x", dims=2, num_joints=17)
    assert out.dtype == np.float32 and out.shape == (2, 17, 2)
    np.testing.assert_array_equal(out, x.astype(np.float32))
    # any leading axes unless batched; dtype=None keeps the input (no copy)
    y = np.zeros((3, 4, 17, 3))
    assert check_poses(y, "y", dims=3, num_joints=H36M17, dtype=None) is y


def test_check_poses_flat_layout_round_trip():
    x = np.random.default_rng(0).normal(size=(5, 17, 2))
    out, was_flat = check_poses(x.reshape(5, 34), "x", dims=2, num_joints=17, flat=True, return_flat=True)
    assert was_flat and out.shape == (5, 17, 2)
    np.testing.assert_allclose(out, x, rtol=1e-6)
    _, was_flat = check_poses(x, "x", dims=2, num_joints=17, flat=True, return_flat=True)
    assert not was_flat
    # without flat=True a flat array is a shape error
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 17, 2\), got \(5, 34\)"):
        check_poses(x.reshape(5, 34), "x", dims=2, num_joints=17)


@pytest.mark.parametrize(
    "bad, kwargs, message",
    [
        (np.zeros((4, 16, 2)), dict(dims=2, num_joints=17, batched=True),
         r"x2d \(2D poses\): expected shape \(N, 17, 2\), got \(4, 16, 2\)"),
        (np.zeros((4, 17, 3)), dict(dims=2, num_joints=17), r"expected shape \(\.\.\., 17, 2\), got \(4, 17, 3\)"),
        (np.zeros((2, 4, 17, 2)), dict(dims=2, batched=True), r"expected shape \(N, J, 2\), got \(2, 4, 17, 2\)"),
        (np.zeros((4, 33)), dict(dims=2, num_joints=17, flat=True, batched=True), r"\(N, 17, 2\) or flat \(N, 34\), got \(4, 33\)"),
        (np.zeros((4, 17, 2)), dict(num_joints=COCO17, dims=3), r"for skeleton 'coco17'"),
        (np.array(["a", "b"]), dict(), r"expected a numeric array, got dtype <U1"),
        ([[1.0, 2.0], [3.0]], dict(), r"expected a numeric array"),
        (np.zeros((5,)), dict(), r"expected shape \(\.\.\., J, D\), got \(5,\)"),
    ],
)
def test_check_poses_errors_name_argument_and_expectation(bad, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_poses(bad, "x2d (2D poses)", **kwargs)


def test_check_poses_non_finite_names_count_and_first_index():
    x = np.zeros((6, 17, 3))
    x[2, 5, 0] = np.nan
    x[4, 0, 1] = np.inf
    with pytest.raises(ValueError, match=r"pred: 2 pose\(s\) contain NaN or inf values \(first at index 2\)"):
        check_poses(x, "pred", dims=3)
    assert check_poses(x, "pred", dims=3, finite=False).shape == x.shape


def test_joint_count_options():
    x = np.zeros((2, 16, 3))
    assert check_poses(x, "y", dims=3, num_joints=(16, 17)).shape == (2, 16, 3)
    assert expected_joints((16, 17)) == "16|17" and expected_joints(None) == "J"
    assert expected_joints(H36M17) == "17"


def test_check_images_unit_range_and_shape():
    u8 = np.full((2, 8, 6, 3), 255, np.uint8)
    out = check_images(u8, "images", shape=(8, 6, 3), unit_range=True)
    assert out.dtype == np.float32 and out.max() == 1.0
    assert check_images(u8, "images", shape=(None, 6, 3)) is u8  # no conversion without unit_range
    with pytest.raises(ValueError, match=r"images: expected shape \(N, 8, 8, 3\), got \(2, 8, 6, 3\)"):
        check_images(u8, "images", shape=(8, 8, 3))
    with pytest.raises(ValueError, match=r"expected shape \(N, H, W, C\), got \(8, 6, 3\)"):
        check_images(u8[0], "images")
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\] \(got values in \[0, 2\]\)"):
        check_images(np.full((1, 2, 2, 3), 2.0), "images", unit_range=True)
    with pytest.raises(ValueError, match=r"expected uint8 \(0\.\.255\) or floats"):
        check_images(np.ones((1, 2, 2, 3), np.int32), "images", unit_range=True)
    bad = np.zeros((3, 2, 2, 3), np.float32)
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"crops: 1 image\(s\) contain NaN or inf values \(first at index 1\)"):
        check_images(bad, "crops")
