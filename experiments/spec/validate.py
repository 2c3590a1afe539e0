"""Validation: a config checked and resolved into a spec, every problem found before anything
trains and reported at once (one line each). Nothing here imports TensorFlow.

A spec's list-valued axes (initializers, losses, seeds, and dataset, model, optimizer,
learning_rate or batch_size when given as lists) span the grid (`experiments.spec.grid`).
"""

import copy
import itertools
import json
import math

import initializers
from experiments.data import DATASETS, load_dataset
from experiments.spec.budget import check_memory
from experiments.spec.claim import check_claim
from experiments.spec.config import DEFAULTS, ENGINES, MAX_SEED, MAXIMA, SpecError, as_list, collect, number
from experiments.spec.grid import expand
from experiments.spec.names import check_name
from experiments.spec.parts import recorded, resolve_parts
from experiments.spec.tune import check_tune
from experiments.spec.types import Experiment
from initializers import INITIALIZERS
from initializers.registry import label
from models.builders import MODELS, layer_sizes
from models.losses import LOSSES, check_loss
from models.metrics import DEFAULT_METRICS, METRICS, raw_metrics
from models.optimizers import OPTIMIZERS

REQUIRED = ("dataset", "initializers", "losses")


def _check_unique(field, values, parse=None):
    """Every axis value once: two values that resolve alike (`he_normal` and `{ name = "he_normal" }`,
    `0.001` and `1e-3`) would be one run twice, written to one folder."""
    seen = {}
    for value in values:
        if value is None:
            continue
        key = json.dumps(parse(value), sort_keys=True) if parse else repr(float(value))
        if key in seen:
            same = "" if seen[key] == value else f" ({seen[key]!r} and {value!r} are the same)"
            raise ValueError(f"{field} lists {label(value) if parse else value!r} twice{same}; give each value once")
        seen[key] = value


def validate(config, base=None):
    """Check a config and resolve it; every problem is reported at once.

    Args:
        base: the folder the config's relative paths are read from (its file's; default: the
            current folder).
    Returns:
        (the `Experiment`, the loaded `Dataset`s in the order of its `dataset` axis).
    Raises:
        SpecError: one line per problem, each naming the bad value and the valid choices.
    """
    problems = []
    config = resolve_parts(config, base, problems)  # the user's own parts, registered under their names
    if problems:
        raise SpecError(problems)
    unknown = [k for k in config if k not in DEFAULTS]
    if unknown:
        problems.append(f"unknown config keys {unknown}; valid keys: {', '.join(DEFAULTS)}")
    missing = [k for k in REQUIRED if config.get(k) in (None, [], "")]
    if missing:
        problems.append(f"config needs {', '.join(missing)}")
    spec = {**copy.deepcopy(DEFAULTS), **{k: v for k, v in config.items() if k in DEFAULTS}}
    collect(problems, check_name, spec["name"])
    if not isinstance(spec["description"], str):
        problems.append(f"description must be a string (what the experiment compares), got {spec['description']!r}")
    if missing:
        raise SpecError(problems)

    spec["bias_initializer"] = collect(problems, initializers.parse, spec["bias_initializer"])
    for field, registry, parse in (("dataset", DATASETS, DATASETS.parse), ("model", MODELS, MODELS.parse),
                                   ("initializers", INITIALIZERS, initializers.parse),
                                   ("losses", LOSSES, LOSSES.parse), ("optimizer", OPTIMIZERS, OPTIMIZERS.parse)):
        values = as_list(spec[field])
        if not values:
            problems.append(f"{field} must not be an empty list")
        spec[field] = [collect(problems, parse, v) for v in values]
        collect(problems, _check_unique, field, spec[field], lambda v, r=registry: [v["name"], r.resolve(v)])
    for field, kind in (("learning_rate", float), ("batch_size", int)):
        values = as_list(spec[field])
        if not values:
            problems.append(f"{field} must not be an empty list")
        spec[field] = [collect(problems, number, field, v, kind) for v in values]
        if None not in spec[field]:
            collect(problems, _check_unique, field, spec[field])
    collect(problems, number, "epochs", spec["epochs"], int)
    seeds = spec["seeds"]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and
                                                      0 <= s <= MAX_SEED for s in seeds)
            and len(set(seeds)) == len(seeds)):
        problems.append(f"seeds must be a non-empty list of distinct integers from 0 to {MAX_SEED}, got {seeds!r}")
    if not isinstance(spec["save_model"], bool):
        problems.append(f"save_model must be true or false, got {spec['save_model']!r}")
    if spec["engine"] not in ENGINES:
        problems.append(f"engine {spec['engine']!r} is unknown; valid engines: {', '.join(ENGINES)}")
    if spec["engine_memory"] is not None:
        collect(problems, number, "engine_memory", spec["engine_memory"], float, 0, 2**20)
    collect(problems, _check_diagnostics, spec)

    datasets = [collect(problems, load_dataset, d, base) for d in spec["dataset"] if d is not None]
    if datasets and None not in datasets:
        tasks = {d.task for d in datasets}
        if len(tasks) > 1:
            problems.append(f"the datasets of one experiment must share a task, got {', '.join(sorted(tasks))}; "
                            "split them into separate experiments")
        task = datasets[0].task
        for loss in spec["losses"]:
            if loss is not None:
                collect(problems, check_loss, loss, task)
        spec["metrics"] = spec["metrics"] or DEFAULT_METRICS[task]
        if task == "regression" and isinstance(spec["metrics"], list) and all(isinstance(m, str) for m in
                                                                               spec["metrics"]):
            spec["metrics"] = spec["metrics"] + raw_metrics(spec["metrics"])  # errors in the targets' own units
        known = len(problems)
        collect(problems, _check_metrics, spec["metrics"], spec["thresholds"], task)
        if len(problems) == known:  # the monitor and the margins are checked against the metrics
            collect(problems, _check_early_stopping, spec)
            collect(problems, _check_compare, spec)
        for model, dataset in itertools.product(spec["model"], datasets):
            if model is not None:
                collect(problems, _check_model, model, dataset)
    if problems:
        raise SpecError(problems)
    experiment = Experiment.from_dict({**spec, "claim": None, "tune": None})
    experiment = experiment.replace(parts=recorded(experiment))
    collect(problems, check_memory, experiment, datasets)
    claim = tune = None
    if spec["claim"] is not None and not problems:
        claim = collect(problems, check_claim, spec["claim"], experiment, expand(experiment), datasets)
    if spec["tune"] is not None and not problems:
        tune = collect(problems, check_tune, spec["tune"], experiment)
    if problems:
        raise SpecError(problems)
    return experiment.replace(claim=claim, tune=tune), datasets


def _check_model(model, dataset):
    """A model that can be built on a dataset's inputs (`models.builders.layer_sizes` checks it)."""
    try:
        layer_sizes(model, dataset.input_shape, max(dataset.n_classes, 1))
    except ValueError as e:
        raise ValueError(f"{e} (dataset '{dataset.name}')") from None


def _check_early_stopping(spec):
    value = spec["early_stopping"]
    if value is False:
        value = {"patience": 0}
    if not isinstance(value, dict):
        raise ValueError(f"early_stopping must be a table (monitor, patience, min_delta) or false, got {value!r}")
    merged = {**DEFAULTS["early_stopping"], **value}
    unknown = set(merged) - set(DEFAULTS["early_stopping"])
    if unknown:
        raise ValueError(f"early_stopping has unknown keys {sorted(unknown)}; valid: monitor, patience, min_delta")
    patience = merged["patience"]
    if not (isinstance(patience, int) and not isinstance(patience, bool) and 0 <= patience <= MAXIMA["epochs"]):
        raise ValueError(f"early_stopping.patience must be an integer from 0 (off) to {MAXIMA['epochs']}, "
                         f"got {patience!r}")
    delta = merged["min_delta"]
    if not isinstance(delta, int | float) or isinstance(delta, bool) or not math.isfinite(delta) or delta < 0:
        raise ValueError(f"early_stopping.min_delta must be a finite number >= 0, got {delta!r}")
    logged = [p + m for p in ("", "val_") for m in ["loss", *spec["metrics"]]]
    if merged["monitor"] not in logged:
        raise ValueError(f"early_stopping.monitor {merged['monitor']!r} is not a logged metric; valid: "
                         f"{', '.join(logged)}")
    spec["early_stopping"] = merged


def _check_compare(spec):
    """`compare = { margin = 0.005 }` (the headline metric's) or `{ margin = { accuracy = 0.005 } }`,
    resolved to the table form; margins are finite numbers >= 0."""
    value = spec["compare"]
    if not isinstance(value, dict) or set(value) - {"margin"}:
        raise ValueError(f"compare must be a table with a margin (a number, or a table of metric = margin), "
                         f"got {value!r}")
    margin = value.get("margin", {})
    margins = margin if isinstance(margin, dict) else {spec["metrics"][0]: margin}
    valid = ["loss", *spec["metrics"]]
    for metric, given in margins.items():
        if metric not in valid:
            raise ValueError(f"compare.margin names {metric!r}, not a recorded metric; valid: {', '.join(valid)}")
        if not isinstance(given, int | float) or isinstance(given, bool) or not math.isfinite(given) or given < 0:
            raise ValueError(f"compare.margin for {metric} must be a finite number >= 0, got {given!r}")
    spec["compare"] = {"margin": {m: float(v) for m, v in margins.items()}}


def _check_diagnostics(spec):
    value = {"every": 0} if spec["diagnostics"] is False else spec["diagnostics"]
    if not isinstance(value, dict) or set(value) - set(DEFAULTS["diagnostics"]):
        raise ValueError(f"diagnostics must be a table (every, probe) or false, got {value!r}")
    merged = {**DEFAULTS["diagnostics"], **value}
    for key, minimum in (("every", 0), ("probe", 1)):
        if not (isinstance(merged[key], int) and not isinstance(merged[key], bool) and
                minimum <= merged[key] <= MAXIMA["epochs"]):
            raise ValueError(f"diagnostics.{key} must be an integer >= {minimum}"
                             + (" (0 = off)" if key == "every" else "") + f" and <= {MAXIMA['epochs']}, "
                             f"got {merged[key]!r}")
    spec["diagnostics"] = merged


def _check_metrics(metrics, thresholds, task):
    if not isinstance(metrics, list):
        raise ValueError(f"metrics must be a list of names, got {metrics!r}")
    valid = ", ".join(n for n, metric in METRICS.items() if task in metric.tasks)
    for m in metrics:
        if not isinstance(m, str) or m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; valid metrics for a {task} task: {valid} "
                             "(init-loss-lab list metrics)")
        if task not in METRICS[m].tasks:
            raise ValueError(f"metric {m!r} does not apply to a {task} task; valid metrics: {valid}")
    repeated = sorted({m for m in metrics if metrics.count(m) > 1})
    if repeated:
        raise ValueError(f"metrics lists {', '.join(map(repr, repeated))} more than once; give each metric once")
    if not isinstance(thresholds, dict):
        raise ValueError(f"thresholds must be a table of metric = value, got {thresholds!r}")
    known = [p + m for p in ("", "val_") for m in ["loss", *metrics]]
    for key, value in thresholds.items():
        if key not in known:
            raise ValueError(f"threshold on {key!r}: not a recorded metric; valid: {', '.join(known)}")
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"threshold {key} must be a finite number, got {value!r}")


