"""What stacking every model buys, in one invocation:

1. the default digits grid with the CNN (6 initializers x 3 losses x 3 seeds, 20 epochs), the
   vectorized against the keras engine: the whole command's wall time, the training time, peak
   memory, the ratio, and how far the engines' test metrics are apart run by run;
2. `make claims` (every shipped claim, vectorized engine), three times: wall time and training
   time, and their medians;
3. scale: the default digits MLP grid at 3, 30 and 100 seeds (54, 540 and 1,800 runs, without
   saving models): wall time, training time and peak memory, and how they grow.

    python -m experiments.benchmarks.stacking [--only cnn claims scale] [--seeds 3 30 100] [--repeat 3]

Each measurement runs the suite's own command in a fresh child process into a throwaway folder.
Training time is the runs' `wall_time_s` summed: a stacked group's time is shared among its runs,
so the sum is the groups' time.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from experiments.benchmarks import measured, run_command

CONFIG = "experiments/configs/digits_init_x_loss.toml"


def run(config, sets, engine, output):
    """One `run` in a child process; (wall seconds, peak GiB, the runs table)."""
    wall, peak = measured(run_command(config, output, [*sets, f"engine={engine}"]))
    return wall, peak, _runs(output).set_index("run_id")


def seeds_sets(count):
    """The --set changes of the scale grids: `count` seeds, no saved models."""
    return [f"seeds={list(range(count))}", "save_model=false"]


def _runs(output):
    """Every runs table a command wrote under `output`."""
    import pandas as pd

    return pd.concat([pd.read_csv(p) for p in Path(output).glob("reports/*/runs.csv")])


def claims(repeat=3):
    """`make claims` as it ships, `repeat` times: each time's wall time, training time and peak
    memory, then their medians (this machine's timings vary by about 10% from run to run)."""
    import statistics

    measures = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as output:
            wall, peak = measured([sys.executable, "-m", "experiments", "claims", "--output", output, "--quiet"])
            runs = _runs(output)
        measures.append((wall, runs["wall_time_s"].sum(), peak))
        print(f"make claims (vectorized engine): whole command {wall:.1f} s, training {measures[-1][1]:.1f} s, "
              f"peak memory {peak:.2f} GiB, {len(runs)} runs, engines {runs['engine'].value_counts().to_dict()}",
              flush=True)
    wall, training, peak = (statistics.median(m[k] for m in measures) for k in range(3))
    print(f"make claims, median of {repeat}: whole command {wall:.1f} s, training {training:.1f} s, "
          f"peak memory {peak:.2f} GiB")


def scale(seeds):
    """The default digits MLP grid at each number of seeds."""
    print(f"scale: {CONFIG} (6 initializers x 3 losses), save_model=false, by seeds")
    print(f"  {'seeds':>5}  {'runs':>5}  {'whole (s)':>9}  {'training (s)':>12}  {'runs/s':>6}  {'peak (GiB)':>10}")
    for count in seeds:
        with tempfile.TemporaryDirectory() as output:
            wall, peak = measured(run_command(CONFIG, output, seeds_sets(count)))
            runs = _runs(output)
        print(f"  {count:>5}  {len(runs):>5}  {wall:>9.1f}  {runs['wall_time_s'].sum():>12.1f}  "
              f"{len(runs) / wall:>6.1f}  {peak:>10.2f}", flush=True)


def engines(config, sets):
    """The vectorized against the keras engine on one config."""
    print(f"{config} with {', '.join(sets)}: vectorized vs keras engine, one run each")
    results = {}
    for engine in ("vectorized", "keras"):
        with tempfile.TemporaryDirectory() as output:
            results[engine] = run(config, sets, engine, output)
        wall, peak, runs = results[engine]
        print(f"  {engine:<10}: whole command {wall:6.1f} s, training {runs['wall_time_s'].sum():6.1f} s, "
              f"peak memory {peak:.2f} GiB, {len(runs)} runs, statuses {runs['status'].value_counts().to_dict()}")
    (vec_wall, _, vec), (ref_wall, _, ref) = results["vectorized"], results["keras"]
    print(f"  keras / vectorized: training {ref['wall_time_s'].sum() / vec['wall_time_s'].sum():.1f}x, "
          f"whole command {ref_wall / vec_wall:.1f}x")
    vec = vec.loc[ref.index]
    loss = ((vec["test_loss"] - ref["test_loss"]).abs() / ref["test_loss"].abs()).groupby(ref["cell"]).max()
    accuracy = (vec["test_accuracy"] - ref["test_accuracy"]).abs().groupby(ref["cell"]).max()
    print(f"  run by run, per cell the largest relative test-loss difference: median {loss.median():.1e}, "
          f"largest {loss.max():.2g} ({loss.idxmax()}); test accuracy at most {accuracy.max():.3f} apart")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.stacking",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=["cnn", "claims", "scale"], default=["cnn", "claims", "scale"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 30, 100])
    parser.add_argument("--repeat", type=int, default=3, help="times make claims runs (default 3; medians)")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--set", action="append", default=None, help="the CNN comparison's config changes "
                                                                        "(default: model=cnn)")
    args = parser.parse_args(argv)
    if "cnn" in args.only:
        engines(args.config, args.set or ["model=cnn"])
    if "claims" in args.only:
        claims(args.repeat)
    if "scale" in args.only:
        scale(args.seeds)


if __name__ == "__main__":
    main()
