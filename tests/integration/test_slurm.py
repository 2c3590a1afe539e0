"""`launch --executor slurm` on a real SLURM cluster: Debian's slurm-wlm set up here as a
single-node cluster (munged, slurmctld and slurmd started by this module on 127.0.0.1 with a
config of their own in a temporary folder, stopped by their process ids). Runs only where SLURM's
daemons are installed and the tests run as root (slurmd needs it); `make test` installs them
when it runs as root."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from conftest import write_config
from test_records import GRID, RUNS, _same_tables

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo")
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(d) for d in DAEMONS),
    reason="needs Debian's slurm-wlm (slurmctld, slurmd, slurm-client, munge) and root")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(root, node, munge_socket):
    """A one-node cluster's slurm.conf: this machine, 2 CPUs, everything under `root`."""
    lines = [
        "ClusterName=lab", f"SlurmctldHost={node}(127.0.0.1)", f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}", "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge",
        f"AuthInfo=socket={munge_socket}", "CredType=cred/munge", f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}", f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}", f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none", "SwitchType=switch/none", "MpiDefault=none", "ReturnToService=2",
        "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN",
        f"PartitionName=lab Nodes={node} Default=YES MaxTime=INFINITE State=UP",
    ]
    path = root / "slurm.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running one-node cluster: yields the environment whose SLURM_CONF names it."""
    root = tmp_path_factory.mktemp("slurm")
    for folder in ("state", "spool", "munge"):
        (root / folder).mkdir(mode=0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge_socket = root / "munge" / "munge.socket"
    node = socket.gethostname().split(".")[0]
    config = _config(root, node, munge_socket)
    env = {**os.environ, "SLURM_CONF": str(config)}
    commands = [
        ["munged", "--foreground", "--force", f"--socket={munge_socket}", f"--key-file={key}",
         f"--log-file={root / 'munge' / 'munged.log'}", f"--pid-file={root / 'munge' / 'munged.pid'}",
         f"--seed-file={root / 'munge' / 'munged.seed'}"],
        ["slurmctld", "-D", "-f", str(config)],
        ["slurmd", "-D", "-f", str(config), "-N", node],
    ]
    daemons = []
    try:
        for command in commands:
            daemons.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1)
        for _ in range(60):  # the node registers with the controller
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout
            if state.strip() == "idle":
                break
            time.sleep(1)
        else:
            pytest.fail(f"the node never became idle: {state!r}; see {root}/slurmctld.log and slurmd.log")
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--partition=lab"], env=env, capture_output=True)
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def _wait_for_queue(env, seconds=600):
    for _ in range(seconds // 2):
        if not subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True).stdout.strip():
            return
        time.sleep(2)
    pytest.fail("the SLURM jobs did not finish in time")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The grid's config, and the grid trained by one process."""
    root = tmp_path_factory.mktemp("reference")
    config = write_config(root / "grid.toml", GRID)
    done = subprocess.run([sys.executable, "-m", "experiments", "run", str(config), "--output", str(root), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return config, root / "runs" / "grid"


def _finished(slurm, jobs):
    """(state, exit code) of each finished job or array task (slurmctld keeps them for 5 minutes)."""
    states = {}
    for job in jobs:
        shown = subprocess.run(["scontrol", "-o", "show", "job", job], env=slurm, capture_output=True, text=True)
        for line in shown.stdout.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            task = f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}" if "ArrayTaskId" in fields else fields["JobId"]
            states[task] = fields["JobState"], fields["ExitCode"]
    return states


@pytest.mark.slow
def test_launch_submits_a_real_slurm_job_array_that_gives_the_tables_of_one_process(slurm, reference, tmp_path):
    config, one = reference
    submitted = subprocess.run(
        [sys.executable, "-m", "experiments", "launch", str(config), "--jobs", "3", "--executor", "slurm",
         "--cpus", "1", "--parallel", "2", "--time", "10", "--output", str(tmp_path)],
        env=slurm, capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    array, report = submitted.stdout.split("job array ")[1].split("\n")[0].split("; report job ")
    tasks = array.split(", ")
    assert len(tasks) == 3 and len({t.split("_")[0] for t in tasks}) == 1  # one array of three tasks
    assert f"squeue -j {tasks[0].split('_')[0]},{report}" in submitted.stdout
    waits = subprocess.run(["squeue", "-h", "-j", report, "-o", "%E"], env=slurm, capture_output=True, text=True)
    assert waits.stdout.startswith(f"afterany:{tasks[0].split('_')[0]}"), waits  # the report waits for the array
    _wait_for_queue(slurm)
    assert _finished(slurm, [tasks[0].split("_")[0], report]) == {t: ("COMPLETED", "0:0") for t in [*tasks, report]}
    assert (tmp_path / "reports" / "grid" / "report.md").is_file()  # written by the report job
    assert len(list((tmp_path / "runs" / "grid").rglob("result.json"))) == RUNS
    _same_tables(tmp_path / "runs" / "grid", one)


@pytest.mark.slow
def test_the_readmes_plain_sbatch_script_runs_the_shards(slurm, reference, tmp_path):
    """README's script (with this machine's sizes): `--shard auto/3` reads SLURM_ARRAY_TASK_ID."""
    config, one = reference
    script = tmp_path / "shards.sh"
    script.write_text("#!/bin/bash\n#SBATCH --array=0-2%2 --cpus-per-task=1 --time=10\n"
                      f"{sys.executable} -m experiments run {config} --output {tmp_path} --quiet --shard auto/3\n")
    submitted = subprocess.run(["sbatch", "--parsable", "-o", str(tmp_path / "task_%a.out"), str(script)],
                               env=slurm, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip()
    _wait_for_queue(slurm)
    assert _finished(slurm, [job]) == {f"{job}_{i}": ("COMPLETED", "0:0") for i in range(3)}
    said = [(tmp_path / f"task_{i}.out").read_text() for i in range(3)]
    assert [f"of shard {i}/3" in text for i, text in enumerate(said)] == [True] * 3, said
    assert sum("report:" in text for text in said) >= 1  # the shard that finished the grid wrote the report
    assert (tmp_path / "reports" / "grid" / "report.md").is_file()
    _same_tables(tmp_path / "runs" / "grid", one)


def test_a_submission_sbatch_refuses_is_one_line_and_leaves_the_disk_alone(slurm, reference, tmp_path):
    """An unknown partition. (sbatch without any cluster config is refused the same way, but only
    after about a minute of DNS lookups for one, too slow for CI.)"""
    config, _ = reference
    (tmp_path / "out").mkdir()
    done = subprocess.run([sys.executable, "-m", "experiments", "launch", str(config), "--jobs", "2", "--partition",
                           "nowhere", "--output", str(tmp_path / "out")], env=slurm, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --executor slurm: sbatch refused the job array (") and \
        done.stderr.count("\n") == 1, done.stderr
    assert "invalid partition" in done.stderr
    assert not any((tmp_path / "out").iterdir())  # submitit's script removed again
