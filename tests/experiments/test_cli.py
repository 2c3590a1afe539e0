"""The CLI as a user drives it: real processes, kill and resume, commands, import weight."""

import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from experiments.cli import main

NO_TF = """
import sys
from experiments.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tensorboard'))
assert not heavy, heavy[:5]
sys.exit(code)
"""


@pytest.mark.parametrize("command", [["--help"], ["validate", "{config}"], ["list"]])
def test_help_validate_and_list_import_no_tensorflow(config_file, command):
    args = [a.format(config=config_file()) for a in command]
    done = subprocess.run([sys.executable, "-c", NO_TF, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_sigkill_mid_grid_then_rerun_trains_only_the_unfinished_runs(config_file, tmp_path):
    out = tmp_path / "out"
    # four batch sizes: four groups for the vectorized engine, each finishing its runs together
    config = config_file(epochs=3, losses=["binary_crossentropy"], seeds=[0], batch_size=[8, 16, 24, 32])
    command = [sys.executable, "-m", "experiments", "run", str(config), "--output", str(out), "--quiet"]
    exp_dir = out / "runs" / "tiny"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while len(list(exp_dir.glob("*/*/*/result.json"))) < 2:
            assert process.poll() is None, "the grid ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = {p: p.stat().st_mtime_ns for p in exp_dir.glob("*/*/*/result.json")}
    assert 2 <= len(finished) < 8

    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"trained {8 - len(finished)} runs, skipped {len(finished)} already finished" in done.stdout
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in finished.items())
    runs = pd.read_csv(out / "reports" / "tiny" / "runs.csv")
    assert len(runs) == 8 and set(runs["status"]) == {"ok"}
    assert not list(exp_dir.rglob("*.tmp"))


def test_run_then_report_and_list(config_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(config_file()), "--output", str(out), "--quiet", "--set", "epochs=1",
                 "--set", "seeds=[0]", "--set", "initializers=['he_normal']"]) == 0
    printed = capsys.readouterr().out
    assert "trained 2 runs, skipped 0" in printed and "report.md" in printed
    report = out / "reports" / "tiny" / "report.md"
    report.unlink()
    assert main(["report", "--output", str(out)]) == 0
    assert report.is_file()
    assert main(["report", "--output", str(tmp_path / "empty")]) == 2
    assert main(["list", "initializers"]) == 0
    listing = capsys.readouterr().out
    assert "he_normal" in listing and "variance_scaling(scale=1.0, mode='fan_in'" in listing
    assert main(["list", "metrics"]) == 0
    listing = capsys.readouterr().out
    assert "  f1  - binary, multiclass; higher is better" in listing and "  r2  - regression; higher" in listing


def test_the_installed_command_runs_shipped_configs_by_name_from_any_folder(tmp_path):
    from pathlib import Path

    from experiments.spec.config import shipped_configs

    command = str(Path(sys.executable).parent / "init-loss-lab")
    listed = subprocess.run([command, "list", "configs"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert listed.returncode == 0 and listed.stderr == ""
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == list(shipped_configs())
    valid = subprocess.run([command, "validate", "digits_init_x_loss"], capture_output=True, text=True, cwd=tmp_path,
                           timeout=60)
    assert valid.returncode == 0 and valid.stdout.startswith("digits_init_x_loss: valid; 54 runs = 18 cells")
    out = tmp_path / "elsewhere"
    done = subprocess.run([command, "run", "breast_cancer_losses", "--output", str(out), "--quiet", "--set", "epochs=1",
                           "--set", "seeds=[0]"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0 and done.stderr == ""
    assert f"tensorboard: init-loss-lab tensorboard breast_cancer_losses --output {out}" in done.stdout
    missing = subprocess.run([command, "run", "digits_init_x_los"], capture_output=True, text=True, cwd=tmp_path,
                             timeout=60)
    assert missing.returncode == 2 and "init-loss-lab list configs" in missing.stderr
