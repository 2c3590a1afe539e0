"""Hidden-layer activations by Keras name (softmax is for output heads)."""

import numpy as np

from initializers.registry import Entry, Registry, check_user_name, keras_object, source_of

# name -> Keras' function (swish is Keras' silu)
_FUNCTIONS = {"linear": "linear", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "leaky_relu": "leaky_relu",
              "elu": "elu", "selu": "selu", "softsign": "softsign", "swish": "silu", "silu": "silu", "gelu": "gelu",
              "softmax": "softmax"}
ACTIVATIONS = Registry("activation", {name: Entry(make=keras_object("activations", function))
                                      for name, function in _FUNCTIONS.items()})


def get(name):
    """The Keras activation function for a catalogue name."""
    return ACTIVATIONS.build(name)


def register_activation(name, fn, source=None):
    """Add your own activation `fn(x) -> same shape` to the catalogue under `name`, for a model's
    `activation` to name.

    Raises:
        ValueError: one line saying what is wrong with it (it is tried on a small tensor).
    """
    import keras

    from models.user_parts import UserActivation, remember  # imports Keras

    check_user_name("activation", name, ACTIVATIONS.entries)
    x = np.linspace(-3, 3, 12, dtype="float32").reshape(2, 2, 3)
    try:
        y = np.asarray(fn(keras.ops.convert_to_tensor(x)))
    except Exception as e:  # noqa: BLE001 - the user's code may raise anything
        raise ValueError(f"activation {name!r} failed on a (2, 2, 3) tensor: {type(e).__name__}: {e}") from None
    if y.shape != x.shape or not np.all(np.isfinite(y)):
        raise ValueError(f"activation {name!r} must return finite values of its input's shape; on (2, 2, 3) it "
                         f"returned shape {y.shape}")
    ACTIVATIONS.register(name, Entry(note="your own", obj=fn, source=source or source_of(fn),
                                     make=lambda: UserActivation(name, fn)))
    remember("activation", name, fn)
