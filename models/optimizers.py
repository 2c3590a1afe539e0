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


# the optimizer variables that hold the learning rate as a factor (Keras folds it into the
# momentum of SGD and RMSprop); the vectorized engine steps at rate 1 (`stacked_graph`), so a
# member's values of these are its own rate times the engine's
RATE_IN_SLOTS = {"sgd": "momentums", "rmsprop": "_momentums"}


def rate_slots(optimizer, identifier):
    """The variables of a built Keras `optimizer` (catalogue entry `identifier`) that carry the
    learning rate as a factor."""
    name = identifier if isinstance(identifier, str) else identifier["name"]
    return list(getattr(optimizer, RATE_IN_SLOTS.get(name, ""), None) or [])
