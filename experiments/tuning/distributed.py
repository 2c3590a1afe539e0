"""`tune --workers N`: keras-tuner's chief and N workers as processes on 127.0.0.1, each this same
command told its role by the KERASTUNER_* variables; started, watched and stopped here."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from experiments.reporting.tune_report import TRIAL
from experiments.tuning.tuners import WORKERS_VARIABLE, planned_trials, searches, serving


def free_ports(count, host="127.0.0.1"):
    """A base port such that `count` consecutive ports from it are free on `host`."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((host, 0))
            base = s.getsockname()[1]
        if base + count < 65536 and all(_free(host, base + i) for i in range(count)):
            return base
    raise RuntimeError(f"found no {count} consecutive free ports on {host}")


def _free(host, port):
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def launch(argv, spec, workers, output, progress=True):
    """`--workers N`: run this same command as keras-tuner's chief and N workers on 127.0.0.1
    (each a subprocess, told its role by the KERASTUNER_* variables) and wait for them.

    Args:
        argv: the command line to rerun, without `--workers` (the chief gets `--overwrite` if given).
    Returns:
        the chief's exit code, or 1 when a worker failed (its log is named).
    """
    from tqdm.auto import tqdm  # a widget in Jupyter, text in a terminal

    search_dir = Path(output) / "runs" / spec.name
    logs = search_dir / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    base = free_ports(len(searches(spec)))
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(base),
           WORKERS_VARIABLE: str(workers)}
    command = [sys.executable, "-m", "experiments", *argv]
    worker_command = [a for a in command if a != "--overwrite"]
    print(f"{spec.name}: keras-tuner chief on 127.0.0.1:{base} and {workers} workers (logs in {logs})")
    processes = {"chief": subprocess.Popen([*command, "--quiet"], env={**env, "KERASTUNER_TUNER_ID": "chief"})}
    # shown once the processes are up (and not at all if the chief quits at once)
    bar = tqdm(total=planned_trials(spec), unit="trial", desc=f"{spec.name} ({workers} workers)",
               disable=not progress, dynamic_ncols=True, delay=10)
    try:
        # workers start once the chief serves its first search (so an --overwrite has cleared the old one)
        while not serving("127.0.0.1", base):
            if processes["chief"].poll() is not None:
                return processes["chief"].returncode
            time.sleep(0.5)
        for i in range(workers):
            with open(logs / f"tuner{i}.log", "w") as f:
                processes[f"tuner{i}"] = subprocess.Popen(
                    [*worker_command, "--quiet"], env={**env, "KERASTUNER_TUNER_ID": f"tuner{i}"},
                    stdout=f, stderr=subprocess.STDOUT)
        while any(p.poll() is None for name, p in processes.items() if name != "chief"):
            bar.update(len(list(search_dir.glob(f"trials/*/trial_*/{TRIAL}"))) - bar.n)
            failed = [name for name, p in processes.items() if p.poll() not in (None, 0)]
            if failed:
                bar.close()
                where = "its output above" if failed[0] == "chief" else logs / f"{failed[0]}.log"
                print(f"error: tuner process {failed[0]} exited with code {processes[failed[0]].returncode}; "
                      f"see {where}", file=sys.stderr)
                return 1
            time.sleep(1)
        bar.close()
        return processes["chief"].wait()
    finally:
        bar.close()
        for p in processes.values():
            if p.poll() is None:
                p.terminate()
        for p in processes.values():
            p.wait()
