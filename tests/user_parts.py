"""A user's own parts, as a user writes them in a file beside their config, and a fixture that
takes them out of the catalogues again after a test (the catalogues are per process)."""

import contextlib
import copy

PARTS = '''
import keras


def scaled_normal(shape, dtype=None, seed=None, scale=1.0):
    """stddev = scale * sqrt(2 / fan_in)."""
    return keras.random.normal(shape, stddev=scale * (2.0 / shape[0]) ** 0.5, dtype=dtype, seed=seed)


def log_cosh(y_true, y_pred):
    return keras.ops.mean(keras.ops.log(keras.ops.cosh(y_pred - y_true)), axis=-1)


def batch_mean_squared(y_true, y_pred):
    """Not element-wise: every example gets the mean over all leading axes."""
    error = keras.ops.mean(keras.ops.square(y_pred - y_true))
    return keras.ops.zeros(keras.ops.shape(y_true)[:-1]) + error


def hit(y_true, y_pred):
    return keras.ops.cast(keras.ops.argmax(y_true, -1) == keras.ops.argmax(y_pred, -1), "float32")


hit.greater_is_better = True


def swishy(x):
    return x * keras.ops.sigmoid(1.5 * x)


def two_dense(input_shape, head, initializer, width=8):
    layers = [keras.Input(input_shape), keras.layers.Flatten(),
              keras.layers.Dense(width, activation="relu", kernel_initializer=initializer(0),
                                 bias_initializer=initializer(0, "bias"), name="hidden_0"),
              keras.layers.Dense(head.units, activation=head.activation, kernel_initializer=initializer(1),
                                 bias_initializer=initializer(1, "bias"), name="output")]
    return keras.Sequential(layers)


def blobs(n=60, centres=3):
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(n) % centres
    return rng.normal(size=(n, 2)) + 3 * y[:, None], y


def wrong_shape(shape, dtype=None, seed=None):
    return keras.ops.zeros((2,))


def needs_value(y_true, y_pred, weight):
    return keras.ops.mean(y_pred - y_true, axis=-1)
'''


@contextlib.contextmanager
def restored_catalogues():
    """The catalogues as they were, whatever a test registered."""
    from experiments.data import datasets
    from initializers import INITIALIZERS
    from models.activations import ACTIVATIONS
    from models.builders import MODELS
    from models.losses import LOSSES
    from models.metrics import METRICS

    saved = [(r.entries, dict(r.entries)) for r in (INITIALIZERS, ACTIVATIONS, MODELS, LOSSES, datasets.DATASETS)]
    saved += [(METRICS, dict(METRICS)), (datasets._LOADERS, copy.copy(datasets._LOADERS))]
    try:
        yield
    finally:
        for live, before in saved:
            live.clear()
            live.update(before)
