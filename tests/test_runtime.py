"""Smoke/full mode, seeding and data-folder resolution."""

import os

import numpy as np
import pytest

from pose_lab import runtime
from process_utils import host_and_a_dead_pid


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": ""}, False),
        ({"POSE_LAB_SMOKE": "1"}, True),
        ({"POSE_LAB_SMOKE": "0", "CI": "true"}, False),
    ],
)
def test_smoke_mode(monkeypatch, env, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("POSE_LAB_SMOKE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert runtime.is_smoke() is expected
    assert runtime.pick("s", "f") == ("s" if expected else "f")


def test_set_seed_makes_numpy_and_keras_repeatable():
    import keras

    runtime.set_seed(123)
    a = np.random.rand(3), keras.ops.convert_to_numpy(keras.random.normal((3,)))
    runtime.set_seed(123)
    b = np.random.rand(3), keras.ops.convert_to_numpy(keras.random.normal((3,)))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed"):
        runtime.set_seed(-1)


def test_data_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("POSE_LAB_DATA", str(tmp_path))
    assert runtime.data_dir() == tmp_path.resolve()
    monkeypatch.delenv("POSE_LAB_DATA")
    assert runtime.data_dir().name == "data"


def test_describe_is_one_line():
    line = runtime.describe(print_fn=None)
    assert "\n" not in line
    assert f"backend={runtime.backend()}" in line
    assert "mode=" in line


def test_strategy_and_precision():
    strategy = runtime.distribution_strategy()
    if runtime.backend() == "tensorflow":
        assert strategy.num_replicas_in_sync >= 1
    else:
        assert strategy is None
    assert runtime.set_mixed_precision(False) == "float32"


def test_progress_one_line_in_logs_live_bar_in_notebooks_silent_when_asked():
    import io

    from pose_lab.runtime import _Progress

    ticks = iter(range(0, 1000))

    def make(interactive, enabled=True):
        out = io.StringIO()
        bar = _Progress(10, "work", enabled, interactive, stream=out)
        bar._clock = lambda: float(next(ticks))  # one second per reading: every update redraws
        bar._start = bar._last = bar._clock()
        return bar, out

    bar, log = make(interactive=False)
    for _ in range(10):
        bar.update()
    bar.close()
    assert log.getvalue().count("\n") == 1 and log.getvalue().startswith("work: [") and "10/10" in log.getvalue()
    assert "\r" not in log.getvalue()

    bar, live = make(interactive=True)
    for _ in range(4):
        bar.update()
    assert live.getvalue().count("\r") == 4 and "\n" not in live.getvalue() and "4/10" in live.getvalue()
    bar.close()  # stopped early: the last line says how far it got and ends the line
    assert live.getvalue().endswith("4/10 (" + live.getvalue().rsplit("(", 1)[1]) and live.getvalue().endswith("\n")

    bar, quiet = make(interactive=True, enabled=False)
    bar.update(10)
    bar.close()
    assert quiet.getvalue() == ""


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    import os

    from pose_lab import runtime

    path = tmp_path / "sub" / "f.txt"
    assert runtime.atomic_write(path, lambda fh: fh.write("first")) == path
    assert path.read_text() == "first"
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # a new file's permissions, not mkstemp's 0o600

    def half_then_fail(fh):
        fh.write("sec")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runtime.atomic_write(path, half_then_fail)
    assert path.read_text() == "first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]  # no temporary file left
    runtime.atomic_write(path, lambda fh: fh.write(b"\x00bytes"), binary=True, fsync=True)
    assert path.read_bytes() == b"\x00bytes"


def test_load_average_formats_three_numbers_or_says_na(monkeypatch):
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (0.04, 1.25, 12.0), raising=False)
    assert runtime.load_average() == "0.0 1.2 12.0"   # one decimal each (1.25 rounds half to even)

    def unavailable():
        raise OSError("no load average")

    monkeypatch.setattr(runtime.os, "getloadavg", unavailable, raising=False)
    assert runtime.load_average() == "n/a"
    monkeypatch.delattr(runtime.os, "getloadavg")
    assert runtime.load_average() == "n/a"


def test_scratch_dir_clears_what_dead_local_processes_left_and_nothing_else(tmp_path):
    host, dead_pid = host_and_a_dead_pid()
    dead = tmp_path / f".tmp_h36m_{host}_{dead_pid}_abc"
    alive = tmp_path / f".tmp_h36m_{host}_{os.getpid()}_abc"
    other_host = tmp_path / f".tmp_h36m_{host}x_{dead_pid}_abc"   # another machine on a shared drive
    other_tag = tmp_path / f".tmp_train_{host}_{dead_pid}_abc"
    legacy = tmp_path / ".tmp_h36m_abc"                           # the old name: owner unknown
    for d in (dead, alive, other_host, other_tag, legacy):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "part.npz").write_bytes(b"x")
    new = runtime.scratch_dir(tmp_path, "h36m")
    assert new.is_dir() and new.parent == tmp_path and not any(new.iterdir())
    assert new.name.startswith(f".tmp_h36m_{host}_{os.getpid()}_")
    assert not dead.exists()
    assert alive.is_dir() and other_host.is_dir() and other_tag.is_dir() and legacy.is_dir()
    # the caller removes its own folder; a second call leaves the first one (this process runs)
    again = runtime.scratch_dir(tmp_path, "h36m")
    assert new.is_dir() and again != new
    # odd characters in the tag become '-'; an empty tag is refused
    assert runtime.scratch_dir(tmp_path, "val 2017").name.startswith(f".tmp_val-2017_{host}_")
    with pytest.raises(ValueError, match="tag"):
        runtime.scratch_dir(tmp_path, "")


def test_dataset_writers_leave_no_scratch_folder_and_clear_a_killed_runs(tmp_path):
    from pose_lab.data.synthetic import write_coco_dataset

    host, dead_pid = host_and_a_dead_pid()
    killed = tmp_path / f".tmp_val_{host}_{dead_pid}_xyz"
    (killed / "val").mkdir(parents=True)
    write_coco_dataset(tmp_path, split="val", num_images=2, image_size=(64, 64), seed=1)
    assert not killed.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp_")]
