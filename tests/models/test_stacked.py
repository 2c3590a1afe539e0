"""The stacked models (MLP, linear, CNN) against the Keras models it stands for, and the stacking declaration of every
model in the catalogue."""

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
