"""Stacked trials: keras-tuner's oracles choose every trial, and the trials that can share a stack
train as one stacked model of the vectorized engine (`engines.vectorized.Group`).

Each round asks every search's oracle for up to `tune.stack` trials, as keras-tuner's distributed
workers do (one tuner id per trial, in one process), groups all of them by what a stack must share
(batch size, and in joint mode nothing else differs), trains each group at once (a member per
trial and seed), tells every trial's own oracle what keras-tuner's own run would (each seed's best
epoch, averaged) and ends each trial with its own status: a member that diverges fails only its
own trial. A trial's record is the one the Keras path writes (`trials.TrialLog`). Rounds go on
until every oracle stops; a distributed worker does the same with the chief's oracles, under its
own tuner ids.
"""

import dataclasses
import json
import math
import os
import time
from types import SimpleNamespace

from experiments.engines import keras_fit, vectorized
from experiments.engines.procedure import clear_keras_session, failure_reason
from experiments.engines.stacked_graph import Graphs, loss_key
from experiments.tuning.trials import TrialLog, best_of
from experiments.tuning.tuners import WORKERS_VARIABLE, role
from models import head_for


class _Member:
    """One seed of a trial in a stack: its run recorder, which also keeps the member's weights at
    its best epoch of the objective (for keras-tuner's checkpoint, which Hyperband continues from)."""

    def __init__(self, recorder, objective):
        self.recorder, self.objective = recorder, objective
        self.group = self.index = self.best = self.best_value = None

    def epoch(self, logs):
        going = self.recorder.epoch(logs)
        value = logs.get(self.objective.name)
        if going and value is not None and (self.best_value is None
                                            or self.objective.better_than(float(value), self.best_value)):
            self.best_value, self.best = float(value), self.group.member_weights(self.index)
        return going

    def __getattr__(self, name):
        return getattr(self.recorder, name)


def tuner_ids(spec):
    """The tuner ids this process asks trials with, one per trial of a round of each oracle:
    `stack<k>` alone; in a worker `<worker>-stack<k>`, with `tune.stack` shared among the
    `--workers` (WORKERS_VARIABLE) so that every worker gets trials of every search."""
    if role() != "worker":
        return [f"stack{k}" for k in range(spec.tune.stack)]
    workers = os.environ.get(WORKERS_VARIABLE, "")
    count = math.ceil(spec.tune.stack / (int(workers) if workers.isdigit() and int(workers) > 0 else 1))
    return [f"{os.environ['KERASTUNER_TUNER_ID']}-stack{k}" for k in range(count)]


def _ask(tuner, ids):
    """New trials of one oracle, one per tuner id, and the ids it has not told to stop (an id told
    STOPPED leaves the oracle's roll: keras-tuner's chief exits once every id it saw has left)."""
    trials, going = [], []
    for tuner_id in ids:
        trial = tuner.oracle.create_trial(tuner_id)
        if trial.status == "STOPPED":
            continue
        going.append(tuner_id)
        if trial.status == "RUNNING":  # IDLE: the oracle waits for trials it gave out
            trials.append(trial)
    return trials, going


def search(spec, data, search_dir, plan, on_stop):
    """Run every search of `plan` (`{project: (search, tuner, hypermodel, on_end)}`) to its end, in
    stacked rounds (in a worker: until the chief's oracles stop it). `on_stop(project, reason)` is
    told of a search that the consecutive-failure limit stopped."""
    ids = tuner_ids(spec)
    graphs = Graphs()  # the stacks' traced graphs, for later stacks of the same structure
    pending = {project: ids for project in plan}  # each oracle's ids not yet told to stop
    for _, tuner, _, _ in plan.values():
        tuner.oracle.verbose = 0
    while pending:
        asked = []
        for project in sorted(pending):
            trials, pending[project] = _ask(plan[project][1], pending[project])
            asked += [(project, trial) for trial in trials]
            if not pending[project]:
                del pending[project]
        if not asked:
            if role() != "worker" or not pending:
                break  # every oracle stopped, or waits for trials no one runs
            time.sleep(1)  # the chief's oracles wait for other workers' trials
            continue
        for project, reason in _train_round(spec, data, search_dir, plan, asked, graphs):
            if pending.pop(project, None) is not None:
                on_stop(project, reason)


def _train_round(spec, data, search_dir, plan, asked, graphs):
    """Train the asked trials in stacks (grouped by `vectorized.group_key` and, for Hyperband, by
    the epochs a round trains from and to) and end each; returns the (project, reason) of searches
    the consecutive-failure limit stopped."""
    stacks, stopped = {}, []
    for project, trial in asked:
        config, first = _trial_config(plan[project][2], trial)
        key = (vectorized.group_key(SimpleNamespace(config=config), data), first)
        stacks.setdefault(key, []).append((project, trial))
    for stack in stacks.values():
        stopped += _train_stack(spec, data, search_dir, plan, stack, graphs)
    return stopped


def _trial_config(hypermodel, trial, execution=0):
    """(the config an execution of a trial trains with, its initial epoch): Hyperband's
    `tuner/epochs` and `tuner/initial_epoch` when the oracle set them."""
    values = trial.hyperparameters.values
    config = hypermodel.config(trial.hyperparameters, execution)
    epochs, first = int(values.get("tuner/epochs", config.epochs)), int(values.get("tuner/initial_epoch", 0))
    return config.replace(epochs=epochs), first


def _train_stack(spec, data, search_dir, plan, stack, graphs):
    """One stack: every trial's record begun, one stacked model trained with a member per trial
    and seed (`tune.executions`; a continued Hyperband trial's from its predecessor's checkpoint),
    every trial's metrics told to its oracle and its checkpoint saved, and every trial ended."""
    members, trials, stopped = [], [], []
    for project, trial in stack:
        found, tuner, hypermodel, on_end = plan[project]
        log = TrialLog(search_dir, spec, found, on_end)
        log.configure = hypermodel.config
        log.begin(trial)
        seeds = []
        for execution in range(spec.tune.executions):
            config, first = _trial_config(hypermodel, trial, execution)
            seeds.append(_Member(log.open(trial.hyperparameters, first_epoch=first + 1), tuner.oracle.objective))
            run = dataclasses.replace(seeds[-1].run, config=config)  # trains to the round's epochs
            members.append((run, seeds[-1], (tuner, trial)))
        trials.append((project, tuner, trial, log, seeds))
    members.sort(key=loss_key)  # one loss call per slice
    config = members[0][0].config
    head = head_for(data.task, config.loss, data.n_classes, data.n_targets)
    try:
        group = vectorized.Group([job[:2] for job in members], data, head, graphs=graphs)
        for m, (run, member, (tuner, trial)) in enumerate(members):
            member.group, member.index = group, m
            previous = trial.hyperparameters.values.get("tuner/trial_id")
            if previous is not None:  # a continued Hyperband trial
                group.load_member(m, _checkpoint(tuner, previous, run.config, data))
        group.train(time.perf_counter(), finish=False, initial_epoch=first)
        savers = {}
        for _, tuner, trial, _, seeds in trials:
            _report(tuner, trial, seeds, data, savers)
    except OSError:
        raise  # the disk refused a record: not a result of training
    except Exception as e:  # noqa: BLE001 - a failed stack fails its trials; the search goes on
        for *_, log, _ in trials:
            log.fail(failure_reason(e))
    for project, tuner, trial, log, _ in trials:
        try:
            tuner.end_trial(trial, log, stack=len(trials), members=len(members))
        except RuntimeError as e:  # the oracle's consecutive-failure limit: this search stops
            if "consecutive failures" not in str(e):
                raise
            stopped.append((project, str(e).splitlines()[0]))
    clear_keras_session()
    return stopped


def _report(tuner, trial, seeds, data, savers):
    """What keras-tuner's own run of a trial tells its oracle (`trials.best_of`: each seed's best
    epoch, averaged) and saves as its checkpoint (the best epoch's weights over all seeds, the
    first seed's on a tie). `savers`: the stack's models that write checkpoints (`_saver`)."""
    objective = tuner.oracle.objective
    if all(member.history for member in seeds):
        metrics, step = best_of([member.history for member in seeds], objective)
        tuner.oracle.update_trial(trial.trial_id, metrics, step=step)
    best = None
    for member in seeds:
        if member.best is not None and (best is None or objective.better_than(member.best_value, best.best_value)):
            best = member
    if best is not None:
        model = _saver(savers, best.run.config, data)
        model.set_weights(best.best)
        model.save_weights(tuner._get_checkpoint_fname(trial.trial_id))  # keras-tuner's own file


def _saver(savers, config, data):
    """A compiled model of the trial's architecture, optimizer and seed whose `save_weights` writes
    the file a model built for the trial itself would (layer weights, and the unbuilt optimizer's
    step count and learning rate): built once per stack, not per trial (building took 3 s of the
    shipped search's 10), its learning rate set to the trial's."""
    key = json.dumps([config.model, config.optimizer, config.seed], sort_keys=True)
    if key not in savers:
        savers[key] = keras_fit.build_model(config, data)[0]
    model = savers[key]
    model.optimizer.learning_rate.assign(config.learning_rate)
    return model


def _checkpoint(tuner, trial_id, config, data):
    """A trial's saved best-epoch weights (keras-tuner's checkpoint file), as a model's weights."""
    model, _ = keras_fit.build_model(config, data)
    model.load_weights(tuner._get_checkpoint_fname(trial_id))
    return model.get_weights()
