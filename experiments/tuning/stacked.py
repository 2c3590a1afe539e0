"""Stacked trials: keras-tuner's oracles choose every trial, and the trials that can share a stack
train as one stacked model of the vectorized engine (`engines.vectorized.Group`).

Each round asks every search's oracle for up to `tune.stack` trials, as keras-tuner's distributed
workers do (one tuner id per trial, in one process), groups all of them by what a stack must share
(batch size, and in joint mode nothing else differs), trains each group at once, reports every
trial's per-epoch logs to its own oracle (which keeps the best epoch's objective) and ends each
trial with its own status: a member that diverges fails only its own trial. A trial's record is
the one the Keras path writes (`trials.TrialLog`). Rounds go on until every oracle stops.
"""

import time
from types import SimpleNamespace

from experiments.engines import vectorized
from experiments.engines.procedure import failure_reason
from experiments.engines.stacked_graph import loss_key
from experiments.tuning.trials import TrialLog
from models import head_for


class _Reporting:
    """A trial's run recorder that also reports each epoch's logs to the trial's oracle, at the
    0-based step keras-tuner's own callback uses."""

    def __init__(self, recorder, oracle, trial_id):
        self.recorder, self.oracle, self.trial_id = recorder, oracle, trial_id

    def epoch(self, logs):
        going = self.recorder.epoch(logs)
        self.oracle.update_trial(self.trial_id, {k: float(v) for k, v in logs.items()},
                                 step=len(self.recorder.history) - 1)
        return going

    def __getattr__(self, name):
        return getattr(self.recorder, name)


def _ask(tuner, count):
    """Up to `count` new trials of one oracle (distinct tuner ids); whether the oracle stopped."""
    trials = []
    for k in range(count):
        trial = tuner.oracle.create_trial(f"stack{k}")
        if trial.status == "STOPPED":
            return trials, True
        if trial.status != "RUNNING":  # IDLE: it waits for the trials it gave out
            break
        trials.append(trial)
    return trials, False


def search(spec, data, search_dir, plan, on_stop):
    """Run every search of `plan` (`{project: (search, tuner, hypermodel, on_end)}`) to its end, in
    stacked rounds. `on_stop(project, reason)` is told of a search that the consecutive-failure
    limit stopped."""
    live = set(plan)
    for _, tuner, _, _ in plan.values():
        tuner.oracle.verbose = 0
    while live:
        asked = []
        for project in sorted(live):
            trials, stopped = _ask(plan[project][1], spec.tune.stack)
            asked += [(project, trial) for trial in trials]
            if stopped:
                live.discard(project)
        if not asked:
            break  # every oracle stopped, or waits for trials no one runs
        for project, reason in _train_round(spec, data, search_dir, plan, asked):
            if project in live:
                live.discard(project)
                on_stop(project, reason)


def _train_round(spec, data, search_dir, plan, asked):
    """Train the asked trials in stacks (grouped by `vectorized.group_key`) and end each; returns
    the (project, reason) of searches the consecutive-failure limit stopped."""
    stacks, stopped = {}, []
    for project, trial in asked:
        config = plan[project][2].config(trial.hyperparameters)
        stacks.setdefault(vectorized.group_key(SimpleNamespace(config=config), data), []).append((project, trial))
    for stack in stacks.values():
        stopped += _train_stack(spec, data, search_dir, plan, stack)
    return stopped


def _train_stack(spec, data, search_dir, plan, stack):
    """One stack: every trial's record begun, one stacked model trained, every trial ended."""
    import keras

    members, stopped = [], []
    for project, trial in stack:
        found, tuner, hypermodel, on_end = plan[project]
        log = TrialLog(search_dir, spec, found, on_end)
        log.configure = hypermodel.config
        log.begin(trial)
        recorder = log.open(trial.hyperparameters)
        members.append((recorder.run, _Reporting(recorder, tuner.oracle, trial.trial_id),
                        (tuner, trial, log, project)))
    members.sort(key=loss_key)  # one loss call per slice
    config = members[0][0].config
    head = head_for(data.task, config.loss, data.n_classes, data.n_targets)
    try:
        vectorized.Group([job[:2] for job in members], data, head).train(time.perf_counter(), finish=False)
    except OSError:
        raise  # the disk refused a record: not a result of training
    except Exception as e:  # noqa: BLE001 - a failed stack fails its trials; the search goes on
        for *_, (_, _, log, _) in members:
            log.fail(failure_reason(e))
    for *_, (tuner, trial, log, project) in members:
        try:
            tuner.end_trial(trial, log, share=1 / len(members))
        except RuntimeError as e:  # the oracle's consecutive-failure limit: this search stops
            if "consecutive failures" not in str(e):
                raise
            stopped.append((project, str(e).splitlines()[0]))
    keras.backend.clear_session()
    return stopped
