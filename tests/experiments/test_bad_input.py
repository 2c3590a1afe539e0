"""Bad input, table-driven, through every command: exit code 2, every stderr line `error: ...`
naming the value, no traceback, and a finished output tree byte for byte unchanged (no lock, no
folder, no half-written file). A config error is never recorded as a training result."""

import contextlib
import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY, write_config

from experiments.cli import main

REGRESSION = {"dataset": {"name": "regression", "n_samples": 80}, "losses": ["mean_squared_error"], "metrics": [],
              "thresholds": {}}
DIGITS = {"dataset": "digits", "losses": ["categorical_crossentropy"], "model": {"name": "cnn"}}
TUNE = {"initializers": ["he_normal"], "tune": {"max_trials": 2}}
CLAIM = {"seeds": [0, 1, 2], "claim": {
    "statement": "he_normal beats zeros", "source": "the tests",
    "checks": [{"name": "accuracy", "metric": "test_accuracy", "plus": [{"initializer": "he_normal"}],
                "minus": [{"initializer": "zeros"}], "test": ">", "value": 0}]}}


def _claim(**check):
    """CLAIM with its one check changed (None removes a key)."""
    merged = {k: v for k, v in {**CLAIM["claim"]["checks"][0], **check}.items() if v is not None}
    return {**CLAIM, "claim": {**CLAIM["claim"], "checks": [merged]}}


def _claim_table(**changes):
    return {**CLAIM, "claim": {k: v for k, v in {**CLAIM["claim"], **changes}.items() if v is not None}}


def _set(*assignments):
    return [a for s in assignments for a in ("--set", s)]


# (command, config changes (None drops a key) or "raw:<name>" for a file from FILES, extra arguments,
#  what the message must say). Placeholders {csv_...}/{npz_...} name data files written for the tests.
CASES = {
    # -- names and catalogues ----------------------------------------------------------------------
    "unknown initializer": ("run", {}, _set("initializers=['he_normal', 'kaiming']"), "'kaiming'; valid names: "),
    "unknown loss": ("run", {}, _set("losses=['hinge']"), "'hinge'; valid names: mean_squared_error"),
    "unknown dataset": ("run", {}, _set("dataset=mnist2"), "'mnist2'; valid names: digits"),
    "unknown model": ("run", {}, _set("model=resnet"), "'resnet'; valid names: mlp, linear, cnn"),
    "unknown optimizer": ("run", {}, _set("optimizer=adamax"), "'adamax'; valid names: sgd"),
    "unknown activation": ("run", {}, _set("model.activation=relu6"), "'relu6'; valid values: linear, sigmoid"),
    "unknown bias initializer": ("run", {"bias_initializer": "zero"}, [], "'zero'; valid names"),
    "unknown engine": ("run", {}, _set("engine=jax"), "engine 'jax' is unknown; valid engines: vectorized, keras"),
    "save_model not a flag": ("run", {}, _set("save_model=1"), "save_model must be true or false, got 1"),
    "unknown metric": ("run", {"metrics": ["f2"]}, [], "unknown metric 'f2'; valid metrics for a binary task: "
                                                       "accuracy, auc, precision, recall, f1 (init-loss-lab list"),
    "a metric of another task": ("run", {"metrics": ["r2"]}, [], "metric 'r2' does not apply to a binary task"),
    "metric of another task": ("run", {}, _set("metrics=['mean_absolute_error']"),
                               "metric 'mean_absolute_error' does not apply"),
    "metric not a string": ("run", {"metrics": [3]}, [], "unknown metric 3; valid metrics"),
    "metrics not a list": ("run", {"metrics": "accuracy"}, [], "metrics must be a list of names, got 'accuracy'"),
    "model is a number": ("run", {"model": 3}, [], "Could not interpret model identifier: 3"),
    "dataset table without a name": ("run", {"dataset": {"n_samples": 80}}, [],
                                     "Could not interpret dataset identifier"),
    "unknown initializer parameter": ("run", {}, _set("initializers=[{'name': 'random_normal', 'sigma': 1.0}]"),
                                      "has no parameter 'sigma'; its parameters: mean, stddev"),
    "unknown optimizer parameter": ("run", {"optimizer": {"name": "sgd", "beta": 0.9}}, [],
                                    "optimizer 'sgd' has no parameter 'beta'; its parameters: momentum, nesterov"),
    "bad variance_scaling mode": ("run", {"initializers": [{"name": "variance_scaling", "mode": "fan_max"}]}, [],
                                  "'fan_max'; valid values: fan_in, fan_out, fan_avg"),
    "unknown standardize": ("run", {"dataset": {"name": "moons", "standardize": "robust"}}, [],
                            "'robust'; valid values: zscore, minmax, none"),
    # -- the experiment's name and text ------------------------------------------------------------
    "name climbing out": ("run", {}, _set("name=../../escape"), "name '../../escape' is not a valid experiment name"),
    "absolute name": ("run", {}, _set("name=/tmp/elsewhere"), "name '/tmp/elsewhere' is not a valid experiment"),
    "name .": ("run", {"name": "."}, [], "name '.' is not a valid experiment name"),
    "name ..": ("run", {"name": ".."}, [], "name '..' is not a valid experiment name"),
    "name with a newline": ("run", {"name": "a\nb"}, [], "name 'a\\nb' is not a valid experiment name"),
    "name with a slash": ("run", {"name": "a/b"}, [], "name 'a/b' is not a valid experiment name"),
    "name of 300 characters": ("run", {"name": "n" * 300}, [], "(300 characters) is not a valid experiment name"),
    "empty name": ("run", {"name": ""}, [], "name '' is not a valid experiment name"),
    "name that is a number": ("run", {"name": 7}, [], "name 7 is not a valid experiment name"),
    "reserved name": ("run", {"name": "claims"}, [], "and not claims"),
    "description not a string": ("run", {"description": 3}, [], "description must be a string"),
    # -- empty, duplicated and colliding axes -----------------------------------------------------
    "empty learning rates": ("run", {}, _set("learning_rate=[]"), "learning_rate must not be an empty list"),
    "empty batch sizes": ("run", {"batch_size": []}, [], "batch_size must not be an empty list"),
    "empty initializers": ("run", {}, _set("initializers=[]"), "config needs initializers"),
    "empty losses in a list": ("run", {"losses": []}, [], "config needs losses"),
    "empty models": ("run", {"model": []}, [], "model must not be an empty list"),
    "empty seeds": ("run", {}, _set("seeds=[]"), "seeds must be a non-empty list"),
    "duplicate initializers": ("run", {}, _set("initializers=['he_normal','he_normal']"),
                               "initializers lists 'he_normal' twice"),
    "the same initializer two ways": ("run", {"initializers": ["he_normal", {"name": "he_normal"}]}, [],
                                      "initializers lists 'he_normal' twice"),
    "the same loss with its default spelled out": ("run", {"losses": ["huber", {"name": "huber", "delta": 1.0}]}, [],
                                                   "losses lists 'huber(delta=1.0)' twice"),
    "duplicate learning rates": ("run", {"learning_rate": [0.001, 1e-3]}, [], "learning_rate lists 0.001 twice"),
    "duplicate batch sizes": ("run", {"batch_size": [16, 16]}, [], "batch_size lists 16 twice"),
    "duplicate datasets": ("run", {"dataset": ["iris", "iris"], "losses": ["mean_squared_error"]}, [],
                           "dataset lists 'iris' twice"),
    "duplicate models": ("run", {"model": ["linear", {"name": "linear", "l1": 0.0}]}, [], "model lists"),
    "duplicate optimizers": ("run", {"optimizer": ["adam", {"name": "adam", "beta_1": 0.9}]}, [],
                             "optimizer lists"),
    "duplicate metrics": ("run", {"metrics": ["accuracy", "accuracy"]}, [], "metrics lists 'accuracy' more than once"),
    "duplicate seeds": ("run", {"seeds": [0, 0]}, [], "seeds must be a non-empty list of distinct integers"),
    # -- numbers: types, NaN, inf, ranges ---------------------------------------------------------
    "zero batch size": ("run", {}, _set("batch_size=0"), "batch_size must be an integer > 0 and <= 10,000,000, got 0"),
    "absurd batch size": ("run", {"batch_size": 10**9}, [], "got 1000000000"),
    "float batch size": ("run", {"batch_size": 16.5}, [], "batch_size must be an integer"),
    "negative learning rate": ("run", {}, _set("learning_rate=-0.1"), "learning_rate must be a finite number > 0"),
    "infinite learning rate": ("run", {"learning_rate": float("inf")}, [], "learning_rate must be a finite number"),
    "NaN learning rate": ("run", {"learning_rate": float("nan")}, [], "got nan"),
    "learning rate as text": ("run", {}, _set("learning_rate=fast"), "got 'fast'"),
    "learning rate 1e13": ("run", {"learning_rate": 1e13}, [], "<= 1,000,000,000,000, got 10000000000000.0"),
    "zero epochs": ("run", {}, _set("epochs=0"), "epochs must be an integer > 0 and <= 100,000, got 0"),
    "epochs of the wrong type": ("run", {}, _set("epochs=abc"),
                                 "epochs must be an integer > 0 and <= 100,000, got 'abc'"),
    "a billion epochs": ("run", {"epochs": 10**9}, [], "epochs must be an integer > 0 and <= 100,000, got 1000000000"),
    "boolean epochs": ("run", {"epochs": True}, [], "got True"),
    "negative seed": ("run", {"seeds": [-1]}, [], "got [-1]"),
    "huge seed": ("run", {"seeds": [2**40]}, [], "from 0 to 4294967295"),
    "seeds not a list": ("run", {"seeds": 3}, [], "seeds must be a non-empty list"),
    "initializer mean NaN": ("run", {"initializers": [{"name": "random_normal", "mean": float("nan")}]}, [],
                             "initializer 'random_normal' parameter 'mean' must be a finite number, got nan"),
    "constant initializer inf": ("run", {"initializers": [{"name": "constant", "value": float("inf")}]}, [],
                                 "parameter 'value' must be a finite number, got inf"),
    "constant initializer 1e9": ("run", {"initializers": [{"name": "constant", "value": 1e9}]}, [],
                                 "parameter 'value' must be from -1e+06 to 1e+06"),
    "impossible stddev": ("run", {}, _set("initializers=[{'name': 'random_normal', 'stddev': -0.1}]"),
                          "must be > 0, got -0.1"),
    "uniform minval above maxval": ("run", {"initializers": [{"name": "random_uniform", "minval": 1.0, "maxval": 0.0}]},
                                    [], "needs minval < maxval, got 1.0 and 0.0"),
    "stddev as text": ("run", {"initializers": [{"name": "random_normal", "stddev": "wide"}]}, [],
                       "parameter 'stddev' must be a finite number, got 'wide'"),
    "huber delta inf": ("run", {"losses": [{"name": "huber", "delta": float("inf")}]}, [],
                        "loss 'huber' parameter 'delta' must be a finite number, got inf"),
    "huber delta 0": ("run", {"losses": [{"name": "huber", "delta": 0.0}]}, [], "parameter 'delta' must be > 0"),
    "widths [0]": ("run", {"model": {"name": "mlp", "widths": [0]}}, [], "'widths' must be from 1 to 65,536, got [0]"),
    "widths [-3]": ("run", {"model": {"name": "mlp", "widths": [-3]}}, [], "got [-3]"),
    "widths [10**9]": ("run", {"model": {"name": "mlp", "widths": [10**9]}}, [], "got [1000000000]"),
    "widths not a list": ("run", {"model": {"name": "mlp", "widths": 64}}, [], "parameter 'widths' must be a list"),
    "widths of floats": ("run", {"model": {"name": "mlp", "widths": [8.5]}}, [], "got [8.5]"),
    "1001 hidden layers": ("run", {"model": {"name": "mlp", "widths": [2] * 1001}}, [],
                           "has 1001 layers; at most 1000"),
    "negative l2": ("run", {"model": {"name": "mlp", "l2": -1.0}}, [],
                    "parameter 'l2' must be from 0 to 1000, got -1.0"),
    "NaN l1": ("run", {"model": {"name": "mlp", "l1": float("nan")}}, [], "parameter 'l1' must be a finite number"),
    "dropout 1": ("run", {"model": {"name": "mlp", "dropout": 1.0}}, [], "'dropout' must be in [0, 1), got 1.0"),
    "batch_norm as a number": ("run", {"model": {"name": "mlp", "batch_norm": 1}}, [], "must be true or false, got 1"),
    "momentum 1.5": ("run", {"optimizer": {"name": "sgd", "momentum": 1.5}}, [], "'momentum' must be in [0, 1)"),
    "adam beta NaN": ("run", {"optimizer": {"name": "adam", "beta_1": float("nan")}}, [], "must be a finite number"),
    # -- early stopping, thresholds, diagnostics ---------------------------------------------------
    "unknown early-stopping monitor": ("run", {"early_stopping": {"monitor": "val_acc", "patience": 2}}, [],
                                       "monitor 'val_acc' is not a logged metric; valid: loss, accuracy, val_loss"),
    "negative patience": ("run", {"early_stopping": {"patience": -1}}, [], "patience must be an integer from 0"),
    "NaN min_delta": ("run", {"early_stopping": {"patience": 2, "min_delta": float("nan")}}, [],
                      "min_delta must be a finite number >= 0, got nan"),
    "unknown early-stopping key": ("run", {"early_stopping": {"wait": 2}}, [], "early_stopping has unknown keys"),
    "early stopping as a number": ("run", {"early_stopping": 3}, [], "early_stopping must be a table"),
    "NaN threshold": ("run", {"thresholds": {"val_accuracy": float("nan")}}, [],
                      "threshold val_accuracy must be a finite number, got nan"),
    "infinite threshold": ("run", {"thresholds": {"val_accuracy": float("inf")}}, [], "must be a finite number"),
    "threshold on an unknown metric": ("run", {"thresholds": {"val_f1": 0.5}}, [], "threshold on 'val_f1'"),
    "thresholds not a table": ("run", {"thresholds": [0.5]}, [], "thresholds must be a table"),
    "negative diagnostics interval": ("run", {}, _set("diagnostics.every=-1"), "diagnostics.every must be an integer"),
    "unknown diagnostics key": ("run", {}, _set("diagnostics.often=1"), "diagnostics must be a table (every, probe)"),
    "zero probe": ("run", {"diagnostics": {"probe": 0}}, [], "diagnostics.probe must be an integer >= 1"),
    # -- datasets ----------------------------------------------------------------------------------
    "cross-entropy on regression": ("run", {"dataset": "diabetes", "losses": ["categorical_crossentropy"],
                                            "thresholds": {}}, [],
                                    "loss 'categorical_crossentropy' does not apply to a regression"),
    "binary cross-entropy on multiclass": ("run", {}, _set("dataset=iris", "losses=['binary_crossentropy']"),
                                           "loss 'binary_crossentropy' does not apply to a multiclass task"),
    "datasets of two tasks": ("run", {}, _set("dataset=['moons', 'diabetes']"), "must share a task"),
    "a trillion samples": ("run", {"dataset": {"name": "moons", "n_samples": 10**12}}, [],
                           "'n_samples' must be from 1 to 10,000,000, got 1000000000000"),
    "zero samples": ("run", {"dataset": {"name": "moons", "n_samples": 0}}, [], "'n_samples' must be > 0"),
    "negative noise": ("run", {"dataset": {"name": "moons", "noise": -0.1}}, [], "'noise' must be from 0 to"),
    "too few regression features": ("run", {**REGRESSION, "dataset": {"name": "regression", "n_features": 3}}, [],
                                    "needs n_features >= 5, got 3"),
    "circles factor 1.5": ("run", {"dataset": {"name": "circles", "factor": 1.5}}, [], "'factor' must be in (0, 1)"),
    "fractions summing to 1": ("run", {"dataset": {"name": "moons", "validation_fraction": 0.5,
                                                   "test_fraction": 0.5}}, [], "must be < 1, got 1.0"),
    "negative split seed": ("run", {"dataset": {"name": "moons", "split_seed": -1}}, [], "'split_seed' must be from 0"),
    "label noise 1.5": ("run", {"dataset": {"name": "moons", "label_noise": 1.5}}, [],
                        "'label_noise' must be in [0, 1), got 1.5"),
    "label noise on regression": ("run", {**REGRESSION, "dataset": {"name": "regression", "label_noise": 0.1}}, [],
                                  "label_noise applies to classification"),
    "outliers on classification": ("run", {"dataset": {"name": "moons", "outlier_fraction": 0.1}}, [],
                                   "outlier_fraction applies to regression"),
    "NaN outlier magnitude": ("run", {**REGRESSION, "dataset": {"name": "regression", "outlier_fraction": 0.1,
                                                                "outlier_magnitude": float("nan")}}, [],
                              "'outlier_magnitude' must be a finite number, got nan"),
    "mnist nowhere": ("run", {}, _set("dataset={ name = 'mnist', download = false }",
                                      "losses=['categorical_crossentropy']"),
                      "(Keras' cache) and download = false; set dataset.path to an .npz"),
    "missing csv": ("run", {}, _set("dataset={'name': 'csv', 'path': '/nonexistent/d.csv', 'target': 'y'}"),
                    "no file at '/nonexistent/d.csv'"),
    "one-class csv": ("run", {"dataset": {"name": "csv", "path": "{csv_one_class}", "target": "label"}}, [],
                      "needs at least 2 classes, found 1"),
    "csv with NaN": ("run", {"dataset": {"name": "csv", "path": "{csv_nan}", "target": "label"}}, [],
                     "NaN or empty cells in columns ['b']"),
    "csv without the target column": ("run", {"dataset": {"name": "csv", "path": "{csv_good}", "target": "y"}}, [],
                                      "no target column 'y'"),
    "csv with a text feature": ("run", {"dataset": {"name": "csv", "path": "{csv_text}", "target": "label"}}, [],
                                "feature columns ['colour'] are not numeric"),
    "csv of only the target": ("run", {"dataset": {"name": "csv", "path": "{csv_target_only}", "target": "label"}},
                               [], "has 0 feature columns"),
    "csv that is binary garbage": ("run", {"dataset": {"name": "csv", "path": "{garbage}", "target": "label"}}, [],
                                   "dataset 'csv': cannot read"),
    "csv binary task with 3 classes": ("run", {"dataset": {"name": "csv", "path": "{csv_three}", "target": "label",
                                                           "task": "binary"}}, [], "task 'binary' needs 2 classes"),
    "npz with 1-D inputs": ("run", {"dataset": {"name": "npz", "path": "{npz_flat}"}}, [],
                            "gives x of shape (40,) and y of shape (40,)"),
    "npz of unequal lengths": ("run", {"dataset": {"name": "npz", "path": "{npz_unequal}"}}, [],
                               "with the same number of examples"),
    "npz without y": ("run", {"dataset": {"name": "npz", "path": "{npz_no_y}"}}, [], "lacks arrays ['y']"),
    "npz that is not an npz": ("run", {"dataset": {"name": "npz", "path": "{garbage}"}}, [], "cannot read"),
    "npz with complex inputs": ("run", {"dataset": {"name": "npz", "path": "{npz_complex}"}}, [],
                                "has dtype complex128"),
    "mnist npz of flat images": ("run", {"dataset": {"name": "mnist", "path": "{npz_mnist_flat}"},
                                         "losses": ["categorical_crossentropy"]}, [],
                                 "it needs grey images as (examples, height, width)"),
    # -- models against data, and memory -----------------------------------------------------------
    "cnn on tabular data": ("run", {}, _set("model=cnn"), "model 'cnn' needs image-shaped data"),
    "cnn kernel larger than the image": ("run", {**DIGITS, "model": {"name": "cnn", "kernel_size": 9}}, [],
                                         "'kernel_size' is 9, larger than the 8x8 input of its convolution 1"),
    "cnn with too many poolings": ("run", {**DIGITS, "model": {"name": "cnn", "filters": [4] * 6}}, [],
                                   "larger than the 2x2 input of its convolution 3"),
    "cnn with no filters in a layer": ("run", {**DIGITS, "model": {"name": "cnn", "filters": [0]}}, [],
                                       "'filters' must be from 1 to 4,096, got [0]"),
    "a grid larger than memory": ("run", {"model": {"name": "mlp", "widths": [60000] * 30}}, [],
                                  "the grid needs an estimated"),
    "a negative engine_memory": ("run", {}, _set("engine_memory=-1"), "engine_memory must be a finite number > 0"),
    "an engine_memory in words": ("run", {"engine_memory": "4GiB"}, [], "engine_memory must be a finite number > 0"),
    # -- the command line and the config file ------------------------------------------------------
    "unknown --set key": ("run", {}, _set("epoch=3"), "unknown key 'epoch'; valid keys: name"),
    "a shard beyond the shards": ("run", {}, ["--shard", "3/3"], "--shard '3/3' must be I/N with 0 <= I < N"),
    "a shard that is no number": ("run", {}, ["--shard", "one/3"], "must be I/N with 0 <= I < N (e.g. 0/4)"),
    "zero shards": ("run", {}, ["--shard", "0/0"], "--shard '0/0' must be I/N"),
    "an auto shard outside a job array": ("run", {}, ["--shard", "auto/3"],
                                          "neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set"),
    "launch on k8s without an image": ("launch", {}, ["--jobs", "2", "--executor", "k8s"], "needs --image"),
    "launch of no jobs": ("launch", {}, ["--jobs", "0", "--executor", "local"], "--jobs and --parallel must be at"),
    "launch of a bad config": ("launch", {"epochs": 0}, ["--jobs", "2", "--executor", "local"], "epochs must be"),
    "launch of claims that are no claim": ("launch", {}, ["--claims", "--jobs", "2", "--executor", "local"],
                                           "has no [claim] table"),
    "malformed --set": ("run", {}, _set("epochs"), "'epochs' is not key=value"),
    "--set of a broken list": ("run", {}, _set("learning_rate=[0.1, 0.2"), "is not a literal"),
    "--set of an expression": ("run", {}, _set("dataset={'name': 'moons', 'n_samples': 10**12}"), "is not a literal"),
    "--set into a non-table": ("run", {}, _set("epochs.x=1"), "'epochs' is not a table"),
    "--set into a list": ("run", {"dataset": ["moons", "circles"]}, _set("dataset.noise=0.3"), "'dataset' is a list"),
    "unknown config key": ("run", {"epoc": 3}, [], "unknown config keys ['epoc']"),
    "config without losses": ("run", {"losses": None}, [], "config needs losses"),
    "malformed TOML": ("run", "raw:broken_toml", [], "is not valid TOML"),
    "config that is binary": ("run", "raw:garbage", [], "is not valid TOML"),
    "missing config file": ("run", "raw:absent", [], "config file not found"),
    "config that is a folder": ("run", "raw:folder", [], "config file not found"),
    "--output that is a file": ("run", {}, ["--output", "{a_file}"], "is a file, not a folder"),
    "--output below a file": ("run", {}, ["--output", "{a_file}/out"], "is not a folder"),
    "--output read-only": ("run", {}, ["--output", "{read_only}"], "is not writable"),
    # -- the same validation through `validate` ----------------------------------------------------
    "validate: unknown loss": ("validate", {"losses": ["hinge"]}, [], "'hinge'; valid names"),
    "validate: NaN threshold": ("validate", {"thresholds": {"val_accuracy": float("nan")}}, [], "finite"),
    "validate: escaping name": ("validate", {"name": "../x"}, [], "name '../x' is not a valid experiment name"),
    "validate: one-class csv": ("validate", {"dataset": {"name": "csv", "path": "{csv_one_class}",
                                                         "target": "label"}}, [], "at least 2 classes"),
    "validate: duplicate seeds and a bad loss": ("validate", {"seeds": [1, 1], "losses": ["hinge"]}, [],
                                                 "seeds must be a non-empty list of distinct"),
    # -- tune ----------------------------------------------------------------------------------------
    "tune: no [tune] table": ("tune", {}, [], "has no [tune] table"),
    "tune: unknown key": ("tune", {**TUNE, "tune": {"trials": 3}}, [], "tune: unknown keys ['trials']"),
    "tune: unknown mode": ("tune", {**TUNE, "tune": {"mode": "grid"}}, [], "tune.mode 'grid' is unknown"),
    "tune: unknown tuner": ("tune", {**TUNE, "tune": {"tuner": "optuna"}}, [], "tune.tuner 'optuna' is unknown"),
    "tune: unknown objective": ("tune", {**TUNE, "tune": {"objective": "val_f1"}}, [],
                                "tune.objective 'val_f1' is not a validation metric"),
    "tune: wrong direction": ("tune", {**TUNE, "tune": {"objective": "val_accuracy", "direction": "min"}}, [],
                              "must be 'max'"),
    "tune: joint over losses by val_loss": ("tune", {"tune": {"mode": "joint"}}, [], "cannot rank trials by val_loss"),
    "tune: zero trials": ("tune", {**TUNE, "tune": {"max_trials": 0}}, [], "tune.max_trials must be an integer > 0"),
    "tune: a billion trials": ("tune", {**TUNE, "tune": {"max_trials": 10**9}}, [], "<= 100,000"),
    "tune: hyperband factor 1": ("tune", {**TUNE, "tune": {"tuner": "hyperband", "hyperband_factor": 1}}, [],
                                 "hyperband_factor must be an integer >= 2"),
    "tune: learning-rate range upside down": ("tune", {**TUNE, "tune": {"learning_rate": {"min": 0.1, "max": 0.01}}},
                                              [], "tune.learning_rate.max must be a finite number > 0.1"),
    "tune: NaN learning-rate bound": ("tune", {**TUNE, "tune": {"learning_rate": {"min": float("nan")}}}, [],
                                      "tune.learning_rate.min must be a finite number"),
    "tune: infinite learning-rate bound": ("tune", {**TUNE, "tune": {"learning_rate": {"max": float("inf")}}}, [],
                                           "tune.learning_rate.max must be a finite number"),
    "tune: unknown sampling": ("tune", {**TUNE, "tune": {"learning_rate": {"sampling": "cubic"}}}, [],
                               "sampling 'cubic' is unknown"),
    "tune: grid without a step": ("tune", {**TUNE, "tune": {"tuner": "grid"}}, [],
                                  "the grid tuner needs a finite grid"),
    "tune: empty batch sizes": ("tune", {**TUNE, "tune": {"batch_size": []}}, [],
                                "tune.batch_size must be a non-empty"),
    "tune: duplicate batch sizes": ("tune", {**TUNE, "tune": {"batch_size": [16, 16]}}, [], "distinct integers"),
    "tune: zero batch size": ("tune", {**TUNE, "tune": {"batch_size": [0, 16]}}, [], "tune.batch_size must be an"),
    "tune: two datasets": ("tune", {**TUNE, "dataset": ["moons", "circles"]}, [], "a search takes one dataset"),
    "tune: negative workers": ("tune", TUNE, ["--workers", "-1"], "--workers must be >= 0, got -1"),
    "tune: escaping name": ("tune", {**TUNE, "name": "../../x"}, [], "is not a valid experiment name"),
    "tune: --output that is a file": ("tune", TUNE, ["--output", "{a_file}"], "is a file, not a folder"),
    # -- claims --------------------------------------------------------------------------------------
    "claims: a config without [claim]": ("claims", {}, [], "has no [claim] table"),
    "claims: claim not a table": ("claims", {**CLAIM, "claim": "yes"}, [], "claim must be a table"),
    "claims: unknown claim key": ("claims", _claim_table(verdict="supported"), [], "claim has unknown keys"),
    "claims: empty statement": ("claims", _claim_table(statement=" "), [], "claim.statement must be a non-empty"),
    "claims: two seeds": ("claims", {**CLAIM, "seeds": [0, 1]}, [], "give at least 3 seeds"),
    "claims: unknown combine": ("claims", _claim_table(combine="most"), [], "claim.combine is 'most'"),
    "claims: no checks": ("claims", _claim_table(checks=[]), [], "claim.checks must be a non-empty list"),
    "claims: unknown check key": ("claims", _claim(weight=2), [], "claim check 1 has unknown keys ['weight']"),
    "claims: check without a name": ("claims", _claim(name=None), [], "claim check 1 needs a name"),
    "claims: metric reaching for globals": (
        "claims", _claim(metric="test_accuracy.__class__.__init__.__globals__"), [],
        "Attribute syntax is not allowed"),
    "claims: metric running a shell command": ("claims", _claim(metric="__import__('os').system('true')"), [],
                                               "calling anything but a function name is not allowed"),
    "claims: metric importing os": ("claims", _claim(metric="__import__('os')"), [],
                                    "the function '__import__' is not allowed"),
    "claims: metric with a subscript": ("claims", _claim(metric="test_accuracy[0]"), [],
                                        "Subscript syntax is not allowed"),
    "claims: metric with a lambda": ("claims", _claim(metric="(lambda: 1)()"), [], "is not allowed"),
    "claims: metric with a string": ("claims", _claim(metric="'a' + 'b'"), [], "the constant 'a' is not allowed"),
    "claims: metric of an unknown column": ("claims", _claim(metric="test_acuracy"), [],
                                            "reads column 'test_acuracy', which these runs will not have; did you "
                                            "mean test_accuracy"),
    "claims: metric of a diagnostic of no layer": ("claims", _claim(metric="diag_end_dead_fraction_hidden_7"), [],
                                                   "reads column 'diag_end_dead_fraction_hidden_7'"),
    "claims: metric that is not an expression": ("claims", _claim(metric="test_accuracy +"), [],
                                                 "is not an expression over the runs table's columns"),
    "claims: unknown test": ("claims", _claim(test="!="), [], "test is '!='; valid: >, <, within"),
    "claims: NaN value": ("claims", _claim(value=float("nan")), [], "value must be a number, got nan"),
    "claims: negative margin": ("claims", _claim(margin=-0.1), [], "margin must be >= 0"),
    "claims: selector of an unknown axis": ("claims", _claim(plus=[{"activation": "relu"}]), [],
                                            "selector axis 'activation' is unknown"),
    "claims: selector matching no cell": ("claims", _claim(plus=[{"initializer": "ones"}]), [], "matches no cell"),
    "claims: plus not a list": ("claims", _claim(plus={"initializer": "zeros"}), [], "plus (and minus) must be lists"),
    "claims: missing config": ("claims", "raw:absent", [], "config file not found"),
    "claims: shard out of range": ("claims", CLAIM, ["--shard", "2/2"], "--shard '2/2' must be I/N"),
    # -- report and tensorboard --------------------------------------------------------------------
    "report: unknown experiment": ("report", None, ["absent"], "no experiment 'absent' under"),
    "report: escaping name": ("report", None, ["../../etc"], "experiment '../../etc' is not a valid experiment name"),
    "report: absolute name": ("report", None, ["/etc"], "experiment '/etc' is not a valid experiment name"),
    "report: nothing to report": ("report", None, ["--output", "{empty}"], "no experiments under"),
    "tensorboard: escaping name": ("tensorboard", None, ["../../.."], "experiment '../../..' is not a valid"),
    "tensorboard: unknown experiment": ("tensorboard", None, ["absent"], "no experiment 'absent' under"),
    "tensorboard: port out of range": ("tensorboard", None, ["tiny", "--port", "70000"], "--port must be a port"),
}


def _fill(value, names):
    """A config with its `{name}` placeholders replaced by the paths of the test's files."""
    if isinstance(value, str) and value[1:-1] in names and value.startswith("{"):
        return names[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return [_fill(v, names) for v in value] if isinstance(value, list) else value


def _snapshot(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An output tree holding a finished experiment (really trained), which bad input must leave alone."""
    out = tmp_path_factory.mktemp("finished")
    config = write_config(out.parent / "tiny_finished.toml", {**TINY, "epochs": 1, "seeds": [0]})
    assert main(["run", str(config), "--output", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Data and config files the cases name."""
    root = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))

    def csv(name, header, rows):
        path = root / name
        path.write_text("\n".join([header, *rows]) + "\n")
        return str(path)

    paths = {
        "csv_good": csv("good.csv", "a,b,label", [f"{a},{b},{int(a > 0)}" for a, b in x]),
        "csv_one_class": csv("one.csv", "a,b,label", [f"{a},{b},1" for a, b in x]),
        "csv_nan": csv("nan.csv", "a,b,label", [f"{a},{'' if i == 3 else b},{int(a > 0)}" for i, (a, b) in
                                                enumerate(x)]),
        "csv_text": csv("text.csv", "a,colour,label", [f"{a},red,{int(a > 0)}" for a, _ in x]),
        "csv_target_only": csv("target.csv", "label", [str(int(a > 0)) for a, _ in x]),
        "csv_three": csv("three.csv", "a,b,label", [f"{a},{b},{i % 3}" for i, (a, b) in enumerate(x)]),
    }
    for name, arrays in {
        "npz_flat": {"x": x[:, 0], "y": (x[:, 0] > 0).astype(int)},
        "npz_unequal": {"x": x, "y": np.zeros(30, dtype=int)},
        "npz_no_y": {"x": x},
        "npz_complex": {"x": x.astype(complex), "y": (x[:, 0] > 0).astype(int)},
        "npz_mnist_flat": {"x_train": x, "y_train": np.arange(40) % 2, "x_test": x, "y_test": np.arange(40) % 2},
    }.items():
        np.savez(root / f"{name}.npz", **arrays)
        paths[name] = str(root / f"{name}.npz")
    (root / "garbage.bin").write_bytes(bytes(range(256)) * 8)
    (root / "broken.toml").write_text('dataset = "digits"\ninitializers = ["he_normal"\n')
    (root / "a_file").write_text("not a folder\n")
    (root / "folder.toml").mkdir()
    (root / "empty").mkdir()
    paths.update(garbage=str(root / "garbage.bin"), broken_toml=str(root / "broken.toml"),
                 absent=str(root / "absent.toml"), folder=str(root / "folder.toml"), a_file=str(root / "a_file"),
                 empty=str(root / "empty"))
    return paths


@contextlib.contextmanager
def _read_only_folder(path):
    """A folder nobody may write to: root ignores permissions, so as root a read-only tmpfs."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("command, changes, extra, message", CASES.values(), ids=CASES.keys())
def test_bad_input(command, changes, extra, message, finished, files, tmp_path, capsys):
    assert len(CASES) >= 120
    with contextlib.ExitStack() as stack:
        names = {**files, "read_only": str(stack.enter_context(_read_only_folder(tmp_path / "ro")))
                 if "{read_only}" in extra else ""}
        config = None
        if isinstance(changes, str):
            config = names[changes.removeprefix("raw:")]
        elif changes is not None:
            merged = {k: v for k, v in {**TINY, **changes}.items() if v is not None}
            config = str(write_config(tmp_path / "case.toml", _fill(merged, names)))
        args = [re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), m.group()), a) for a in extra]
        output = [] if "--output" in extra else ["--output", str(finished)]
        argv = {"validate": ["validate", config, *args],
                "report": ["report", *output, *args],
                "tensorboard": ["tensorboard", *output, *args]}.get(command, [command, config, *output, "--quiet",
                                                                            *args])
        before = _snapshot(finished)
        watched = [tmp_path / "ro"] if "{read_only}" in extra else []
        watched_before = [_snapshot(w) for w in watched]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, err
        assert message in err, err
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert lines and all(line.startswith("error: ") for line in lines), err
        assert _snapshot(finished) == before
        assert [_snapshot(w) for w in watched] == watched_before


def test_launch_on_slurm_without_sbatch(config_file, finished, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch there, whether or not this machine has SLURM
    before = _snapshot(finished)
    assert main(["launch", str(config_file()), "--jobs", "2", "--output", str(finished)]) == 2
    assert capsys.readouterr().err.startswith("error: --executor slurm needs SLURM's sbatch, which is not on PATH")
    assert _snapshot(finished) == before


def test_launch_takes_one_experiment(config_file, finished, capsys):
    before = _snapshot(finished)
    for configs, found in (([], 0), ([str(config_file()), str(config_file())], 2)):
        assert main(["launch", *configs, "--jobs", "2", "--executor", "local", "--output", str(finished)]) == 2
        assert capsys.readouterr().err == f"error: launch takes one experiment config, got {found}; or --claims " \
                                          "[CONFIG ...]\n"
    assert _snapshot(finished) == before


def test_a_real_process_exits_2_without_traceback(config_file, finished):
    before = _snapshot(finished)
    done = subprocess.run([sys.executable, "-m", "experiments", "run", str(config_file()), "--output", str(finished),
                           "--set", "initializers=['kaiming']"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert _snapshot(finished) == before


def test_several_problems_are_reported_together(config_file, capsys):
    code = main(["validate", str(config_file()), "--set", "batch_size=-4", "--set", "losses=['hinge']"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 2


def test_a_toml_file_with_a_byte_order_mark_is_read(config_file, capsys):
    path = config_file()
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert main(["validate", str(path)]) == 0
    assert "tiny: valid; 8 runs" in capsys.readouterr().out
