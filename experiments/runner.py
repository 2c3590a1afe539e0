"""Run an experiment: expanded runs -> engine -> run folders, with resume and a progress bar.

"What to run" (`spec.expand`) stays apart from "how to train it" (an engine's `train_runs`).
"""

import dataclasses
import math
import sys
from pathlib import Path

from experiments import rundir
from experiments.environment import describe
from experiments.spec import expand
from experiments.tensorboard_log import write_experiment
from initializers.registry import label


def _engines():
    from experiments import engine_keras, engine_vectorized

    return {"keras": engine_keras.train_runs, "vectorized": engine_vectorized.train_runs}


def resolve_engines(spec, runs):
    """The runs with the engine that will train each: vectorized falls back to keras for a model
    it cannot stack, with a one-line notice per model."""
    from experiments.engine_vectorized import unsupported

    if spec["engine"] != "vectorized":
        return runs
    reasons = {label(m): unsupported(m) for m in spec["model"]}  # runs carry their model's label
    for model, reason in reasons.items():
        if reason:
            print(f"notice: {spec['name']}: the vectorized engine does not support model {model} ({reason}); "
                  "training its runs with the keras engine", file=sys.stderr)
    return [dataclasses.replace(r, config={**r.config, "engine": "keras"}) if reasons[r.axes["model"]] else r
            for r in runs]


def experiment_dir(output, name):
    return Path(output) / "runs" / name


def run_experiment(spec, datasets, output=".", overwrite=False, progress=True, runs=None):
    """Train every unfinished run of a validated spec.

    Args:
        spec, datasets: as returned by `spec.validate`.
        output: the output tree; runs go to `<output>/runs/<name>/`.
        overwrite: rerun finished runs too.
        progress: show the grid progress bar (on stderr).
        runs: the runs to train, when not the spec's own grid (`expand(spec)`); the tuned
            comparison trains each cell at its own learning rate and batch size.
    Returns:
        (experiment folder, number of runs trained, number skipped as already finished).
    """
    from tqdm import tqdm

    exp_dir = experiment_dir(output, spec["name"])
    runs = resolve_engines(spec, expand(spec) if runs is None else runs)
    rundir.write_json(exp_dir / "experiment.json", {
        "spec": spec,
        "runs": [{"run_id": r.run_id, "cell": r.cell, **r.axes, "engine": r.config["engine"]} for r in runs],
        "datasets": [d.summary() for d in datasets],
        "environment": describe(),
    })
    todo = [r for r in runs if overwrite or not rundir.is_finished(exp_dir / r.run_id, r.config)]
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), unit="run", disable=not progress,
               desc=spec["name"], dynamic_ncols=True, mininterval=1.0)
    headline = "val_" + spec["metrics"][0]

    def on_epoch(run, row):
        value = row.get(headline, math.nan)
        bar.set_description(f"{spec['name']} {run.cell} seed {run.axes['seed']}", refresh=False)
        bar.set_postfix({"epoch": row["epoch"], headline: f"{value:.4g}"}, refresh=False)
        bar.update(0)  # redraws at most every mininterval: quiet logs in CI

    jobs = [(r, rundir.RunRecorder(r, exp_dir / r.run_id, on_epoch, on_finish=lambda run, result: bar.update()))
            for r in todo]
    write_experiment(exp_dir)  # the HParams dashboard is right while the grid trains
    by_label = {label(d): data for d, data in zip(spec["dataset"], datasets, strict=True)}
    parts = {}  # (dataset, engine) -> jobs, in grid order
    for run, recorder in jobs:
        parts.setdefault((run.axes["dataset"], run.config["engine"]), []).append((run, recorder))
    try:
        for (dataset, engine), part in parts.items():
            _engines()[engine](part, by_label[dataset])
    finally:
        bar.close()
    return exp_dir, len(todo), len(runs) - len(todo)
