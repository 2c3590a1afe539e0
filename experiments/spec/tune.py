"""The `[tune]` table of a spec: a keras-tuner search of learning rate and batch size, checked and
resolved with its defaults (`experiments.tuning` runs it)."""

import copy

from experiments.spec.config import ENGINES, number
from experiments.spec.types import Tune
from models.metrics import greater_is_better

TUNE_DEFAULTS = {
    "mode": "per_cell",  # per_cell: a search per initializer x loss cell; joint: both are hp.Choice axes
    "tuner": "random",
    "objective": "val_loss",
    "direction": None,  # min or max; the objective's own direction when not given
    "max_trials": 10,  # per search (hyperband sizes itself from epochs and factor instead)
    "learning_rate": {"min": 1e-4, "max": 1e-1, "sampling": "log", "step": None},
    "batch_size": [16, 32, 64, 128, 256],
    "max_consecutive_failed_trials": None,  # None: max_trials, so failures never stop a search
    "hyperband_factor": 3,
    "hyperband_iterations": 1,
    # how trials train: "vectorized" (many trials as one stacked model) or "keras" (one Keras fit
    # each, the reference); None: the spec's engine
    "engine": None,
    # trials asked of each oracle at once, to train in stacks; None: max_trials (every trial a random
    # or grid search has left), 4 for a Bayesian one (its later trials learn from the earlier ones)
    "stack": None,
    # seeds each trial trains (the spec's first ones); its objective is their mean (keras-tuner's
    # executions_per_trial: the mean of each seed's best epoch)
    "executions": 1,
}


TUNERS = ("random", "bayesian", "hyperband", "grid")


TUNE_MODES = ("per_cell", "joint")


def check_tune(tune, spec):
    """The resolved `Tune` of a `[tune]` table for a spec (an `Experiment`); ValueError naming
    the first bad value."""
    if not isinstance(tune, dict) or set(tune) - set(TUNE_DEFAULTS):
        unknown = sorted(set(tune) - set(TUNE_DEFAULTS)) if isinstance(tune, dict) else tune
        raise ValueError(f"tune: unknown keys {unknown}; valid: {', '.join(TUNE_DEFAULTS)}")
    tune = {**copy.deepcopy(TUNE_DEFAULTS), **tune}
    for field in ("dataset", "model", "optimizer"):
        if len(getattr(spec, field)) > 1:
            raise ValueError(f"tune: a search takes one {field}, got {len(getattr(spec, field))}; "
                             "split the config, one search each")
    if tune["mode"] not in TUNE_MODES:
        raise ValueError(f"tune.mode {tune['mode']!r} is unknown; valid: {', '.join(TUNE_MODES)}")
    if tune["tuner"] not in TUNERS:
        raise ValueError(f"tune.tuner {tune['tuner']!r} is unknown; valid: {', '.join(TUNERS)}")
    objectives = ["val_loss", *(f"val_{m}" for m in spec.metrics)]
    if tune["objective"] not in objectives:
        raise ValueError(f"tune.objective {tune['objective']!r} is not a validation metric of this spec; "
                         f"valid: {', '.join(objectives)}")
    direction = "max" if greater_is_better(tune["objective"]) else "min"
    if tune["direction"] not in (None, direction):
        raise ValueError(f"tune.direction {tune['direction']!r} is wrong for {tune['objective']}: it must be "
                         f"{direction!r}")
    tune["direction"] = direction
    if tune["mode"] == "joint" and len(spec.losses) > 1 and tune["objective"] == "val_loss":
        raise ValueError("tune: a joint search over several losses cannot rank trials by val_loss (each loss has "
                         f"its own scale); set tune.objective to one of {', '.join(objectives[1:]) or 'a metric'}")
    tune["engine"] = spec.engine if tune["engine"] is None else tune["engine"]
    if tune["engine"] not in ENGINES:
        raise ValueError(f"tune.engine {tune['engine']!r} is unknown; valid: {', '.join(ENGINES)}")
    if tune["stack"] is None:
        tune["stack"] = 4 if tune["tuner"] == "bayesian" else tune["max_trials"]
    for key in ("max_trials", "hyperband_factor", "hyperband_iterations", "stack", "executions"):
        number(f"tune.{key}", tune[key], int)
    if tune["executions"] > len(spec.seeds):
        raise ValueError(f"tune.executions {tune['executions']} needs as many seeds; the spec has "
                         f"{len(spec.seeds)}: add seeds or lower tune.executions")
    if tune["hyperband_factor"] < 2:
        raise ValueError(f"tune.hyperband_factor must be an integer >= 2, got {tune['hyperband_factor']!r}")
    if tune["max_consecutive_failed_trials"] is None:
        tune["max_consecutive_failed_trials"] = tune["max_trials"]
    number("tune.max_consecutive_failed_trials", tune["max_consecutive_failed_trials"], int)
    lr = tune["learning_rate"]
    if not isinstance(lr, dict) or set(lr) - set(TUNE_DEFAULTS["learning_rate"]):
        raise ValueError(f"tune.learning_rate must be a table (min, max, sampling, step), got {lr!r}")
    lr = {**TUNE_DEFAULTS["learning_rate"], **lr}
    number("tune.learning_rate.min", lr["min"], float)
    number("tune.learning_rate.max", lr["max"], float, lr["min"])
    if lr["sampling"] not in ("log", "linear"):
        raise ValueError(f"tune.learning_rate.sampling {lr['sampling']!r} is unknown; valid: log, linear")
    if lr["step"] is not None:
        number("tune.learning_rate.step", lr["step"], float, 1 if lr["sampling"] == "log" else 0)
    elif tune["tuner"] == "grid":
        raise ValueError("tune: the grid tuner needs a finite grid; set tune.learning_rate.step "
                         "(a factor with log sampling, e.g. 10 for 1e-4, 1e-3, ...)")
    tune["learning_rate"] = lr
    sizes = tune["batch_size"]
    if not (isinstance(sizes, list) and sizes and len(set(sizes)) == len(sizes)):
        raise ValueError(f"tune.batch_size must be a non-empty list of distinct integers > 0, got {sizes!r}")
    for size in sizes:
        number("tune.batch_size", size, int)
    return Tune.from_dict(tune)
