"""The experiment report's plots: learning curves with mean +- std bands, the heatmap of a
metric per cell, and activation and gradient std per layer at initialization. `pyplot` is the
file-only matplotlib every plot of the suite draws with."""

import numpy as np
import pandas as pd

from models.metrics import greater_is_better


def _cell_name(row, axes):
    return " | ".join(str(row[a]) for a in axes)


def pyplot():
    """pyplot on the file-only Agg backend (no display on these machines)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # a `$` in a user's label is text, not TeX
    import matplotlib.pyplot as plt

    return plt


def inch_margins(fig, rows, columns, left=0.7, right=0.2, bottom=0.55, top=0.35, across=0.35, down=0.75):
    """Lay a grid of panels out with margins and gaps in inches (room for tick labels, axis labels
    and titles at any grid size): what `tight_layout` works out by drawing the figure, which costs
    0.3 s for a figure of 12 panels."""
    width, height = fig.get_size_inches()
    panel_width = (width - left - right - (columns - 1) * across) / columns
    panel_height = (height - bottom - top - (rows - 1) * down) / rows
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=across / panel_width, hspace=down / panel_height)


def plain_log(axis, ticks=None):
    """A log axis labelled in plain text (`0.001`, `1e-05`, or the given `ticks`): matplotlib's own
    log labels are TeX (`$\\mathdefault{10^{-3}}$`), which `pyplot` turns off for users' text."""
    import matplotlib.ticker

    if ticks is not None:
        axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(matplotlib.ticker.NullLocator())  # hundreds of minor ticks cost a second to draw


def plot_curves(epochs, axes, metric, path):
    """Validation `metric` per epoch: a panel per loss, a line (mean) and band (+- std) per cell."""
    plt = pyplot()
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


def plot_heatmap(cells, axes, metric, path, marked=()):
    """Mean test `metric` per cell: rows are the non-loss axes, columns the losses; the cells whose
    `marked` is true (the best, and those not distinguishable from it) get a `*` and a frame."""
    plt = pyplot()
    others = [a for a in axes if a != "loss"]
    cells = cells.assign(row=[_cell_name(r, others) for _, r in cells.iterrows()],
                         marked=list(marked) if len(marked) else False)
    grid = cells.pivot_table(index="row", columns="loss", values="mean", sort=False, dropna=False)
    framed = cells.pivot_table(index="row", columns="loss", values="marked", aggfunc="any", sort=False)
    framed = framed.reindex(index=grid.index, columns=grid.columns).fillna(False).astype(bool).to_numpy()
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
        star = " *" if framed[i, j] else ""
        ax.text(j, i, "-" if pd.isna(value) else f"{value:.3f}{star}", ha="center", va="center",
                color="k" if bright else "w", fontsize=8, fontweight="bold" if star else "normal")
        if star:
            ax.add_patch(plt.Rectangle((j - 0.48, i - 0.46), 0.96, 0.92, fill=False, edgecolor="red", linewidth=2))
    fig.colorbar(image, ax=ax)
    low, high = np.nanmin(values), np.nanmax(values)
    ax.set_title(f"{metric}, mean over seeds (colours span {low:.3f} to {high:.3f})"
                 + ("\n* framed: the best and the cells not distinguishable from it" if framed.any() else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_layers(diagnostics, axes, path):
    """At initialization (step 0), mean over seeds: the activation std per layer (one panel; it
    does not depend on the loss) and the back-propagated gradient std per layer (a panel per
    loss), a line per cell: how the signal grows or fades through the network."""
    plt = pyplot()
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
        plain_log(ax.yaxis)
        ax.set_title(f"{quantity}" + (f", {loss}" if loss else ""), fontsize=9)
        ax.grid(alpha=0.3)
    grid[0][0].set_ylabel("at initialization, mean over seeds (0 not shown)", fontsize=8)
    grid[0][0].legend(fontsize=7, loc="upper right")
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.08, top=0.92, wspace=0.25)  # tight_layout costs ~0.5 s here
    fig.savefig(path, dpi=100)
    plt.close(fig)
