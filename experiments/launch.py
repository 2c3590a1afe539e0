"""Grids beyond one machine: a grid's shards (`run --shard I/N`), or the claims' (`claims --shard
I/N`), as a job array on SLURM through submitit, or on this machine through submitit's local
executor, then a job that writes the report; or a Kubernetes Indexed Job manifest to apply. We
write no scheduler: every task runs the command a user would type into one output folder the tasks
share.

submitit carries each task's command line to it (as a pickled `CommandFunction` holding only
that list of strings); no config is ever pickled.
"""

import contextlib
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

from experiments.records import store

EXECUTORS = ("slurm", "local", "k8s")


def commands(name, configs, assignments, output, claims=False):
    """The command lines (after the program's name) of a shard task, ending in `--shard` (each
    task adds its `I/N`), and of the report job: `run CONFIG` and `report NAME`, or, with
    `claims`, `claims [CONFIG ...]` for both (the report job trains what a failed shard left, if
    anything, then writes the claims report)."""
    sets = [f"--set={a}" for a in assignments]
    if claims:
        common = ["claims", *configs, *sets, "--output", output, "--quiet"]
        return common + ["--shard"], common
    return ["run", configs[0], *sets, "--output", output, "--quiet", "--shard"], ["report", name, "--output", output]


def submit(name, shard_command, report_command, output, jobs, executor, parallel=None, partition=None, minutes=60,
           cpus=2, mem_gb=None):
    """Submit `jobs` shard tasks (`commands`, run by this interpreter) as one job array (at most
    `parallel` at once) and a report job after them. Returns (array job ids, report job id, what
    each task printed). On `local` it waits for them all (real processes on this machine); on
    `slurm` it returns once they are queued (and nothing is printed yet)."""
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ValueError("--executor slurm needs SLURM's sbatch, which is not on PATH here; use --executor local "
                         "(this machine) or --executor k8s (a manifest)")
    # submitit would bind its own log handlers to this process's stdout and stderr: we print what matters
    os.environ.setdefault("SUBMITIT_LOG_LEVEL", "NOCONFIG")
    import submitit
    from submitit.core.utils import FailedJobError
    from submitit.helpers import CommandFunction

    program = [sys.executable, "-m", "experiments"]
    folder = store.inside(Path(output) / "launch" / name, output)  # submitit's scripts, logs and results
    existed = {p for p in (Path(output), folder.parent, folder, *folder.rglob("*")) if p.exists()}
    pool = submitit.AutoExecutor(folder=folder, cluster=executor)
    pool.update_parameters(name=f"{name}-shards", timeout_min=minutes, cpus_per_task=cpus,
                           slurm_array_parallelism=parallel or jobs, **({"mem_gb": mem_gb} if mem_gb else {}),
                           **({"slurm_partition": partition} if partition else {}))
    # verbose: each task's log shows its command and streams what it prints (what `follow` reads)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit prints what sbatch said: our error says it once
            shards = pool.map_array(CommandFunction(program + shard_command), [f"{i}/{jobs}" for i in range(jobs)])
    except FailedJobError as e:  # sbatch refused: a bad partition, or SLURM without its config or controller
        _undo(folder, existed, output)
        said = "; ".join(line.removeprefix("sbatch: ").strip() for line in str(e).splitlines() if line.strip())
        raise ValueError(f"--executor slurm: sbatch refused the job array ({said}); check that `sinfo` works "
                         "here, or use --executor local or k8s") from None
    if executor == "local":
        printed = [_wait(job) for job in shards]
    else:
        printed = []
        pool.update_parameters(slurm_additional_parameters={"dependency": f"afterany:{shards[0].job_id.split('_')[0]}"})
    pool.update_parameters(name=f"{name}-report")
    report = pool.submit(CommandFunction(program + report_command))
    if executor == "local":
        printed.append(_wait(report))
    return [job.job_id for job in shards], report.job_id, printed


def _undo(folder, existed, output):
    """Remove what a refused submission wrote in `folder` (submitit's script, and the folders it
    made), so that a refused launch leaves the disk as it was."""
    for path in sorted(set(folder.rglob("*")) - existed, reverse=True):  # a folder's files before it
        store.remove(path, output)
    for path in (folder, folder.parent, Path(output)):
        if path not in existed and path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _wait(job):
    """Wait for a local task and return what it printed; a failed one ends the command (exit 1)
    naming its log."""
    from submitit.core.utils import UncompletedJobError

    try:
        return job.result()
    except UncompletedJobError:
        raise SystemExit(f"error: task {job.job_id} failed; its log: {job.paths.stderr}") from None


def manifest(name, shard_command, jobs, image, claim, mount="/shared", parallel=None, cpus=2, mem_gb=None):
    """A Kubernetes Indexed Job (a dict; JSON is YAML) whose `jobs` pods run the shard command
    (`commands`; `--shard auto/N` reads JOB_COMPLETION_INDEX) of the installed `init-loss-lab`
    with the persistent volume claim `claim` mounted at `mount`; config and output paths are paths
    inside that volume. The shard that finishes the grid writes the report."""
    name = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:50] or "grid"
    command = ["init-loss-lab", *shard_command, f"auto/{jobs}"]
    resources = {"cpu": str(cpus), **({"memory": f"{mem_gb}Gi"} if mem_gb else {})}
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"{name}-shards"},
        "spec": {
            "completionMode": "Indexed", "completions": jobs, "parallelism": parallel or jobs,
            "backoffLimitPerIndex": 2,  # a shard that dies is simply run again
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "shard", "image": image, "command": command, "workingDir": mount,
                                "resources": {"requests": resources},
                                "volumeMounts": [{"name": "shared", "mountPath": mount}]}],
                "volumes": [{"name": "shared", "persistentVolumeClaim": {"claimName": claim}}],
            }},
        },
    }


def write_manifest(job, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job, indent=2) + "\n")
    return path
