"""The experiment report: tables as CSV, a Markdown (and HTML) page, learning curves, a heatmap
and per-layer diagnostics.

It reads only what the runs wrote to disk (`results.load_tables`), so `make report` can rebuild
it at any time, even while a grid is still running.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from experiments import store
from experiments.diagnostics import SATURATION_TEXT
from experiments.render import Link, Page
from experiments.results import (
    cell_axes,
    format_cell,
    load_diagnostics,
    load_experiment,
    load_tables,
    summarize_cells,
)
from initializers.registry import label
from models.losses import greater_is_better


def _cell_name(row, axes):
    return " | ".join(str(row[a]) for a in axes)


def _pyplot():
    """pyplot on the file-only Agg backend (no display on these machines)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # a `$` in a user's label is text, not TeX
    import matplotlib.pyplot as plt

    return plt


def _plot_curves(epochs, axes, metric, path):
    """Validation `metric` per epoch: a panel per loss, a line (mean) and band (+- std) per cell."""
    plt = _pyplot()
    losses = list(dict.fromkeys(epochs["loss"]))
    others = [a for a in axes if a != "loss"]
    fig, panels = plt.subplots(1, len(losses), figsize=(5 * len(losses), 4), squeeze=False, sharey=True)
    for panel, loss in zip(panels[0], losses, strict=True):
        part = epochs[epochs["loss"] == loss]
        for key, cell in part.groupby(others, sort=False):
            stats = cell.groupby("epoch")[metric].agg(["mean", "std"]).fillna({"std": 0.0})
            name = " | ".join(map(str, key if isinstance(key, tuple) else (key,)))
            line, = panel.plot(stats.index, stats["mean"], label=name)
            panel.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                               color=line.get_color(), alpha=0.2)
        panel.set_title(loss)
        panel.set_xlabel("epoch")
        panel.xaxis.get_major_locator().set_params(integer=True)
        panel.grid(alpha=0.3)
    panels[0][0].set_ylabel(f"{metric} (mean +- std over seeds)")
    panels[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_heatmap(cells, axes, metric, path):
    """Mean test `metric` per cell: rows are the non-loss axes, columns the losses."""
    plt = _pyplot()
    others = [a for a in axes if a != "loss"]
    grid = cells.assign(row=[_cell_name(r, others) for _, r in cells.iterrows()]).pivot_table(
        index="row", columns="loss", values="mean", sort=False, dropna=False)
    label_width = 0.07 * max(len(str(r)) for r in grid.index)  # inches for the row labels
    fig, ax = plt.subplots(figsize=(2.2 + label_width + 2.0 * grid.shape[1], 1.2 + 0.5 * grid.shape[0]))
    values = grid.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="viridis" if greater_is_better(metric) else "viridis_r", aspect="auto")
    middle = (pd.Series(values.ravel()).min() + pd.Series(values.ravel()).max()) / 2
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=20, ha="right")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    for (i, j), value in pd.DataFrame(values).stack(future_stack=True).items():
        # dark text on the bright end of the colour map
        bright = (value > middle) == greater_is_better(metric)
        ax.text(j, i, "-" if pd.isna(value) else f"{value:.3f}", ha="center", va="center",
                color="k" if bright else "w", fontsize=8)
    fig.colorbar(image, ax=ax)
    ax.set_title(f"{metric}, mean over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_layers(diagnostics, axes, path):
    """At initialization (step 0), mean over seeds: the activation std per layer (one panel; it
    does not depend on the loss) and the back-propagated gradient std per layer (a panel per
    loss), a line per cell: how the signal grows or fades through the network."""
    plt = _pyplot()
    first = diagnostics[diagnostics["step"] == 0]
    others = [a for a in axes if a != "loss"]
    losses = list(dict.fromkeys(first["loss"]))
    panels = [("activation_std", None)] + [("gradient_std", loss) for loss in losses]
    fig, grid = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8), squeeze=False)
    for ax, (quantity, loss) in zip(grid[0], panels, strict=True):
        part = first[(first["quantity"] == quantity) & ((first["loss"] == loss) if loss else True)]
        layers = list(dict.fromkeys(part["layer"]))
        means = part.groupby([*others, "layer"], sort=False)["value"].mean()
        for key, values in means.groupby(level=others, sort=False):
            values = values.droplevel(others).reindex(layers)
            ax.plot(layers, values.to_numpy(), marker="o", label=" | ".join(map(str, np.atleast_1d(key))))
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(plt.NullLocator())  # hundreds of minor ticks cost a second to draw
        ax.set_title(f"{quantity}" + (f", {loss}" if loss else ""), fontsize=9)
        ax.grid(alpha=0.3)
    grid[0][0].set_ylabel("at initialization, mean over seeds (0 not shown)", fontsize=8)
    grid[0][0].legend(fontsize=7, loc="upper right")
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.08, top=0.92, wspace=0.25)  # tight_layout costs ~0.5 s here
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _diagnostics_table(runs, axes):
    """Per cell, the mean over seeds of each diag_init_* / diag_end_* figure, side by side."""
    columns = [c for c in runs if c.startswith("diag_")]
    table = runs.groupby(axes, sort=False)[columns].mean()
    quantities = dict.fromkeys(c.split("_", 2)[2] for c in columns)
    names = {f"diag_{when}_{q}": f"{q} {when}" for q in quantities for when in ("init", "end")}
    return table[[c for c in names if c in table]].rename(columns=names).reset_index()


def _as_list(value):
    return value if isinstance(value, list) else [value]  # older records hold single values


def _listed(value):
    return ", ".join(map(label, _as_list(value)))


def build_report(exp_dir, out_dir, tables=None):
    """Write runs.csv, epochs.csv, cells.csv, curves.png, heatmap.png, report.md and report.html
    (and diagnostics.csv, layers.png); `tables` is `load_tables(exp_dir)` if already read.

    Returns:
        the path of report.md.
    """
    experiment = load_experiment(exp_dir)
    spec, env = experiment["spec"], experiment["environment"]
    runs, epochs = load_tables(exp_dir) if tables is None else tables
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    headline = spec["metrics"][0]
    test_metric = f"test_{headline}"
    axes = cell_axes(runs)
    cells = summarize_cells(runs, test_metric)
    cells["result"] = [format_cell(r["mean"], r["std"], r["n"]) for _, r in cells.iterrows()]

    store.write_atomic(out_dir / "runs.csv", runs.to_csv(index=False))
    store.write_atomic(out_dir / "epochs.csv", epochs.to_csv(index=False))
    store.write_atomic(out_dir / "cells.csv", cells.to_csv(index=False))
    has_curves = not epochs.empty and f"val_{headline}" in epochs
    if has_curves:
        _plot_curves(epochs, axes, f"val_{headline}", out_dir / "curves.png")
    if cells["n"].sum():
        _plot_heatmap(cells, axes, test_metric, out_dir / "heatmap.png")
    diagnostics = load_diagnostics(exp_dir, runs)
    if not diagnostics.empty:
        store.write_atomic(out_dir / "diagnostics.csv", diagnostics.to_csv(index=False))
        _plot_layers(diagnostics, axes, out_dir / "layers.png")

    others = [a for a in axes if a != "loss"]
    pivot = cells.pivot_table(index=others, columns="loss", values="result", aggfunc="first", sort=False)
    pivot = pivot.reset_index()
    pivot.columns.name = None
    ranking = cells.drop(columns=["ok", "result"])
    bad = runs[runs["status"].isin(["diverged", "failed"])]
    datasets = experiment.get("datasets") or [experiment["dataset"]]  # one dataset in older records
    engines = runs["engine"].value_counts() if "engine" in runs else pd.Series({spec["engine"]: len(runs)})
    page = Page(spec["name"])
    page.text(spec.get("description", ""))
    page.heading("Setup")
    page.bullets([
        *[(f"dataset: {label(d)} ({summary['task']}, {summary['n_train']} train / {summary['n_val']} validation / "
           f"{summary['n_test']} test, inputs {summary['input_shape']}, split seed {d.get('split_seed', 0)})",
           summary["notes"]) for d, summary in zip(_as_list(spec["dataset"]), datasets, strict=True)],
        f"model: {_listed(spec['model'])}; bias initializer {label(spec['bias_initializer'])}",
        f"optimizer: {_listed(spec['optimizer'])}; learning rate {spec['learning_rate']}; "
        f"batch size {spec['batch_size']}; epochs {spec['epochs']}; "
        f"engine {', '.join(f'{e} ({n} runs)' for e, n in engines.items())}",
        f"early stopping: {spec['early_stopping'] if spec['early_stopping']['patience'] else 'off'}",
        f"seeds: {spec['seeds']}",
        f"runs: {len(runs)} ({', '.join(f'{n} {s}' for s, n in runs['status'].value_counts().items())})",
    ])
    page.heading(f"Test {headline}: mean +- std (n seeds that finished)")
    page.table(pivot)
    page.heading("Ranking")
    page.table(ranking)
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
        f"libraries: {', '.join(f'{k} {v}' for k, v in env['libraries'].items())}",
        f"commit: {env['commit'] or 'unknown'}",
    ])
    page.paragraph("Tables: ", Link("runs.csv", "runs.csv"), " (one row per run), ", Link("epochs.csv", "epochs.csv"),
                   " (one row per run x epoch), ", Link("cells.csv", "cells.csv"), " (one row per cell).")
    page.write(out_dir / "report")
    return out_dir / "report.md"
