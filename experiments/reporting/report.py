"""The experiment report: tables as CSV, a Markdown (and HTML) page, learning curves, a heatmap
and per-layer diagnostics.

It reads only what the runs wrote to disk (`results.load_tables`), so `make report` can rebuild
it at any time, even while a grid is still running.
"""

from pathlib import Path

import pandas as pd

from experiments.records import store
from experiments.reporting import plots, verdicts
from experiments.reporting.render import Link, Page
from experiments.reporting.tables import (
    cell_axes,
    cell_table,
    format_reached,
    load_diagnostics,
    load_experiment,
    load_tables,
)
from experiments.spec.diagnostics import SATURATION_TEXT
from initializers.registry import label


def _diagnostics_table(runs, axes):
    """Per cell, the mean over seeds of each diag_init_* / diag_end_* figure, side by side."""
    columns = [c for c in runs if c.startswith("diag_")]
    table = runs.groupby(axes, sort=False)[columns].mean()
    quantities = dict.fromkeys(c.split("_", 2)[2] for c in columns)
    names = {f"diag_{when}_{q}": f"{q} {when}" for q in quantities for when in ("init", "end")}
    return table[[c for c in names if c in table]].rename(columns=names).reset_index()


def _ranking(cells):
    """The cells table as the report shows it: epochs to each threshold in words (how many seeds
    reached it, `never` when none did) instead of the mean and count columns."""
    ranking = cells.drop(columns=["result"])
    for column in [c for c in cells if c.startswith("reached_")]:
        metric = column[len("reached_"):]
        ranking[f"epochs to {metric}"] = [
            format_reached(row[f"mean_epochs_to_{metric}"], row[column], row["ok"]) for _, row in cells.iterrows()]
        ranking = ranking.drop(columns=[column, f"mean_epochs_to_{metric}"])
    return ranking.drop(columns=["ok"])


def _as_list(value):
    return value if isinstance(value, list | tuple) else [value]  # older records hold single values


def _listed(value):
    return ", ".join(map(label, _as_list(value)))


def _pivot(cells, others, marked=()):
    """The cells' results as a table: a row per value of the other axes, a column per loss; a
    result ends in ` *` where its row's `marked` is true."""
    cells = cells.assign(result=[r + " *" if m else r for r, m in zip(cells["result"], marked, strict=True)]
                         if len(marked) else cells["result"])
    pivot = cells.pivot_table(index=others, columns="loss", values="result", aggfunc="first", sort=False)
    pivot = pivot.reset_index()
    pivot.columns.name = None
    return pivot


def build_report(exp_dir, out_dir, tables=None):
    """Write runs.csv, epochs.csv, cells.csv, verdicts.csv (.md, .html), curves.png, heatmap.png,
    report.md and report.html (and diagnostics.csv, layers.png); `tables` is `load_tables(exp_dir)`
    if already read.

    Returns:
        the path of report.md.
    """
    experiment = load_experiment(exp_dir)
    spec, env = experiment["spec"], experiment["environment"]
    runs, epochs = load_tables(exp_dir) if tables is None else tables
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    headline = spec.headline
    test_metric = f"test_{headline}"
    axes = cell_axes(runs)
    cells = cell_table(runs, test_metric)
    found, margin, configured = verdicts.families(runs, test_metric, axes, spec.compare["margin"])
    versus = cells[axes].merge(found[0][2][[*axes, "verdict"]], on=axes, how="left")
    cells["vs_best"] = versus["verdict"].to_numpy()  # against the best cell
    marked = verdicts.marked(cells["vs_best"]) & (len(spec.seeds) >= 3)

    store.write_atomic(out_dir / "runs.csv", runs.to_csv(index=False))
    store.write_atomic(out_dir / "verdicts.csv", verdicts.csv_table(found).to_csv(index=False))
    store.write_atomic(out_dir / "epochs.csv", epochs.to_csv(index=False))
    store.write_atomic(out_dir / "cells.csv", cells.to_csv(index=False))
    has_curves = not epochs.empty and f"val_{headline}" in epochs
    if has_curves:
        plots.plot_curves(epochs, axes, f"val_{headline}", out_dir / "curves.png")
    if cells["n"].sum():
        plots.plot_heatmap(cells, axes, test_metric, out_dir / "heatmap.png", marked)
    diagnostics = load_diagnostics(exp_dir, runs)
    if not diagnostics.empty:
        store.write_atomic(out_dir / "diagnostics.csv", diagnostics.to_csv(index=False))
        plots.plot_layers(diagnostics, axes, out_dir / "layers.png")

    others = [a for a in axes if a != "loss"]
    pivot = _pivot(cells, others, marked)
    raw = f"test_{headline}_raw"  # a regression error in the targets' own units
    raw_pivot = _pivot(cell_table(runs, raw), others) if raw in runs else None
    ranking = _ranking(cells)
    bad = runs[runs["status"].isin(["diverged", "failed"])]
    datasets = experiment.get("datasets") or [experiment["dataset"]]  # one dataset in older records
    engines = runs["engine"].value_counts() if "engine" in runs else pd.Series({spec.engine: len(runs)})
    page = Page(spec.name)
    page.text(spec.description)
    page.heading("Setup")
    page.bullets([
        *[(f"dataset: {label(d)} ({summary['task']}, {summary['n_train']} train / {summary['n_val']} validation / "
           f"{summary['n_test']} test, inputs {summary['input_shape']}, split seed {d.get('split_seed', 0)})",
           summary["notes"]) for d, summary in zip(_as_list(spec.dataset), datasets, strict=True)],
        f"model: {_listed(spec.model)}; bias initializer {label(spec.bias_initializer)}",
        f"optimizer: {_listed(spec.optimizer)}; learning rate {list(spec.learning_rate)}; "
        f"batch size {list(spec.batch_size)}; epochs {spec.epochs}; "
        f"engine {', '.join(f'{e} ({n} runs)' for e, n in engines.items())}",
        f"early stopping: {spec.early_stopping.as_dict() if spec.early_stopping.patience else 'off'}",
        f"seeds: {list(spec.seeds)}",
        f"runs: {len(runs)} ({', '.join(f'{n} {s}' for s, n in runs['status'].value_counts().items())})",
        *[f"your own {kind} {name}: {source['reference']} (sha256 {str(source['sha256'])[:12]})"
          for kind, named in spec.parts.items() for name, source in named.items()],
    ])
    page.heading(f"Test {headline}: mean +- std (n seeds that finished)")
    page.table(pivot)
    if marked.any():
        page.paragraph("* the best cell and the cells not distinguishable from it (see Which differences are real).")
    if raw_pivot is not None:
        page.heading(f"Test {headline}_raw: in the targets' own units")
        page.table(raw_pivot)
    page.heading("Ranking")
    page.table(ranking)
    verdicts.add_section(page, found, margin, configured, test_metric, spec.seeds)
    alone = Page(f"{spec.name}: which differences are real")  # also TensorBoard's text at the experiment root
    verdicts.add_section(alone, found, margin, configured, test_metric, spec.seeds)
    alone.write(out_dir / "verdicts")
    if not bad.empty:
        page.heading("Diverged and failed runs")
        page.table(bad[["run_id", "status", "epochs_run", "reason"]])
    if has_curves:
        page.heading("Learning curves")
        page.paragraph(f"Validation {headline} per epoch, mean +- std over seeds.")
        page.image("curves.png", "learning curves")
    if cells["n"].sum():
        page.heading("Heatmap")
        page.image("heatmap.png", f"heatmap of test {headline}")
    if not diagnostics.empty:
        page.heading("Diagnostics")
        page.paragraph(
            "Mean over seeds, at initialization and at the last diagnostics step: distinct_units is the "
            "fewest different units of any hidden layer (1 = every unit computes the same thing); "
            "gradient_ratio the back-propagated gradient's std at the first layer over the output layer's "
            "(<< 1 vanishing, >> 1 exploding); dead_fraction (ReLU) and saturated_fraction (sigmoid, tanh) "
            "the mean share of such hidden units (saturated: " + SATURATION_TEXT + "). Per layer and step: ",
            Link("diagnostics.csv", "diagnostics.csv"), ", and TensorBoard.")
        page.table(_diagnostics_table(runs, axes), digits=3)
        page.image("layers.png", "activation and gradient std per layer at initialization")
    page.heading("Environment")
    page.bullets([
        f"python {env['python']} on {env['platform']}; CPU {env['cpu']} ({env['cpu_count']} cores)",
        *([f"devices: {', '.join(env['devices'])}"] if "devices" in env else []),  # older records lack them
        f"libraries: {', '.join(f'{k} {v}' for k, v in env['libraries'].items())}",
        f"commit: {env['commit'] or 'unknown'}",
    ])
    page.paragraph("Tables: ", Link("runs.csv", "runs.csv"), " (one row per run), ", Link("epochs.csv", "epochs.csv"),
                   " (one row per run x epoch), ", Link("cells.csv", "cells.csv"), " (one row per cell).")
    page.write(out_dir / "report")
    return out_dir / "report.md"
