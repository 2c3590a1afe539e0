"""A config as the user writes it: a TOML file and `--set key=value` overrides, the fields and
their defaults, and the checks every numeric field shares (finite, within bounds)."""

import ast
import copy
import datetime
import math
import tomllib
from pathlib import Path

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
    # GiB one stacked group of the vectorized engine may take; a larger group trains as several
    # stacks (results do not depend on it beyond rounding). None: a quarter of the machine's memory
    "engine_memory": None,
    # per-layer diagnostics at step 0, every `every` epochs and at the end, on `probe` examples
    "diagnostics": {"every": 10, "probe": 256},
    # keep each run's trained model as model.keras in its folder (not part of a run's config: it
    # does not change what trains)
    "save_model": True,
    # the reports' paired comparisons (`experiments.stats`): the margin of practical equivalence,
    # a number (for the headline metric) or a table of metric = margin; unset: a default per metric
    "compare": {"margin": {}},
    # a textbook claim and its decision rule (`experiments.claims`); documentation for training
    "claim": None,
    # a keras-tuner search of learning rate and batch size (`experiments.tuning`); `run` ignores it
    "tune": None,
}


ENGINES = ("vectorized", "keras")  # vectorized falls back to keras where it cannot train a model


class SpecError(ValueError):
    """Every problem found in a spec, one line each."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


SHIPPED = Path(__file__).resolve().parents[1] / "configs"  # the configs that ship with the package


def shipped_configs():
    """{name: path} of the shipped configs (`configs/*.toml`, `configs/claims/*.toml`)."""
    return {p.stem: p for p in sorted([*SHIPPED.glob("*.toml"), *SHIPPED.glob("claims/*.toml")])}


def locate_config(path):
    """The file a config argument names: a path, or a shipped config by name (`digits_init_x_loss`)."""
    path = Path(path).expanduser()
    if not path.is_file() and str(path) in shipped_configs():
        path = shipped_configs()[str(path)]
    if not path.is_file():
        raise SpecError([f"config file not found: {str(path)!r}; give a file, or a shipped config by name "
                         f"({', '.join(list(shipped_configs())[:4])}, ...: init-loss-lab list configs)"])
    return path.resolve()


def load_config(path):
    """Read a TOML experiment config: a file, or a shipped config by name (`digits_init_x_loss`);
    the file's stem is the default experiment name. Its relative paths are read from its folder
    (`validate(config, base=locate_config(path).parent)`)."""
    path = locate_config(path)
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is legal UTF-8
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError([f"config {str(path)!r} is not valid TOML: {' '.join(str(e).split())}"]) from None
    except OSError as e:
        raise SpecError([f"config {str(path)!r} cannot be read: {e.strerror}"]) from None
    config.setdefault("name", path.stem)
    return config


def parse_value(text):
    """A `--set` value: a TOML value (`{ name = "sgd", momentum = 0.9 }`, `[0, 1]`, `true`, `1e-3`),
    else a Python literal (`{'name': 'huber'}`, `True`), else the bare string (`optimizer=sgd`). A
    value that opens a list, table or tuple must be a whole literal; a TOML date stays a string."""
    stripped = text.strip()
    if "\n" not in stripped:
        try:
            value = tomllib.loads(f"value = {stripped}")["value"]
            if not isinstance(value, datetime.date | datetime.time):
                return value
        except tomllib.TOMLDecodeError:
            pass
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        if stripped[:1] in ("[", "{", "("):
            raise ValueError(f"--set value {text!r} is not a literal (numbers, strings in quotes, lists, tables; "
                             "no expressions such as 10**6)") from None
        return text


def apply_overrides(config, assignments):
    """Apply `key=value` strings; keys are top-level fields or `table.key` (`dataset.noise=0.3`)."""
    problems, values = [], {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {assignment!r} is not key=value")
        else:
            values[key.strip()] = collect(problems, parse_value, text)
    if problems:
        raise SpecError(problems)
    return apply_values(config, values)


def apply_values(config, values):
    """Apply `{key: value}` overrides (values already parsed: the Python API's `overrides`); keys
    are top-level fields or `table.key`. Returns a new config."""
    config, problems = copy.deepcopy(config), []
    for key, value in values.items():
        head, _, sub = key.partition(".")
        if head not in DEFAULTS:
            problems.append(f"--set: unknown key {head!r}; valid keys: {', '.join(DEFAULTS)}")
        elif not sub:
            config[key] = copy.deepcopy(value)
        elif head not in ("dataset", "model", "early_stopping", "thresholds", "bias_initializer", "optimizer",
                          "diagnostics", "tune"):
            problems.append(f"--set {key!r}: {head!r} is not a table; set it as {head}=value")
        elif isinstance(config.get(head), list):
            problems.append(f"--set {key!r}: {head!r} is a list here; set the whole list as {head}=[...]")
        else:
            table = config.get(head, DEFAULTS[head])
            table = {"name": table} if isinstance(table, str) else dict(table or {})
            table[sub] = copy.deepcopy(value)
            config[head] = table
    if problems:
        raise SpecError(problems)
    return config


# upper bounds: beyond them a value is a typo, not an experiment these machines can run
MAXIMA = {"learning_rate": 1e12, "batch_size": 10**7, "epochs": 100_000, "tune.max_trials": 100_000,
          "tune.learning_rate.min": 1e6, "tune.learning_rate.max": 1e6, "tune.learning_rate.step": 1e6,
          "tune.batch_size": 10**7, "tune.hyperband_factor": 100, "tune.hyperband_iterations": 1000,
          "tune.max_consecutive_failed_trials": 100_000}


MAX_SEED = 2**32 - 1


def as_list(value):
    return value if isinstance(value, list) else [value]


def collect(problems, fn, *args):
    """Call a validator; record its one-line ValueError instead of stopping."""
    try:
        return fn(*args)
    except ValueError as e:
        problems.append(str(e))
        return None


def number(field, value, kind, minimum_exclusive=0, maximum=None):
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
