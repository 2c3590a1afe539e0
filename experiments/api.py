"""The Python API, for notebooks and scripts: `run` does what `init-loss-lab run` does (runs,
tables, report, TensorBoard records) and returns the tables; `load` reads a finished experiment.

    import experiments as lab
    result = lab.run("experiments/configs/digits_init_x_loss.toml", output="out", overrides={"epochs": 5})
    result.cells            # one row per cell: mean, std, n over seeds, the status counts
    lab.compare("digits_init_x_loss", {"initializer": "he_normal"}, {"initializer": "zeros"}, output="out")
"""

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.console import filter_native_logs
from experiments.records import rundir, store
from experiments.records.experiment import EXPERIMENT, load_experiment
from experiments.reporting.tables import cell_table, load_diagnostics, load_tables
from experiments.reporting.verdicts import compare_named
from experiments.runner import report_experiment, run_experiment
from experiments.spec import apply_overrides, load_config, locate_config, validate
from experiments.spec.config import apply_values
from experiments.spec.names import check_name
from experiments.spec.parts import register_recorded


@dataclass(frozen=True)
class Result:
    """A finished experiment's tables as DataFrames, and where its files are.

    Attributes:
        runs: a row per run (runs.csv); epochs: a row per run x epoch (epochs.csv); cells: a row
        per cell, ranked by the headline test metric (cells.csv); diagnostics: a row per run x
        diagnostics step x quantity x layer (diagnostics.csv).
    """

    name: str
    folder: Path
    report: Path
    runs: pd.DataFrame
    epochs: pd.DataFrame
    cells: pd.DataFrame
    diagnostics: pd.DataFrame
    trained: int = 0  # runs this call trained (0 for `load`)


def _quiet():
    """Filter TensorFlow's start-up chatter, which comes with its import (validating a user's own
    parts imports it too)."""
    if "tensorflow" not in sys.modules:
        filter_native_logs()


def run(config, output=".", overrides=None, overwrite=False, progress=True):
    """Train every unfinished run of an experiment, write its report and TensorBoard records, and
    return its tables.

    Args:
        config: a config file's path, or a config as a dict (the fields of a TOML config).
        output: the output tree (`<output>/runs`, `<output>/reports`), as `--output`.
        overrides: `{key: value}` (values as Python objects; `"dataset.noise": 0.3` for a table
            field) or a list of `"key=value"` strings, as `--set`.
        overwrite: retrain finished runs too, as `--overwrite`.
        progress: show a progress bar (a widget in Jupyter).
    Raises:
        ValueError: a bad config (`SpecError`, one line per problem) or output folder; nothing on
            disk has changed then.
    """
    _quiet()
    loaded = dict(config) if isinstance(config, dict) else load_config(config)
    if isinstance(overrides, dict):
        loaded = apply_values(loaded, overrides)
    elif overrides:
        loaded = apply_overrides(loaded, list(overrides))
    spec, datasets = validate(loaded, base=None if isinstance(config, dict) else locate_config(config).parent)
    exp_dir, trained, _ = run_experiment(spec, datasets, output, overwrite, progress=progress)
    report_experiment(exp_dir, output, spec.name)
    result = load(spec.name, output)
    return dataclasses.replace(result, trained=trained)


def load(name, output="."):
    """The tables of an experiment under `<output>/runs/<name>`, read from what its runs wrote."""
    exp_dir = store.experiment_dir(output, check_name(name, "experiment"))
    spec = load_experiment(exp_dir)["spec"]
    runs, epochs = load_tables(exp_dir)
    return Result(name=name, folder=exp_dir, report=store.report_dir(output, name) / "report.md", runs=runs,
                  epochs=epochs, cells=cell_table(runs, f"test_{spec.headline}"),
                  diagnostics=load_diagnostics(exp_dir, runs))


def load_model(path):
    """A run's saved model, `<run folder>/model.keras` (or the file itself), as Keras loads it,
    with the user's own parts its experiment used registered first (imported from the files that
    experiment.json records), so that it predicts as it did in training."""
    _quiet()
    import keras

    import initializers.user  # noqa: F401 - registers the Keras classes a user's parts save as
    import models.keras_metrics  # noqa: F401 - and the suite's own metric
    import models.user_parts  # noqa: F401

    path = Path(path)
    file = path / rundir.MODEL if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"no saved model at {str(file)!r}; runs save model.keras when save_model is true")
    record = next((p for p in file.parents if (p / EXPERIMENT).is_file()), None)
    if record is not None:
        register_recorded(load_experiment(record)["spec"].parts)
    return keras.saving.load_model(file)


def compare(name, a, b, output=".", metric=None, b_experiment=None):
    """Two cells paired by seed, as `init-loss-lab compare`: `a` and `b` select cells by their axes
    (`{"initializer": "he_normal", "loss": "huber"}`; several cells are pooled per seed). Returns a
    dict: per side its cells and per-seed values, and `comparison` (`experiments.stats.Comparison`
    as a dict: diff = a - b, lower, upper, p, verdict, seeds_needed, ...)."""
    return compare_named(output, name, {k: str(v) for k, v in a.items()}, {k: str(v) for k, v in b.items()},
                         metric, b_experiment)
