import inspect

import numpy as np
import pytest

import initializers
from initializers import INITIALIZERS, REQUIRED, layer_seed
from initializers.registry import label, slug


def test_required_initializers_are_in_the_catalogue():
    assert set(REQUIRED) <= set(INITIALIZERS.names)


@pytest.mark.parametrize("name", INITIALIZERS.names)
def test_every_name_builds_its_keras_class_with_keras_defaults(name):
    instance = initializers.get(name, seed=1)
    config = instance.get_config()
    # our declared defaults are Keras' own: a spec that omits a parameter gets what Keras gives
    for key, default in INITIALIZERS.entries[name].params.items():
        assert config[key] == pytest.approx(default), (name, key)
    accepted = set(inspect.signature(type(instance)).parameters)
    assert set(INITIALIZERS.entries[name].params) <= accepted


def test_parameters_reach_keras():
    kernel = initializers.get({"name": "random_normal", "stddev": 0.1}, seed=3)((400, 300))
    assert float(np.std(kernel)) == pytest.approx(0.1, rel=0.05)
    vs = initializers.get({"name": "variance_scaling", "scale": 2.0, "mode": "fan_in",
                           "distribution": "untruncated_normal"}, seed=3)((400, 300))
    assert float(np.std(vs)) == pytest.approx(np.sqrt(2.0 / 400), rel=0.05)


@pytest.mark.parametrize("name, expected_std", [
    ("he_normal", np.sqrt(2 / 25)), ("glorot_normal", np.sqrt(2 / 45)), ("lecun_normal", np.sqrt(1 / 25)),
])
def test_variance_scaled_statistics(name, expected_std):
    # keras' own tests check a 25x20 kernel's std with a tolerance
    kernel = np.asarray(initializers.get(name, seed=0)((25, 20)))
    assert kernel.std() == pytest.approx(expected_std, rel=0.15)


def test_reused_keras_instance_repeats_its_matrix_and_fresh_instances_do_not():
    # the Keras 3 pitfall: one instance with seed=None gives every call the same matrix
    shared = initializers.get("he_normal", seed=None)
    np.testing.assert_array_equal(shared((16, 16)), shared((16, 16)))
    a = initializers.get("he_normal", seed=layer_seed(0, 1))((16, 16))
    b = initializers.get("he_normal", seed=layer_seed(0, 2))((16, 16))
    assert not np.allclose(a, b)


def test_layer_seeds_are_deterministic_and_distinct():
    seeds = {layer_seed(s, i, role) for s in range(3) for i in range(4) for role in ("kernel", "bias")}
    assert len(seeds) == 24
    assert layer_seed(5, 2) == layer_seed(5, 2)


@pytest.mark.parametrize("identifier, message", [
    ("he_normall", "valid names: random_normal"),
    ({"name": "random_normal", "std": 0.1}, "has no parameter 'std'; its parameters: mean, stddev"),
    ({"name": "random_normal", "stddev": -1.0}, "must be > 0"),
    ({"name": "random_normal", "stddev": "big"}, "must be a finite number"),
    ({"name": "variance_scaling", "mode": "fan_max"}, "valid values: fan_in, fan_out, fan_avg"),
    ({"name": "random_uniform", "minval": 1.0, "maxval": 0.0}, "minval < maxval"),
    (3, "Could not interpret initializer identifier"),
])
def test_bad_identifiers_say_what_is_valid(identifier, message):
    with pytest.raises(ValueError, match=message):
        initializers.parse(identifier)


def test_labels_and_slugs():
    spec = initializers.parse({"name": "random_normal", "stddev": 0.1})
    assert label(spec) == "random_normal(stddev=0.1)"
    assert slug(spec) == "random_normal-stddev0.1"
    assert label(initializers.parse("zeros")) == "zeros"
