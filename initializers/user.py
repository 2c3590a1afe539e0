"""A user's own initializer inside a Keras model: a Keras `Initializer` that calls the user's
object and saves as a reference to its catalogue name, so a saved model loads with the suite
imported. Keras initializes a loaded model's layers before it reads their saved weights: where the
user's initializer is not registered in the loading process, that throwaway initialization is
zeros. Imports Keras.
"""

import inspect

import keras

from initializers.registry import accepts


@keras.saving.register_keras_serializable(package="init_loss_lab")
class UserInitializer(keras.initializers.Initializer):
    """The registered initializer `name`, for one layer, with its seed and parameters.

    Args:
        obj: the user's class (called with `seed` and the parameters, then with shape and dtype)
            or function (`f(shape, dtype=None, seed=None, **params)`); None when loaded from a file.
    """

    def __init__(self, name, seed=None, params=None, obj=None):
        self.name, self.seed, self.params, self.obj = name, seed, dict(params or {}), obj

    def __call__(self, shape, dtype=None):
        obj = self.obj or _OBJECTS.get(self.name)
        if obj is None:  # a model loaded from a file: its saved weights replace these
            return keras.ops.zeros(shape, dtype=dtype)
        seeded = {"seed": self.seed} if accepts(obj, ["seed"]) else {}
        if inspect.isclass(obj):
            return obj(**seeded, **self.params)(shape, dtype=dtype)
        return obj(shape, dtype=dtype, **seeded, **self.params)

    def get_config(self):
        return {"name": self.name, "seed": self.seed, "params": self.params}



# name -> the user's object, filled by `initializers.register_initializer`
_OBJECTS = {}


def remember(name, obj):
    """Make a user's registered initializer known to models loaded from files."""
    _OBJECTS[name] = obj
