"""Running comparisons, in layers that import only downward (`make lint` checks it):

    cli, api -> tuning, claims, launch -> runner -> engines, reporting -> records -> spec -> data
        (-> models -> initializers, the top-level catalogue packages)

`init-loss-lab` (or `python -m experiments`) is the command line; `run`, `load`, `compare` and
`load_model` below are the Python API (`experiments.api`), and `register_initializer`, `register_loss`,
`register_activation`, `register_metric`, `register_model` and `register_dataset` add your own
parts to the catalogues for configs to name. Importing this package imports no TensorFlow.

It does choose TensorFlow's oneDNN kernels, unless `TF_ENABLE_ONEDNN_OPTS` is already set (they
are read when TensorFlow loads, so import this package first): with them, the vectorized
engine's unjitted members compute exactly what their own Keras models compute
(`experiments.engines.stacked_graph`). The vectorized engine ran as fast with them on 2 CPU cores;
the keras engine ran as fast on the tuning search and up to 25% slower on a grid (README, "Engines").
"""

import importlib
import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# your own parts, for a notebook: `lab.register_initializer("scaled", fn)`, then name "scaled" in a config
_REGISTER = {"register_initializer": "initializers", "register_loss": "models.losses",
             "register_activation": "models.activations", "register_metric": "models.metrics",
             "register_model": "models.builders", "register_dataset": "experiments.data.datasets"}


def __getattr__(name):
    if name in _REGISTER:
        return getattr(importlib.import_module(_REGISTER[name]), name)
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")


def run(config, output=".", overrides=None, overwrite=False, progress=True):
    """Train an experiment, write its report and TensorBoard records, return its tables
    (`experiments.api.run`)."""
    from experiments import api

    return api.run(config, output, overrides, overwrite, progress)


def load(name, output="."):
    """A finished experiment's tables (`experiments.api.load`)."""
    from experiments import api

    return api.load(name, output)


def compare(name, a, b, output=".", metric=None, b_experiment=None):
    """Two cells paired by seed, as `init-loss-lab compare` (`experiments.api.compare`)."""
    from experiments import api

    return api.compare(name, a, b, output, metric, b_experiment)


def load_model(path):
    """A run's saved model with your own parts registered (`experiments.api.load_model`)."""
    from experiments import api

    return api.load_model(path)
