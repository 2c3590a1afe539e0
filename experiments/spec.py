"""The experiment spec: a TOML file, `--set` overrides, validation, and the grid of runs.

A spec's list-valued axes (initializers, losses, seeds, and dataset, model, optimizer,
learning_rate or batch_size when given as lists) span the grid. Validation finds every problem before anything
trains and reports them all at once. Nothing here imports TensorFlow.
"""

import ast
import copy
import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import initializers
from experiments.budget import check_memory
from experiments.datasets import DATASETS, load_dataset
from experiments.optimizers import OPTIMIZERS
from experiments.store import check_name
from initializers import INITIALIZERS
from initializers.registry import label, slug
from models.builders import MODELS, layer_sizes
from models.losses import DEFAULT_METRICS, LOSSES, METRICS, check_loss

DEFAULTS = {
    "name": "",
    "description": "",
    "dataset": None,
    "model": "mlp",
    "initializers": None,
    "bias_initializer": "zeros",
    "losses": None,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 32,
    "epochs": 20,
    "seeds": [0],
    "early_stopping": {"monitor": "val_loss", "patience": 0, "min_delta": 0.0},
    "metrics": [],
    "thresholds": {},
    "engine": "vectorized",
    # per-layer diagnostics at step 0, every `every` epochs and at the end, on `probe` examples
    "diagnostics": {"every": 10, "probe": 256},
    # a textbook claim and its decision rule (`experiments.claims`); documentation for training
    "claim": None,
    # a keras-tuner search of learning rate and batch size (`experiments.tuning`); `run` ignores it
    "tune": None,
}
REQUIRED = ("dataset", "initializers", "losses")
# upper bounds: beyond them a value is a typo, not an experiment these machines can run
MAXIMA = {"learning_rate": 1e12, "batch_size": 10**7, "epochs": 100_000, "tune.max_trials": 100_000,
          "tune.learning_rate.min": 1e6, "tune.learning_rate.max": 1e6, "tune.learning_rate.step": 1e6,
          "tune.batch_size": 10**7, "tune.hyperband_factor": 100, "tune.hyperband_iterations": 1000,
          "tune.max_consecutive_failed_trials": 100_000}
MAX_SEED = 2**32 - 1
ENGINES = ("vectorized", "keras")  # vectorized falls back to keras where it cannot train a model
# Axes in grid order: (spec field, run key, may the field be a single value?)
AXES = (
    ("dataset", "dataset", True),
    ("model", "model", True),
    ("initializers", "initializer", False),
    ("losses", "loss", False),
    ("optimizer", "optimizer", True),
    ("learning_rate", "learning_rate", True),
    ("batch_size", "batch_size", True),
)


class SpecError(ValueError):
    """Every problem found in a spec, one line each."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def load_config(path):
    """Read a TOML experiment config; the file's stem is the default experiment name."""
    path = Path(path)
    if not path.is_file():
        raise SpecError([f"config file not found: {str(path)!r}"])
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is legal UTF-8
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError([f"config {str(path)!r} is not valid TOML: {' '.join(str(e).split())}"]) from None
    except OSError as e:
        raise SpecError([f"config {str(path)!r} cannot be read: {e.strerror}"]) from None
    config.setdefault("name", path.stem)
    return config


def parse_value(text):
    """A `--set` value: a Python/TOML-like literal, or else the bare string (`optimizer=sgd`).
    A value that opens a list, table or tuple must be a whole literal."""
    text = {"true": "True", "false": "False"}.get(text.strip(), text)
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        if text.strip()[:1] in ("[", "{", "("):
            raise ValueError(f"--set value {text!r} is not a literal (numbers, strings in quotes, lists, tables; "
                             "no expressions such as 10**6)") from None
        return text


def apply_overrides(config, assignments):
    """Apply `key=value` strings; keys are top-level fields or `table.key` (`dataset.noise=0.3`)."""
    config, problems = copy.deepcopy(config), []
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        head, _, sub = key.partition(".")
        if not sep or not key:
            problems.append(f"--set {assignment!r} is not key=value")
        elif head not in DEFAULTS:
            problems.append(f"--set: unknown key {head!r}; valid keys: {', '.join(DEFAULTS)}")
        elif not sub:
            config[key] = _check(problems, parse_value, text)
        elif head not in ("dataset", "model", "early_stopping", "thresholds", "bias_initializer", "optimizer",
                          "diagnostics", "tune"):
            problems.append(f"--set {key!r}: {head!r} is not a table; set it as {head}=value")
        elif isinstance(config.get(head), list):
            problems.append(f"--set {key!r}: {head!r} is a list here; set the whole list as {head}=[...]")
        else:
            table = config.get(head, DEFAULTS[head])
            table = {"name": table} if isinstance(table, str) else dict(table or {})
            table[sub] = _check(problems, parse_value, text)
            config[head] = table
    if problems:
        raise SpecError(problems)
    return config


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _check(problems, fn, *args):
    """Call a validator; record its one-line ValueError instead of stopping."""
    try:
        return fn(*args)
    except ValueError as e:
        problems.append(str(e))
        return None


def _number(field, value, kind, minimum_exclusive=0, maximum=None):
    """A number of the right kind, finite, > `minimum_exclusive` and <= `maximum`."""
    maximum = MAXIMA.get(field, 1e9) if maximum is None else maximum
    ok = isinstance(value, int if kind is int else int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not minimum_exclusive < value <= maximum:
        what = "an integer" if kind is int else "a finite number"
        raise ValueError(f"{field} must be {what} > {_shown(minimum_exclusive)} and <= {_shown(maximum)}, "
                         f"got {value!r}")
    return value


def _shown(bound):
    return f"{bound:,.0f}" if float(bound).is_integer() else f"{bound:g}"


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


def validate(config):
    """Check a config and resolve it; every problem is reported at once.

    Returns:
        (resolved config, the loaded `Dataset`s in the order of `spec["dataset"]`).
    Raises:
        SpecError: one line per problem, each naming the bad value and the valid choices.
    """
    problems = []
    unknown = [k for k in config if k not in DEFAULTS]
    if unknown:
        problems.append(f"unknown config keys {unknown}; valid keys: {', '.join(DEFAULTS)}")
    missing = [k for k in REQUIRED if config.get(k) in (None, [], "")]
    if missing:
        problems.append(f"config needs {', '.join(missing)}")
    spec = {**copy.deepcopy(DEFAULTS), **{k: v for k, v in config.items() if k in DEFAULTS}}
    _check(problems, check_name, spec["name"])
    if not isinstance(spec["description"], str):
        problems.append(f"description must be a string (what the experiment compares), got {spec['description']!r}")
    if missing:
        raise SpecError(problems)

    spec["bias_initializer"] = _check(problems, initializers.parse, spec["bias_initializer"])
    for field, registry, parse in (("dataset", DATASETS, DATASETS.parse), ("model", MODELS, MODELS.parse),
                                   ("initializers", INITIALIZERS, initializers.parse),
                                   ("losses", LOSSES, LOSSES.parse), ("optimizer", OPTIMIZERS, OPTIMIZERS.parse)):
        values = _as_list(spec[field])
        if not values:
            problems.append(f"{field} must not be an empty list")
        spec[field] = [_check(problems, parse, v) for v in values]
        _check(problems, _check_unique, field, spec[field], lambda v, r=registry: [v["name"], r.resolve(v)])
    for field, kind in (("learning_rate", float), ("batch_size", int)):
        values = _as_list(spec[field])
        if not values:
            problems.append(f"{field} must not be an empty list")
        spec[field] = [_check(problems, _number, field, v, kind) for v in values]
        if None not in spec[field]:
            _check(problems, _check_unique, field, spec[field])
    _check(problems, _number, "epochs", spec["epochs"], int)
    seeds = spec["seeds"]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and
                                                      0 <= s <= MAX_SEED for s in seeds)
            and len(set(seeds)) == len(seeds)):
        problems.append(f"seeds must be a non-empty list of distinct integers from 0 to {MAX_SEED}, got {seeds!r}")
    if spec["engine"] not in ENGINES:
        problems.append(f"engine {spec['engine']!r} is unknown; valid engines: {', '.join(ENGINES)}")
    _check(problems, _check_diagnostics, spec)

    datasets = [_check(problems, load_dataset, d) for d in spec["dataset"] if d is not None]
    if datasets and None not in datasets:
        tasks = {d.task for d in datasets}
        if len(tasks) > 1:
            problems.append(f"the datasets of one experiment must share a task, got {', '.join(sorted(tasks))}; "
                            "split them into separate experiments")
        task = datasets[0].task
        for loss in spec["losses"]:
            if loss is not None:
                _check(problems, check_loss, loss, task)
        spec["metrics"] = spec["metrics"] or DEFAULT_METRICS[task]
        known = len(problems)
        _check(problems, _check_metrics, spec["metrics"], spec["thresholds"], task)
        if len(problems) == known:  # the monitor is checked against the metrics
            _check(problems, _check_early_stopping, spec)
        for model, dataset in itertools.product(spec["model"], datasets):
            if model is not None:
                _check(problems, _check_model, model, dataset)
        if not problems:
            _check(problems, check_memory, spec, datasets)
    if spec["claim"] is not None and not problems:
        from experiments.claims import check_claim

        spec["claim"] = _check(problems, check_claim, spec, expand(spec), datasets)
    if spec["tune"] is not None and not problems:
        spec["tune"] = _check(problems, check_tune, spec)
    if problems:
        raise SpecError(problems)
    return spec, datasets


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
    for m in metrics:
        if not isinstance(m, str) or m not in METRICS or task not in METRICS[m]:
            valid = [n for n, tasks in METRICS.items() if task in tasks]
            raise ValueError(f"metric {m!r} does not apply to a {task} task; valid metrics: {', '.join(valid)}")
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
}
TUNERS = ("random", "bayesian", "hyperband", "grid")
TUNE_MODES = ("per_cell", "joint")


def check_tune(spec):
    """The resolved `[tune]` table of a validated spec; ValueError naming the first bad value."""
    from models.losses import greater_is_better

    tune = spec["tune"]
    if not isinstance(tune, dict) or set(tune) - set(TUNE_DEFAULTS):
        unknown = sorted(set(tune) - set(TUNE_DEFAULTS)) if isinstance(tune, dict) else tune
        raise ValueError(f"tune: unknown keys {unknown}; valid: {', '.join(TUNE_DEFAULTS)}")
    tune = {**copy.deepcopy(TUNE_DEFAULTS), **tune}
    for field in ("dataset", "model", "optimizer"):
        if len(spec[field]) > 1:
            raise ValueError(f"tune: a search takes one {field}, got {len(spec[field])}; "
                             "split the config, one search each")
    if tune["mode"] not in TUNE_MODES:
        raise ValueError(f"tune.mode {tune['mode']!r} is unknown; valid: {', '.join(TUNE_MODES)}")
    if tune["tuner"] not in TUNERS:
        raise ValueError(f"tune.tuner {tune['tuner']!r} is unknown; valid: {', '.join(TUNERS)}")
    objectives = ["val_loss", *(f"val_{m}" for m in spec["metrics"])]
    if tune["objective"] not in objectives:
        raise ValueError(f"tune.objective {tune['objective']!r} is not a validation metric of this spec; "
                         f"valid: {', '.join(objectives)}")
    direction = "max" if greater_is_better(tune["objective"]) else "min"
    if tune["direction"] not in (None, direction):
        raise ValueError(f"tune.direction {tune['direction']!r} is wrong for {tune['objective']}: it must be "
                         f"{direction!r}")
    tune["direction"] = direction
    if tune["mode"] == "joint" and len(spec["losses"]) > 1 and tune["objective"] == "val_loss":
        raise ValueError("tune: a joint search over several losses cannot rank trials by val_loss (each loss has "
                         f"its own scale); set tune.objective to one of {', '.join(objectives[1:]) or 'a metric'}")
    for key in ("max_trials", "hyperband_factor", "hyperband_iterations"):
        _number(f"tune.{key}", tune[key], int)
    if tune["hyperband_factor"] < 2:
        raise ValueError(f"tune.hyperband_factor must be an integer >= 2, got {tune['hyperband_factor']!r}")
    if tune["max_consecutive_failed_trials"] is None:
        tune["max_consecutive_failed_trials"] = tune["max_trials"]
    _number("tune.max_consecutive_failed_trials", tune["max_consecutive_failed_trials"], int)
    lr = tune["learning_rate"]
    if not isinstance(lr, dict) or set(lr) - set(TUNE_DEFAULTS["learning_rate"]):
        raise ValueError(f"tune.learning_rate must be a table (min, max, sampling, step), got {lr!r}")
    lr = {**TUNE_DEFAULTS["learning_rate"], **lr}
    _number("tune.learning_rate.min", lr["min"], float)
    _number("tune.learning_rate.max", lr["max"], float, lr["min"])
    if lr["sampling"] not in ("log", "linear"):
        raise ValueError(f"tune.learning_rate.sampling {lr['sampling']!r} is unknown; valid: log, linear")
    if lr["step"] is not None:
        _number("tune.learning_rate.step", lr["step"], float, 1 if lr["sampling"] == "log" else 0)
    elif tune["tuner"] == "grid":
        raise ValueError("tune: the grid tuner needs a finite grid; set tune.learning_rate.step "
                         "(a factor with log sampling, e.g. 10 for 1e-4, 1e-3, ...)")
    tune["learning_rate"] = lr
    sizes = tune["batch_size"]
    if not (isinstance(sizes, list) and sizes and len(set(sizes)) == len(sizes)):
        raise ValueError(f"tune.batch_size must be a non-empty list of distinct integers > 0, got {sizes!r}")
    for size in sizes:
        _number("tune.batch_size", size, int)
    return tune


@dataclass(frozen=True)
class RunSpec:
    """One run of a grid: where it lives, which cell it belongs to, and its resolved config."""

    run_id: str  # <dataset>/<cell slug>/seed_<k>, relative to the experiment's folder
    cell: str  # e.g. "he_normal | categorical_crossentropy"
    axes: dict  # every axis' label in this run, the seed included
    config: dict  # everything needed to train it, all values single


def expand(spec, show=()):
    """The product of the list-valued axes and the seeds, in a stable order.

    Args:
        show: axes to name in the run ids even when they hold one value (the tuned comparison
            names each cell's learning rate and batch size, which differ between its searches).
    """
    values = [_as_list(spec[field]) for field, _, _ in AXES]  # older records hold single values
    shown = [i for i, (_, key, single) in enumerate(AXES) if not single or len(values[i]) > 1 or key in show]
    # the description and claim are documentation: editing them must not make finished runs stale
    documentation = {"description", "claim", "tune"}  # tune: `run` trains the spec's own grid, untuned
    shared = {k: v for k, v in spec.items() if k not in {f for f, _, _ in AXES} | {"seeds"} | documentation}
    combos = list(itertools.product(*values))
    slugs = _cell_slugs([[_axis_slug(AXES[i][1], combo[i]) for i in shown] for combo in combos],
                        [json.dumps([combo[i] for i in shown], sort_keys=True) for combo in combos])
    runs = []
    for combo, cell_slug in zip(combos, slugs, strict=True):
        axes = {key: value for (_, key, _), value in zip(AXES, combo, strict=True)}
        cell = " | ".join(_cell_part(AXES[i][1], combo[i]) for i in shown)
        for seed in spec["seeds"]:
            runs.append(RunSpec(
                run_id=f"{axes['dataset']['name']}/{cell_slug}/seed_{seed}",
                cell=cell,
                axes={**{key: _axis_label(v) for key, v in axes.items()}, "seed": seed},
                config={**shared, **axes, "seed": seed},
            ))
    return runs


MAX_SLUG = 120  # characters of a cell's folder name (a file system allows 255 bytes)


def _cell_slugs(parts, values):
    """One folder name per cell: its axis slugs joined by `__`. A name that is too long, or that
    two different cells would share (slugs replace unsafe characters), gets a short hash of the
    cell's own values (`values`, one canonical JSON text per cell), so every cell has its own folder."""
    names = ["__".join(p) for p in parts]
    hashed = [hashlib.sha256(v.encode()).hexdigest()[:8] for v in values]
    counts = {n: names.count(n) for n in names}
    return [f"{n[:MAX_SLUG - 9]}-{h}" if counts[n] > 1 or len(n) > MAX_SLUG else n
            for n, h in zip(names, hashed, strict=True)]


def _axis_label(value):
    return label(value) if isinstance(value, dict | str) else value


def _cell_part(key, value):
    return label(value) if isinstance(value, dict | str) else f"{key}={value}"


def _axis_slug(key, value):
    if isinstance(value, dict | str):
        return slug(value)
    short = f"{value:g}"
    # enough digits to tell every value apart: 0.001 and 0.0010000001 get different folders
    text = short if float(short) == value else repr(float(value))
    return {"learning_rate": "lr", "batch_size": "bs"}[key] + text
