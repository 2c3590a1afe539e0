"""A tuner trial: the spec's model at the trial's hyperparameters, trained by the Keras engine's
own procedure (`engines.keras_fit.build_model` and `fit`: the run's batch order, one graph call
per epoch, early stopping with best-weight restore, the divergence rule), recorded like a run
(`records.rundir.RunRecorder`: config.json, history.csv, result.json, TensorBoard session) and
then by trial.json, the oracle's final status and objective.

A trial is the run the tuned comparison would train for its cell, learning rate and batch size
at the spec's first seed, so its history equals that run's (diagnostics aside: trials skip them);
with `tune.executions` = k, also those at the next k - 1 seeds (keras-tuner's executions), each
recorded in `seed_<seed>/` inside the trial's folder, and the objective is their mean.
"""

import math
import os
import statistics
import time
from pathlib import Path

import keras_tuner as kt

from experiments.engines import keras_fit
from experiments.records import rundir, store
from experiments.records.events import RunLog, session_hparams
from experiments.reporting.tune_report import TRIAL, seed_dir
from experiments.spec import RunSpec, expand
from experiments.tuning.tuners import trial_hparams
from models import head_for


class SpecHyperModel(kt.HyperModel):
    """The spec's model: learning rate, batch size (and in joint mode initializer and loss) are
    the trial's hyperparameters; `fit` forwards keras-tuner's callbacks to the engine's fit."""

    def __init__(self, spec, data, search, log):
        super().__init__(name=search.project)
        self.spec, self.data, self.search, self.log = spec, data, search, log
        log.configure = self.config

    def _choice(self, hp, name, choices):
        return choices[hp.Choice(name, list(choices))] if len(choices) > 1 else next(iter(choices.values()))

    def config(self, hp, execution=0):
        """The run config of a trial's execution: the spec's cell at the trial's learning rate and
        batch size, at the spec's seed of that execution (the first `tune.executions` seeds), with
        diagnostics off."""
        spec, lr = self.spec, self.spec.tune.learning_rate
        rate = hp.Float("learning_rate", lr.min, lr.max, sampling=lr.sampling, step=lr.step)
        cell = spec.replace(initializers=(self._choice(hp, "initializer", self.search.initializers),),
                            losses=(self._choice(hp, "loss", self.search.losses),), learning_rate=(rate,),
                            batch_size=(hp.Choice("batch_size", list(spec.tune.batch_size)),),
                            seeds=spec.seeds[execution:execution + 1],
                            diagnostics=spec.diagnostics.replace(every=0))
        return expand(cell)[0].config

    def build(self, hp):
        # keras-tuner builds each execution's model just before its fit: the execution is the
        # number of the trial's records opened so far
        model, _ = keras_fit.build_model(self.config(hp, len(self.log.recorders)), self.data)
        return model

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        config, data = self.config(hp, len(self.log.recorders)), self.data
        head = head_for(data.task, config.loss, data.n_classes, data.n_targets)
        recorder = self.log.open(hp, first_epoch=initial_epoch + 1)
        return keras_fit.fit(model, head, config, data, recorder, callbacks, initial_epoch, epochs)


OBJECTIVE = "tuner/objective"  # a trial session's metric: what keras-tuner's oracle scored


def _trial_log(run_dir, run):
    """A trial's TensorBoard session: its own HParams group, named by project and trial."""
    return RunLog(run_dir, run.run_id, session_hparams(run.axes), run.config.as_dict())


class TrialLog:
    """Our record of each trial this process runs: every epoch (keras-tuner keeps only the best),
    the true end status and its reason, the time, and the TensorBoard session."""

    def __init__(self, search_dir, spec, search, on_end=None):
        self.root = Path(search_dir) / "trials" / search.project
        self.spec, self.search, self.on_end = spec, search, on_end
        self.configure = None  # the hypermodel's `config(hp, execution)`
        self.trial, self.recorders, self.failure = None, [], ""

    @property
    def dir(self):
        return self.root / f"trial_{self.trial.trial_id}"

    def begin(self, trial):
        self.trial, self.started, self.recorders, self.failure = trial, time.time(), [], ""
        store.remove(self.dir, self.root)  # an interrupted trial reruns from scratch

    def open(self, hp, first_epoch=1):
        """Start the run record of the trial's next execution once its hyperparameters are all
        chosen: the first seed's in the trial's folder, a further seed's in `seed_<seed>/` in it."""
        config = self.configure(hp, len(self.recorders))
        axes = {**trial_hparams(hp.values, self.search), "seed": config.seed}
        run_dir = seed_dir(self.dir, len(self.recorders), config.seed)
        run_id = run_dir.relative_to(self.root.parent).as_posix()  # <project>/trial_<id>[/seed_<seed>]
        run = RunSpec(run_id=run_id, cell=f"{axes['initializer']} | {axes['loss']}", axes=axes, config=config)
        self.recorders.append(rundir.RunRecorder(run, run_dir, self.root, _trial_log, first_epoch=first_epoch))
        self.recorders[-1].start()
        return self.recorders[-1]

    def fail(self, reason):
        """The trial raised: it is recorded as failed with `reason` (one line)."""
        self.failure = reason

    @property
    def reason(self):
        """Why the trial failed ('' when it did not): it raised, or its training loss diverged."""
        if self.failure:
            return self.failure
        for recorder in self.recorders:
            if recorder.diverged:
                history = recorder.history
                seed = f" (seed {recorder.run.config.seed})" if len(self.recorders) > 1 else ""
                return f"diverged{seed}: training loss {history[-1]['loss']} at epoch {history[-1]['epoch']}"
        return ""

    def end(self, trial, stack=1, members=1):
        """Write the record once the oracle has the final status (`trial` is the oracle's copy);
        `stack`: how many trials trained with it as one stacked model (they split the time since
        `begin` evenly), `members`: that model's members (all their seeds; 1 when each seed was
        its own fit), among which each epoch's time is split."""
        status = trial.status if trial.status in ("COMPLETED", "FAILED") else "FAILED"
        objective = trial.score if status == "COMPLETED" and trial.score is not None else math.nan
        reason = self.reason or (_last_line(trial.message) if status == "FAILED" else "")
        values = dict(trial.hyperparameters.values)
        if not self.recorders:  # failed before its first epoch
            self.open(trial.hyperparameters)
        recorder = self.recorders[0]
        if recorder.log is not None and recorder.history and math.isfinite(objective):
            # the value the oracle scored (the best epoch's), beside the last epoch's values
            recorder.log.scalars("", recorder.history[-1]["epoch"], {OBJECTIVE: objective})
        seconds = (time.time() - self.started) / stack
        for each in self.recorders:
            each.finish("ok" if status == "COMPLETED" else "failed", seconds / len(self.recorders), reason=reason,
                        share=1 / members)
        goal = kt.Objective(self.spec.tune.objective, self.spec.tune.direction)
        seed_objectives = [best_of([r.history], goal)[0][goal.name] if r.history else math.nan for r in self.recorders]
        record = {
            "project": self.search.project, "trial_id": trial.trial_id, "cell": recorder.run.cell,
            "status": status, "objective": objective, "best_epoch": _best_epoch(trial, self.spec),
            "hyperparameters": values, "epochs_run": len(recorder.history),
            "seconds": seconds, "stack": stack, "started": self.started, "ended": time.time(),
            # each seed's best epoch's objective (the trial's objective is their mean)
            "seeds": [r.run.config.seed for r in self.recorders], "seed_objectives": seed_objectives,
            "worker": os.environ.get("KERASTUNER_TUNER_ID", "tuner0"), "reason": reason,
        }
        store.write_json(self.dir / TRIAL, record)  # last: a trial with a record is finished
        if self.on_end:
            self.on_end(record)


def _last_line(message):
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed"


def _best_epoch(trial, spec):
    """keras-tuner's best step of the objective (0-based, counted from the trial's first epoch:
    for several seeds, the mean of their best steps), as the 1-based epoch of the whole training
    (a continued Hyperband trial starts at `tuner/initial_epoch`)."""
    name = spec.tune.objective
    if not trial.metrics.exists(name):
        return None
    step = trial.best_step
    first = int(trial.hyperparameters.values.get("tuner/initial_epoch", 0))
    return None if step is None else int(step) + 1 + first


def best_of(histories, objective):
    """What keras-tuner's own run tells the oracle of a trial's fits, one per seed
    (`tuner_utils.convert_to_metrics_dict` and `get_best_step`): each fit's best epoch (the first
    whose objective beats every earlier one), the mean of their logs and of their 0-based steps.

    Args:
        histories: each fit's epochs, as `RunRecorder.history` rows.
    Returns:
        (metrics, step).
    """
    picks = []
    for history in histories:
        best = 0
        for i, row in enumerate(history):
            if objective.better_than(row[objective.name], history[best][objective.name]):
                best = i
        picks.append(({k: v for k, v in history[best].items() if k != "epoch"}, best))
    metrics = {k: float(statistics.mean(logs[k] for logs, _ in picks)) for k in picks[0][0]}
    return metrics, int(statistics.mean(step for _, step in picks))
