"""Installs as users make them: what pip would install for the default and the gpu extra (a dry
run against the package registry), and a non-editable install in a separate virtual environment,
used from another folder: a shipped config by name, a config by path with a user's own
initializer from a file beside it, and the Python API."""

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from experiments.spec.config import shipped_configs

ROOT = Path(__file__).resolve().parents[2]


def _resolved(targets, tmp_path):
    """For each target, the distributions `pip install target` would install into an empty
    environment (the resolutions run at once; each is mostly CPU: 55 s together, 85-93 s one
    after the other, on 2 cores)."""
    reports = [tmp_path / f"report{i}.json" for i in range(len(targets))]
    running = [subprocess.Popen([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                                 "--no-build-isolation", "--disable-pip-version-check", "--report", str(report),
                                 target], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for target, report in zip(targets, reports, strict=True)]
    for process in running:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    return [{item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
            for report in reports]


@pytest.mark.skipif(sys.platform != "linux", reason="the CUDA wheels are for Linux")
def test_the_gpu_extra_adds_the_cuda_wheels_to_the_same_tensorflow(tmp_path):
    default, gpu = _resolved([str(ROOT), f"{ROOT}[gpu]"], tmp_path)
    assert "tensorflow" in default and not {n for n in default if n.startswith("nvidia-")}
    assert "tensorflow" in gpu and {"nvidia-cudnn-cu12", "nvidia-cublas-cu12"} <= gpu
    assert "tensorflow-cpu" not in default | gpu  # one package owns tensorflow/: nothing to fight over
    assert default < gpu


MY_INIT = '''
import keras


def halved_glorot(shape, dtype=None, seed=None):
    return keras.initializers.GlorotUniform(seed=seed)(shape, dtype=dtype) * 0.5
'''


def test_a_non_editable_install_works_from_another_folder(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # the dependencies come from this environment (a .pth line adds its site-packages, whose own
    # .pth files, such as the editable install's, are not run); the suite itself is installed anew
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python, command = venv / "bin" / "python", venv / "bin" / "init-loss-lab"
    install = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                              "--disable-pip-version-check", str(ROOT)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    work = tmp_path / "work"
    work.mkdir()
    (work / "models.py").write_text("raise SystemExit('a user module named like ours must not be imported')\n")
    where = subprocess.run([python, "-c", "import experiments; print(experiments.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=60)
    assert str(site) in where.stdout and str(ROOT) not in where.stdout  # the installed copy, not the repo

    listed = subprocess.run([command, "list", "configs"], capture_output=True, text=True, cwd=work, timeout=120)
    assert listed.returncode == 0 and [line.split()[0] for line in listed.stdout.splitlines()[1:]] == \
        list(shipped_configs())
    by_name = subprocess.run([command, "validate", "breast_cancer_losses"], capture_output=True, text=True, cwd=work,
                             timeout=600)  # training a shipped config by name: tests/experiments/test_cli.py
    assert by_name.returncode == 0 and by_name.stdout.startswith("breast_cancer_losses: valid; 18 runs"), by_name

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my_inits.py").write_text(MY_INIT)
    (mine / "mine.toml").write_text('dataset = "iris"\ninitializers = ["glorot_uniform", "./my_inits.py:halved_glorot"]'
                                    '\nlosses = ["categorical_crossentropy"]\nseeds = [0]\nepochs = 2\n')
    by_path = subprocess.run([command, "run", "../mine/mine.toml", "--quiet", "--output", "out"],
                             capture_output=True, text=True, cwd=work, timeout=600)
    assert by_path.returncode == 0 and by_path.stderr == "", by_path.stderr
    # Python puts the current folder first on sys.path: the API runs from a folder without a models.py
    api = subprocess.run([python, "-c", "import experiments as lab; r = lab.load('mine', output='../work/out'); "
                                        "print(sorted(r.runs['initializer']))"],
                         capture_output=True, text=True, cwd=mine, timeout=600)
    assert api.returncode == 0 and api.stdout.strip() == "['glorot_uniform', 'halved_glorot']", api.stderr
