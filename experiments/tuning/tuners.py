"""keras-tuner's side of a search: the searches a spec asks for (a project per cell, or one joint
project), the declared space, the tuner classes (keras-tuner's own, recording every trial), this
process's role in a distributed search, and serving a search's oracle as the chief.

Distributed searches are keras-tuner's own: a chief oracle serves trials over gRPC to workers,
chosen by the KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT variables.
Search i of a spec (one per cell in per-cell mode) is served on port KERASTUNER_ORACLE_PORT + i.
"""

import dataclasses
import json
import math
import os
import socket
import sys
import threading
import time
from pathlib import Path

import keras_tuner as kt

from experiments.engines.procedure import failure_reason
from initializers.registry import label, slug


class _Recorded:
    """A keras-tuner tuner that records each trial with a `TrialLog` (`log`) through keras-tuner's
    public hooks: `run_trial` begins the record and turns an exception into a failed trial (with
    its reason, never retried, no traceback printed), `on_trial_end` settles the status (a failed
    or diverged trial is FAILED) and, once the oracle has it, writes the record."""

    def __init__(self, *args, log, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = log

    def _populate_initial_space(self):
        """The oracle's space, declared by the trial config (`trials.HyperModel.config`) rather than
        by building a model for it as keras-tuner does (50 ms a project; the space has no
        conditions to activate): the hook keras-tuner keeps for others to override."""
        hp = self.oracle.get_space()
        self.hypermodel.config(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial, *args, **kwargs):
        self.log.begin(trial)
        try:
            return super().run_trial(trial, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - a failed trial is data; the search goes on
            self.log.fail(failure_reason(e))
            return {self.oracle.objective.name: math.nan}

    def on_trial_end(self, trial):
        self.end_trial(trial, self.log)

    def end_trial(self, trial, log, stack=1, members=1):
        """End `trial` (recorded by `log`; trained in a stack of `stack` trials, `members` seeds in
        all, or alone with each seed its own fit): FAILED with its reason if it raised or diverged,
        else COMPLETED; the oracle settles the status (a NaN objective becomes FAILED), then the
        record is written."""
        if log.reason:
            trial.status, trial.message = "FAILED", log.reason
        elif trial.status == "RUNNING":
            trial.status = "COMPLETED"
        try:
            super().on_trial_end(trial)
        finally:  # also when the oracle's consecutive-failure limit stops the search here
            log.end(self.oracle.get_trial(trial.trial_id), stack, members)


class RandomSearch(_Recorded, kt.RandomSearch):
    pass


class BayesianOptimization(_Recorded, kt.BayesianOptimization):
    pass


class Hyperband(_Recorded, kt.Hyperband):
    pass


class GridSearch(_Recorded, kt.GridSearch):
    pass


TUNERS = {"random": RandomSearch, "bayesian": BayesianOptimization, "hyperband": Hyperband, "grid": GridSearch}


@dataclasses.dataclass(frozen=True)
class Search:
    """One keras-tuner search: its project name and the initializers and losses it spans, by label."""

    project: str
    initializers: dict
    losses: dict


def searches(spec):
    """Per cell: a search for every initializer x loss; joint: one search with both as hp.Choice."""
    inits, losses = ({label(v): v for v in values} for values in (spec.initializers, spec.losses))
    if spec.tune.mode == "joint":
        return [Search("joint", inits, losses)]
    return [Search(f"{slug(i)}__{slug(lo)}", {label(i): i}, {label(lo): lo}) for i in spec.initializers
            for lo in spec.losses]


def trial_hparams(values, search):
    """A trial's HParams from its hyperparameter values: learning rate, batch size, initializer and loss."""
    return {"initializer": values.get("initializer", next(iter(search.initializers))),
            "loss": values.get("loss", next(iter(search.losses))),
            "learning_rate": float(values["learning_rate"]), "batch_size": int(values.get("batch_size", 0))}


def cell_of(values, search):
    """`initializer | loss` of a trial (the labels `spec.expand` gives cells)."""
    chosen = trial_hparams(values, search)
    return f"{chosen['initializer']} | {chosen['loss']}"


def planned_trials(spec):
    """The trials a spec's searches will run; None for hyperband, which sizes itself."""
    return None if spec.tune.tuner == "hyperband" else len(searches(spec)) * spec.tune.max_trials


# how many workers `tune --workers` started (set for each of them): a worker asks each oracle for
# its share of `tune.stack` trials at a time
WORKERS_VARIABLE = "INIT_LOSS_LAB_WORKERS"


def role():
    """`standalone`, `chief` or `worker`, from keras-tuner's distribution variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "standalone"
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def search_space(spec):
    """The declared space: batch size is chosen in `fit`, so it is declared here up front (the grid
    and Bayesian oracles need the whole space before the first trial)."""
    hp = kt.HyperParameters()
    hp.Choice("batch_size", list(spec.tune.batch_size))
    return hp


def oracle_seed(spec):
    """The oracle's seed: the spec's first seed + 1 (keras-tuner takes a seed of 0 for no seed)."""
    return spec.seeds[0] + 1


def make_tuner(spec, search, hypermodel, log, directory, overwrite):
    """A keras-tuner tuner by name, with its objective, direction, project and failure limits explicit.

    A trial is never retried (its seed and settings are fixed, so a diverged trial diverges again),
    and failures stop a search only after `tune.max_consecutive_failed_trials` of them in a row.
    """
    tune = spec.tune
    limit = tune.max_consecutive_failed_trials
    if role() != "standalone":
        # the limit raises inside the chief's gRPC handler, failing the worker and leaving the chief
        # waiting for that trial forever: a distributed search records failures but never stops for them
        if limit < tune.max_trials:
            print(f"notice: {spec.name}: max_consecutive_failed_trials = {limit} is not applied in a "
                  "distributed search", file=sys.stderr)
        limit = sys.maxsize
    common = {
        "hypermodel": hypermodel, "objective": kt.Objective(tune.objective, direction=tune.direction),
        "hyperparameters": search_space(spec), "seed": oracle_seed(spec),
        "max_retries_per_trial": 0, "max_consecutive_failed_trials": limit,
        "executions_per_trial": tune.executions,
        "directory": str(directory), "project_name": search.project, "overwrite": overwrite,
    }
    if tune.tuner == "hyperband":
        return Hyperband(max_epochs=spec.epochs, factor=tune.hyperband_factor,
                         hyperband_iterations=tune.hyperband_iterations, log=log, **common)
    return TUNERS[tune.tuner](max_trials=tune.max_trials, log=log, **common)


def _base_port():
    """Search i of a distributed spec is served on KERASTUNER_ORACLE_PORT + i."""
    base = os.environ.get("KERASTUNER_ORACLE_PORT", "")
    if not base.isdigit():
        raise ValueError(f"KERASTUNER_ORACLE_PORT must be a port number, got {base!r}")
    return int(base)


def _running_trials(project_dir):
    """Ids of the trials keras-tuner's files in a project still mark as running."""
    records = (json.loads(p.read_text()) for p in Path(project_dir).glob("trial_*/trial.json"))
    return sorted(r["trial_id"] for r in records if r.get("status") == "RUNNING")


class _Serving(threading.Thread):
    """keras-tuner's chief serving one search's oracle (its `search` blocks until the search ends)."""

    def __init__(self, tuner):
        super().__init__(name=f"oracle {tuner.project_name}", daemon=True)
        self.tuner, self.error = tuner, None

    def run(self):
        try:
            self.tuner.search(verbose=0)
        except Exception as e:  # noqa: BLE001 - raised in the main thread after join
            self.error = e


def _serve(tuner, port):
    """Start serving a search on `port` and return once it accepts connections (keras-tuner reads
    the port from the environment when its server starts, so one search at a time)."""
    thread = _Serving(tuner)
    thread.start()
    host = os.environ["KERASTUNER_ORACLE_IP"]
    while thread.is_alive() and not serving("127.0.0.1" if host == "0.0.0.0" else host, port):
        time.sleep(0.2)
    return thread


def serving(host, port):
    """Whether something accepts connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False
