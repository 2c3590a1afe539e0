"""Bad input: a one-line error naming the value and what is valid, exit code 2, no traceback,
and nothing already on disk changed."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from experiments.cli import main


def _snapshot(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def output(tmp_path):
    """An output tree that already holds results, which bad input must leave alone."""
    out = tmp_path / "out"
    (out / "runs" / "tiny").mkdir(parents=True)
    (out / "runs" / "tiny" / "experiment.json").write_text('{"keep": true}\n')
    (out / "reports" / "tiny").mkdir(parents=True)
    (out / "reports" / "tiny" / "report.md").write_text("# earlier report\n")
    return out


def _csv(tmp_path, nan=False):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    if nan:
        x[3, 1] = np.nan
    rows = ["a,b,label"] + [f"{a},{b},{int(a > 0)}" for a, b in x]
    path = tmp_path / ("nan.csv" if nan else "data.csv")
    path.write_text("\n".join(rows).replace("nan", "") + "\n")
    return str(path)


CASES = {
    "unknown initializer": (["initializers=['he_normal', 'kaiming']"], "'kaiming'; valid names: random_normal"),
    "unknown loss": (["losses=['hinge']"], "'hinge'; valid names: mean_squared_error"),
    "unknown dataset": (["dataset=mnist2"], "'mnist2'; valid names: digits"),
    "unknown model": (["model=resnet"], "'resnet'; valid names: mlp, linear, cnn"),
    "unknown optimizer": (["optimizer=adamax"], "'adamax'; valid names: sgd"),
    "unknown activation": (["model.activation=relu6"], "valid values: linear, sigmoid"),
    "cross-entropy on regression": (["dataset=diabetes", "losses=['categorical_crossentropy']",
                                     "thresholds={}"],
                                    "loss 'categorical_crossentropy' does not apply to a regression"),
    "binary cross-entropy on multiclass": (["dataset=iris", "losses=['binary_crossentropy']"],
                                           "loss 'binary_crossentropy' does not apply to a multiclass task"),
    "cnn on tabular data": (["model=cnn"], "model 'cnn' needs image-shaped data"),
    "datasets of two tasks": (["dataset=['moons', 'iris']"], "datasets of one experiment must share a task"),
    "zero batch size": (["batch_size=0"], "batch_size must be an integer > 0, got 0"),
    "negative learning rate": (["learning_rate=-0.1"], "learning_rate must be a number > 0, got -0.1"),
    "zero epochs": (["epochs=0"], "epochs must be an integer > 0, got 0"),
    "epochs of the wrong type": (["epochs=abc"], "epochs must be an integer > 0, got 'abc'"),
    "empty seeds": (["seeds=[]"], "seeds must be a non-empty list"),
    "unknown --set key": (["epoch=3"], "unknown key 'epoch'; valid keys: name"),
    "malformed --set": (["epochs"], "'epochs' is not key=value"),
    "unknown initializer parameter": (["initializers=[{'name': 'random_normal', 'sigma': 1.0}]"],
                                      "has no parameter 'sigma'; its parameters: mean, stddev"),
    "impossible stddev": (["initializers=[{'name': 'random_normal', 'stddev': -0.1}]"], "must be > 0, got -0.1"),
    "mnist without a path": (["dataset=mnist", "losses=['categorical_crossentropy']"],
                             "dataset 'mnist' needs a local file: set dataset.path"),
    "missing csv": (["dataset={'name': 'csv', 'path': '/nonexistent/d.csv', 'target': 'y'}"],
                    "no file at '/nonexistent/d.csv'"),
    "metric for another task": (["metrics=['mean_absolute_error']"], "metric 'mean_absolute_error' does not apply"),
    "unknown engine": (["engine=jax"], "engine 'jax' is unknown; valid engines: vectorized, keras"),
    "negative diagnostics interval": (["diagnostics.every=-1"], "diagnostics.every must be an integer >= 0, got -1"),
    "unknown diagnostics key": (["diagnostics.often=1"], "diagnostics must be a table (every, probe) or false"),
}


@pytest.mark.parametrize("sets, message", CASES.values(), ids=CASES.keys())
def test_bad_value(config_file, output, capsys, sets, message):
    before = _snapshot(output)
    code = main(["run", str(config_file()), "--output", str(output), "--quiet",
                 *[a for s in sets for a in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert all(line.startswith("error: ") for line in err.strip().splitlines())
    assert _snapshot(output) == before


def test_missing_target_column_and_nan_in_csv(config_file, output, capsys, tmp_path):
    before = _snapshot(output)
    good, bad = _csv(tmp_path), _csv(tmp_path, nan=True)
    code = main(["validate", str(config_file()),
                 "--set", f"dataset={{'name': 'csv', 'path': {good!r}, 'target': 'y'}}"])
    assert code == 2 and "no target column 'y'" in capsys.readouterr().err
    code = main(["run", str(config_file()), "--output", str(output),
                 "--set", f"dataset={{'name': 'csv', 'path': {bad!r}, 'target': 'label'}}"])
    err = capsys.readouterr().err
    assert code == 2 and "NaN or empty cells in columns ['b']" in err
    assert _snapshot(output) == before


def test_malformed_and_missing_config_files(tmp_path, output, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text('dataset = "digits"\ninitializers = ["he_normal"\n')
    assert main(["run", str(broken), "--output", str(output)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "absent.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('dataset = "iris"\ninitializers = ["he_normal"]\nlosses = ["huber"]\nepoc = 3\n')
    assert main(["validate", str(unknown)]) == 2
    assert "unknown config keys ['epoc']" in capsys.readouterr().err


def test_several_problems_are_reported_together(config_file, capsys):
    code = main(["validate", str(config_file()), "--set", "batch_size=-4", "--set", "losses=['hinge']"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 2


def test_a_real_process_exits_2_without_traceback(config_file, output):
    before = _snapshot(output)
    done = subprocess.run([sys.executable, "-m", "experiments", "run", str(config_file()), "--output", str(output),
                           "--set", "initializers=['kaiming']"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert _snapshot(output) == before
