"""Textbook claims tested as experiments: each claim is an experiment config with a `[claim]`
table whose decision rule is fixed before any run, decided on the statistics over seeds.

A claim has one or more checks. A check names a metric (an expression over the columns of the
runs table, `experiments.expressions`: an allowlisted tree, never `eval`, whose every column is
checked before anything trains), the cells it compares (`plus` minus `minus`, each cell picked by
a selector on the axes), and a test of the per-seed effect against a value:

    effect_s = sum of the plus cells' metric at seed s - sum of the minus cells' metric at seed s

The effect's mean and 95% t-interval over the seeds decide the check:

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

import difflib
import itertools
import math

import numpy as np
import pandas as pd

from experiments import expressions
from experiments.render import Bold, Code, Link, Page
from initializers.registry import label

CONFIDENCE = 0.95
VERDICTS = ("supported", "not supported", "inconclusive")
TESTS = (">", "<", "within")
CLAIM_KEYS = ("statement", "source", "combine", "checks")
CHECK_KEYS = ("name", "metric", "plus", "minus", "test", "value", "margin", "fill")


# -- the rule, checked before anything trains ---------------------------------------------------


def check_claim(spec, runs, datasets):
    """Validate a spec's `claim` table against its expanded `runs` and the columns its runs will
    have (`claim_columns`); returns it with defaults.

    Raises:
        ValueError: one line naming the bad key or value and what is valid.
    """
    claim = spec["claim"]
    if not isinstance(claim, dict):
        raise ValueError(f"claim must be a table (statement, source, combine, checks), got {claim!r}")
    unknown = [k for k in claim if k not in CLAIM_KEYS]
    if unknown:
        raise ValueError(f"claim has unknown keys {unknown}; valid: {', '.join(CLAIM_KEYS)}")
    claim = {"combine": "all", **claim}
    for key in ("statement", "source"):
        if not isinstance(claim.get(key), str) or not claim[key].strip():
            raise ValueError(f"claim.{key} must be a non-empty string")
    if len(spec["seeds"]) < 3:
        raise ValueError(f"a claim is decided on statistics over seeds: give at least 3 seeds, got {spec['seeds']}")
    if claim["combine"] not in ("all", "any"):
        raise ValueError(f"claim.combine is {claim['combine']!r}; valid: all, any")
    checks = claim.get("checks")
    if not isinstance(checks, list) or not checks:
        raise ValueError("claim.checks must be a non-empty list of [[claim.checks]] tables")
    columns = claim_columns(spec, datasets)
    claim["checks"] = [_check_check(i, c, runs, columns) for i, c in enumerate(checks, 1)]
    return claim


def claim_columns(spec, datasets):
    """Every numeric column of the claim table that the spec's runs will produce: results, status
    indicators, first-epoch values, and per-layer diagnostics of each model's layers."""
    from experiments.diagnostics import DEAD, SATURATED, SUMMARY
    from models.builders import layer_sizes
    from models.losses import head_for

    metrics = ["loss", *spec["metrics"]]
    logged = [*metrics, *(f"val_{m}" for m in metrics)]
    columns = {"diverged", "failed", "epochs_run", "wall_time_s", "epoch_time_s", "seed"}
    columns |= {f"{when}_{m}" for when in ("final", "best", "first") for m in logged}
    columns |= {f"{split}_{m}" for split in ("test", "train_set") for m in metrics}
    columns |= {f"epochs_to_{k}" for k in spec["thresholds"]}
    if spec["diagnostics"]["every"]:
        quantities = {"gradient_ratio"}
        for model, data, loss in itertools.product(spec["model"], datasets, spec["losses"]):
            head = head_for(data.task, loss, data.n_classes, data.n_targets)
            layers = layer_sizes(model, data.input_shape, head.units, head.activation)
            for layer in layers:
                per_layer = {"activation_mean", "activation_std", "gradient_std"}
                if layer.name != "output":
                    per_layer |= {"distinct_units"} | ({"dead_fraction"} if layer.activation in DEAD else set()) | \
                        ({"saturated_fraction"} if layer.activation in SATURATED else set())
                quantities |= {f"{q}_{layer.name}" for q in per_layer} | (per_layer & set(SUMMARY))
        columns |= {f"diag_{when}_{q}" for when in ("init", "end") for q in quantities}
    return columns


def _check_check(i, check, runs, columns):
    where = f"claim check {i}"
    if not isinstance(check, dict):
        raise ValueError(f"{where} must be a table, got {check!r}")
    unknown = [k for k in check if k not in CHECK_KEYS]
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; valid: {', '.join(CHECK_KEYS)}")
    check = {"minus": [], "margin": 0.0, "fill": None, **check}
    if not isinstance(check.get("name"), str) or not check["name"]:
        raise ValueError(f"{where} needs a name")
    try:
        tree = expressions.parse(check.get("metric"))
    except ValueError as e:
        raise ValueError(f"{where} ({check['name']!r}): {e}") from None
    for name in expressions.columns(tree):
        if name not in columns:
            near = difflib.get_close_matches(name, sorted(columns), n=4, cutoff=0.6)
            raise ValueError(f"{where} ({check['name']!r}): metric {check['metric']!r} reads column {name!r}, which "
                             f"these runs will not have; " + (f"did you mean {', '.join(near)}? " if near else "") +
                             f"valid columns: {', '.join(sorted(columns)[:12])}, ... ({len(columns)} in all)")
    if check.get("test") not in TESTS:
        raise ValueError(f"{where}: test is {check.get('test')!r}; valid: {', '.join(TESTS)}")
    for key in ("value", "margin", "fill"):
        value = check[key]
        if key == "value" or value is not None:
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{where}: {key} must be a number, got {value!r}")
    if check["margin"] < 0 or (check["test"] == "within" and check["value"] <= 0):
        raise ValueError(f"{where}: margin must be >= 0 and a 'within' value > 0")
    if not check.get("plus") or not isinstance(check["plus"], list) or not isinstance(check["minus"], list):
        raise ValueError(f"{where}: plus (and minus) must be lists of cell selectors like {{initializer = 'zeros'}}")
    check["cells"] = [(1, cell_of(s, runs, where)) for s in check["plus"]] + \
                     [(-1, cell_of(s, runs, where)) for s in check["minus"]]
    return check


def _matches(wanted, value):
    """A selector value against a run's axis value: a table matches the parameters it names
    (`{activation = "tanh"}`), anything else must equal the value or its label."""
    if isinstance(wanted, dict):
        return isinstance(value, dict) and all(value.get(k) == v for k, v in wanted.items())
    return wanted == value or (isinstance(wanted, str) and wanted == label(value))


def cell_of(selector, runs, where="claim"):
    """The one cell (as the runs label it) that a selector `{axis: value}` picks out of `runs`."""
    if not isinstance(selector, dict) or not selector:
        raise ValueError(f"{where}: a cell selector is a table of axis = value, got {selector!r}")
    axes = [k for k in runs[0].axes if k != "seed"]
    unknown = [k for k in selector if k not in axes]
    if unknown:
        raise ValueError(f"{where}: selector axis {unknown[0]!r} is unknown; valid: {', '.join(axes)}")
    cells = list(dict.fromkeys(r.cell for r in runs if all(_matches(v, r.config[k]) for k, v in selector.items())))
    if len(cells) != 1:
        found = "no cell" if not cells else f"{len(cells)} cells ({'; '.join(cells[:4])})"
        raise ValueError(f"{where}: selector {selector} matches {found}; it must pick exactly one")
    return cells[0]


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


def interval(values):
    """(mean, lower, upper) of the 95% t-interval of the mean; a point when the values agree."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(np.mean(values)) if len(values) else math.nan
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


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
    tree = expressions.parse(check["metric"])
    # a column no run produced (none got that far) is missing for every run
    present = table.reindex(columns=[*table.columns, *(c for c in expressions.columns(tree) if c not in table)])
    values = table.assign(value=expressions.evaluate(tree, present))
    values = values.pivot_table(index="seed", columns="cell", values="value", dropna=False)
    cells = [cell for _, cell in check["cells"]]
    values = values.reindex(columns=list(dict.fromkeys(cells)))
    if check["fill"] is not None:
        values = values.fillna(check["fill"])
    values = values.replace([np.inf, -np.inf], np.nan).dropna()
    effect = sum(sign * values[cell] for sign, cell in check["cells"])
    mean, lower, upper = interval(effect)
    return {
        "name": check["name"], "values": values, "effect": effect, "mean": mean, "lower": lower, "upper": upper,
        "n": len(effect), "verdict": decide(check["test"], check["value"], check["margin"], mean, lower, upper),
        "rule": rule_text(check),
    }


def rule_text(check):
    """The decision rule in words, as the report prints it."""
    plus = " + ".join(f"[{c}]" for s, c in check["cells"] if s > 0)
    minus = "".join(f" - [{c}]" for s, c in check["cells"] if s < 0)
    effect = f"{check['metric']} of {plus}{minus}"
    if check["test"] == "within":
        rule = f"|{effect}| < {check['value']:g}"
    else:
        rule = f"{effect} {check['test']} {check['value']:g}"
        if check["margin"]:
            rule += f" by at least {check['margin']:g}"
    missing = f"; a run that did not finish ok counts as {check['fill']:g}" if check["fill"] is not None else ""
    return f"{rule} (per seed, {CONFIDENCE:.0%} t-interval over seeds){missing}"


def evaluate_claim(claim, table):
    """Every check of a claim and the claim's verdict."""
    checks = [evaluate_check(c, table) for c in claim["checks"]]
    return {"verdict": combine([c["verdict"] for c in checks], claim["combine"]), "checks": checks}


# -- the claims report ----------------------------------------------------------------------------


def short_cells(cells):
    """Cell labels without the parts that all of them share."""
    parts = [c.split(" | ") for c in cells]
    keep = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1] if len(cells) > 1 else []
    return [" / ".join(p[i] for i in keep) or c for p, c in zip(parts, cells, strict=True)]


def plot_claim(title, claim, evaluated, path):
    """A panel per check: each cell's value per seed (dots) and mean, the threshold where the
    check compares one cell with a value, and the effect's interval and verdict in the title."""
    import textwrap

    from experiments.report import _pyplot

    plt = _pyplot()
    checks = evaluated["checks"]
    rows, columns = (len(checks) + 3) // 4, min(len(checks), 4)
    fig, panels = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.2 * rows + 0.4), squeeze=False)
    for panel in panels.flat[len(checks):]:
        panel.set_visible(False)
    for panel, check, result in zip(panels.flat, claim["checks"], checks, strict=False):
        cells = list(result["values"].columns)
        for x, cell in enumerate(cells):
            values = result["values"][cell]
            panel.scatter([x] * len(values), values, s=18, alpha=0.6, color="tab:blue")
            panel.hlines(values.mean(), x - 0.3, x + 0.3, color="black")
        if len(check["cells"]) == 1:  # one cell against a value: draw the value (both bounds of "within")
            for bound in (check["value"], -check["value"]) if check["test"] == "within" else (check["value"],):
                panel.axhline(bound, color="tab:red", linestyle="--", linewidth=1)
        panel.set_xticks(range(len(cells)))
        panel.set_xticklabels([textwrap.fill(c, 18) for c in short_cells(cells)], fontsize=7)
        panel.set_ylabel(textwrap.fill(check["metric"], 40), fontsize=8)
        effect = f"effect {result['mean']:.3g} [{result['lower']:.3g}, {result['upper']:.3g}]"
        panel.set_title(textwrap.fill(check["name"], 45) + f"\n{effect}: {result['verdict']}", fontsize=8)
        panel.grid(alpha=0.3)
    fig.suptitle(textwrap.fill(title, 120), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _number(value):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def claim_section(page, entry):
    """One claim on the claims page: statement, verdict, setup, checks with their numbers, plot, links."""
    name, claim, evaluated = entry["name"], entry["claim"], entry["evaluated"]
    page.heading(f"{entry['number']}. {claim['statement']}")
    page.paragraph(Bold(f"Verdict: {evaluated['verdict']}"),
                   f" ({sum(c['verdict'] == 'supported' for c in evaluated['checks'])} of {len(evaluated['checks'])} "
                   f"checks supported; claim verdict = {claim['combine']} checks).")
    page.paragraph(f"Source: {claim['source']}")
    page.text(entry["description"])
    page.table(check_rows(entry))
    page.image(f"{name}.png", name)
    page.paragraph(
        f"Experiment {name}: {entry['runs']} runs ({entry['status']}; {entry['engines']}), "
        f"{entry['training_seconds']:.0f} s of training; {entry['trained']} trained by this invocation in "
        f"{entry['seconds']:.0f} s. Report ", Link(f"../{name}/report.md", f"../{name}/report.md"),
        "; TensorBoard: ", Code(f"make tensorboard EXPERIMENT={name}"), ".")


def check_rows(entry):
    """A row per check of one claim: its rule, cell means, effect and interval, seeds and verdict."""
    rows = []
    for check, result in zip(entry["claim"]["checks"], entry["evaluated"]["checks"], strict=True):
        cells = list(result["values"].columns)
        means = "; ".join(f"{short}: {_number(result['values'][c].mean())}"
                          for c, short in zip(cells, short_cells(cells), strict=True))
        rows.append({"check": check["name"], "rule": result["rule"], "cell means": means,
                     "effect [95% CI]": f"{_number(result['mean'])} [{_number(result['lower'])}, "
                                        f"{_number(result['upper'])}]",
                     "seeds": result["n"], "verdict": result["verdict"]})
    return pd.DataFrame(rows)


def build_claims_report(entries, out_dir, total_seconds):
    """reports/claims/: claims.md and claims.html (the summary table, then a section and a plot
    per claim), claims.csv (a row per claim) and checks.csv (a row per check, with its numbers)."""
    from experiments import store

    out_dir.mkdir(parents=True, exist_ok=True)
    for e in entries:
        title = f"{e['number']}. {e['claim']['statement']}"
        plot_claim(title, e["claim"], e["evaluated"], out_dir / f"{e['name']}.png")
    summary = pd.DataFrame([{
        "#": e["number"], "claim": e["claim"]["statement"], "verdict": e["evaluated"]["verdict"],
        "checks supported": f"{sum(c['verdict'] == 'supported' for c in e['evaluated']['checks'])}"
                            f"/{len(e['evaluated']['checks'])}",
        "experiment": e["name"], "runs": e["runs"], "training s": round(e["training_seconds"]),
    } for e in entries])
    counts = summary["verdict"].value_counts()
    page = Page("Textbook claims, tested")
    page.paragraph(
        "Each claim is an experiment config under ", Code("experiments/configs/claims/"), " whose decision rule was "
        "fixed before it ran; verdicts are decided on the per-seed effect's mean and 95% t-interval "
        "(supported: the interval clears the threshold; not supported: the interval rules out an effect "
        "that matters; inconclusive: neither).")
    page.paragraph(
        f"Verdicts: {', '.join(f'{counts.get(v, 0)} {v}' for v in VERDICTS)}. "
        f"This invocation trained {sum(e['trained'] for e in entries)} runs and took {total_seconds:.0f} s "
        "in all; ", Code("training s"), " is the time the runs on disk took to train (the sum of their wall_time_s).")
    page.table(summary)
    for e in entries:
        claim_section(page, e)
    page.write(out_dir / "claims")
    store.write_atomic(out_dir / "claims.csv", summary.to_csv(index=False))
    checks = pd.DataFrame([{"#": e["number"], "experiment": e["name"], "check": r["name"], "rule": r["rule"],
                            "mean": r["mean"], "lower": r["lower"], "upper": r["upper"], "seeds": r["n"],
                            "verdict": r["verdict"]} for e in entries for r in e["evaluated"]["checks"]])
    store.write_atomic(out_dir / "checks.csv", checks.to_csv(index=False))
    return out_dir / "claims.md"
