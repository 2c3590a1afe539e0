"""Tidy tables read from the run folders: one row per run, one row per run x epoch, and the
per-cell summary (mean +- std over seeds). Reads only what runs wrote to disk."""

from pathlib import Path

import pandas as pd

from experiments.records.experiment import load_experiment
from experiments.records.rundir import DIAGNOSTICS, HISTORY, read_result
from models.metrics import greater_is_better

AXES = ("dataset", "model", "initializer", "loss", "optimizer", "learning_rate", "batch_size")
STATUSES = ("ok", "diverged", "failed", "unfinished")  # a run's status, or not finished yet
LISTED = ("run_id", "cell", *AXES, "seed", "engine")  # what experiment.json lists of each run


def load_tables(exp_dir):
    """(runs, epochs): a row per run of the experiment's grid, and a row per run x epoch.

    A run with no whole result yet (`rundir.read_result`) appears with status `unfinished`. In
    `epochs`, training metrics are `train_<metric>` and validation metrics `val_<metric>`.
    """
    exp_dir = Path(exp_dir)
    experiment = load_experiment(exp_dir)
    rows, histories = [], []
    for listed in experiment["runs"]:
        run_dir = exp_dir / listed["run_id"]
        result, _ = read_result(run_dir)
        if result is not None:
            result.pop("libraries", None)
            rows.append({**listed, **result})
        else:
            rows.append({**listed, "status": "unfinished"})
        if result is not None and result["epochs_run"]:
            history = pd.read_csv(run_dir / HISTORY)
            # `loss` is also an axis (the loss function): training metrics get a train_ prefix
            history = history.rename(columns={c: f"train_{c}" for c in history if c != "epoch" and
                                              not c.startswith("val_")})
            histories.append(history.assign(**listed)[[*listed, *history.columns]])
    runs = pd.DataFrame(rows)
    epochs = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame()
    return runs, epochs


def load_diagnostics(exp_dir, runs):
    """A row per run x diagnostics step x quantity x layer (`experiments.diagnostics`), for the runs
    of `runs` (the `load_tables` table) whose record is whole."""
    exp_dir = Path(exp_dir)
    listed = [c for c in runs if c in LISTED]
    frames = [pd.read_csv(exp_dir / r["run_id"] / DIAGNOSTICS, keep_default_na=False, na_values=["nan"]).assign(**r)
              for r in runs.loc[runs["status"] != "unfinished", listed].to_dict("records")
              if (exp_dir / r["run_id"] / DIAGNOSTICS).is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def cell_axes(runs):
    """The axes that vary between cells (at least initializer and loss)."""
    return [a for a in AXES if a in runs and (a in ("initializer", "loss") or runs[a].nunique() > 1)]


def summarize_cells(runs, metric):
    """Per cell: mean, std and n of `metric` over the seeds that finished ok, the status counts,
    and per threshold how many of those seeds reached it (`reached_<metric>`) and their mean epochs
    to reach it (`mean_epochs_to_<metric>`, empty when none did)."""
    axes = cell_axes(runs)
    ok = runs[runs["status"] == "ok"]
    values = ok[metric] if metric in ok else pd.Series(dtype=float, index=ok.index)
    stats = values.groupby([ok[a] for a in axes]).agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    counts = pd.crosstab([runs[a] for a in axes], runs["status"]).reindex(columns=STATUSES, fill_value=0)
    table = stats.join(counts, how="right")
    # runs that never reach a threshold count as missing: the mean is over those that did, and
    # reached_<metric> says how many that is
    reach = [c for c in runs if c.startswith("epochs_to_")]
    if reach:
        grouped = ok.groupby(axes)[reach]
        table = table.join(grouped.mean().add_prefix("mean_"), how="left")
        table = table.join(grouped.count().rename(columns=lambda c: "reached_" + c[len("epochs_to_"):]), how="left")
        for c in reach:
            table["reached_" + c[len("epochs_to_"):]] = table["reached_" + c[len("epochs_to_"):]].fillna(0).astype(int)
    table["n"] = table["n"].fillna(0).astype(int)
    ascending = not greater_is_better(metric)
    # stable: ties in the mean stay in the order of the cells' names
    return table.reset_index().sort_values("mean", ascending=ascending, na_position="last",
                                           kind="stable").reset_index(drop=True)


def cell_table(runs, metric):
    """cells.csv: `summarize_cells` with each cell's `result` as the report prints it."""
    cells = summarize_cells(runs, metric)
    cells["result"] = [format_cell(r["mean"], r["std"], r["n"]) for _, r in cells.iterrows()]
    return cells


def format_cell(mean, std, n):
    """`0.962 +- 0.004 (3)`; `0.962 (1)` for one seed (no spread to show); `-` when none finished."""
    if n == 0 or pd.isna(mean):
        return "-"
    if n == 1:
        return f"{mean:.3f} (1)"
    return f"{mean:.3f} +- {0.0 if pd.isna(std) else std:.3f} ({n})"


def format_reached(mean_epochs, reached, finished):
    """Epochs to a threshold in words: `4.5 (2 of 3 seeds)`, or `never (0 of 3 seeds)`."""
    if not reached:
        return f"never (0 of {finished} seeds)"
    return f"{mean_epochs:.1f} ({reached} of {finished} seeds)"
