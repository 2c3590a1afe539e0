"""keras-tuner searches: the shipped search with its trials in stacks (in one process and in a
chief with 2 workers) against one Keras fit per trial, trials per minute with 1 and 2 workers, and
hyperband against random search (the best objective reached against the epochs spent).

    python -m experiments.benchmarks.tuning [--repeats 3] [--engine-repeats 1] [--plot PATH]

Every search is the suite's own `tune` command in a fresh child process, on digits, into a
throwaway folder; the figures come from the trial records (each trial's start and duration,
epochs run and objective). Trials per minute count the search itself, from the first trial's
start to the last one's end: process start-up (TensorFlow's import) and keras-tuner's chief
shutdown (it polls its workers every 20 s) are reported apart, as the whole command's wall time.
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from experiments.benchmarks import measured

CONFIG = "experiments/configs/digits_tune.toml"
# one joint search: every trial is the same kind of work, whichever worker takes it
WORKERS_SETS = ["losses=['categorical_crossentropy']", "initializers=['he_normal', 'glorot_normal']",
                "epochs=5", "seeds=[0]", "tune.mode='joint'", "tune.max_trials=16"]
# one cell, the same epoch budget per trial; hyperband sizes its brackets from epochs and factor
TUNERS_SETS = ["losses=['categorical_crossentropy']", "initializers=['he_normal']", "epochs=9",
               "tune.objective='val_loss'", "tune.direction='min'", "tune.hyperband_factor=3"]
RANDOM_TRIALS = 8  # 8 x 9 = 72 epochs, about what one hyperband iteration spends at max_epochs 9


def search(sets, workers=0, keep=None, env=None):
    """Run one search; returns (its trial records, the command's wall time in seconds, its peak
    memory in GiB, the search sessions' own seconds); `keep`: a folder to copy the reports to;
    `env`: environment variables for the command."""
    with tempfile.TemporaryDirectory() as output:
        wall, peak = measured([sys.executable, "-m", "experiments", "tune", CONFIG, "--output", output, "--quiet",
                               "--workers", str(workers), *(f"--set={s}" for s in sets)], env)
        records = [json.loads(p.read_text()) for p in Path(output).glob("runs/*/trials/*/trial_*/trial.json")]
        searching = sum(json.loads(p.read_text())["sessions"][-1]["seconds"]
                        for p in Path(output).glob("runs/*/search.json"))
        if keep:
            shutil.copytree(Path(output) / "reports", keep, dirs_exist_ok=True)
    return records, wall, peak, searching


# one cell's Hyperband search, max_epochs 9, factor 3: keras-tuner sizes it at about 20 trials
HYPERBAND_SETS = ["losses=['categorical_crossentropy']", "initializers=['he_normal']", "epochs=9",
                  "tune.tuner='hyperband'", "tune.objective='val_loss'", "tune.direction='min'",
                  "tune.hyperband_factor=3"]


def engines(repeats, sets=(), what="the shipped search", workers=False, eigen=False):
    """A search with stacked trials and with one Keras fit per trial (and with `workers`, stacked
    trials in keras-tuner's chief and 2 workers; with `eigen`, the Keras fits also on TensorFlow's
    default Eigen kernels, as without the suite's oneDNN setting): the same oracle seed, so the same
    trials; wall time, trials per minute, peak memory (of the command's process: a chief's workers
    are not counted), and whether they found the same best settings per cell (where not, what each
    pick scored in both searches, looked up by trial id: right for random searches only)."""
    print(f"{what}, tune.engine vectorized (stacked trials) vs keras (one fit per trial)")
    setups = {"vectorized": ("vectorized", 0, None), "keras": ("keras", 0, None)}
    if workers:
        setups["vectorized, --workers 2"] = ("vectorized", 2, None)
    if eigen:  # the reference without the oneDNN kernels that the suite turns on (`experiments`)
        setups["keras, Eigen kernels"] = ("keras", 0, {"TF_ENABLE_ONEDNN_OPTS": "0"})
    found, measured, scores = {}, {}, {}
    with tempfile.TemporaryDirectory() as kept:
        for _ in range(repeats):
            for name, (engine, count, env) in setups.items():  # interleaved: drifts in machine load hit all alike
                folder = Path(kept) / name.replace(" ", "").replace(",", "_")
                records, wall, peak, searching = search([*sets, f"tune.engine='{engine}'"], count, folder, env)
                # the search session's own time (stacked trials share their stack's time, so the
                # trial records cannot tell when the last one ended)
                measured.setdefault(name, []).append((wall, len(records) / searching * 60, peak, len(records)))
                found[name] = _best(folder / "digits_tune" / "best.csv")
                scores[name] = {(r["cell"], r["trial_id"]): r["objective"] for r in records}
    walls = {}
    for name, runs in measured.items():
        walls[name] = statistics.median(w for w, *_ in runs)
        print(f"  {name:<24}: {walls[name]:6.1f} s whole command (runs: {', '.join(f'{w:.1f}' for w, *_ in runs)}),"
              f" {statistics.median(r for _, r, *_ in runs):6.1f} trials/min, peak memory "
              f"{max(p for *_, p, _ in runs):.2f} GiB, {runs[0][3]} trials")
    for name, reference in [(n, "keras") for n in setups if not n.startswith("keras")] + \
            ([("vectorized", "keras, Eigen kernels")] if eigen else []):
        # the best trial's settings: trial ids name the same trials only where both searches ask in
        # one order (random search); a stacked Hyperband search asks for a round's trials at once
        differ = [cell for cell in found[reference] if found[name].get(cell, ())[1:] != found[reference][cell][1:]]
        print(f"  {reference} / {name}: {walls[reference] / walls[name]:.1f}x faster (medians); the same best "
              f"settings in {len(found[reference]) - len(differ)} of {len(found[reference])} cells"
              + (f" (not in: {', '.join(differ)})" if differ else ""))
        for cell in differ:
            print(f"    {cell}: {_parting(cell, {n: found[n][cell][0] for n in (reference, name)}, scores)}")


def _parting(cell, picks, scores):
    """What each search's pick in `cell` scored in both searches (`picks`: search name -> trial
    id): a tie, or a trial whose runs parted, shows as such."""
    def score(name, trial):
        value = scores[name].get((cell, trial))
        return "failed" if value is None else f"{value:.4f}"

    return "; ".join(f"{name} picks trial {trial}, which scored " +
                     " and ".join(f"{score(other, trial)} ({other})" for other in picks)
                     for name, trial in picks.items())


def _best(path):
    """Per cell: the best trial's id, learning rate and batch size (best.csv)."""
    import pandas as pd

    best = pd.read_csv(path, dtype={"trial_id": str})
    return {row["cell"]: (row["trial_id"], round(row["learning_rate"], 12), int(row["batch_size"]))
            for _, row in best.iterrows()}


def _ended(record):
    """When a trial ended (records before `ended` was kept: its start plus its seconds, which for
    stacked trials are their share of the stack's time, not when it ended)."""
    return record.get("ended", record["started"] + record["seconds"])


def trials_per_minute(records):
    start = min(r["started"] for r in records)
    return len(records) / (max(_ended(r) for r in records) - start) * 60


def best_curve(records):
    """(cumulative epochs, best objective so far) in the order trials finished (minimising)."""
    curve, spent, best = [], 0, float("inf")
    for r in sorted(records, key=_ended):
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
    parser.add_argument("--engine-repeats", type=int, default=1,
                        help="runs of the shipped search per engine (the keras one takes about 5 minutes)")
    parser.add_argument("--only-engines", action="store_true", help="only the engines' comparison")
    parser.add_argument("--skip-engines", action="store_true", help="all but the engines' comparison")
    parser.add_argument("--plot", default="reports/benchmarks/tuning_hyperband_vs_random.png")
    args = parser.parse_args(argv)

    if not args.skip_engines:
        engines(args.engine_repeats, what=f"the shipped search ({CONFIG}: 12 cells x 6 trials, 10 epochs, then 36 "
                                          "tuned runs)", workers=True, eigen=True)
        engines(args.engine_repeats, HYPERBAND_SETS, "a Hyperband search of one cell (digits, he_normal | "
                                                      "categorical_crossentropy, max_epochs 9, factor 3)")
    if args.only_engines:
        return
    print("\ntrials per minute, a joint search of 16 trials (digits, 5 epochs each), chief + N workers on 127.0.0.1")
    rates = {}
    for _ in range(args.repeats):
        for workers in (1, 2):  # interleaved, so drifts in machine load hit both alike
            records, wall, _, _ = search(WORKERS_SETS, workers)
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
            records, _, _, _ = search([*TUNERS_SETS, f"seeds=[{seed}]", f"tune.tuner='{tuner}'", *extra])
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
