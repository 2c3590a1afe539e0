"""Model builders: uncompiled Keras models whose every weighted layer gets its own seeded
initializer. They know nothing about experiments.

Weighted layers are named `hidden_<i>` and `output` so diagnostics and reports can refer to them;
the layers between carry the index of the weighted layer before them (`batch_norm_<i>`,
`activation_<i>`, `dropout_<i>`, `pool_<i>`), so every run's saved model has the same names.
"""

import math
from dataclasses import dataclass

import initializers
from initializers.registry import Entry, Registry, accepts, check_user_name, keyword_params, source_of
from models.activations import ACTIVATIONS


class _Hidden:
    """The activations a hidden layer may take: the catalogue's (a user's too) but softmax."""

    def __contains__(self, name):
        return name in ACTIVATIONS and name != "softmax"

    def __iter__(self):
        return (n for n in ACTIVATIONS if n != "softmax")


_HIDDEN = _Hidden()
_COMMON = {"l1": 0.0, "l2": 0.0}
_PENALTY = (0.0, 1e3)  # L1/L2 factors: >= 0 (a negative penalty rewards large weights)
MAX_WIDTH, MAX_LAYERS = 65536, 1000
MODELS = Registry(
    "model",
    {
        "mlp": Entry(
            {"widths": [64, 64], "activation": "relu", "dropout": 0.0, "batch_norm": False, **_COMMON},
            choices={"activation": _HIDDEN},
            unit_interval=("dropout",),
            ranges={"widths": (1, MAX_WIDTH), "l1": _PENALTY, "l2": _PENALTY},
            note="multi-layer perceptron; widths lists the hidden layers",
            stacked={},
        ),
        "linear": Entry(dict(_COMMON), ranges={"l1": _PENALTY, "l2": _PENALTY},
                        note="no hidden layer: linear/logistic regression, the perceptron", stacked={}),
        "cnn": Entry(
            {"filters": [8, 16], "kernel_size": 3, "widths": [32], "activation": "relu", "dropout": 0.0, **_COMMON},
            choices={"activation": _HIDDEN},
            positive=("kernel_size",),
            unit_interval=("dropout",),
            ranges={"filters": (1, 4096), "kernel_size": (1, 64), "widths": (1, MAX_WIDTH), "l1": _PENALTY,
                    "l2": _PENALTY},
            note="small CNN for image-shaped data (conv + 2x2 max-pool per filter count, then dense)",
            stacked={},
        ),
    },
)


def stacking_blocker(model):
    """Why the vectorized engine cannot stack a model ('' when it can), as its catalogue entry declares."""
    name = MODELS.parse(model)["name"]
    stacked, options = MODELS.entries[name].stacked, MODELS.resolve(model)
    if stacked is None:
        return f"model {name!r} has no stacked version"
    return next((reason for option, reason in stacked.items() if options.get(option)), "")


def layer_initializer(kernel_initializer, bias_initializer, seed):
    """`initializer(layer_index, role="kernel")`: a fresh initializer for one weighted layer's
    kernel or bias (`role="bias"`), seeded from the run seed and the layer index."""
    def initializer(layer_index, role="kernel"):
        spec = kernel_initializer if role == "kernel" else bias_initializer
        return initializers.get(spec, initializers.layer_seed(seed, layer_index, role))

    return initializer


class _Layers:
    """Hands out weighted layers numbered in order, each with fresh seeded initializers."""

    def __init__(self, kernel_initializer, bias_initializer, seed, l1, l2):
        import keras

        self.keras = keras
        self.initializer = layer_initializer(kernel_initializer, bias_initializer, seed)
        self.regularizer = keras.regularizers.L1L2(l1, l2) if l1 or l2 else None
        self.index = 0

    def _initializers(self):
        i = self.index
        self.index += 1
        return {
            "kernel_initializer": self.initializer(i, "kernel"),
            "bias_initializer": self.initializer(i, "bias"),
            "kernel_regularizer": self.regularizer,
        }

    def dense(self, units, activation, name):
        return self.keras.layers.Dense(units, activation=activation, name=name, **self._initializers())

    def conv(self, filters, kernel_size, activation, name):
        return self.keras.layers.Conv2D(
            filters, kernel_size, padding="same", activation=activation, name=name, **self._initializers()
        )


def _activation(name):
    from models.activations import get

    return get(name)


def build_mlp(input_shape, head, *, kernel_initializer="glorot_uniform", bias_initializer="zeros",
              seed=0, widths=(64, 64), activation="relu", dropout=0.0, batch_norm=False, l1=0.0, l2=0.0):
    """A multi-layer perceptron; image-shaped inputs are flattened.

    Args:
        input_shape: shape of one example.
        head: a `models.losses.Head` (output units and activation).
        kernel_initializer, bias_initializer: initializer names or `{"name", **params}` dicts.
        seed: the run seed; each layer's initializers are seeded from it and the layer index.
    Returns:
        an uncompiled `keras.Sequential`.
    """
    import keras

    layers = _Layers(kernel_initializer, bias_initializer, seed, l1, l2)
    stack = [keras.Input(tuple(input_shape))]
    if len(input_shape) > 1:
        stack.append(keras.layers.Flatten(name="flatten"))
    for i, width in enumerate(widths):
        if batch_norm:
            # normalise the pre-activations, so the activation comes after the norm
            stack += [layers.dense(width, None, f"hidden_{i}"), keras.layers.BatchNormalization(name=f"batch_norm_{i}"),
                      keras.layers.Activation(_activation(activation), name=f"activation_{i}")]
        else:
            stack.append(layers.dense(width, _activation(activation), f"hidden_{i}"))
        if dropout:
            stack.append(keras.layers.Dropout(dropout, seed=seed, name=f"dropout_{i}"))
    stack.append(layers.dense(head.units, _activation(head.activation), "output"))
    return keras.Sequential(stack, name="mlp")


def build_linear(input_shape, head, *, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 seed=0, l1=0.0, l2=0.0):
    """No hidden layer: linear regression, logistic/softmax regression, the perceptron."""
    return build_mlp(input_shape, head, kernel_initializer=kernel_initializer,
                     bias_initializer=bias_initializer, seed=seed, widths=(), l1=l1, l2=l2)


def build_cnn(input_shape, head, *, kernel_initializer="glorot_uniform", bias_initializer="zeros",
              seed=0, filters=(8, 16), kernel_size=3, widths=(32,), activation="relu", dropout=0.0,
              l1=0.0, l2=0.0):
    """A small CNN for (height, width, channels) inputs: per filter count a same-padded
    convolution and a 2x2 max-pool, then dense layers and the head."""
    import keras

    if len(input_shape) != 3:
        raise ValueError(f"model 'cnn' needs image-shaped inputs (height, width, channels), got {tuple(input_shape)}")
    layers = _Layers(kernel_initializer, bias_initializer, seed, l1, l2)
    stack = [keras.Input(tuple(input_shape))]
    for i, n in enumerate(filters):
        stack += [layers.conv(n, kernel_size, _activation(activation), f"hidden_{i}"),
                  keras.layers.MaxPooling2D(2, padding="same", name=f"pool_{i}")]
    stack.append(keras.layers.Flatten(name="flatten"))
    for width in widths:
        i = layers.index
        stack.append(layers.dense(width, _activation(activation), f"hidden_{i}"))
        if dropout:
            stack.append(keras.layers.Dropout(dropout, seed=seed, name=f"dropout_{i}"))
    stack.append(layers.dense(head.units, _activation(head.activation), "output"))
    return keras.Sequential(stack, name="cnn")


BUILDERS = {"mlp": build_mlp, "linear": build_linear, "cnn": build_cnn}


@dataclass(frozen=True)
class LayerSize:
    """One weighted layer of a catalogue model: its name, activation, weights and outputs per example,
    and what else its computation keeps per example (a convolution's shifted input windows)."""

    name: str
    activation: str
    params: int
    outputs: int
    workspace: int = 0


def layer_sizes(model, input_shape, units, head_activation="linear"):
    """The weighted layers `build` makes for a model, computed without TensorFlow.

    Raises:
        ValueError: a model that cannot be built on these inputs (a CNN kernel larger than its
            input, too many layers), naming the value and what would fit.
    """
    spec = MODELS.parse(model)
    options = MODELS.resolve(spec)
    if MODELS.entries[spec["name"]].obj is not None:
        return _user_layer_sizes(spec, input_shape, units, head_activation)
    widths = options.get("widths", []) if spec["name"] != "linear" else []
    filters = options.get("filters", []) if spec["name"] == "cnn" else []
    if len(widths) + len(filters) > MAX_LAYERS:
        raise ValueError(f"model '{spec['name']}' has {len(widths) + len(filters)} layers; at most {MAX_LAYERS}")
    layers, activation = [], options.get("activation", "linear")
    if filters:
        if len(input_shape) != 3:
            raise ValueError(f"model 'cnn' needs image-shaped data (height, width, channels), got inputs of shape "
                             f"{tuple(input_shape)}; use model 'mlp' or 'linear', or an image dataset such as digits")
        height, width, channels = input_shape
        for i, n in enumerate(filters):
            kernel = options["kernel_size"]
            if kernel > min(height, width):
                raise ValueError(f"model 'cnn' parameter 'kernel_size' is {kernel}, larger than the {height}x{width} "
                                 f"input of its convolution {i + 1} (filters {filters}, inputs {tuple(input_shape)}); "
                                 f"use kernel_size <= {min(height, width)} or fewer filters")
            layers.append(LayerSize(f"hidden_{i}", activation, kernel * kernel * channels * n + n, height * width * n,
                                    kernel * kernel * height * width * channels))
            height, width, channels = -(-height // 2), -(-width // 2), n  # 2x2 max-pool, same padding
        fan_in = height * width * channels
    else:
        fan_in = math.prod(input_shape)
    for width in widths:
        layers.append(LayerSize(f"hidden_{len(layers)}", activation, fan_in * width + width, width))
        fan_in = width
    layers.append(LayerSize("output", head_activation, fan_in * units + units, units))
    return layers


def build(model, input_shape, head, kernel_initializer, bias_initializer="zeros", seed=0):
    """Build a catalogue model from its spec (`"mlp"` or `{"name": "mlp", **options}`)."""
    spec = MODELS.parse(model)
    options = {k: v for k, v in spec.items() if k != "name"}
    user = MODELS.entries[spec["name"]].obj
    if user is not None:
        return user(tuple(input_shape), head, initializer=layer_initializer(kernel_initializer, bias_initializer, seed),
                    **options)
    return BUILDERS[spec["name"]](input_shape, head, kernel_initializer=kernel_initializer,
                                  bias_initializer=bias_initializer, seed=seed, **options)


def register_model(name, fn, source=None):
    """Add your own model builder to the catalogue under `name`, for configs to name.

    Args:
        fn: `f(input_shape, head, initializer, **params) -> an uncompiled keras.Model` whose output
            has `head.units` units with activation `head.activation`; `initializer(i, role="kernel")`
            gives the i-th weighted layer's seeded kernel (or `role="bias"`) initializer: call it
            once per layer. It is built on each dataset of a config before anything trains; the
            vectorized engine trains it with the keras engine (with a notice).
        source: what experiment.json records of it (default: its module, file and the file's hash).
    """
    check_user_name("model", name, MODELS.entries)
    if not callable(fn) or not accepts(fn, ["initializer"]):
        raise ValueError(f"model {name!r} must be a function f(input_shape, head, initializer, **params)")
    try:
        params = keyword_params(fn, fixed=("initializer",), positional=2)
    except ValueError as e:
        raise ValueError(f"model {name!r}: {e}") from None
    MODELS.register(name, Entry(params, note="your own", obj=fn, source=source or source_of(fn)))


def _user_layer_sizes(spec, input_shape, units, head_activation):
    """A user's model's weighted layers, from the model built once (imports Keras)."""
    import keras

    from models.losses import Head

    try:
        model = build(spec, input_shape, Head(units, head_activation, "value"), "glorot_uniform")
    except Exception as e:  # noqa: BLE001 - the user's code may raise anything
        raise ValueError(f"model {spec['name']!r} failed to build on inputs {tuple(input_shape)}: "
                         f"{type(e).__name__}: {e}") from None
    if not isinstance(model, keras.Model) or tuple(model.output_shape) != (None, units):
        shape = getattr(model, "output_shape", type(model).__name__)
        raise ValueError(f"model {spec['name']!r} must return a keras.Model with output shape (None, {units}) on "
                         f"inputs {tuple(input_shape)}, got {shape}")
    return [LayerSize(layer.name, head_activation if layer is model.layers[-1] else "linear", layer.count_params(),
                      math.prod(layer.output.shape[1:]))
            for layer in model.layers if layer.weights]
