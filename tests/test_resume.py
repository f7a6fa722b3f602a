"""The resume contract of pose_lab.training.base.fit_resumable (issue 12).

A run killed at batch k of epoch e and resumed by calling the same
``fit_resumable(...)`` again (here with a freshly built model whose initial
weights differ, as after a Colab restart) must end like a run that was never
interrupted: same weights (and optimizer state), same epoch metrics, same
schedules (KL beta, learning rate from ``optimizer.iterations``) and the same
``best.keras``. One harness, four training classes: the keypoint trainer,
the lifter (through its public API), the VAE family and the cross-modal VAE.
"""

import keras
import numpy as np
import pytest
from keras import ops

from pose_lab.heatmaps import encode_heatmaps
from pose_lab.models.crossmodal import build_crossmodal_networks
from pose_lab.models.lifting import build_lifter
from pose_lab.training import vae as V
from pose_lab.training.base import EpochShuffledArrays, fit_resumable
from pose_lab.training.callbacks import BestCheckpoint, LinearKLAnnealing
from pose_lab.training.crossmodal import CrossModalVAE
from pose_lab.training.keypoints2d import KeypointTrainer, fit_keypoints2d
from pose_lab.training.lifting import compile_lifter, fit_lifter
from process_utils import host_and_a_dead_pid


class Interrupt(Exception):
    """Stands for the kill (Ctrl-C, a Colab disconnect)."""


class KillAt(keras.callbacks.Callback):
    """Raise after batch ``batch`` of epoch ``epoch`` (0-based), i.e. in the middle of that epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise Interrupt


def numpy_state(model):
    """Every weight and optimizer variable of ``model`` as NumPy arrays."""
    values = [ops.convert_to_numpy(v) for v in model.weights]
    values += [ops.convert_to_numpy(v) for v in model.optimizer.variables]
    return values


def assert_same_arrays(a, b, what):
    assert len(a) == len(b), what
    for i, (u, v) in enumerate(zip(a, b)):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6, err_msg=f"{what} #{i}")


def assert_same_history(h1, h2):
    assert set(h1) == set(h2), (sorted(h1), sorted(h2))
    for key in h1:
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-5, atol=1e-6, err_msg=key)


def check_contract(tmp_path, make, fit, kill_at=(1, 1), seed=0):
    """``make(seed) -> compiled model``; ``fit(model, workdir, callbacks) -> History``."""
    keras.utils.set_random_seed(seed)
    straight = make(seed)
    h_straight = fit(straight, tmp_path / "straight", [])

    keras.utils.set_random_seed(seed)
    first = make(seed)
    with pytest.raises(Interrupt):
        fit(first, tmp_path / "resumed", [KillAt(*kill_at)])
    assert (tmp_path / "resumed" / "backup" / "state.json").is_file()
    keras.utils.set_random_seed(seed + 100)  # the resumed process starts elsewhere: everything comes from the backup
    again = make(seed + 100)
    h_resumed = fit(again, tmp_path / "resumed", [])

    assert h_resumed.resumed_from == kill_at[0]
    assert h_resumed.epoch == h_straight.epoch
    assert_same_history(h_straight.history, h_resumed.history)
    assert_same_arrays(numpy_state(straight), numpy_state(again), "weights and optimizer state")
    steps = [int(ops.convert_to_numpy(m.optimizer.iterations)) for m in (straight, again)]
    assert steps[0] == steps[1]
    lr = [float(ops.convert_to_numpy(m.optimizer.learning_rate)) for m in (straight, again)]
    assert lr[0] == pytest.approx(lr[1], rel=1e-6)
    best = [keras.models.load_model(tmp_path / d / "best.keras", compile=False) for d in ("straight", "resumed")]
    assert_same_arrays([ops.convert_to_numpy(w) for w in best[0].weights],
                       [ops.convert_to_numpy(w) for w in best[1].weights], "best.keras")
    assert not (tmp_path / "resumed" / "backup").exists()  # deleted when the run completed
    return straight, again, h_straight, h_resumed


def decaying_adam(rate=3e-3):
    return keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(rate, decay_steps=3, decay_rate=0.7))


# ------------------------------------------------------------------ four trainers


def test_keypoint_trainer_resumes_exactly(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (12, 32, 32, 3)).astype("float32")
    kp = rng.uniform(4, 27, (12, 17, 2))
    hm, w = encode_heatmaps(kp, None, heatmap_size=(8, 8), sigma=1.0, stride=4)

    def make(seed):  # a tiny heatmap network (B, 32, 32, 3) -> (B, 8, 8, 17) with batch norm
        inp = keras.Input((32, 32, 3))
        h = keras.layers.Conv2D(8, 3, strides=4, padding="same")(keras.layers.Rescaling(1 / 255)(inp))
        h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
        model = KeypointTrainer(keras.Model(inp, keras.layers.Conv2D(17, 1)(h)))
        model.compile(decaying_adam())
        return model

    def fit(model, workdir, cbs):
        return fit_keypoints2d(model, (images, {"heatmaps": hm, "weights": w}), 3, workdir, batch_size=4,
                               callbacks=cbs, tensorboard=False, progress=False)

    check_contract(tmp_path, make, fit, kill_at=(1, 1))


def test_lifter_resumes_exactly_with_dropout_and_batch_norm(tmp_path):
    rng = np.random.default_rng(1)
    x2d = rng.normal(size=(40, 16, 2)).astype("float32")
    y3d = rng.normal(size=(40, 16, 3)).astype("float32")
    xv, yv = x2d[:8], y3d[:8]

    def make(seed):
        return compile_lifter(build_lifter(hidden=16, num_blocks=1, dropout=0.3), decaying_adam())

    def fit(model, workdir, cbs):
        return fit_lifter(model, x2d, y3d, epochs=3, batch_size=8, validation_data=(xv, yv), workdir=workdir,
                          callbacks=cbs, tensorboard=False, progress=False)

    check_contract(tmp_path, make, fit, kill_at=(2, 2))


@pytest.mark.parametrize("kind", ["beta_vae", "autoencoder"])
def test_vae_family_resumes_exactly_with_kl_annealing(tmp_path, kind):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(24, 4, 3)).astype("float32")

    def make(seed):
        if kind == "autoencoder":
            model = V.make_pose_autoencoder((4, 3), latent_dim=2, hidden=8, num_blocks=1)
        else:
            # seed=None: the sampling noise comes from the global seed, which the resumed process does not share
            model = V.make_pose_vae((4, 3), latent_dim=2, hidden=8, num_blocks=1, seed=None,
                                    cls=V.BetaVAE if kind == "beta_vae" else V.VAE)
        model.compile(optimizer=decaying_adam())
        return model

    def fit(model, workdir, cbs):
        anneal = [] if kind == "autoencoder" else [LinearKLAnnealing(0.0, 1.0, steps=10)]
        return V.fit_vae(model, x, epochs=3, batch_size=6, validation_data=x[:6], workdir=workdir,
                         callbacks=anneal + cbs, tensorboard=False, progress=False)

    straight, again, h1, h2 = check_contract(tmp_path, make, fit, kill_at=(1, 2))
    if kind != "autoencoder":
        # 4 steps per epoch, ramp over 10 steps: the epoch means of beta are the schedule's, resumed or not
        np.testing.assert_allclose(h2.history["beta"], [0.15, 0.55, 0.925], atol=1e-6)
        assert float(ops.convert_to_numpy(again.beta)) == pytest.approx(1.0)


def test_crossmodal_vae_resumes_exactly(tmp_path):
    rng = np.random.default_rng(3)
    n = 12
    data = {"image": rng.integers(0, 255, (n, 8, 8, 3)).astype("uint8"),
            "pose_2d": rng.normal(size=(n, 16, 2)).astype("float32"),
            "pose_3d": rng.normal(size=(n, 16, 3)).astype("float32")}

    def make(seed):
        nets = build_crossmodal_networks(image_size=8, latent_dim=4, encoder_widths=(4,), decoder_widths=(4,),
                                         pose_hidden=8, pose_blocks=1)
        model = CrossModalVAE(**nets, beta=0.1, seed=None)
        model.compile(optimizer=decaying_adam())
        return model

    def fit(model, workdir, cbs):
        return fit_resumable(model, data, epochs=3, batch_size=4, workdir=workdir, callbacks=cbs,
                             tensorboard=False, progress=False)

    straight, again, _, _ = check_contract(tmp_path, make, fit, kill_at=(1, 0))
    assert int(ops.convert_to_numpy(again.pair_step)) == 9


# ------------------------------------------------------------------ pieces of the contract


def test_killed_in_the_first_epoch_restarts_from_the_initial_weights(tmp_path):
    """The backup written before the first epoch: the same model object, half-trained, is reset."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 2)).astype("float32")

    def make(seed):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(keras.optimizers.SGD(0.1), loss="mse")
        return model

    def fit(model, workdir, cbs):
        return fit_resumable(model, x, y, epochs=2, batch_size=4, workdir=workdir, callbacks=cbs,
                             tensorboard=False, progress=False)

    straight = make(0)
    fit(straight, tmp_path / "a", [])
    model = make(0)
    with pytest.raises(Interrupt):
        fit(model, tmp_path / "b", [KillAt(0, 2)])
    fit(model, tmp_path / "b", [])  # the same object, three steps into epoch 0
    assert_same_arrays(numpy_state(straight), numpy_state(model), "weights")


def test_resume_never_overwrites_best_checkpoint_with_a_worse_epoch(tmp_path):
    """Issue 12 item 4: a diverging run (loss x2.25 per step) is best after epoch 1; a resume must keep that."""
    x, y = np.ones((4, 1), "float32"), np.zeros((4, 1), "float32")

    def make():
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
        model.compile(keras.optimizers.SGD(1.25), loss="mse")  # w <- w - 1.25 * 2w = -1.5 w
        return model

    first = make()
    with pytest.raises(Interrupt):
        fit_resumable(first, x, y, epochs=4, batch_size=2, workdir=tmp_path, tensorboard=False, progress=False,
                      callbacks=[KillAt(2, 0)])
    hist = fit_resumable(make(), x, y, epochs=4, batch_size=2, workdir=tmp_path, tensorboard=False, progress=False)
    assert np.all(np.diff(hist.history["loss"]) > 0)  # every epoch worse than the one before
    best = keras.models.load_model(tmp_path / "best.keras")
    # the best model is the one after epoch 1 (two steps): w = (-1.5) ** 2
    np.testing.assert_allclose(ops.convert_to_numpy(best.weights[0]), [[2.25]], rtol=1e-6)


def test_best_checkpoint_state_round_trip_and_nan(tmp_path):
    cb = BestCheckpoint(tmp_path / "m.keras", monitor="val_loss")
    assert cb._improves(3.0) and not cb._improves(float("nan"))
    cb.best = 2.0
    fresh = BestCheckpoint(tmp_path / "m.keras", monitor="val_loss")
    fresh.set_resume_state(cb.get_resume_state())
    assert fresh.best == 2.0 and not fresh._improves(2.5) and fresh._improves(1.5)
    other = BestCheckpoint(tmp_path / "m.keras", monitor="loss")
    other.set_resume_state(cb.get_resume_state())  # another monitor: the saved value does not apply
    assert other.best is None
    assert BestCheckpoint(tmp_path / "m.keras", monitor="val_acc").mode == "max"
    with pytest.raises(ValueError, match=".keras"):
        BestCheckpoint(tmp_path / "m.h5")


def test_best_checkpoint_leaves_no_scratch_and_clears_a_killed_saves(tmp_path):
    host, dead_pid = host_and_a_dead_pid()
    killed = tmp_path / f".tmp_checkpoint_{host}_{dead_pid}_xyz"   # a save killed before its rename
    killed.mkdir()
    (killed / "m.keras").write_bytes(b"half a zip")
    x = keras.Input((2,))
    model = keras.Model(x, keras.layers.Dense(1)(x))
    cb = BestCheckpoint(tmp_path / "m.keras", monitor="loss")
    cb.set_model(model)
    cb.on_epoch_end(0, {"loss": 1.0})
    assert not killed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(loaded.weights[0]), ops.convert_to_numpy(model.weights[0]))


def test_epoch_shuffled_arrays_order_depends_only_on_seed_and_epoch():
    x = np.arange(10)
    a, b = EpochShuffledArrays(x, x * 2, batch_size=4, seed=7), EpochShuffledArrays(x, x * 2, batch_size=4, seed=7)
    orders = []
    for epoch in (0, 1, 0):
        a.epoch = epoch
        batches = [a[i] for i in range(len(a))]
        assert [len(xb) for xb, _ in batches] == [4, 4, 2]
        served = np.concatenate([xb for xb, _ in batches])
        assert sorted(served) == list(range(10))  # each sample once per epoch
        np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), 2 * served)  # pairs kept
        orders.append(served)
    assert not np.array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(orders[0], orders[2])
    b.epoch = 1  # a second object (a resumed process) serves the same epoch the same way
    np.testing.assert_array_equal(np.concatenate([b[i][0] for i in range(len(b))]), orders[1])
    with pytest.raises(ValueError, match="lengths"):
        EpochShuffledArrays(x, x[:5])
    with pytest.raises(IndexError):
        a[3]


def test_corrupt_or_foreign_backup_names_the_file(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "state.json").write_text("{not json")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match="state.json"):
        fit_resumable(model, np.zeros((4, 2)), np.zeros((4, 1)), workdir=tmp_path, tensorboard=False, progress=False)
