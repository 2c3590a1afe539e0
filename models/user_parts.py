"""A user's own activation, loss and metric inside a Keras model: Keras objects that call the
user's function and save as references to their catalogue names, so a saved model loads with the
suite imported (`experiments.load_model` registers the user's parts first, so that a loaded
model with a user's activation can also predict). Imports Keras.
"""

import keras
import numpy as np


def _missing(kind, name):
    return ValueError(f"{kind} {name!r} is your own: register it (experiments.register_{kind}) or load the model "
                      "with experiments.load_model, which imports the parts its experiment names")


@keras.saving.register_keras_serializable(package="init_loss_lab")
class UserActivation:
    """The registered activation `name`: `f(x)` element-wise."""

    def __init__(self, name, obj=None):
        self.name, self.obj = name, obj

    def __call__(self, x):
        if self.obj is None:
            self.obj = _lookup("activation", self.name)
        return self.obj(x)

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="init_loss_lab")
class UserLoss(keras.losses.Loss):
    """The registered loss `loss_name`: `f(y_true, y_pred, **params)` -> one loss per example."""

    def __init__(self, loss_name, params=None, obj=None, name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name or loss_name, reduction=reduction, dtype=dtype)
        self.loss_name, self.params, self.obj = loss_name, dict(params or {}), obj

    def call(self, y_true, y_pred):
        if self.obj is None:
            self.obj = _lookup("loss", self.loss_name)
        return self.obj(y_true, y_pred, **self.params)

    def get_config(self):
        return {**super().get_config(), "loss_name": self.loss_name, "params": self.params}


@keras.saving.register_keras_serializable(package="init_loss_lab")
class UserMetric(keras.metrics.Mean):
    """The registered metric `name`: the mean over examples of `f(y_true, y_pred)`."""

    def __init__(self, name, obj=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.obj = obj

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.obj is None:
            self.obj = _lookup("metric", self.name)
        return super().update_state(self.obj(y_true, y_pred), sample_weight=sample_weight)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


# (kind, name) -> the user's object, filled by the catalogues' register functions
_OBJECTS = {}


def remember(kind, name, obj):
    """Make a user's registered object known to models loaded from files."""
    _OBJECTS[kind, name] = obj


def _lookup(kind, name):
    if (kind, name) not in _OBJECTS:
        raise _missing(kind, name)
    return _OBJECTS[kind, name]


def _batch(task, rng=None):
    """Targets and outputs of shape (2 members, 5 examples, units) as a head of the task has them."""
    rng = rng or np.random.default_rng(0)
    if task == "multiclass":
        y, p = np.eye(3)[rng.integers(0, 3, (2, 5))], rng.dirichlet(np.ones(3), (2, 5))
    elif task == "binary":
        y, p = rng.integers(0, 2, (2, 5, 1)), rng.uniform(0.05, 0.95, (2, 5, 1))
    else:
        y, p = rng.normal(size=(2, 5, 1)), rng.normal(size=(2, 5, 1))
    return y.astype("float32"), p.astype("float32")


def try_pairwise(kind, name, fn, tasks):
    """Call a user's loss or metric `fn(y_true, y_pred)` on small batches of each task's targets.

    Returns:
        whether it is element-wise over the leading axes (then the vectorized engine stacks it:
        on (members, batch, units) it gives (members, batch), each member's own values).
    Raises:
        ValueError: it fails, or does not return one finite value per example.
    """
    stacked = True
    for task in tasks:
        y, p = _batch(task)
        try:
            single = np.asarray(fn(keras.ops.convert_to_tensor(y[0]), keras.ops.convert_to_tensor(p[0])))
        except Exception as e:  # noqa: BLE001 - the user's code may raise anything
            raise ValueError(f"{kind} {name!r} failed on a {task} batch of 5: {type(e).__name__}: {e}") from None
        if single.shape != (5,) or not np.all(np.isfinite(single)):
            raise ValueError(f"{kind} {name!r} must return one finite value per example (reduce only the last axis); "
                             f"on a {task} batch of 5 it returned shape {single.shape}")
        try:
            both = np.asarray(fn(keras.ops.convert_to_tensor(y), keras.ops.convert_to_tensor(p)))
            alone = np.stack([np.asarray(fn(keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)))
                              for a, b in zip(y, p, strict=True)])
            stacked = stacked and both.shape == alone.shape and np.allclose(both, alone, rtol=1e-5, atol=1e-6)
        except Exception:  # noqa: BLE001 - not element-wise: it trains with the keras engine
            stacked = False
    return stacked
