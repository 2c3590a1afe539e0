"""Models the vectorized engine stacks beyond the MLP, against the keras engine: the default digits
grid with the CNN (6 initializers x 3 losses x 3 seeds, 20 epochs).

    python -m experiments.benchmarks.stacking [--config ...] [--set model=cnn ...]

Each engine runs the suite's own `run` command in a fresh child process into a throwaway folder;
printed per engine: the whole command's wall time, the training time (the runs' `wall_time_s`
summed: a stacked group's time is shared among its runs, so the sum is the group's time), peak
memory, and then the ratio and how far the engines' test metrics are apart run by run.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from experiments.benchmarks import measured

CONFIG = "experiments/configs/digits_init_x_loss.toml"


def run(config, sets, engine, output):
    """One `run` in a child process; (wall seconds, peak GiB, the runs table)."""
    import pandas as pd

    wall, peak = measured([sys.executable, "-m", "experiments", "run", config, "--output", output, "--quiet",
                           *(f"--set={s}" for s in [*sets, f"engine={engine}"])])
    runs = pd.concat([pd.read_csv(p) for p in Path(output).glob("reports/*/runs.csv")]).set_index("run_id")
    return wall, peak, runs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.stacking",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--set", action="append", default=None, help="config changes (default: model=cnn)")
    args = parser.parse_args(argv)
    sets = args.set or ["model=cnn"]
    print(f"{args.config} with {', '.join(sets)}: vectorized vs keras engine, one run each")
    measured = {}
    for engine in ("vectorized", "keras"):
        with tempfile.TemporaryDirectory() as output:
            measured[engine] = run(args.config, sets, engine, output)
        wall, peak, runs = measured[engine]
        print(f"  {engine:<10}: whole command {wall:6.1f} s, training {runs['wall_time_s'].sum():6.1f} s, "
              f"peak memory {peak:.2f} GiB, {len(runs)} runs, statuses {runs['status'].value_counts().to_dict()}")
    (vec_wall, _, vec), (ref_wall, _, ref) = measured["vectorized"], measured["keras"]
    print(f"  keras / vectorized: training {ref['wall_time_s'].sum() / vec['wall_time_s'].sum():.1f}x, "
          f"whole command {ref_wall / vec_wall:.1f}x")
    vec = vec.loc[ref.index]
    loss = ((vec["test_loss"] - ref["test_loss"]).abs() / ref["test_loss"].abs()).groupby(ref["cell"]).max()
    accuracy = (vec["test_accuracy"] - ref["test_accuracy"]).abs().groupby(ref["cell"]).max()
    print(f"  run by run, per cell the largest relative test-loss difference: median {loss.median():.1e}, "
          f"largest {loss.max():.2g} ({loss.idxmax()}); test accuracy at most {accuracy.max():.3f} apart")


if __name__ == "__main__":
    main()
