"""Warm-up schedules: values at chosen steps against the closed forms, serialisation, bad input."""

import math

import keras
import numpy as np
import pytest

from pose_lab.training.schedules import WarmupCosineDecay, WarmupStepDecay


def _value(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_step_decay_closed_form():
    peak, warm, f = 1e-3, 100, 0.001
    sched = WarmupStepDecay(peak, boundaries=[1000, 1500], gamma=0.1, warmup_steps=warm, warmup_start_factor=f)
    expected = {
        0: peak * f,
        50: peak * (f + (1 - f) * 0.5),  # PyTorch LinearLR: start + (1 - start) * k / total
        99: peak * (f + (1 - f) * 0.99),
        100: peak,
        999: peak,
        1000: peak * 0.1,
        1499: peak * 0.1,
        1500: peak * 0.01,
        10**6: peak * 0.01,
    }
    for step, lr in expected.items():
        assert _value(sched, step) == pytest.approx(lr, rel=1e-5), step


def test_step_decay_without_warmup_or_boundaries():
    assert _value(WarmupStepDecay(0.02, boundaries=[]), 12345) == pytest.approx(0.02)
    sched = WarmupStepDecay(0.02, boundaries=[36, 43], warmup_steps=0)
    assert [round(_value(sched, s), 8) for s in (0, 35, 36, 43)] == [0.02, 0.02, 0.002, 0.0002]


def test_cosine_decay_closed_form():
    peak, warm, total, alpha = 2e-3, 200, 1200, 0.05
    sched = WarmupCosineDecay(peak, decay_steps=total, warmup_steps=warm, warmup_start_factor=0.1, alpha=alpha)
    end = peak * alpha

    def closed(s):
        if s < warm:
            return peak * (0.1 + 0.9 * s / warm)
        p = min(max((s - warm) / (total - warm), 0.0), 1.0)
        return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * p))

    for step in (0, 1, 100, 199, 200, 450, 700, 950, 1199, 1200, 5000):
        assert _value(sched, step) == pytest.approx(closed(step), rel=1e-5, abs=1e-9), step
    assert _value(sched, 700) == pytest.approx(0.5 * (peak + end), rel=1e-5)  # half-way
    assert _value(sched, 5000) == pytest.approx(end, rel=1e-5)


def test_schedule_accepts_tensor_steps():
    sched = WarmupCosineDecay(1e-3, decay_steps=100, warmup_steps=10)
    steps = keras.ops.convert_to_tensor(np.array(55, "int64"))
    assert _value(sched, steps) == pytest.approx(0.5e-3, rel=1e-5)


@pytest.mark.parametrize("sched", [
    WarmupStepDecay(1e-3, boundaries=[10, 20], gamma=0.5, warmup_steps=5, warmup_start_factor=0.2),
    WarmupCosineDecay(1e-3, decay_steps=50, warmup_steps=5, alpha=0.1),
])
def test_schedule_serialises_with_the_optimizer(sched, tmp_path):
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(sched))
    assert type(restored) is type(sched) and restored.get_config() == sched.get_config()
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Dense(1)(x))
    model.compile(keras.optimizers.Adam(sched), loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 1)), epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    lr = loaded.optimizer.learning_rate
    # the optimizer comes back with the schedule, and its iteration counter
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == 1
    assert float(keras.ops.convert_to_numpy(lr)) == pytest.approx(_value(sched, 1), rel=1e-6)
    assert isinstance(loaded.optimizer._learning_rate, type(sched))


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="decay_steps"):
        WarmupCosineDecay(1e-3, decay_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="sorted"):
        WarmupStepDecay(1e-3, boundaries=[20, 10])
    with pytest.raises(ValueError, match="peak_learning_rate"):
        WarmupStepDecay(0.0, boundaries=[])
    with pytest.raises(ValueError, match="warmup_start_factor"):
        WarmupCosineDecay(1e-3, decay_steps=10, warmup_start_factor=2.0)


# ------------------------------------------------------------------ re-planning to a time budget


def test_rescale_schedule_moves_only_what_is_ahead():
    from pose_lab.training.schedules import rescale_schedule

    cos = WarmupCosineDecay(1.0, decay_steps=100, warmup_steps=10)
    rescale_schedule(cos, 100, 250, step=40)
    assert cos.decay_steps == 250 and cos.warmup_steps == 10
    # the closed form with the new end
    assert float(cos(130)) == pytest.approx(0.5 * (1 + math.cos(math.pi * 120 / 240)), abs=1e-6)
    rescale_schedule(cos, 250, 5, step=3)  # never inside the warm-up
    assert cos.decay_steps == 11

    steps = WarmupStepDecay(1.0, boundaries=[50, 80, 90], warmup_steps=5)
    rescale_schedule(steps, 100, 200, step=60)  # 50 is behind: it stays
    assert steps.boundaries == [50, 160, 180]
    rescale_schedule(steps, 200, 20, step=100)  # ahead but would land behind: the next step, in order
    assert steps.boundaries == [50, 101, 101]

    kc = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=90, warmup_target=1.0, warmup_steps=10)
    rescale_schedule(kc, 100, 300, step=20)  # Keras's decay starts after its warm-up
    assert kc.decay_steps == 290
    with pytest.raises(TypeError, match="cannot re-plan a ExponentialDecay"):
        rescale_schedule(keras.optimizers.schedules.ExponentialDecay(1.0, 10, 0.5), 100, 200, step=0)
    with pytest.raises(ValueError, match=">= 1 steps"):
        rescale_schedule(cos, 0, 10, step=0)


class _Ones(keras.utils.PyDataset):
    """``length`` batches of one sample, x = y = 1."""

    def __init__(self, length):
        super().__init__()
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        return np.ones((1, 1), "float32"), np.ones((1, 1), "float32")


def _budget_run(replan, planned=30, budget_steps=60, steps_per_epoch=5, peak=0.1):
    """One weight, loss = w (gradient 1): plain SGD lowers w by exactly the learning rate of each step.

    Run by ``fit_within_budget`` (the last half of every time-budgeted run in the kit) with a fake clock
    on which every step takes one second. The budget is ``budget_steps``
    seconds, the plan ``planned`` steps (a probe that was off by 2x). Returns the learning rates the train
    step applied and the re-plan callback.
    """
    from pose_lab.training.base import fit_within_budget

    x = keras.Input((1,))
    model = keras.Model(x, keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")(x))
    schedule = WarmupCosineDecay(peak, decay_steps=planned, warmup_steps=0)
    model.compile(keras.optimizers.SGD(schedule), loss=lambda y_true, y_pred: keras.ops.mean(y_pred))
    weights, now = [], [0.0]

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):  # before any callback's batch end: the step took 1 s
            now[0] += 1.0

        def on_train_batch_end(self, batch, logs=None):
            weights.append(float(keras.ops.convert_to_numpy(self.model.layers[-1].kernel)[0, 0]))

    _, limit, fit_to_budget = fit_within_budget(model, _Ones(steps_per_epoch), budget_steps, schedule, planned,
                                                replan=replan, callbacks=[Record()], clock=lambda: now[0])
    assert limit.steps == len(weights)
    applied = -np.diff(np.concatenate([[0.0], weights]))
    return applied, fit_to_budget


def test_fit_schedule_to_budget_ends_the_decay_with_the_budget():
    peak = 0.1

    def cosine(t, end):
        return peak * 0.5 * (1 + math.cos(math.pi * min(t / end, 1.0)))

    # without it the probe's plan (30 steps) holds: the second half of the budget trains at rate 0
    applied, _ = _budget_run(replan=False)
    assert len(applied) == 60
    np.testing.assert_allclose(applied, [cosine(t, 30) for t in range(60)], atol=1e-6)
    assert np.all(applied[30:] < 1e-6)
    # with it: after the second epoch (step 10) the run's own rate (1 step/s) re-plans the end to step 60,
    # and the train step applies the new plan from step 10 on (it was rebuilt)
    applied, cb = _budget_run(replan=True)
    assert len(applied) == 60
    assert cb.replans == [(10, 60)] and cb.planned_steps == 60
    expected = [cosine(t, 30) for t in range(10)] + [cosine(t, 60) for t in range(10, 60)]
    np.testing.assert_allclose(applied, expected, atol=1e-6)
    assert applied[-1] > 0


def test_fit_schedule_to_budget_leaves_a_good_plan_alone():
    applied, cb = _budget_run(replan=True, planned=58)  # within the 5 % tolerance of the 60 the budget allows
    assert cb.replans == [] and cb.planned_steps == 58
    with pytest.raises(TypeError, match="TimeLimit"):
        from pose_lab.training.callbacks import FitScheduleToBudget

        FitScheduleToBudget(WarmupCosineDecay(1.0, 10), limit=None, planned_steps=10)
