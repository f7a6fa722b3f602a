"""Helpers shared by the unit tests that run under both backends (not a test module)."""

import keras
import pytest


def compiled(fn):
    """``fn`` compiled the way the active backend compiles a train step (``tf.function`` / ``jax.jit``).

    Used to check that keras.ops code traces: static shapes, no Python branching on values.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn


#: For a test that compares the two backends itself (the active one here, the other in a subprocess):
#: it runs where TensorFlow is active; under JAX it would repeat the same comparison (CI runs both).
compares_both_backends = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="compares TensorFlow with JAX itself; run in the TensorFlow run (the same comparison)",
)
