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
    assert set(M.__all__) == {"MAX_NORM_MODES", "ROOT", "ClippedDense", "build_lifter", "clip_by_norm",
                              "residual_block"}
    for gone in ("fit_lifter", "predict_3d", "denormalize_3d", "normalize", "stats_arrays", "check_poses_2d",
                 "LiftingData", "measure_throughput", "format_results"):
        assert not hasattr(M, gone), gone


def test_architecture_matches_martinez():
    model = M.build_lifter()
    assert model.input_shape == (None, 16, 2) and model.output_shape == (None, 16, 3)  # 16 2D joints, as the paper
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert [l.units for l in dense] == [1024] * 5 + [48]  # stem + 2 blocks x 2 + head
    # the authors' max-norm: every kernel clipped in the forward pass, no post-step constraint
    assert all(isinstance(l, M.ClippedDense) and l.max_norm == 1.0 and l.kernel_constraint is None for l in dense)
    assert sum(isinstance(l, keras.layers.BatchNormalization) for l in model.layers) == 5
    assert sum(isinstance(l, keras.layers.Dropout) and l.rate == 0.5 for l in model.layers) == 5
    assert sum(isinstance(l, keras.layers.Add) for l in model.layers) == 2
    h = 1024
    expected = (32 * h + h) + 4 * h + 4 * (h * h + h + 4 * h) + (h * 48 + 48)
    assert model.count_params() == expected
    old = M.build_lifter(num_joints_in=17, max_norm_mode="unit")       # the kit's earlier variant, still offered
    dense = [l for l in old.layers if isinstance(l, keras.layers.Dense)]
    assert not any(isinstance(l, M.ClippedDense) for l in dense)
    assert all(isinstance(l.kernel_constraint, keras.constraints.MaxNorm) and l.kernel_constraint.axis == 0
               for l in dense)
    assert old.count_params() == expected + 2 * h


def test_clip_by_norm_is_a_frobenius_clip():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 4))
    w /= np.linalg.norm(w, axis=0) / 0.9            # every column has norm 0.9: per-unit max-norm is a no-op
    fro = np.linalg.norm(w)                          # 1.8 > 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(M.clip_by_norm(w, 1.0)), w / fro, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(M.clip_by_norm(w, 2.0)), w, rtol=1e-6)   # inside
    np.testing.assert_allclose(keras.ops.convert_to_numpy(M.clip_by_norm(0.1 * w, 1.0)), 0.1 * w, rtol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(M.clip_by_norm(np.zeros((3, 2)), 1.0)), 0.0)
    # the per-unit rule would leave w as it is: the two semantics differ on this matrix
    unit = keras.ops.convert_to_numpy(keras.constraints.MaxNorm(1.0, axis=0)(keras.ops.convert_to_tensor(w)))
    np.testing.assert_allclose(unit, w, rtol=1e-5)
    assert np.abs(unit - w / fro).max() > 0.1


def test_clipped_dense_forward_uses_the_clipped_kernel_and_keeps_the_variable():
    layer = M.ClippedDense(4, max_norm=1.0, activation="relu")
    x = _rand((5, 6))
    layer.build((None, 6))
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 4)).astype("float32")
    w /= np.linalg.norm(w, axis=0) / 0.9
    b = rng.normal(size=4).astype("float32")
    layer.kernel.assign(w)
    layer.bias.assign(b)
    expected = np.maximum(x @ (w / np.linalg.norm(w)) + b, 0.0)        # tf.clip_by_norm(w, 1), by hand
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.kernel), w)   # the variable is not rewritten
    restored = M.ClippedDense.from_config(layer.get_config())
    assert restored.max_norm == 1.0 and restored.units == 4
    with pytest.raises(ValueError, match="max_norm"):
        M.ClippedDense(4, max_norm=0.0)


def test_lifter_forward_pass_clips_every_kernel():
    model = M.build_lifter(num_joints_in=3, num_joints_out=2, hidden=8, num_blocks=1, dropout=0.0)
    rng = np.random.default_rng(2)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(3.0 * rng.normal(size=layer.kernel.shape))   # Frobenius norms >> 1
            layer.bias.assign(rng.normal(size=layer.bias.shape))
    x = _rand((4, 3, 2))

    def dense(h, name):
        layer = model.get_layer(name)
        w = keras.ops.convert_to_numpy(layer.kernel)
        return h @ (w / max(1.0, np.linalg.norm(w))) + keras.ops.convert_to_numpy(layer.bias)

    def f(h, name):   # inference-time BN with fresh statistics: h / sqrt(1 + eps)
        eps = model.get_layer(f"{name}_bn").epsilon
        return np.maximum(dense(h, f"{name}_dense") / np.sqrt(1 + eps), 0.0)

    h = f(x.reshape(4, -1), "stem")
    h = h + f(f(h, "block1_a"), "block1_b")
    expected = dense(h, "head").reshape(4, 2, 3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), expected, rtol=1e-4,
                               atol=1e-4)


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
    with pytest.raises(ValueError, match="max_norm_mode"):
        M.build_lifter(max_norm_mode="columns")
    assert M.build_lifter(num_joints_in=np.int64(17), num_joints_out=16, hidden=8).input_shape == (None, 17, 2)
    plain = M.build_lifter(hidden=8, max_norm=None)
    assert not any(isinstance(l, M.ClippedDense) or getattr(l, "kernel_constraint", None) is not None
                   for l in plain.layers)


# --------------------------------------------------------------------------- training


def _lr_at(opt, step):
    opt.iterations.assign(step)
    return float(keras.ops.convert_to_numpy(opt.learning_rate))


def test_optimizer_schedule_decays_continuously_as_the_authors_code():
    opt = T.lifter_optimizer()
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    opt.build(model.trainable_variables)
    # tf.train.exponential_decay(1e-3, step, 100000, 0.96), staircase=False: 1e-3 * 0.96 ** (step / 1e5)
    assert _lr_at(opt, 0) == pytest.approx(1e-3)
    assert _lr_at(opt, 50_000) == pytest.approx(1e-3 * 0.96**0.5, rel=1e-6)    # staircase would give 1e-3
    assert _lr_at(opt, 99_999) == pytest.approx(1e-3 * 0.96**0.99999, rel=1e-6)
    assert _lr_at(opt, 100_000) == pytest.approx(0.96e-3, rel=1e-6)
    assert _lr_at(opt, 250_000) == pytest.approx(1e-3 * 0.96**2.5, rel=1e-6)
    stairs = T.lifter_optimizer(staircase=True)                                # the kit's earlier default
    stairs.build(model.trainable_variables)
    assert _lr_at(stairs, 99_999) == pytest.approx(1e-3) and _lr_at(stairs, 250_000) == pytest.approx(0.96**2 * 1e-3)


def test_trains_with_either_max_norm_and_round_trips(tmp_path):
    x, y = _rand((256, 16, 2)), _rand((256, 16, 3), 1)
    for mode in M.MAX_NORM_MODES:
        model = M.build_lifter(hidden=64, max_norm_mode=mode)
        T.compile_lifter(model, keras.optimizers.Adam(0.05))  # large steps push kernels past the bound
        hist = T.fit_lifter(model, x, y, epochs=2, batch_size=64, progress=False, verbose=0)
        assert np.isfinite(hist.history["loss"]).all()
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dense):
                w = keras.ops.convert_to_numpy(layer.kernel)
                if mode == "unit":   # the constraint rewrites every column of the variable after each step
                    assert np.linalg.norm(w, axis=0).max() <= 1.0 + 1e-4, layer.name
                else:                # the variable is free (it stays above the bound); the kernel used is clipped
                    used = keras.ops.convert_to_numpy(layer.clipped_kernel())
                    assert np.linalg.norm(w) > 1.0 and np.linalg.norm(used) <= 1.0 + 1e-4, layer.name
                    np.testing.assert_allclose(used, w / max(1.0, np.linalg.norm(w)), rtol=1e-5, atol=1e-7)
        path = tmp_path / f"lifter_{mode}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded.get_layer("head")) is type(model.get_layer("head"))
        np.testing.assert_allclose(E.predict_3d(loaded, x[:16]), E.predict_3d(model, x[:16]), atol=1e-5)


def test_fit_lifter_writes_only_with_a_workdir_and_logs_progress(tmp_path, capsys):
    x, y = _rand((64, 16, 2)), _rand((64, 16, 3), 1)
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


@pytest.mark.parametrize("mode", ["frobenius", "unit"])
def test_loss_decreases_on_a_learnable_mapping(mode):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 16, 2)).astype("float32")
    w = rng.normal(size=(32, 48)).astype("float32") / 6
    y = (x.reshape(512, -1) @ w).reshape(512, 16, 3)
    # lr 1e-2: with the Frobenius clip the updates of the stored kernels (norm ~10 at He init) are ~10x
    # damped, so 1e-3 learns too slowly for a unit test's 64 steps
    model = T.compile_lifter(M.build_lifter(hidden=128, dropout=0.1, max_norm_mode=mode), T.lifter_optimizer(1e-2))
    hist = T.fit_lifter(model, x, y, epochs=8, batch_size=64, progress=False, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    assert hist.history["loss"][-1] < 0.35 * float(np.mean(y**2))        # far below predicting zero


def test_bad_inputs_raise_value_errors():
    model = T.compile_lifter(M.build_lifter(hidden=16))
    x, y = _rand((8, 16, 2)), _rand((8, 16, 3))
    with pytest.raises(ValueError, match=r"x2d \(training 2D poses\): expected shape \(N, 16, 2\).*\(8, 17, 2\)"):
        T.fit_lifter(model, _rand((8, 17, 2)), y)          # all 17 joints into the paper's 16-joint lifter
    with pytest.raises(ValueError, match=r"y3d \(training 3D targets\): expected shape \(N, 16, 3\)"):
        T.fit_lifter(model, x, _rand((8, 17, 3)))
    with pytest.raises(ValueError, match=r"validation 3D targets: expected shape \(N, 16, 3\)"):
        T.fit_lifter(model, x, y, validation_data=(x, y[:, :15]))
    with pytest.raises(ValueError, match=r"x2d \(2D poses to lift\): expected shape \(N, 16, 2\)"):
        E.predict_3d(model, _rand((8, 17, 3)))
    bad = x.copy()
    bad[2, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*index 2"):
        E.predict_3d(model, bad)
    with pytest.raises(ValueError, match="x2d.*NaN"):
        T.fit_lifter(model, bad, y)
    with pytest.raises(ValueError, match="same number"):
        T.fit_lifter(model, x, y[:4])
    # flat (N, 32) inputs are reshaped
    assert E.predict_3d(model, x.reshape(8, -1)).shape == (8, 16, 3)
    hist = T.fit_lifter(model, x.reshape(8, -1), y.reshape(8, -1), progress=False, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


# --------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize("root", [0, 3])
def test_predict_3d_denormalises_and_puts_the_root_back(root):
    model = M.build_lifter(hidden=16)
    x = _rand((10, 16, 2))
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
    x = _rand((12, 16, 2))
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


@pytest.fixture(scope="module")
def h36m_small(tmp_path_factory):
    """Synthetic Human3.6M: S1, S8 (training), S9 (test); Walking, Waving; 2 sequences of 20 frames each."""
    from pose_lab.data.h36m import load_h36m
    from pose_lab.data.synthetic import generate_h36m

    paths = generate_h36m(tmp_path_factory.mktemp("h36m"), subjects=["S1", "S8", "S9"],
                          actions=["Walking", "Waving"], frames_per_sequence=20, sequences_per_action=2, seed=0)
    return load_h36m(paths["3d"], paths["2d"])


def test_prepare_lifting_data_on_synthetic_h36m(h36m_small):
    data = h36m_small
    ld = prepare_lifting_data(data)
    assert isinstance(ld, LiftingData) and isinstance(ld.stats, NormStats)
    assert ld.x_train.shape == (2 * 2 * 2 * 4 * 20, 16, 2) and ld.y_train.shape == (640, 16, 3)
    assert ld.x_test.shape == (320, 16, 2) and ld.y_test_mm.shape == (320, 17, 3) and ld.x_test_px.shape == (320, 17, 2)
    assert set(ld.subjects_test) == {"S9"} and set(ld.actions_test) == {"Walking", "Waving"}
    assert ld.validation_data is None and ld.x_val is None                # no hold-out unless asked for
    # statistics from the training subjects only: the training arrays are exactly z-scored
    np.testing.assert_allclose(ld.x_train.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(ld.y_train.std(0), 1, atol=1e-3)
    assert np.abs(ld.x_test.mean(0)).max() > 1e-2
    # round trips: z-scored test targets -> mm with the root re-inserted == ground truth; 2D -> pixels
    np.testing.assert_allclose(ld.stats.denormalize_3d(ld.y_test), ld.y_test_mm, atol=1e-2)
    np.testing.assert_allclose(ld.denormalize_2d(ld.x_test), ld.x_test_px[:, list(ld.input_joints)], atol=1e-2)
    np.testing.assert_allclose(ld.normalize_2d(ld.x_test_px), ld.x_test, atol=1e-5)
    # given statistics (a NormStats or its to_dict) are used as they are
    again = prepare_lifting_data(data, stats=ld.stats.to_dict(), test_stride=2)
    np.testing.assert_array_equal(again.x_train, ld.x_train)
    assert len(again.x_test) == 160
    # a trivially trained lifter evaluates end to end with the protocol table
    model = T.compile_lifter(M.build_lifter(hidden=32))
    T.fit_lifter(model, ld.x_train, ld.y_train, epochs=1, progress=False, verbose=0)
    table = E.evaluate_lifter(model, ld.x_test, ld.y_test_mm, ld.actions_test, ld.stats)
    assert set(table.actions) == {"Walking", "Waving"} and np.isfinite(table.average["P2"])
    with pytest.raises(ValueError, match="empty split"):
        prepare_lifting_data(data, train_subjects=[], test_subjects=["S9"])


def test_martinez_input_drops_neck_nose_only(h36m_small):
    from pose_lab.data.lifting import MARTINEZ_INPUT_JOINTS, input_joint_indices
    from pose_lab.skeletons import H36M17

    names = list(H36M17.joint_names)
    assert [names[j] for j in MARTINEZ_INPUT_JOINTS] == [n for n in names if n != "Neck/Nose"]
    assert len(MARTINEZ_INPUT_JOINTS) == 16 and names.index("Neck/Nose") == 9
    ld = prepare_lifting_data(h36m_small)                                   # default: the paper's 16 joints
    assert ld.x_train.shape[1:] == (16, 2) and "Neck/Nose" not in ld.input_joint_names
    assert ld.input_joint_names[0] == "Hip" and ld.input_joint_names[9] == "Head"
    # independent z-scores of the training pixels, Neck/Nose (index 9) removed by hand
    train_px = h36m_small.lifting_arrays("train").inputs_2d.astype(np.float64)
    keep = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]
    mean, std = train_px.mean(0)[keep], train_px.std(0)[keep]
    np.testing.assert_allclose(ld.x_test, (ld.x_test_px[:, keep] - mean) / std, rtol=1e-4, atol=1e-4)
    full = prepare_lifting_data(h36m_small, input_joints="all")             # the kit's earlier input
    assert full.x_train.shape[1:] == (17, 2) and full.input_joints == tuple(range(17))
    np.testing.assert_allclose(np.delete(full.x_test, 9, axis=1), ld.x_test, atol=1e-6)
    np.testing.assert_array_equal(full.y_train, ld.y_train)                 # the 3D targets do not change
    assert input_joint_indices(["Hip", 10, "RWrist"]) == (0, 10, 16)
    for bad in ("paper", ["Nose"], [17], ["Hip", "Hip"], []):
        with pytest.raises(ValueError, match="input_joints"):
            input_joint_indices(bad)
    with pytest.raises(ValueError, match=r"denormalize_2d: expected shape \(\.\.\., 16, 2\)"):
        ld.denormalize_2d(full.x_test)


def test_validation_split_holds_out_training_sequences_never_test_subjects(h36m_small):
    from pose_lab.data.lifting import split_validation, validation_sequences

    data = h36m_small
    held = validation_sequences(data)                                       # default: S8's last sequences
    assert held == [("S8", "Walking 2"), ("S8", "Waving 2")]
    assert validation_sequences(data, ["S1", "S8"], per_action=2) == [
        ("S1", "Walking 1"), ("S1", "Walking 2"), ("S1", "Waving 1"), ("S1", "Waving 2"),
        ("S8", "Walking 1"), ("S8", "Walking 2"), ("S8", "Waving 1"), ("S8", "Waving 2")]
    train_view, val_view = split_validation(data)
    assert set(val_view.positions_world) == {"S8"} and set(val_view.positions_world["S8"]) == {"Walking 2", "Waving 2"}
    assert "Walking 2" not in train_view.positions_world["S8"] and "S9" in train_view.positions_world
    ld = prepare_lifting_data(data, val_subjects=["S8"])
    assert set(ld.subjects_val) == {"S8"} and not set(ld.subjects_val) & {"S9", "S11"}
    assert len(ld.x_val) == 2 * 4 * 20 and len(ld.x_train) == 640 - 160 and len(ld.x_test) == 320
    assert ld.validation_data[0] is ld.x_val and ld.validation_data[1].shape == (160, 16, 3)
    # the held-out poses are not among the training poses, and the statistics ignore them
    val_px = data.positions_2d["S8"]["Walking 2"][0][0]
    train_px = train_view.lifting_arrays("train").inputs_2d
    assert not np.any(np.all(np.isclose(train_px, val_px, atol=1e-3), axis=(1, 2)))
    np.testing.assert_allclose(ld.x_train.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(ld.stats.denormalize_3d(ld.y_val), ld.y_val_mm, atol=1e-2)
    # the validation split never contains a test subject, however it is asked for
    for bad in ("S9", ["S8", "S11"], ("S9",)):
        with pytest.raises(ValueError, match="test subjects"):
            prepare_lifting_data(data, val_subjects=bad)
        with pytest.raises(ValueError, match="test subjects"):
            validation_sequences(data, bad)
    with pytest.raises(ValueError, match="not training subjects"):
        prepare_lifting_data(data, train_subjects=["S1"], val_subjects=["S8"])
    with pytest.raises(ValueError, match="not in the data"):
        validation_sequences(data, ["S5"])
    # real-release names: "Walking" (first take) before "Walking 1"; numbers compare as numbers
    from pose_lab.data.lifting import _sequence_key
    assert sorted(["Walking 10", "Walking 2", "Walking", "Walking 1"], key=_sequence_key) == [
        "Walking", "Walking 1", "Walking 2", "Walking 10"]


def test_compile_lifter_uses_xla_by_default_and_keeps_an_explicit_choice():
    """XLA is the measured fastest setting on CPU (README): the default, not Keras's "auto" (no XLA on a CPU)."""
    assert T.compile_lifter(M.build_lifter(hidden=16)).jit_compile is True
    assert T.compile_lifter(M.build_lifter(hidden=16), jit_compile=False).jit_compile is False
