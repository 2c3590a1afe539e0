"""Which differences are real: every cell (or every initializer, every loss, pooled over the other
axes) against the best one, paired by seed, with `experiments.stats`' intervals, Holm-corrected
p-values, verdicts and seeds needed. The reports, `compare` and the tuner report use these tables.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import stats
from experiments.records import store
from experiments.records.experiment import load_experiment
from experiments.reporting.tables import AXES, load_tables
from models.metrics import greater_is_better

INDISTINGUISHABLE = ("practically equivalent", "inconclusive")  # from the best: marked in the tables
COLUMNS = ["mean", "n", "difference", "ci_low", "ci_high", "boot_low", "boot_high", "p_holm", "verdict",
           "seeds_needed"]


def seed_values(runs, metric, by):
    """`{group: {seed: value}}` over the runs that finished ok: per value of the `by` columns (a
    tuple) and seed, the mean of `metric` over the group's runs of that seed (other axes pooled);
    a seed where one of the group's runs did not finish ok is left out of that group."""
    measured = pd.to_numeric(runs[metric], errors="coerce") if metric in runs else pd.Series(np.nan, runs.index)
    table = runs.assign(_value=measured, _ok=(runs["status"] == "ok") & np.isfinite(measured))
    values = {}
    for key, part in table.groupby(by, sort=False):
        whole = part.groupby("seed")["_ok"].all()
        ok = part[part["_ok"] & part["seed"].isin(whole[whole].index)]
        values[key if isinstance(key, tuple) else (key,)] = ok.groupby("seed")["_value"].mean().to_dict()
    return values


def margin_of(metric, margins, reference):
    """(margin, configured): `compare.margin` for the metric (keyed by its name without a split
    prefix), or `stats.default_margin` at `reference`, the best group's mean."""
    name = metric.removeprefix("test_").removeprefix("val_")
    if name in (margins or {}):
        return float(margins[name]), True
    return stats.default_margin(metric, reference), False


def ranked(values, metric):
    """The groups of `values` by mean, best first (groups with no finished seed last), and the means."""
    greater = greater_is_better(metric)
    means = {key: float(np.mean(list(v.values()))) if v else math.nan for key, v in values.items()}
    order = sorted(means)  # ties in the mean: in the order of the groups' names, as the ranking
    return sorted(order, key=lambda k: (math.isnan(means[k]), -means[k] if greater else means[k])), means


def against_best(values, metric, margin):
    """Every group of `values` (`seed_values`) against the best by mean, Holm-corrected together:
    a row per group, best first then by mean, with `COLUMNS` (the best's row: its mean and n, and
    the verdict "best")."""
    order, means = ranked(values, metric)
    best, others = order[0], order[1:]
    greater = greater_is_better(metric)
    compared = stats.holm([stats.compare(values[key], values[best], greater, margin) for key in others])
    rows = [{"mean": means[best], "n": len(values[best]), "verdict": "best"}]
    for key, c in zip(others, compared, strict=True):
        rows.append({"mean": means[key], "n": c.n, "difference": c.diff, "ci_low": c.lower, "ci_high": c.upper,
                     "boot_low": c.boot_lower, "boot_high": c.boot_upper, "p_holm": c.p_holm, "verdict": c.verdict,
                     "seeds_needed": c.seeds_needed if np.isfinite(c.seeds_needed) else math.nan})
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(order), columns=COLUMNS)


def families(runs, metric, axes, margins=None):
    """The report's verdict tables: per cell over `axes`, and where the grid has several
    initializers and several losses, per initializer (losses pooled) and per loss (initializers
    pooled); one margin for all, set by the config or by the best cell.

    Returns:
        ([(title, by, table)], margin, configured)
    """
    groups = [("cells", axes)]
    if runs["initializer"].nunique() > 1 and runs["loss"].nunique() > 1:
        groups += [("initializers, losses pooled", ["initializer"]), ("losses, initializers pooled", ["loss"])]
    cells = seed_values(runs, metric, axes)
    order, means = ranked(cells, metric)
    margin, configured = margin_of(metric, margins, means[order[0]])
    tables = [(title, by, against_best(seed_values(runs, metric, by), metric, margin).rename_axis(by).reset_index())
              for title, by in groups]
    return tables, margin, configured


def marked(verdict):
    """A Series of verdicts against the best -> true for the best and those not distinguishable from it."""
    return verdict.isin(("best", *INDISTINGUISHABLE))


SHOWN = {"n": "seeds", "difference": "difference to best", "ci_low": "95% low", "ci_high": "95% high",
         "boot_low": "bootstrap low", "boot_high": "bootstrap high", "p_holm": "p (Holm)", "verdict": "verdict",
         "seeds_needed": "seeds needed"}


def shown(table, metric):
    """A verdict table as the pages show it: `mean` named for the metric, the bootstrap columns
    only when some comparison had enough seeds for them."""
    table = table.drop(columns=[c for c in ("boot_low", "boot_high") if table[c].isna().all()])
    return table.rename(columns={"mean": metric.replace("_", " ", 1), **SHOWN})


def csv_table(found):
    """verdicts.csv: the families of `families` stacked, with a `family` column."""
    return pd.concat([t.assign(family=title) for title, _, t in found], ignore_index=True)


def add_section(page, found, margin, configured, metric, seeds, marked="Marked * in the tables above"):
    """The "Which differences are real" section (`found`, `margin`, `configured`: what `families`
    returns) on a report `Page`; `seeds` the spec's seeds; `marked`: where the tables mark the
    cells not distinguishable from the best."""
    page.heading("Which differences are real")
    if len(seeds) < stats.MIN_PAIRS:
        page.paragraph(f"No verdict is possible with {len(seeds)} seed{'s' if len(seeds) != 1 else ''}: a paired "
                       f"comparison needs at least {stats.MIN_PAIRS} (set seeds to a longer list).")
        return
    cells = found[0][2]
    if not cells["n"].iloc[0]:
        page.paragraph("No cell has a run that finished ok yet: nothing to compare.")
        return
    best = " | ".join(str(cells.iloc[0][a]) for a in found[0][1])
    comparisons = sum(len(t) - 1 for _, _, t in found)
    page.paragraph(
        f"{metric.replace('_', ' ', 1).capitalize()} of each cell against the best, {best} "
        f"({cells.iloc[0]['mean']:.4g}), "
        "paired by seed (a seed's runs share the data split and the mini-batch order): the mean difference "
        f"(cell - best), its {stats.CONFIDENCE:.0%} t-interval (and with {stats.BOOTSTRAP_PAIRS} or more seeds a "
        "paired bootstrap interval), and the paired t-test's p-value, Holm-corrected for the "
        f"{len(cells) - 1} comparisons of each table ({comparisons} in all). Verdict: practically equivalent "
        f"when the interval lies within +-{margin:.4g}, the margin of practical equivalence "
        f"({stats.margin_text(metric, configured)}); better or worse when p (Holm) < {stats.ALPHA:.2g}; "
        "inconclusive otherwise; no verdict with fewer than 3 seeds. Seeds needed: how many seeds would "
        f"separate the two at this difference and spread ({stats.POWER:.0%} power at the level Holm's "
        "correction asks of a table's first comparison, 0.05 over its comparisons; - when no difference was "
        f"seen). Runs that did not finish ok are left out of their seed's pair. {marked}: the best cell and "
        "those not distinguishable from it (practically equivalent or inconclusive).")
    for title, _, table in found:
        page.heading(f"Against the best: {title}", level=3)
        page.table(shown(table, metric), digits=4)


# -- two cells, named on the command line (`init-loss-lab compare`) --------------------------------


def parse_selector(text):
    """`initializer=he_normal,loss=huber` -> {"initializer": "he_normal", "loss": "huber"}."""
    pairs = [part.partition("=") for part in str(text).split(",") if part.strip()]
    if not pairs or any(not key.strip() or not sep or not value.strip() for key, sep, value in pairs):
        raise ValueError(f"a cell is AXIS=VALUE pairs joined by commas, e.g. initializer=he_normal,loss=huber; "
                         f"got {text!r}")
    return {key.strip(): value.strip() for key, _, value in pairs}


def select(runs, selector, name):
    """The runs of the cells `selector` picks (by the runs table's axis labels; a learning rate
    or batch size by its number); a clear error when an axis or a value is unknown."""
    picked = runs
    for axis, wanted in selector.items():
        if axis not in AXES:
            raise ValueError(f"unknown axis {axis!r} in a cell of {name}; valid axes: {', '.join(AXES)}")
        column = picked[axis]
        try:
            match = (pd.to_numeric(column) == float(wanted)) if axis in ("learning_rate", "batch_size") \
                else column.astype(str) == wanted
        except ValueError:
            match = column.astype(str) == wanted
        if not match.any():
            valid = ", ".join(map(str, dict.fromkeys(runs[axis].astype(str))))
            raise ValueError(f"{axis}={wanted} matches no run of {name}"
                             + (" with the other values given" if len(picked) < len(runs) else "")
                             + f"; valid: {valid}")
        picked = picked[match]
    return picked


def compare_cells(runs_a, selector_a, runs_b, selector_b, metric, margins=None, names=("a", "b")):
    """Cell a against cell b (each the cells its selector picks, pooled per seed when several),
    paired by seed. Returns a dict: per side its selector, cells, mean and seeds, and the
    `stats.Comparison` (differences a - b), its margin and where that came from."""
    sides = {}
    for key, runs, selector, name in (("a", runs_a, selector_a, names[0]), ("b", runs_b, selector_b, names[1])):
        picked = select(runs, selector, name)
        if metric not in picked:
            raise ValueError(f"{name} records no {metric}")
        values = seed_values(picked.assign(_all="all"), metric, ["_all"]).get(("all",), {})
        sides[key] = {"experiment": name, "selector": selector, "cells": list(dict.fromkeys(picked["cell"])),
                      "values": values, "data": sorted(set(picked["dataset"].astype(str)))}
    if sides["a"]["data"] != sides["b"]["data"]:  # a seed pairs runs only on the same data and split
        raise ValueError(f"a and b trained on different data ({', '.join(sides['a']['data'])} vs "
                         f"{', '.join(sides['b']['data'])}): their seeds do not pair")
    greater = greater_is_better(metric)
    means = [np.mean(list(s["values"].values())) if s["values"] else math.nan for s in sides.values()]
    best = max(means) if greater else min(means)
    margin, configured = margin_of(metric, margins, best if np.isfinite(best) else math.nan)
    comparison = stats.compare(sides["a"]["values"], sides["b"]["values"], greater, margin)
    return {"metric": metric, "a": sides["a"], "b": sides["b"], "comparison": comparison.as_dict(),
            "margin_source": stats.margin_text(metric, configured)}


def compare_named(output, name, a, b, metric=None, other=None):
    """`compare_cells` for experiment `name` under `output` (cell b from experiment `other` when
    given); `a`, `b` selectors (`parse_selector`); `metric` a recorded metric, read on the test set
    (default the headline), or a numeric column of runs.csv."""
    names = [name, other or name]
    folders = [store.experiment_dir(output, n) for n in names]
    for named, folder in zip(names, folders, strict=True):
        if not (folder / "experiment.json").is_file():
            raise ValueError(f"no experiment {named!r} under {str(Path(output) / 'runs')!r}; run it first")
    spec = load_experiment(folders[0])["spec"]
    runs = [load_tables(f)[0] for f in dict.fromkeys(folders)]
    metric = metric or spec.headline
    column = f"test_{metric}" if f"test_{metric}" in runs[0] else metric
    if column not in runs[0] or runs[0][column].dtype.kind not in "if":
        raise ValueError(f"--metric {metric!r} is not recorded by {name}; valid: {', '.join(['loss', *spec.metrics])} "
                         "(test set), or a numeric column of runs.csv")
    return compare_cells(runs[0], a, runs[-1], b, column, spec.compare["margin"], names)
