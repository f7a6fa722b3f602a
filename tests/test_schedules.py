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
