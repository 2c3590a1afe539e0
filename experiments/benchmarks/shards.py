"""One process against shard processes started together, on this machine: the default digits grid
(6 initializers x 3 losses, 20 epochs) at 30 seeds (540 runs, without saving models).

    python -m experiments.benchmarks.shards [--seeds 30] [--shards 2]

Each way runs the suite's own `run` command (with `--shard I/N` for the shards) into a throwaway
folder; printed: wall time until every process has finished, and the ratio. On a machine whose
cores one process already keeps busy, shards share those cores: their gain is on more machines.
"""

import argparse
import subprocess
import tempfile
import time

from experiments.benchmarks import run_command
from experiments.benchmarks.stacking import CONFIG, seeds_sets


def run(seeds, shards, output):
    """Wall seconds for `shards` processes (1: no --shard) started together to finish the grid."""
    command = run_command(CONFIG, output, seeds_sets(seeds))
    started = time.perf_counter()
    processes = [subprocess.Popen(command + ([f"--shard={i}/{shards}"] if shards > 1 else []),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(shards)]
    errors = [p.communicate()[1] for p in processes]
    wall = time.perf_counter() - started
    if any(p.returncode for p in processes):
        raise SystemExit(f"failed:\n{''.join(errors)[-2000:]}")
    return wall


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.shards", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"shards: {CONFIG} at {args.seeds} seeds, save_model=false")
    walls = {}
    for count in (1, args.shards):
        with tempfile.TemporaryDirectory() as output:
            walls[count] = run(args.seeds, count, output)
        print(f"  {count} process{'es' if count > 1 else ''}: {walls[count]:.1f} s", flush=True)
    print(f"  1 process / {args.shards} shards: {walls[1] / walls[args.shards]:.2f}x")


if __name__ == "__main__":
    main()
