"""Run by tests/test_contrastive.py in a fresh process: SimCLR's loss with 2 devices vs 1 (prints JSON)."""
import json
import os
import sys

backend = sys.argv[1]
os.environ["KERAS_BACKEND"] = backend
if backend == "jax":
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"

import numpy as np  # noqa: E402

if backend == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
from keras import layers  # noqa: E402

from pose_lab import losses  # noqa: E402
from pose_lab.models.contrastive import simclr_projection_head  # noqa: E402
from pose_lab.training.contrastive import SimCLR, replica_batch  # noqa: E402

rng = np.random.default_rng(0)
N, D = 8, 16
z1 = rng.normal(size=(N, D)).astype("float32")
z2 = rng.normal(size=(N, D)).astype("float32")
images = rng.uniform(0, 255, (N, 32, 32, 3)).astype("float32")
out = {}


def tiny_simclr(synchronized):
    keras.utils.set_random_seed(1)
    inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(layers.Rescaling(1 / 255.0)(inp))
    enc = keras.Model(inp, layers.GlobalAveragePooling2D()(x))
    model = SimCLR(enc, simclr_projection_head(8, 16, 8, synchronized=synchronized),
                   augmenter=layers.Identity(), temperature=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def one_step(model):
    hist = model.fit(images, batch_size=N, epochs=1, shuffle=False, verbose=0)
    return hist.history["loss"][0], [np.asarray(w) for w in model.get_weights()]


if backend == "tensorflow":
    single_loss = float(losses.nt_xent(z1, z2, 0.5))
    tz1, tz2 = tf.constant(z1), tf.constant(z2)
    with tf.GradientTape() as tape:
        tape.watch([tz1, tz2])
        loss = losses.nt_xent(tz1, tz2, 0.5)
    g_single = np.concatenate([g.numpy() for g in tape.gradient(loss, [tz1, tz2])], axis=1)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    n = N // 2
    d1 = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(z1[ctx.replica_id_in_sync_group * n:(ctx.replica_id_in_sync_group + 1) * n]))
    d2 = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(z2[ctx.replica_id_in_sync_group * n:(ctx.replica_id_in_sync_group + 1) * n]))

    @tf.function
    def per_replica(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            a_all, b_all, offset, replicas = replica_batch(a, b)
            loss = losses.nt_xent(a, b, 0.5, z1_all=a_all, z2_all=b_all, offset=offset) / replicas
        ga, gb = tape.gradient(loss, [a, b])
        return loss, tf.concat([ga, gb], axis=1)

    losses_r, grads_r = strategy.run(per_replica, args=(d1, d2))
    dist_loss = float(strategy.reduce("SUM", losses_r, axis=None))
    g_dist = np.concatenate([g.numpy() for g in strategy.experimental_local_results(grads_r)], axis=0)
    out["loss"] = [single_loss, dist_loss]
    out["grad_max_abs_diff"] = float(np.abs(g_single - g_dist).max())
    out["replicas"] = strategy.num_replicas_in_sync
    # one fit() step of a SimCLR model, global BN in the head, no BN in the encoder
    loss_1, w_1 = one_step(tiny_simclr(False))
    with strategy.scope():
        model = tiny_simclr(True)
    loss_2, w_2 = one_step(model)
else:
    import jax

    out["replicas"] = len(jax.devices())
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()), ("batch",))
    shard = NamedSharding(mesh, PartitionSpec("batch"))
    s1, s2 = jax.device_put(z1, shard), jax.device_put(z2, shard)
    assert len(s1.addressable_shards) == 2
    fn = jax.jit(jax.value_and_grad(lambda a, b: losses.nt_xent(a, b, 0.5), argnums=(0, 1)))
    l_single, g_single = fn(z1, z2)
    l_dist, g_dist = fn(s1, s2)
    out["loss"] = [float(l_single), float(l_dist)]
    out["grad_max_abs_diff"] = float(max(np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(g_single, g_dist)))
    loss_1, w_1 = one_step(tiny_simclr(False))
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))
    model = tiny_simclr(False)
    loss_2, w_2 = one_step(model)
    out["sharded"] = str(getattr(model.trainable_variables[0].value, "sharding", ""))
out["fit_loss"] = [float(loss_1), float(loss_2)]
out["weights_max_abs_diff"] = float(max(np.abs(a - b).max() for a, b in zip(w_1, w_2)))
print("RESULT " + json.dumps(out))
