"""A normal run prints only the suite's own lines: TensorFlow's native start-up chatter is filtered
out of the command's stderr, and everything else passes."""

import subprocess
import sys

from conftest import TINY, write_config

from experiments.console import is_chatter

CHATTER = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1795505418.156101   25974 port.cc:153] oneDNN custom operations are on. You may see ...",
    b"I0000 00:00:1795499967.901549    9931 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...",
    b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
    b"compiler flags.",
    b"E0000 00:00:1795511067.894751   30424 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    b"call to cuInit: UNKNOWN ERROR (303)",  # the GPU-capable build on a machine without a GPU
]
KEPT = [b"W0000 00:00:1795505418.156101   25974 loader.cc:12] a real warning", b"error: config needs dataset",
        b"E0000 00:00:1795511067.894751   30424 cuda_driver.cc:12] out of memory",
        b"notice: tiny: 2 runs ...", b"Traceback (most recent call last):", b"I am a user's line"]


def test_only_absl_info_lines_and_the_start_up_notices_are_chatter():
    assert all(is_chatter(line) for line in CHATTER)
    assert not any(is_chatter(line) for line in KEPT)


def test_a_run_prints_only_the_suites_lines(tmp_path):
    config = write_config(tmp_path / "tiny.toml", TINY)
    quiet = subprocess.run([sys.executable, "-m", "experiments", "run", str(config), "--output", str(tmp_path),
                            "--quiet"], capture_output=True, text=True, check=False)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith("tiny: trained 8 runs")
    # many stacked groups: TensorFlow warned of "retracing" from the sixth group's functions on
    many = subprocess.run([sys.executable, "-m", "experiments", "run", str(config), "--output", str(tmp_path / "many"),
                           "--quiet", "--set", "batch_size=[4, 5, 6, 7, 8, 9, 10]", "--set", "epochs=1",
                           "--set", "losses=['binary_crossentropy']", "--set", "initializers=['he_normal']"],
                          capture_output=True, text=True, check=False)
    assert many.returncode == 0 and many.stderr == ""
    assert many.stdout.startswith("tiny: trained 14 runs")
    bad = subprocess.run([sys.executable, "-m", "experiments", "run", str(config), "--output", str(tmp_path),
                          "--set", "epochs=0"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr == "error: epochs must be an integer > 0 and <= 100,000, got 0\n"
