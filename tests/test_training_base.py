"""pose_lab.training.base: batched inference, regulariser sum, resumable fit; ProgressLog."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from pose_lab.training import base
from pose_lab.training.base import add_regularization, batched_predict, fit_and_release, fit_resumable, weighted_mean
from pose_lab.training.callbacks import ProgressLog


def _model(seed=0, regularizer=None):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((4,))
    h = keras.layers.Dense(8, activation="relu", kernel_regularizer=regularizer)(inp)
    out = keras.layers.Dense(3)(h)
    return keras.Model(inp, out)


def _two_outputs():
    inp = keras.Input((4,))
    return keras.Model(inp, {"a": keras.layers.Dense(2)(inp), "b": keras.layers.Dense(1)(inp)})


@pytest.mark.parametrize("compiled", [False, True, "auto"])
def test_batched_predict_equals_one_call(compiled):
    model = _model()
    x = np.random.default_rng(0).normal(size=(37, 4)).astype("float32")
    whole = ops.convert_to_numpy(model(x, training=False))
    out = batched_predict(model, x, batch_size=8, compiled=compiled)  # 37 = 4 x 8 + 5: a padded tail
    assert out.shape == (37, 3)
    np.testing.assert_allclose(out, whole, rtol=1e-5, atol=1e-6)


def test_batched_predict_dict_and_tuple_outputs():
    model = _two_outputs()
    x = np.random.default_rng(1).normal(size=(10, 4)).astype("float32")
    out = batched_predict(model, x, batch_size=3)
    assert set(out) == {"a", "b"} and out["a"].shape == (10, 2) and out["b"].shape == (10, 1)
    np.testing.assert_allclose(out["a"], ops.convert_to_numpy(model(x)["a"]), rtol=1e-5, atol=1e-6)
    pair = batched_predict(lambda v, training=False: (v[:, :1], v[:, 1:]), x, batch_size=4)
    assert isinstance(pair, tuple) and pair[0].shape == (10, 1) and pair[1].shape == (10, 3)
    np.testing.assert_array_equal(np.concatenate(pair, axis=1), x)


def test_batched_predict_rejects_empty_and_bad_batch():
    model = _model()
    with pytest.raises(ValueError, match="at least one sample"):
        batched_predict(model, np.zeros((0, 4), "float32"))
    with pytest.raises(ValueError, match="batch_size: expected a positive int"):
        batched_predict(model, np.zeros((2, 4), "float32"), batch_size=0)


def test_add_regularization_sums_model_losses():
    model = _model(regularizer=keras.regularizers.L2(0.1))
    model(np.zeros((1, 4), "float32"))
    loss = ops.convert_to_tensor(1.5)
    total = float(ops.convert_to_numpy(add_regularization(model, loss)))
    kernel = ops.convert_to_numpy(model.layers[1].kernel)
    assert total == pytest.approx(1.5 + 0.1 * float((kernel ** 2).sum()), rel=1e-5)
    plain = _model()
    assert add_regularization(plain, loss) is loss


def test_fit_resumable_writes_checkpoint_backup_logs_and_progress(tmp_path, capsys):
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 3)).astype("float32")
    hist = fit_resumable(model, x, y, epochs=2, workdir=tmp_path / "run", batch_size=8,
                         validation_data=(x, y))
    assert len(hist.history["loss"]) == 2 and "val_loss" in hist.history
    assert (tmp_path / "run" / "best.keras").is_file()
    assert not (tmp_path / "run" / "backup").exists() or not os.listdir(tmp_path / "run" / "backup")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert "ETA 0:00" in lines[-1] and "val_loss" in lines[-1]


def test_fit_resumable_resumes_after_an_interruption(tmp_path):
    """Interrupted at epoch 3 of 5: the second call runs only epochs 3-5 (BackupAndRestore)."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 3)).astype("float32")

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    model = _model()
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(model, x, y, epochs=5, workdir=tmp_path, batch_size=8, progress=False,
                      callbacks=[Stop()])
    class Count(keras.callbacks.Callback):
        epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

    fresh = _model(seed=1)
    fresh.compile(optimizer="adam", loss="mse")
    hist = fit_resumable(fresh, x, y, epochs=5, workdir=tmp_path, batch_size=8, progress=False,
                         callbacks=[Count()])
    assert Count.epochs == [2, 3, 4] and hist.resumed_from == 2
    assert hist.epoch == [0, 1, 2, 3, 4] and len(hist.history["loss"]) == 5  # the whole run's history


def test_weighted_mean_closed_form_and_errors():
    v = np.array([1.0, 2.0, 4.0, 8.0], "float32")
    w = np.array([0.5, 0.0, 1.5, 2.0], "float32")
    assert float(ops.convert_to_numpy(weighted_mean(v, w))) == pytest.approx((w * v).sum() / w.sum())
    assert float(ops.convert_to_numpy(weighted_mean(v, w[:, None] * 10))) == pytest.approx((w * v).sum() / w.sum())
    assert float(ops.convert_to_numpy(weighted_mean(v))) == pytest.approx(v.mean())
    assert float(ops.convert_to_numpy(weighted_mean(v, np.zeros(4, "float32")))) == 0.0
    with pytest.raises(ValueError, match="one weight per sample"):
        weighted_mean(v, np.ones((4, 2), "float32"))
    with pytest.raises(ValueError, match="expected 4 weights"):
        weighted_mean(v, np.ones(3, "float32"))


def test_fit_resumable_without_workdir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    fit_resumable(model, np.zeros((8, 4), "float32"), np.zeros((8, 3), "float32"), epochs=1,
                  batch_size=4, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_progress_log_eta_is_mean_epoch_time_times_epochs_left():
    log = ProgressLog(print_fn=lambda _line: None)
    log.set_params({"epochs": 4})
    clock = iter([0.0, 10.0, 10.0, 30.0])  # epoch 1 begin/end, epoch 2 begin/end
    log.on_train_begin()
    log._clock = lambda: next(clock)
    log._start = 0.0
    for epoch in range(2):
        log.on_epoch_begin(epoch)
        log.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    # after epoch 2: 30 s for 2 epochs -> 15 s each, 2 epochs left -> 30 s
    assert log.lines[-1].endswith("elapsed 0:30  ETA 0:30"), log.lines[-1]
    assert "20.0 s/epoch" in log.lines[-1] and "loss 0.5" in log.lines[-1]
    with pytest.raises(ValueError, match="every"):
        ProgressLog(every=0)


class _Stop(Exception):
    pass


class _RaiseAtFirstBatch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        marker = "a local of the frame that raised"  # noqa: F841  (inspected through the traceback)
        raise _Stop


def _deepest_frame_locals(excinfo):
    tb = excinfo.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_locals


class _Batches(keras.utils.PyDataset):
    def __init__(self, workers):
        super().__init__(workers=workers)

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32")


@pytest.mark.parametrize("in_ipython, workers", [(False, 1), (True, 1), (False, 0)])
def test_fit_and_release_times_the_fit_and_frees_the_frames_of_a_failed_fit_in_a_script(monkeypatch, in_ipython,
                                                                                       workers):
    inp = keras.Input((2,))
    model = keras.Model(inp, keras.layers.Dense(1)(inp))
    model.compile("sgd", "mse")
    history = fit_and_release(model, _Batches(workers), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and history.fit_seconds > 0
    monkeypatch.setattr(base, "_in_ipython", lambda: in_ipython)
    with pytest.raises(_Stop) as excinfo:
        fit_and_release(model, _Batches(workers), epochs=1, verbose=0, callbacks=[_RaiseAtFirstBatch()])
    # a script drops the locals the traceback holds (under TensorFlow they kept a stopped run's stream iterator
    # alive and hung the interpreter's exit); IPython keeps them for %debug; data without workers is left alone
    cleared = keras.backend.backend() == "tensorflow" and workers > 0 and not in_ipython
    assert ("marker" in _deepest_frame_locals(excinfo)) != cleared

