"""Shared fixtures: an autouse seed, quiet TensorFlow, tiny real configs written as TOML."""

import json
import os
import random

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A real grid small enough to train in seconds: 2 initializers x 2 losses x 2 seeds.
TINY = {
    "name": "tiny",
    "dataset": {"name": "moons", "n_samples": 80},
    "model": {"name": "mlp", "widths": [8]},
    "initializers": ["he_normal", "zeros"],
    "losses": ["binary_crossentropy", "mean_squared_error"],
    "epochs": 2,
    "batch_size": 16,
    "seeds": [0, 1],
    "thresholds": {"val_accuracy": 0.6},
}


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def write_config(path, config):
    """Write a config dict as a TOML file; returns the path."""
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in config.items()))
    return path


@pytest.fixture
def config_file(tmp_path):
    """`config_file(**changes)` writes TINY updated with changes (None drops a key) as TOML."""

    def write(name="tiny", **changes):
        config = {**TINY, "name": name, **changes}
        path = tmp_path / f"{name}.toml"
        write_config(path, {k: v for k, v in config.items() if v is not None})
        return path

    return write
