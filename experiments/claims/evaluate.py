"""Textbook claims tested as experiments: each claim is an experiment config with a `[claim]`
table whose decision rule is fixed before any run, decided on the statistics over seeds.

A claim has one or more checks. A check names a metric (an expression over the columns of the
runs table, `experiments.expressions`: an allowlisted tree, never `eval`, whose every column is
checked before anything trains), the cells it compares (`plus` minus `minus`, each cell picked by
a selector on the axes), and a test of the per-seed effect against a value:

    effect_s = sum of the plus cells' metric at seed s - sum of the minus cells' metric at seed s

The effect's mean and 95% t-interval over the seeds (`experiments.stats.interval`, the one
implementation of the reports' paired comparisons) decide the check:

    test ">"      supported: interval above `value` and mean >= value + margin
                  not supported: interval entirely <= value + margin (no effect that matters)
    test "<"      the mirror image
    test "within" supported: interval inside (-value, value); not supported: entirely outside

and anything else is inconclusive. A claim is supported when all its checks are (`combine =
"any"`: when any is), not supported when any check is not supported (`any`: when all are), and
inconclusive otherwise.

A run that did not finish ok has no metric values: `fill` says what it counts as (chance
accuracy, or epochs + 1 for a threshold never reached); without `fill` its seed is left out.
Besides the result columns, the metric may use `diverged` and `failed` (1 or 0, for every run),
`first_<metric>` (the epoch-1 value, like `final_<metric>`), and per-layer diagnostics
`diag_init_<quantity>_<layer>` / `diag_end_<quantity>_<layer>` (step 0 and the last step).
"""

import math

import numpy as np

from experiments.spec import expressions
from experiments.stats import CONFIDENCE, interval

VERDICTS = ("supported", "not supported", "inconclusive")


# -- evaluation, from what the runs wrote -------------------------------------------------------


def claim_table(runs, epochs, diagnostics):
    """The runs table a claim's metrics are evaluated on: results of runs that finished ok,
    `diag_init_*` of every run (initialization is measured before anything can go wrong),
    `diverged`/`failed` indicators, `first_<metric>` and per-layer diagnostics columns."""
    table = runs.copy()
    ok = table["status"] == "ok"
    table["diverged"] = (table["status"] == "diverged").astype(float)
    table["failed"] = (table["status"] == "failed").astype(float)
    if not epochs.empty:
        first = epochs[epochs["epoch"] == 1].set_index("run_id")
        columns = [c for c in first if c.startswith(("train_", "val_"))]
        names = {c: "first_" + (c[len("train_"):] if c.startswith("train_") else c) for c in columns}
        table = table.join(first[columns].rename(columns=names), on="run_id")
    if not diagnostics.empty:
        steps = diagnostics.groupby("run_id")["step"].agg(["min", "max"])
        for when, which in (("init", "min"), ("end", "max")):
            at = diagnostics[diagnostics["step"] == diagnostics["run_id"].map(steps[which])]
            name = "diag_" + when + "_" + at["quantity"] + np.where(at["layer"] == "", "", "_" + at["layer"])
            wide = at.assign(column=name).pivot_table(index="run_id", columns="column", values="value")
            table = table.join(wide[[c for c in wide if c not in table]], on="run_id")
    measured = [c for c in table if c.startswith(("final_", "best_", "test_", "train_set_", "diag_end_",
                                                   "epochs_to_", "first_"))
                or c in ("epochs_run", "wall_time_s", "epoch_time_s")]
    table.loc[~ok, measured] = np.nan
    return table


def decide(test, value, margin, mean, lower, upper):
    """A check's verdict from the effect's mean and interval (see the module docstring)."""
    if math.isnan(lower):
        return "inconclusive"
    if test == ">":
        if lower > value and mean >= value + margin:
            return "supported"
        if upper <= value + margin:
            return "not supported"
    elif test == "<":
        if upper < value and mean <= value - margin:
            return "supported"
        if lower >= value - margin:
            return "not supported"
    else:
        if -value < lower and upper < value:
            return "supported"
        if lower >= value or upper <= -value:
            return "not supported"
    return "inconclusive"


def combine(verdicts, how="all"):
    """A claim's verdict from its checks' verdicts."""
    strong, weak = ("supported", "not supported") if how == "all" else ("not supported", "supported")
    if all(v == strong for v in verdicts):
        return strong
    if any(v == weak for v in verdicts):
        return weak
    return "inconclusive"


def evaluate_check(check, table):
    """One check on the claim table: per-cell values per seed, the effect and the verdict."""
    tree = expressions.parse(check.metric)
    # a column no run produced (none got that far) is missing for every run
    present = table.reindex(columns=[*table.columns, *(c for c in expressions.columns(tree) if c not in table)])
    values = table.assign(value=expressions.evaluate(tree, present))
    values = values.pivot_table(index="seed", columns="cell", values="value", dropna=False)
    cells = [cell for _, cell in check.cells]
    values = values.reindex(columns=list(dict.fromkeys(cells)))
    if check.fill is not None:
        values = values.fillna(check.fill)
    values = values.replace([np.inf, -np.inf], np.nan).dropna()
    effect = sum(sign * values[cell] for sign, cell in check.cells)
    mean, lower, upper = interval(effect)
    return {
        "name": check.name, "values": values, "effect": effect, "mean": mean, "lower": lower, "upper": upper,
        "n": len(effect), "verdict": decide(check.test, check.value, check.margin, mean, lower, upper),
        "rule": rule_text(check),
    }


def rule_text(check):
    """The decision rule in words, as the report prints it."""
    plus = " + ".join(f"[{c}]" for s, c in check.cells if s > 0)
    minus = "".join(f" - [{c}]" for s, c in check.cells if s < 0)
    effect = f"{check.metric} of {plus}{minus}"
    if check.test == "within":
        rule = f"|{effect}| < {check.value:g}"
    else:
        rule = f"{effect} {check.test} {check.value:g}"
        if check.margin:
            rule += f" by at least {check.margin:g}"
    missing = f"; a run that did not finish ok counts as {check.fill:g}" if check.fill is not None else ""
    return f"{rule} (per seed, {CONFIDENCE:.0%} t-interval over seeds){missing}"


def evaluate_claim(claim, table):
    """Every check of a claim and the claim's verdict."""
    checks = [evaluate_check(c, table) for c in claim.checks]
    return {"verdict": combine([c["verdict"] for c in checks], claim.combine), "checks": checks}


# -- the claims report ----------------------------------------------------------------------------


