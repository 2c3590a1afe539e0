"""Hidden-layer activations by Keras name (softmax is for output heads)."""

from initializers.registry import Entry, Registry, keras_object

# name -> Keras' function (swish is Keras' silu)
_FUNCTIONS = {"linear": "linear", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "leaky_relu": "leaky_relu",
              "elu": "elu", "selu": "selu", "softsign": "softsign", "swish": "silu", "silu": "silu", "gelu": "gelu",
              "softmax": "softmax"}
ACTIVATIONS = Registry("activation", {name: Entry(make=keras_object("activations", function))
                                      for name, function in _FUNCTIONS.items()})


def get(name):
    """The Keras activation function for a catalogue name."""
    return ACTIVATIONS.build(name)
