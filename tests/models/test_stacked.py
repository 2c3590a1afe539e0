"""The stacked MLP against the Keras models it stands for, and the stacking declaration of every
model in the catalogue."""

import numpy as np
import pytest

from models import build
from models.builders import MODELS, stacking_blocker
from models.losses import Head
from models.stacked import build_stacked_mlp

HEAD = Head(3, "softmax", "one_hot")


def test_each_member_computes_what_its_keras_model_computes():
    members = [("he_normal", "zeros", 0), ("glorot_uniform", "random_normal", 1), ("orthogonal", "zeros", 2)]
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    stacked = build_stacked_mlp(members, 4, HEAD, widths=(6, 5), activation="tanh", l2=0.01)
    logits = np.asarray(stacked(x))
    assert logits.shape == (3, 5, 3)
    for m, (kernel, bias, seed) in enumerate(members):
        model = build({"name": "mlp", "widths": [6, 5], "activation": "tanh", "l2": 0.01}, (4,), HEAD, kernel, bias,
                      seed)
        probabilities = np.asarray(model(x))
        np.testing.assert_allclose(np.exp(logits[m]) / np.exp(logits[m]).sum(-1, keepdims=True), probabilities,
                                   rtol=1e-5, atol=1e-6)
        penalty = sum(float(np.asarray(loss)) for loss in model.losses)
        assert float(np.asarray(stacked.penalty())[m]) == pytest.approx(penalty, rel=1e-5)


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
