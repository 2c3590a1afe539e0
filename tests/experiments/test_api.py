"""The Python API from a Python process, as a notebook uses it: `lab.run` writes what the command
writes and returns the same tables; `lab.load` reads them back; nothing but the suite's own
output reaches stderr."""

import json
import subprocess
import sys
import textwrap

import pandas as pd
from conftest import TINY

SCRIPT = textwrap.dedent("""
    import json, sys
    import experiments as lab
    config, output = json.loads(sys.argv[1]), sys.argv[2]
    result = lab.run(config, output=output, overrides={"epochs": 1, "dataset.n_samples": 60}, progress=False)
    again = lab.load(config["name"], output=output)
    print(json.dumps({"trained": result.trained, "runs": len(result.runs), "epochs": len(result.epochs),
                      "cells": result.cells["result"].tolist(), "diagnostics": len(result.diagnostics),
                      "report": str(result.report), "same": again.runs.equals(result.runs)}))
""")


def test_run_and_load_from_a_python_process(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps({**TINY, "name": "api"}), str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no TensorFlow chatter, no progress bar (progress=False)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    reports = tmp_path / "reports" / "api"
    assert got["trained"] == got["runs"] == 8 and got["epochs"] == 8 and got["same"]
    assert got["cells"] == pd.read_csv(reports / "cells.csv")["result"].tolist()
    assert got["diagnostics"] == len(pd.read_csv(reports / "diagnostics.csv")) > 0
    assert got["report"] == str(reports / "report.md") and (reports / "report.md").is_file()
    assert list((tmp_path / "runs" / "api").glob("events.out.tfevents.*"))  # the TensorBoard records too
    config = json.loads(next((tmp_path / "runs" / "api").rglob("config.json")).read_text())
    assert config["epochs"] == 1 and config["dataset"]["n_samples"] == 60


def test_a_bad_config_raises_one_error_naming_every_problem():
    import pytest

    import experiments as lab
    from experiments.spec import SpecError

    with pytest.raises(SpecError) as caught:
        lab.run({**TINY, "name": "bad"}, overrides={"epochs": 0, "losses": ["hinge"]})
    assert len(caught.value.problems) == 2
