"""The `claims` command's procedure: validate every claim config first, then run each claim's
experiment, report it, decide its claim, and write the claims report. With a shard, each claim's
grid trains only that shard's share, and the shard that finds every claim finished reports."""

import time

from experiments.claims.evaluate import claim_table, evaluate_claim
from experiments.claims.report import build_claims_report
from experiments.records import store
from experiments.reporting.tables import load_diagnostics, load_tables
from experiments.runner import report_experiment, run_experiment
from experiments.spec import apply_overrides, load_config, locate_config, validate


def load_claims(paths, assignments=()):
    """The validated (spec, datasets) of each claim config at `paths`.

    Raises:
        ValueError: a config that is invalid or has no `[claim]` table (before anything trains).
    """
    loaded = []
    for path in paths:
        spec, datasets = validate(apply_overrides(load_config(path), assignments), base=locate_config(path).parent)
        if spec.claim is None:
            raise ValueError(f"config {str(path)!r} has no [claim] table; it is an experiment, not a claim")
        loaded.append((spec, datasets))
    return loaded


def run_claims(paths, assignments=(), output=".", overwrite=False, progress=True, shard=None):
    """Run the claim configs at `paths` (each with the `--set` `assignments`), printing a line per
    claim; returns the path of claims.md. With `shard` `(i, n)`: train the i-th of n shares of
    every claim's grid (`runner.shares`); returns None, having said how many runs other shards
    still owe, unless every claim is then finished (this shard reports).

    Raises:
        ValueError: as `load_claims` (before anything trains).
    """
    loaded, trained, entries, started = load_claims(paths, assignments), [], [], time.perf_counter()
    for number, (spec, datasets) in enumerate(loaded, 1):
        began = time.perf_counter()
        exp_dir, count, _ = run_experiment(spec, datasets, output, overwrite, progress=progress, shard=shard)
        trained.append((number, spec, exp_dir, count, time.perf_counter() - began))
        if shard is None:  # a verdict as soon as its claim has trained
            entries.append(_decide(output, *trained[-1]))
    if shard is not None:
        tables = [load_tables(exp_dir) for _, _, exp_dir, *_ in trained]  # read once: to count, then to report
        missing = sum(int((runs["status"] == "unfinished").sum()) for runs, _ in tables)
        print(f"claims shard {shard[0]}/{shard[1]}: trained {sum(t[3] for t in trained)} runs")
        if missing:
            print(f"  {missing} runs of the claims are not finished yet (other shards); the last shard to finish "
                  f"writes the claims report, or: init-loss-lab claims (trains what is missing, then reports)")
            return None
        entries = [_decide(output, *entry, found) for entry, found in zip(trained, tables, strict=True)]
    out_dir = store.report_dir(output, "claims")
    with store.locked(out_dir):  # two `claims` commands never interleave the shared report
        return build_claims_report(entries, out_dir, time.perf_counter() - started)


def _decide(output, number, spec, exp_dir, trained, seconds, tables=None):
    """Report a trained claim's experiment and decide its claim: its claims-report entry."""
    runs, epochs = tables = tables or load_tables(exp_dir)
    report_experiment(exp_dir, output, spec.name, tables)
    evaluated = evaluate_claim(spec.claim, claim_table(runs, epochs, load_diagnostics(exp_dir, runs)))
    print(f"claim {number} ({spec.name}): {evaluated['verdict']}  [{trained} runs trained in {seconds:.0f} s]")
    return {
        "number": number, "name": spec.name, "output": output, "claim": spec.claim, "description": spec.description,
        "evaluated": evaluated, "runs": len(runs), "trained": trained, "seconds": seconds,
        "training_seconds": runs["wall_time_s"].sum() if "wall_time_s" in runs else 0.0,
        "status": ", ".join(f"{n} {s}" for s, n in runs["status"].value_counts().items()),
        "engines": ", ".join(f"{e} engine: {n} runs" for e, n in runs["engine"].value_counts().items()),
    }
