"""Hidden-layer activations by Keras name (softmax is for output heads)."""

from initializers.registry import Entry, Registry

ACTIVATIONS = Registry(
    "activation",
    {
        name: Entry()
        for name in (
            "linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu",
            "softsign", "swish", "silu", "gelu", "softmax",
        )
    },
)


def get(name):
    """The Keras activation function for a catalogue name."""
    from keras import activations as k

    functions = {
        "linear": k.linear,
        "sigmoid": k.sigmoid,
        "tanh": k.tanh,
        "relu": k.relu,
        "leaky_relu": k.leaky_relu,
        "elu": k.elu,
        "selu": k.selu,
        "softsign": k.softsign,
        "swish": k.silu,
        "silu": k.silu,
        "gelu": k.gelu,
        "softmax": k.softmax,
    }
    return functions[ACTIVATIONS.parse(name)["name"]]
