"""The `claims` command's procedure: validate every claim config first, then run each claim's
experiment, report it, decide its claim, and write the claims report."""

import time

from experiments.claims.evaluate import claim_table, evaluate_claim
from experiments.claims.report import build_claims_report
from experiments.records import store
from experiments.reporting.tables import load_diagnostics, load_tables
from experiments.runner import report_experiment, run_experiment
from experiments.spec import apply_overrides, load_config, locate_config, validate


def run_claims(paths, assignments=(), output=".", overwrite=False, progress=True):
    """Run the claim configs at `paths` (each with the `--set` `assignments`), printing a line per
    claim; returns the path of claims.md.

    Raises:
        ValueError: a config that is invalid or has no `[claim]` table (before anything trains).
    """
    loaded = []
    for path in paths:
        spec, datasets = validate(apply_overrides(load_config(path), assignments), base=locate_config(path).parent)
        if spec.claim is None:
            raise ValueError(f"config {str(path)!r} has no [claim] table; it is an experiment, not a claim")
        loaded.append((spec, datasets))
    entries, started = [], time.perf_counter()
    for number, (spec, datasets) in enumerate(loaded, 1):
        began = time.perf_counter()
        exp_dir, trained, _ = run_experiment(spec, datasets, output, overwrite, progress=progress)
        seconds = time.perf_counter() - began
        runs, epochs = tables = load_tables(exp_dir)
        report_experiment(exp_dir, output, spec.name, tables)
        evaluated = evaluate_claim(spec.claim, claim_table(runs, epochs, load_diagnostics(exp_dir, runs)))
        entries.append({
            "number": number, "name": spec.name, "output": output, "claim": spec.claim, "description": spec.description,
            "evaluated": evaluated, "runs": len(runs), "trained": trained, "seconds": seconds,
            "training_seconds": runs["wall_time_s"].sum() if "wall_time_s" in runs else 0.0,
            "status": ", ".join(f"{n} {s}" for s, n in runs["status"].value_counts().items()),
            "engines": ", ".join(f"{e} engine: {n} runs" for e, n in runs["engine"].value_counts().items()),
        })
        print(f"claim {number} ({spec.name}): {evaluated['verdict']}  [{trained} runs trained in {seconds:.0f} s]")
    out_dir = store.report_dir(output, "claims")
    with store.locked(out_dir):  # two `claims` commands never interleave the shared report
        return build_claims_report(entries, out_dir, time.perf_counter() - started)
