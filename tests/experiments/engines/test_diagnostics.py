"""Per-layer diagnostics: each quantity on inputs whose answer is known."""

import numpy as np
import pytest

from experiments.engines import diagnostics
from experiments.spec import diagnostics as quantities
from experiments.spec import validate


def test_histogram_tables_are_tensorboards_own():
    from tensorboard.plugins.histogram.summary_v2 import histogram_pb
    from tensorboard.util import tensor_util

    rng = np.random.default_rng(0)
    values = np.stack([rng.normal(size=500), np.full(500, 0.25), rng.uniform(-3, 1, size=500)])
    tables = diagnostics.histograms(values)
    for row, table in zip(values, tables, strict=True):
        theirs = tensor_util.make_ndarray(histogram_pb("t", row, buckets=30).value[0].tensor)
        np.testing.assert_allclose(table[:, :2], theirs[:, :2], rtol=1e-12)
        assert np.abs(table[:, 2] - theirs[:, 2]).sum() <= 2  # a value on a bucket edge may round either way
        assert table[:, 2].sum() == 500


def test_histograms_leave_out_non_finite_values():
    table = diagnostics.histograms(np.array([[1.0, np.nan, 3.0, np.inf]]))[0]
    assert table[0, 0] == 1.0 and table[-1, 1] == 3.0 and table[:, 2].sum() == 2


def test_distinct_units_counts_equal_columns_as_one():
    rng = np.random.default_rng(1)
    patterns = rng.normal(size=(20, 3))
    kernel = np.stack([
        np.zeros((20, 16)),                                  # zeros: one unit
        rng.normal(size=(20, 16)),                           # random: all distinct
        patterns[:, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]],  # three patterns repeated
        np.ones((20, 16)) + 1e-9 * rng.normal(size=(20, 16)),  # equal within the tolerance
    ])
    bias = np.zeros((4, 16))
    assert diagnostics.distinct_units(kernel, bias).tolist() == [1, 16, 3, 1]


def test_dead_saturated_and_gradient_ratio():
    members, batch, units = 1, 8, 4
    out = np.abs(np.random.default_rng(2).normal(size=(members, batch, units)))
    out[..., :2] = 0.0  # two ReLU units are 0 on every example
    tanh = np.full((members, batch, units), 0.5)
    tanh[..., 0] = 0.999  # one tanh unit is flat everywhere
    gradient = [np.full((members, batch, units), 2.0), np.full((members, batch, units), 1.0),
                np.full((members, batch, 1), 1.0)]
    gradient[0][..., 0] += 1.0
    gradient[2][..., 0, 0] += 4.0
    kernels = [np.ones((members, 3, units)), np.ones((members, units, units)), np.ones((members, units, 1))]
    biases = [np.zeros((members, units)), np.zeros((members, units)), np.zeros((members, 1))]
    scalars, tables = diagnostics.measure(["hidden_0", "hidden_1", "output"], ["relu", "tanh", "linear"], kernels,
                                          biases, [out, tanh, np.zeros((members, batch, 1))], gradient)[0]
    assert scalars["dead_fraction/hidden_0"] == 0.5
    assert scalars["saturated_fraction/hidden_1"] == 0.25
    assert scalars["distinct_units/hidden_0"] == 1
    assert scalars["gradient_ratio"] == pytest.approx(gradient[0].std() / gradient[2].std())
    assert set(tables) == {f"{role}/{layer}" for role in ("kernel", "bias") for layer in ("hidden_0", "hidden_1",
                                                                                         "output")}
    assert quantities.summary(scalars)["dead_fraction"] == 0.5


def test_keras_probe_sees_zeros_and_he_normal_as_expected():
    """On digits at initialization: zeros leaves one unit per layer and no back-propagated
    gradient below the output; he_normal keeps every unit and a gradient ratio near 1."""
    import keras

    from models import build, head_for
    from models.losses import encode_targets

    spec, (data,) = validate({"name": "p", "dataset": "digits", "initializers": ["zeros"],
                           "losses": ["categorical_crossentropy"], "model": {"name": "mlp", "widths": [32, 16]}})
    head = head_for(data.task, spec.losses[0], data.n_classes, data.n_targets)
    x, y = data.x_train[:256], encode_targets(data.y_train[:256], head)
    figures = {}
    for init in ("zeros", "he_normal"):
        model = build(spec.model[0], data.input_shape, head, init, "zeros", 0)
        figures[init] = diagnostics.keras_probe(model, spec.model[0], spec.losses[0], head, x, y)[0]
        keras.backend.clear_session()
    zeros, he = figures["zeros"], figures["he_normal"]
    assert zeros["distinct_units/hidden_0"] == zeros["distinct_units/hidden_1"] == 1
    assert zeros["gradient_std/hidden_0"] == 0 and zeros["gradient_ratio"] == 0
    assert zeros["dead_fraction/hidden_0"] == 1
    assert he["distinct_units/hidden_0"] == 32 and he["distinct_units/hidden_1"] == 16
    assert 0.1 < he["gradient_ratio"] < 10 and he["dead_fraction/hidden_0"] < 0.5


def test_a_deep_sigmoid_nets_top_layer_pinned_near_zero_counts_as_saturated():
    """Glorot & Bengio (2010): a sigmoid layer whose units sit near 0 on every example is
    saturated, though no unit is within 0.01 of an asymptote. A real 5-layer sigmoid MLP whose top
    hidden layer is pinned at about 0.08 (std 0.003); the layers below stay in the linear zone."""
    import keras

    from models import build, head_for
    from models.losses import encode_targets

    model_spec = {"name": "mlp", "widths": [32] * 5, "activation": "sigmoid"}
    spec, (data,) = validate({"name": "p", "dataset": "digits", "initializers": ["glorot_normal"],
                              "losses": ["categorical_crossentropy"], "model": model_spec})
    head = head_for(data.task, spec.losses[0], data.n_classes, data.n_targets)
    model = build(spec.model[0], data.input_shape, head, "glorot_normal", "zeros", 0)
    top = model.get_layer("hidden_4")
    kernel = np.random.default_rng(0).normal(0, 0.005, size=top.kernel.shape)
    top.set_weights([kernel, np.full(top.bias.shape, -2.44)])  # sigmoid(-2.44) = 0.080
    x, y = data.x_train[:256], encode_targets(data.y_train[:256], head)
    scalars = diagnostics.keras_probe(model, spec.model[0], spec.losses[0], head, x, y)[0]
    keras.backend.clear_session()
    assert 0.07 < scalars["activation_mean/hidden_4"] < 0.09 and scalars["activation_std/hidden_4"] < 0.01
    assert scalars["saturated_fraction/hidden_4"] == 1.0
    assert all(scalars[f"saturated_fraction/hidden_{i}"] < 0.5 for i in range(4))
    assert quantities.summary(scalars)["saturated_fraction"] == pytest.approx(
        np.mean([scalars[f"saturated_fraction/hidden_{i}"] for i in range(5)]))


def test_saturation_is_within_a_tenth_of_the_range_of_an_asymptote_on_most_examples():
    members, batch = 1, 10
    sigmoid = np.empty((members, batch, 5))
    sigmoid[..., 0] = 0.08   # near 0: saturated
    sigmoid[..., 1] = 0.93   # near 1: saturated
    sigmoid[..., 2] = 0.5    # the linear zone
    sigmoid[..., 3] = 0.12   # just outside the band
    sigmoid[..., 4] = 0.05
    sigmoid[0, :2, 4] = 0.5  # near 0 on 80% of the examples only: not "most" (90%)
    tanh = np.full((members, batch, 4), -0.85)  # |tanh| > 0.8: saturated
    tanh[..., 1] = 0.75
    for kind, out, expected in (("sigmoid", sigmoid, 2 / 5), ("tanh", tanh, 3 / 4)):
        units = out.shape[2]
        kernels = [np.ones((members, 3, units)), np.ones((members, units, 1))]
        biases = [np.zeros((members, units)), np.zeros((members, 1))]
        gradients = [np.ones((members, batch, units)), np.ones((members, batch, 1))]
        scalars = diagnostics.measure(["hidden_0", "output"], [kind, "linear"], kernels, biases,
                                      [out, np.zeros((members, batch, 1))], gradients)[0][0]
        assert scalars["saturated_fraction/hidden_0"] == pytest.approx(expected), kind
