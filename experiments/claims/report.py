"""The claims report: a summary table, then per claim its statement, verdict, checks with their
numbers and a plot, written as claims.md / claims.html with claims.csv and checks.csv."""

import math
import textwrap

import pandas as pd

from experiments.claims.evaluate import VERDICTS
from experiments.records import store
from experiments.reporting.plots import pyplot
from experiments.reporting.render import Bold, Code, Link, Page


def short_cells(cells):
    """Cell labels without the parts that all of them share."""
    parts = [c.split(" | ") for c in cells]
    keep = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1] if len(cells) > 1 else []
    return [" / ".join(p[i] for i in keep) or c for p, c in zip(parts, cells, strict=True)]


def plot_claim(title, claim, evaluated, path):
    """A panel per check: each cell's value per seed (dots) and mean, the threshold where the
    check compares one cell with a value, and the effect's interval and verdict in the title."""
    plt = pyplot()
    checks = evaluated["checks"]
    rows, columns = (len(checks) + 3) // 4, min(len(checks), 4)
    fig, panels = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.2 * rows + 0.4), squeeze=False)
    for panel in panels.flat[len(checks):]:
        panel.set_visible(False)
    for panel, check, result in zip(panels.flat, claim.checks, checks, strict=False):
        cells = list(result["values"].columns)
        for x, cell in enumerate(cells):
            values = result["values"][cell]
            panel.scatter([x] * len(values), values, s=18, alpha=0.6, color="tab:blue")
            panel.hlines(values.mean(), x - 0.3, x + 0.3, color="black")
        if len(check.cells) == 1:  # one cell against a value: draw the value (both bounds of "within")
            for bound in (check.value, -check.value) if check.test == "within" else (check.value,):
                panel.axhline(bound, color="tab:red", linestyle="--", linewidth=1)
        panel.set_xticks(range(len(cells)))
        panel.set_xticklabels([textwrap.fill(c, 18) for c in short_cells(cells)], fontsize=7)
        panel.set_ylabel(textwrap.fill(check.metric, 40), fontsize=8)
        effect = f"effect {result['mean']:.3g} [{result['lower']:.3g}, {result['upper']:.3g}]"
        panel.set_title(textwrap.fill(check.name, 45) + f"\n{effect}: {result['verdict']}", fontsize=8)
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
    page.heading(f"{entry['number']}. {claim.statement}")
    page.paragraph(Bold(f"Verdict: {evaluated['verdict']}"),
                   f" ({sum(c['verdict'] == 'supported' for c in evaluated['checks'])} of {len(evaluated['checks'])} "
                   f"checks supported; claim verdict = {claim.combine} checks).")
    page.paragraph(f"Source: {claim.source}")
    page.text(entry["description"])
    page.table(check_rows(entry))
    page.image(f"{name}.png", name)
    page.paragraph(
        f"Experiment {name}: {entry['runs']} runs ({entry['status']}; {entry['engines']}), "
        f"{entry['training_seconds']:.0f} s of training; {entry['trained']} trained by this invocation in "
        f"{entry['seconds']:.0f} s. Report ", Link(f"../{name}/report.md", f"../{name}/report.md"),
        "; TensorBoard: ", Code(store.tensorboard_command(name, entry["output"])), ".")


def check_rows(entry):
    """A row per check of one claim: its rule, cell means, effect and interval, seeds and verdict."""
    rows = []
    for check, result in zip(entry["claim"].checks, entry["evaluated"]["checks"], strict=True):
        cells = list(result["values"].columns)
        means = "; ".join(f"{short}: {_number(result['values'][c].mean())}"
                          for c, short in zip(cells, short_cells(cells), strict=True))
        rows.append({"check": check.name, "rule": result["rule"], "cell means": means,
                     "effect [95% CI]": f"{_number(result['mean'])} [{_number(result['lower'])}, "
                                        f"{_number(result['upper'])}]",
                     "seeds": result["n"], "verdict": result["verdict"]})
    return pd.DataFrame(rows)


def build_claims_report(entries, out_dir, total_seconds):
    """reports/claims/: claims.md and claims.html (the summary table, then a section and a plot
    per claim), claims.csv (a row per claim) and checks.csv (a row per check, with its numbers)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for e in entries:
        title = f"{e['number']}. {e['claim'].statement}"
        plot_claim(title, e["claim"], e["evaluated"], out_dir / f"{e['name']}.png")
    summary = pd.DataFrame([{
        "#": e["number"], "claim": e["claim"].statement, "verdict": e["evaluated"]["verdict"],
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
