"""Where and how the course runs: smoke/full mode, seeds, devices, data folders.

Every notebook starts with::

    from pose_lab import runtime
    runtime.set_seed(0)
    SMOKE = runtime.is_smoke()
    runtime.describe()

* **Smoke mode** (``POSE_LAB_SMOKE=1``, or whenever ``CI`` is set) shrinks data
  and epochs so a notebook runs in about a minute on two CPU cores; it is what
  the tests execute. **Full mode** is the default for students.
* The **data directory** is ``data/`` in the repository (or the current
  working directory's ``data/`` when pose_lab is installed from a wheel),
  overridable with ``POSE_LAB_DATA``.

Nothing here imports TensorFlow unless a function needs it (GPU/TPU detection,
the distribution strategy), so ``import pose_lab.runtime`` stays cheap.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from pathlib import Path

__all__ = [
    "atomic_write",
    "scratch_dir",
    "is_smoke",
    "pick",
    "set_seed",
    "backend",
    "is_colab",
    "gpus",
    "tpu_available",
    "distribution_strategy",
    "set_mixed_precision",
    "data_dir",
    "shared_data_dir",
    "repo_root",
    "describe",
    "load_average",
    "progress",
]

_TRUE = {"1", "true", "yes", "on"}


def is_smoke() -> bool:
    """True in smoke mode: ``POSE_LAB_SMOKE`` set to a true value, or ``CI`` set.

    ``POSE_LAB_SMOKE=0`` forces full mode even when ``CI`` is set.
    """
    flag = os.environ.get("POSE_LAB_SMOKE")
    if flag is not None and flag.strip() != "":
        return flag.strip().lower() in _TRUE
    ci = os.environ.get("CI")
    return ci is not None and ci.strip().lower() not in {"", "0", "false", "no", "off"}


def pick(smoke, full):
    """Return ``smoke`` in smoke mode and ``full`` otherwise.

    Example:
        >>> epochs = pick(smoke=1, full=30)
    """
    return smoke if is_smoke() else full


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and Keras (and through Keras the backend's RNG)."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    import keras

    keras.utils.set_random_seed(seed)


def backend() -> str:
    """Name of the Keras backend in use (``"tensorflow"``, ``"jax"``, ...)."""
    import keras

    return keras.backend.backend()


def is_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def gpus() -> list:
    """Names of the GPUs visible to the active backend (empty on CPU)."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if name == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    if name == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def tpu_available() -> bool:
    """True when a TPU is reachable (Colab TPU runtime, ``TPU_NAME`` set, or JAX TPU)."""
    if backend() == "jax":
        import jax

        return any(d.platform == "tpu" for d in jax.devices())
    return bool(os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"))


def distribution_strategy():
    """The ``tf.distribute`` strategy to build models under (TensorFlow backend).

    ``TPUStrategy`` on a TPU, ``MirroredStrategy`` with several GPUs, the
    default (no-op) strategy otherwise. Use as ``with strategy.scope(): ...``.
    Under other backends returns ``None``: JAX distributes through
    ``keras.distribution`` instead (see ``keras.distribution.DataParallel``).
    """
    if backend() != "tensorflow":
        return None
    import tensorflow as tf

    if tpu_available():
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if len(gpus()) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def set_mixed_precision(enabled: bool = True) -> str:
    """Switch Keras' global dtype policy; returns the policy name now in force.

    ``mixed_float16`` on GPUs, ``mixed_bfloat16`` on TPUs, ``float32`` when
    disabled or on CPU (where mixed precision is slower, not faster).
    """
    import keras

    if not enabled:
        policy = "float32"
    elif tpu_available():
        policy = "mixed_bfloat16"
    elif gpus():
        policy = "mixed_float16"
    else:
        policy = "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def repo_root() -> Path | None:
    """The repository checkout pose_lab runs from, or ``None`` when installed as a wheel."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").exists() else None


def data_dir() -> Path:
    """Folder holding datasets: ``$POSE_LAB_DATA``, else ``<repo>/data``, else ``./data``."""
    env = os.environ.get("POSE_LAB_DATA")
    if env:
        return Path(env).expanduser().resolve()
    root = repo_root()
    return (root / "data") if root is not None else Path.cwd() / "data"


def shared_data_dir() -> Path | None:
    """The folder of real data samples, or ``None`` when none is found.

    It holds ``coco_val2017_mini/`` (28 COCO val2017 images with their official
    keypoint annotations) and ``cmu_mocap/`` (three CMU BVH clips). Looked up in
    this order: ``$POSE_LAB_SHARED_DATA``; ``data/samples/real`` in the
    repository checkout (committed with the kit, licences in its ``LICENSE.md``);
    ``data/samples/real`` under :func:`data_dir` (where
    :func:`pose_lab.data.samples.real_samples_dir` downloads them outside a
    checkout, e.g. in Colab); the course's ``../shared/data``.
    Tests and notebooks that use it skip, loudly, when it is absent.
    """
    env = os.environ.get("POSE_LAB_SHARED_DATA")
    candidates = [Path(env)] if env else []
    root = repo_root()
    if root is not None:
        candidates.append(root / "data" / "samples" / "real")
    candidates.append(data_dir() / "samples" / "real")
    if root is not None:
        candidates.append(root.parent / "shared" / "data")
    for c in candidates:
        if (c / "coco_val2017_mini").is_dir() or (c / "cmu_mocap").is_dir():
            return c.resolve()
    return None


class _Progress:
    """What :func:`progress` returns: ``update(n)`` after each piece of work, ``close()`` at the end."""

    def __init__(self, total, label, enabled, interactive, stream=None):
        import time

        self.total, self.label, self.done = int(total), label, 0
        self.enabled = bool(enabled) and self.total > 0
        self.interactive = interactive
        self.stream = stream if stream is not None else sys.stdout
        self._clock = time.perf_counter
        self._start = self._last = self._clock()
        self._closed = False

    def _line(self) -> str:
        elapsed = self._clock() - self._start
        frac = self.done / self.total
        eta = elapsed * (1 - frac) / frac if 0 < frac < 1 else 0.0
        width = 24
        bar = "#" * int(round(width * frac)) + "." * (width - int(round(width * frac)))
        tail = f"{elapsed:.0f} s" if frac >= 1 else f"{elapsed:.0f} s, ETA {eta:.0f} s"
        return f"{self.label}: [{bar}] {self.done}/{self.total} ({tail})"

    def update(self, n=1):
        self.done = min(self.done + int(n), self.total)
        if not self.enabled or self._closed:
            return
        if self.done >= self.total:
            self.close()
        elif self.interactive and self._clock() - self._last >= 0.5:
            self._last = self._clock()
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def close(self):
        """Print the final line (also when stopped early); idempotent."""
        if not self.enabled or self._closed:
            return
        self._closed = True
        self.stream.write(("\r" if self.interactive else "") + self._line() + "\n")
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def progress(total, label: str, enabled=True):
    """One progress display for long work, in a notebook, a terminal and a CI log.

    A one-line bar with elapsed time and ETA that redraws itself (twice a
    second at most) in a notebook or a terminal, and prints a single summary
    line when the output is a log file or a pipe (CI), so logs stay readable.
    Pure Python: data code that uses it imports no Keras or TensorFlow.
    ``enabled=False`` (a function's ``progress=False``) makes it silent.

    Example::

        with runtime.progress(n, "rendering crops") as bar:
            for chunk in chunks:
                ...
                bar.update(len(chunk))
    """
    return _Progress(total, label, bool(enabled), _interactive())


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages as ``"0.5 1.3 1.9"`` (``"n/a"`` where the OS has none).

    The benchmarks print it beside their timings: other work on a 2-core machine slows every number.
    """
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except (OSError, AttributeError):  # no load average (e.g. Windows)
        return "n/a"


def describe(print_fn=print) -> str:
    """One line describing the environment; printed and returned.

    Example output::

        pose_lab 0.1.0 | mode=smoke | keras 3.13.0, backend=tensorflow | device=CPU | Python 3.13.1 | data=/content/pose_lab/data
    """
    import keras

    import pose_lab

    try:
        devices = gpus()
    except Exception:  # pragma: no cover - a broken driver must not break the tour
        devices = []
    device = "TPU" if tpu_available() else (f"{len(devices)} GPU" if devices else "CPU")
    parts = [
        f"pose_lab {pose_lab.__version__}",
        f"mode={'smoke' if is_smoke() else 'full'}",
        f"keras {keras.__version__}, backend={backend()}",
        f"device={device}",
        f"precision={keras.mixed_precision.global_policy().name}",
        f"Python {platform.python_version()}",
        "Colab" if is_colab() else "local",
        f"data={data_dir()}",
    ]
    line = " | ".join(parts)
    if print_fn is not None:
        print_fn(line)
    return line


def atomic_write(path, write, *, binary=False, fsync=False) -> Path:
    """Write ``path`` so that a reader sees the old file or the new one, never a half-written one.

    ``write(fh)`` fills a temporary file in the same folder (text, UTF-8, or
    binary with ``binary=True``); it then gets the permissions a new file
    would get (``0o666`` minus the umask) and replaces ``path`` in one
    ``os.replace``. If ``write`` raises (or the process is interrupted
    there), the temporary file is removed and ``path`` is untouched.
    ``fsync=True`` flushes the data to disk before the rename.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs; ``True`` when that cannot be told (not POSIX)."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it runs, under another user
        return True
    return True


def scratch_dir(parent, tag: str) -> Path:
    """A new hidden folder in ``parent`` to write files into before they are renamed into place.

    Its name is ``.tmp_<tag>_<host>_<pid>_<random>`` (characters other than
    letters, digits and ``-`` in ``tag`` and the host name become ``-``). The writer removes it when
    it finishes or fails, but a hard kill (SIGKILL, a Colab runtime reset)
    skips that, and a dataset's half-written copy could stay behind for good.
    So first, every ``.tmp_<tag>_<host>_<pid>_*`` folder in ``parent`` whose
    host is this machine and whose process no longer runs is removed. Folders
    of other machines (a shared drive), of running processes and of any other
    name are left alone; where liveness cannot be told (not POSIX) nothing is
    removed.

    Returns:
        the new folder's :class:`~pathlib.Path`.
    """
    import re
    import shutil
    import socket
    import tempfile

    def name_part(text):  # any character but letters, digits and '-' becomes '-'
        return re.sub(r"[^A-Za-z0-9-]", "-", str(text))

    if not str(tag):
        raise ValueError("tag: expected a non-empty name, e.g. 'h36m'")
    tag = name_part(tag)
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    host = name_part(socket.gethostname()) or "host"
    pattern = re.compile(rf"\.tmp_{re.escape(tag)}_{re.escape(host)}_(\d+)_[^/]*")
    for old in parent.iterdir():
        m = pattern.fullmatch(old.name)
        if m and old.is_dir() and not old.is_symlink() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp_{tag}_{host}_{os.getpid()}_", dir=parent))
