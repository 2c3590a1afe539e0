"""Run an experiment: expanded runs -> training groups -> engine -> run folders, with resume,
claims between processes, and a progress bar.

"What to run" (`spec.expand`) stays apart from "how to train it" (an engine's `train_runs`).
Before anything changes, every run's folder is inspected (`rundir.inspect`): finished runs of
another config stop the command unless `--overwrite` is given, damaged records are retrained
with a notice, and runs whose cell left the grid are moved out of the experiment's folder.

A training group is what an engine trains together (a stacked group of the vectorized engine,
one run for the keras engine), formed from the whole grid, so its composition never depends on
what is already finished: a group with any unfinished member is trained whole and only its
unfinished members are written. A resumed grid therefore gives the same numbers as an
uninterrupted one. A process claims a group (fcntl locks on its runs) before training it; a
second process on the same experiment trains the groups nobody holds, then waits for the rest
and trains whatever their holder left unfinished.
"""

import dataclasses
import math
import sys
from pathlib import Path

from experiments.engines import ENGINES
from experiments.records import events, rundir, store
from experiments.records.environment import describe
from experiments.records.experiment import EXPERIMENT, load_experiment
from experiments.reporting.report import build_report
from experiments.reporting.tables import load_tables
from experiments.spec import expand
from experiments.spec.budget import member_bytes, stack_budget, stack_members
from initializers.registry import label
from models.builders import stacking_blocker
from models.losses import LOSSES
from models.metrics import METRICS


def _blocker(config):
    """Why the vectorized engine cannot stack a run ('' when it can): its model, or a user's loss
    or metric that is not element-wise."""
    loss = config.loss["name"]
    unstacked = [m for m in config.metrics if METRICS[m].sums is None]
    model = stacking_blocker(config.model)
    return ((f"model {label(config.model)} ({model})" if model else "")
            or (f"loss {loss} (yours, not element-wise)" if LOSSES.entries[loss].stacked is False else "")
            or (f"metric {unstacked[0]} (yours, not element-wise)" if unstacked else ""))


def resolve_engines(spec, runs):
    """The runs with the engine that will train each: vectorized falls back to keras for what it
    cannot stack, with a one-line notice per reason."""
    if spec.engine != "vectorized":
        return runs
    reasons = {r.run_id: _blocker(r.config) for r in runs}
    for reason in dict.fromkeys(reasons.values()):
        if reason:
            print(f"notice: {spec.name}: the vectorized engine does not support {reason}; "
                  "training those runs with the keras engine", file=sys.stderr)
    return [dataclasses.replace(r, config=r.config.replace(engine="keras")) if reasons[r.run_id] else r
            for r in runs]


def _check_parts(spec, exp_dir):
    """Refuse to add runs of your own parts whose files changed since the finished runs used them."""
    try:
        before = load_experiment(exp_dir)["spec"].parts
    except ValueError:
        return  # no record yet, or a damaged one that this run rewrites
    for kind, parts in spec.parts.items():
        for name, source in parts.items():
            old = before.get(kind, {}).get(name)
            if old and old.get("sha256") != source.get("sha256"):
                raise ValueError(f"{spec.name}: your {kind} {name!r} ({source['path'] or source['reference']}) changed "
                                 "since this experiment's runs trained with it; rerun with --overwrite, or use "
                                 "another name")


def training_groups(runs, data_by_label, budget=math.inf, shard=None):
    """The runs in the groups their engines train together, each in grid order; a vectorized group
    whose stack would take more than `budget` bytes (`spec.budget.stack_budget`) is split into
    stacks of as equal sizes as fit. With `shard` `(i, n)`: only the i-th of n shares (`shares`)."""
    groups = {}
    for run in runs:
        data = data_by_label[run.axes["dataset"]]
        key = (run.axes["dataset"], run.config.engine, ENGINES[run.config.engine].group_key(run, data))
        groups.setdefault(key, []).append(run)
    groups = list(groups.values())
    if shard is not None:
        groups = shares(groups, data_by_label, shard[1])[shard[0]]
    stacks = []
    for group in groups:
        config, data = group[0].config, data_by_label[group[0].axes["dataset"]]
        fits = len(group) if config.engine != "vectorized" or math.isinf(budget) else \
            stack_members(budget, config.model, data, config.batch_size, config.diagnostics.probe)
        stacks += _equal_parts(group, -(-len(group) // fits))
    return stacks


def _equal_parts(runs, parts):
    """`runs` in `parts` consecutive parts whose sizes differ by at most one."""
    base, extra = divmod(len(runs), parts)
    sizes = [base + 1] * extra + [base] * (parts - extra)
    return [runs[sum(sizes[:k]):sum(sizes[:k + 1])] for k in range(parts)]


def shares(groups, data_by_label, count):
    """The groups dealt into `count` shards of about equal work: each group is cut into up to
    `count` equal parts, and the parts, largest first (members x epochs x a member's estimated
    size), go each to the shard with the least work so far. Depends only on the grid and its data,
    so every machine, and every resume, deals the same shards."""
    parts = [part for group in groups for part in _equal_parts(group, min(count, len(group)))]

    def work(part):
        config, data = part[0].config, data_by_label[part[0].axes["dataset"]]
        return len(part) * config.epochs * member_bytes(config.model, data, config.batch_size,
                                                        config.diagnostics.probe)

    dealt, load = [[] for _ in range(count)], [0] * count
    weighed = sorted(((work(part), part) for part in parts), key=lambda pair: pair[0], reverse=True)
    for amount, part in weighed:  # a stable sort: ties keep grid order
        k = load.index(min(load))
        dealt[k].append(part)
        load[k] += amount
    return dealt


def _fingerprint(run_dir):
    """Which result.json a run holds (so a process can tell that another one rewrote it)."""
    try:
        stat = (run_dir / rundir.RESULT).stat()
        return stat.st_ino, stat.st_mtime_ns
    except OSError:
        return None


def survey(spec, exp_dir, runs, overwrite, notify=True):
    """Inspect every run's folder. Returns {run_id: (needs training, fingerprint)}; prints a
    notice per damaged record (with `notify`).

    Raises:
        ValueError: finished runs of another config, without `overwrite`.
    """
    plan, stale = {}, {}
    for run in runs:
        run_dir = exp_dir / run.run_id
        state = rundir.inspect(run_dir, run.config)
        if state.kind == "stale" and not overwrite:
            stale[run.run_id] = state.detail
        if state.kind == "damaged" and notify:
            print(f"notice: {spec.name}: {run_dir / state.detail.split(':')[0]} is damaged "
                  f"({state.detail.partition(': ')[2]}); retraining {run.run_id}", file=sys.stderr)
        plan[run.run_id] = (overwrite or not state.done, _fingerprint(run_dir))
    if stale:
        changes = list(dict.fromkeys(stale.values()))
        raise ValueError(f"{spec.name}: {len(stale)} finished runs in {str(exp_dir)!r} were trained with another "
                         f"config ({'; '.join(changes[:3])}{'; ...' if len(changes) > 3 else ''}); rerun with "
                         "--overwrite to replace them, or give this config another name (--set name=...)")
    return plan


def _run_dirs(exp_dir):
    """The run folders on disk (holding a config.json), relative to the experiment's folder."""
    return sorted(p.parent.relative_to(exp_dir).as_posix() for p in exp_dir.rglob(rundir.CONFIG)
                  if not any(part.startswith(".") for part in p.relative_to(exp_dir).parts))


def retire(spec, output, exp_dir, runs):
    """Move the run folders whose cell left the grid to `<output>/retired/<name>/<time>/`, out of
    the logdir and the tables, with a one-line notice. Returns the folder they went to, or None."""
    current = {r.run_id for r in runs}
    leaving = [run_id for run_id in _run_dirs(exp_dir) if run_id not in current]
    if not leaving:
        return None
    claim = store.Claim(exp_dir, leaving)
    if not claim.take(wait=False):
        raise ValueError(f"{spec.name}: another process is training runs that this config drops "
                         f"({leaving[0]}, ...); wait for it to finish, or give this config another name")
    try:
        destination = store.inside(Path(output) / "retired" / spec.name / store.stamp(), output)
        cells = {}
        for run_id in leaving:
            cells.setdefault((exp_dir / run_id).parent, []).append(run_id)
        for cell, moving in cells.items():
            staying = [c for c in cell.iterdir() if (c / rundir.CONFIG).exists() and
                       c.relative_to(exp_dir).as_posix() not in moving]
            if staying:
                for run_id in moving:
                    store.move(exp_dir / run_id, destination / run_id, output)
            else:  # the whole cell leaves, with its mean +- std aggregate
                store.move(cell, destination / cell.relative_to(exp_dir), output)
                if not any(cell.parent.iterdir()):
                    cell.parent.rmdir()
    finally:
        claim.release()
    print(f"notice: {spec.name}: {len(leaving)} runs of cells no longer in the grid moved to {destination} "
          "(out of TensorBoard and the tables)", file=sys.stderr)
    return destination


def run_experiment(spec, datasets, output=".", overwrite=False, progress=True, runs=None, shard=None):
    """Train every unfinished run of a validated spec (with `shard` `(i, n)`: of its i-th share).

    Args:
        spec, datasets: as returned by `spec.validate`.
        output: the output tree; runs go to `<output>/runs/<name>/`.
        overwrite: retrain finished runs too (also those of another config).
        progress: show the grid progress bar (on stderr).
        runs: the runs to train, when not the spec's own grid (`expand(spec)`); the tuned
            comparison trains each cell at its own learning rate and batch size.
        shard: `(i, n)`: train only the i-th of n shares of the grid's groups (`shares`); any
            number of processes on any machines sharing `output` may train shards at once.
    Returns:
        (experiment folder, number of runs trained, number skipped as already finished; of the
        shard's runs with `shard`).
    Raises:
        ValueError: finished runs of another config (without `overwrite`), or a bad output folder;
            nothing on disk has changed then.
    """
    from tqdm.auto import tqdm  # a widget in Jupyter, text in a terminal

    store.check_output(output)
    exp_dir = store.experiment_dir(output, spec.name)
    runs = resolve_engines(spec, expand(spec) if runs is None else runs)
    if exp_dir.is_dir():
        survey(spec, exp_dir, runs, overwrite, notify=False)  # refuse before changing anything
        if not overwrite:
            _check_parts(spec, exp_dir)
    with store.locked(exp_dir):
        plan = survey(spec, exp_dir, runs, overwrite)
        retire(spec, output, exp_dir, runs)
        store.write_json(exp_dir / EXPERIMENT, {
            "spec": spec.as_dict(),
            "runs": [{"run_id": r.run_id, "cell": r.cell, **r.axes, "engine": r.config.engine} for r in runs],
            "datasets": [d.summary() for d in datasets],
            "environment": describe(),
        })
        events.write_experiment(exp_dir)  # the HParams dashboard is right while the grid trains
    by_label = {label(d): data for d, data in zip(spec.dataset, datasets, strict=True)}
    mine = training_groups(runs, by_label, stack_budget(spec), shard)
    whole = {run.run_id: len(group) for group in training_groups(runs, by_label) for run in group}
    groups = [g for g in mine if any(plan[r.run_id][0] for r in g)]
    todo = sum(plan[r.run_id][0] for g in groups for r in g)
    total = sum(len(g) for g in mine)
    bar = tqdm(total=total, initial=total - todo, unit="run", disable=not progress,
               desc=spec.name, dynamic_ncols=True, mininterval=1.0)
    headline = "val_" + spec.metrics[0]

    def on_epoch(run, row):
        value = row.get(headline, math.nan)
        bar.set_description(f"{spec.name} {run.cell} seed {run.axes['seed']}", refresh=False)
        bar.set_postfix({"epoch": row["epoch"], headline: f"{value:.4g}"}, refresh=False)
        bar.update(0)  # redraws at most every mininterval: quiet logs in CI

    trained, retrained = 0, 0

    def train(group, claim):
        """Train a claimed group; write the members that still need it when the claim was taken."""
        nonlocal trained, retrained
        try:
            writes = {}
            for run in group:
                state = rundir.inspect(exp_dir / run.run_id, run.config)
                if state.kind == "stale" and not overwrite:
                    raise ValueError(f"{spec.name}: {run.run_id} was finished by another process with another "
                                     f"config ({state.detail}); rerun with --overwrite, or use another name")
                redo = plan[run.run_id][0] and _fingerprint(exp_dir / run.run_id) == plan[run.run_id][1]
                writes[run.run_id] = not state.done or (overwrite and redo)
            if not any(writes.values()):
                bar.update(sum(plan[r.run_id][0] for r in group))  # another process trained them
                return
            bar.update(sum(plan[r.run_id][0] and not writes[r.run_id] for r in group))
            jobs = [(run, rundir.RunRecorder(run, exp_dir / run.run_id, exp_dir, events.run_log, on_epoch,
                                             on_finish=lambda run, result: bar.update(), write=writes[run.run_id],
                                             save_model=spec.save_model))
                    for run in group]
            try:
                ENGINES[group[0].config.engine].train_runs(jobs, by_label[group[0].axes["dataset"]],
                                                           group_size=whole[group[0].run_id])
            finally:
                for _, recorder in jobs:
                    recorder.close()
            trained += sum(writes.values())
            retrained += len(group) - sum(writes.values())
        finally:
            claim.release()

    try:
        waiting = []
        for group in groups:
            claim = store.Claim(exp_dir, [r.run_id for r in group])
            if claim.take(wait=False):
                train(group, claim)
            else:
                waiting.append((group, claim))
        for group, claim in waiting:  # held by another process: wait, then train what it left
            bar.set_description(f"{spec.name} waiting for another process", refresh=True)
            claim.take(wait=True)
            train(group, claim)
    finally:
        bar.close()
    if retrained:
        print(f"notice: {spec.name}: {retrained} finished runs were trained again with their stacked group, "
              "so that its other members match an uninterrupted run; their records were kept", file=sys.stderr)
    return exp_dir, trained, total - trained


def report_experiment(exp_dir, output, name, tables=None):
    """Build the report, then put its plots (and fresh mean +- std runs) into TensorBoard; under
    the experiment's lock, so two processes never interleave its files. Returns report.md's path."""
    with store.locked(exp_dir):
        tables = load_tables(exp_dir) if tables is None else tables  # read every run once, for both
        report = build_report(exp_dir, store.report_dir(output, name), tables)
        events.write_experiment(exp_dir, report.parent, tables)
    return report
