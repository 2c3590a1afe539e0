"""How closely the two engines agree, by depth and length of training.

    python -m experiments.benchmarks.agreement [--depths 2 10 30] [--epochs 20] [--seeds 8]

For each depth, a ReLU MLP of that many hidden layers of 64 units (he_normal, categorical
cross-entropy, adam, digits) is trained on every seed by both engines, through the suite's own
`run_experiment`. Printed per depth: how many runs agree to 1e-4 relative in test accuracy and
loss, the largest relative difference, each engine's mean test accuracy over the seeds, and the
paired difference's mean with its 95% t-interval: engines that agree in distribution have an
interval that holds 0. Initial weights are bit-identical at every depth (tested in
tests/experiments/test_engine_vectorized.py); what differs is float rounding amplified by training.
"""

import argparse
import math
import tempfile

import numpy as np


def train(engine, depth, epochs, seeds, output):
    from experiments.reporting.tables import load_tables
    from experiments.runner import run_experiment
    from experiments.spec import validate

    spec, datasets = validate({
        "name": f"agreement_{engine}_{depth}", "dataset": "digits", "engine": engine,
        "model": {"name": "mlp", "widths": [64] * depth}, "initializers": ["he_normal"],
        "losses": ["categorical_crossentropy"], "epochs": epochs, "seeds": list(range(seeds)),
        "diagnostics": {"every": 0}})
    exp_dir, _, _ = run_experiment(spec, datasets, output, progress=False)
    runs = load_tables(exp_dir)[0].set_index("seed").sort_index()
    assert set(runs["engine"]) == {engine} and set(runs["status"]) == {"ok"}, runs[["engine", "status"]]
    return runs


def compare(vectorized, keras):
    """Per-run relative differences and the paired difference of test accuracy over seeds."""
    from scipy import stats

    relative = {m: (vectorized[m] - keras[m]).abs() / keras[m].abs().clip(lower=1e-12)
                for m in ("test_accuracy", "test_loss")}
    worst = np.maximum(relative["test_accuracy"], relative["test_loss"])
    difference = (vectorized["test_accuracy"] - keras["test_accuracy"]).to_numpy()
    n = len(difference)
    half = stats.t.ppf(0.975, n - 1) * difference.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    return {"within_1e-4": int((worst <= 1e-4).sum()), "runs": n, "largest": float(worst.max()),
            "vectorized": float(vectorized["test_accuracy"].mean()), "keras": float(keras["test_accuracy"].mean()),
            "mean_difference": float(difference.mean()), "half_width": float(half)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.agreement", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 10, 30])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args(argv)
    print(f"agreement: digits, ReLU MLP of 64-unit layers, he_normal, categorical cross-entropy, adam, "
          f"{args.epochs} epochs, seeds 0..{args.seeds - 1}")
    print(f"  {'depth':>5}  {'runs within 1e-4':>16}  {'largest rel. diff':>17}  {'test acc. vectorized':>20}  "
          f"{'keras':>6}  paired difference [95% CI]")
    with tempfile.TemporaryDirectory() as output:
        for depth in args.depths:
            result = compare(*(train(e, depth, args.epochs, args.seeds, output) for e in ("vectorized", "keras")))
            holds = abs(result["mean_difference"]) < result["half_width"]
            print(f"  {depth:>5}  {result['within_1e-4']:>9} of {result['runs']:<4}  {result['largest']:>17.2e}  "
                  f"{result['vectorized']:>20.4f}  {result['keras']:>6.4f}  {result['mean_difference']:+.4f} "
                  f"[{result['mean_difference'] - result['half_width']:+.4f}, "
                  f"{result['mean_difference'] + result['half_width']:+.4f}]"
                  f"{'' if holds else '  (the interval excludes 0)'}", flush=True)


if __name__ == "__main__":
    main()
