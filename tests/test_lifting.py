"""Martinez et al. lifting baseline and protocol-1/2 evaluation (pose_lab.models.lifting)."""

import keras
import numpy as np
import pytest

from pose_lab import geometry, metrics
from pose_lab.models import lifting as L


def _rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_architecture_matches_martinez():
    model = L.build_lifter()
    assert model.input_shape == (None, 17, 2) and model.output_shape == (None, 16, 3)
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert [l.units for l in dense] == [1024] * 5 + [48]  # stem + 2 blocks x 2 + head
    assert all(isinstance(l.kernel_constraint, keras.constraints.MaxNorm) for l in dense)
    assert sum(isinstance(l, keras.layers.BatchNormalization) for l in model.layers) == 5
    assert sum(isinstance(l, keras.layers.Dropout) and l.rate == 0.5 for l in model.layers) == 5
    assert sum(isinstance(l, keras.layers.Add) for l in model.layers) == 2
    h = 1024
    expected = (34 * h + h) + 4 * h + 4 * (h * h + h + 4 * h) + (h * 48 + 48)
    assert model.count_params() == expected


def test_residual_block_is_identity_plus_branch():
    inp = keras.Input((8,))
    model = keras.Model(inp, L.residual_block(inp, hidden=8, dropout=0.0))
    x = _rand((4, 8))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(np.zeros_like(layer.kernel))
    # with the branch switched off (zero kernels, BN of zeros = 0, ReLU(0) = 0) the block is the identity
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), x, atol=1e-6)


def test_optimizer_schedule_decays_0_96_every_100k_steps():
    opt = L.lifter_optimizer()
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    opt.build(model.trainable_variables)

    def lr_at(step):
        opt.iterations.assign(step)
        return float(keras.ops.convert_to_numpy(opt.learning_rate))

    assert lr_at(0) == pytest.approx(1e-3)
    assert lr_at(99_999) == pytest.approx(1e-3)  # staircase, as the authors' code
    assert lr_at(100_000) == pytest.approx(0.96e-3)
    assert lr_at(250_000) == pytest.approx(1e-3 * 0.96**2)


def test_trains_respects_max_norm_and_round_trips(tmp_path):
    model = L.build_lifter(hidden=64)
    L.compile_lifter(model, keras.optimizers.Adam(0.05))  # large steps push kernels past the bound
    x, y = _rand((256, 17, 2)), _rand((256, 16, 3), 1)
    hist = L.fit_lifter(model, x, y, epochs=2, batch_size=64, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            norms = np.linalg.norm(keras.ops.convert_to_numpy(layer.kernel), axis=0)
            assert norms.max() <= 1.0 + 1e-4, layer.name
    path = tmp_path / "lifter.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(L.predict_3d(loaded, x[:16]), L.predict_3d(model, x[:16]), atol=1e-5)


def test_loss_decreases_on_a_learnable_mapping():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 17, 2)).astype("float32")
    w = rng.normal(size=(34, 48)).astype("float32") / 6
    y = (x.reshape(512, -1) @ w).reshape(512, 16, 3)
    model = L.compile_lifter(L.build_lifter(hidden=128, dropout=0.1))
    hist = L.fit_lifter(model, x, y, epochs=8, batch_size=64, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]


def test_bad_inputs_raise_value_errors():
    model = L.compile_lifter(L.build_lifter(hidden=16))
    x, y = _rand((8, 17, 2)), _rand((8, 16, 3))
    with pytest.raises(ValueError, match=r"\(N, 17, 2\).*\(8, 16, 2\)"):
        L.fit_lifter(model, x[:, :16], y)
    with pytest.raises(ValueError, match=r"\(N, 17, 2\)"):
        L.predict_3d(model, _rand((8, 17, 3)))
    bad = x.copy()
    bad[2, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*index 2"):
        L.predict_3d(model, bad)
    with pytest.raises(ValueError, match="NaN"):
        L.fit_lifter(model, bad, y)
    with pytest.raises(ValueError, match="same number"):
        L.fit_lifter(model, x, y[:4])
    with pytest.raises(ValueError, match="num_joints_in"):
        L.build_lifter(num_joints_in=0)
    with pytest.raises(ValueError, match="dropout"):
        L.build_lifter(dropout=1.0)
    # flat (N, 34) inputs are reshaped
    assert L.predict_3d(model, x.reshape(8, -1)).shape == (8, 16, 3)


def test_normalisation_round_trip_and_root_reinsertion():
    rng = np.random.default_rng(2)
    y_mm = rng.normal(scale=300, size=(50, 17, 3)).astype("float32")
    y_mm[:, 0] = 0.0  # root-centred
    mean = y_mm[:, 1:].mean(0)
    std = y_mm[:, 1:].std(0)
    y_norm = L.normalize(y_mm[:, 1:], mean, std)
    np.testing.assert_allclose(y_norm.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(y_norm.std(0), 1, atol=1e-4)
    back = L.denormalize_3d(y_norm, (mean, std))
    assert back.shape == (50, 17, 3)
    np.testing.assert_allclose(back, y_mm, atol=1e-3)
    # stats over all 17 joints (root std 0) are accepted: the root entry is dropped
    full = (np.insert(mean, 0, 0.0, axis=0), np.insert(std, 0, 0.0, axis=0))
    np.testing.assert_allclose(L.denormalize_3d(y_norm, full), y_mm, atol=1e-3)
    np.testing.assert_allclose(L.denormalize(L.normalize(y_mm, 1.0, 0.0), 1.0, 0.0), y_mm, rtol=1e-5)  # std 0 -> 1
    with pytest.raises(ValueError, match="stats"):
        L.denormalize_3d(y_norm, object())


def test_protocol_errors_per_action_and_average():
    rng = np.random.default_rng(3)
    gt = rng.normal(scale=200, size=(30, 17, 3))
    gt -= gt[:, :1]
    actions = np.array(["Walking"] * 10 + ["Sitting"] * 20)
    # Walking: a rotated, scaled copy (protocol 2 removes it); Sitting: exact
    R = geometry.random_rotation(rng=rng)
    pred = gt.copy()
    pred[:10] = 1.1 * gt[:10] @ R.T
    table = L.protocol_errors(pred, gt, actions)
    assert table["Sitting"]["P1"] == pytest.approx(0.0, abs=1e-9)
    assert table["Walking"]["P1"] == pytest.approx(metrics.mpjpe(pred[:10], gt[:10]))
    assert table["Walking"]["P2"] == pytest.approx(0.0, abs=1e-6)
    # the protocol number averages over actions, not over poses
    assert table.average["P1"] == pytest.approx(table["Walking"]["P1"] / 2)
    assert table.overall["P1"] == pytest.approx(table["Walking"]["P1"] / 3)
    text = L.format_results({"a": table, "b": table})
    assert "Walking" in text and "**Average**" in text and text.count("|") > 10


def test_evaluate_lifter_reports_mm_with_root():
    model = L.build_lifter(hidden=16)
    x = _rand((12, 17, 2))
    stats = (np.zeros((16, 3), np.float32), np.full((16, 3), 100.0, np.float32))
    table, pred = L.evaluate_lifter(model, x, np.zeros((12, 17, 3)), ["A"] * 6 + ["B"] * 6, stats,
                                    return_predictions=True)
    assert pred.shape == (12, 17, 3) and np.all(pred[:, 0] == 0)
    assert table.average["P1"] == pytest.approx(metrics.mpjpe(pred, np.zeros((12, 17, 3))), rel=1e-6)
    with pytest.raises(ValueError, match="stats"):
        L.evaluate_lifter(model, x, np.zeros((12, 17, 3)))


def test_prepare_lifting_data_on_synthetic_h36m(tmp_path):
    from pose_lab.data.h36m import load_h36m
    from pose_lab.data.synthetic import generate_h36m

    paths = generate_h36m(tmp_path, subjects=["S1", "S5", "S9"], actions=["Walking", "Waving"],
                          frames_per_sequence=20, sequences_per_action=1, seed=0)
    ld = L.prepare_lifting_data(load_h36m(paths["3d"], paths["2d"]))
    assert ld.x_train.shape == (2 * 2 * 4 * 20, 17, 2) and ld.y_train.shape == (320, 16, 3)
    assert ld.x_test.shape == (160, 17, 2) and ld.y_test_mm.shape == (160, 17, 3)
    assert set(ld.subjects_test) == {"S9"} and set(ld.actions_test) == {"Walking", "Waving"}
    # statistics from the training subjects only: the training arrays are exactly z-scored
    np.testing.assert_allclose(ld.x_train.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(ld.y_train.std(0), 1, atol=1e-3)
    assert np.abs(ld.x_test.mean(0)).max() > 1e-2
    # round trip: z-scored test targets -> mm with the root re-inserted == ground truth
    np.testing.assert_allclose(L.denormalize_3d(ld.y_test, ld.stats), ld.y_test_mm, atol=1e-2)
    np.testing.assert_allclose(ld.stats.denormalize_2d(ld.x_test), ld.x_test_px, atol=1e-2)
    # a trivially trained lifter evaluates end to end with the protocol table
    model = L.compile_lifter(L.build_lifter(hidden=32))
    L.fit_lifter(model, ld.x_train, ld.y_train, epochs=1, verbose=0)
    table = L.evaluate_lifter(model, ld.x_test, ld.y_test_mm, ld.actions_test, ld.stats)
    assert set(table.actions) == {"Walking", "Waving"} and np.isfinite(table.average["P2"])
