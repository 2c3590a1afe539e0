"""Grids beyond one machine: a grid's shards (`run --shard I/N`) as a job array on SLURM through
submitit, or on this machine through submitit's local executor, then a job that writes the
report; or a Kubernetes Indexed Job manifest to apply. We write no scheduler: every task runs the
command a user would type, `run CONFIG --shard I/N`, into one output folder the tasks share.

submitit carries each task's command line to it (as a pickled `CommandFunction` holding only
that list of strings); no config is ever pickled.
"""

import json
import os
import re
import shutil
import sys
from pathlib import Path

EXECUTORS = ("slurm", "local", "k8s")


def _run_command(config, assignments, output):
    """This interpreter's `run` command for the config, with its --set assignments, without --shard."""
    return [sys.executable, "-m", "experiments", "run", str(Path(config).resolve()),
            *(f"--set={a}" for a in assignments), "--output", str(Path(output).resolve()), "--quiet"]


def submit(spec, config, assignments, output, jobs, executor, parallel=None, partition=None, minutes=60, cpus=2,
           mem_gb=None):
    """Submit `jobs` shard tasks as one job array (at most `parallel` at once) and a report job after
    them. Returns (array job ids, report job id). On `local` it waits for them all (real processes on
    this machine); on `slurm` it returns once they are queued."""
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ValueError("--executor slurm needs SLURM's sbatch, which is not on PATH here; use --executor local "
                         "(this machine) or --executor k8s (a manifest)")
    # submitit would bind its own log handlers to this process's stdout and stderr: we print what matters
    os.environ.setdefault("SUBMITIT_LOG_LEVEL", "NOCONFIG")
    import submitit
    from submitit.helpers import CommandFunction

    folder = Path(output).resolve() / "launch" / spec.name
    pool = submitit.AutoExecutor(folder=folder, cluster=executor)
    pool.update_parameters(name=f"{spec.name}-shards", timeout_min=minutes, cpus_per_task=cpus,
                           slurm_array_parallelism=parallel or jobs, **({"mem_gb": mem_gb} if mem_gb else {}),
                           **({"slurm_partition": partition} if partition else {}))
    shards = pool.map_array(CommandFunction(_run_command(config, assignments, output) + ["--shard"], verbose=False),
                            [f"{i}/{jobs}" for i in range(jobs)])
    if executor == "local":
        for job in shards:
            _wait(job)
    else:
        pool.update_parameters(slurm_additional_parameters={"dependency": f"afterany:{shards[0].job_id.split('_')[0]}"})
    pool.update_parameters(name=f"{spec.name}-report")
    report = pool.submit(CommandFunction([sys.executable, "-m", "experiments", "report", spec.name, "--output",
                                          str(Path(output).resolve())], verbose=False))
    if executor == "local":
        _wait(report)
    return [job.job_id for job in shards], report.job_id


def _wait(job):
    """Wait for a local task; a failed one ends the command (exit 1) naming its log."""
    from submitit.core.utils import UncompletedJobError

    try:
        job.result()
    except UncompletedJobError:
        raise SystemExit(f"error: task {job.job_id} failed; its log: {job.paths.stderr}") from None


def manifest(spec, config, assignments, output, jobs, image, claim, mount="/shared", parallel=None, cpus=2,
             mem_gb=None):
    """A Kubernetes Indexed Job (a dict; JSON is YAML) whose `jobs` pods run the shards
    (`--shard auto/N` reads JOB_COMPLETION_INDEX) with the persistent volume claim `claim`
    mounted at `mount`; `config` and `output` are paths inside that volume."""
    name = re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()).strip("-")[:50] or "grid"
    command = ["init-loss-lab", "run", config, *(f"--set={a}" for a in assignments), "--output", output, "--quiet",
               "--shard", f"auto/{jobs}"]
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
