"""A keras-tuner search of learning rate and batch size over an experiment spec's cells, then the
tuned comparison: every cell retrained at its own best settings on the spec's seeds.

    runs/<name>/                           the search; a TensorBoard logdir (HParams domains at its root)
              search.json                  spec, environment, every session (what it resumed), best per cell
              tuner/<project>/             keras-tuner's own project (oracle.json, trial_*/), one per search:
                                           <initializer>__<loss> per cell, or `joint`
              trials/<project>/trial_<id>/ our record of a trial, as a run's folder (config.json, history.csv
                                           with every epoch: keras-tuner keeps only the best step,
                                           result.json, TensorBoard events) plus trial.json (status,
                                           hyperparameters, objective, reason, time, worker)
              workers/<tuner id>.log       each worker's output, with `--workers`
    runs/<name>_tuned/                     the tuned comparison: an ordinary experiment (report, TensorBoard)
"""

import json
import math
import os
import sys
import time
from pathlib import Path

from experiments.records import store
from experiments.records.environment import describe
from experiments.records.events import Events, session_metrics
from experiments.reporting.tune_report import SEARCH, build_tune_report
from experiments.runner import run_experiment
from experiments.spec import expand
from experiments.tuning import stacked
from experiments.tuning.trials import OBJECTIVE, SpecHyperModel, TrialLog
from experiments.tuning.tuners import (
    _base_port,
    _running_trials,
    _serve,
    cell_of,
    make_tuner,
    oracle_seed,
    planned_trials,
    role,
    searches,
    trial_hparams,
)
from initializers.registry import label
from models.builders import stacking_blocker


def write_hparams_config(search_dir, spec):
    """The search's HParams experiment: the declared domains, and the train/validation metrics."""
    from tensorboard.plugins.hparams import api as hp

    tune = spec.tune
    hparams = [hp.HParam("initializer", hp.Discrete([label(v) for v in spec.initializers])),
               hp.HParam("loss", hp.Discrete([label(v) for v in spec.losses])),
               hp.HParam("learning_rate", hp.RealInterval(float(tune.learning_rate.min),
                                                          float(tune.learning_rate.max))),
               hp.HParam("batch_size", hp.Discrete(list(tune.batch_size)))]
    metrics = [hp.Metric(OBJECTIVE, display_name=f"objective (best {tune.objective})"),
               *session_metrics(spec.metrics, ("validation", "train"))]
    for old in Path(search_dir).glob("events.out.tfevents.*"):
        store.remove(old, search_dir)
    events = Events(search_dir)
    events.write("", 0, hp.hparams_config_pb(hparams=hparams, metrics=metrics))
    events.close()


def run_searches(spec, data, search_dir, overwrite=False, progress=True):
    """Run (or resume) every search of the spec in this process's role.

    Returns:
        (the tuners by project, what each project held before this session and how it ended:
        {project: {"kept": n, "rerun": [interrupted trial ids], "stopped": "" or why}}).
    """
    import tensorflow as tf
    from tqdm.auto import tqdm  # a widget in Jupyter, text in a terminal

    tf.get_logger().setLevel("ERROR")
    who = role()
    plan = searches(spec)
    bar = tqdm(total=planned_trials(spec), unit="trial", desc=spec.name, disable=not progress or who == "chief",
               dynamic_ncols=True)

    def on_end(record):
        bar.set_postfix({"last": f"{record['cell']} {record['status'].lower()}"}, refresh=False)
        bar.update()

    tuners, resumed, threads, stacks = {}, {}, [], {}
    base = None if who == "standalone" else _base_port()
    # trials in stacks (`stacked`), alone or in a worker, when they train with the vectorized engine
    # (a model the engine cannot stack trains one trial at a time)
    in_stacks = who != "chief" and spec.tune.engine == "vectorized" and not stacking_blocker(spec.model[0])

    def on_stop(project, reason):
        print(f"notice: {spec.name}: search {project} stopped: {reason}", file=sys.stderr)
        resumed.get(project, {})["stopped"] = reason

    try:
        for index, search in enumerate(plan):
            if base is not None:
                os.environ["KERASTUNER_ORACLE_PORT"] = str(base + index)  # read by the chief and each client
            log = TrialLog(search_dir, spec, search, on_end)
            # trials a killed session left running, as keras-tuner recorded them (read before the tuner
            # reloads: a search killed in its first trial is not reloaded but started again)
            running = [] if overwrite else _running_trials(Path(search_dir) / "tuner" / search.project)
            hypermodel = SpecHyperModel(spec, data, search, log)
            tuner = make_tuner(spec, search, hypermodel, log, Path(search_dir) / "tuner", overwrite)
            if who != "worker":
                done = [t for t in tuner.oracle.trials.values() if t.status in ("COMPLETED", "FAILED", "INVALID")]
                resumed[search.project] = {"kept": len(done), "stopped": "", "rerun": running}
                bar.update(len(done))
            tuners[search.project] = tuner
            if who == "chief":  # serve every search at once: a worker moves on as soon as one is done
                threads.append(_serve(tuner, base + index))
                continue
            if in_stacks:  # every search's trials together, after the loop
                stacks[search.project] = (search, tuner, hypermodel, on_end)
                continue
            bar.set_description(f"{spec.name} {search.project}")
            try:
                tuner.search(verbose=0)
            except RuntimeError as e:  # the oracle's consecutive-failure limit: this search stops, the rest go on
                if "consecutive failures" not in str(e):
                    raise
                on_stop(search.project, str(e).splitlines()[0])
        if stacks:
            stacked.search(spec, data, search_dir, stacks, on_stop)
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
        ranked = _ranked(tuner.oracle, spec.tune.direction)
        if spec.tune.mode == "per_cell":
            picks = [(cell_of(t.hyperparameters.values, plan[project]), t) for t in ranked[:1]]
        else:
            picks = []
            for trial in ranked:
                cell = cell_of(trial.hyperparameters.values, plan[project])
                if cell not in [c for c, _ in picks]:
                    picks.append((cell, trial))
        for cell, trial in picks:
            chosen = trial_hparams(trial.hyperparameters.values, plan[project])
            best.append({"project": project, "cell": cell, "trial_id": trial.trial_id, "objective": trial.score,
                         **chosen})
    return best


def tuned_runs(spec, best):
    """The tuned comparison's spec and runs: each cell at its own best learning rate and batch size."""
    inits, losses = ({label(v): v for v in values} for values in (spec.initializers, spec.losses))
    runs = []
    for row in best:
        cell_spec = spec.replace(initializers=(inits[row["initializer"]],), losses=(losses[row["loss"]],),
                                 learning_rate=(row["learning_rate"],), batch_size=(row["batch_size"],))
        # named in the run ids: when a resumed search finds better settings, the cell's old runs
        # leave the grid (moved aside, kept) instead of being replaced
        runs += expand(cell_spec, show=("learning_rate", "batch_size"))
    tuned = spec.replace(name=f"{spec.name}_tuned", tune=None,
                         learning_rate=tuple(sorted({r["learning_rate"] for r in best})),
                         batch_size=tuple(sorted({r["batch_size"] for r in best})),
                         description=f"The tuned comparison of `{spec.name}`: each cell retrained at the learning "
                                     f"rate and batch size its search found best ({spec.tune.tuner} search, "
                                     f"{spec.tune.mode} mode, objective {spec.tune.objective}).")
    return tuned, runs


def _search_identity(spec):
    """What a search depends on (`spec` as search.json holds it): everything but the documentation,
    the trial budget and the seeds after those its trials train (the rest only add tuned runs)."""
    tune = {"executions": 1}  # searches recorded before it was a setting
    tune |= {k: v for k, v in spec["tune"].items() if k not in ("max_trials", "max_consecutive_failed_trials",
                                                                "engine", "stack")}  # how, not what
    rest = {k: v for k, v in spec.items() if k not in ("description", "claim", "tune", "seeds", "save_model",
                                                     "compare")}
    seeds = spec["seeds"][:tune["executions"]]
    return {**rest, "tune": tune, "seed": seeds[0] if len(seeds) == 1 else seeds}


def _check_same_search(search_dir, started, spec):
    """Resuming continues the same search: refuse one whose config (`started`) changed under it."""
    old, new = _search_identity(started), _search_identity(spec.as_dict())
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
    search_dir = store.experiment_dir(output, spec.name)
    who = role()
    if who == "worker":  # workers never delete: the chief owns the project folders
        run_searches(spec, datasets[0], search_dir, False, progress)
        return search_dir, None, None
    search_dir.mkdir(parents=True, exist_ok=True)
    claim = store.Claim(search_dir, ["search"])
    if not claim.take(wait=False):
        raise ValueError(f"{spec.name}: another process is running this search in {str(search_dir)!r}; wait for "
                         "it to finish (or stop it), or add workers to it with --workers")
    try:
        return _tune(spec, datasets, output, overwrite, progress, search_dir, who)
    finally:
        claim.release()


def _tune(spec, datasets, output, overwrite, progress, search_dir, who):
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
        store.write_json(search_dir / SEARCH, {"spec": spec.as_dict(), "environment": describe(),
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
    return search_dir, tuned_dir, build_tune_report(search_dir, tuned_dir, store.report_dir(output, spec.name))
