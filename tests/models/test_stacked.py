"""The stacked models (MLP, linear, CNN, with batch norm and dropout) against the Keras models they stand for, and the
stacking declaration of every model in the catalogue."""

import numpy as np
import pytest

from models import build
from models.builders import MODELS, stacking_blocker
from models.losses import Head
from models.stacked import build_stacked

HEAD = Head(3, "softmax", "one_hot")


@pytest.mark.parametrize("model, shape", [
    ({"name": "mlp", "widths": [6, 5], "activation": "tanh", "l2": 0.01}, (4,)),
    ({"name": "mlp", "widths": [6]}, (3, 3, 2)),  # image inputs are flattened
    ({"name": "linear", "l1": 0.01}, (4,)),
    ({"name": "cnn", "filters": [3, 4], "kernel_size": 3, "widths": [5], "activation": "tanh", "l2": 0.01}, (7, 6, 2)),
    ({"name": "cnn", "filters": [2], "kernel_size": 2, "widths": []}, (4, 4, 1)),  # even kernel: uneven padding
    ({"name": "mlp", "widths": [6, 5], "batch_norm": True, "dropout": 0.5}, (4,)),  # inference: moving averages
    ({"name": "cnn", "filters": [3], "kernel_size": 3, "widths": [5], "dropout": 0.5}, (6, 6, 1)),
])
def test_each_member_computes_what_its_keras_model_computes(model, shape):
    members = [("he_normal", "zeros", 0), ("glorot_uniform", "random_normal", 1), ("orthogonal", "zeros", 2)]
    x = np.random.default_rng(0).normal(size=(5, *shape)).astype("float32")
    stacked = build_stacked(model["name"], MODELS.resolve(model), members, shape, HEAD)
    logits = np.asarray(stacked(x))  # one input shared by every member
    assert logits.shape == (3, 5, 3)
    np.testing.assert_allclose(np.asarray(stacked(np.stack([x] * 3))), logits, rtol=1e-6, atol=1e-6)  # per member
    for m, (kernel, bias, seed) in enumerate(members):
        keras_model = build(model, shape, HEAD, kernel, bias, seed)
        for mine, theirs in zip(stacked.weights, keras_model.get_weights(), strict=True):
            np.testing.assert_array_equal(np.asarray(mine)[m], theirs)  # the same initial weights, bit for bit
        probabilities = np.asarray(keras_model(x))
        np.testing.assert_allclose(np.exp(logits[m]) / np.exp(logits[m]).sum(-1, keepdims=True), probabilities,
                                   rtol=1e-5, atol=1e-6)
        penalty = sum(float(np.asarray(loss)) for loss in keras_model.losses)
        assert float(np.asarray(stacked.penalty())[m]) == pytest.approx(penalty, rel=1e-5, abs=1e-12)


@pytest.mark.parametrize("name", MODELS.names)
def test_every_catalogue_model_declares_whether_it_stacks(name):
    entry = MODELS.entries[name]
    if entry.stacked is None:
        assert stacking_blocker(name) == f"model {name!r} has no stacked version"
        return
    assert stacking_blocker(name) == ""
    for option, reason in entry.stacked.items():
        value = True if isinstance(entry.params[option], bool) else 0.5
        assert stacking_blocker({"name": name, option: value}) == reason


def test_in_training_each_member_normalizes_by_its_own_batch_and_moves_its_own_averages():
    model = {"name": "mlp", "widths": [6, 5], "activation": "tanh", "batch_norm": True}
    members = [("he_normal", "zeros", 0), ("glorot_uniform", "random_normal", 1)]
    x = np.random.default_rng(1).normal(size=(2, 8, 4)).astype("float32")  # each member its own batch
    stacked = build_stacked("mlp", MODELS.resolve(model), members, (4,), HEAD)
    logits = np.asarray(stacked(x, draw=0))
    for m, (kernel, bias, seed) in enumerate(members):
        keras_model = build(model, (4,), HEAD, kernel, bias, seed)
        probabilities = np.asarray(keras_model(x[m], training=True))
        np.testing.assert_allclose(np.exp(logits[m]) / np.exp(logits[m]).sum(-1, keepdims=True), probabilities,
                                   rtol=1e-5, atol=1e-6)
        for mine, theirs in zip(stacked.weights, keras_model.get_weights(), strict=True):  # moving averages too
            np.testing.assert_allclose(np.asarray(mine)[m], theirs, rtol=1e-6, atol=1e-7)
    assert not np.allclose(np.asarray(stacked.layers[1].moving_mean), 0)  # the averages did move


def test_each_members_dropout_masks_depend_on_its_seed_and_the_step_alone():
    model = MODELS.resolve({"name": "mlp", "widths": [400], "activation": "linear", "dropout": 0.25})
    x = np.ones((3, 400), dtype="float32")

    def hidden(seeds, draw):
        stacked = build_stacked("mlp", model, [("ones", "zeros", s) for s in seeds], (400,), HEAD)
        outputs = x
        for layer in stacked.stacked_layers[:2]:  # the hidden layer and its dropout
            outputs = layer(outputs, draw=draw)
        return np.asarray(outputs)

    a, b = hidden([0, 1, 2], 0), hidden([5, 2, 0, 0], 0)
    np.testing.assert_array_equal(a[0], b[2])  # seed 0 in any stack, at any place: the same masks
    np.testing.assert_array_equal(a[2], b[1])
    np.testing.assert_array_equal(b[2], b[3])  # one seed, one mask (as Keras' Dropout(seed=))
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], hidden([0], 1)[0])  # a new mask every step
    dropped = (a == 0).mean()
    assert 0.22 < dropped < 0.28  # the rate, over 3,600 units
    np.testing.assert_allclose(a[a != 0], 400 / 0.75, rtol=1e-6)  # kept units scaled by 1 / (1 - rate), as Keras
    np.testing.assert_array_equal(hidden([0, 1, 2], None), 400.0)  # inference: no dropout
