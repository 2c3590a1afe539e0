"""Optimizers by Keras name; the learning rate is set at the spec's top level."""

from initializers.registry import Entry, Registry

OPTIMIZERS = Registry(
    "optimizer",
    {
        "sgd": Entry({"momentum": 0.0, "nesterov": False}, unit_interval=("momentum",),
                     note="plain SGD; momentum=0.9 (and nesterov=true) for the momentum variants"),
        "rmsprop": Entry({"rho": 0.9, "momentum": 0.0}, unit_interval=("rho", "momentum")),
        "adagrad": Entry(),
        "adadelta": Entry({"rho": 0.95}, unit_interval=("rho",)),
        "adam": Entry({"beta_1": 0.9, "beta_2": 0.999}, unit_interval=("beta_1", "beta_2")),
    },
)


def get(identifier, learning_rate):
    """A new Keras optimizer for a name or `{"name": ..., **params}`."""
    from keras import optimizers as k

    spec = OPTIMIZERS.parse(identifier)
    params = {k_: v for k_, v in spec.items() if k_ != "name"}
    classes = {"sgd": k.SGD, "rmsprop": k.RMSprop, "adagrad": k.Adagrad, "adadelta": k.Adadelta, "adam": k.Adam}
    return classes[spec["name"]](learning_rate=learning_rate, **params)
