"""The tuner report: every trial, the best settings per cell, the tuned comparison, sensitivity
plots and the failed trials. Reads only what the search and the tuned runs wrote to disk.

    reports/<name>/tune.md, tune.html   the report
                   trials.csv           a row per trial: status, hyperparameters, objective, time, reason
                   trial_epochs.csv     a row per trial x epoch (keras-tuner itself keeps only the best step)
                   best.csv             the best trial per cell
                   tuned.csv            the tuned comparison: test mean +- std over the spec's seeds per cell
                   verdicts.csv         every tuned cell against the best, paired by seed (`verdicts`)
                   sensitivity_learning_rate.png, sensitivity_batch_size.png
"""

import math
from pathlib import Path

import pandas as pd

from experiments.records import store
from experiments.reporting import verdicts
from experiments.reporting.plots import inch_margins, plain_log, pyplot
from experiments.reporting.render import Code, Page
from experiments.reporting.tables import format_cell, load_tables, summarize_cells
from experiments.spec.types import Experiment
from initializers.registry import label
from models.metrics import greater_is_better

TRIAL_COLUMNS = ["project", "cell", "trial_id", "status", "worker", "learning_rate", "batch_size", "objective",
                 "best_epoch", "epochs_run", "seconds", "stack", "reason"]

SEARCH, TRIAL = "search.json", "trial.json"
DIGITS = 6  # significant digits in the tables: learning rates are drawn on a continuous scale
BEST_COLUMNS = ["project", "cell", "trial_id", "objective", "learning_rate", "batch_size", "initializer", "loss"]


def seed_dir(trial_dir, execution, seed):
    """Where a trial's run at one of its seeds is recorded: the first in the trial's folder, each
    further one (`tune.executions`) in `seed_<seed>/` inside it."""
    return Path(trial_dir) if execution == 0 else Path(trial_dir) / f"seed_{seed}"


def load_trials(search_dir):
    """Every trial record under a search folder, in (project, trial id) order."""
    return [store.read_json(p) for p in sorted(Path(search_dir).glob(f"trials/*/trial_*/{TRIAL}"))]


def trial_tables(search_dir):
    """(trials, trial_epochs): a row per recorded trial, and a row per trial x epoch."""
    rows, epochs = [], []
    for record in load_trials(search_dir):
        hps, seeds = record["hyperparameters"], record.get("seeds", [None])  # None: recorded before seeds were
        # each seed's objective, when a trial trained several (tune.executions)
        per_seed = dict(zip(seeds, record["seed_objectives"], strict=True)) if len(seeds) > 1 else {}
        rows.append({**record, "learning_rate": hps.get("learning_rate"), "batch_size": hps.get("batch_size"),
                     **{f"hp_{k}": v for k, v in hps.items() if k not in ("learning_rate", "batch_size")},
                     **{f"objective_seed_{seed}": v for seed, v in per_seed.items()}})
        trial_dir = Path(search_dir) / "trials" / record["project"] / f"trial_{record['trial_id']}"
        for k, seed in enumerate(seeds):
            history = seed_dir(trial_dir, k, seed) / "history.csv"
            if history.is_file():
                epochs.append(pd.read_csv(history).assign(project=record["project"], trial_id=record["trial_id"],
                                                          seed=seed, cell=record["cell"]))
    trials = pd.DataFrame(rows)
    if not trials.empty:
        trials = trials.drop(columns=["hyperparameters", "seeds", "seed_objectives"], errors="ignore")
        # reindex: records written before `stack` was recorded lack it
        trials = trials.reindex(columns=[*TRIAL_COLUMNS, *[c for c in trials if c not in TRIAL_COLUMNS]])
    return trials, (pd.concat(epochs, ignore_index=True) if epochs else pd.DataFrame())


def plot_sensitivity(trials, best, tune, hp, path):
    """Per cell, the objective of every completed trial against one hyperparameter over its whole
    search domain (learning rate on a log axis), coloured by the other one; failed trials as red
    crosses on the lower edge, the cell's best trial starred."""
    import matplotlib.colors

    plt = pyplot()
    cells = list(dict.fromkeys(trials["cell"]))
    columns = min(4, len(cells))
    rows = math.ceil(len(cells) / columns)
    shared = tune.objective != "val_loss"  # losses have their own scales
    fig, panels = plt.subplots(rows, columns, figsize=(3.6 * columns + 1, 3 * rows), squeeze=False, sharey=shared)
    lr, sizes = tune.learning_rate, tune.batch_size
    other = "batch_size" if hp == "learning_rate" else "learning_rate"
    norm = (matplotlib.colors.LogNorm(min(sizes), max(sizes)) if other == "batch_size" else
            matplotlib.colors.LogNorm(lr.min, lr.max))
    done = trials[trials["status"] == "COMPLETED"]
    for panel, cell in zip(panels.flat, cells, strict=False):
        part = done[done["cell"] == cell]
        points = panel.scatter(part[hp], part["objective"], c=part[other], cmap="viridis", norm=norm, s=22)
        failed = trials[(trials["cell"] == cell) & (trials["status"] != "COMPLETED")]
        if len(failed):
            panel.scatter(failed[hp], [0.03] * len(failed), marker="x", color="red",
                          transform=panel.get_xaxis_transform(), label=f"failed ({len(failed)})")
            panel.legend(loc="best", fontsize=7)
        top = best[best["cell"] == cell]
        panel.scatter(top[hp], top["objective"], marker="*", s=160, facecolor="none", edgecolor="black")
        if hp == "learning_rate":
            panel.set_xscale("log")
            panel.set_xlim(lr.min / 1.5, lr.max * 1.5)
            plain_log(panel.xaxis)
        else:
            panel.set_xscale("log", base=2)
            panel.set_xlim(min(sizes) / 1.5, max(sizes) * 1.5)
            plain_log(panel.xaxis, sizes)
        panel.set_title(cell, fontsize=9)
        panel.set_xlabel(hp.replace("_", " "))
    for panel in list(panels.flat)[len(cells):]:
        panel.set_visible(False)
    for row in panels:
        row[0].set_ylabel(tune.objective)
    fig.suptitle(f"{tune.objective} against {hp.replace('_', ' ')} (star: the cell's best trial)")
    # the colour bar in the right margin: 0.18 in wide, its ticks and label beyond it
    inch_margins(fig, rows, columns, right=1.2, top=0.65, across=0.3 if shared else 0.6)
    width, box = fig.get_size_inches()[0], fig.subplotpars  # the bar spans the panels' height
    scale = fig.add_axes((1 - 1.0 / width, box.bottom, 0.18 / width, box.top - box.bottom))
    bar = fig.colorbar(points, cax=scale, label=other.replace("_", " "))
    plain_log(bar.ax.yaxis, sizes if other == "batch_size" else None)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def tuned_runs(tuned_dir):
    """The tuned runs (`load_tables`), each cell labelled `initializer | loss` as the search's."""
    runs, _ = load_tables(tuned_dir)
    return runs.assign(cell=runs["initializer"] + " | " + runs["loss"])


def tuned_table(runs, best, metrics, versus=None):
    """Per cell: its best learning rate, batch size and objective, then test loss and metrics as
    mean +- std over the seeds that finished, and (`versus`: the verdicts' cells table) how it
    compares with the best cell."""
    table = best[["cell", "learning_rate", "batch_size", "objective"]].rename(
        columns={"objective": "search objective"}).set_index("cell")
    for metric in ["loss", *metrics]:
        stats = summarize_cells(runs, f"test_{metric}").assign(
            cell=lambda t: t["initializer"] + " | " + t["loss"]).set_index("cell")
        table[f"test {metric}"] = [format_cell(stats.at[c, "mean"], stats.at[c, "std"], int(stats.at[c, "n"]))
                                   if c in stats.index else "-" for c in table.index]
        table[f"_{metric}"] = stats["mean"].reindex(table.index)
    headline = metrics[0] if metrics else "loss"
    table = table.sort_values(f"_{headline}", ascending=not greater_is_better(headline), na_position="last")
    table["runs"] = [", ".join(f"{n} {s}" for s, n in runs.loc[runs["cell"] == c, "status"].value_counts().items())
                     for c in table.index]
    if versus is not None:
        table["vs best"] = versus.set_index("cell")["verdict"].reindex(table.index)
    return table.drop(columns=[c for c in table if c.startswith("_")]).reset_index()


def build_tune_report(search_dir, tuned_dir, out_dir):
    """Write the tuner report; returns the path of tune.md."""
    search = store.read_json(Path(search_dir) / SEARCH)
    spec = Experiment.from_dict(search["spec"])
    tune = spec.tune
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials, epochs = trial_tables(search_dir)
    best = pd.DataFrame(search["best"], columns=BEST_COLUMNS)
    found = None
    if tuned_dir and not best.empty:
        runs = tuned_runs(tuned_dir)
        found, margin, configured = verdicts.families(runs, f"test_{spec.headline}", ["cell"], spec.compare["margin"])
        tuned = tuned_table(runs, best, spec.metrics, found[0][2])
        store.write_atomic(out_dir / "verdicts.csv", verdicts.csv_table(found).to_csv(index=False))
    else:
        tuned = pd.DataFrame()
    for name, table in (("trials", trials), ("trial_epochs", epochs), ("best", best), ("tuned", tuned)):
        store.write_atomic(out_dir / f"{name}.csv", table.to_csv(index=False))
    for hp in ("learning_rate", "batch_size"):
        if not trials.empty:
            plot_sensitivity(trials, best, tune, hp, out_dir / f"sensitivity_{hp}.png")

    untried = sorted(set(trials["cell"]) - set(best["cell"])) if not trials.empty else []
    lr = tune.learning_rate
    counts = trials["status"].value_counts() if not trials.empty else pd.Series(dtype=int)
    failed = trials[trials["status"] != "COMPLETED"] if not trials.empty else trials
    workers = trials["worker"].value_counts() if not trials.empty else pd.Series(dtype=int)
    shown = ["project", "trial_id", "status", "worker", "learning_rate", "batch_size", "objective", "best_epoch",
             "epochs_run", "seconds"] + (["cell"] if tune.mode == "joint" else [])
    shown += [c for c in trials if c.startswith("objective_seed_")]  # tune.executions > 1
    how = ("a search per initializer x loss cell" if tune.mode == "per_cell" else
           "initializer and loss as hp.Choice axes of one search")
    budget = (f"{tune.max_trials} trials per search" if tune.tuner != "hyperband" else
              f"hyperband: max_epochs {spec.epochs}, factor {tune.hyperband_factor}, "
              f"{tune.hyperband_iterations} iteration(s)")
    distributed = any(s["role"] == "chief" for s in search["sessions"])
    page = Page(f"{spec.name}: tuning learning rate and batch size")
    page.text(spec.description)
    page.heading("The search")
    page.bullets([
        f"{tune.tuner} search, {tune.mode.replace('_', ' ')} mode ({how}), "
        f"objective {tune.objective} ({tune.direction}imize), {budget}",
        f"learning rate: {lr.min:g} to {lr.max:g}, {lr.sampling} sampling"
        + (f", step {lr.step:g}" if lr.step else "") + f"; batch size: one of {list(tune.batch_size)}",
        f"dataset {label(spec.dataset[0])}, {spec.epochs} epochs per trial, "
        f"model seed{'s' if tune.executions > 1 else ''} {', '.join(map(str, spec.seeds[:tune.executions]))}"
        f"{' (the objective: their mean)' if tune.executions > 1 else ''}, "
        f"oracle seed {search['oracle_seed']}; tuned comparison on seeds {list(spec.seeds)}",
        f"failure limits: a trial is never retried (max_retries_per_trial = 0: its settings and seed are fixed, "
        f"so it would fail the same way); a search stops after {tune.max_consecutive_failed_trials} consecutive "
        "failed trials (max_consecutive_failed_trials)"
        + (", except in distributed sessions, which do not apply it" if distributed else "")
        + ". A trial whose training loss turns NaN or inf is stopped and recorded as failed, and the search goes on.",
        f"trials: {', '.join(f'{n} {s.lower()}' for s, n in counts.items()) or 'none yet'}"
        + (f"; run by {', '.join(f'{w} ({n})' for w, n in workers.items())}" if len(workers) else ""),
    ])
    page.heading("Sessions (resume)")
    page.bullets([_session_line(i, s) for i, s in enumerate(search["sessions"], 1)])
    page.heading("Tuned comparison")
    page.paragraph("Each cell retrained at its own best settings on every seed; test set, mean +- std (n seeds). "
                   "This is the table to quote.")
    page.table(tuned, digits=DIGITS, empty="No cell has a completed trial yet.")
    if untried:
        page.paragraph(f"Not retrained, no completed trial: {', '.join(untried)}.")
    if found is not None:
        verdicts.add_section(page, found, margin, configured, f"test_{spec.headline}", spec.seeds,
                             marked="The tuned comparison's column vs best names")
    page.heading("Best trial per cell")
    page.paragraph(f"By the search objective, {tune.objective}; ties go to the earliest trial.")
    page.table(best, digits=DIGITS)
    page.heading("Sensitivity")
    page.image("sensitivity_learning_rate.png", "objective against learning rate")
    page.image("sensitivity_batch_size.png", "objective against batch size")
    page.heading("Failed trials")
    page.table(failed[["project", "trial_id", "learning_rate", "batch_size", "epochs_run", "reason"]]
               if len(failed) else None, digits=DIGITS, empty="None.")
    page.heading("Every trial")
    page.paragraph("Per-epoch histories are in trial_epochs.csv; TensorBoard: ",
                   Code(store.tensorboard_command(spec.name, out_dir.parent.parent)), ".")
    page.table(trials[shown] if not trials.empty else None, digits=DIGITS)
    page.heading("Environment")
    page.paragraph(", ".join(f"{k} {v}" for k, v in search["environment"].get("libraries", {}).items()))
    page.write(out_dir / "tune")
    return out_dir / "tune.md"


def _session_line(number, session):
    if session["seconds"] is None:
        return f"{number}. interrupted (as {session['role']}); its finished trials were kept"
    resumed = session["resumed"]
    kept = sum(r["kept"] for r in resumed.values())
    rerun = [f"{p} trial {t}" for p, r in resumed.items() for t in r["rerun"]]
    what = "started fresh (--overwrite)" if session["overwrite"] else (
        f"resumed: kept {kept} finished trials" + (f", reran interrupted {', '.join(rerun)} from scratch"
                                                   if rerun else "") if kept or rerun else "started")
    stopped = [f"search {p} stopped early ({r['stopped']})" for p, r in resumed.items() if r.get("stopped")]
    return f"{number}. {what}; {session['seconds']:.0f} s as {session['role']}" + "".join(f"; {s}" for s in stopped)
