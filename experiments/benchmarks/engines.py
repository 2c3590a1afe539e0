"""The vectorized engine against a plain Keras loop, on the default digits experiment.

    python -m experiments.benchmarks.engines [--seeds 1 3 10] [--config ...]

For each seed count, two fresh child processes, one after the other: a plain loop of one
`fit` per run, written as a user would write it, and the suite's own CLI path (`run`, which also
writes run folders, TensorBoard logs and the report). Each child imports TensorFlow before its
clock starts and reports its wall time and peak memory (max RSS); the parent prints the table.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time

CONFIG = "experiments/configs/digits_init_x_loss.toml"


def plain_loop(config_path, seeds):
    """The grid as a user would write it: a Sequential model, compile, fit, evaluate, per run."""
    import keras

    from experiments.spec import load_config, validate
    from models.builders import MODELS

    spec, (data,) = validate({**load_config(config_path), "seeds": seeds})
    model_spec = MODELS.resolve(spec.model[0])
    y = {split: keras.utils.to_categorical(getattr(data, f"y_{split}"), data.n_classes) for split in
         ("train", "val", "test")}
    started = time.perf_counter()
    for init in spec.initializers:
        for loss in spec.losses:
            for seed in seeds:
                keras.utils.set_random_seed(seed)
                model = keras.Sequential(
                    [keras.Input(data.input_shape), keras.layers.Flatten()]
                    + [keras.layers.Dense(w, activation=model_spec["activation"], kernel_initializer=init["name"])
                       for w in model_spec["widths"]]
                    + [keras.layers.Dense(data.n_classes, activation="softmax", kernel_initializer=init["name"])]
                )
                model.compile(optimizer=keras.optimizers.Adam(spec.learning_rate[0]), loss=loss["name"],
                              metrics=["accuracy"])
                model.fit(data.x_train, y["train"], batch_size=spec.batch_size[0], epochs=spec.epochs,
                          validation_data=(data.x_val, y["val"]), verbose=0)
                model.evaluate(data.x_test, y["test"], verbose=0)
                keras.backend.clear_session()
    return time.perf_counter() - started


def suite(config_path, seeds):
    """The suite's CLI path, into a throwaway output folder."""
    from experiments import cli

    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        code = cli.main(["run", config_path, "--output", output, "--quiet", "--set", f"seeds={seeds}"])
        wall = time.perf_counter() - started
    if code:
        raise SystemExit(f"the suite's run failed with exit code {code}")
    return wall


def _child(which, config_path, n_seeds):
    import resource

    import tensorflow  # noqa: F401 - imported before the clock starts, as in both sides

    wall = {"plain": plain_loop, "suite": suite}[which](config_path, list(range(n_seeds)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"wall_s": wall, "peak_gib": peak}))


def _measure(which, config_path, n_seeds):
    out = subprocess.run([sys.executable, "-m", "experiments.benchmarks.engines", "--child", which,
                          "--config", config_path, "--seeds", str(n_seeds)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"benchmark child '{which}' failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.engines",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3], help="seed counts to measure (default 3)")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--child", choices=("plain", "suite"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.config, args.seeds[0])
    from experiments.spec import load_config

    config = load_config(args.config)
    cells = len(config["initializers"]) * len(config["losses"])
    print(f"engines: {args.config}, plain Keras loop vs the suite's CLI path (vectorized engine)")
    print(f"{'seeds':>5} {'runs':>5} {'plain s':>9} {'suite s':>9} {'ratio':>7} {'plain GiB':>10} {'suite GiB':>10}")
    for n_seeds in args.seeds:
        plain = _measure("plain", args.config, n_seeds)
        fast = _measure("suite", args.config, n_seeds)
        runs = cells * n_seeds
        print(f"{n_seeds:>5} {runs:>5} {plain['wall_s']:>9.1f} {fast['wall_s']:>9.1f} "
              f"{plain['wall_s'] / fast['wall_s']:>6.1f}x {plain['peak_gib']:>10.2f} {fast['peak_gib']:>10.2f}",
              flush=True)


if __name__ == "__main__":
    main()
