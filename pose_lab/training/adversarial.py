"""Two-player (adversarial) training: one base class, GAN, WGAN, WGAN-GP and VAE-GAN on poses.

:class:`AdversarialModel` is a ``keras.Model`` with **two optimizers**: a
*critic* (discriminator) and a *generator* side, each updated on its own loss
with its own optimizer. Its ``train_step`` is written once for TensorFlow
(``tf.GradientTape``) and once for JAX (stateless: the losses run inside
``keras.StatelessScope`` under ``jax.vjp``, and the step returns the updated
trainable, non-trainable, optimizer and metric values); PyTorch is not
supported (a clear ``NotImplementedError``). One call of ``train_step`` does

1. ``n_critic`` critic updates, each on ``critic_loss(batch)``, followed by
   the ``after_critic_step()`` hook (e.g. WGAN weight clipping);
2. one generator update on ``generator_loss(data)``.

**Which batch the critic sees.** With ``split_batch=False`` (default) every
critic step uses the whole batch (new noise each time, the same real poses);
with ``split_batch=True`` the batch is cut into ``n_critic`` equal sub-batches,
one per critic step, which is what the WGAN/WGAN-GP authors' code does (it
draws a new real batch per critic iteration: then pass
``batch_size = n_critic * critic batch``); the generator step always gets the
whole batch.

**Gradient routing.** ``generator_variables()`` / ``critic_variables()``
return either a list of variables (every one gets the gradient of the scalar
loss) or a dict ``{group: [variables]}``; then the loss method returns a dict
``{group: scalar}`` with the same keys and each group gets the gradient of its
own scalar only (VAE-GAN: the encoder on prior + feature reconstruction, the
decoder on ``gamma`` x feature reconstruction + GAN). Groups must not share a
variable. :meth:`AdversarialModel.gradients` returns these gradients for a
batch (eager, both backends), which is how the routing is tested.

Subclasses define only their losses, with ordinary layer calls
(``self.generator(...)``, ``self.critic(...)``), ``keras.ops`` and the noise
helpers :meth:`~AdversarialModel.normal` / :meth:`~AdversarialModel.uniform`
(``keras.random`` with ``self.seed_generator``; a test may override them to
feed the same noise to both backends). Extra values to log are returned in a
dict whose keys are listed in the class attribute ``metric_names``.

Example (what a subclass looks like; copy it)::

    import keras
    from keras import ops
    from pose_lab import losses
    from pose_lab.training.adversarial import AdversarialModel

    @keras.saving.register_keras_serializable(package="pose_lab")
    class MyGAN(AdversarialModel):
        metric_names = ("d_real",)                       # extra logged values

        def __init__(self, generator, critic, *, latent_dim=32, **kwargs):
            super().__init__(generator, critic, **kwargs)
            self.latent_dim = int(latent_dim)

        def critic_loss(self, data, training=True):      # data: a batch of real poses
            z = self.normal((ops.shape(data)[0], self.latent_dim))
            fake = ops.stop_gradient(self.generator(z, training=training))
            real_logits = self.critic(data, training=training)
            fake_logits = self.critic(fake, training=training)
            loss = losses.gan_discriminator_loss(real_logits, fake_logits)
            return loss, {"d_real": ops.mean(ops.sigmoid(real_logits))}

        def generator_loss(self, data, training=True):
            z = self.normal((ops.shape(data)[0], self.latent_dim))
            fake_logits = self.critic(self.generator(z, training=training), training=training)
            return losses.gan_generator_loss(fake_logits), {}

        def get_config(self):
            return {**super().get_config(), "latent_dim": self.latent_dim}

    gan = MyGAN(generator, critic, latent_dim=32, seed=0)
    gan.compile(generator_optimizer=keras.optimizers.Adam(2e-4, 0.5),
                critic_optimizer=keras.optimizers.Adam(2e-4, 0.5))
    gan.fit(real_poses, epochs=10, batch_size=128)     # logs critic_loss, generator_loss, d_real

``fit(x)`` hands the loss methods ``x`` (a tensor, or the dict/tuple structure
given); ``fit(x, y)`` hands them ``(x, y)``. Losses from ``add_loss`` /
kernel regularisers are not added (the kit's critics have none).

The classes here work on flat or ``(J, 3)`` poses as produced by the builders
in :mod:`pose_lab.models.adversarial` (z-scored, root dropped, as in
notebook 08): :class:`GAN` (non-saturating, Goodfellow et al. 2014),
:class:`WGAN` (weight clipping, Arjovsky et al. 2017), :class:`WGANGP`
(gradient penalty, Gulrajani et al. 2017) and :class:`VAEGAN` (Larsen et al.
2016). Their losses are the pure functions of :mod:`pose_lab.losses`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from pose_lab import losses

__all__ = [
    "AdversarialModel",
    "GAN",
    "WGAN",
    "WGANGP",
    "VAEGAN",
    "wgan_gp_optimizers",
]


class _OptimizerPair:
    """What Keras's trainers need of ``model.optimizer``: both optimizers' variables, in a fixed order.

    The JAX trainer carries ``model.optimizer.variables`` through the jitted
    step; this object makes those the generator's then the critic's. Not saved
    (each optimizer is an attribute of the model and is saved on its own).
    """

    def __init__(self, generator_optimizer, critic_optimizer):
        self.generator_optimizer = generator_optimizer
        self.critic_optimizer = critic_optimizer

    @property
    def variables(self):
        return list(self.generator_optimizer.variables) + list(self.critic_optimizer.variables)

    @property
    def built(self):
        return self.generator_optimizer.built and self.critic_optimizer.built

    @property
    def iterations(self):  # what TensorBoard & co. read: generator updates
        return self.generator_optimizer.iterations

    @property
    def learning_rate(self):
        return self.generator_optimizer.learning_rate

    def build(self, variables=None):  # variables are chosen per player by the model
        pass

    def scale_loss(self, loss):
        return loss

    def finalize_variable_values(self, variables):
        pass


def _flatten_groups(variables, what):
    """``(keys, [list per key], flat list)``; ``keys`` is ``None`` for a plain list."""
    if isinstance(variables, dict):
        keys = list(variables)
        groups = [list(variables[k]) for k in keys]
    else:
        keys, groups = None, [list(variables)]
    flat = [v for g in groups for v in g]
    if len({id(v) for v in flat}) != len(flat):
        raise ValueError(f"{what}: a variable appears in two groups (or twice); groups must be disjoint")
    if not flat:
        raise ValueError(f"{what}: no variables to train")
    return keys, groups, flat


def _check_loss_groups(loss, keys, what):
    if keys is None:
        if isinstance(loss, dict):
            raise ValueError(f"{what}: returned a dict of losses {sorted(loss)} but the variables are a "
                             "plain list; return a scalar, or variables as a dict with the same keys")
        return [loss]
    if not isinstance(loss, dict) or set(loss) != set(keys):
        got = sorted(loss) if isinstance(loss, dict) else type(loss).__name__
        raise ValueError(f"{what}: expected a dict of losses with keys {keys} (the variable groups), got {got}")
    return [loss[k] for k in keys]


def _slice_batch(data, i, n):
    """The ``i``-th of ``n`` equal sub-batches of every array in ``data`` (leading axis)."""

    def cut(x):
        if x is None:
            return None
        b = ops.shape(x)[0] // n
        return x[i * b:(i + 1) * b]

    return keras.tree.map_structure(cut, data)


@keras.saving.register_keras_serializable(package="pose_lab")
class AdversarialModel(keras.Model):
    """A two-optimizer model: ``n_critic`` critic steps, then one generator step, per batch.

    Args:
        generator: a ``keras.Model`` (latent -> pose, or whatever the
            subclass's generator does); ``call`` runs it.
        critic: a ``keras.Model`` scoring samples (a logit or a Wasserstein score).
        n_critic: critic updates per generator update (positive int).
        split_batch: ``False`` (default): every critic step sees the whole
            batch; ``True``: the batch is split into ``n_critic`` equal
            sub-batches, one per critic step (the generator step sees all).
        seed: seed of ``self.seed_generator`` (all noise of the losses).
        **kwargs: ``keras.Model`` arguments (``name``...).

    Subclasses implement :meth:`critic_loss` and :meth:`generator_loss`; they
    may override :meth:`generator_variables`, :meth:`critic_variables`,
    :meth:`after_critic_step` and ``metric_names``. Compile with
    :meth:`compile` ``(generator_optimizer, critic_optimizer)``.
    """

    #: names of the extra values the loss methods return (one ``Mean`` tracker each)
    metric_names: tuple = ()

    def __init__(self, generator, critic, *, n_critic=1, split_batch=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        if keras.backend.backend() not in ("tensorflow", "jax"):
            raise NotImplementedError(
                f"AdversarialModel: the two-optimizer train_step is written for the 'tensorflow' and 'jax' "
                f"backends; KERAS_BACKEND is {keras.backend.backend()!r}")
        for name, m in (("generator", generator), ("critic", critic)):
            if not isinstance(m, keras.Model):
                raise ValueError(f"{name}: expected a keras.Model, got {type(m).__name__}")
        if isinstance(n_critic, bool) or not isinstance(n_critic, (int, np.integer)) or n_critic < 1:
            raise ValueError(f"n_critic: expected a positive int, got {n_critic!r}")
        self.generator = generator
        self.critic = critic
        self.n_critic = int(n_critic)
        self.split_batch = bool(split_batch)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="adversarial_seed")
        names = ("critic_loss", "generator_loss", *self.metric_names)
        if len(set(names)) != len(names):
            raise ValueError(f"metric_names: expected distinct names other than critic_loss/generator_loss, "
                             f"got {self.metric_names}")
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.generator_optimizer = None
        self.critic_optimizer = None
        self.built = True  # sub-models are built functional models

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        """The generator: ``model.predict(z)`` samples."""
        return self.generator(inputs, training=training)

    # ------------------------------------------------------------------ subclass API
    def critic_loss(self, data, training=True):
        """``(scalar loss, dict of extra metric values)`` minimised by the critic's variables."""
        raise NotImplementedError(f"{type(self).__name__} must define critic_loss(data, training)")

    def generator_loss(self, data, training=True):
        """``(scalar loss, dict of extra metric values)`` minimised by the generator's variables."""
        raise NotImplementedError(f"{type(self).__name__} must define generator_loss(data, training)")

    def generator_variables(self):
        """Variables updated by the generator step (a list, or a dict of disjoint groups)."""
        return self.generator.trainable_variables

    def critic_variables(self):
        """Variables updated by the critic step (a list, or a dict of disjoint groups)."""
        return self.critic.trainable_variables

    def after_critic_step(self):
        """Called after every critic update (assign to variables here, e.g. weight clipping)."""

    def normal(self, shape, stddev=1.0):
        """Standard normal noise of ``shape`` from ``self.seed_generator``."""
        return keras.random.normal(shape, stddev=stddev, seed=self.seed_generator)

    def uniform(self, shape, minval=0.0, maxval=1.0):
        """Uniform noise on ``[minval, maxval)`` of ``shape`` from ``self.seed_generator``."""
        return keras.random.uniform(shape, minval=minval, maxval=maxval, seed=self.seed_generator)

    # ------------------------------------------------------------------ compile & metrics
    def compile(self, generator_optimizer="adam", critic_optimizer="adam", **kwargs):
        """Set the two optimizers (instances, names or configs) and build their variables.

        ``**kwargs`` go to ``keras.Model.compile`` (``jit_compile``, ``run_eagerly``...);
        ``loss`` / ``metrics`` / ``optimizer`` are refused: the losses are the
        methods, the metrics the returned extras.
        """
        for bad in ("optimizer", "loss", "metrics"):
            if kwargs.get(bad) is not None:
                raise ValueError(f"compile: {bad!r} is not used by {type(self).__name__}; pass "
                                 "generator_optimizer and critic_optimizer (losses are the model's methods)")
            kwargs.pop(bad, None)
        gen_opt = keras.optimizers.get(generator_optimizer)
        crit_opt = keras.optimizers.get(critic_optimizer)
        if gen_opt is None or crit_opt is None:
            raise ValueError("compile: both generator_optimizer and critic_optimizer are required")
        if gen_opt is crit_opt:
            raise ValueError("compile: generator_optimizer and critic_optimizer must be two optimizer "
                             "instances (each keeps its own moments and step count)")
        super().compile(optimizer=None, **kwargs)
        self.generator_optimizer = gen_opt
        self.critic_optimizer = crit_opt
        for opt, which in ((gen_opt, "generator"), (crit_opt, "critic")):
            _, _, flat = _flatten_groups(self._player_variables(which), f"{which}_variables()")
            if not opt.built:
                opt.build(flat)
        self.optimizer = _OptimizerPair(gen_opt, crit_opt)

    def get_compile_config(self):
        if self.generator_optimizer is None:
            return None
        return {
            "generator_optimizer": keras.saving.serialize_keras_object(self.generator_optimizer),
            "critic_optimizer": keras.saving.serialize_keras_object(self.critic_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            generator_optimizer=keras.saving.deserialize_keras_object(config["generator_optimizer"]),
            critic_optimizer=keras.saving.deserialize_keras_object(config["critic_optimizer"]),
        )

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _update_trackers(self, values):
        for k, v in values.items():
            if k not in self._trackers:
                raise ValueError(f"{type(self).__name__}: a loss returned the metric {k!r}, which is not in "
                                 f"metric_names {self.metric_names}; add it there")
            self._trackers[k].update_state(v)
        return {m.name: m.result() for m in self.metrics}

    # ------------------------------------------------------------------ the step
    def _player_variables(self, which):
        return self.generator_variables() if which == "generator" else self.critic_variables()

    def _loss_method(self, which):
        return self.generator_loss if which == "generator" else self.critic_loss

    def _unpack(self, data):
        x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        if sw is not None:
            raise ValueError(f"{type(self).__name__}: sample weights are not supported")
        return x if y is None else (x, y)

    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            return self._tf_train_step(*args)
        if backend == "jax":
            return self._jax_train_step(*args)
        raise NotImplementedError(f"{type(self).__name__}.train_step: backend {backend!r} is not supported "
                                  "(tensorflow and jax are)")

    def test_step(self, *args):
        raise NotImplementedError(f"{type(self).__name__}: evaluate() is not defined for adversarial models; "
                                  "measure samples with pose_lab.metrics (realism metrics) instead")

    def _critic_batches(self, data):
        if self.split_batch and self.n_critic > 1:
            return [_slice_batch(data, i, self.n_critic) for i in range(self.n_critic)]
        return [data] * self.n_critic

    # -- TensorFlow
    def _tf_player_step(self, which, data):
        import tensorflow as tf

        keys, groups, flat = _flatten_groups(self._player_variables(which), f"{which}_variables()")
        with tf.GradientTape(persistent=keys is not None) as tape:
            loss, extras = self._loss_method(which)(data, training=True)
            parts = _check_loss_groups(loss, keys, f"{which}_loss")
        grads = []
        for part, group in zip(parts, groups):
            grads.extend(tape.gradient(part, group))
        del tape
        pairs = [(g, v) for g, v in zip(grads, flat) if g is not None]
        opt = self.generator_optimizer if which == "generator" else self.critic_optimizer
        opt.apply_gradients(pairs)
        return sum(parts[1:], parts[0]), extras

    def _tf_train_step(self, data):
        data = self._unpack(data)
        for batch in self._critic_batches(data):
            c_loss, c_extra = self._tf_player_step("critic", batch)
            self.after_critic_step()
        g_loss, g_extra = self._tf_player_step("generator", data)
        return self._update_trackers({"critic_loss": c_loss, "generator_loss": g_loss, **c_extra, **g_extra})

    # -- JAX
    def _state_variables(self):
        return (list(self.trainable_variables), list(self.non_trainable_variables),
                list(self.optimizer.variables), list(self.metrics_variables))

    def _jax_player_step(self, which, data, outer, apply=True):
        """One update inside the ``outer`` StatelessScope that holds every variable's current value."""
        import jax

        keys, groups, flat = _flatten_groups(self._player_variables(which), f"{which}_variables()")
        flat_ids = {id(v): i for i, v in enumerate(flat)}
        every = [v for vs in self._state_variables() for v in vs]
        current = [outer.get_current_value(v) for v in every]
        others = [v for v in self.non_trainable_variables]

        def losses_of(train_values):
            mapping = [(v, train_values[flat_ids[id(v)]] if id(v) in flat_ids else val)
                       for v, val in zip(every, current)]
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss, extras = self._loss_method(which)(data, training=True)
                parts = _check_loss_groups(loss, keys, f"{which}_loss")
            updates = [scope.get_current_value(v) for v in others]
            return parts, (extras, updates)

        train_values = [outer.get_current_value(v) for v in flat]
        parts, vjp_fn, (extras, updates) = jax.vjp(losses_of, train_values, has_aux=True)
        grads = [None] * len(flat)
        start = 0
        for k, group in enumerate(groups):
            cot = [ops.ones_like(p) if j == k else ops.zeros_like(p) for j, p in enumerate(parts)]
            (g_all,) = vjp_fn(cot)
            grads[start:start + len(group)] = g_all[start:start + len(group)]
            start += len(group)
        for v, val in zip(others, updates):  # BatchNorm statistics, seed-generator state
            outer.add_update((v, val))
        if apply:
            opt = self.generator_optimizer if which == "generator" else self.critic_optimizer
            opt.apply(grads, flat)
        return sum(parts[1:], parts[0]), extras, grads

    def _jax_train_step(self, state, data):
        data = self._unpack(data)
        lists = self._state_variables()
        mapping = [(v, val) for vs, vals in zip(lists, state) for v, val in zip(vs, vals)]
        with keras.StatelessScope(state_mapping=mapping) as outer:
            for batch in self._critic_batches(data):
                c_loss, c_extra, _ = self._jax_player_step("critic", batch, outer)
                self.after_critic_step()
            g_loss, g_extra, _ = self._jax_player_step("generator", data, outer)
            logs = self._update_trackers({"critic_loss": c_loss, "generator_loss": g_loss,
                                          **c_extra, **g_extra})
        new_state = tuple([outer.get_current_value(v) for v in vs] for vs in lists)
        return logs, new_state

    # ------------------------------------------------------------------ inspection
    def gradients(self, which, data):
        """The gradients one ``which`` (``"generator"`` / ``"critic"``) step would apply, eagerly.

        Returns ``(loss, {variable.path: gradient as NumPy})``; variables with no
        gradient map to ``None``. No weight or optimizer state changes; under
        TensorFlow the loss runs eagerly with ``training=True``, so the seed
        generator (and any BatchNorm statistics) advance, under JAX nothing is
        written. Used to test gradient routing under both backends.
        """
        if which not in ("generator", "critic"):
            raise ValueError(f"which: expected 'generator' or 'critic', got {which!r}")
        data = self._unpack(data)
        _, _, flat = _flatten_groups(self._player_variables(which), f"{which}_variables()")
        if keras.backend.backend() == "jax":
            if self.optimizer is None:
                raise ValueError("gradients: compile the model first (the JAX step carries optimizer state)")
            every = [v for vs in self._state_variables() for v in vs]
            with keras.StatelessScope(state_mapping=[(v, v.value) for v in every]) as outer:
                loss, _, grads = self._jax_player_step(which, data, outer, apply=False)
        else:
            import tensorflow as tf

            keys, groups, _ = _flatten_groups(self._player_variables(which), f"{which}_variables()")
            with tf.GradientTape(persistent=True) as tape:
                loss, _ = self._loss_method(which)(data, training=True)
                parts = _check_loss_groups(loss, keys, f"{which}_loss")
            grads = []
            for part, group in zip(parts, groups):
                grads.extend(tape.gradient(part, group))
            loss = sum(parts[1:], parts[0])
        out = {v.path: (None if g is None else np.asarray(ops.convert_to_numpy(g))) for v, g in zip(flat, grads)}
        return float(ops.convert_to_numpy(loss)), out

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "n_critic": self.n_critic,
            "split_batch": self.split_batch,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls._submodel_keys():
            if key in config and isinstance(config[key], dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    @classmethod
    def _submodel_keys(cls):
        """Config keys holding serialised sub-models (subclasses with more networks extend this)."""
        return ("generator", "critic")


# ============================================================================ the GAN family on poses


class _LatentGAN(AdversarialModel):
    """Shared plumbing: the latent size (the generator's input) and prior samples."""

    def __init__(self, generator, critic, **kwargs):
        super().__init__(generator, critic, **kwargs)
        shape = generator.input_shape
        if isinstance(shape, list) or len(shape) != 2:
            raise ValueError(f"generator: expected one input of shape (batch, latent_dim), got {shape}")
        self.latent_dim = int(shape[-1])

    def sample_latent(self, n):
        """``n`` codes from the prior ``N(0, I)`` (``self.normal``)."""
        return self.normal((n, self.latent_dim))

    def _fake(self, data, training):
        return self.generator(self.sample_latent(ops.shape(data)[0]), training=training)


@keras.saving.register_keras_serializable(package="pose_lab")
class GAN(_LatentGAN):
    """The non-saturating GAN (Goodfellow et al. 2014) on poses.

    Discriminator: ``-E log D(x) - E log(1 - D(G(z)))``; generator:
    ``-E log D(G(z))`` (:func:`pose_lab.losses.gan_discriminator_loss`,
    :func:`pose_lab.losses.gan_generator_loss`). The critic returns logits.
    Logged: ``critic_loss``, ``generator_loss``, ``d_real`` / ``d_fake``
    (mean ``D`` on real and generated poses).

    Args:
        generator: ``z (latent_dim) -> pose`` (:func:`pose_lab.models.adversarial.build_pose_generator`).
        critic: ``pose -> logit`` (:func:`~pose_lab.models.adversarial.build_mlp_critic`
            or :func:`~pose_lab.models.adversarial.build_kcs_critic`).
        **kwargs: :class:`AdversarialModel` (``n_critic``, ``split_batch``, ``seed``).
    """

    metric_names = ("d_real", "d_fake")

    def critic_loss(self, data, training=True):
        fake = ops.stop_gradient(self._fake(data, training))
        real_logits = self.critic(data, training=training)
        fake_logits = self.critic(fake, training=training)
        loss = losses.gan_discriminator_loss(real_logits, fake_logits)
        return loss, {"d_real": ops.mean(ops.sigmoid(real_logits)), "d_fake": ops.mean(ops.sigmoid(fake_logits))}

    def generator_loss(self, data, training=True):
        return losses.gan_generator_loss(self.critic(self._fake(data, training), training=training)), {}


@keras.saving.register_keras_serializable(package="pose_lab")
class WGAN(_LatentGAN):
    """WGAN with weight clipping (Arjovsky et al. 2017).

    Critic: ``E f(G(z)) - E f(x)``, then every critic weight is clipped to
    ``[-clip_value, clip_value]`` (:meth:`after_critic_step`); generator:
    ``-E f(G(z))``. The paper: ``n_critic = 5``, ``clip_value = 0.01``,
    RMSprop(5e-5) for both players. Logged: ``wasserstein`` = ``E f(x) - E f(G(z))``
    (the critic's estimate of the earth mover's distance, up to the Lipschitz constant).
    """

    metric_names = ("wasserstein",)

    def __init__(self, generator, critic, *, clip_value=0.01, n_critic=5, **kwargs):
        super().__init__(generator, critic, n_critic=n_critic, **kwargs)
        if not np.isfinite(clip_value) or clip_value <= 0:
            raise ValueError(f"clip_value: expected a positive number, got {clip_value!r}")
        self.clip_value = float(clip_value)

    def critic_loss(self, data, training=True):
        fake = ops.stop_gradient(self._fake(data, training))
        real_s = self.critic(data, training=training)
        fake_s = self.critic(fake, training=training)
        loss = losses.wgan_critic_loss(real_s, fake_s)
        return loss, {"wasserstein": -loss}

    def generator_loss(self, data, training=True):
        return losses.wgan_generator_loss(self.critic(self._fake(data, training), training=training)), {}

    def after_critic_step(self):
        c = self.clip_value
        for v in self.critic.trainable_variables:
            v.assign(ops.clip(v, -c, c))

    def get_config(self):
        return {**super().get_config(), "clip_value": self.clip_value}


@keras.saving.register_keras_serializable(package="pose_lab")
class WGANGP(_LatentGAN):
    """WGAN-GP (Gulrajani et al. 2017): the WGAN losses plus a gradient penalty on random interpolates.

    Critic: ``E f(G(z)) - E f(x) + lambda E (||grad f(x_hat)|| - 1)^2`` with
    ``x_hat = alpha x + (1 - alpha) G(z)``, ``alpha ~ U(0, 1)`` per sample
    (:func:`pose_lab.losses.gradient_penalty`); generator ``-E f(G(z))``.
    Defaults as in the authors' code (``gan_toy.py`` / ``gan_64x64.py``):
    ``lambda = 10``, ``n_critic = 5``, Adam(1e-4, beta_1=0.5, beta_2=0.9)
    for both players (:func:`wgan_gp_optimizers`); no batch norm in the critic.
    Logged: ``wasserstein`` (``E f(x) - E f(G(z))``) and ``gradient_penalty``
    (without ``lambda``).
    """

    metric_names = ("wasserstein", "gradient_penalty")

    def __init__(self, generator, critic, *, gp_weight=10.0, n_critic=5, **kwargs):
        super().__init__(generator, critic, n_critic=n_critic, **kwargs)
        if not np.isfinite(gp_weight) or gp_weight < 0:
            raise ValueError(f"gp_weight: expected a non-negative number, got {gp_weight!r}")
        self.gp_weight = float(gp_weight)

    def critic_loss(self, data, training=True):
        fake = ops.stop_gradient(self._fake(data, training))
        real_s = self.critic(data, training=training)
        fake_s = self.critic(fake, training=training)
        w_loss = losses.wgan_critic_loss(real_s, fake_s)
        alpha = self.uniform((ops.shape(data)[0],))
        gp = losses.gradient_penalty(lambda x: self.critic(x, training=training), data, fake, alpha)
        return w_loss + self.gp_weight * gp, {"wasserstein": -w_loss, "gradient_penalty": gp}

    def generator_loss(self, data, training=True):
        return losses.wgan_generator_loss(self.critic(self._fake(data, training), training=training)), {}

    def get_config(self):
        return {**super().get_config(), "gp_weight": self.gp_weight}


def wgan_gp_optimizers(learning_rate=1e-4, beta_1=0.5, beta_2=0.9):
    """``(generator_optimizer, critic_optimizer)``: two Adam(1e-4, 0.5, 0.9), the WGAN-GP authors' setting."""
    return (keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2),
            keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2))


@keras.saving.register_keras_serializable(package="pose_lab")
class VAEGAN(_LatentGAN):
    """VAE-GAN (Larsen et al. 2016): a VAE whose reconstruction is measured in a critic layer's features.

    Networks: ``encoder`` ``x -> [mu, log sigma^2]`` (:func:`pose_lab.models.vae.build_mlp_encoder`),
    ``generator`` = the decoder ``z -> x``, ``critic`` ``x -> logit`` whose layer
    ``feature_layer`` gives the features ``D_l``. With ``z = mu + sigma eps``,
    ``x_tilde = Dec(z)``, ``x_p = Dec(z_p)``, ``z_p ~ N(0, I)``:

    * ``L_prior = KL(q(z|x) || N(0, I))`` (nats per sample, batch mean);
    * ``L_llike = 1/2 ||D_l(x) - D_l(x_tilde)||^2`` (per sample, batch mean);
    * ``L_GAN`` with fakes from the prior *and* from the encoder (seed 004 eq. 2.13):
      critic ``-log D(x) - log(1 - D(x_p)) - log(1 - D(x_tilde))``.

    Gradient routing (seed 004 fig. 2.1.7, Larsen's algorithm 1): each network
    gets the gradient of its own loss only,

    * encoder: ``beta * L_prior + L_llike`` (no GAN term),
    * decoder: ``gamma * L_llike + L_GAN,gen`` with the non-saturating
      ``-log D(x_p) - log D(x_tilde)`` in place of ``-L_GAN`` (as the kit's GAN),
    * critic: ``L_GAN`` only (never ``L_llike``, which would collapse it).

    The generator step returns the dict ``{"encoder": ..., "decoder": ...}``
    against :meth:`generator_variables` ``{"encoder": ..., "decoder": ...}``.
    Logged: ``prior`` (KL), ``feature_recon`` (``L_llike``), ``d_real``, ``d_fake``.

    Args:
        encoder, generator, critic: the three networks.
        feature_layer: name of the critic layer for ``D_l`` (``None``: the
            input of the final score layer).
        gamma: weight of ``L_llike`` for the decoder (Larsen's ``gamma``).
        beta: weight of the KL for the encoder (1 in Larsen et al.).
    """

    metric_names = ("prior", "feature_recon", "d_real", "d_fake")

    def __init__(self, encoder, generator, critic, *, feature_layer=None, gamma=0.1, beta=1.0, **kwargs):
        super().__init__(generator, critic, **kwargs)
        from pose_lab.models.adversarial import critic_feature_model

        if not isinstance(encoder, keras.Model) or not isinstance(encoder.output, (list, tuple)) \
                or len(encoder.output) != 2:
            raise ValueError("encoder: expected a keras.Model with two outputs [z_mean, z_log_var] "
                             "(pose_lab.models.vae.build_mlp_encoder)")
        if int(encoder.output[0].shape[-1]) != self.latent_dim:
            raise ValueError(f"encoder: latent size {encoder.output[0].shape[-1]} differs from the generator's "
                             f"input {self.latent_dim}")
        for n, v in (("gamma", gamma), ("beta", beta)):
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{n}: expected a non-negative number, got {v!r}")
        self.encoder = encoder
        self.feature_layer = feature_layer
        self.gamma = float(gamma)
        self.beta = float(beta)
        # shares the critic's layers; kept out of Keras's tracking so its weights are not listed twice
        object.__setattr__(self, "_features", critic_feature_model(critic, feature_layer))

    def generator_variables(self):
        return {"encoder": self.encoder.trainable_variables, "decoder": self.generator.trainable_variables}

    def _encode_decode(self, x, training):
        z_mean, z_log_var = self.encoder(x, training=training)
        eps = self.normal(ops.shape(z_mean))
        z = z_mean + ops.exp(0.5 * z_log_var) * eps
        return z_mean, z_log_var, self.generator(z, training=training)

    def critic_loss(self, data, training=True):
        _, _, x_tilde = self._encode_decode(data, training)
        x_p = self._fake(data, training)
        real_l = self.critic(data, training=training)
        tilde_l = self.critic(ops.stop_gradient(x_tilde), training=training)
        p_l = self.critic(ops.stop_gradient(x_p), training=training)
        loss = losses.gan_discriminator_loss(real_l, p_l) + ops.mean(ops.softplus(ops.reshape(tilde_l, (-1,))))
        return loss, {"d_real": ops.mean(ops.sigmoid(real_l)),
                      "d_fake": 0.5 * (ops.mean(ops.sigmoid(p_l)) + ops.mean(ops.sigmoid(tilde_l)))}

    def generator_loss(self, data, training=True):
        z_mean, z_log_var, x_tilde = self._encode_decode(data, training)
        x_p = self._fake(data, training)
        f_real, _ = self._features(data, training=training)
        f_tilde, tilde_l = self._features(x_tilde, training=training)
        p_l = self.critic(x_p, training=training)
        prior = losses.kl_divergence_diag_gaussian(z_mean, z_log_var)
        llike = losses.feature_reconstruction_loss(ops.stop_gradient(f_real), f_tilde)
        gan_gen = losses.gan_generator_loss(p_l) + losses.gan_generator_loss(tilde_l)
        return ({"encoder": self.beta * prior + llike, "decoder": self.gamma * llike + gan_gen},
                {"prior": prior, "feature_recon": llike})

    def encode(self, x, training=False):
        """The posterior mean ``mu(x)``."""
        return self.encoder(x, training=training)[0]

    def reconstruct(self, x, training=False):
        """``Dec(mu(x))``: the mean reconstruction."""
        return self.generator(self.encode(x, training), training=training)

    def get_config(self):
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "feature_layer": self.feature_layer, "gamma": self.gamma, "beta": self.beta}

    @classmethod
    def _submodel_keys(cls):
        return ("generator", "critic", "encoder")
