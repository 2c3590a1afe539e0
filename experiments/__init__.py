"""Running comparisons, in layers that import only downward (`make lint` checks it):

    cli, api -> tuning, claims -> runner -> engines, reporting -> records -> spec -> data
        (-> models -> initializers, the top-level catalogue packages)

`init-loss-lab` (or `python -m experiments`) is the command line; `run` and `load` below are the
Python API (`experiments.api`). Importing this package imports no TensorFlow.
"""


def run(config, output=".", overrides=None, overwrite=False, progress=True):
    """Train an experiment, write its report and TensorBoard records, return its tables
    (`experiments.api.run`)."""
    from experiments import api

    return api.run(config, output, overrides, overwrite, progress)


def load(name, output="."):
    """A finished experiment's tables (`experiments.api.load`)."""
    from experiments import api

    return api.load(name, output)
