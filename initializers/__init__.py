"""The catalogue of weight initializers: lookup by name, and a fresh seeded instance per layer.

Names are Keras' snake_case names. `INITIALIZERS` is importable without TensorFlow (spec
validation uses it); `get` imports Keras.

Keras 3 pitfall: an initializer built with `seed=None` draws its seed once, when constructed, so
one instance reused for several layers of the same shape gives them identical matrices. `get` is
therefore called once per layer, with a seed derived from the run seed and the layer index.
"""

import inspect

import numpy as np

from initializers.registry import Entry, Registry, check_user_name, keras_object, keyword_params, label, slug, source_of

_VS = "https://arxiv.org/abs/1502.01852"
_GLOROT = "https://proceedings.mlr.press/v9/glorot10a.html"


def _keras(name):
    return keras_object("initializers", name)


# a weight beyond a million is no initialization a network can train from
_SCALE = (-1e6, 1e6)
INITIALIZERS = Registry(
    "initializer",
    {
        "random_normal": Entry({"mean": 0.0, "stddev": 0.05}, positive=("stddev",),
                               ranges={"mean": _SCALE, "stddev": _SCALE}, make=_keras("RandomNormal")),
        "random_uniform": Entry({"minval": -0.05, "maxval": 0.05}, ranges={"minval": _SCALE, "maxval": _SCALE},
                                make=_keras("RandomUniform")),
        "zeros": Entry(make=_keras("Zeros")),
        "ones": Entry(make=_keras("Ones")),
        "glorot_normal": Entry(note=f"Reference: {_GLOROT}", make=_keras("GlorotNormal")),
        "he_normal": Entry(note=f"Reference: {_VS}", make=_keras("HeNormal")),
        "glorot_uniform": Entry(note=f"Reference: {_GLOROT}", make=_keras("GlorotUniform")),
        "he_uniform": Entry(note=f"Reference: {_VS}", make=_keras("HeUniform")),
        "lecun_normal": Entry(note="Reference: https://arxiv.org/abs/1706.02515", make=_keras("LecunNormal")),
        "lecun_uniform": Entry(note="Reference: https://arxiv.org/abs/1706.02515", make=_keras("LecunUniform")),
        "truncated_normal": Entry({"mean": 0.0, "stddev": 0.05}, positive=("stddev",),
                                  ranges={"mean": _SCALE, "stddev": _SCALE}, make=_keras("TruncatedNormal")),
        "orthogonal": Entry({"gain": 1.0}, ranges={"gain": _SCALE}, note="Reference: https://arxiv.org/abs/1312.6120",
                            make=_keras("Orthogonal")),
        "variance_scaling": Entry(
            {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"},
            choices={
                "mode": ("fan_in", "fan_out", "fan_avg"),
                "distribution": ("truncated_normal", "untruncated_normal", "uniform"),
            },
            positive=("scale",),
            ranges={"scale": _SCALE},
            make=_keras("VarianceScaling"),
        ),
        "constant": Entry({"value": 0.0}, ranges={"value": _SCALE}, make=_keras("Constant")),
    },
)
# Initializers that take no seed: they are deterministic.
UNSEEDED = {"zeros", "ones", "constant"}
REQUIRED = ("random_normal", "random_uniform", "zeros", "ones", "glorot_normal", "he_normal")


def parse(identifier):
    """Validate an initializer name or `{"name": ..., **params}`; see `Registry.parse`."""
    spec = INITIALIZERS.parse(identifier)
    if spec["name"] == "random_uniform":
        params = INITIALIZERS.resolve(spec)
        if not params["minval"] < params["maxval"]:
            raise ValueError(
                f"initializer 'random_uniform' needs minval < maxval, got {params['minval']} and {params['maxval']}"
            )
    return spec


def layer_seed(run_seed, layer_index, role="kernel"):
    """The seed of one layer's kernel or bias initializer, derived from the run seed."""
    entropy = [int(run_seed), int(layer_index), 0 if role == "kernel" else 1]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] % (2**31 - 1))


def get(identifier, seed=None):
    """A new Keras initializer.

    Args:
        identifier: a name, a `{"name": ..., **params}` dict, or a callable (returned as is).
        seed: the seed for a random initializer; ignored by zeros, ones and constant.
    Returns:
        a fresh `keras.initializers.Initializer` (never a shared instance).
    """
    if callable(identifier):
        return identifier
    spec = parse(identifier)
    return INITIALIZERS.build(spec, **({} if spec["name"] in UNSEEDED else {"seed": seed}))


def register_initializer(name, obj, source=None):
    """Add your own initializer to the catalogue under `name`, for configs to name.

    Args:
        obj: a class such as a `keras.initializers.Initializer` subclass, called with `seed` (when
            it takes one) and its parameters, then with `(shape, dtype)`; or a function
            `f(shape, dtype=None, seed=None, **params)` returning the array. Its keyword
            parameters with defaults are the ones a config may set. It is tried on a 4x3 kernel.
        source: what experiment.json records of it (default: its module, file and the file's hash).
    Raises:
        ValueError: one line saying what is wrong with it.
    """
    check_user_name("initializer", name, INITIALIZERS.entries)
    if not callable(obj):
        raise ValueError(f"initializer {name!r} must be a class or function, got {type(obj).__name__}")
    try:  # a function's first parameter is the shape
        params = keyword_params(obj, ("seed", "dtype"), positional=0 if inspect.isclass(obj) else 1)
    except ValueError as e:
        raise ValueError(f"initializer {name!r}: {e}") from None

    from initializers.user import UserInitializer, remember  # imports Keras

    def make(seed=None, **given):
        return UserInitializer(name, seed, given, obj)

    try:
        values = np.asarray(make(seed=0, **params)((4, 3), dtype="float32"))
    except Exception as e:  # noqa: BLE001 - the user's code may raise anything
        raise ValueError(f"initializer {name!r} failed on a (4, 3) kernel: {type(e).__name__}: {e}") from None
    if values.shape != (4, 3) or not np.all(np.isfinite(values)):
        raise ValueError(f"initializer {name!r} must return finite values of the shape asked for; on a (4, 3) "
                         f"kernel it returned shape {values.shape}")
    INITIALIZERS.register(name, Entry(params, make=make, source=source or source_of(obj), obj=obj))
    remember(name, obj)


__all__ = ["INITIALIZERS", "REQUIRED", "get", "label", "layer_seed", "parse", "register_initializer", "slug"]
