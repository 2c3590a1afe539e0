"""keras-tuner searches: trials per minute with 1 and 2 workers, and hyperband against random
search (the best objective reached against the epochs spent).

    python -m experiments.benchmarks.tuning [--repeats 3] [--plot reports/benchmarks/tuning.png]

Every search is the suite's own `tune` command in a fresh child process, on digits, into a
throwaway folder; the figures come from the trial records (each trial's start and duration,
epochs run and objective). Trials per minute count the search itself, from the first trial's
start to the last one's end: process start-up (TensorFlow's import) and keras-tuner's chief
shutdown (it polls its workers every 20 s) are reported apart, as the whole command's wall time.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = "experiments/configs/digits_tune.toml"
# one joint search: every trial is the same kind of work, whichever worker takes it
WORKERS_SETS = ["losses=['categorical_crossentropy']", "initializers=['he_normal', 'glorot_normal']",
                "epochs=5", "seeds=[0]", "tune.mode='joint'", "tune.max_trials=16"]
# one cell, the same epoch budget per trial; hyperband sizes its brackets from epochs and factor
TUNERS_SETS = ["losses=['categorical_crossentropy']", "initializers=['he_normal']", "epochs=9",
               "tune.objective='val_loss'", "tune.direction='min'", "tune.hyperband_factor=3"]
RANDOM_TRIALS = 8  # 8 x 9 = 72 epochs, about what one hyperband iteration spends at max_epochs 9


def search(sets, workers=0):
    """Run one search; returns (its trial records, the command's wall time in seconds)."""
    with tempfile.TemporaryDirectory() as output:
        command = [sys.executable, "-m", "experiments", "tune", CONFIG, "--output", output, "--quiet",
                   "--workers", str(workers), *(f"--set={s}" for s in sets)]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"search failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
        records = [json.loads(p.read_text()) for p in Path(output).glob("runs/*/trials/*/trial_*/trial.json")]
    return records, wall


def trials_per_minute(records):
    start = min(r["started"] for r in records)
    end = max(r["started"] + r["seconds"] for r in records)
    return len(records) / (end - start) * 60


def best_curve(records):
    """(cumulative epochs, best objective so far) in the order trials finished (minimising)."""
    curve, spent, best = [], 0, float("inf")
    for r in sorted(records, key=lambda r: r["started"] + r["seconds"]):
        spent += r["epochs_run"]
        if r["status"] == "COMPLETED" and r["objective"] is not None:
            best = min(best, r["objective"])
        curve.append((spent, best))
    return curve


def best_within(curve, budget):
    values = [b for spent, b in curve if spent <= budget]
    return values[-1] if values else float("nan")


def plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (tuner, seed), curve in curves.items():
        xs, ys = zip(*curve, strict=True)
        ax.step(xs, ys, where="post", color="C0" if tuner == "hyperband" else "C1", alpha=0.8,
                label=tuner if seed == 0 else None)
    ax.set_xlabel("epochs spent")
    ax.set_ylabel("best val_loss so far")
    ax.set_yscale("log")
    ax.set_title("hyperband vs random search\n(digits, he_normal | categorical_crossentropy)")
    ax.legend()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.tuning", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting; medians are reported")
    parser.add_argument("--plot", default="reports/benchmarks/tuning_hyperband_vs_random.png")
    args = parser.parse_args(argv)

    print("trials per minute, a joint search of 16 trials (digits, 5 epochs each), chief + N workers on 127.0.0.1")
    rates = {}
    for _ in range(args.repeats):
        for workers in (1, 2):  # interleaved, so drifts in machine load hit both alike
            records, wall = search(WORKERS_SETS, workers)
            rates.setdefault(workers, []).append((trials_per_minute(records), wall))
    median = {w: statistics.median(r for r, _ in runs) for w, runs in rates.items()}
    for workers, runs in rates.items():
        each, wall = ", ".join(f"{r:.1f}" for r, _ in runs), statistics.median(w for _, w in runs)
        print(f"  {workers} worker(s): {median[workers]:5.1f} trials/min (runs: {each}); whole command {wall:.0f} s")
    print(f"  2 workers / 1 worker: {median[2] / median[1]:.2f}x trials per minute")

    print("\nhyperband (max_epochs 9, factor 3) vs random search (8 trials x 9 epochs), one cell, val_loss;"
          " seeds 0..repeats-1")
    curves = {}
    for seed in range(args.repeats):
        for tuner, extra in (("hyperband", []), ("random", [f"tune.max_trials={RANDOM_TRIALS}"])):
            records, _ = search([*TUNERS_SETS, f"seeds=[{seed}]", f"tune.tuner='{tuner}'", *extra])
            curves[(tuner, seed)] = best_curve(records)
    budgets = [10, 20, 40, 72]
    print(f"  {'tuner':<10} {'trials':>6} {'epochs':>6}  " + "  ".join(f"best@{b:<3}" for b in budgets)
          + "  best@end  (medians over seeds; best@N: best val_loss within N epochs spent)")
    for tuner in ("hyperband", "random"):
        runs = [c for (t, _), c in curves.items() if t == tuner]
        cells = [statistics.median(best_within(c, b) for c in runs) for b in [*budgets, float("inf")]]
        print(f"  {tuner:<10} {statistics.median(len(c) for c in runs):>6.0f} "
              f"{statistics.median(c[-1][0] for c in runs):>6.0f}  " + "  ".join(f"{v:8.4f}" for v in cells))
    plot(curves, args.plot)
    print(f"  plot: {args.plot}")


if __name__ == "__main__":
    main()
