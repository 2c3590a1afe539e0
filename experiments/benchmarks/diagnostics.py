"""What full per-layer diagnostics cost, on the default digits experiment.

    python -m experiments.benchmarks.diagnostics [--repeats 5] [--config ...]

In one process, the suite's CLI path (`run`: training, run folders, TensorBoard, the report)
alternately with diagnostics off (`diagnostics.every=0`: scalars only) and with the config's own
diagnostics settings, `--repeats` times each; prints every wall time, the medians and their ratio.
Alternating spreads the machine's noise over both sides; the first pair also pays the warm-up.
"""

import argparse
import statistics
import tempfile
import time

CONFIG = "experiments/configs/digits_init_x_loss.toml"


def _run(config_path, sets):
    from experiments import cli

    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        code = cli.main(["run", config_path, "--output", output, "--quiet", *sets])
        wall = time.perf_counter() - started
    if code:
        raise SystemExit(f"the suite's run failed with exit code {code}")
    return wall


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.diagnostics", description=__doc__)
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import tensorflow  # noqa: F401 - imported before any clock starts

    _run(args.config, ["--set", "epochs=1"])  # warm-up: imports, first graphs
    sides = {"scalars only": ["--set", "diagnostics.every=0"], "full diagnostics": []}
    walls = {side: [] for side in sides}
    for _ in range(args.repeats):
        for side, sets in sides.items():
            walls[side].append(_run(args.config, sets))
    print(f"diagnostics: {args.config}, the suite's CLI path, {args.repeats} alternating repeats in one process")
    for side, values in walls.items():
        print(f"  {side:<17} median {statistics.median(values):6.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")
    ratio = statistics.median(walls["full diagnostics"]) / statistics.median(walls["scalars only"])
    print(f"  ratio full / scalars only: {ratio:.3f} (target <= 1.15)")


if __name__ == "__main__":
    main()
