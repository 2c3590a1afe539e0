"""keras-tuner searches of learning rate and batch size over an experiment spec's cells, then the
tuned comparison: every cell retrained at its own best settings on the spec's seeds.

    runs/<name>/                           the search; a TensorBoard logdir (HParams domains at its root)
              search.json                  spec, environment, every session (what it resumed), best per cell
              tuner/<project>/             keras-tuner's own project (oracle.json, trial_*/), one per search:
                                           <initializer>__<loss> per cell, or `joint`
              trials/<project>/trial_<id>/ our record of a trial: trial.json (status, hyperparameters,
                                           objective, reason, time, worker), history.csv (every epoch;
                                           keras-tuner keeps only the best step) and its TensorBoard events
              workers/<tuner id>.log       each worker's output, with `--workers`
    runs/<name>_tuned/                     the tuned comparison: an ordinary experiment (report, TensorBoard)

Distributed searches are keras-tuner's own: a chief oracle serves trials over gRPC to workers,
chosen by the KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT variables.
Search i of a spec (one per cell in per-cell mode) is served on port KERASTUNER_ORACLE_PORT + i.
"""

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import keras_tuner as kt

from experiments import optimizers, store
from experiments.environment import describe
from experiments.spec import expand
from experiments.tensorboard_log import Events, RunLog
from experiments.tune_report import SEARCH, TRIAL, build_tune_report
from initializers.registry import label, slug
from models import build, head_for
from models.losses import build_metrics, encode_targets
from models.losses import get as get_loss

TUNERS = {"random": kt.RandomSearch, "bayesian": kt.BayesianOptimization, "hyperband": kt.Hyperband,
          "grid": kt.GridSearch}


@dataclasses.dataclass(frozen=True)
class Search:
    """One keras-tuner search: its project name and the initializers and losses it spans, by label."""

    project: str
    initializers: dict
    losses: dict


def searches(spec):
    """Per cell: a search for every initializer x loss; joint: one search with both as hp.Choice."""
    inits, losses = ({label(v): v for v in spec[k]} for k in ("initializers", "losses"))
    if spec["tune"]["mode"] == "joint":
        return [Search("joint", inits, losses)]
    return [Search(f"{slug(i)}__{slug(lo)}", {label(i): i}, {label(lo): lo}) for i in spec["initializers"]
            for lo in spec["losses"]]


def cell_of(hps, search):
    """`initializer | loss` of a trial (the labels `spec.expand` gives cells)."""
    chosen = session_hparams(hps, search)
    return f"{chosen['initializer']} | {chosen['loss']}"


def planned_trials(spec):
    """The trials a spec's searches will run; None for hyperband, which sizes itself."""
    return None if spec["tune"]["tuner"] == "hyperband" else len(searches(spec)) * spec["tune"]["max_trials"]


def role():
    """`standalone`, `chief` or `worker`, from keras-tuner's distribution variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "standalone"
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def search_space(spec):
    """The declared space: batch size is chosen in `fit`, so it is declared here up front (the grid
    and Bayesian oracles need the whole space before the first trial)."""
    hp = kt.HyperParameters()
    hp.Choice("batch_size", spec["tune"]["batch_size"])
    return hp


class SpecHyperModel(kt.HyperModel):
    """The spec's model: learning rate (and in joint mode initializer and loss) chosen in `build`,
    batch size in `fit`; the tuner's callbacks are always forwarded."""

    def __init__(self, spec, data, search, log):
        super().__init__(name=search.project)
        self.spec, self.data, self.search, self.log = spec, data, search, log

    def _choice(self, hp, name, choices):
        return choices[hp.Choice(name, list(choices))] if len(choices) > 1 else next(iter(choices.values()))

    def _head(self, hp):
        return head_for(self.data.task, self._choice(hp, "loss", self.search.losses), self.data.n_classes,
                        self.data.n_targets)

    def build(self, hp):
        spec, lr = self.spec, self.spec["tune"]["learning_rate"]
        rate = hp.Float("learning_rate", lr["min"], lr["max"], sampling=lr["sampling"], step=lr["step"])
        initializer = self._choice(hp, "initializer", self.search.initializers)
        loss = self._choice(hp, "loss", self.search.losses)
        seed = spec["seeds"][0]
        keras.utils.set_random_seed(seed)
        head = self._head(hp)
        model = build(spec["model"][0], self.data.input_shape, head, initializer, spec["bias_initializer"], seed)
        model.compile(optimizer=optimizers.get(spec["optimizer"][0], rate), loss=get_loss(loss),
                      metrics=build_metrics(spec["metrics"], head), steps_per_execution=16)
        return model

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        batch_size = hp.Choice("batch_size", self.spec["tune"]["batch_size"])
        head, data = self._head(hp), self.data
        callbacks = [*callbacks, self.log.callback(hp)]
        stopping = self.spec["early_stopping"]
        if stopping["patience"]:
            callbacks.append(keras.callbacks.EarlyStopping(monitor=stopping["monitor"], patience=stopping["patience"],
                                                           min_delta=stopping["min_delta"]))
        history = model.fit(data.x_train, encode_targets(data.y_train, head), batch_size=batch_size, shuffle=True,
                            epochs=epochs or self.spec["epochs"], initial_epoch=initial_epoch, verbose=0,
                            validation_data=(data.x_val, encode_targets(data.y_val, head)), callbacks=callbacks)
        if self.log.diverged:
            raise kt.errors.FailedTrialError(self.log.diverged)  # recorded as failed; never retried
        return history


class TrialLog:
    """Our own record of each trial this process runs: every epoch (keras-tuner keeps only the
    best), the true end status and its reason, the time, and the TensorBoard session."""

    def __init__(self, search_dir, spec, search, on_end=None):
        self.root = Path(search_dir) / "trials" / search.project
        self.spec, self.search, self.on_end = spec, search, on_end
        self.trial = self.events = None

    def begin(self, trial):
        self.trial, self.started, self.history, self.diverged = trial, time.time(), [], ""
        store.remove(self.dir, self.root)  # an interrupted trial reruns from scratch
        self.events = None

    @property
    def dir(self):
        return self.root / f"trial_{self.trial.trial_id}"

    def session(self, values):
        """The trial's TensorBoard session: its own HParams group, started with its values."""
        return RunLog(self.dir, f"{self.search.project}/trial_{self.trial.trial_id}",
                      session_hparams(values, self.search), values)

    def callback(self, hp):
        log = self

        class Record(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = {k: float(v) for k, v in (logs or {}).items()}
                if log.events is None:  # the hyperparameters are all chosen once fit runs
                    log.events = log.session(hp.values)
                log.history.append({"epoch": epoch + 1, **logs})
                log.events.metrics(epoch + 1, logs)
                if not math.isfinite(logs.get("loss", math.nan)):
                    log.diverged = f"diverged: training loss {logs.get('loss')} at epoch {epoch + 1}"
                    self.model.stop_training = True

        return Record()

    def end(self, trial):
        """Write the record once the oracle has the final status (`trial` is the oracle's copy)."""
        status = trial.status if trial.status in ("COMPLETED", "FAILED") else "FAILED"
        objective = trial.score if status == "COMPLETED" and trial.score is not None else math.nan
        reason = self.diverged or (_last_line(trial.message) if status == "FAILED" else "")
        values = dict(trial.hyperparameters.values)
        record = {
            "project": self.search.project, "trial_id": trial.trial_id, "cell": cell_of(values, self.search),
            "status": status, "objective": objective, "best_epoch": _best_epoch(trial, self.spec),
            "hyperparameters": values, "epochs_run": len(self.history),
            "seconds": time.time() - self.started, "started": self.started,
            "worker": os.environ.get("KERASTUNER_TUNER_ID", "tuner0"), "reason": reason,
        }
        if self.history:
            store.write_rows(self.dir / "history.csv", self.history, sync=False)
        if self.events is None:  # failed before its first epoch
            self.events = self.session(values)
        self.events.end("ok" if status == "COMPLETED" else "failed", reason)
        store.write_json(self.dir / TRIAL, record)  # last: a trial with a record is finished
        if self.on_end:
            self.on_end(record)


def _last_line(message):
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed"


def _best_epoch(trial, spec):
    """keras-tuner's best step of the objective (0-based epoch), as a 1-based epoch."""
    name = spec["tune"]["objective"]
    if not trial.metrics.exists(name):
        return None
    step = trial.best_step
    return None if step is None else int(step) + 1


def session_hparams(values, search):
    """A trial's HParams: its learning rate, batch size, initializer and loss."""
    return {"initializer": values.get("initializer", next(iter(search.initializers))),
            "loss": values.get("loss", next(iter(search.losses))),
            "learning_rate": float(values["learning_rate"]), "batch_size": int(values.get("batch_size", 0))}


def write_hparams_config(search_dir, spec):
    """The search's HParams experiment: the declared domains, and the train/validation metrics."""
    from tensorboard.plugins.hparams import api as hp

    tune = spec["tune"]
    hparams = [hp.HParam("initializer", hp.Discrete([label(v) for v in spec["initializers"]])),
               hp.HParam("loss", hp.Discrete([label(v) for v in spec["losses"]])),
               hp.HParam("learning_rate", hp.RealInterval(float(tune["learning_rate"]["min"]),
                                                          float(tune["learning_rate"]["max"]))),
               hp.HParam("batch_size", hp.Discrete(tune["batch_size"]))]
    metrics = [hp.Metric(f"epoch_{m}", group=group, display_name=f"{group} {m}", dataset_type=kind)
               for group, kind in (("train", hp.Metric.TRAINING), ("validation", hp.Metric.VALIDATION))
               for m in ["loss", *spec["metrics"]]]
    for old in Path(search_dir).glob("events.out.tfevents.*"):
        store.remove(old, search_dir)
    events = Events(search_dir)
    events.write("", 0, hp.hparams_config_pb(hparams=hparams, metrics=metrics))
    events.close()


def oracle_seed(spec):
    """The oracle's seed: the spec's first seed + 1 (keras-tuner takes a seed of 0 for no seed)."""
    return spec["seeds"][0] + 1


def make_tuner(spec, search, hypermodel, directory, overwrite):
    """A keras-tuner tuner by name, with its objective, direction, project and failure limits explicit.

    A trial is never retried (its seed and settings are fixed, so a diverged trial diverges again),
    and failures stop a search only after `tune.max_consecutive_failed_trials` of them in a row.
    """
    tune = spec["tune"]
    limit = tune["max_consecutive_failed_trials"]
    if role() != "standalone":
        # the limit raises inside the chief's gRPC handler, failing the worker and leaving the chief
        # waiting for that trial forever: a distributed search records failures but never stops for them
        if limit < tune["max_trials"]:
            print(f"notice: {spec['name']}: max_consecutive_failed_trials = {limit} is not applied in a "
                  "distributed search", file=sys.stderr)
        limit = sys.maxsize
    common = {
        "hypermodel": hypermodel, "objective": kt.Objective(tune["objective"], direction=tune["direction"]),
        "hyperparameters": search_space(spec), "seed": oracle_seed(spec),
        "max_retries_per_trial": 0, "max_consecutive_failed_trials": limit,
        "directory": str(directory), "project_name": search.project, "overwrite": overwrite,
    }
    if tune["tuner"] == "hyperband":
        return kt.Hyperband(max_epochs=spec["epochs"], factor=tune["hyperband_factor"],
                            hyperband_iterations=tune["hyperband_iterations"], **common)
    return TUNERS[tune["tuner"]](max_trials=tune["max_trials"], **common)


def recording(tuner, log):
    """Hook our `TrialLog` into a tuner's trial life cycle (keras-tuner's `on_trial_*` hooks)."""
    run_trial, on_trial_end = tuner.run_trial, tuner.on_trial_end

    def begin_and_run(trial, *args, **kwargs):
        log.begin(trial)
        return run_trial(trial, *args, **kwargs)

    def end(trial):
        try:
            on_trial_end(trial)  # the oracle settles the status (a NaN objective becomes FAILED)
        finally:  # also when the oracle's consecutive-failure limit stops the search here
            log.end(tuner.oracle.get_trial(trial.trial_id))

    tuner.run_trial, tuner.on_trial_end = begin_and_run, end
    return tuner


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
    while thread.is_alive() and not _serving("127.0.0.1" if host == "0.0.0.0" else host, port):
        time.sleep(0.2)
    return thread


def run_searches(spec, data, search_dir, overwrite=False, progress=True):
    """Run (or resume) every search of the spec in this process's role.

    Returns:
        (the tuners by project, what each project held before this session and how it ended:
        {project: {"kept": n, "rerun": [interrupted trial ids], "stopped": "" or why}}).
    """
    import tensorflow as tf
    from tqdm import tqdm

    tf.get_logger().setLevel("ERROR")
    # keras-tuner prints every failed trial's traceback; ours go to the records and the report
    from keras_tuner.src import config as tuner_config

    tuner_config.DEBUG = False
    who = role()
    plan = searches(spec)
    bar = tqdm(total=planned_trials(spec), unit="trial", desc=spec["name"], disable=not progress or who == "chief",
               dynamic_ncols=True)

    def on_end(record):
        bar.set_postfix({"last": f"{record['cell']} {record['status'].lower()}"}, refresh=False)
        bar.update()

    tuners, resumed, threads = {}, {}, []
    base = None if who == "standalone" else _base_port()
    try:
        for index, search in enumerate(plan):
            if base is not None:
                os.environ["KERASTUNER_ORACLE_PORT"] = str(base + index)  # read by the chief and each client
            log = TrialLog(search_dir, spec, search, on_end)
            # trials a killed session left running, as keras-tuner recorded them (read before the tuner
            # reloads: a search killed in its first trial is not reloaded but started again)
            running = [] if overwrite else _running_trials(Path(search_dir) / "tuner" / search.project)
            tuner = make_tuner(spec, search, SpecHyperModel(spec, data, search, log), Path(search_dir) / "tuner",
                               overwrite)
            if who != "worker":
                done = [t for t in tuner.oracle.trials.values() if t.status in ("COMPLETED", "FAILED", "INVALID")]
                resumed[search.project] = {"kept": len(done), "stopped": "", "rerun": running}
                bar.update(len(done))
            tuners[search.project] = tuner
            if who == "chief":  # serve every search at once: a worker moves on as soon as one is done
                threads.append(_serve(tuner, base + index))
                continue
            bar.set_description(f"{spec['name']} {search.project}")
            try:
                recording(tuner, log).search(verbose=0)
            except RuntimeError as e:  # the oracle's consecutive-failure limit: this search stops, the rest go on
                if "consecutive failures" not in str(e):
                    raise
                stopped = str(e).splitlines()[0]
                print(f"notice: {spec['name']}: search {search.project} stopped: {stopped}", file=sys.stderr)
                resumed.get(search.project, {})["stopped"] = stopped
        for thread in threads:
            thread.join()
            if thread.error:
                raise thread.error
    finally:
        bar.close()
        if base is not None:
            os.environ["KERASTUNER_ORACLE_PORT"] = str(base)
    return tuners, resumed


def _ranked(oracle, direction):
    """Completed trials, best first; ties go to the earliest trial. (keras-tuner's own ranking breaks
    ties by the order it holds trials in, which after a resume is the order of files on disk.)"""
    done = [t for t in oracle.trials.values() if t.status == "COMPLETED" and t.score is not None
            and math.isfinite(t.score)]
    return sorted(done, key=lambda t: ((-t.score if direction == "max" else t.score), int(t.trial_id)))


def best_per_cell(spec, tuners):
    """The best trial of every cell: the best of its own search in per-cell mode; in joint mode, the
    best of the joint search's trials with that cell's initializer and loss."""
    best = []
    plan = {s.project: s for s in searches(spec)}
    for project, tuner in tuners.items():
        ranked = _ranked(tuner.oracle, spec["tune"]["direction"])
        if spec["tune"]["mode"] == "per_cell":
            picks = [(cell_of(t.hyperparameters.values, plan[project]), t) for t in ranked[:1]]
        else:
            picks = []
            for trial in ranked:
                cell = cell_of(trial.hyperparameters.values, plan[project])
                if cell not in [c for c, _ in picks]:
                    picks.append((cell, trial))
        for cell, trial in picks:
            chosen = session_hparams(trial.hyperparameters.values, plan[project])
            best.append({"project": project, "cell": cell, "trial_id": trial.trial_id, "objective": trial.score,
                         **chosen})
    return best


def tuned_runs(spec, best):
    """The tuned comparison's spec and runs: each cell at its own best learning rate and batch size."""
    inits, losses = ({label(v): v for v in spec[k]} for k in ("initializers", "losses"))
    runs = []
    for row in best:
        cell_spec = {**spec, "initializers": [inits[row["initializer"]]], "losses": [losses[row["loss"]]],
                     "learning_rate": [row["learning_rate"]], "batch_size": [row["batch_size"]]}
        # named in the run ids: when a resumed search finds better settings, the cell's old runs
        # leave the grid (moved aside, kept) instead of being replaced
        runs += expand(cell_spec, show=("learning_rate", "batch_size"))
    tuned = {**spec, "name": f"{spec['name']}_tuned", "tune": None,
             "learning_rate": sorted({r["learning_rate"] for r in best}),
             "batch_size": sorted({r["batch_size"] for r in best}),
             "description": f"The tuned comparison of `{spec['name']}`: each cell retrained at the learning rate "
                            f"and batch size its search found best ({spec['tune']['tuner']} search, "
                            f"{spec['tune']['mode']} mode, objective {spec['tune']['objective']})."}
    return tuned, runs


def _search_identity(spec):
    """What a search depends on: everything but the documentation, the trial budget and the seeds
    after the first (those only add tuned runs)."""
    tune = {k: v for k, v in spec["tune"].items() if k not in ("max_trials", "max_consecutive_failed_trials")}
    rest = {k: v for k, v in spec.items() if k not in ("description", "claim", "tune", "seeds")}
    return {**rest, "tune": tune, "seed": spec["seeds"][0]}


def _check_same_search(search_dir, started, spec):
    """Resuming continues the same search: refuse one whose config (`started`) changed under it."""
    old, new = _search_identity(started), _search_identity(spec)
    old, new = (json.loads(json.dumps(x, default=str)) for x in (old, new))  # as stored: lists, not tuples
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    changed += sorted(f"tune.{k}" for k in set(old["tune"]) | set(new["tune"])
                      if "tune" in changed and old["tune"].get(k) != new["tune"].get(k))
    if changed:
        raise ValueError(f"the search in {str(search_dir)!r} was started with a different config "
                         f"({', '.join(c for c in changed if c != 'tune')} changed); resuming would mix two "
                         "searches: restore the config, change its name, or pass --overwrite to start afresh")


def tune(spec, datasets, output=".", overwrite=False, progress=True):
    """Search (or resume), then in the chief or a standalone process: the best per cell, the tuned
    comparison, the reports and the TensorBoard records.

    Returns:
        (search folder, tuned experiment folder or None for a worker, the tune report or None).
    """
    store.check_output(output)
    search_dir = store.experiment_dir(output, spec["name"])
    who = role()
    if who == "worker":  # workers never delete: the chief owns the project folders
        run_searches(spec, datasets[0], search_dir, False, progress)
        return search_dir, None, None
    search_dir.mkdir(parents=True, exist_ok=True)
    claim = store.Claim(search_dir, ["search"])
    if not claim.take(wait=False):
        raise ValueError(f"{spec['name']}: another process is running this search in {str(search_dir)!r}; wait for "
                         "it to finish (or stop it), or add workers to it with --workers")
    try:
        return _tune(spec, datasets, output, overwrite, progress, search_dir, who)
    finally:
        claim.release()


def _tune(spec, datasets, output, overwrite, progress, search_dir, who):
    from experiments.runner import run_experiment
    from experiments.store import report_dir

    if overwrite:  # all but the workers' logs of a running `--workers` launch, and the locks
        for child in search_dir.glob("*"):
            if child.name not in ("workers", store.LOCKS):
                store.remove(child, search_dir)
    on_disk = store.read_json(search_dir / SEARCH) if (search_dir / SEARCH).is_file() else None
    if on_disk:
        _check_same_search(search_dir, on_disk["spec"], spec)
    write_hparams_config(search_dir, spec)
    # the session is on record from its start, so a killed one shows up as interrupted
    previous = on_disk["sessions"] if on_disk else []
    session = {"started": time.time(), "seconds": None, "overwrite": overwrite, "role": who, "resumed": None}

    def record(best=()):
        store.write_json(search_dir / SEARCH, {"spec": spec, "environment": describe(),
                                                "oracle_seed": oracle_seed(spec), "sessions": [*previous, session],
                                                "best": list(best)})

    record()
    tuners, session["resumed"] = run_searches(spec, datasets[0], search_dir, overwrite, progress)
    session["seconds"] = time.time() - session["started"]
    best = best_per_cell(spec, tuners)
    record(best)
    tuned_dir = None
    if best:
        tuned_spec, runs = tuned_runs(spec, best)
        tuned_dir, _, _ = run_experiment(tuned_spec, datasets, output, overwrite, progress, runs=runs)
    return search_dir, tuned_dir, build_tune_report(search_dir, tuned_dir, report_dir(output, spec["name"]))


# -- distributed: keras-tuner's chief and workers on this machine ----------------------------


def free_ports(count, host="127.0.0.1"):
    """A base port such that `count` consecutive ports from it are free on `host`."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((host, 0))
            base = s.getsockname()[1]
        if base + count < 65536 and all(_free(host, base + i) for i in range(count)):
            return base
    raise RuntimeError(f"found no {count} consecutive free ports on {host}")


def _free(host, port):
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _serving(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def launch(argv, spec, workers, output, progress=True):
    """`--workers N`: run this same command as keras-tuner's chief and N workers on 127.0.0.1
    (each a subprocess, told its role by the KERASTUNER_* variables) and wait for them.

    Args:
        argv: the command line to rerun, without `--workers` (the chief gets `--overwrite` if given).
    Returns:
        the chief's exit code, or 1 when a worker failed (its log is named).
    """
    from tqdm import tqdm

    search_dir = Path(output) / "runs" / spec["name"]
    logs = search_dir / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    base = free_ports(len(searches(spec)))
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(base)}
    command = [sys.executable, "-m", "experiments", *argv]
    worker_command = [a for a in command if a != "--overwrite"]
    print(f"{spec['name']}: keras-tuner chief on 127.0.0.1:{base} and {workers} workers (logs in {logs})")
    processes = {"chief": subprocess.Popen([*command, "--quiet"], env={**env, "KERASTUNER_TUNER_ID": "chief"})}
    # shown once the processes are up (and not at all if the chief quits at once)
    bar = tqdm(total=planned_trials(spec), unit="trial", desc=f"{spec['name']} ({workers} workers)",
               disable=not progress, dynamic_ncols=True, delay=10)
    try:
        # workers start once the chief serves its first search (so an --overwrite has cleared the old one)
        while not _serving("127.0.0.1", base):
            if processes["chief"].poll() is not None:
                return processes["chief"].returncode
            time.sleep(0.5)
        for i in range(workers):
            with open(logs / f"tuner{i}.log", "w") as f:
                processes[f"tuner{i}"] = subprocess.Popen(
                    [*worker_command, "--quiet"], env={**env, "KERASTUNER_TUNER_ID": f"tuner{i}"},
                    stdout=f, stderr=subprocess.STDOUT)
        while any(p.poll() is None for name, p in processes.items() if name != "chief"):
            bar.update(len(list(search_dir.glob(f"trials/*/trial_*/{TRIAL}"))) - bar.n)
            failed = [name for name, p in processes.items() if p.poll() not in (None, 0)]
            if failed:
                bar.close()
                where = "its output above" if failed[0] == "chief" else logs / f"{failed[0]}.log"
                print(f"error: tuner process {failed[0]} exited with code {processes[failed[0]].returncode}; "
                      f"see {where}", file=sys.stderr)
                return 1
            time.sleep(1)
        bar.close()
        return processes["chief"].wait()
    finally:
        bar.close()
        for p in processes.values():
            if p.poll() is None:
                p.terminate()
        for p in processes.values():
            p.wait()
