"""Benchmarks run by `make bench`: each prints its figures; none is a test."""

import os
import subprocess
import sys
import time

# the command in a child of a small Python process, which prints its child's peak memory
_MEASURED = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)")


def run_command(config, output, sets=()):
    """The suite's `run` of `config` into `output` in a child process, quiet, with --set changes."""
    return [sys.executable, "-m", "experiments", "run", config, "--output", output, "--quiet",
            *(f"--set={s}" for s in sets)]


def measured(command, env=None):
    """Run `command` (with `env` added to the environment); (its wall seconds, its peak memory in
    GiB). Exits naming the command and its error output if it fails."""
    wrapped = [sys.executable, "-c", _MEASURED, *command]
    started = time.perf_counter()
    done = subprocess.run(wrapped, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    return wall, int(done.stderr.strip().splitlines()[-1]) / 2**20
