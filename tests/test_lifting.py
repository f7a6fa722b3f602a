"""Martinez et al. lifting: builder (models), training helpers (training), protocol-1/2 evaluation (evaluation), data."""

import keras
import numpy as np
import pytest

from pose_lab import geometry, metrics
from pose_lab.data.lifting import LiftingData, prepare_lifting_data
from pose_lab.data.normalization import NormStats
from pose_lab.evaluation import lifting as E
from pose_lab.models import lifting as M
from pose_lab.training import lifting as T


def _rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _stats(mean_3d=0.0, std_3d=100.0, root=0, joints=17):
    """NormStats with constant 3D statistics (the 2D ones are not used by the predictions)."""
    return NormStats(np.zeros((joints, 2)), np.ones((joints, 2)), np.full((joints - 1, 3), mean_3d),
                     np.full((joints - 1, 3), std_3d), root=root)


# --------------------------------------------------------------------------- models


def test_models_module_holds_builders_only():
    assert set(M.__all__) == {"ROOT", "build_lifter", "residual_block"}
    for gone in ("fit_lifter", "predict_3d", "denormalize_3d", "normalize", "stats_arrays", "check_poses_2d",
                 "LiftingData", "measure_throughput", "format_results"):
        assert not hasattr(M, gone), gone


def test_architecture_matches_martinez():
    model = M.build_lifter()
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
    model = keras.Model(inp, M.residual_block(inp, hidden=8, dropout=0.0))
    x = _rand((4, 8))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(np.zeros_like(layer.kernel))
    # with the branch switched off (zero kernels, BN of zeros = 0, ReLU(0) = 0) the block is the identity
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), x, atol=1e-6)


def test_builder_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_joints_in"):
        M.build_lifter(num_joints_in=0)
    with pytest.raises(ValueError, match="num_blocks"):
        M.build_lifter(num_blocks=-1)
    with pytest.raises(ValueError, match="dropout"):
        M.build_lifter(dropout=1.0)
    with pytest.raises(ValueError, match="max_norm"):
        M.build_lifter(max_norm=0.0)
    assert M.build_lifter(num_joints_in=np.int64(16), num_joints_out=16, hidden=8).input_shape == (None, 16, 2)


# --------------------------------------------------------------------------- training


def test_optimizer_schedule_decays_0_96_every_100k_steps():
    opt = T.lifter_optimizer()
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
    model = M.build_lifter(hidden=64)
    T.compile_lifter(model, keras.optimizers.Adam(0.05))  # large steps push kernels past the bound
    x, y = _rand((256, 17, 2)), _rand((256, 16, 3), 1)
    hist = T.fit_lifter(model, x, y, epochs=2, batch_size=64, progress=False, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            norms = np.linalg.norm(keras.ops.convert_to_numpy(layer.kernel), axis=0)
            assert norms.max() <= 1.0 + 1e-4, layer.name
    path = tmp_path / "lifter.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(E.predict_3d(loaded, x[:16]), E.predict_3d(model, x[:16]), atol=1e-5)


def test_fit_lifter_writes_only_with_a_workdir_and_logs_progress(tmp_path, capsys):
    x, y = _rand((64, 17, 2)), _rand((64, 16, 3), 1)
    model = T.compile_lifter(M.build_lifter(hidden=16))
    T.fit_lifter(model, x, y, epochs=1, batch_size=32, validation_data=(x, y))   # defaults: no workdir
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "val_loss" in out and "ETA" in out       # the one-line progress log
    assert not list(tmp_path.iterdir())
    run = tmp_path / "run"
    hist = T.fit_lifter(model, x, y, epochs=2, batch_size=32, validation_data=(x, y), workdir=run,
                        progress=False, verbose=0)
    assert (run / "best.keras").is_file() and len(hist.history["loss"]) == 2
    assert "epoch" not in capsys.readouterr().out


def test_loss_decreases_on_a_learnable_mapping():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 17, 2)).astype("float32")
    w = rng.normal(size=(34, 48)).astype("float32") / 6
    y = (x.reshape(512, -1) @ w).reshape(512, 16, 3)
    model = T.compile_lifter(M.build_lifter(hidden=128, dropout=0.1))
    hist = T.fit_lifter(model, x, y, epochs=8, batch_size=64, progress=False, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]


def test_bad_inputs_raise_value_errors():
    model = T.compile_lifter(M.build_lifter(hidden=16))
    x, y = _rand((8, 17, 2)), _rand((8, 16, 3))
    with pytest.raises(ValueError, match=r"x2d \(training 2D poses\): expected shape \(N, 17, 2\).*\(8, 16, 2\)"):
        T.fit_lifter(model, x[:, :16], y)
    with pytest.raises(ValueError, match=r"y3d \(training 3D targets\): expected shape \(N, 16, 3\)"):
        T.fit_lifter(model, x, _rand((8, 17, 3)))
    with pytest.raises(ValueError, match=r"validation 3D targets: expected shape \(N, 16, 3\)"):
        T.fit_lifter(model, x, y, validation_data=(x, y[:, :15]))
    with pytest.raises(ValueError, match=r"x2d \(2D poses to lift\): expected shape \(N, 17, 2\)"):
        E.predict_3d(model, _rand((8, 17, 3)))
    bad = x.copy()
    bad[2, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*index 2"):
        E.predict_3d(model, bad)
    with pytest.raises(ValueError, match="x2d.*NaN"):
        T.fit_lifter(model, bad, y)
    with pytest.raises(ValueError, match="same number"):
        T.fit_lifter(model, x, y[:4])
    # flat (N, 34) inputs are reshaped
    assert E.predict_3d(model, x.reshape(8, -1)).shape == (8, 16, 3)
    hist = T.fit_lifter(model, x.reshape(8, -1), y.reshape(8, -1), progress=False, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


# --------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize("root", [0, 3])
def test_predict_3d_denormalises_and_puts_the_root_back(root):
    model = M.build_lifter(hidden=16)
    x = _rand((10, 17, 2))
    rng = np.random.default_rng(root)
    mean, std = rng.normal(size=(16, 3)) * 50, rng.uniform(20, 200, (16, 3))
    stats = NormStats(np.zeros((17, 2)), np.ones((17, 2)), mean, std, root=root)
    z = E.predict_3d(model, x)
    expected = np.insert(z.astype(np.float64) * std + mean, root, 0.0, axis=1)      # independent of NormStats
    for s in (stats, stats.to_dict()):
        mm = E.predict_3d(model, x, s, batch_size=3)                       # several batches
        assert mm.shape == (10, 17, 3) and mm.dtype == np.float32
        np.testing.assert_allclose(mm, expected, rtol=1e-5, atol=1e-3)
        assert np.all(mm[:, root] == 0)
    assert E.to_mm(z, None) is z                                            # no stats: z-scores as they are
    np.testing.assert_allclose(E.to_mm(np.stack([z, z], 1), stats)[:, 1], expected, rtol=1e-5, atol=1e-3)  # (N, k, J, 3)
    # an explicit root moves the zero joint, as before NormStats carried it
    moved = E.predict_3d(model, x, NormStats(np.zeros((17, 2)), np.ones((17, 2)), mean, std), root=root)
    np.testing.assert_allclose(moved, expected, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="stats"):
        E.predict_3d(model, x, (mean, std))


def test_protocol_errors_per_action_and_average():
    rng = np.random.default_rng(3)
    gt = rng.normal(scale=200, size=(30, 17, 3))
    gt -= gt[:, :1]
    actions = np.array(["Walking"] * 10 + ["Sitting"] * 20)
    # Walking: a rotated, scaled copy (protocol 2 removes it); Sitting: exact
    R = geometry.random_rotation(rng=rng)
    pred = gt.copy()
    pred[:10] = 1.1 * gt[:10] @ R.T
    table = E.protocol_errors(pred, gt, actions)
    assert table["Sitting"]["P1"] == pytest.approx(0.0, abs=1e-9)
    assert table["Walking"]["P1"] == pytest.approx(metrics.mpjpe(pred[:10], gt[:10]))
    assert table["Walking"]["P2"] == pytest.approx(0.0, abs=1e-6)
    # the protocol number averages over actions, not over poses
    assert table.average["P1"] == pytest.approx(table["Walking"]["P1"] / 2)
    assert table.overall["P1"] == pytest.approx(table["Walking"]["P1"] / 3)
    assert E.protocol_errors(pred, gt.reshape(30, -1))["all"]["P1"] == pytest.approx(table.overall["P1"])
    with pytest.raises(ValueError, match=r"target_mm: expected shape \(N, 17, 3\)"):
        E.protocol_errors(pred, gt[:, :16])
    with pytest.raises(ValueError, match="lengths differ"):
        E.protocol_errors(pred, gt[:20])


def test_format_results_is_one_result_table_with_the_old_markdown():
    from pose_lab.metrics.tables import ResultTable

    gt = np.zeros((4, 17, 3))
    pred = gt.copy()
    pred[:, 1:, 0] = [[10.0], [20.0], [30.0], [50.0]]
    a = E.protocol_errors(pred, gt, ["Walking", "Walking", "Sitting", "Sitting"])
    b = E.protocol_errors(pred[:2], gt[:2], ["Walking", "Walking"])
    res = E.format_results({"a": a, "b": b})
    assert isinstance(res, ResultTable)
    p1 = 16 / 17
    assert res["Walking"]["a P1"] == pytest.approx(15 * p1) and res["Sitting"]["a P1"] == pytest.approx(40 * p1)
    assert res["Average"]["b P1"] == pytest.approx(15 * p1)
    assert res.to_markdown() == "\n".join([
        "| action | a P1 | a P2 | b P1 | b P2 |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| Walking | {15 * p1:.1f} | {a['Walking']['P2']:.1f} | {15 * p1:.1f} | {b['Walking']['P2']:.1f} |",
        f"| Sitting | {40 * p1:.1f} | {a['Sitting']['P2']:.1f} | - | - |",
        f"| **Average** | {27.5 * p1:.1f} | {a.average['P2']:.1f} | {15 * p1:.1f} | {b.average['P2']:.1f} |",
    ])
    single = E.format_results(a, digits=2).to_markdown()
    assert single.splitlines()[0] == "| action | P1 | P2 |" and f"{40 * p1:.2f}" in single


def test_evaluate_lifter_reports_mm_with_root():
    model = M.build_lifter(hidden=16)
    x = _rand((12, 17, 2))
    table, pred = E.evaluate_lifter(model, x, np.zeros((12, 17, 3)), ["A"] * 6 + ["B"] * 6, _stats(),
                                    return_predictions=True)
    assert pred.shape == (12, 17, 3) and np.all(pred[:, 0] == 0)
    np.testing.assert_allclose(pred[:, 1:], E.predict_3d(model, x) * 100.0, rtol=1e-5)
    assert table.average["P1"] == pytest.approx(metrics.mpjpe(pred, np.zeros((12, 17, 3))), rel=1e-6)
    other = E.evaluate_lifter(model, x, np.zeros((12, 17, 3)), predict_fn=lambda v: np.ones((len(v), 17, 3)))
    assert other["all"]["P1"] == pytest.approx(np.sqrt(3))
    with pytest.raises(ValueError, match="stats"):
        E.evaluate_lifter(model, x, np.zeros((12, 17, 3)))
    with pytest.raises(ValueError, match=r"y3d_mm \(ground-truth 3D in mm\): expected shape \(N, 17, 3\)"):
        E.evaluate_lifter(model, x, np.zeros((12, 16, 3)), stats=_stats())


# --------------------------------------------------------------------------- data -> model -> metrics


def test_prepare_lifting_data_on_synthetic_h36m(tmp_path):
    from pose_lab.data.h36m import load_h36m
    from pose_lab.data.synthetic import generate_h36m

    paths = generate_h36m(tmp_path, subjects=["S1", "S5", "S9"], actions=["Walking", "Waving"],
                          frames_per_sequence=20, sequences_per_action=1, seed=0)
    data = load_h36m(paths["3d"], paths["2d"])
    ld = prepare_lifting_data(data)
    assert isinstance(ld, LiftingData) and isinstance(ld.stats, NormStats)
    assert ld.x_train.shape == (2 * 2 * 4 * 20, 17, 2) and ld.y_train.shape == (320, 16, 3)
    assert ld.x_test.shape == (160, 17, 2) and ld.y_test_mm.shape == (160, 17, 3)
    assert set(ld.subjects_test) == {"S9"} and set(ld.actions_test) == {"Walking", "Waving"}
    # statistics from the training subjects only: the training arrays are exactly z-scored
    np.testing.assert_allclose(ld.x_train.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(ld.y_train.std(0), 1, atol=1e-3)
    assert np.abs(ld.x_test.mean(0)).max() > 1e-2
    # round trip: z-scored test targets -> mm with the root re-inserted == ground truth
    np.testing.assert_allclose(ld.stats.denormalize_3d(ld.y_test), ld.y_test_mm, atol=1e-2)
    np.testing.assert_allclose(ld.stats.denormalize_2d(ld.x_test), ld.x_test_px, atol=1e-2)
    # given statistics (a NormStats or its to_dict) are used as they are
    again = prepare_lifting_data(data, stats=ld.stats.to_dict(), test_stride=2)
    np.testing.assert_array_equal(again.x_train, ld.x_train)
    assert len(again.x_test) == 80
    # a trivially trained lifter evaluates end to end with the protocol table
    model = T.compile_lifter(M.build_lifter(hidden=32))
    T.fit_lifter(model, ld.x_train, ld.y_train, epochs=1, progress=False, verbose=0)
    table = E.evaluate_lifter(model, ld.x_test, ld.y_test_mm, ld.actions_test, ld.stats)
    assert set(table.actions) == {"Walking", "Waving"} and np.isfinite(table.average["P2"])
    with pytest.raises(ValueError, match="empty split"):
        prepare_lifting_data(data, train_subjects=[], test_subjects=["S9"])
