"""KL annealing schedules and callbacks (pose_lab.training.callbacks)."""

import keras
import numpy as np
import pytest

from pose_lab.training import callbacks as cbs
from pose_lab.training import vae as V


def _fu_frange_cycle_linear(n_iter, start=0.0, stop=1.0, n_cycle=4, ratio=0.5):
    """Fu et al.'s reference implementation (github.com/haofuml/cyclical_annealing), verbatim logic."""
    L = np.ones(n_iter) * stop
    period = n_iter / n_cycle
    step = (stop - start) / (period * ratio)
    for c in range(n_cycle):
        v, i = start, 0
        while v <= stop and (int(i + c * period) < n_iter):
            L[int(i + c * period)] = v
            v += step
            i += 1
    return L


def test_cyclical_schedule_at_chosen_steps():
    f = lambda t: cbs.cyclical_schedule(t, n_cycles=4, ratio=0.5, total_steps=4000, beta_max=2.0)
    # cycle length 1000: rise over steps [0, 500), plateau at beta_max over [500, 1000)
    assert f(0) == 0.0
    assert f(250) == pytest.approx(1.0)
    assert f(500) == pytest.approx(2.0)
    assert f(999) == pytest.approx(2.0)
    assert f(1000) == 0.0  # a new cycle restarts at 0
    assert f(1100) == pytest.approx(0.4)
    assert f(3999) == pytest.approx(2.0)
    assert f(4000) == pytest.approx(2.0)  # after the schedule: stays at beta_max
    assert f(10_000) == pytest.approx(2.0)
    np.testing.assert_allclose(f(np.array([0, 250, 500])), [0.0, 1.0, 2.0])


def test_cyclical_schedule_matches_fu_reference_implementation():
    for n_iter, n_cycle, ratio in [(1000, 4, 0.5), (1200, 3, 0.25), (600, 1, 1.0)]:
        ref = _fu_frange_cycle_linear(n_iter, 0.0, 1.0, n_cycle, ratio)
        ours = cbs.cyclical_schedule(np.arange(n_iter), n_cycle, ratio, n_iter)
        np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_cyclical_schedule_beta_min_and_bad_arguments():
    assert cbs.cyclical_schedule(0, 2, 0.5, 100, beta_max=1.0, beta_min=0.2) == pytest.approx(0.2)
    assert cbs.cyclical_schedule(12, 2, 0.5, 100, beta_max=1.0, beta_min=0.2) == pytest.approx(0.2 + 0.8 * 12 / 25)
    with pytest.raises(ValueError, match="ratio"):
        cbs.cyclical_schedule(0, 2, 0.0, 100)
    with pytest.raises(ValueError, match="n_cycles"):
        cbs.cyclical_schedule(0, 0, 0.5, 100)
    with pytest.raises(ValueError, match="total_steps"):
        cbs.CyclicalKLAnnealing(2, 0.5, 0)


def test_linear_schedule():
    assert cbs.linear_schedule(0, 0.0, 1.0, 100) == 0.0
    assert cbs.linear_schedule(25, 0.0, 1.0, 100) == pytest.approx(0.25)
    assert cbs.linear_schedule(100, 0.0, 1.0, 100) == pytest.approx(1.0)
    assert cbs.linear_schedule(500, 1.0, 0.5, 100) == pytest.approx(0.5)
    assert cbs.linear_schedule(3, 0.1, 0.7, 0) == pytest.approx(0.7)


def _tiny_vae(beta=0.0):
    return V.make_pose_vae((4, 3), latent_dim=2, hidden=8, num_blocks=1, beta=beta, seed=0)


def test_annealing_callback_sets_beta_used_in_the_train_step():
    # 8 samples / batch 2 = 4 steps per epoch. LinearKLAnnealing(0 -> 1 over 4 steps):
    # epoch 1 uses beta 0, .25, .5, .75 (mean .375); epoch 2 uses 1 at every step.
    x = np.random.default_rng(0).normal(size=(8, 4, 3)).astype("float32")
    model = _tiny_vae()
    model.compile(optimizer="adam")
    cb = cbs.LinearKLAnnealing(0.0, 1.0, steps=4)
    hist = model.fit(x, epochs=2, batch_size=2, shuffle=False, verbose=0, callbacks=[cb])
    # the model's "beta" metric is the mean of the value read inside compute_loss
    np.testing.assert_allclose(hist.history["beta"], [0.375, 1.0], atol=1e-6)
    assert cb.step == 8
    assert float(keras.ops.convert_to_numpy(model.beta)) == pytest.approx(1.0)
    assert [b for _, b in cb.history] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_cyclical_callback_over_two_fits_and_steps_per_execution():
    x = np.zeros((8, 4, 3), "float32")
    model = _tiny_vae()
    model.compile(optimizer="adam", steps_per_execution=2)
    cb = cbs.CyclicalKLAnnealing(n_cycles=2, ratio=0.5, total_steps=8, beta_max=0.5)
    model.fit(x, epochs=1, batch_size=1, verbose=0, callbacks=[cb])
    assert cb.step == 8
    model.fit(x, epochs=1, batch_size=1, verbose=0, callbacks=[cb])  # continues counting
    assert cb.step == 16
    assert float(keras.ops.convert_to_numpy(model.beta)) == pytest.approx(0.5)


def test_callback_needs_a_beta_variable():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="beta"):
        model.fit(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0, callbacks=[cbs.LinearKLAnnealing()])


def test_annealing_continues_from_the_optimizer_step():
    """Issue 12 item 3: a new callback (a resumed run) continues the schedule from optimizer.iterations."""
    x = np.random.default_rng(0).normal(size=(8, 4, 3)).astype("float32")
    model = _tiny_vae()
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=2, verbose=0, callbacks=[cbs.LinearKLAnnealing(0.0, 1.0, steps=10)])
    fresh = cbs.LinearKLAnnealing(0.0, 1.0, steps=10)  # the callback of a resumed process
    hist = model.fit(x, epochs=1, batch_size=2, shuffle=False, verbose=0, callbacks=[fresh])
    assert fresh.step == 8
    np.testing.assert_allclose(hist.history["beta"], [np.mean([0.4, 0.5, 0.6, 0.7])], atol=1e-6)
    assert fresh.history[0] == (4, pytest.approx(0.4))
    # start_step: a fresh schedule on a trained model
    again = cbs.LinearKLAnnealing(0.0, 1.0, steps=10, start_step=8)
    hist = model.fit(x, epochs=1, batch_size=2, verbose=0, callbacks=[again])
    np.testing.assert_allclose(hist.history["beta"], [np.mean([0.0, 0.1, 0.2, 0.3])], atol=1e-6)
    with pytest.raises(ValueError, match="start_step"):
        cbs.LinearKLAnnealing(start_step=-1)
