import math

import numpy as np
import pytest

from models import build, build_cnn, build_linear, build_mlp, head_for
from models.losses import LOSSES, Head, encode_targets


def _kernels(model):
    return {layer.name: np.asarray(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")}


def test_mlp_layers_of_the_same_shape_get_different_matrices():
    head = head_for("multiclass", "categorical_crossentropy", n_classes=10)
    model = build_mlp((16,), head, kernel_initializer="he_normal", seed=0, widths=[16, 16, 16])
    kernels = _kernels(model)
    assert list(kernels) == ["hidden_0", "hidden_1", "hidden_2", "output"]
    assert not np.allclose(kernels["hidden_1"], kernels["hidden_2"])
    assert model.output_shape == (None, 10)


def test_same_seed_same_weights_other_seed_other_weights():
    head = head_for("binary", "binary_crossentropy", n_classes=2)
    a = _kernels(build("mlp", (4,), head, "glorot_normal", seed=7))
    b = _kernels(build("mlp", (4,), head, "glorot_normal", seed=7))
    c = _kernels(build("mlp", (4,), head, "glorot_normal", seed=8))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert not np.allclose(a[name], c[name])


def test_bias_initializer_is_separate_and_defaults_to_zeros():
    head = head_for("regression", "mean_squared_error")
    model = build_mlp((3,), head, kernel_initializer="ones", seed=0, widths=[4])
    assert np.all(np.asarray(model.layers[0].bias) == 0)
    model = build_mlp((3,), head, kernel_initializer="ones", bias_initializer={"name": "constant", "value": 0.5},
                      seed=0, widths=[4])
    assert np.allclose(np.asarray(model.layers[0].bias), 0.5)


def test_linear_cnn_and_options():
    head = head_for("multiclass", "categorical_crossentropy", n_classes=10)
    linear = build_linear((8, 8, 1), head, seed=0)
    assert [type(layer).__name__ for layer in linear.layers] == ["Flatten", "Dense"]
    cnn = build_cnn((8, 8, 1), head, seed=0, filters=[4, 8], widths=[16])
    assert [n for n in _kernels(cnn)] == ["hidden_0", "hidden_1", "hidden_2", "output"]
    assert cnn.output_shape == (None, 10)
    with pytest.raises(ValueError, match="image-shaped"):
        build_cnn((64,), head)
    mlp = build_mlp((5,), head, widths=[8], dropout=0.5, batch_norm=True, l2=1e-3)
    names = [type(layer).__name__ for layer in mlp.layers]
    assert names == ["Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]
    assert mlp.losses  # the L2 penalty is attached


@pytest.mark.parametrize("task, loss, expected", [
    ("multiclass", "categorical_crossentropy", (10, "softmax", "one_hot")),
    ("multiclass", "mean_squared_error", (10, "softmax", "one_hot")),
    ("multiclass", "huber", (10, "softmax", "one_hot")),
    ("binary", "binary_crossentropy", (1, "sigmoid", "binary")),
    ("binary", "mean_absolute_error", (1, "sigmoid", "binary")),
    ("binary", "categorical_crossentropy", (2, "softmax", "one_hot")),
    ("regression", "huber", (1, "linear", "value")),
])
def test_heads_follow_task_and_loss(task, loss, expected):
    head = head_for(task, loss, n_classes=10 if task == "multiclass" else 2)
    assert (head.units, head.activation, head.target) == expected


@pytest.mark.parametrize("task, loss", [
    ("regression", "categorical_crossentropy"), ("regression", "binary_crossentropy"),
    ("multiclass", "binary_crossentropy"),
])
def test_a_loss_that_cannot_apply_is_an_error(task, loss):
    with pytest.raises(ValueError, match=f"loss '{loss}' does not apply to a {task} task; use"):
        head_for(task, loss, n_classes=3)


def test_integer_labels_are_encoded_for_the_head():
    head = head_for("multiclass", "categorical_crossentropy", n_classes=3)
    np.testing.assert_array_equal(encode_targets(np.array([2, 0]), head), [[0, 0, 1], [1, 0, 0]])
    head = head_for("binary", "mean_squared_error", n_classes=2)
    assert encode_targets(np.array([1, 0]), head).shape == (2, 1)


def test_huber_delta_reaches_keras():
    from models.losses import get

    # an error of 2: delta * (|e| - delta / 2) = 0.5 * 1.75 with delta 0.5, 1.5 with the default 1
    assert float(get({"name": "huber", "delta": 0.5})(np.zeros((1, 1)), np.full((1, 1), 2.0))) == pytest.approx(0.875)
    assert float(get("huber")(np.zeros((1, 1)), np.full((1, 1), 2.0))) == pytest.approx(1.5)
    assert set(LOSSES.names) == {"mean_squared_error", "mean_absolute_error", "huber", "binary_crossentropy",
                                 "categorical_crossentropy"}


@pytest.mark.parametrize("model, input_shape", [
    ("mlp", (8, 8, 1)), ("linear", (30,)), ({"name": "mlp", "widths": [5, 7, 3], "batch_norm": True}, (4,)),
    ("cnn", (8, 8, 1)), ({"name": "cnn", "filters": [4, 6, 2], "kernel_size": 2, "widths": [9, 5]}, (28, 28, 1)),
])
def test_layer_sizes_match_the_keras_models_weights_and_outputs(model, input_shape):
    """The shape walk the memory estimate and claim validation use, against the built model."""
    import keras

    from models.builders import layer_sizes

    head = Head(10, "softmax", "one_hot")
    built = build(model, input_shape, head, "glorot_uniform", "zeros", 0)
    weighted = [layer for layer in built.layers if isinstance(layer, keras.layers.Dense | keras.layers.Conv2D)]
    sizes = layer_sizes(model, input_shape, head.units, head.activation)
    assert [s.name for s in sizes] == [layer.name for layer in weighted]
    assert [s.params for s in sizes] == [layer.count_params() for layer in weighted]
    assert [s.outputs for s in sizes] == [math.prod(layer.output.shape[1:]) for layer in weighted]
    keras.backend.clear_session()
