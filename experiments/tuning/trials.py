"""A tuner trial: the spec's model at the trial's hyperparameters, trained by the Keras engine's
own procedure (`engines.keras_fit.build_model` and `fit`: the run's batch order, one graph call
per epoch, early stopping with best-weight restore, the divergence rule), recorded like a run
(`records.rundir.RunRecorder`: config.json, history.csv, result.json, TensorBoard session) and
then by trial.json, the oracle's final status and objective.

A trial is the run the tuned comparison would train for its cell, learning rate and batch size
at the spec's first seed, so its history equals that run's (diagnostics aside: trials skip them).
"""

import math
import os
import time
from pathlib import Path

import keras_tuner as kt

from experiments.engines import keras_fit
from experiments.records import rundir, store
from experiments.records.events import RunLog, session_hparams
from experiments.reporting.tune_report import TRIAL
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

    def config(self, hp):
        """The trial's run config: the spec's cell at the trial's learning rate and batch size, at
        the spec's first seed, with diagnostics off."""
        spec, lr = self.spec, self.spec.tune.learning_rate
        rate = hp.Float("learning_rate", lr.min, lr.max, sampling=lr.sampling, step=lr.step)
        cell = spec.replace(initializers=(self._choice(hp, "initializer", self.search.initializers),),
                            losses=(self._choice(hp, "loss", self.search.losses),), learning_rate=(rate,),
                            batch_size=(hp.Choice("batch_size", list(spec.tune.batch_size)),), seeds=spec.seeds[:1],
                            diagnostics=spec.diagnostics.replace(every=0))
        return expand(cell)[0].config

    def build(self, hp):
        model, _ = keras_fit.build_model(self.config(hp), self.data)
        return model

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        config, data = self.config(hp), self.data
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
        self.configure = None  # the hypermodel's `config(hp)`
        self.trial = self.recorder = None
        self.failure = ""

    @property
    def dir(self):
        return self.root / f"trial_{self.trial.trial_id}"

    def begin(self, trial):
        self.trial, self.started, self.recorder, self.failure = trial, time.time(), None, ""
        store.remove(self.dir, self.root)  # an interrupted trial reruns from scratch

    def open(self, hp, first_epoch=1):
        """Start the trial's run record once its hyperparameters are all chosen; the recorder."""
        config = self.configure(hp)
        axes = {**trial_hparams(hp.values, self.search), "seed": config.seed}
        run = RunSpec(run_id=f"{self.search.project}/trial_{self.trial.trial_id}",
                      cell=f"{axes['initializer']} | {axes['loss']}", axes=axes, config=config)
        self.recorder = rundir.RunRecorder(run, self.dir, self.root, _trial_log, first_epoch=first_epoch)
        self.recorder.start()
        return self.recorder

    def fail(self, reason):
        """The trial raised: it is recorded as failed with `reason` (one line)."""
        self.failure = reason

    @property
    def reason(self):
        """Why the trial failed ('' when it did not): it raised, or its training loss diverged."""
        if self.failure:
            return self.failure
        if self.recorder is not None and self.recorder.diverged:
            history = self.recorder.history
            return f"diverged: training loss {history[-1]['loss']} at epoch {history[-1]['epoch']}"
        return ""

    def end(self, trial, stack=1):
        """Write the record once the oracle has the final status (`trial` is the oracle's copy);
        `stack`: how many trials trained with it as one stacked model (they split the time since
        `begin` evenly)."""
        status = trial.status if trial.status in ("COMPLETED", "FAILED") else "FAILED"
        objective = trial.score if status == "COMPLETED" and trial.score is not None else math.nan
        reason = self.reason or (_last_line(trial.message) if status == "FAILED" else "")
        values = dict(trial.hyperparameters.values)
        if self.recorder is None:  # failed before its first epoch
            self.open(trial.hyperparameters)
        recorder = self.recorder
        if recorder.log is not None and recorder.history and math.isfinite(objective):
            # the value the oracle scored (the best epoch's), beside the last epoch's values
            recorder.log.scalars("", recorder.history[-1]["epoch"], {OBJECTIVE: objective})
        share = 1 / stack
        seconds = (time.time() - self.started) * share
        recorder.finish("ok" if status == "COMPLETED" else "failed", seconds, reason=reason, share=share)
        record = {
            "project": self.search.project, "trial_id": trial.trial_id, "cell": recorder.run.cell,
            "status": status, "objective": objective, "best_epoch": _best_epoch(trial, self.spec),
            "hyperparameters": values, "epochs_run": len(recorder.history),
            "seconds": seconds, "stack": stack, "started": self.started,
            "worker": os.environ.get("KERASTUNER_TUNER_ID", "tuner0"), "reason": reason,
        }
        store.write_json(self.dir / TRIAL, record)  # last: a trial with a record is finished
        if self.on_end:
            self.on_end(record)


def _last_line(message):
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed"


def _best_epoch(trial, spec):
    """keras-tuner's best step of the objective (0-based epoch), as a 1-based epoch."""
    name = spec.tune.objective
    if not trial.metrics.exists(name):
        return None
    step = trial.best_step
    return None if step is None else int(step) + 1
