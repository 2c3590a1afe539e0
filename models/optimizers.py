"""Optimizers by Keras name; the learning rate is set at the spec's top level."""

from initializers.registry import Entry, Registry, keras_object

OPTIMIZERS = Registry(
    "optimizer",
    {
        "sgd": Entry({"momentum": 0.0, "nesterov": False}, unit_interval=("momentum",),
                     note="plain SGD; momentum=0.9 (and nesterov=true) for the momentum variants",
                     make=keras_object("optimizers", "SGD")),
        "rmsprop": Entry({"rho": 0.9, "momentum": 0.0}, unit_interval=("rho", "momentum"),
                         make=keras_object("optimizers", "RMSprop")),
        "adagrad": Entry(make=keras_object("optimizers", "Adagrad")),
        "adadelta": Entry({"rho": 0.95}, unit_interval=("rho",), make=keras_object("optimizers", "Adadelta")),
        "adam": Entry({"beta_1": 0.9, "beta_2": 0.999}, unit_interval=("beta_1", "beta_2"),
                      make=keras_object("optimizers", "Adam")),
    },
)


def get(identifier, learning_rate):
    """A new Keras optimizer for a name or `{"name": ..., **params}`."""
    return OPTIMIZERS.build(identifier, learning_rate=learning_rate)

