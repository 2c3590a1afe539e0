"""What is stored stays right: a resumed grid gives an uninterrupted grid's bytes after a kill at
any moment, real processes on one experiment never duplicate or interleave work, damaged records
heal, a full disk leaves nothing half-written, finished runs are never replaced or deleted
without --overwrite, and nothing is written outside the output folder."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY, timeless_tables, write_config

from experiments.cli import main
from experiments.records import store
from experiments.records.rundir import read_result

# two stacked groups of eight runs (2 initializers x 2 learning rates x 2 seeds), one per model (the
# second with dropout)
GRID = {**TINY, "name": "grid", "model": [{"name": "mlp", "widths": [8]}, {"name": "mlp", "widths": [4],
                                                                          "dropout": 0.1}],
        "losses": ["binary_crossentropy"], "learning_rate": [0.01, 0.03], "diagnostics": {"every": 1, "probe": 32}}
RUNS = 16
TIMING = ("wall_time_s", "epoch_time_s")


def _command(config, out, *extra):
    return [sys.executable, "-m", "experiments", "run", str(config), "--output", str(out), "--quiet", *extra]


def _records(exp_dir):
    """Every finished run's files as bytes (result.json without its timing fields)."""
    records = {}
    for result in sorted(Path(exp_dir).rglob("result.json")):
        run = result.parent.relative_to(exp_dir).as_posix()
        values = json.loads(result.read_text())
        records[run, "result.json"] = {k: v for k, v in values.items() if k not in TIMING}
        for name in ("config.json", "history.csv", "diagnostics.csv"):
            if (result.parent / name).exists():
                records[run, name] = (result.parent / name).read_bytes()
    return records


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The grid trained without interruption, in its own process."""
    root = tmp_path_factory.mktemp("reference")
    config = write_config(root / "grid.toml", GRID)
    done = subprocess.run(_command(config, root), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = _records(root / "runs" / "grid")
    assert len([k for k in records if k[1] == "result.json"]) == RUNS
    return config, records


def _start_and_kill(command, exp_dir, results, sig=signal.SIGKILL):
    """Start the grid, send `sig` once `results` result files exist; returns (process, stderr)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    try:
        while len(list(Path(exp_dir).rglob("result.json"))) < results:
            assert process.poll() is None, "the grid ended before it could be stopped"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        process.send_signal(sig)
        _, err = process.communicate(timeout=60)
    return process, err


@pytest.mark.slow
def test_a_rerun_after_a_kill_gives_the_bytes_of_an_uninterrupted_run(reference, tmp_path):
    """SIGKILL once the first result of a stacked group is written (the rest of the group not yet):
    the rerun trains the unfinished group whole and writes only its missing runs."""
    config, expected = reference
    exp_dir = tmp_path / "runs" / "grid"
    _start_and_kill(_command(config, tmp_path), exp_dir, 1)
    finished = {p: p.stat().st_mtime_ns for p in exp_dir.rglob("result.json")}
    assert 1 <= len(finished) < RUNS
    done = subprocess.run(_command(config, tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"trained {RUNS - len(finished)} runs, skipped {len(finished)} already finished" in done.stdout
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in finished.items())  # kept, not rewritten
    assert _records(exp_dir) == expected
    assert not list(exp_dir.rglob("*.tmp"))


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_with_one_line_and_the_rerun_resumes(reference, tmp_path):
    """SIGTERM half way (in the keras engine's runs): one line, exit 143, and a rerun that gives the
    uninterrupted bytes."""
    config, expected = reference
    process, err = _start_and_kill(_command(config, tmp_path), tmp_path / "runs" / "grid", 9, signal.SIGTERM)
    assert process.returncode == 143
    assert [line for line in err.splitlines() if not line.startswith(("notice:", "I0000", "WARNING: All"))] == \
        ["terminated; run the same command again to resume"]
    assert main(["run", str(config), "--output", str(tmp_path), "--quiet"]) == 0
    assert _records(tmp_path / "runs" / "grid") == expected


@pytest.mark.slow
def test_processes_on_one_experiment_share_the_work_and_never_interleave(reference, tmp_path):
    """Two processes started together, a third a few seconds later, on one experiment."""
    config, expected = reference
    processes = []
    for delay in (0.0, 3.0, 0.0):
        processes.append(subprocess.Popen(_command(config, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
        time.sleep(delay)
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0] * 3, [err for _, err in outputs]
    trained = [int(out.split("trained ")[1].split()[0]) for out, _ in outputs]
    assert sum(trained) == RUNS  # every run trained by exactly one process
    assert _records(tmp_path / "runs" / "grid") == expected  # no doubled rows, headers or torn files
    assert main(["report", "grid", "--output", str(tmp_path)]) == 0


def _same_tables(exp_dir, reference_dir):
    """Equal to the reference's, up to rounding: a shard's stacks hold other members (see
    tests/experiments/test_runner.py::test_a_group_split_into_stacks...)."""
    for mine, theirs in zip(timeless_tables(exp_dir), timeless_tables(reference_dir), strict=True):
        pd.testing.assert_frame_equal(mine, theirs, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_three_shards_started_together_give_the_tables_of_one_process_and_the_last_writes_the_report(
        reference, tmp_path):
    config, _ = reference
    processes = [subprocess.Popen(_command(config, tmp_path, "--shard", f"{i}/3"), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(3)]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0] * 3, [err for _, err in outputs]
    trained = [int(out.split("trained ")[1].split()[0]) for out, _ in outputs]
    assert sum(trained) == RUNS and all(trained), trained  # every run by one shard, every shard some
    assert any("report:" in out for out, _ in outputs)  # the one that finished the grid wrote the report
    assert (tmp_path / "reports" / "grid" / "report.md").is_file()
    _same_tables(tmp_path / "runs" / "grid", config.parent / "runs" / "grid")


@pytest.mark.slow
def test_a_killed_shard_run_again_finishes_the_grid(reference, tmp_path, monkeypatch):
    config, _ = reference
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    process, _ = _start_and_kill(_command(config, tmp_path, "--shard", "auto/2"), tmp_path / "runs" / "grid", 1)
    assert process.returncode != 0
    other = subprocess.run(_command(config, tmp_path, "--shard", "1/2"), capture_output=True, text=True, timeout=300)
    assert other.returncode == 0 and "runs of the grid are not finished yet" in other.stdout, other.stderr
    assert not (tmp_path / "reports" / "grid").exists()  # no report of a half-finished grid
    again = subprocess.run(_command(config, tmp_path, "--shard", "auto/2"), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "report:" in again.stdout, again.stderr
    _same_tables(tmp_path / "runs" / "grid", config.parent / "runs" / "grid")


def test_shards_on_different_outputs_do_not_interfere(reference, tmp_path, capsys):
    config, _ = reference
    finished = {}
    for i in range(2):
        assert main(["run", str(config), "--output", str(tmp_path / str(i)), "--quiet", "--shard", f"{i}/2"]) == 0
        assert "runs of the grid are not finished yet" in capsys.readouterr().out
        finished[i] = {p.parent.relative_to(tmp_path / str(i)) for p in (tmp_path / str(i)).rglob("result.json")}
        assert not (tmp_path / str(i) / "reports").exists()
    assert finished[0] and finished[1] and not finished[0] & finished[1]  # each its own half, nothing shared
    assert len(finished[0] | finished[1]) == RUNS


@pytest.mark.slow
def test_launch_on_submitits_local_executor_gives_the_tables_of_one_process(reference, tmp_path, capsys):
    config, _ = reference
    assert main(["launch", str(config), "--jobs", "3", "--executor", "local", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "local job array" in out and out.count(",") >= 2 and "report job" in out
    assert len([p for p in (tmp_path / "launch" / "grid").iterdir() if p.name.endswith("_result.pkl")]) == 4
    assert (tmp_path / "reports" / "grid" / "report.md").is_file()
    _same_tables(tmp_path / "runs" / "grid", config.parent / "runs" / "grid")


CLAIM = {"statement": "he_normal beats zeros", "source": "the tests", "checks": [
    {"name": "accuracy", "metric": "test_accuracy", "plus": [{"initializer": "he_normal"}],
     "minus": [{"initializer": "zeros"}], "test": ">", "value": 0}]}


@pytest.mark.slow
def test_launch_of_the_claims_gives_the_claims_report_of_one_process(tmp_path, capsys):
    """Two claims (one stacked group of 6 runs each, the second with dropout) in 3 shards through
    submitit's local executor: every claim's tables, its verdicts and the claims table equal one
    `claims` process's."""
    configs = [str(write_config(tmp_path / f"c{i}.toml", {**GRID, "name": f"c{i}", "model": GRID["model"][i],
                                                          "learning_rate": 0.03, "seeds": [0, 1, 2], "claim": CLAIM}))
               for i in range(2)]
    assert main(["claims", *configs, "--output", str(tmp_path / "one"), "--quiet"]) == 0
    assert main(["launch", "--claims", *configs, "--jobs", "3", "--executor", "local", "--output",
                 str(tmp_path / "three")]) == 0
    out = capsys.readouterr().out
    assert "claims: local job array" in out
    assert f"report: {tmp_path / 'three' / 'reports' / 'claims' / 'claims.md'}" in out
    logs = tmp_path / "three" / "launch" / "claims"
    assert len([p for p in logs.iterdir() if p.name.endswith("_result.pkl")]) == 4
    trained = [int(n) for n in re.findall(r"claims shard \d/3: trained (\d+) runs", out)]  # what each task said
    assert sum(trained) == 12 and len(trained) == 3 and all(trained), out  # each shard its share of both claims
    for name in ("c0", "c1"):
        _same_tables(tmp_path / "three" / "runs" / name, tmp_path / "one" / "runs" / name)
    for table in ("claims.csv", "checks.csv"):
        one, three = (pd.read_csv(tmp_path / d / "reports" / "claims" / table) for d in ("one", "three"))
        pd.testing.assert_frame_equal(three.drop(columns=["training s"], errors="ignore"),
                                      one.drop(columns=["training s"], errors="ignore"), rtol=1e-5)


def test_the_kubernetes_manifest_is_an_indexed_job_of_shards_on_the_shared_volume(reference, tmp_path, capsys):
    config, _ = reference
    assert main(["launch", str(config), "--jobs", "4", "--executor", "k8s", "--image", "lab:1", "--volume-claim",
                 "grids", "--parallel", "2", "--mem", "4", "--output", str(tmp_path), "--set", "epochs=3"]) == 0
    path = tmp_path / "launch" / "grid.k8s.json"
    assert f"kubectl apply -f {path}" in capsys.readouterr().out
    job = json.loads(path.read_text())
    assert (job["kind"], job["spec"]["completionMode"], job["spec"]["completions"], job["spec"]["parallelism"]) == \
        ("Job", "Indexed", 4, 2)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "lab:1" and container["resources"]["requests"] == {"cpu": "2", "memory": "4.0Gi"}
    assert container["command"][:3] == ["init-loss-lab", "run", str(config)]
    assert container["command"][-2:] == ["--shard", "auto/4"] and "--set=epochs=3" in container["command"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "grids"
    assert not (tmp_path / "runs").exists()  # nothing trained here
    assert main(["launch", "--claims", "--jobs", "2", "--executor", "k8s", "--image", "lab:1", "--volume-claim", "c",
                 "--output", str(tmp_path / "k")]) == 0
    job = json.loads((tmp_path / "k" / "launch" / "claims.k8s.json").read_text())
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [  # every shipped claim, the image's own
        "init-loss-lab", "claims", "--output", str(tmp_path / "k"), "--quiet", "--shard", "auto/2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small experiment, trained once in this process."""
    root = tmp_path_factory.mktemp("trained")
    config = write_config(root / "tiny.toml", {**TINY, "epochs": 2})
    assert main(["run", str(config), "--output", str(root / "out"), "--quiet"]) == 0
    return config, root / "out"


@pytest.fixture
def finished(trained, tmp_path):
    """A copy of the trained experiment's output tree for one test: (config, output, records)."""
    config, out = trained
    shutil.copytree(out, tmp_path / "out")
    return config, tmp_path / "out", _records(tmp_path / "out" / "runs" / "tiny")


DAMAGE = {
    "truncated result": ("result.json", lambda p: p.write_text(p.read_text()[:40]), "not valid JSON"),
    "empty result": ("result.json", lambda p: p.write_text(""), "not valid JSON"),
    "result holding []": ("result.json", lambda p: p.write_text("[]\n"), "not a run result"),
    "garbled config": ("config.json", lambda p: p.write_bytes(b"\x00\xff{"), "not valid JSON"),
    "missing config": ("config.json", lambda p: p.unlink(), "missing"),
    "missing history": ("history.csv", lambda p: p.unlink(), "No such file or directory"),
    "truncated history": ("history.csv", lambda p: p.write_text(p.read_text()[:30]), "not 2 whole epochs"),
    "garbled diagnostics": ("diagnostics.csv", lambda p: p.write_text("x\n1,2\n"), "not a diagnostics table"),
}


@pytest.mark.parametrize("name, damage, why", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_record_is_retrained_with_a_notice_naming_the_file(finished, capsys, name, damage, why):
    config, out, expected = finished
    run_dir = out / "runs" / "tiny" / "moons" / "zeros__mean_squared_error" / "seed_1"
    damage(run_dir / name)
    assert main(["report", "tiny", "--output", str(out)]) == 0  # the report shows it as unfinished meanwhile
    assert main(["run", str(config), "--output", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"notice: tiny: {run_dir / name} is damaged ({why}); retraining moons/zeros__mean_squared_error/seed_1" \
        in err
    assert _records(out / "runs" / "tiny") == expected


def test_a_damaged_experiment_record_is_rebuilt_by_the_next_run(finished, capsys):
    config, out, expected = finished
    (out / "runs" / "tiny" / "experiment.json").write_text('{"spec": ')
    assert main(["report", "tiny", "--output", str(out)]) == 2
    assert "experiment.json' is damaged; run the experiment's command again" in capsys.readouterr().err
    assert main(["run", str(config), "--output", str(out), "--quiet"]) == 0
    assert "trained 0 runs, skipped 8" in capsys.readouterr().out
    assert main(["report", "tiny", "--output", str(out)]) == 0
    assert _records(out / "runs" / "tiny") == expected


def test_a_changed_config_is_refused_naming_the_fields_and_nothing_changes(finished, capsys):
    config, out, expected = finished
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["run", str(config), "--output", str(out), "--quiet", "--set", "epochs=5",
                 "--set", "model.widths=[4]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: tiny: 8 finished runs in {str(out / 'runs' / 'tiny')!r} were trained with another config "
                   "(epochs (2 -> 5), model.widths ([8] -> [4])); rerun with --overwrite to replace them, or give "
                   "this config another name (--set name=...)")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["run", str(config), "--output", str(out), "--quiet", "--set", "epochs=3", "--overwrite"]) == 0
    assert "trained 8 runs, skipped 0" in capsys.readouterr().out


def test_runs_whose_cell_left_the_grid_are_moved_out_with_a_notice(finished, capsys):
    config, out, expected = finished
    assert main(["run", str(config), "--output", str(out), "--quiet", "--set", "initializers=['he_normal']"]) == 0
    err = capsys.readouterr().err
    retired = sorted((out / "retired" / "tiny").iterdir())
    assert len(retired) == 1 and f"notice: tiny: 4 runs of cells no longer in the grid moved to {retired[0]}" in err
    assert sorted(p.parent.relative_to(retired[0]).as_posix() for p in retired[0].rglob("result.json")) == [
        f"moons/zeros__{loss}/seed_{s}" for loss in ("binary_crossentropy", "mean_squared_error") for s in (0, 1)]
    moved = _records(retired[0])
    assert moved == {k: v for k, v in expected.items() if k[0].startswith("moons/zeros")}
    assert not list((out / "runs" / "tiny").glob("moons/zeros*"))  # out of TensorBoard's logdir
    runs = pd.read_csv(out / "reports" / "tiny" / "runs.csv")
    assert runs["initializer"].tolist() == ["he_normal"] * 4


def test_learning_rates_that_print_alike_get_their_own_folders(tmp_path):
    config = write_config(tmp_path / "lr.toml", {**TINY, "initializers": ["he_normal"],
                                                 "losses": ["binary_crossentropy"], "seeds": [0], "epochs": 1,
                                                 "learning_rate": [0.001, 0.0010000001]})
    assert main(["run", str(config), "--output", str(tmp_path), "--quiet"]) == 0
    results = [json.loads(p.read_text()) for p in (tmp_path / "runs" / "tiny").rglob("result.json")]
    assert sorted(r["learning_rate"] for r in results) == [0.001, 0.0010000001]
    assert sorted(r["run_id"].split("/")[1] for r in results) == [
        "he_normal__binary_crossentropy__lr0.001", "he_normal__binary_crossentropy__lr0.0010000001"]


def test_a_runs_folder_that_leads_outside_the_output_is_refused(tmp_path, config_file, capsys):
    outside, out = tmp_path / "outside", tmp_path / "out"
    outside.mkdir()
    out.mkdir()
    (out / "runs").symlink_to(outside)
    assert main(["run", str(config_file()), "--output", str(out), "--quiet"]) == 2
    assert f"resolves to {str(outside / 'tiny')!r}, outside the output folder" in capsys.readouterr().err
    assert not list(outside.iterdir())


def test_a_second_search_process_on_one_search_is_refused(tmp_path, capsys):
    config = write_config(tmp_path / "t.toml", {**TINY, "name": "t", "initializers": ["he_normal"],
                                                "tune": {"max_trials": 1}})
    search_dir = tmp_path / "runs" / "t"
    search_dir.mkdir(parents=True)
    held = store.Claim(search_dir, ["search"])
    assert held.take(wait=False)
    try:
        assert main(["tune", str(config), "--output", str(tmp_path), "--quiet"]) == 2
        assert "another process is running this search" in capsys.readouterr().err
    finally:
        held.release()


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KiB tmpfs: a grid's records do not fit (as root; skipped where mounting is refused)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "--lazy", str(disk)], check=True)


@pytest.mark.slow
def test_a_full_disk_is_one_error_line_and_leaves_no_half_written_file(small_disk, reference, capsys):
    config, expected = reference
    assert main(["run", str(config), "--output", str(small_disk), "--quiet"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("notice:")]
    assert len(err) == 1 and err[0].startswith("error: cannot write ") and "No space left on device" in err[0]
    exp_dir = small_disk / "runs" / "grid"
    assert not list(small_disk.rglob("*.tmp"))
    results = list(exp_dir.rglob("result.json"))
    assert all(read_result(p.parent)[0] is not None for p in results)  # what exists is whole
    assert not [p for p in exp_dir.rglob("result.json") if read_result(p.parent)[0]["status"] == "failed"]
    # with room again, the same command finishes the grid: the same bytes as an uninterrupted run
    subprocess.run(["mount", "-o", "remount,size=50m", str(small_disk)], check=True)
    assert main(["run", str(config), "--output", str(small_disk), "--quiet"]) == 0
    assert _records(exp_dir) == expected
    shutil.rmtree(exp_dir)
