"""Helpers shared by the unit tests that run under both backends (not a test module)."""

import keras


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
